//! `translate_error`: Google's error envelope at every common status, and
//! bodies that are not one.

use serde_json::{json, Value};

use super::super::translate_error;

fn translate(status: u16, body: &[u8]) -> Value {
    serde_json::from_slice(&translate_error(status, body)).expect("JSON")
}

fn gemini(code: u16, status: &str, message: &str) -> Vec<u8> {
    json!({"error": {"code": code, "message": message, "status": status, "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"}
    ]}})
    .to_string()
    .into_bytes()
}

#[test]
fn each_gemini_error_keeps_its_message_and_names_its_status_as_the_code() {
    for (status, code, openai_type) in [
        (400, "INVALID_ARGUMENT", "invalid_request_error"),
        (400, "FAILED_PRECONDITION", "invalid_request_error"),
        (403, "PERMISSION_DENIED", "invalid_request_error"),
        (404, "NOT_FOUND", "invalid_request_error"),
        (429, "RESOURCE_EXHAUSTED", "invalid_request_error"),
        (500, "INTERNAL", "upstream_error"),
        (503, "UNAVAILABLE", "upstream_error"),
        (504, "DEADLINE_EXCEEDED", "upstream_error"),
    ] {
        let message = format!("{code} happened");
        assert_eq!(
            translate(status, &gemini(status, code, &message)),
            json!({"error": {"message": message, "type": openai_type, "param": null, "code": code}}),
            "{status}"
        );
    }
}

#[test]
fn googles_quota_answer_translates() {
    let body = br#"{
      "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}]}]
      }
    }"#;
    assert_eq!(
        String::from_utf8(translate_error(429, body)).unwrap(),
        r#"{"error":{"code":"RESOURCE_EXHAUSTED","message":"You exceeded your current quota, please check your plan and billing details.","param":null,"type":"invalid_request_error"}}"#
    );
}

#[test]
fn an_array_of_envelopes_reads_its_first() {
    let body = format!(
        "[{}]",
        String::from_utf8(gemini(400, "INVALID_ARGUMENT", "Bad")).unwrap()
    );
    assert_eq!(translate(400, body.as_bytes())["error"]["message"], "Bad");
}

#[test]
fn a_missing_status_or_message_is_filled_in_from_the_http_status() {
    let out = translate(
        401,
        br#"{"error":{"code":401,"message":"API key not valid."}}"#,
    );
    assert_eq!(out["error"]["code"], "UNAUTHENTICATED");
    assert_eq!(out["error"]["message"], "API key not valid.");
    let out = translate(503, br#"{"error":{"status":"UNAVAILABLE","message":""}}"#);
    assert_eq!(
        out["error"]["message"],
        "The Gemini upstream answered 503 (UNAVAILABLE) without a message."
    );
    assert_eq!(out["error"]["type"], "upstream_error");
}

#[test]
fn a_body_that_is_not_a_gemini_error_names_the_status() {
    for (status, code) in [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (413, "INVALID_ARGUMENT"),
        (429, "RESOURCE_EXHAUSTED"),
        (502, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ] {
        for body in [
            &b"<html>Bad Gateway</html>"[..],
            b"",
            b"{}",
            b"{\"error\":\"x\"}",
            b"[]",
        ] {
            let out = translate(status, body);
            assert_eq!(out["error"]["code"], code, "{status}");
            assert!(out["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&status.to_string()));
        }
    }
}

#[test]
fn a_long_status_is_bounded() {
    let out = translate(400, &gemini(400, &"X".repeat(10_000), "m"));
    assert_eq!(out["error"]["code"].as_str().unwrap().len(), 64);
}
