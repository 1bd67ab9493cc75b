//! `translate_request`: every mapped field, merging, images, tools, the
//! tool-history rule, structured output, and what is refused.

use serde_json::{json, Value};

use super::super::{translate_request, Options};

fn translate_with(body: Value, options: &Options) -> Result<Value, (String, Option<&'static str>)> {
    translate_request(body.to_string().as_bytes(), options)
        .map(|out| serde_json::from_slice(&out).expect("JSON"))
        .map_err(|e| (e.message, e.param))
}

fn translate(body: Value) -> Result<Value, (String, Option<&'static str>)> {
    translate_with(body, &Options::default())
}

fn ok(body: Value) -> Value {
    translate(body).expect("translates")
}

fn refused(body: Value) -> (String, Option<&'static str>) {
    translate(body).expect_err("refused")
}

#[test]
fn a_documented_conversation_with_every_inference_field() {
    let out = ok(json!({
        "model": "x",
        "messages": [
            {"role": "system", "content": "You are an app that creates playlists for a radio station."},
            {"role": "developer", "content": [{"type": "text", "text": "Only return song names and the artist."}]},
            {"role": "user", "content": "Create a list of 3 pop songs."},
            {"role": "assistant", "content": "Here is a list of 3 pop songs."},
            {"role": "user", "content": [{"type": "text", "text": "Make sure the songs are by artists from the United Kingdom."}]}
        ],
        "max_completion_tokens": 512, "max_tokens": 100,
        "temperature": 0.5, "top_p": 0.9, "stop": ["\n\nHuman:", ""],
        "stream": true, "stream_options": {"include_usage": true},
        "user": "u-1", "seed": 7, "presence_penalty": 0.1, "parallel_tool_calls": false,
        "reasoning_effort": "low", "n": 1, "logprobs": false, "top_logprobs": 0,
    }));
    assert_eq!(
        out,
        json!({
            "messages": [
                {"role": "user", "content": [{"text": "Create a list of 3 pop songs."}]},
                {"role": "assistant", "content": [{"text": "Here is a list of 3 pop songs."}]},
                {"role": "user", "content": [{"text": "Make sure the songs are by artists from the United Kingdom."}]}
            ],
            "system": [
                {"text": "You are an app that creates playlists for a radio station."},
                {"text": "Only return song names and the artist."}
            ],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.5, "topP": 0.9, "stopSequences": ["\n\nHuman:"]}
        })
    );
}

#[test]
fn max_tokens_falls_back_to_the_option_and_temperature_is_clamped() {
    let body = json!({"messages": [{"role": "user", "content": "Hi"}], "temperature": 1.7});
    assert_eq!(
        ok(body.clone())["inferenceConfig"],
        json!({"temperature": 1.0})
    );
    let options = Options {
        default_max_tokens: Some(2048),
    };
    assert_eq!(
        translate_with(body, &options).unwrap()["inferenceConfig"],
        json!({"maxTokens": 2048, "temperature": 1.0})
    );
    let bare = ok(
        json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10, "stop": "END"}),
    );
    assert_eq!(
        bare["inferenceConfig"],
        json!({"maxTokens": 10, "stopSequences": ["END"]})
    );
    let none = ok(json!({"messages": [{"role": "user", "content": "Hi"}]}));
    assert!(none.get("inferenceConfig").is_none());
    assert!(none.get("system").is_none());
    assert!(none.get("toolConfig").is_none());
    for (field, value) in [
        ("max_tokens", json!(0)),
        ("max_completion_tokens", json!(0)),
        ("temperature", json!(2.5)),
        ("top_p", json!(1.5)),
        ("stop", json!(5)),
        ("max_tokens", json!("ten")),
    ] {
        let mut body = json!({"messages": [{"role": "user", "content": "Hi"}]});
        body[field] = value;
        assert_eq!(refused(body).1, Some(field));
    }
}

#[test]
fn images_are_data_uris_and_urls_are_refused() {
    let out = ok(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/JPEG;base64,/9j/4AAQ"}}
    ]}]}));
    assert_eq!(
        out["messages"][0]["content"],
        json!([
            {"text": "What is this?"},
            {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
            {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}
        ])
    );
    for url in [
        "https://example.com/cat.png",
        "data:image/bmp;base64,Qk0=",
        "data:image/png,raw",
        "data:image/png;base64,",
    ] {
        let (message, param) = refused(
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}),
        );
        assert_eq!(param, Some("messages"));
        assert!(message.contains("data:"), "{message}");
    }
}

