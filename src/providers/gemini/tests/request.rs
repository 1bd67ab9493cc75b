//! `translate_request`: Google's documented request shapes, every mapped
//! field, every refusal.

use serde_json::{json, Value};

use super::super::translate_request;
use crate::providers::RequestError;

fn bytes(body: &Value) -> Vec<u8> {
    match translate_request(body.to_string().as_bytes()) {
        Ok(out) => out,
        Err(e) => panic!("{body} was refused: {e:?}"),
    }
}

fn text(body: &Value) -> String {
    String::from_utf8(bytes(body)).expect("UTF-8")
}

fn translate(body: Value) -> Value {
    serde_json::from_slice(&bytes(&body)).expect("the translation is JSON")
}

/// A body with `extra` members merged into a one-message chat request.
fn with(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    body
}

fn refuse(body: Value) -> RequestError {
    match translate_request(body.to_string().as_bytes()) {
        Ok(out) => panic!("{body} was translated: {}", String::from_utf8_lossy(&out)),
        Err(e) => e,
    }
}

fn refused_param(body: Value) -> Option<&'static str> {
    refuse(body).param
}

fn contents(messages: Value) -> Value {
    translate(json!({"model": "m", "messages": messages}))["contents"].clone()
}

fn config(extra: Value) -> Value {
    translate(with(extra))["generationConfig"].clone()
}

#[test]
fn a_minimal_request_is_googles_text_example() {
    // ai.google.dev "Text generation": one user content with one text part.
    assert_eq!(
        text(
            &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Explain how AI works in a few words"}]})
        ),
        r#"{"contents":[{"role":"user","parts":[{"text":"Explain how AI works in a few words"}]}]}"#
    );
}

#[test]
fn system_and_developer_messages_become_the_system_instruction() {
    // ai.google.dev "System instructions": "You are a cat. Your name is Neko."
    let out = text(&json!({"model": "m", "messages": [
        {"role": "system", "content": "You are a cat."},
        {"role": "user", "content": "Hello there"},
        {"role": "developer", "content": [{"type": "text", "text": "Your name is Neko."}, {"type": "text", "text": ""}]},
        {"role": "system", "content": ""},
    ]}));
    assert_eq!(
        out,
        r#"{"systemInstruction":{"parts":[{"text":"You are a cat.\n\nYour name is Neko."}]},"contents":[{"role":"user","parts":[{"text":"Hello there"}]}]}"#
    );
    assert!(translate(with(json!({})))
        .get("systemInstruction")
        .is_none());
    assert_eq!(
        refused_param(json!({"model": "m", "messages": [
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "user", "content": "Hi"},
        ]})),
        Some("messages")
    );
}

#[test]
fn model_stream_and_stream_options_are_not_sent() {
    let out = translate(with(
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    ));
    assert_eq!(
        out.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["contents"]
    );
}

#[test]
fn roles_map_and_consecutive_contents_merge() {
    let out = contents(json!([
        {"role": "user", "content": "a"},
        {"role": "user", "content": [{"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
        {"role": "assistant", "content": [{"type": "text", "text": "d"}, {"type": "refusal", "refusal": "e"}]},
        {"role": "assistant", "content": null},
        {"role": "user", "content": "f", "name": "ada"},
    ]));
    assert_eq!(
        out,
        json!([
            {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
            {"role": "model", "parts": [{"text": "c"}, {"text": "d"}, {"text": "e"}]},
            {"role": "user", "parts": [{"text": "f"}]},
        ])
    );
}

#[test]
fn images_audio_and_files_become_inline_data() {
    let out = contents(json!([{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
    ]}]));
    assert_eq!(
        out,
        json!([{"role": "user", "parts": [
            {"text": "What is in these?"},
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        ]}])
    );
}

#[test]
fn urls_that_gemini_cannot_read_are_refused_with_a_hint() {
    let image = |url: &str| json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]});
    let e = refuse(image("https://example.com/cat.png"));
    assert_eq!(e.param, Some("messages"));
    assert!(e.message.contains("data:"), "{}", e.message);
    for bad in [
        "ftp://x/y.png",
        "data:image/png,plain",
        "data:;base64,AAAA",
        "data:image/png;base64,",
    ] {
        assert_eq!(refused_param(image(bad)), Some("messages"), "{bad}");
    }
    let file_id = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]});
    assert!(refuse(file_id).message.contains("file_id"));
    let audio = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "opus"}}]}]});
    assert_eq!(refused_param(audio), Some("messages"));
    let unknown = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {}}]}]});
    assert_eq!(refused_param(unknown), Some("messages"));
}

