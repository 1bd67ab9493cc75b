//! `request_to_openai` and `peek`: every mapped field, every refusal.

use serde_json::{json, Value};

use super::super::{peek, request_to_openai, Peek};
use crate::providers::RequestError;

fn translate_str(body: &str) -> String {
    match request_to_openai(body.as_bytes()) {
        Ok(out) => String::from_utf8(out).expect("UTF-8"),
        Err(e) => panic!("{body} was refused: {e:?}"),
    }
}

fn translate(body: Value) -> Value {
    serde_json::from_str(&translate_str(&body.to_string())).expect("the translation is JSON")
}

/// A one-message Messages request with `extra` members merged in.
fn with(extra: Value) -> Value {
    let mut body = json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello, Claude"}]});
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    body
}

fn refuse(body: Value) -> RequestError {
    match request_to_openai(body.to_string().as_bytes()) {
        Ok(out) => panic!("{body} was translated: {}", String::from_utf8_lossy(&out)),
        Err(e) => e,
    }
}

fn messages(messages: Value) -> Value {
    translate(with(json!({ "messages": messages })))["messages"].clone()
}

#[test]
fn the_basic_request_of_anthropics_docs_translates_exactly() {
    assert_eq!(
        translate_str(
            r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude"}]}"#
        ),
        r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello, Claude"}],"max_tokens":1024}"#
    );
}

#[test]
fn system_blocks_become_one_leading_system_message_without_cache_control() {
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,
        "system":[{"type":"text","text":"You are a helpful assistant."},
                  {"type":"text","text":"Be terse.","cache_control":{"type":"ephemeral"}}],
        "messages":[{"role":"user","content":"Hello, Claude"}]}"#;
    assert_eq!(
        translate_str(body),
        r#"{"model":"claude-sonnet-4-5","messages":[{"role":"system","content":"You are a helpful assistant.\n\nBe terse."},{"role":"user","content":"Hello, Claude"}],"max_tokens":1024}"#
    );
    let string = translate(with(json!({"system": "Be terse."})));
    assert_eq!(
        string["messages"][0],
        json!({"role": "system", "content": "Be terse."})
    );
    let empty = translate(with(json!({"system": ""})));
    assert_eq!(empty["messages"].as_array().unwrap().len(), 1);
}

#[test]
fn images_become_image_url_parts_next_to_the_text() {
    let out = messages(json!([{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
        {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/a.jpg"}},
        {"type": "text", "text": "What is in these images?"}
    ]}]));
    assert_eq!(
        out,
        json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
            {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/a.jpg"}},
            {"type": "text", "text": "What is in these images?"}
        ]}])
    );
}

#[test]
fn a_user_turn_of_text_blocks_is_one_string() {
    let out = messages(json!([{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>Be careful.</system-reminder>"},
        {"type": "text", "text": "Fix the bug.", "cache_control": {"type": "ephemeral"}}
    ]}]));
    assert_eq!(
        out,
        json!([{"role": "user", "content": "<system-reminder>Be careful.</system-reminder>\n\nFix the bug."}])
    );
}