#[test]
fn tool_calls_and_parallel_results_alternate_roles() {
    let out = ok(json!({
        "messages": [
            {"role": "user", "content": "Weather in Oslo and Bergen?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\", \"unit\": \"c\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 3}"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rainy"}]},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather by city", "parameters": {"type": "object", "properties": {"unit": {"type": "string"}, "city": {"type": "string"}}}, "strict": true}}],
        "tool_choice": "auto"
    }));
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"text": "Weather in Oslo and Bergen?"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Oslo", "unit": "c"}}},
                {"toolUse": {"toolUseId": "call_2", "name": "weather", "input": {}}}
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"json": {"temp": 3}}]}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "rainy"}]}},
                {"text": "Thanks"}
            ]}
        ])
    );
    assert_eq!(
        out["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "weather", "description": "Weather by city",
            "inputSchema": {"json": {"type": "object", "properties": {"unit": {"type": "string"}, "city": {"type": "string"}}}}}}],
            "toolChoice": {"auto": {}}})
    );
    // The schema and the arguments keep their key order.
    let body = r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"z\":1,\"a\":2}"}}]}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"z":{},"a":{}}}}}]}"#;
    let text = String::from_utf8(translate_request(body.as_bytes(), &Options::default()).unwrap())
        .unwrap();
    assert!(text.contains(r#""input":{"z":1,"a":2}"#), "{text}");
    assert!(text.contains(r#""properties":{"z":{},"a":{}}"#), "{text}");
}

#[test]
fn tool_choices() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let config = |choice: Value| {
        let mut body = json!({"messages": [{"role": "user", "content": "Hi"}], "tools": tools});
        if !choice.is_null() {
            body["tool_choice"] = choice;
        }
        ok(body).get("toolConfig").cloned()
    };
    let spec = json!({"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object", "properties": {}}}}});
    assert_eq!(config(Value::Null), Some(json!({"tools": [spec]})));
    assert_eq!(
        config(json!("auto")),
        Some(json!({"tools": [spec], "toolChoice": {"auto": {}}}))
    );
    assert_eq!(
        config(json!("required")),
        Some(json!({"tools": [spec], "toolChoice": {"any": {}}}))
    );
    assert_eq!(
        config(json!({"type": "function", "function": {"name": "f"}})),
        Some(json!({"tools": [spec], "toolChoice": {"tool": {"name": "f"}}}))
    );
    assert_eq!(config(json!("none")), None);
    for bad in [json!("sometimes"), json!({"type": "allowed_tools"})] {
        let body = json!({"messages": [{"role": "user", "content": "Hi"}], "tools": tools, "tool_choice": bad});
        assert_eq!(refused(body).1, Some("tool_choice"));
    }
    let body = json!({"messages": [{"role": "user", "content": "Hi"}], "tool_choice": "required"});
    assert_eq!(refused(body).1, Some("tool_choice"));
    let body = json!({"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "custom", "custom": {}}]});
    assert_eq!(refused(body).1, Some("tools"));
}

#[test]
fn a_tool_history_keeps_a_tool_config() {
    let history = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    ]);
    // `none` with tools: the tools are sent without a choice.
    let out = ok(
        json!({"messages": history, "tools": [{"type": "function", "function": {"name": "weather"}}], "tool_choice": "none"}),
    );
    assert_eq!(
        out["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]})
    );
    // No tools at all: one spec per tool the history called.
    let out = ok(json!({"messages": history}));
    assert_eq!(
        out["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "weather", "description": "A tool called earlier in this conversation.", "inputSchema": {"json": {"type": "object"}}}}]})
    );
}

#[test]
fn structured_output_is_a_forced_answer_tool() {
    let format = json!({"type": "json_schema", "json_schema": {"name": "city", "description": "A city.", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}});
    let out = ok(
        json!({"messages": [{"role": "user", "content": "A city?"}], "response_format": format}),
    );
    assert_eq!(
        out["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "switchyard_json_answer",
            "description": "Give your final answer by calling this tool: its input is the answer (`city`). A city.",
            "inputSchema": {"json": {"type": "object", "properties": {"name": {"type": "string"}}}}}}],
            "toolChoice": {"tool": {"name": "switchyard_json_answer"}}})
    );
    let with_tools = ok(
        json!({"messages": [{"role": "user", "content": "A city?"}], "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "f"}}]}),
    );
    assert_eq!(with_tools["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        with_tools["toolConfig"]["tools"].as_array().unwrap().len(),
        2
    );
    let text = ok(
        json!({"messages": [{"role": "user", "content": "A city?"}], "response_format": {"type": "text"}}),
    );
    assert!(text.get("toolConfig").is_none());
    for bad in [
        json!({"type": "json_schema"}),
        json!({"type": "json_schema", "json_schema": {"schema": {"type": "array"}}}),
        json!("json"),
    ] {
        assert_eq!(
            refused(
                json!({"messages": [{"role": "user", "content": "x"}], "response_format": bad})
            )
            .1,
            Some("response_format")
        );
    }
    let reserved = json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "switchyard_json_answer"}}]});
    assert_eq!(refused(reserved).1, Some("tools"));
}

#[test]
fn fields_without_a_counterpart_are_refused_by_name() {
    for (field, value) in [
        ("n", json!(2)),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(3)),
        ("audio", json!({"voice": "alloy", "format": "wav"})),
        ("web_search_options", json!({})),
        ("functions", json!([])),
        ("function_call", json!("auto")),
    ] {
        let mut body = json!({"messages": [{"role": "user", "content": "Hi"}]});
        body[field] = value;
        let (message, param) = refused(body);
        assert_eq!(param, Some(field), "{message}");
    }
}

#[test]
fn malformed_messages_are_refused() {
    for messages in [
        json!([{"role": "tool", "content": "x"}]),
        json!([{"role": "function", "name": "f", "content": "x"}]),
        json!([{"role": "robot", "content": "x"}]),
        json!([{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]),
        json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]),
        json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
        json!([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]),
        json!([{"role": "system", "content": "only a system prompt"}]),
        json!([]),
        json!("Hi"),
    ] {
        let (message, param) = refused(json!({"messages": messages}));
        assert_eq!(param, Some("messages"), "{message}");
    }
    assert_eq!(refused(json!({"model": "x"})).1, Some("messages"));
    for body in ["", "[]", "{", "null"] {
        assert!(translate_request(body.as_bytes(), &Options::default()).is_err());
    }
}

#[test]
fn empty_texts_are_dropped_and_a_tool_result_without_content_is_empty() {
    let out = ok(json!({"messages": [
        {"role": "user", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": ""},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]}
    ]}));
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "c", "name": "f", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "c", "content": []}}]},
            {"role": "assistant", "content": [{"text": "I can't."}]}
        ])
    );
}
