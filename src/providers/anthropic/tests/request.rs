//! `translate_request`: every mapped field, every refusal.

use serde_json::{json, Value};

use super::super::{translate_request, Options};
use crate::providers::RequestError;

const MODEL: &str = "claude-sonnet-4-5";

fn bytes(body: &Value) -> Vec<u8> {
    match translate_request(body.to_string().as_bytes(), MODEL, &Options::default()) {
        Ok(out) => out,
        Err(e) => panic!("{body} was refused: {e:?}"),
    }
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
    match translate_request(body.to_string().as_bytes(), MODEL, &Options::default()) {
        Ok(out) => panic!("{body} was translated: {}", String::from_utf8_lossy(&out)),
        Err(e) => e,
    }
}

fn refused_param(body: Value) -> Option<&'static str> {
    refuse(body).param
}

fn messages(messages: Value) -> Value {
    translate(json!({"model": "m", "messages": messages}))["messages"].clone()
}

#[test]
fn a_minimal_request_becomes_a_minimal_messages_body() {
    let out = bytes(&with(json!({})));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":"Hi"}]}"#
    );
}

#[test]
fn max_tokens_prefers_max_completion_tokens_then_max_tokens_then_the_default() {
    let both = translate(with(
        json!({"max_tokens": 100, "max_completion_tokens": 200}),
    ));
    assert_eq!(both["max_tokens"], 200);
    assert_eq!(
        translate(with(json!({"max_tokens": 100})))["max_tokens"],
        100
    );
    assert_eq!(
        translate(with(
            json!({"max_tokens": null, "max_completion_tokens": 300})
        ))["max_tokens"],
        300
    );
    let options = Options {
        default_max_tokens: 1234,
    };
    let out = translate_request(with(json!({})).to_string().as_bytes(), MODEL, &options).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["max_tokens"], 1234);
}

#[test]
fn bad_token_limits_are_refused_naming_the_field() {
    assert_eq!(
        refused_param(with(json!({"max_tokens": 0}))),
        Some("max_tokens")
    );
    assert_eq!(
        refused_param(with(json!({"max_tokens": -5}))),
        Some("max_tokens")
    );
    assert_eq!(
        refused_param(with(json!({"max_tokens": 1.5}))),
        Some("max_tokens")
    );
    assert_eq!(
        refused_param(with(json!({"max_completion_tokens": 0, "max_tokens": 10}))),
        Some("max_completion_tokens")
    );
    assert_eq!(
        refused_param(with(json!({"max_completion_tokens": "many"}))),
        Some("max_completion_tokens")
    );
}

#[test]
fn system_and_developer_messages_are_hoisted_and_joined() {
    let out = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric."}, {"type": "text", "text": ""}, {"type": "text", "text": "No emoji."}]},
        {"role": "system", "content": ""},
        {"role": "assistant", "content": "Hello"},
    ]}));
    assert_eq!(out["system"], "Be terse.\n\nUse metric.\n\nNo emoji.");
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    );
    let one = translate(
        json!({"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]}),
    );
    assert_eq!(one["system"], "S");
    assert!(translate(with(json!({}))).get("system").is_none());
}

#[test]
fn a_system_message_holds_only_text() {
    let e = refuse(json!({"model": "m", "messages": [
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        {"role": "user", "content": "Hi"},
    ]}));
    assert_eq!(e.param, Some("messages"));
    assert!(e.message.contains("image_url"), "{}", e.message);
}

#[test]
fn consecutive_turns_of_one_role_merge_and_single_texts_stay_strings() {
    let out = messages(json!([
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "three"}]},
        {"role": "assistant", "content": null},
        {"role": "user", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": "four"}, {"type": "text", "text": "five"}]},
    ]));
    assert_eq!(
        out,
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "three"},
            {"role": "user", "content": [{"type": "text", "text": "four"}, {"type": "text", "text": "five"}]},
        ])
    );
}

#[test]
fn images_become_base64_or_url_sources() {
    let out = messages(json!([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]}]));
    assert_eq!(
        out[0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ])
    );
}

