//! `translate_response`: AWS's documented Converse answers, tool use, the
//! answer tool, usage with the prompt cache, and unreadable bodies.

use serde_json::{json, Value};

use super::super::translate_response;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn translate(body: &str) -> Value {
    let out = translate_response(body.as_bytes(), MODEL).expect("a Converse answer");
    let mut v: Value = serde_json::from_slice(&out).unwrap();
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && id.len() == 33, "{id}");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    v["id"] = json!("ID");
    v["created"] = json!(0);
    v
}

#[test]
fn a_text_answer() {
    let body = r#"{"output":{"message":{"role":"assistant","content":[{"text":"Here is a list of 3 pop songs by artists from the United Kingdom:"},{"text":" ..."}]}},"stopReason":"end_turn","usage":{"inputTokens":125,"outputTokens":60,"totalTokens":185},"metrics":{"latencyMs":1175}}"#;
    assert_eq!(
        translate(body),
        json!({
            "id": "ID", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant",
                "content": "Here is a list of 3 pop songs by artists from the United Kingdom: ...",
                "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 125, "completion_tokens": 60, "total_tokens": 185,
                "prompt_tokens_details": {"cached_tokens": 0}},
        })
    );
}

#[test]
fn a_tool_use_answer_keeps_the_input_as_written() {
    let body = r#"{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q","name":"top_song","input":{"sign":"WZPZ","b":1,"a":2}}}]}},"stopReason":"tool_use","usage":{"inputTokens":375,"outputTokens":71,"totalTokens":446,"cacheReadInputTokens":1000,"cacheWriteInputTokens":24}}"#;
    let v = translate(body);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"],
        json!([{"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "type": "function",
            "function": {"name": "top_song", "arguments": r#"{"sign":"WZPZ","b":1,"a":2}"#}}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 1399, "completion_tokens": 71, "total_tokens": 1470,
            "prompt_tokens_details": {"cached_tokens": 1000}})
    );
}

#[test]
fn the_answer_tool_is_the_content_and_reasoning_is_dropped() {
    let body = r#"{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"think","signature":"s"}}},{"text":"Sure:"},{"toolUse":{"toolUseId":"t","name":"switchyard_json_answer","input":{"city":"Oslo"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#;
    let v = translate(body);
    assert_eq!(v["choices"][0]["message"]["content"], r#"{"city":"Oslo"}"#);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
}

#[test]
fn stop_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_tool_use", "stop"),
    ] {
        let body = format!(
            r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"x"}}]}}}},"stopReason":"{stop}"}}"#
        );
        assert_eq!(
            translate(&body)["choices"][0]["finish_reason"],
            finish,
            "{stop}"
        );
    }
}

#[test]
fn ids_differ_and_unreadable_bodies_are_none() {
    let body = br#"{"output":{"message":{"content":[]}}}"#;
    let a: Value = serde_json::from_slice(&translate_response(body, MODEL).unwrap()).unwrap();
    let b: Value = serde_json::from_slice(&translate_response(body, MODEL).unwrap()).unwrap();
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["choices"][0]["message"]["content"], "");
    for bad in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        br#"{"output":{}}"#,
        br#"{"output":{"message":{"content":{}}}}"#,
        b"<html>",
    ] {
        assert!(
            translate_response(bad, MODEL).is_none(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
