//! Bedrock error answers → the OpenAI error body.
//!
//! Bedrock (restJson1) names the error in the `x-amzn-ErrorType` header
//! (`ThrottlingException:http://internal.amazon.com/coral/…`; the part
//! before `:` is the name) and puts the text in the body,
//! `{"message":"…"}` (some errors spell it `Message`). The body may also
//! carry `__type`, used when the header is missing. The OpenAI body keeps
//! Bedrock's message and names the exception as its `code`; its `type`
//! says whose fault it is, from the status:
//!
//! | Bedrock exception | status | OpenAI `type` | OpenAI `code` |
//! |---|---|---|---|
//! | `ValidationException` | 400 | `invalid_request_error` | `ValidationException` |
//! | `ServiceQuotaExceededException` | 400 | `invalid_request_error` | `ServiceQuotaExceededException` |
//! | `AccessDeniedException` | 403 | `invalid_request_error` | `AccessDeniedException` |
//! | `UnrecognizedClientException`, `InvalidSignatureException`, `ExpiredTokenException` | 403 | `invalid_request_error` | the name |
//! | `ResourceNotFoundException` | 404 | `invalid_request_error` | `ResourceNotFoundException` |
//! | `ModelTimeoutException` | 408 | `invalid_request_error` | `ModelTimeoutException` |
//! | `ModelErrorException` | 424 | `invalid_request_error` | `ModelErrorException` |
//! | `ThrottlingException` | 429 | `invalid_request_error` | `ThrottlingException` |
//! | `ModelNotReadyException` | 429 | `invalid_request_error` | `ModelNotReadyException` |
//! | `InternalServerException` | 500 | `upstream_error` | `InternalServerException` |
//! | `ServiceUnavailableException` | 503 | `upstream_error` | `ServiceUnavailableException` |
//!
//! The status is the upstream's and is kept by the caller: the router
//! retries and fails over 429 and 5xx by status alone. Any status below
//! 500 gives `invalid_request_error`, any from 500 up `upstream_error`, as
//! for Anthropic. An exception Bedrock adds later becomes the `code` as it
//! is. Without a name (no header, no `__type`) the code is the one Bedrock
//! uses for that status (the table; another 4xx → `ValidationException`,
//! another 5xx → `InternalServerException`). A body that is not a Bedrock
//! error (a proxy's HTML page) gets a message naming the status.

use std::borrow::Cow;

use serde::Deserialize;

use crate::openai::ErrorBody;
use crate::text::prefix_within;

/// Longest `code` taken from an upstream's error type, in bytes.
const MAX_CODE_BYTES: usize = 64;

/// AWS's exceptions for a refused signature or credential, whose messages
/// quote the request's signing material.
fn is_signature_error(code: &str) -> bool {
    matches!(
        code,
        "InvalidSignatureException" | "IncompleteSignatureException" | "SignatureDoesNotMatch"
    )
}

/// A Bedrock error answer -> an OpenAI error body (the table in this
/// module's docs). `error_type` is the `x-amzn-ErrorType` header, if any.
/// A refused signature gets a message of Switchyard's own instead of AWS's,
/// which quotes the signed request.
pub fn translate_error(status: u16, error_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let parsed = serde_json::from_slice::<WireError<'_>>(body).ok();
    let kind = if status >= 500 {
        "upstream_error"
    } else {
        "invalid_request_error"
    };
    let named = error_type
        .map(exception_name)
        .filter(|name| !name.is_empty())
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|p| p.kind.as_deref())
                .map(exception_name)
                .filter(|name| !name.is_empty())
        });
    let code = named.map_or(code_for_status(status), |name| {
        prefix_within(name, MAX_CODE_BYTES)
    });
    let generic;
    let message = match parsed.as_ref().and_then(WireError::message) {
        // AWS quotes the canonical request it expected — the access key id
        // and the session token in it — when it refuses a signature; none
        // of that is the client's to see (ARCHITECTURE.md, invariant 6).
        Some(_) if is_signature_error(code) => {
            generic = format!(
                "Bedrock refused the request's AWS signature ({code}): the upstream's credentials (bedrock.access_key_id, secret_access_key, session_token) are wrong or expired. The router's operator must fix them."
            );
            &generic
        }
        Some(message) => message,
        None if parsed.is_some() => {
            generic = format!("The Bedrock upstream answered {status} ({code}) without a message.");
            &generic
        }
        None => {
            generic = format!(
                "The Bedrock upstream answered {status} with a body that is not a Bedrock error."
            );
            &generic
        }
    };
    ErrorBody {
        message,
        kind,
        param: None,
        code,
    }
    .to_json()
    .into_bytes()
}

/// `ThrottlingException:http://internal…` → `ThrottlingException`;
/// `com.amazon.coral#ThrottlingException` (an `__type`) → `ThrottlingException`.
pub(super) fn exception_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or_default();
    let name = name.rsplit('#').next().unwrap_or_default();
    name.trim()
}

/// The exception Bedrock uses for `status`.
fn code_for_status(status: u16) -> &'static str {
    match status {
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        500.. => "InternalServerException",
        _ => "ValidationException",
    }
}

/// Bedrock's error body (also the payload of a stream's exception message).
#[derive(Deserialize)]
pub(super) struct WireError<'a> {
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(rename = "Message", borrow, default)]
    message_upper: Option<Cow<'a, str>>,
    #[serde(rename = "__type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

impl WireError<'_> {
    /// The message, whichever spelling carried it; `None` when empty.
    pub(super) fn message(&self) -> Option<&str> {
        self.message
            .as_deref()
            .or(self.message_upper.as_deref())
            .filter(|m| !m.is_empty())
    }
}
