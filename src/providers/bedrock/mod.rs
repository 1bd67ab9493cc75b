//! Translation between OpenAI Chat Completions and Amazon Bedrock's Converse
//! API, the binary event stream ConverseStream answers in, and SigV4
//! signing: bytes in, bytes out, no network and no runtime.
//!
//! `forward` calls these per attempt for a Bedrock upstream:
//!
//! - [`translate_request`]: the client's chat-completions body → a Converse
//!   body (`request.rs`; `messages` in `messages.rs`, tools in `tools.rs`,
//!   `response_format` in `structured.rs`). The model id is in the URL
//!   ([`Bedrock`]), not the body. A request that cannot be expressed is a
//!   [`RequestError`](crate::providers::RequestError), answered as a 400.
//! - [`translate_response`]: a 2xx Converse answer → a `chat.completion`
//!   body (`response.rs`).
//! - [`EventStreamDecoder`]: ConverseStream's `application/vnd.amazon.eventstream`
//!   frames → [`StreamMessage`]s, CRCs checked (`eventstream.rs`); then
//!   [`StreamTranslator`]: each message → `chat.completion.chunk` SSE events
//!   (`stream.rs`).
//! - [`translate_error`]: a Bedrock error answer (its `x-amzn-ErrorType`
//!   header and `{"message"}` body) → the OpenAI error body (`error.rs`).
//! - [`sign`]: the SigV4 headers for a request with AWS [`Credentials`]
//!   (`sign.rs`). A Bedrock API key (`api_key:`) needs no signing: it goes
//!   in `Authorization: Bearer`, the default [`Provider::credential`](crate::providers::Provider::credential).
//!
//! Only the body changes here (and the signature is computed). The URL,
//! which credential to use, and the status of an error answer are the
//! caller's.
//!
//! The mapping, field by field in both directions, what is dropped and what
//! is refused, and the decisions where the protocols differ are documented
//! for users in `docs/providers.md` ("Amazon Bedrock"); the tests under
//! `tests/` pin each row.

mod address;
mod error;
mod eventstream;
mod messages;
mod request;
mod response;
mod sign;
mod stream;
mod structured;
mod tools;

pub use address::{default_base_url, Bedrock};
pub use error::translate_error;
pub use eventstream::{DecodeError, EventStreamDecoder, StreamMessage, MAX_MESSAGE_BYTES};
pub use request::translate_request;
pub use response::translate_response;
pub use sign::{sign, Credentials, SignError};
pub use stream::StreamTranslator;

/// Per-upstream settings the translation needs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `inferenceConfig.maxTokens` sent when the client gives neither
    /// `max_tokens` nor `max_completion_tokens`. `None` (the default):
    /// none is sent and the model's own limit applies (Converse, unlike
    /// Anthropic's API, does not require one).
    pub default_max_tokens: Option<u32>,
}

#[cfg(test)]
mod tests;
