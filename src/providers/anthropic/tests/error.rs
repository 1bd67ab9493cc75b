//! `translate_error`: every status and type of PROTOCOLS.md 7.5.

use serde_json::{json, Value};

use super::super::translate_error;

fn translate(status: u16, body: &[u8]) -> Value {
    serde_json::from_slice(&translate_error(status, body)).expect("JSON")
}

fn anthropic(kind: &str, message: &str) -> Vec<u8> {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011"})
        .to_string()
        .into_bytes()
}

#[test]
fn each_anthropic_error_keeps_its_message_and_names_its_type_as_the_code() {
    for (status, kind, openai_type) in [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "invalid_request_error"),
        (403, "permission_error", "invalid_request_error"),
        (404, "not_found_error", "invalid_request_error"),
        (413, "request_too_large", "invalid_request_error"),
        (429, "rate_limit_error", "invalid_request_error"),
        (500, "api_error", "upstream_error"),
        (529, "overloaded_error", "upstream_error"),
    ] {
        let message = format!("{kind} happened");
        assert_eq!(
            translate(status, &anthropic(kind, &message)),
            json!({"error": {"message": message, "type": openai_type, "param": null, "code": kind}}),
            "{status}"
        );
    }
}

#[test]
fn a_new_error_type_becomes_the_code_as_it_is() {
    let out = translate(503, &anthropic("billing_error", "Pay up."));
    assert_eq!(out["error"]["code"], "billing_error");
    assert_eq!(out["error"]["type"], "upstream_error");
    let long = "x".repeat(300);
    let out = translate(400, &anthropic(&long, "m"));
    assert_eq!(out["error"]["code"].as_str().unwrap().len(), 64);
}

#[test]
fn unreadable_bodies_name_the_status_and_its_anthropic_code() {
    for (status, code) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (418, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (529, "overloaded_error"),
    ] {
        for body in [
            &b"<html>413 Request Entity Too Large</html>"[..],
            b"",
            b"{\"error\":\"flat\"}",
        ] {
            let out = translate(status, body);
            assert_eq!(out["error"]["code"], code, "{status}");
            assert_eq!(out["error"]["param"], Value::Null);
            let message = out["error"]["message"].as_str().unwrap();
            assert!(message.contains(&status.to_string()), "{message}");
        }
    }
}

#[test]
fn a_missing_message_or_type_is_filled_in() {
    let out = translate(
        429,
        br#"{"type":"error","error":{"type":"rate_limit_error"}}"#,
    );
    assert_eq!(out["error"]["code"], "rate_limit_error");
    assert!(out["error"]["message"].as_str().unwrap().contains("429"));
    let out = translate(500, br#"{"error":{"message":"Internal"}}"#);
    assert_eq!(out["error"]["message"], "Internal");
    assert_eq!(out["error"]["code"], "api_error");
}

#[test]
fn an_openai_shaped_error_from_a_compatible_proxy_reads_too() {
    let body = br#"{"error":{"message":"Bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    let out = translate(401, body);
    assert_eq!(out["error"]["message"], "Bad key");
    assert_eq!(out["error"]["code"], "invalid_request_error");
}
