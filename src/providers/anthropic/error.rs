//! Anthropic error answers → the OpenAI error body.
//!
//! Anthropic answers `{"type":"error","error":{"type","message"},"request_id"}`
//! (PROTOCOLS.md 7.5). The OpenAI body keeps Anthropic's message and names
//! Anthropic's error type as its `code`; its `type` says whose fault it is,
//! from the status:
//!
//! | status | Anthropic `error.type` | OpenAI `type` | OpenAI `code` |
//! |---|---|---|---|
//! | 400 | `invalid_request_error` | `invalid_request_error` | `invalid_request_error` |
//! | 401 | `authentication_error` | `invalid_request_error` | `authentication_error` |
//! | 403 | `permission_error` | `invalid_request_error` | `permission_error` |
//! | 404 | `not_found_error` | `invalid_request_error` | `not_found_error` |
//! | 413 | `request_too_large` | `invalid_request_error` | `request_too_large` |
//! | 429 | `rate_limit_error` | `invalid_request_error` | `rate_limit_error` |
//! | 500 | `api_error` | `upstream_error` | `api_error` |
//! | 529 | `overloaded_error` | `upstream_error` | `overloaded_error` |
//!
//! Any status below 500 gives `invalid_request_error`, any from 500 up
//! `upstream_error` (the crate's type for an upstream's failure). A type
//! Anthropic adds later becomes the `code` as it is. A body that is not an
//! Anthropic error (a proxy's HTML page, Cloudflare's 413) gets a message
//! naming the status and the code Anthropic uses for that status (the table;
//! another 4xx → `invalid_request_error`, another 5xx → `api_error`).

use std::borrow::Cow;

use serde::Deserialize;

use crate::openai::ErrorBody;
use crate::text::prefix_within;

/// Longest `code` taken from an upstream's error type, in bytes.
const MAX_CODE_BYTES: usize = 64;

/// An Anthropic error answer (any status, body `{"type":"error","error":{"type","message"}}`
/// or anything else) -> an OpenAI error body (the table in this module's docs).
///
/// Unreadable bodies give a generic message naming the status.
pub fn translate_error(status: u16, body: &[u8]) -> Vec<u8> {
    let detail = serde_json::from_slice::<Envelope<'_>>(body)
        .ok()
        .and_then(|envelope| envelope.error);
    let kind = if status >= 500 {
        "upstream_error"
    } else {
        "invalid_request_error"
    };
    let generic;
    let (message, code) = match &detail {
        Some(detail) => {
            let code = detail
                .kind
                .as_deref()
                .filter(|kind| !kind.is_empty())
                .map_or(code_for_status(status), |kind| {
                    prefix_within(kind, MAX_CODE_BYTES)
                });
            let message = match detail.message.as_deref() {
                Some(message) if !message.is_empty() => message,
                _ => {
                    generic = format!(
                        "The Anthropic upstream answered {status} ({code}) without a message."
                    );
                    &generic
                }
            };
            (message, code)
        }
        None => {
            generic = format!(
                "The Anthropic upstream answered {status} with a body that is not an Anthropic error."
            );
            (generic.as_str(), code_for_status(status))
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

/// The error type Anthropic uses for `status` (PROTOCOLS.md 7.5).
fn code_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500.. => "api_error",
        _ => "invalid_request_error",
    }
}

/// `{"error": {...}}`: the rest of Anthropic's envelope is skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    error: Option<ErrorDetail<'a>>,
}

/// Anthropic's `error` object (also the payload of a stream's `error` event).
#[derive(Deserialize)]
pub(super) struct ErrorDetail<'a> {
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) message: Option<Cow<'a, str>>,
}
