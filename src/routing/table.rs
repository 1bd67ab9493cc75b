//! The compiled table: models, their targets and the upstreams behind them.
//!
//! Built only by `config::compile`; never mutated afterwards. Everything a
//! request needs (URLs, credential headers, limits) is resolved here once,
//! so the hot path does no formatting or lookups beyond one hash probe.
//! Runtime state (health, pools) is referenced, not owned: it lives in the
//! `upstream::Registry` and outlives the table.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::policy::Strategy;
use super::{AttemptPolicy, Timeouts};
use crate::h1::UpstreamClient;
use crate::providers::mock::MockConfig;
use crate::providers::{anthropic, bedrock, ProviderKind};
use crate::providers::{Endpoint, Provider};
use crate::quota::KeySet;
use crate::telemetry::metrics::{ModelMetrics, TargetMetrics, UpstreamMetrics};
use crate::upstream::{BreakerPolicy, TargetState, UpstreamState};

/// What a request may send (`server.max_body_bytes`, `server.body_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: u64,
    /// Longest silence while the request body arrives.
    pub body_timeout: std::time::Duration,
}

/// One compiled `router.yaml`.
pub struct Table {
    /// Counts loads since start: 1 for the first table.
    pub generation: u64,
    /// When this table was compiled.
    pub loaded_at: SystemTime,
    /// What a request may send.
    pub limits: RequestLimits,
    /// Router keys (`keys:` and `server.auth.keys`); empty means open.
    pub keys: KeySet,
    /// CORS policy.
    pub cors: Cors,
    /// Models in file order (for `/v1/models`).
    pub models: Vec<Arc<Model>>,
    /// Upstreams in file order (for the status view).
    pub upstreams: Vec<Arc<Upstream>>,
    /// Metric handles for requests that name no model of this table.
    pub unknown_model: Arc<ModelMetrics>,
    /// The response cache (kept across reloads), when a model uses it.
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// `cache.max_entry_bytes`.
    pub cache_max_entry_bytes: usize,
    /// `state.redis`: limits, budgets (and cache entries) shared by replicas.
    pub redis: Option<Arc<crate::shared::Redis>>,
    /// `cache.shared`: cache entries also in `redis`.
    pub cache_shared: bool,
    by_name: HashMap<String, Arc<Model>>,
}

impl Table {
    /// Assembles a table; `config::compile` is the only caller.
    pub(crate) fn new(
        generation: u64,
        limits: RequestLimits,
        keys: KeySet,
        cors: Cors,
        models: Vec<Arc<Model>>,
        upstreams: Vec<Arc<Upstream>>,
        unknown_model: Arc<ModelMetrics>,
    ) -> Table {
        let by_name = models.iter().map(|m| (m.name.clone(), m.clone())).collect();
        Table {
            generation,
            loaded_at: SystemTime::now(),
            limits,
            keys,
            cors,
            models,
            upstreams,
            unknown_model,
            cache: None,
            cache_max_entry_bytes: 0,
            redis: None,
            cache_shared: false,
            by_name,
        }
    }

    /// Uses `cache` for the models that opt in, keeping answers of at most
    /// `max_entry_bytes`.
    pub(crate) fn with_cache(
        mut self,
        cache: Arc<crate::cache::Cache>,
        max_entry_bytes: usize,
    ) -> Table {
        self.cache = Some(cache);
        self.cache_max_entry_bytes = max_entry_bytes;
        self
    }

    /// Shares state through `redis`; `cache_shared` for cache entries too.
    pub(crate) fn with_redis(
        mut self,
        redis: Arc<crate::shared::Redis>,
        cache_shared: bool,
    ) -> Table {
        self.redis = Some(redis);
        self.cache_shared = cache_shared;
        self
    }

    /// The model clients call `name`.
    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.by_name.get(name)
    }

    /// Up to `n` model names, for "available models are …" messages.
    pub fn some_model_names(&self, n: usize) -> Vec<&str> {
        self.models
            .iter()
            .take(n)
            .map(|m| m.name.as_str())
            .collect()
    }
}

/// Which browser origins may call the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers at all.
    Off,
    /// `Access-Control-Allow-Origin: *`.
    Any,
    /// Only these exact origins (echoed back).
    Origins(Vec<HeaderValue>),
}

/// A model clients can ask for.
pub struct Model {
    /// Its name.
    pub name: String,
    /// Where it can be served, in file order.
    pub targets: Vec<Target>,
    /// Models to try when every target failed, transitively resolved, in order,
    /// each once, without this model.
    pub fallbacks: Vec<Arc<Model>>,
    /// Models to try when an upstream says the prompt is over the context
    /// window (each with its own fallbacks).
    pub context_window_fallbacks: Vec<Arc<Model>>,
    /// How targets are ordered.
    pub strategy: Strategy,
    /// The smooth weighted round-robin cycle (`strategy::weighted_cycle`).
    pub cycle: Vec<u16>,
    /// Position in `cycle`.
    pub cursor: AtomicUsize,
    /// Same-target retries, backoff and status sets.
    pub policy: AttemptPolicy,
    /// System prompt, parameter defaults and clamps, `on_exhausted`.
    pub requests: super::RequestPolicy,
    /// How long its answers are cached (`cache`); `None`: not cached.
    pub cache_ttl: Option<std::time::Duration>,
    /// Metric handles.
    pub metrics: Arc<ModelMetrics>,
}

