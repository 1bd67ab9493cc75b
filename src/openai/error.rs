//! The one OpenAI error body: every error Switchyard answers itself, as a
//! JSON response or as the event that ends a stream it had to cut short.
//!
//! `{"error": {"message", "type", "param", "code"}}` is what the OpenAI SDKs
//! parse into `APIError` (openai-python reads `body["error"]`); a stream
//! event with that body makes them raise instead of returning a silently
//! truncated answer.

use bytes::Bytes;

/// One error, in OpenAI's format.
#[derive(Debug, Clone, Copy)]
pub struct ErrorBody<'a> {
    /// A sentence for the client: what happened and what to do.
    pub message: &'a str,
    /// OpenAI's `type` (`invalid_request_error`, `upstream_error`, …).
    pub kind: &'a str,
    /// The request field at fault, if one is.
    pub param: Option<&'a str>,
    /// A stable, machine-readable `code`.
    pub code: &'a str,
}

impl ErrorBody<'_> {
    /// The JSON body of an error response.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        })
        .to_string()
    }

    /// The SSE event that ends a stream with this error (no `[DONE]` may
    /// follow it).
    pub fn to_event(&self) -> Bytes {
        Bytes::from(format!("data: {}\n\n", self.to_json()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_what_openai_sdks_parse() {
        let body = ErrorBody {
            message: "The model `m` could not be served.",
            kind: "upstream_error",
            param: None,
            code: "upstream_failed",
        };
        let value: serde_json::Value = serde_json::from_str(&body.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {
                "message": "The model `m` could not be served.",
                "type": "upstream_error", "param": null, "code": "upstream_failed"
            }})
        );
        let event = body.to_event();
        assert!(event.starts_with(b"data: {\"error\":"));
        assert!(event.ends_with(b"}\n\n"));
    }
}