#[test]
fn the_tool_use_round_trip_of_anthropics_docs_translates_exactly() {
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,
      "tools":[{"name":"get_weather","description":"Get the current weather in a given location","input_schema":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}],
      "messages":[
        {"role":"user","content":"What's the weather like in San Francisco?"},
        {"role":"assistant","content":[
          {"type":"thinking","thinking":"The user wants the weather.","signature":"EqQBCgIYAhIM"},
          {"type":"text","text":"I'll check the weather."},
          {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location": "San Francisco, CA", "unit": "celsius"}}]},
        {"role":"user","content":[
          {"type":"text","text":"Thanks!"},
          {"type":"tool_result","tool_use_id":"toolu_01A09q90qw90lq917835lq9","content":"15 degrees"}]}]}"#;
    assert_eq!(
        translate_str(body),
        concat!(
            r#"{"model":"claude-sonnet-4-5","messages":["#,
            r#"{"role":"user","content":"What's the weather like in San Francisco?"},"#,
            r#"{"role":"assistant","content":"I'll check the weather.","tool_calls":[{"id":"toolu_01A09q90qw90lq917835lq9","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"San Francisco, CA\", \"unit\": \"celsius\"}"}}]},"#,
            r#"{"role":"tool","content":"15 degrees","tool_call_id":"toolu_01A09q90qw90lq917835lq9"},"#,
            r#"{"role":"user","content":"Thanks!"}],"#,
            r#""max_tokens":1024,"#,
            r#""tools":[{"type":"function","function":{"name":"get_weather","description":"Get the current weather in a given location","parameters":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}}]}"#
        )
    );
}

#[test]
fn an_assistant_turn_of_tool_calls_only_has_null_content() {
    let out = messages(json!([
        {"role": "user", "content": "Weather in Oslo and Paris?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Paris"}}
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "3°C"}, {"type": "text", "text": "cloudy"}]},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Unknown city", "is_error": true},
        ]}
    ]));
    assert_eq!(out[1]["content"], Value::Null);
    assert_eq!(out[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        out[1]["tool_calls"][1]["function"]["arguments"],
        r#"{"location":"Paris"}"#
    );
    assert_eq!(
        out[2],
        json!({"role": "tool", "content": "3°C\n\ncloudy", "tool_call_id": "toolu_1"})
    );
    assert_eq!(
        out[3],
        json!({"role": "tool", "content": "Error: Unknown city", "tool_call_id": "toolu_2"})
    );
    assert_eq!(
        out.as_array().unwrap().len(),
        4,
        "no empty user message: {out}"
    );
}

#[test]
fn a_tool_result_without_content_is_an_empty_tool_message() {
    let out = messages(
        json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]),
    );
    assert_eq!(
        out,
        json!([{"role": "tool", "content": "", "tool_call_id": "t"}])
    );
}

#[test]
fn images_in_a_tool_result_move_to_the_user_message_after_it() {
    let out = messages(json!([{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_read", "content": [
            {"type": "text", "text": "screenshot.png"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
        ]},
        {"type": "text", "text": "What does it show?"}
    ]}]));
    assert_eq!(
        out,
        json!([
            {"role": "tool", "content": "screenshot.png\n\n[image: see the next user message]", "tool_call_id": "toolu_read"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "What does it show?"}
            ]}
        ])
    );
}

#[test]
fn thinking_blocks_are_dropped_and_an_empty_assistant_turn_with_them() {
    let out = messages(json!([
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"}]},
        {"role": "user", "content": "Still there?"}
    ]));
    assert_eq!(
        out,
        json!([{"role": "user", "content": "Hi"}, {"role": "user", "content": "Still there?"}])
    );
}

#[test]
fn a_plain_text_document_becomes_its_text() {
    let out = messages(json!([{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."}, "title": "Facts"},
        {"type": "text", "text": "What colour is the grass?"}
    ]}]));
    assert_eq!(
        out,
        json!([{"role": "user", "content": "The grass is green.\n\nWhat colour is the grass?"}])
    );
}

#[test]
fn sampling_stop_user_and_stream_map_and_top_k_and_thinking_drop() {
    let out = translate_str(
        &with(json!({
            "temperature": 0.7, "top_p": 0.95, "top_k": 40,
            "stop_sequences": ["\n\nHuman:", "END"],
            "metadata": {"user_id": "user-123"},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "service_tier": "auto",
            "stream": true
        }))
        .to_string(),
    );
    let value: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        value,
        json!({
            "model": "claude-sonnet-4-5",
            "messages": [{"role": "user", "content": "Hello, Claude"}],
            "max_tokens": 1024, "temperature": 0.7, "top_p": 0.95,
            "stop": ["\n\nHuman:", "END"],
            "stream": true, "stream_options": {"include_usage": true},
            "user": "user-123"
        })
    );
    // Numbers as the client wrote them.
    let out = translate_str(r#"{"model":"m","max_tokens":5,"temperature":1e-1,"messages":[]}"#);
    assert!(out.contains(r#""temperature":1e-1"#), "{out}");
    // No stream_options when not streaming; empty stop_sequences dropped.
    let out = translate(with(json!({"stream": false, "stop_sequences": []})));
    assert!(
        out.get("stream").is_none()
            && out.get("stream_options").is_none()
            && out.get("stop").is_none()
    );
}

#[test]
fn max_tokens_is_kept_absent_when_absent() {
    let out = translate(json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}));
    assert!(out.get("max_tokens").is_none());
}

