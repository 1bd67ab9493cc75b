//! `response_from_openai`: content, tool calls, stop reasons, usage.

use serde_json::{json, Value};

use super::super::response_from_openai;

const MODEL: &str = "claude-sonnet-4-5";

fn translate(body: Value) -> Value {
    let out = response_from_openai(body.to_string().as_bytes(), MODEL).expect("a chat completion");
    serde_json::from_slice(&out).expect("JSON")
}

fn completion(message: Value, finish: Value, usage: Value) -> Value {
    json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage
    })
}

#[test]
fn a_text_answer_translates_exactly() {
    let body = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"service_tier":"default"}"#;
    let out = response_from_openai(body.as_bytes(), MODEL).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"id":"msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello! How can I assist you today?"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":19,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":10}}"#
    );
}

#[test]
fn tool_calls_become_tool_use_blocks_after_the_text() {
    let out = translate(completion(
        json!({"role": "assistant", "content": "Let me check both.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Oslo\", \"unit\": \"celsius\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
        ]}),
        json!("tool_calls"),
        json!({"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99}),
    ));
    assert_eq!(
        out["content"],
        json!([
            {"type": "text", "text": "Let me check both."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Oslo", "unit": "celsius"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
        ])
    );
    assert_eq!(out["stop_reason"], "tool_use");
}

#[test]
fn tool_input_keeps_the_upstreams_key_order_and_bad_arguments_are_kept_raw() {
    let body = completion(
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"zeta\":1,\"alpha\":2}"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{\"city\": \"Os"}},
            {"id": "c", "type": "function", "function": {"name": "h", "arguments": "[1]"}}
        ]}),
        json!("tool_calls"),
        Value::Null,
    );
    let out = String::from_utf8(response_from_openai(body.to_string().as_bytes(), MODEL).unwrap())
        .unwrap();
    assert!(out.contains(r#""input":{"zeta":1,"alpha":2}"#), "{out}");
    assert!(
        out.contains(r#""input":{"_raw":"{\"city\": \"Os"}"#),
        "{out}"
    );
    assert!(out.contains(r#""input":{"_raw":"[1]"}"#), "{out}");
    assert!(
        out.contains(r#""content":[{"type":"tool_use""#),
        "no empty text block: {out}"
    );
}

#[test]
fn finish_reasons_map_to_stop_reasons() {
    let tool_call =
        json!([{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]);
    for (finish, tools, expected) in [
        (json!("stop"), false, "end_turn"),
        (json!("length"), false, "max_tokens"),
        (json!("tool_calls"), true, "tool_use"),
        (json!("function_call"), true, "tool_use"),
        (json!("content_filter"), false, "refusal"),
        (Value::Null, false, "end_turn"),
        (json!("something_new"), false, "end_turn"),
        // Ollama and others finish tool calls with `stop`.
        (json!("stop"), true, "tool_use"),
        (json!("length"), true, "max_tokens"),
    ] {
        let mut message = json!({"role": "assistant", "content": "x"});
        if tools {
            message["tool_calls"] = tool_call.clone();
        }
        let out = translate(completion(message, finish.clone(), Value::Null));
        assert_eq!(out["stop_reason"], expected, "{finish} tools {tools}");
        assert_eq!(out["stop_sequence"], Value::Null);
    }
}

#[test]
fn vllms_stop_reason_string_names_the_stop_sequence() {
    let mut body = completion(
        json!({"role": "assistant", "content": "1, 2, 3"}),
        json!("stop"),
        Value::Null,
    );
    body["choices"][0]["stop_reason"] = json!("\n\n");
    let out = translate(body.clone());
    assert_eq!(
        (out["stop_reason"].clone(), out["stop_sequence"].clone()),
        (json!("stop_sequence"), json!("\n\n"))
    );
    // A stop token id is not a sequence.
    body["choices"][0]["stop_reason"] = json!(128009);
    let out = translate(body);
    assert_eq!(
        (out["stop_reason"].clone(), out["stop_sequence"].clone()),
        (json!("end_turn"), Value::Null)
    );
}

#[test]
fn cached_prompt_tokens_are_cache_reads_and_not_input() {
    let out = translate(completion(
        json!({"role": "assistant", "content": "ok"}),
        json!("stop"),
        json!({"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306, "prompt_tokens_details": {"cached_tokens": 1920}}),
    ));
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 86, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1920, "output_tokens": 300})
    );
    // Absurd or malformed counts read as 0; cached never exceeds the prompt.
    let out = translate(completion(
        json!({"role": "assistant", "content": "ok"}),
        json!("stop"),
        json!({"prompt_tokens": 10, "completion_tokens": -3, "prompt_tokens_details": {"cached_tokens": 99}}),
    ));
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10, "output_tokens": 0})
    );
}

#[test]
fn reasoning_becomes_a_thinking_block_first() {
    for field in ["reasoning_content", "reasoning"] {
        let mut message = json!({"role": "assistant", "content": "42"});
        message[field] = json!("6 times 7.");
        let out = translate(completion(message, json!("stop"), Value::Null));
        assert_eq!(
            out["content"],
            json!([{"type": "thinking", "thinking": "6 times 7.", "signature": ""}, {"type": "text", "text": "42"}]),
            "{field}"
        );
    }
}

#[test]
fn a_refusal_is_the_text_and_the_stop_reason() {
    let out = translate(completion(
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
        json!("stop"),
        Value::Null,
    ));
    assert_eq!(
        out["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(out["stop_reason"], "refusal");
}

#[test]
fn content_parts_ids_and_choices_are_read_leniently() {
    let out = translate(json!({
        "choices": [
            {"index": 1, "message": {"content": "second"}, "finish_reason": "stop"},
            {"index": 0, "message": {"content": [{"type": "text", "text": "fir"}, {"type": "text", "text": "st"}]}, "finish_reason": "length"}
        ]
    }));
    assert_eq!(out["content"], json!([{"type": "text", "text": "first"}]));
    assert_eq!(out["stop_reason"], "max_tokens");
    assert!(
        out["id"].as_str().unwrap().starts_with("msg_"),
        "{}",
        out["id"]
    );
    assert_eq!(out["usage"]["output_tokens"], 0);
    assert_eq!(out["model"], MODEL);
    let empty = translate(json!({"id": "x", "choices": []}));
    assert_eq!(empty["content"], json!([]));
    assert_eq!(empty["stop_reason"], "end_turn");
    let generated = translate(
        json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}]}),
    );
    assert!(generated["content"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("toolu_"));
}

#[test]
fn bodies_that_are_not_completions_give_none() {
    for body in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"choices\":{}}",
        b"{\"error\":{\"message\":\"x\"}}",
        b"\xff",
    ] {
        assert_eq!(
            response_from_openai(body, MODEL),
            None,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