#[test]
fn a_tool_loop_is_googles_function_calling_example() {
    // ai.google.dev "Function calling": the model's call, then the result.
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "Turn the lights down to a romantic level"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_abc", "type": "function", "function": {"name": "set_light_values", "arguments": "{\"brightness\":25,\"color_temp\":\"warm\"}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "{\"brightness\":25,\"colorTemperature\":\"warm\"}"},
    ]});
    assert_eq!(
        text(&body),
        concat!(
            r#"{"contents":[{"role":"user","parts":[{"text":"Turn the lights down to a romantic level"}]},"#,
            r#"{"role":"model","parts":[{"functionCall":{"name":"set_light_values","args":{"brightness":25,"color_temp":"warm"}},"thoughtSignature":"context_engineering_is_the_way_to_go"}]},"#,
            r#"{"role":"user","parts":[{"functionResponse":{"name":"set_light_values","response":{"brightness":25,"colorTemperature":"warm"}}}]}]}"#
        )
    );
}

#[test]
fn parallel_tool_results_share_one_user_content_and_text_results_are_wrapped() {
    let out = contents(json!([
        {"role": "user", "content": "Weather in Oslo and Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "b", "type": "function", "function": {"name": "weather", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "a", "content": "Sunny, 21 C"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "{\"sky\":"}, {"type": "text", "text": "\"rain\"}"}]},
        {"role": "tool", "tool_call_id": "a", "content": "[1, 2]"},
        {"role": "tool", "tool_call_id": "b"},
        {"role": "user", "content": "Thanks"},
    ]));
    assert_eq!(
        out,
        json!([
            {"role": "user", "parts": [{"text": "Weather in Oslo and Paris?"}]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                // Not made by Gemini: the first call gets the stand-in signature.
                {"functionCall": {"name": "weather", "args": {"city": "Oslo"}},
                 "thoughtSignature": "context_engineering_is_the_way_to_go"},
                {"functionCall": {"name": "weather", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "weather", "response": {"content": "Sunny, 21 C"}}},
                {"functionResponse": {"name": "weather", "response": {"sky": "rain"}}},
                {"functionResponse": {"name": "weather", "response": {"content": "[1, 2]"}}},
                {"functionResponse": {"name": "weather", "response": {"content": ""}}},
                {"text": "Thanks"},
            ]},
        ])
    );
}

#[test]
fn bad_tool_messages_and_calls_are_refused_naming_messages() {
    let call = |arguments: &str| {
        json!({"model": "m", "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
        ]})
    };
    for bad in ["[1]", "\"x\"", "{", "nope"] {
        assert_eq!(refused_param(call(bad)), Some("messages"), "{bad}");
    }
    let orphan = json!({"model": "m", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "tool", "tool_call_id": "nowhere", "content": "42"},
    ]});
    let e = refuse(orphan);
    assert_eq!(e.param, Some("messages"));
    assert!(e.message.contains("nowhere"), "{}", e.message);
    let no_id = json!({"model": "m", "messages": [{"role": "tool", "content": "42"}]});
    assert_eq!(refused_param(no_id), Some("messages"));
    for role in ["function", "robot"] {
        let body = json!({"model": "m", "messages": [{"role": role, "content": "x", "name": "f"}]});
        assert_eq!(refused_param(body), Some("messages"), "{role}");
    }
    let legacy = json!({"model": "m", "messages": [{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]});
    assert_eq!(refused_param(legacy), Some("messages"));
    let only_system = json!({"model": "m", "messages": [{"role": "system", "content": "S"}]});
    assert_eq!(refused_param(only_system), Some("messages"));
    assert_eq!(refused_param(json!({"model": "m"})), Some("messages"));
    assert_eq!(
        refused_param(json!({"model": "m", "messages": "hi"})),
        Some("messages")
    );
}

