//! Translation between OpenAI Chat Completions and Anthropic's Messages API:
//! bytes in, bytes out, no network and no runtime.
//!
//! `forward` calls these per attempt for an Anthropic upstream:
//!
//! - [`translate_request`]: the client's chat-completions body → a Messages
//!   body (`request.rs`; `messages` in `messages.rs`, tools in `tools.rs`,
//!   `response_format` in `structured.rs`). A request that cannot be expressed is a
//!   [`RequestError`](crate::providers::RequestError), answered to the client as a 400.
//! - [`translate_response`]: a 2xx Messages answer → a `chat.completion`
//!   body (`response.rs`).
//! - [`StreamTranslator`]: Anthropic's SSE events → `chat.completion.chunk`
//!   events, one event at a time (`stream.rs`).
//! - [`translate_error`]: an Anthropic error answer → the OpenAI error body
//!   (`error.rs`).
//!
//! Only the body changes here. The URL (`/v1/messages`), the `x-api-key` and
//! `anthropic-version` headers, and the status of an error answer (e.g. 529
//! `overloaded_error` → 503) are the caller's.
//!
//! The mapping, field by field in both directions, what is dropped and what
//! is refused, and the decisions where the protocols differ (temperature
//! range, thinking, structured output) are documented for users in
//! `docs/providers.md`; the tests under `tests/` pin each row.

mod address;
mod error;
pub mod inbound;
mod messages;
pub mod native;
mod request;
mod response;
mod stream;
mod structured;
mod tools;

pub use address::Anthropic;
pub use error::translate_error;
pub use request::translate_request;
pub use response::translate_response;
pub use stream::StreamTranslator;

/// `max_tokens` sent when the client gives neither `max_tokens` nor
/// `max_completion_tokens` (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Per-upstream settings the translation needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `max_tokens` sent when the client gives neither `max_tokens` nor `max_completion_tokens`.
    pub default_max_tokens: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

#[cfg(test)]
mod tests;
