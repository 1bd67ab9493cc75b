//! Upstream kinds ([`ProviderKind`]): how each is addressed and authenticated.
//!
//! One file per provider behind the small [`Provider`] trait. Providers only
//! say *where* a request goes and *which credential* it carries; the body is
//! forwarded as the client sent it (with the model name spliced) by `forward`.
//! The built-in `mock` provider answers locally and lives in [`mock`].
//! A provider that speaks another protocol gets a folder of its own here,
//! translating between the OpenAI shape and its wire format with the leaves
//! (`json`, `sse`, `openai`); it sits below `routing`, whose table holds
//! each upstream's kind.

mod azure;
mod compatible;
pub mod mock;
mod ollama;
mod openai;

use http::{HeaderName, HeaderValue};

use crate::secret::Secret;

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
    /// `mock`: built in, answers without any network.
    Mock,
}

impl ProviderKind {
    /// Every kind, with its spelling in `router.yaml`.
    pub const ALL: [(&'static str, ProviderKind); 5] = [
        ("openai", ProviderKind::OpenAi),
        ("openai-compatible", ProviderKind::Compatible),
        ("ollama", ProviderKind::Ollama),
        ("azure", ProviderKind::Azure),
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
}

impl Endpoint {
    /// Every endpoint, in [`Endpoint::index`] order.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
    ];

    /// The path after `/v1`.
    pub fn suffix(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
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
}

/// The provider for `kind`; `None` for the built-in mock.
pub fn provider(kind: ProviderKind) -> Option<&'static dyn Provider> {
    match kind {
        ProviderKind::OpenAi => Some(&openai::OpenAi),
        ProviderKind::Compatible => Some(&compatible::Compatible),
        ProviderKind::Ollama => Some(&ollama::Ollama),
        ProviderKind::Azure => Some(&azure::Azure),
        ProviderKind::Mock => None,
    }
}

/// Percent-encodes a path segment (model ids carry `/` and `:`).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