#[test]
fn unsupported_content_is_refused() {
    let user =
        |part: Value| json!({"model": "m", "messages": [{"role": "user", "content": [part]}]});
    for part in [
        json!({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}),
        json!({"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}),
        json!({"type": "image_url", "image_url": {"url": "data:;base64,AAAA"}}),
        json!({"type": "image_url"}),
        json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}),
        json!({"type": "file", "file": {"file_id": "file-1"}}),
        json!({"type": "text"}),
        json!({"type": "refusal", "refusal": "no"}),
    ] {
        assert_eq!(
            refused_param(user(part.clone())),
            Some("messages"),
            "{part}"
        );
    }
    let assistant_image = json!({"model": "m", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
    ]});
    assert_eq!(refused_param(assistant_image), Some("messages"));
}

#[test]
fn assistant_tool_calls_become_tool_use_blocks_with_parsed_input() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "Weather in Oslo and Bergen?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\",\"a\":[1,2]}"}},
            {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}, {"type": "text", "text": "UTC"}]},
        {"role": "user", "content": "Thanks"},
    ]});
    let raw = String::from_utf8(bytes(&body)).unwrap();
    // The arguments go through as written: key order kept.
    assert!(
        raw.contains(r#""input":{"city":"Oslo","a":[1,2]}"#),
        "{raw}"
    );
    let out: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "Weather in Oslo and Bergen?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo", "a": [1, 2]}},
                {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "12°C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "noon"}, {"type": "text", "text": "UTC"}]},
                {"type": "text", "text": "Thanks"},
            ]},
        ])
    );
}

#[test]
fn assistant_text_and_tool_calls_share_a_turn() {
    let out = messages(json!([
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, {"type": "refusal", "refusal": "Not that."}], "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": " {} "}},
        ]},
    ]));
    assert_eq!(
        out[1]["content"],
        json!([
            {"type": "text", "text": "Checking."},
            {"type": "text", "text": "Not that."},
            {"type": "tool_use", "id": "c", "name": "f", "input": {}},
        ])
    );
}

#[test]
fn tool_results_go_first_in_a_merged_user_turn() {
    let out = messages(json!([
        {"role": "user", "content": "Go"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "(while you wait)"},
        {"role": "tool", "tool_call_id": "c", "content": ""},
    ]));
    assert_eq!(
        out[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c"},
            {"type": "text", "text": "(while you wait)"},
        ]})
    );
}

#[test]
fn malformed_tool_calls_and_results_are_refused() {
    let call = |arguments: &str| {
        json!({"model": "m", "messages": [
            {"role": "user", "content": "Go"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
        ]})
    };
    for arguments in ["{\"city\": ", "[1]", "\"Oslo\"", "42", "{} {}"] {
        let e = refuse(call(arguments));
        assert_eq!(e.param, Some("messages"), "{arguments}");
        assert!(e.message.contains("`c`"), "{}", e.message);
    }
    let custom = json!({"model": "m", "messages": [
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "f", "input": "x"}}]},
    ]});
    assert_eq!(refused_param(custom), Some("messages"));
    let no_id = json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]});
    assert_eq!(refused_param(no_id), Some("messages"));
}

#[test]
fn unknown_and_deprecated_roles_are_refused() {
    for message in [
        json!({"role": "function", "name": "f", "content": "x"}),
        json!({"role": "robot", "content": "x"}),
        json!({"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}}),
    ] {
        let e = refuse(json!({"model": "m", "messages": [message]}));
        assert_eq!(e.param, Some("messages"), "{e:?}");
    }
}

#[test]
fn tools_keep_their_schema_as_written() {
    // Written by hand: a `Value` would sort the schema's keys before we see them.
    let body = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"tools":[
        {"type":"function","function":{"name":"get_weather","description":"Weather now.","strict":true,
            "parameters":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"}},"required":["zeta"]}}},
        {"type":"function","function":{"name":"now"}}]}"#;
    let raw = translate_request(body.as_bytes(), MODEL, &Options::default()).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(
        raw.contains(r#""input_schema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"}},"required":["zeta"]}"#),
        "{raw}"
    );
    let out: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        out["tools"],
        json!([
            {"name": "get_weather", "description": "Weather now.", "input_schema": {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "number"}}, "required": ["zeta"]}},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        ])
    );
    assert!(
        out.get("tool_choice").is_none(),
        "auto is Anthropic's default"
    );
    let custom = with(json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]}));
    assert_eq!(refused_param(custom), Some("tools"));
}

