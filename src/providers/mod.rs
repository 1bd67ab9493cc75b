//! Upstream kinds ([`ProviderKind`]): how each is addressed and authenticated.
//!
//! One file per provider behind the small [`Provider`] trait. Providers only
//! say *where* a request goes and *which credential* it carries; the body is
//! forwarded as the client sent it (with the model name spliced) by `forward`.
//! The built-in `mock` provider answers locally and lives in [`mock`].
//! A provider that speaks another protocol gets a folder of its own here,
//! translating between the OpenAI shape and its wire format with the leaves
//! (`json`, `sse`, `openai`); it sits below `routing`, whose table holds
//! each upstream's kind. What the translations share is here once: `chat`
//! (the OpenAI request's messages as they read them), `completion` (the
//! `chat.completion` and `usage` they answer with) and `request_error` (a
//! request a provider cannot express, and reading its fields).

pub mod anthropic;
mod azure;
pub mod bedrock;
mod chat;
mod compatible;
mod completion;
pub mod gemini;
pub mod mock;
mod ollama;
mod openai;
mod request_error;

use http::{HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::secret::Secret;

pub use request_error::RequestError;

/// The kinds of upstream (`provider:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// `openai`: api.openai.com, Bearer key.
    OpenAi,
    /// `openai-compatible`: vLLM, llama.cpp, LM Studio, …; optional Bearer key.
    Compatible,
    /// `ollama`: Ollama's OpenAI-compatible `/v1` API.
    Ollama,
    /// `azure`: Azure OpenAI deployments with `api-key`.
    Azure,
    /// `anthropic`: Anthropic's Messages API, translated to and from the
    /// OpenAI shape.
    Anthropic,
    /// `gemini`: Google's Gemini API, translated.
    Gemini,
    /// `bedrock`: Amazon Bedrock's Converse API, translated and SigV4-signed.
    Bedrock,
    /// `mock`: built in, answers without any network.
    Mock,
}

impl ProviderKind {
    /// Every kind, with its spelling in `router.yaml`.
    pub const ALL: [(&'static str, ProviderKind); 8] = [
        ("openai", ProviderKind::OpenAi),
        ("openai-compatible", ProviderKind::Compatible),
        ("ollama", ProviderKind::Ollama),
        ("azure", ProviderKind::Azure),
        ("anthropic", ProviderKind::Anthropic),
        ("gemini", ProviderKind::Gemini),
        ("bedrock", ProviderKind::Bedrock),
        ("mock", ProviderKind::Mock),
    ];

    /// The spelling in `router.yaml`.
    pub fn as_str(self) -> &'static str {
        ProviderKind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(s, _)| *s)
            .unwrap_or("unknown")
    }
}

/// The OpenAI endpoints routed by the body's `model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/responses`
    Responses,
    /// Anthropic's `POST /v1/messages/count_tokens` (Anthropic's door; only
    /// Anthropic upstreams serve it).
    CountTokens,
}

impl Endpoint {
    /// Every endpoint, in [`Endpoint::index`] order.
    pub const ALL: [Endpoint; 5] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::CountTokens,
    ];

    /// The path after `/v1`.
    pub fn suffix(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
            Endpoint::CountTokens => "/messages/count_tokens",
        }
    }

    /// Position in per-target URL tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a provider needs to know about one target to address it.
pub struct TargetAddress<'a> {
    /// The upstream's `base_url`, without a trailing `/`.
    pub base_url: &'a str,
    /// The model name sent upstream.
    pub model: &'a str,
    /// Azure deployment name.
    pub deployment: &'a str,
    /// Azure `api-version`.
    pub api_version: &'a str,
}

/// The wire format an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI's: bodies pass through untouched, only the model spliced.
    OpenAi,
    /// Anthropic's Messages API: requests and answers are translated
    /// ([`anthropic`]).
    Anthropic,
    /// Google's Gemini API (`generateContent`), translated.
    Gemini,
    /// Amazon Bedrock's Converse API, translated; streams in AWS's binary
    /// event-stream framing.
    Bedrock,
}

/// How to reach one kind of HTTP upstream.
pub trait Provider: Send + Sync {
    /// The full URL for `endpoint` on this target.
    fn url(&self, target: &TargetAddress<'_>, endpoint: Endpoint) -> String;

    /// The header that carries `key`. Default: `Authorization: Bearer <key>`.
    fn credential(&self, key: &Secret) -> Option<(HeaderName, HeaderValue)> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose())).ok()?;
        value.set_sensitive(true);
        Some((http::header::AUTHORIZATION, value))
    }

    /// The URL probed by active health checks when `health_check.path` is not set.
    fn health_url(&self, target: &TargetAddress<'_>) -> String;

    /// The wire format it speaks. Default: OpenAI's.
    fn protocol(&self) -> Protocol {
        Protocol::OpenAi
    }

    /// The URL for a streamed request (`"stream": true`) when the provider
    /// streams at another address (Gemini's `:streamGenerateContent`,
    /// Bedrock's `/converse-stream`). Default: `None`, the same as
    /// [`Provider::url`].
    fn stream_url(&self, _target: &TargetAddress<'_>, _endpoint: Endpoint) -> Option<String> {
        None
    }

    /// Whether it can answer `endpoint` at all. Default: every OpenAI
    /// endpoint (not Anthropic's `count_tokens`).
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint != Endpoint::CountTokens
    }
}

/// The provider for `kind`; `None` for the built-in mock.
pub fn provider(kind: ProviderKind) -> Option<&'static dyn Provider> {
    match kind {
        ProviderKind::OpenAi => Some(&openai::OpenAi),
        ProviderKind::Compatible => Some(&compatible::Compatible),
        ProviderKind::Ollama => Some(&ollama::Ollama),
        ProviderKind::Azure => Some(&azure::Azure),
        ProviderKind::Anthropic => Some(&anthropic::Anthropic),
        ProviderKind::Gemini => Some(&gemini::Gemini),
        ProviderKind::Bedrock => Some(&bedrock::Bedrock),
        ProviderKind::Mock => None,
    }
}

/// What stays unescaped in a path segment: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment (deployment names and versions may carry
/// `/`, `:` or spaces). Runs when a table compiles, not per request.
pub(crate) fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-by-byte encoding `encode_segment` must equal: unreserved
    /// bytes as they are, every other byte as `%XX` in upper case.
    fn reference(segment: &str) -> String {
        segment
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn path_segments_escape_all_but_the_unreserved_characters() {
        assert_eq!(encode_segment("gpt-4o_mini.v1~x"), "gpt-4o_mini.v1~x");
        assert_eq!(encode_segment("a/b:c d"), "a%2Fb%3Ac%20d");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment(""), "");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn encoding_matches_the_byte_by_byte_reference(segment in "\\PC{0,40}") {
            prop_assert_eq!(encode_segment(&segment), reference(&segment));
        }
    }
}