#[test]
fn tool_choice_variants_map() {
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    for (choice, expected, parallel) in [
        (json!({"type": "auto"}), json!("auto"), None),
        (json!({"type": "any"}), json!("required"), None),
        (json!({"type": "none"}), json!("none"), None),
        (
            json!({"type": "tool", "name": "get_weather"}),
            json!({"type": "function", "function": {"name": "get_weather"}}),
            None,
        ),
        (
            json!({"type": "auto", "disable_parallel_tool_use": true}),
            json!("auto"),
            Some(false),
        ),
        (
            json!({"type": "any", "disable_parallel_tool_use": false}),
            json!("required"),
            None,
        ),
    ] {
        let out = translate(with(json!({"tools": tools, "tool_choice": choice})));
        assert_eq!(out["tool_choice"], expected, "{choice}");
        assert_eq!(
            out.get("parallel_tool_calls").and_then(Value::as_bool),
            parallel,
            "{choice}"
        );
    }
    let none = translate(with(json!({"tools": tools})));
    assert!(none.get("tool_choice").is_none());
    // Without tools: auto and none are dropped (OpenAI refuses them alone).
    for choice in [json!({"type": "auto"}), json!({"type": "none"})] {
        let out = translate(with(json!({ "tool_choice": choice })));
        assert!(out.get("tool_choice").is_none(), "{out}");
    }
}