#[test]
fn generation_config_carries_every_sampling_field() {
    let out = text(&with(json!({
        "max_completion_tokens": 200, "max_tokens": 100, "temperature": 1.5, "top_p": 0.9,
        "stop": ["END", "STOP"], "n": 2, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "seed": 42, "reasoning_effort": "low",
    })));
    assert!(
        out.ends_with(r#""generationConfig":{"maxOutputTokens":200,"temperature":1.5,"topP":0.9,"stopSequences":["END","STOP"],"candidateCount":2,"presencePenalty":0.5,"frequencyPenalty":-0.5,"seed":42,"thinkingConfig":{"thinkingBudget":1024}}}"#),
        "{out}"
    );
    assert_eq!(config(json!({"max_tokens": 7}))["maxOutputTokens"], 7);
    assert_eq!(
        config(json!({"stop": "END"}))["stopSequences"],
        json!(["END"])
    );
    assert!(config(json!({"n": 1})).is_null(), "n = 1 is the default");
    assert!(config(json!({"max_tokens": null, "stop": null})).is_null());
    // A 64-bit seed keeps its low 32 bits.
    assert_eq!(config(json!({"seed": 4_294_967_297_i64}))["seed"], 1);
    assert_eq!(config(json!({"seed": -1}))["seed"], -1);
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget() {
    for (effort, budget) in [
        ("none", 0),
        ("minimal", 512),
        ("low", 1024),
        ("medium", 8192),
        ("high", 24576),
        ("xhigh", 24576),
    ] {
        assert_eq!(
            config(json!({"reasoning_effort": effort}))["thinkingConfig"],
            json!({"thinkingBudget": budget}),
            "{effort}"
        );
    }
    assert_eq!(
        refused_param(with(json!({"reasoning_effort": "max"}))),
        Some("reasoning_effort")
    );
}

#[test]
fn response_format_becomes_json_mode_with_the_schema_as_written() {
    assert_eq!(
        config(json!({"response_format": {"type": "json_object"}})),
        json!({"responseMimeType": "application/json"})
    );
    assert!(config(json!({"response_format": {"type": "text"}})).is_null());
    let body = r#"{"model":"m","messages":[{"role":"user","content":"Recipes?"}],"response_format":{"type":"json_schema","json_schema":{"name":"recipes","strict":true,"schema":{"type":"array","items":{"type":"object","properties":{"recipeName":{"type":"string"},"ingredients":{"type":"array","items":{"type":"string"}}},"propertyOrdering":["recipeName","ingredients"]}}}}}"#;
    let out = String::from_utf8(translate_request(body.as_bytes()).unwrap()).unwrap();
    assert!(
        out.ends_with(r#""generationConfig":{"responseMimeType":"application/json","responseJsonSchema":{"type":"array","items":{"type":"object","properties":{"recipeName":{"type":"string"},"ingredients":{"type":"array","items":{"type":"string"}}},"propertyOrdering":["recipeName","ingredients"]}}}}"#),
        "{out}"
    );
    for bad in [
        json!({"type": "yaml"}),
        json!("json"),
        json!({"type": "json_schema"}),
        json!({"type": "json_schema", "json_schema": {"name": "x", "schema": [1]}}),
    ] {
        assert_eq!(
            refused_param(with(json!({"response_format": bad}))),
            Some("response_format")
        );
    }
}

#[test]
fn tools_become_function_declarations_with_the_schema_as_written() {
    let body = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"tools":[
        {"type":"function","function":{"name":"get_weather","description":"Weather now","strict":true,"parameters":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"number"}},"required":["z"]}}},
        {"type":"function","function":{"name":"now"}}
    ],"parallel_tool_calls":false}"#;
    let out = String::from_utf8(translate_request(body.as_bytes()).unwrap()).unwrap();
    assert!(
        out.ends_with(r#""tools":[{"functionDeclarations":[{"name":"get_weather","description":"Weather now","parametersJsonSchema":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"number"}},"required":["z"]}},{"name":"now"}]}]}"#),
        "{out}"
    );
    assert_eq!(
        refused_param(with(
            json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]})
        )),
        Some("tools")
    );
    assert_eq!(
        refused_param(with(
            json!({"tools": [{"type": "function", "function": {"name": "x", "parameters": "{}"}}]})
        )),
        Some("tools")
    );
}