#[test]
fn tool_choice_and_parallel_tool_calls_map() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let choice = |extra: Value| {
        let mut body = with(json!({"tools": tools}));
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        translate(body).get("tool_choice").cloned()
    };
    assert_eq!(
        choice(json!({"tool_choice": "auto"})),
        Some(json!({"type": "auto"}))
    );
    assert_eq!(
        choice(json!({"tool_choice": "required"})),
        Some(json!({"type": "any"}))
    );
    assert_eq!(
        choice(json!({"tool_choice": "none"})),
        Some(json!({"type": "none"}))
    );
    assert_eq!(
        choice(json!({"tool_choice": {"type": "function", "function": {"name": "f"}}})),
        Some(json!({"type": "tool", "name": "f"}))
    );
    assert_eq!(
        choice(json!({"parallel_tool_calls": false})),
        Some(json!({"type": "auto", "disable_parallel_tool_use": true}))
    );
    assert_eq!(
        choice(json!({"tool_choice": "required", "parallel_tool_calls": false})),
        Some(json!({"type": "any", "disable_parallel_tool_use": true}))
    );
    assert_eq!(
        choice(json!({"tool_choice": "none", "parallel_tool_calls": false})),
        Some(json!({"type": "none"}))
    );
    assert_eq!(choice(json!({"parallel_tool_calls": true})), None);
    assert_eq!(choice(json!({})), None);
}

#[test]
fn tool_choice_without_tools_is_dropped_or_refused() {
    for choice in [json!("auto"), json!("none")] {
        let out = translate(with(
            json!({"tool_choice": choice, "parallel_tool_calls": false}),
        ));
        assert!(out.get("tool_choice").is_none(), "{out}");
        assert!(out.get("tools").is_none(), "{out}");
    }
    for choice in [
        json!("required"),
        json!({"type": "function", "function": {"name": "f"}}),
    ] {
        assert_eq!(
            refused_param(with(json!({"tool_choice": choice}))),
            Some("tool_choice")
        );
    }
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    for choice in [
        json!("sometimes"),
        json!({"type": "custom", "custom": {"name": "f"}}),
        json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}),
        json!({"type": "function"}),
        json!(3),
    ] {
        let body = with(json!({"tools": tools, "tool_choice": choice}));
        assert_eq!(refused_param(body), Some("tool_choice"), "{choice}");
    }
}

#[test]
fn stop_becomes_stop_sequences() {
    assert_eq!(
        translate(with(json!({"stop": "END"})))["stop_sequences"],
        json!(["END"])
    );
    assert_eq!(
        translate(with(json!({"stop": ["a", "\n\n"]})))["stop_sequences"],
        json!(["a", "\n\n"])
    );
    assert!(translate(with(json!({"stop": null})))
        .get("stop_sequences")
        .is_none());
    assert!(translate(with(json!({"stop": []})))
        .get("stop_sequences")
        .is_none());
    assert_eq!(refused_param(with(json!({"stop": [1]}))), Some("stop"));
    assert_eq!(refused_param(with(json!({"stop": {"a": 1}}))), Some("stop"));
}

#[test]
fn temperature_passes_up_to_one_and_is_clamped_above() {
    assert_eq!(
        translate(with(json!({"temperature": 0.7})))["temperature"],
        0.7
    );
    assert_eq!(
        translate(with(json!({"temperature": 0})))["temperature"],
        0.0
    );
    assert_eq!(
        translate(with(json!({"temperature": 1.5})))["temperature"],
        1.0
    );
    assert_eq!(
        translate(with(json!({"temperature": 2})))["temperature"],
        1.0
    );
    for bad in [json!(2.5), json!(-0.1), json!("hot")] {
        assert_eq!(
            refused_param(with(json!({"temperature": bad}))),
            Some("temperature")
        );
    }
}

