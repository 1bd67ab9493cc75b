//! `translate_error`: the exception named by `x-amzn-ErrorType` (or
//! `__type`), Bedrock's message, the type from the status.

use serde_json::{json, Value};

use super::super::translate_error;

fn translate(status: u16, error_type: Option<&str>, body: &str) -> Value {
    serde_json::from_slice(&translate_error(status, error_type, body.as_bytes())).unwrap()
}

#[test]
fn the_header_names_the_exception_and_the_body_gives_the_message() {
    let cases = [
        (
            400,
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "invalid_request_error",
        ),
        (403, "AccessDeniedException", "invalid_request_error"),
        (404, "ResourceNotFoundException:", "invalid_request_error"),
        (408, "ModelTimeoutException", "invalid_request_error"),
        (424, "ModelErrorException", "invalid_request_error"),
        (
            429,
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/",
            "invalid_request_error",
        ),
        (429, "ModelNotReadyException", "invalid_request_error"),
        (500, "InternalServerException", "upstream_error"),
        (503, "ServiceUnavailableException", "upstream_error"),
    ];
    for (status, header, kind) in cases {
        let name = header.split(':').next().unwrap();
        assert_eq!(
            translate(
                status,
                Some(header),
                r#"{"message":"Too many requests, please wait before trying again."}"#
            ),
            json!({"error": {
                "message": "Too many requests, please wait before trying again.",
                "type": kind, "param": null, "code": name,
            }}),
            "{header}"
        );
    }
}

#[test]
fn message_in_either_case_and_type_from_the_body_without_the_header() {
    let body = r#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"The security token included in the request is invalid."}"#;
    assert_eq!(
        translate(403, None, body),
        json!({"error": {
            "message": "The security token included in the request is invalid.",
            "type": "invalid_request_error", "param": null, "code": "UnrecognizedClientException",
        }})
    );
}

#[test]
fn without_a_name_the_status_gives_the_code_and_a_foreign_body_a_message() {
    let v = translate(429, None, r#"{"message":"slow down"}"#);
    assert_eq!(v["error"]["code"], "ThrottlingException");
    assert_eq!(v["error"]["message"], "slow down");
    let v = translate(502, None, "<html>Bad Gateway</html>");
    assert_eq!(v["error"]["type"], "upstream_error");
    assert_eq!(v["error"]["code"], "InternalServerException");
    assert_eq!(
        v["error"]["message"],
        "The Bedrock upstream answered 502 with a body that is not a Bedrock error."
    );
    let v = translate(400, Some("ValidationException"), "{}");
    assert_eq!(
        v["error"]["message"],
        "The Bedrock upstream answered 400 (ValidationException) without a message."
    );
    let long = "X".repeat(200);
    let v = translate(400, Some(&long), "{}");
    assert_eq!(v["error"]["code"].as_str().unwrap().len(), 64);
}
