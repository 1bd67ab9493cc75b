//! `translate_response`: messages, tool calls, finish reasons, usage.

use serde_json::{json, Value};

use super::super::translate_response;

fn translate(body: Value) -> Value {
    let out = translate_response(body.to_string().as_bytes()).expect("a readable message");
    let mut out: Value = serde_json::from_slice(&out).expect("JSON");
    let created = out["created"].as_u64().expect("created is a number");
    assert!(created > 1_700_000_000, "created is now: {created}");
    out["created"] = json!(0);
    out
}

fn message(content: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": content, "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    })
}

#[test]
fn a_text_answer_becomes_a_chat_completion() {
    let out = translate(message(
        json!([{"type": "text", "text": "Hi!"}]),
        "end_turn",
    ));
    assert_eq!(
        out,
        json!({
            "id": "msg_01", "object": "chat.completion", "created": 0, "model": "claude-sonnet-4-5-20250929",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18, "prompt_tokens_details": {"cached_tokens": 0}},
        })
    );
}

#[test]
fn tool_use_blocks_become_tool_calls_with_the_input_as_written() {
    let body = r#"{"id":"msg_02","type":"message","role":"assistant","model":"claude","content":[
        {"type":"text","text":"Let me check "},
        {"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Oslo","units":"metric"}},
        {"type":"text","text":"both."},
        {"type":"tool_use","id":"toolu_02","name":"now","input":{}}
    ],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7}}"#;
    let out = translate_response(body.as_bytes()).unwrap();
    let raw = String::from_utf8(out).unwrap();
    assert!(
        raw.contains(r#""arguments":"{\"city\":\"Oslo\",\"units\":\"metric\"}""#),
        "{raw}"
    );
    let out: Value = serde_json::from_str(&raw).unwrap();
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me check both.");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\",\"units\":\"metric\"}"}},
            {"id": "toolu_02", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        ])
    );
}

#[test]
fn an_answer_of_only_tool_calls_has_null_content() {
    let out = translate(message(
        json!([{"type": "tool_use", "id": "t", "name": "f", "input": {"x": 1}}]),
        "tool_use",
    ));
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"x\":1}"
    );
}

#[test]
fn an_empty_answer_has_empty_content() {
    let out = translate(message(json!([]), "max_tokens"));
    assert_eq!(out["choices"][0]["message"]["content"], "");
    assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(out["choices"][0]["finish_reason"], "length");
}

#[test]
fn thinking_and_unknown_blocks_are_dropped() {
    let out = translate(message(
        json!([
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": "A"},
            {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}},
            {"type": "some_future_block", "text": "no"},
            {"type": "text", "text": "B"},
        ]),
        "end_turn",
    ));
    assert_eq!(out["choices"][0]["message"]["content"], "AB");
    assert!(out["choices"][0]["message"].get("tool_calls").is_none());
}

#[test]
fn every_stop_reason_maps_to_a_finish_reason() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ] {
        let out = translate(message(json!([{"type": "text", "text": "x"}]), stop));
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop}");
    }
    let mut null_stop = message(json!([]), "x");
    null_stop["stop_reason"] = Value::Null;
    assert_eq!(translate(null_stop)["choices"][0]["finish_reason"], "stop");
}

#[test]
fn usage_counts_cache_reads_and_writes_as_prompt_tokens() {
    let mut body = message(json!([{"type": "text", "text": "x"}]), "end_turn");
    body["usage"] = json!({
        "input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 4000, "service_tier": "standard",
        "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 0},
    });
    assert_eq!(
        translate(body)["usage"],
        json!({"prompt_tokens": 4310, "completion_tokens": 20, "total_tokens": 4330, "prompt_tokens_details": {"cached_tokens": 4000}})
    );
    let mut nulls = message(json!([]), "end_turn");
    nulls["usage"] = json!({"input_tokens": 3, "output_tokens": 1, "cache_creation_input_tokens": null, "cache_read_input_tokens": null});
    assert_eq!(translate(nulls)["usage"]["prompt_tokens"], 3);
    let mut missing = message(json!([]), "end_turn");
    missing.as_object_mut().unwrap().remove("usage");
    assert_eq!(translate(missing)["usage"]["total_tokens"], 0);
}

#[test]
fn unreadable_bodies_are_none() {
    for body in [
        &b""[..],
        b"not json",
        b"[]",
        b"{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}",
        b"{\"id\":\"msg\",\"type\":\"message\"}",
        b"{\"id\":\"msg\",\"type\":\"message\",\"content\":\"text\"}",
        b"{\"id\":\"msg\",\"type\":\"message\",\"content\":[{\"text\":\"no type\"}]}",
        b"{\"type\":\"message\",\"content\":[],\"usage\":{\"input_tokens\":-1}}",
    ] {
        assert_eq!(
            translate_response(body),
            None,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