#[test]
fn top_p_user_and_stream_pass() {
    let out = translate(with(
        json!({"top_p": 0.9, "user": "u-42", "stream": true, "stream_options": {"include_usage": true}}),
    ));
    assert_eq!(out["top_p"], 0.9);
    assert_eq!(out["metadata"], json!({"user_id": "u-42"}));
    assert_eq!(out["stream"], true);
    assert!(out.get("stream_options").is_none());
    let out = translate(with(
        json!({"safety_identifier": "hash-1", "stream": false}),
    ));
    assert_eq!(out["metadata"], json!({"user_id": "hash-1"}));
    assert!(out.get("stream").is_none());
    assert_eq!(
        refused_param(with(json!({"stream": "yes"}))),
        Some("stream")
    );
    assert_eq!(refused_param(with(json!({"user": 7}))), Some("user"));
}

#[test]
fn fields_without_anthropic_meaning_are_dropped() {
    let plain = bytes(&with(json!({})));
    let noisy = with(json!({
        "n": 1, "presence_penalty": 0.5, "frequency_penalty": 0.1, "logit_bias": {"50256": -100},
        "logprobs": false, "top_logprobs": 0, "seed": 7, "service_tier": "auto", "store": true,
        "metadata": {"k": "v"}, "modalities": ["text"], "prediction": {"type": "content", "content": "x"},
        "reasoning_effort": "high", "verbosity": "low", "prompt_cache_key": "k", "response_format": {"type": "text"},
        "audio": null, "functions": null, "some_future_field": {"nested": [1, 2]},
    }));
    assert_eq!(
        String::from_utf8(bytes(&noisy)).unwrap(),
        String::from_utf8(plain).unwrap()
    );
}

#[test]
fn fields_asking_for_what_anthropic_cannot_do_are_refused() {
    let cases = [
        (json!({"n": 2}), "n"),
        (json!({"n": 0}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (
            json!({"audio": {"voice": "alloy", "format": "wav"}}),
            "audio",
        ),
        (json!({"web_search_options": {}}), "web_search_options"),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"function_call": "auto"}), "function_call"),
        (
            json!({"response_format": {"type": "yaml"}}),
            "response_format",
        ),
        (json!({"response_format": "json"}), "response_format"),
    ];
    for (extra, param) in cases {
        let e = refuse(with(extra.clone()));
        assert_eq!(e.param, Some(param), "{extra}: {e:?}");
        assert!(e.message.contains(param), "{extra}: {}", e.message);
    }
}

#[test]
fn bodies_that_are_not_chat_requests_are_refused() {
    for body in [
        &b"[1,2]"[..],
        b"\"hi\"",
        b"{\"model\":\"m\"",
        b"{\"messages\":[],\"messages\":[]}",
    ] {
        let e = translate_request(body, MODEL, &Options::default()).unwrap_err();
        assert_eq!(e.param, None, "{e:?}");
        assert!(!e.message.contains(" at line "), "{}", e.message);
    }
    assert_eq!(refused_param(json!({"model": "m"})), Some("messages"));
    assert_eq!(
        refused_param(json!({"model": "m", "messages": {}})),
        Some("messages")
    );
    assert_eq!(
        refused_param(json!({"model": "m", "messages": [{"content": "no role"}]})),
        Some("messages")
    );
    assert_eq!(
        refused_param(json!({"model": "m", "messages": [{"role": "user", "content": 5}]})),
        Some("messages")
    );
}

#[test]
fn escaped_strings_are_unescaped_once() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"line\none \"q\" \u00e9"}],"stop":"\\n"}"#;
    let out = translate_request(body, MODEL, &Options::default()).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["messages"][0]["content"], "line\none \"q\" é");
    assert_eq!(out["stop_sequences"], json!(["\\n"]));
}