/// One way of serving a model: an upstream plus the name it knows the model by.
pub struct Target {
    /// The logical model this target serves (differs from the requested
    /// model when reached through a fallback).
    pub model: String,
    /// Timeouts: the upstream's, with the model's overrides.
    pub timeouts: Timeouts,
    /// Circuit-breaker settings (the upstream's).
    pub breaker: BreakerPolicy,
    /// Runtime state: breaker, latency, in flight (survives reloads).
    pub state: Arc<TargetState>,
    /// Metric handles.
    pub metrics: Arc<TargetMetrics>,
    /// The upstream.
    pub upstream: Arc<Upstream>,
    /// The model name sent upstream (the body's `model`).
    pub upstream_model: String,
    /// The body's `model` for `/v1/responses`: Azure's Responses API has no
    /// deployment in its path and reads the deployment name from the body.
    pub responses_model: String,
    /// Relative share of traffic.
    pub weight: u32,
    /// `rpm`/`tpm` of this target (the upstream's quota); at its limit the
    /// target is skipped like an open circuit.
    pub rates: crate::quota::Rates,
    /// Upstream URL for each endpoint, indexed by [`Endpoint::index`], then
    /// the URL of each for a streamed request, at `Endpoint::ALL.len() +
    /// index` (the same URL unless the provider streams elsewhere; empty for
    /// the mock provider).
    pub urls: Vec<Uri>,
    /// `upstream/model`, for logs and headers.
    pub label: String,
}

impl Target {
    /// The body's `model` for `endpoint`.
    pub fn body_model(&self, endpoint: Endpoint) -> &str {
        match endpoint {
            Endpoint::Responses => &self.responses_model,
            _ => &self.upstream_model,
        }
    }

    /// The upstream URL for `endpoint`; `stream` for a streamed request.
    pub fn url(&self, endpoint: Endpoint, stream: bool) -> Option<&Uri> {
        let offset = if stream { Endpoint::ALL.len() } else { 0 };
        self.urls.get(offset + endpoint.index())
    }
}

/// The settings a translating upstream needs per request.
pub enum Translation {
    /// Anthropic's Messages API.
    Anthropic(anthropic::Options),
    /// Google's Gemini API.
    Gemini,
    /// Amazon Bedrock's Converse API.
    Bedrock {
        /// Translation settings.
        options: bedrock::Options,
        /// SigV4 region and keys; `None` when a Bedrock API key (Bearer)
        /// authenticates instead.
        signing: Option<Box<Signing>>,
    },
}

/// What SigV4 signs a Bedrock request with.
pub struct Signing {
    /// The AWS region of the signing scope.
    pub region: String,
    /// Static keys from `router.yaml` or the AWS environment variables.
    pub credentials: bedrock::Credentials,
}

/// Where and how to connect: one entry of `upstreams:`, compiled.
pub struct Upstream {
    /// Its name.
    pub name: String,
    /// Its provider kind.
    pub kind: ProviderKind,
    /// Its address (empty for mock).
    pub base_url: String,
    /// How to address it (None for mock).
    pub provider: Option<&'static dyn Provider>,
    /// The credential header, ready to insert.
    pub credential: Option<(HeaderName, HeaderValue)>,
    /// Extra headers from `headers:`.
    pub headers: HeaderMap,
    /// Connect and first-byte timeouts.
    pub timeouts: Timeouts,
    /// `inject_stream_usage`.
    pub inject_stream_usage: bool,
    /// How it continues a partial answer (`prefill`), for resumes.
    pub prefill: super::Prefill,
    /// Mock settings, for `provider: mock`.
    pub mock: Option<MockConfig>,
    /// How requests and answers are translated, for an upstream that does
    /// not speak OpenAI's protocol; `None` passes bytes through.
    pub translation: Option<Translation>,
    /// Set when a `${VAR}` it needs is unset: the upstream is not used.
    pub unresolved: Option<String>,
    /// Health-check URL and interval, when active checks are on.
    pub health_check: Option<(Uri, std::time::Duration)>,
    /// Runtime state (survives reloads).
    pub state: Arc<UpstreamState>,
    /// The pooled client (None for mock).
    pub client: Option<UpstreamClient>,
    /// Metric handles.
    pub metrics: Arc<UpstreamMetrics>,
}
