//! Errors on the Anthropic door: OpenAI error answers and the router's own
//! errors as Anthropic's envelope `{"type":"error","error":{"type","message"}}`.
//!
//! The envelope's `type` comes from the status ([`error_type`], the table in
//! the module docs of `inbound`); the message is the upstream's, cut to
//! [`MAX_MESSAGE_BYTES`]. The Anthropic SDKs pick their exception class
//! from the status, so the status (kept by the caller) matters most.

use std::borrow::Cow;

use serde::Deserialize;

use crate::json::push_json_string;
use crate::text::prefix_within;

/// Longest message taken from an upstream's error, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Anthropic's error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        // 400 and every other 4xx.
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// An OpenAI error body (any status; or anything else) -> Anthropic's error
/// envelope `{"type":"error","error":{"type":…,"message":…}}`.
///
/// The message is OpenAI's `error.message` (also read: `error` as a string,
/// and a top-level `message`, as vLLM and Ollama write them); an unreadable
/// body gives a message naming the status.
pub fn error_from_openai(status: u16, body: &[u8]) -> Vec<u8> {
    let kind = error_type(status);
    let parsed = super::is_object(body)
        .then(|| serde_json::from_slice::<OpenAiError<'_>>(body).ok())
        .flatten();
    let message = parsed.as_ref().map(OpenAiError::message);
    let generic;
    let message = match message {
        Some(Some(message)) if !message.is_empty() => prefix_within(message, MAX_MESSAGE_BYTES),
        Some(_) => {
            generic = format!(
                "The OpenAI-compatible upstream answered {status} ({kind}) without a message."
            );
            &generic
        }
        None => {
            generic = format!(
                "The OpenAI-compatible upstream answered {status} with a body that is not an OpenAI error."
            );
            &generic
        }
    };
    error_envelope(kind, message)
}

/// The envelope for an error the router itself answers on this door.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    error_envelope(error_type(status), message)
}

/// `{"type":"error","error":{"type":kind,"message":message}}`.
pub(super) fn error_envelope(kind: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(56 + kind.len() + message.len());
    out.extend_from_slice(br#"{"type":"error","error":{"type":"#);
    push_json_string(&mut out, kind);
    out.extend_from_slice(br#","message":"#);
    push_json_string(&mut out, message);
    out.extend_from_slice(b"}}");
    out
}

/// An OpenAI-style error body, read leniently.
#[derive(Deserialize)]
struct OpenAiError<'a> {
    #[serde(borrow, default)]
    error: Option<StreamError<'a>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

impl OpenAiError<'_> {
    fn message(&self) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(StreamError::message)
            .or(self.message.as_deref())
    }
}

/// OpenAI's `error`: an object `{message, type, code, param}`, or a string.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum StreamError<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Detail {
        #[serde(borrow, default)]
        message: Option<Cow<'a, str>>,
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        code: Option<Code<'a>>,
    },
}

/// OpenAI's `code`: a string, or a number (vLLM writes the status).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Code<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(u64),
    Other(serde::de::IgnoredAny),
}

impl StreamError<'_> {
    /// The message, at most [`MAX_MESSAGE_BYTES`].
    pub(super) fn message(&self) -> Option<&str> {
        let message = match self {
            StreamError::Text(text) => text,
            StreamError::Detail { message, .. } => message.as_deref()?,
        };
        Some(prefix_within(message, MAX_MESSAGE_BYTES))
    }
}

/// Anthropic's error type for an OpenAI error frame in a stream, which has
/// no status: from its `code` (a number is read as a status) and `type`
/// words; `api_error` when they say nothing known.
pub(super) fn type_of_stream_error(error: Option<&StreamError<'_>>) -> &'static str {
    let Some(StreamError::Detail { kind, code, .. }) = error else {
        return "api_error";
    };
    if let Some(Code::Number(status)) = code {
        if let Ok(status) = u16::try_from(*status) {
            if (400..=599).contains(&status) {
                return error_type(status);
            }
        }
    }
    let code = match code {
        Some(Code::Text(code)) => code.as_ref(),
        _ => "",
    };
    for word in [code, kind.as_deref().unwrap_or_default()] {
        let word = prefix_within(word, 64).to_ascii_lowercase();
        // Codes of the translated providers too: Gemini's `UNAVAILABLE`,
        // `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED`; Bedrock's
        // `throttlingException`, `serviceUnavailableException`,
        // `modelTimeoutException`.
        let found = [
            ("rate_limit", "rate_limit_error"),
            ("resource_exhausted", "rate_limit_error"),
            ("throttl", "rate_limit_error"),
            ("overload", "overloaded_error"),
            ("unavailable", "overloaded_error"),
            ("timeout", "timeout_error"),
            ("deadline_exceeded", "timeout_error"),
            ("invalid_request", "invalid_request_error"),
            ("authentication", "authentication_error"),
            ("permission", "permission_error"),
            ("not_found", "not_found_error"),
        ]
        .into_iter()
        .find(|(needle, _)| word.contains(needle));
        if let Some((_, kind)) = found {
            return kind;
        }
    }
    "api_error"
}