#[test]
fn tool_choice_becomes_the_function_calling_mode() {
    let tools = json!([
        {"type": "function", "function": {"name": "a"}},
        {"type": "function", "function": {"name": "b"}},
    ]);
    let mode = |choice: Value| {
        translate(with(json!({"tools": tools, "tool_choice": choice})))["toolConfig"].clone()
    };
    assert_eq!(
        mode(json!("auto")),
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    assert_eq!(
        mode(json!("none")),
        json!({"functionCallingConfig": {"mode": "NONE"}})
    );
    assert_eq!(
        mode(json!("required")),
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        mode(json!({"type": "function", "function": {"name": "b"}})),
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}})
    );
    assert!(translate(with(json!({"tools": tools})))
        .get("toolConfig")
        .is_none());
    // Without tools: auto and none mean nothing; the others cannot be done.
    for choice in [json!("auto"), json!("none")] {
        let out = translate(with(json!({"tool_choice": choice})));
        assert!(out.get("toolConfig").is_none() && out.get("tools").is_none());
    }
    for choice in [
        json!("required"),
        json!({"type": "function", "function": {"name": "a"}}),
    ] {
        assert_eq!(
            refused_param(with(json!({"tool_choice": choice}))),
            Some("tool_choice")
        );
    }
    for bad in [
        json!("sometimes"),
        json!({"type": "function", "function": {"name": "c"}}),
        json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}),
    ] {
        assert_eq!(
            refused_param(with(json!({"tools": tools, "tool_choice": bad}))),
            Some("tool_choice")
        );
    }
}

#[test]
fn fields_without_a_gemini_meaning_are_dropped() {
    let plain = translate(with(json!({})));
    let out = translate(with(json!({
        "user": "u-1", "safety_identifier": "s", "metadata": {"a": "b"}, "store": true,
        "service_tier": "auto", "logit_bias": {"42": 1}, "prediction": {"type": "content", "content": "x"},
        "verbosity": "low", "prompt_cache_key": "k", "parallel_tool_calls": true,
        "logprobs": false, "top_logprobs": 0, "modalities": ["text"], "some_future_field": [1],
    })));
    assert_eq!(out, plain);
}

#[test]
fn what_gemini_cannot_honour_is_refused_naming_the_field() {
    for (extra, param) in [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
        (
            json!({"audio": {"voice": "alloy", "format": "mp3"}}),
            "audio",
        ),
        (json!({"web_search_options": {}}), "web_search_options"),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"function_call": "auto"}), "function_call"),
        (json!({"n": 9}), "n"),
        (json!({"n": 0}), "n"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (
            json!({"max_completion_tokens": 0, "max_tokens": 5}),
            "max_completion_tokens",
        ),
        (json!({"max_tokens": 1.5}), "max_tokens"),
        (json!({"temperature": 2.5}), "temperature"),
        (json!({"temperature": "hot"}), "temperature"),
        (json!({"top_p": "x"}), "top_p"),
        (json!({"stop": 5}), "stop"),
        (json!({"stop": ["a", 1]}), "stop"),
        (json!({"seed": 1.5}), "seed"),
        (json!({"presence_penalty": "x"}), "presence_penalty"),
        (json!({"parallel_tool_calls": "yes"}), "parallel_tool_calls"),
        (json!({"reasoning_effort": 3}), "reasoning_effort"),
    ] {
        let e = refuse(with(extra.clone()));
        assert_eq!(e.param, Some(param), "{extra}: {}", e.message);
        assert!(!e.message.is_empty());
    }
    let e = refuse(with(json!({"logprobs": true})));
    assert!(e.message.contains("Gemini"), "{}", e.message);
}

#[test]
fn bodies_that_are_not_chat_requests_are_refused_as_a_whole() {
    for body in [&b"not json"[..], b"[]", b"{\"messages\": [", b""] {
        let e = translate_request(body).expect_err("refused");
        assert_eq!(e.param, None);
    }
}