#[test]
fn tool_schemas_keep_their_key_order_and_strict() {
    let body = r#"{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"custom","name":"z","input_schema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"string"}}},"strict":true,"cache_control":{"type":"ephemeral"}},{"name":"bare"}]}"#;
    let out = translate_str(body);
    assert!(
        out.contains(r#"{"type":"function","function":{"name":"z","parameters":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"string"}}},"strict":true}}"#),
        "{out}"
    );
    assert!(
        out.contains(r#"{"type":"function","function":{"name":"bare","parameters":{"type":"object","properties":{}}}}"#),
        "{out}"
    );
}

#[test]
fn output_format_becomes_a_strict_json_schema() {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false});
    for field in [
        json!({"output_format": {"type": "json_schema", "schema": schema}}),
        json!({"output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}}),
    ] {
        let out = translate(with(field));
        assert_eq!(
            out["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}})
        );
    }
    let effort_only = translate(with(json!({"output_config": {"effort": "high"}})));
    assert!(effort_only.get("response_format").is_none());
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (
            with(
                json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}),
            ),
            Some("tools"),
        ),
        (
            with(json!({"tools": [{"type": "bash_20250124", "name": "bash"}]})),
            Some("tools"),
        ),
        (
            with(
                json!({"tools": [{"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]}),
            ),
            Some("tools"),
        ),
        (
            with(
                json!({"tools": [{"type": "computer_20250124", "name": "computer", "display_width_px": 1024}]}),
            ),
            Some("tools"),
        ),
        (
            with(json!({"tools": [{"description": "no name"}]})),
            Some("tools"),
        ),
        (
            with(json!({"tool_choice": {"type": "any"}})),
            Some("tool_choice"),
        ),
        (
            with(json!({"tool_choice": {"type": "tool", "name": "x"}})),
            Some("tool_choice"),
        ),
        (
            with(json!({"tools": [{"name": "x"}], "tool_choice": {"type": "tool"}})),
            Some("tool_choice"),
        ),
        (
            with(json!({"tools": [{"name": "x"}], "tool_choice": {"type": "sometimes"}})),
            Some("tool_choice"),
        ),
        (
            with(json!({"container": "container_011"})),
            Some("container"),
        ),
        (
            with(
                json!({"mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]}),
            ),
            Some("mcp_servers"),
        ),
        (with(json!({"temperature": 1.5})), Some("temperature")),
        (with(json!({"temperature": "hot"})), Some("temperature")),
        (with(json!({"top_p": -0.1})), Some("top_p")),
        (with(json!({"max_tokens": 0})), Some("max_tokens")),
        (with(json!({"max_tokens": 1.5})), Some("max_tokens")),
        (
            with(json!({"stop_sequences": "END"})),
            Some("stop_sequences"),
        ),
        (with(json!({"stream": "yes"})), Some("stream")),
        (
            with(
                json!({"system": [{"type": "image", "source": {"type": "url", "url": "https://x"}}]}),
            ),
            Some("system"),
        ),
        (
            with(json!({"output_format": {"type": "text"}})),
            Some("output_format"),
        ),
        (json!({"model": "m", "max_tokens": 1}), Some("messages")),
        (json!({"max_tokens": 1, "messages": []}), Some("model")),
        (
            with(json!({"messages": [{"role": "system", "content": "x"}]})),
            Some("messages"),
        ),
        (
            with(json!({"messages": [{"role": "user"}]})),
            Some("messages"),
        ),
        (
            with(
                json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}]}]}),
            ),
            Some("messages"),
        ),
        (
            with(
                json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "file_011"}}]}]}),
            ),
            Some("messages"),
        ),
        (
            with(
                json!({"messages": [{"role": "user", "content": [{"type": "search_result", "source": "https://x", "title": "t", "content": []}]}]}),
            ),
            Some("messages"),
        ),
        (
            with(
                json!({"messages": [{"role": "assistant", "content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}]}]}),
            ),
            Some("messages"),
        ),
        (
            with(
                json!({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "x", "input": {}}]}]}),
            ),
            Some("messages"),
        ),
        (
            with(
                json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]}),
            ),
            Some("messages"),
        ),
    ];
    for (body, param) in cases {
        let e = refuse(body.clone());
        assert_eq!(e.param, param, "{body}: {e:?}");
        assert!(e.message.ends_with('.'), "{e:?}");
    }
    let e = refuse(with(
        json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    ));
    assert!(
        e.message.contains("web_search_20250305") && e.message.contains("OpenAI-compatible target"),
        "{}",
        e.message
    );
}

#[test]
fn bodies_that_are_not_requests_are_refused_as_a_whole() {
    for body in [
        &b"not json"[..],
        b"[1,2]",
        b"",
        b"{\"model\":\"m\",\"model\":\"n\"}",
    ] {
        let e = request_to_openai(body).unwrap_err();
        assert_eq!(e.param, None, "{e:?}");
        assert!(
            e.message.contains("for an OpenAI-compatible target"),
            "{}",
            e.message
        );
    }
}

#[test]
fn peek_reads_model_and_stream() {
    assert_eq!(
        peek(br#"{"max_tokens":1,"stream":true,"model":"claude-x","messages":[]}"#),
        Some(Peek {
            model: "claude-x".to_owned(),
            stream: true
        })
    );
    assert_eq!(
        peek(br#"{"model":"a\"b","stream":"true"}"#),
        Some(Peek {
            model: "a\"b".to_owned(),
            stream: false
        })
    );
    assert_eq!(
        peek(br#"{"model":"m","stream":null}"#).map(|p| p.stream),
        Some(false)
    );
    assert_eq!(peek(br#"{"model":3}"#), None);
    assert_eq!(peek(br#"{"stream":true}"#), None);
    assert_eq!(peek(b"[]"), None);
    assert_eq!(peek(b"{"), None);
}
