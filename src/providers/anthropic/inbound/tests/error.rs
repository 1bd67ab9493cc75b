//! `error_type`, `error_from_openai`, `error_body`: Anthropic's envelope.

use serde_json::{json, Value};

use super::super::{error_body, error_from_openai, error_type, MAX_MESSAGE_BYTES};

fn translate(status: u16, body: &[u8]) -> Value {
    serde_json::from_slice(&error_from_openai(status, body)).expect("JSON")
}

#[test]
fn each_status_has_anthropics_error_type() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (599, "api_error"),
        (200, "api_error"),
        (0, "api_error"),
    ] {
        assert_eq!(error_type(status), kind, "{status}");
    }
}

#[test]
fn an_openai_error_keeps_its_message_under_the_status_type() {
    let body = br#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 749.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
    assert_eq!(
        String::from_utf8(error_from_openai(429, body)).unwrap(),
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 749."}}"#
    );
    let out = translate(400, br#"{"error":{"message":"Invalid 'messages[1].content': string too long.","type":"invalid_request_error","param":"messages[1].content","code":"string_above_max_length"}}"#);
    assert_eq!(
        out,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Invalid 'messages[1].content': string too long."}})
    );
}

#[test]
fn vllm_and_ollama_error_shapes_are_read() {
    // vLLM: a top-level message; Ollama and llama.cpp variants: a string error.
    let vllm = translate(404, br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#);
    assert_eq!(
        vllm["error"],
        json!({"type": "not_found_error", "message": "The model `x` does not exist."})
    );
    let ollama = translate(500, br#"{"error":"model runner has unexpectedly stopped"}"#);
    assert_eq!(
        ollama["error"],
        json!({"type": "api_error", "message": "model runner has unexpectedly stopped"})
    );
}

#[test]
fn unreadable_bodies_give_a_message_naming_the_status() {
    for body in [
        &b"<html>502 Bad Gateway</html>"[..],
        b"",
        b"[]",
        b"\xff\xfe",
    ] {
        let out = translate(502, body);
        assert_eq!(out["type"], "error");
        assert_eq!(out["error"]["type"], "api_error");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("502") && message.contains("not an OpenAI error"),
            "{message}"
        );
    }
    let out = translate(503, br#"{"error":{"type":"server_error"}}"#);
    assert_eq!(
        out["error"],
        json!({"type": "overloaded_error", "message": "The OpenAI-compatible upstream answered 503 (overloaded_error) without a message."})
    );
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let long = "é".repeat(MAX_MESSAGE_BYTES);
    let body = json!({"error": {"message": long}}).to_string();
    let out = translate(400, body.as_bytes());
    let message = out["error"]["message"].as_str().unwrap();
    assert!(message.len() <= MAX_MESSAGE_BYTES && message.len() >= MAX_MESSAGE_BYTES - 1);
}

#[test]
fn the_routers_own_errors_use_the_same_envelope() {
    assert_eq!(
        String::from_utf8(error_body(
            404,
            "The model `x` does not exist; ask GET /v1/models."
        ))
        .unwrap(),
        r#"{"type":"error","error":{"type":"not_found_error","message":"The model `x` does not exist; ask GET /v1/models."}}"#
    );
    let out: Value = serde_json::from_slice(&error_body(529, "quote \" and\nnewline")).unwrap();
    assert_eq!(out["error"]["message"], "quote \" and\nnewline");
    assert_eq!(out["error"]["type"], "overloaded_error");
}
