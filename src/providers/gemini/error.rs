//! Gemini error answers → the OpenAI error body.
//!
//! Gemini answers Google's RPC error envelope,
//! `{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED","details":[…]}}`
//! (and, from some front ends, the same envelope inside a one-element
//! array). The OpenAI body keeps Gemini's message and names Gemini's
//! `status` as its `code`; its `type` says whose fault it is, from the
//! HTTP status:
//!
//! | status | Gemini `error.status` | OpenAI `type` | OpenAI `code` |
//! |---|---|---|---|
//! | 400 | `INVALID_ARGUMENT`, `FAILED_PRECONDITION` | `invalid_request_error` | the same |
//! | 401 | `UNAUTHENTICATED` | `invalid_request_error` | `UNAUTHENTICATED` |
//! | 403 | `PERMISSION_DENIED` | `invalid_request_error` | `PERMISSION_DENIED` |
//! | 404 | `NOT_FOUND` | `invalid_request_error` | `NOT_FOUND` |
//! | 429 | `RESOURCE_EXHAUSTED` | `invalid_request_error` | `RESOURCE_EXHAUSTED` |
//! | 500 | `INTERNAL` | `upstream_error` | `INTERNAL` |
//! | 503 | `UNAVAILABLE` | `upstream_error` | `UNAVAILABLE` |
//! | 504 | `DEADLINE_EXCEEDED` | `upstream_error` | `DEADLINE_EXCEEDED` |
//!
//! Any status below 500 gives `invalid_request_error`, any from 500 up
//! `upstream_error`. A `status` string Gemini adds later becomes the `code`
//! as it is (at most [`MAX_CODE_BYTES`]); `details` (quota violations, retry
//! delays, help links) are dropped. A body that is not a Gemini error (a
//! proxy's HTML page) gets a message naming the HTTP status and the
//! `status` Google uses for it (the table; another 4xx →
//! `INVALID_ARGUMENT`, another 5xx → `INTERNAL`).

use std::borrow::Cow;

use serde::Deserialize;

use crate::openai::ErrorBody;
use crate::text::prefix_within;

/// Longest `code` taken from an upstream's error status, in bytes.
pub(super) const MAX_CODE_BYTES: usize = 64;

/// A Gemini error answer (any status, body `{"error":{"code","message","status"}}`
/// or anything else) -> an OpenAI error body (the table in this module's docs).
///
/// Unreadable bodies give a generic message naming the status.
pub fn translate_error(status: u16, body: &[u8]) -> Vec<u8> {
    let detail = read_detail(body);
    let kind = if status >= 500 {
        "upstream_error"
    } else {
        "invalid_request_error"
    };
    let generic;
    let (message, code) = match &detail {
        Some(detail) => {
            let code = detail.code().unwrap_or(code_for_status(status));
            let message = match detail.message.as_deref() {
                Some(message) if !message.is_empty() => message,
                _ => {
                    generic = format!(
                        "The Gemini upstream answered {status} ({code}) without a message."
                    );
                    &generic
                }
            };
            (message, code)
        }
        None => {
            generic = format!(
                "The Gemini upstream answered {status} with a body that is not a Gemini error."
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

/// The `error` object of a body: the envelope, or the first of an array of
/// envelopes.
fn read_detail(body: &[u8]) -> Option<ErrorDetail<'_>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        serde_json::from_slice::<Vec<Envelope<'_>>>(body)
            .ok()?
            .into_iter()
            .next()?
            .error
    } else {
        serde_json::from_slice::<Envelope<'_>>(body).ok()?.error
    }
}

/// The `status` Google uses for an HTTP status.
fn code_for_status(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500.. => "INTERNAL",
        _ => "INVALID_ARGUMENT",
    }
}

/// `{"error": {...}}`: nothing else of the envelope is read.
#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub(super) error: Option<ErrorDetail<'a>>,
}

/// Google's RPC error object (also the payload of a stream's error event).
/// `code` (the HTTP status again) and `details` are skipped.
#[derive(Deserialize)]
pub(super) struct ErrorDetail<'a> {
    #[serde(borrow, default)]
    pub(super) message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) status: Option<Cow<'a, str>>,
}

impl ErrorDetail<'_> {
    /// Gemini's `status`, bounded; `None` when absent or empty.
    pub(super) fn code(&self) -> Option<&str> {
        self.status
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| prefix_within(s, MAX_CODE_BYTES))
    }
}
