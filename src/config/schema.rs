//! The `router.yaml` schema: typed settings read through the walker.
//!
//! Every key, its default and its meaning is documented in `docs/config.md`;
//! a default here is a named constant with the reason for its number.
//! Cross-references (a target naming an upstream, fallbacks naming models)
//! are checked in `validate`; this file only reads what each key says.

use std::net::SocketAddr;
use std::time::Duration;

use serde_yaml::Value;

use super::keypath::KeyPath;
use super::walk::{Fields, Walk};
use crate::providers::mock::MockConfig;
use crate::providers::ProviderKind;
use crate::routing::Timeouts;
use crate::secret::Secret;

/// Where Switchyard listens unless `server.listen` or `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8000";
/// Largest request body accepted. Chat requests with a few base64 images run
/// to single-digit MiB; 16 MiB leaves room while bounding memory per request.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 << 20;
/// How long shutdown waits for in-flight requests (streams can be long; the
/// usual Kubernetes grace period is 30 s).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Consecutive failures that open a target's circuit.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// How long an open circuit skips its target before one probe request.
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(30);
/// Same-target retries after a retryable status (429, 5xx). One: the OpenAI
/// SDKs already retry twice, so more here multiplies upstream calls.
pub const DEFAULT_RETRIES: u32 = 1;
/// Base of the exponential backoff between same-target retries.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(250);
/// Ceiling of one backoff sleep.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(4);
/// Attempts per request, retries included, across all targets and fallbacks.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// Time allowed to find an attempt that commits (the answer's own
/// streaming time is bounded by `timeouts.total`, not this).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
/// Hedge delay while the first target has no latency samples yet.
pub const DEFAULT_HEDGE_DELAY: Duration = Duration::from_secs(2);
/// Targets a `race` sends to at once by default.
pub const DEFAULT_RACE_FANOUT: usize = 2;
/// Interval of active health checks for local upstreams (Ollama, vLLM, …).
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(15);
/// Azure `api-version` used when the upstream does not set one: the newest
/// dated GA data-plane version.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// Browser origins allowed by default: a React dev server and Streamlit, on
/// both spellings of loopback.
pub const DEFAULT_CORS_ORIGINS: [&str; 4] = [
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:8501",
    "http://127.0.0.1:8501",
];

/// The whole file, read.
#[derive(Debug, Clone)]
pub struct Config {
    /// `server:`
    pub server: ServerConfig,
    /// `upstreams:`, in file order.
    pub upstreams: Vec<UpstreamConfig>,
    /// `models:`, in file order.
    pub models: Vec<ModelConfig>,
    /// `request_log:` (off when absent).
    pub request_log: Option<crate::telemetry::request_log::RequestLogConfig>,
}

/// How long a client has to send a request head (`server.header_timeout`).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while a request body arrives (`server.body_timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle client connection stays open (`server.keepalive_timeout`).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// Longest wait for a client to accept written data (`server.send_timeout`).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest timeout, deadline or breaker cooldown accepted.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Shortest health-check interval accepted.
const MIN_HEALTH_INTERVAL: Duration = Duration::from_millis(50);

/// Concurrent HTTP/2 streams per connection (`server.http2_max_streams`).
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 128;
/// Most `server.max_connections` defaults to, whatever the file limit.
pub const DEFAULT_MAX_CONNECTIONS_CAP: u32 = 10_000;

/// What the listener allows each client connection (applies at start only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `server.max_connections`; `None`: half the open-file limit, at most
    /// [`DEFAULT_MAX_CONNECTIONS_CAP`].
    pub max_connections: Option<u32>,
    /// `server.header_timeout`
    pub header_timeout: Duration,
    /// `server.keepalive_timeout`
    pub keepalive_timeout: Duration,
    /// `server.send_timeout`
    pub send_timeout: Duration,
    /// `server.http2_max_streams`
    pub http2_max_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
        }
    }
}

/// `server.tls`: PEM files for inbound HTTPS (applies at start; the files
/// themselves are re-read when they change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `server.tls.cert`: the certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// `server.tls.key`: its private key.
    pub key: std::path::PathBuf,
}

/// `server:` — the listener and request limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `server.listen`
    pub listen: SocketAddr,
    /// `server.max_body_bytes`
    pub max_body_bytes: u64,
    /// `server.auth.keys`; empty means open.
    pub auth_keys: Vec<Secret>,
    /// `server.cors.allow_origins`; `*` allows any; empty disables CORS.
    pub cors_origins: Vec<String>,
    /// `server.shutdown_grace`
    pub shutdown_grace: Duration,
    /// `server.body_timeout`
    pub body_timeout: Duration,
    /// Per-connection limits.
    pub connections: ConnectionLimits,
    /// `server.tls`
    pub tls: Option<TlsFiles>,
}

/// `models.<name>.timeouts`: overrides of the upstream's timeouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutOverrides {
    /// Overrides `first_byte`.
    pub first_byte: Option<Duration>,
    /// Overrides `first_token`.
    pub first_token: Option<Duration>,
    /// Overrides `idle`.
    pub idle: Option<Duration>,
    /// Overrides `total`.
    pub total: Option<Duration>,
}

impl TimeoutOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: Timeouts) -> Timeouts {
        Timeouts {
            connect: base.connect,
            first_byte: self.first_byte.unwrap_or(base.first_byte),
            first_token: self.first_token.unwrap_or(base.first_token),
            idle: self.idle.unwrap_or(base.idle),
            total: self.total.unwrap_or(base.total),
        }
    }
}

/// `upstreams.<name>.circuit_breaker`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit (0 = never).
    pub failures: u32,
    /// How long it stays open before a probe.
    pub cooldown: Duration,
}

/// `models.<name>.retry`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Same-target retries after a retryable status.
    pub attempts: u32,
    /// Backoff base.
    pub backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// Statuses retried on the same target (`retry.on_status`).
    pub on_status: Option<Vec<u16>>,
}

/// `upstreams.<name>.health_check`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Probe interval; `None` means no active checks.
    pub interval: Option<Duration>,
    /// Path probed, relative to the upstream's address.
    pub path: Option<String>,
}

/// A `${VAR}` that is unset, making an upstream unusable until it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The key that referenced it.
    pub path: KeyPath,
    /// The variable to set.
    pub var: String,
}

/// One entry of `upstreams:`.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Its name (the mapping key).
    pub name: String,
    /// `provider`
    pub provider: ProviderKind,
    /// `base_url`, without a trailing `/` (empty for `mock`).
    pub base_url: String,
    /// `api_key`
    pub api_key: Option<Secret>,
    /// `api_version` (Azure only).
    pub api_version: Option<String>,
    /// `headers`: extra headers sent upstream.
    pub headers: Vec<(String, String)>,
    /// `timeouts`
    pub timeouts: Timeouts,
    /// `circuit_breaker`
    pub breaker: BreakerConfig,
    /// `inject_stream_usage`: ask for usage in streams the client did not
    /// ask it for, and remove the extra usage chunk from the answer.
    pub inject_stream_usage: bool,
    /// `health_check`
    pub health_check: HealthCheck,
    /// `mock`
    pub mock: MockConfig,
    /// Set when a `${VAR}` in this upstream is unset.
    pub unresolved: Option<Unresolved>,
    /// The path of this entry, for later messages.
    pub path: KeyPath,
}

/// One entry of `models:`.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The name clients ask for.
    pub name: String,
    /// `targets`
    pub targets: Vec<TargetConfig>,
    /// `fallbacks`, with the path of each entry.
    pub fallbacks: Vec<(String, KeyPath)>,
    /// `context_window_fallbacks`, with the path of each entry.
    pub context_window_fallbacks: Vec<(String, KeyPath)>,
    /// `strategy` (with `race` / `hedge` settings).
    pub strategy: crate::routing::Strategy,
    /// `retry`
    pub retry: RetryConfig,
    /// `fail_over_on_status`
    pub fail_over_on: Option<Vec<u16>>,
    /// `max_attempts`
    pub max_attempts: u32,
    /// `deadline`
    pub deadline: Duration,
    /// `timeouts`
    pub timeouts: TimeoutOverrides,
    /// `pricing`
    pub pricing: Option<crate::telemetry::metrics::Pricing>,
    /// The path of this entry.
    pub path: KeyPath,
}

/// One entry of `models.<name>.targets`.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// `upstream`
    pub upstream: String,
    /// `model`: the name sent upstream; defaults to the logical name.
    pub model: Option<String>,
    /// `deployment` (Azure): defaults to `model`, then the logical name.
    pub deployment: Option<String>,
    /// `weight`
    pub weight: u32,
    /// The path of this entry.
    pub path: KeyPath,
}

const TOP_KEYS: &[&str] = &["server", "upstreams", "models", "request_log"];
/// Size at which a request log file is rotated.
pub const DEFAULT_REQUEST_LOG_FILE_BYTES: u64 = 100 << 20;
/// Records buffered for the request log writer; a burst this large is
/// absorbed, a longer stall drops (and counts) records.
pub const DEFAULT_REQUEST_LOG_QUEUE: u64 = 4096;
const SERVER_KEYS: &[&str] = &[
    "listen",
    "max_body_bytes",
    "auth",
    "cors",
    "shutdown_grace",
    "max_connections",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
    "send_timeout",
    "http2_max_streams",
    "tls",
];
const UPSTREAM_KEYS: &[&str] = &[
    "provider",
    "base_url",
    "api_key",
    "api_version",
    "headers",
    "timeouts",
    "circuit_breaker",
    "health_check",
    "mock",
    "inject_stream_usage",
];
const MODEL_KEYS: &[&str] = &[
    "targets",
    "fallbacks",
    "context_window_fallbacks",
    "strategy",
    "race",
    "hedge",
    "retry",
    "fail_over_on_status",
    "max_attempts",
    "deadline",
    "timeouts",
    "pricing",
];
const TIMEOUT_KEYS: &[&str] = &["connect", "first_byte", "first_token", "idle", "total"];
const TARGET_KEYS: &[&str] = &["upstream", "model", "deployment", "weight"];

/// Most models one config may declare.
pub const MAX_MODELS: usize = 20_000;
/// Most upstreams one config may declare.
pub const MAX_UPSTREAMS: usize = 10_000;

/// Reads the whole document. Returns what could be read; mistakes are in `walk`.
pub fn read(walk: &mut Walk<'_>, doc: &Value) -> Config {
    let root = KeyPath::root();
    let empty = Value::Mapping(Default::default());
    let doc = if doc.is_null() { &empty } else { doc };
    let fields = walk.fields(doc, &root, TOP_KEYS);
    let get = |key| fields.as_ref().and_then(|f: &Fields| f.get(key));

    let server = read_server(walk, get("server"));
    let too_many = |walk: &mut Walk<'_>, path: &KeyPath, n: usize, max: usize, what: &str| {
        if n > max {
            walk.error(
                path,
                format!(
                    "{n} {what}; one config may declare at most {max} (split them across routers)"
                ),
            );
        }
        n > max
    };
    let upstreams = match get("upstreams") {
        Some((value, path)) => {
            let named = walk.named(value, &path);
            if too_many(walk, &path, named.len(), MAX_UPSTREAMS, "upstreams") {
                Vec::new()
            } else {
                named
                    .into_iter()
                    .filter_map(|(name, value)| {
                        read_upstream(walk, name.clone(), value, path.key(&name))
                    })
                    .collect()
            }
        }
        None => Vec::new(),
    };
    let models = match get("models") {
        Some((value, path)) => {
            let named = walk.named(value, &path);
            if too_many(walk, &path, named.len(), MAX_MODELS, "models") {
                Vec::new()
            } else {
                named
                    .into_iter()
                    .filter_map(|(name, value)| {
                        read_model(walk, name.clone(), value, path.key(&name))
                    })
                    .collect()
            }
        }
        None => {
            walk.error(&root.key("models"), "missing: declare at least one model");
            Vec::new()
        }
    };
    let request_log =
        get("request_log").and_then(|(value, path)| read_request_log(walk, value, &path));
    Config {
        server,
        upstreams,
        models,
        request_log,
    }
}

fn read_request_log(
    walk: &mut Walk<'_>,
    value: &Value,
    path: &KeyPath,
) -> Option<crate::telemetry::request_log::RequestLogConfig> {
    let f = walk.fields(
        value,
        path,
        &["dir", "max_file_bytes", "include_content", "queue"],
    )?;
    let dir = match f.get("dir") {
        Some((v, p)) => walk.strict_text(v, &p)?,
        None => {
            walk.error(
                &path.key("dir"),
                "missing: the directory to write request logs to, e.g. dir: ./logs",
            );
            return None;
        }
    };
    let max_file_bytes = f
        .get("max_file_bytes")
        .and_then(|(v, p)| walk.bytes(v, &p))
        .unwrap_or(DEFAULT_REQUEST_LOG_FILE_BYTES)
        .max(4096);
    let include_content = match f.get("include_content") {
        Some((Value::Bool(b), _)) => *b,
        Some((_, p)) => {
            walk.error(&p, "expected true or false");
            false
        }
        None => false,
    };
    let queue = f
        .get("queue")
        .and_then(|(v, p)| walk.number(v, &p, 1..=1_000_000))
        .unwrap_or(DEFAULT_REQUEST_LOG_QUEUE) as usize;
    Some(crate::telemetry::request_log::RequestLogConfig {
        dir: dir.into(),
        max_file_bytes,
        include_content,
        queue,
    })
}

fn read_server(walk: &mut Walk<'_>, node: Option<(&Value, KeyPath)>) -> ServerConfig {
    let mut server = ServerConfig {
        listen: DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses"),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        auth_keys: Vec::new(),
        cors_origins: DEFAULT_CORS_ORIGINS.iter().map(|s| s.to_string()).collect(),
        shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        body_timeout: DEFAULT_BODY_TIMEOUT,
        connections: ConnectionLimits::default(),
        tls: None,
    };
    let Some((value, path)) = node else {
        return server;
    };
    let Some(fields) = walk.fields(value, &path, SERVER_KEYS) else {
        return server;
    };
    if let Some((v, p)) = fields.get("listen") {
        if let Some(text) = walk.strict_text(v, &p) {
            match text.parse() {
                Ok(addr) => server.listen = addr,
                Err(_) => walk.error(
                    &p,
                    format!("{text:?} is not an address (write e.g. 0.0.0.0:8000)"),
                ),
            }
        }
    }
    if let Some((v, p)) = fields.get("max_body_bytes") {
        if let Some(n) = walk.bytes(v, &p) {
            if n < 1024 {
                walk.error(&p, "must be at least 1KiB");
            } else {
                server.max_body_bytes = n;
            }
        }
    }
    if let Some((v, p)) = fields.get("shutdown_grace") {
        if let Some(d) = walk.duration(v, &p) {
            server.shutdown_grace = d;
        }
    }
    if let Some((v, p)) = fields.get("max_connections") {
        if let Some(n) = walk.number(v, &p, 1..=1_000_000) {
            server.connections.max_connections = Some(n as u32);
        }
    }
    if let Some((v, p)) = fields.get("tls") {
        if let Some(tls) = walk.fields(v, &p, &["cert", "key"]) {
            let mut file = |key: &str| match tls.get(key) {
                Some((v, p)) => walk.strict_text(v, &p).filter(|path| {
                    let empty = path.trim().is_empty();
                    if empty {
                        walk.error(&p, "is empty: write the path of a PEM file");
                    }
                    !empty
                }),
                None => {
                    walk.error(
                        &p.key(key),
                        format!("missing: server.tls needs `{key}` (a PEM file)"),
                    );
                    None
                }
            };
            if let (Some(cert), Some(key)) = (file("cert"), file("key")) {
                server.tls = Some(TlsFiles {
                    cert: cert.into(),
                    key: key.into(),
                });
            }
        }
    }
    if let Some((v, p)) = fields.get("http2_max_streams") {
        if let Some(n) = walk.number(v, &p, 1..=10_000) {
            server.connections.http2_max_streams = n as u32;
        }
    }
    let limits = &mut server.connections;
    for (key, slot) in [
        ("header_timeout", &mut limits.header_timeout),
        ("keepalive_timeout", &mut limits.keepalive_timeout),
        ("send_timeout", &mut limits.send_timeout),
        ("body_timeout", &mut server.body_timeout),
    ] {
        if let Some((v, p)) = fields.get(key) {
            if let Some(d) = walk.duration_at_least(v, &p, Duration::from_millis(100)) {
                *slot = d;
            }
        }
    }
    if let Some((v, p)) = fields.get("auth") {
        if let Some(auth) = walk.fields(v, &p, &["keys"]) {
            if let Some((v, p)) = auth.get("keys") {
                for (key, p) in walk.strings(v, &p) {
                    if key.trim().is_empty() {
                        walk.error(&p, "router key is empty");
                    } else {
                        server.auth_keys.push(Secret::new(key));
                    }
                }
            }
        }
    }
    if let Some((v, p)) = fields.get("cors") {
        if let Some(cors) = walk.fields(v, &p, &["allow_origins"]) {
            if let Some((v, p)) = cors.get("allow_origins") {
                server.cors_origins = walk
                    .strings(v, &p)
                    .into_iter()
                    .map(|(origin, _)| origin.trim_end_matches('/').to_owned())
                    .collect();
            } else {
                server.cors_origins.clear();
            }
        }
    }
    server
}

fn read_upstream(
    walk: &mut Walk<'_>,
    name: String,
    value: &Value,
    path: KeyPath,
) -> Option<UpstreamConfig> {
    let fields = walk.fields(value, &path, UPSTREAM_KEYS)?;
    let mut unresolved = None;
    let mut note_unset = |text: &super::walk::Text, p: &KeyPath| {
        if let (None, Some(var)) = (&unresolved, text.unset.first()) {
            unresolved = Some(Unresolved {
                path: p.clone(),
                var: var.clone(),
            });
        }
    };

    let provider = match fields.get("provider") {
        Some((v, p)) => {
            let text = walk.strict_text(v, &p)?;
            match ProviderKind::ALL.iter().find(|(s, _)| *s == text) {
                Some((_, kind)) => *kind,
                None => {
                    let hint =
                        super::suggest::hint(&text, ProviderKind::ALL.iter().map(|(s, _)| *s));
                    let names: Vec<_> = ProviderKind::ALL.iter().map(|(s, _)| *s).collect();
                    walk.error(
                        &p,
                        format!(
                            "unknown provider {text:?}{hint} (providers: {})",
                            names.join(", ")
                        ),
                    );
                    return None;
                }
            }
        }
        None => {
            walk.error(&path.key("provider"), "missing: say which provider this is (openai, openai-compatible, ollama, azure or mock)");
            return None;
        }
    };

    let default_base = match provider {
        ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
        ProviderKind::Ollama => Some("http://localhost:11434"),
        _ => None,
    };
    let mut base_url = String::new();
    match (fields.get("base_url"), provider) {
        (Some((_, p)), ProviderKind::Mock) => walk.error(&p, "the mock provider makes no network calls; remove `base_url`"),
        (Some((v, p)), _) => {
            if let Some(text) = walk.text(v, &p) {
                note_unset(&text, &p);
                if text.unset.is_empty() {
                    match check_base_url(&text.value) {
                        Ok(url) => base_url = url,
                        Err(message) => walk.error(&p, message),
                    }
                }
            }
        }
        (None, ProviderKind::Mock) => {}
        (None, _) => match default_base {
            Some(url) => base_url = url.to_owned(),
            None => walk.error(
                &path.key("base_url"),
                format!("missing: provider {} needs the server's address, e.g. http://localhost:8000/v1", provider.as_str()),
            ),
        },
    }

    let mut api_key = None;
    if let Some((v, p)) = fields.get("api_key") {
        if provider == ProviderKind::Mock {
            walk.error(&p, "the mock provider takes no key; remove `api_key`");
        } else if let Some(text) = walk.text(v, &p) {
            note_unset(&text, &p);
            if text.unset.is_empty() {
                // An empty key (e.g. `${VLLM_API_KEY:-}`) means "send none".
                if text
                    .value
                    .bytes()
                    .any(|b| b.is_ascii_control() || b == b' ')
                {
                    // Never echoed: it is a credential.
                    walk.error(
                        &p,
                        "contains a space or control character (a trailing newline from a key file?); it could not be sent. Remove it from the key",
                    );
                } else if !text.value.is_empty() {
                    api_key = Some(Secret::new(text.value));
                }
            }
        }
    } else if matches!(provider, ProviderKind::OpenAi | ProviderKind::Azure) {
        walk.error(
            &path.key("api_key"),
            format!(
                "missing: provider {} needs a key, e.g. api_key: \"${{{}}}\"",
                provider.as_str(),
                if provider == ProviderKind::OpenAi {
                    "OPENAI_API_KEY"
                } else {
                    "AZURE_OPENAI_API_KEY"
                }
            ),
        );
    }

    let mut api_version = None;
    match (fields.get("api_version"), provider) {
        (Some((v, p)), ProviderKind::Azure) => {
            if let Some(text) = walk.text(v, &p) {
                note_unset(&text, &p);
                api_version = Some(text.value);
            }
        }
        (Some((_, p)), _) => walk.error(&p, "only Azure upstreams take an `api_version`"),
        (None, ProviderKind::Azure) => api_version = Some(DEFAULT_AZURE_API_VERSION.to_owned()),
        (None, _) => {}
    }

    let mut headers = Vec::new();
    if let Some((v, p)) = fields.get("headers") {
        for (header, value) in walk.named(v, &p) {
            let hp = p.key(&header);
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                walk.error(&hp, "is not a valid header name");
                continue;
            }
            if ROUTER_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
                walk.error(
                    &hp,
                    "is set by the router for each request (framing and connection headers are its own); remove it",
                );
                continue;
            }
            if let Some(text) = walk.text(value, &hp) {
                note_unset(&text, &hp);
                if text.value.is_empty() {
                    // `${OPENAI_ORG_ID:-}` unset: leave the header out.
                } else if http::HeaderValue::from_str(&text.value).is_err() {
                    walk.error(&hp, "is not a valid header value (control characters?)");
                } else {
                    headers.push((header.to_ascii_lowercase(), text.value));
                }
            }
        }
    }

    let mut timeouts = Timeouts::default();
    if let Some((v, p)) = fields.get("timeouts") {
        if let Some(t) = walk.fields(v, &p, TIMEOUT_KEYS) {
            let mut read = |key: &str, slot: &mut Duration| {
                if let Some(d) = t
                    .get(key)
                    .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_TIMEOUT))
                {
                    *slot = d;
                }
            };
            read("connect", &mut timeouts.connect);
            read("first_byte", &mut timeouts.first_byte);
            read("first_token", &mut timeouts.first_token);
            read("idle", &mut timeouts.idle);
            read("total", &mut timeouts.total);
        }
    }

    let mut breaker = BreakerConfig {
        failures: DEFAULT_BREAKER_FAILURES,
        cooldown: DEFAULT_BREAKER_COOLDOWN,
    };
    if let Some((v, p)) = fields.get("circuit_breaker") {
        match v {
            Value::Bool(false) => breaker.failures = 0,
            Value::Bool(true) => {}
            _ => {
                if let Some(b) = walk.fields(v, &p, &["failures", "cooldown"]) {
                    if let Some(n) = b
                        .get("failures")
                        .and_then(|(v, p)| walk.number(v, &p, 1..=1000))
                    {
                        breaker.failures = n as u32;
                    }
                    if let Some(d) = b
                        .get("cooldown")
                        .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_TIMEOUT))
                    {
                        breaker.cooldown = d;
                    }
                }
            }
        }
    }

    let inject_stream_usage = match fields.get("inject_stream_usage") {
        Some((Value::Bool(b), p)) => {
            if provider == ProviderKind::Mock && *b {
                walk.error(
                    &p,
                    "the mock provider reports usage by itself; remove `inject_stream_usage`",
                );
            }
            *b
        }
        Some((_, p)) => {
            walk.error(&p, "expected true or false");
            false
        }
        None => false,
    };

    let local = matches!(provider, ProviderKind::Ollama | ProviderKind::Compatible);
    let mut health_check = HealthCheck {
        interval: local.then_some(DEFAULT_HEALTH_INTERVAL),
        path: None,
    };
    if let Some((v, p)) = fields.get("health_check") {
        match v {
            Value::Bool(false) => health_check.interval = None,
            Value::Bool(true) => health_check.interval = Some(DEFAULT_HEALTH_INTERVAL),
            _ => {
                if let Some(h) = walk.fields(v, &p, &["interval", "path"]) {
                    health_check.interval = Some(DEFAULT_HEALTH_INTERVAL);
                    if let Some(d) = h
                        .get("interval")
                        .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_HEALTH_INTERVAL))
                    {
                        health_check.interval = Some(d);
                    }
                    if let Some((v, p)) = h.get("path") {
                        if let Some(path) = walk.strict_text(v, &p) {
                            if path.starts_with('/') {
                                health_check.path = Some(path);
                            } else {
                                walk.error(&p, "must start with `/`");
                            }
                        }
                    }
                }
            }
        }
        if provider == ProviderKind::Mock && health_check.interval.is_some() {
            walk.error(&p, "the mock provider is always up; remove `health_check`");
        }
    }

    let mut mock = MockConfig {
        reply: None,
        first_token_delay: Duration::ZERO,
        token_delay: Duration::ZERO,
    };
    if let Some((v, p)) = fields.get("mock") {
        if provider != ProviderKind::Mock {
            walk.error(&p, "only `provider: mock` upstreams take `mock` settings");
        } else if let Some(m) = walk.fields(v, &p, &["reply", "first_token_delay", "token_delay"]) {
            mock.reply = m.get("reply").and_then(|(v, p)| walk.strict_text(v, &p));
            if let Some(d) = m
                .get("first_token_delay")
                .and_then(|(v, p)| walk.duration(v, &p))
            {
                mock.first_token_delay = d;
            }
            if let Some(d) = m.get("token_delay").and_then(|(v, p)| walk.duration(v, &p)) {
                mock.token_delay = d;
            }
        }
    }

    Some(UpstreamConfig {
        name,
        provider,
        base_url,
        api_key,
        api_version,
        headers,
        timeouts,
        breaker,
        inject_stream_usage,
        health_check,
        mock,
        unresolved,
        path,
    })
}

/// Headers under `upstreams.<name>.headers` that the router writes itself
/// for every request (or that are hop-by-hop): refused, not silently dropped.
const ROUTER_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Checks an upstream address: `http(s)://host[:port][/path]`, no query.
///
/// The text is echoed only when it looks like an address (`scheme://…` or
/// `host:port`): anything else may be a key pasted into the wrong place,
/// and errors reach logs and `/status`.
fn check_base_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let looks_like_address = trimmed.contains("://")
        || trimmed.split_once(':').is_some_and(|(host, rest)| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && rest.split('/').next().is_some_and(|port| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                })
        });
    let shown = || {
        if looks_like_address {
            format!("{text:?} ")
        } else {
            String::new()
        }
    };
    let uri: http::Uri = trimmed.parse().map_err(|_| {
        format!(
            "{}is not a URL (write e.g. http://localhost:11434)",
            shown()
        )
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{}must start with http:// or https://", shown())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{}has no host", shown()));
    }
    if uri.query().is_some() {
        // Not echoed: a query string is where a key would hide.
        return Err("must not have a query string (put a key in `api_key` or `headers`)".into());
    }
    // An address is shown in /status, logs and error messages; a credential
    // in it would leak there (invariant 6).
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(
            "must not contain credentials (user:password@); put the key in `api_key` or `headers`"
                .into(),
        );
    }
    Ok(trimmed.to_owned())
}

fn read_model(
    walk: &mut Walk<'_>,
    name: String,
    value: &Value,
    path: KeyPath,
) -> Option<ModelConfig> {
    if name.is_empty() {
        walk.error(&path, "model names must not be empty");
        return None;
    }
    if name.contains("${") {
        walk.error(
            &path,
            "model names are not interpolated: write the name clients send (a `${…}` may go in a target's `model:`)",
        );
        return None;
    }
    let fields = walk.fields(value, &path, MODEL_KEYS)?;
    let mut targets = Vec::new();
    match fields.get("targets") {
        Some((v, p)) => {
            let items = walk.list(v, &p);
            if items.is_empty() && matches!(v, Value::Sequence(_)) {
                walk.error(&p, "is empty: give the model at least one target");
            }
            for (v, p) in items {
                if let Some(t) = read_target(walk, v, p) {
                    targets.push(t);
                }
            }
        }
        None => walk.error(
            &path.key("targets"),
            "missing: give the model at least one target, e.g. targets: [{ upstream: openai }]",
        ),
    }
    let names = |walk: &mut Walk<'_>, key: &str| match fields.get(key) {
        Some((v, p)) => walk.strings(v, &p),
        None => Vec::new(),
    };
    let fallbacks = names(walk, "fallbacks");
    let context_window_fallbacks = names(walk, "context_window_fallbacks");
    let strategy = read_strategy(walk, &fields);

    let mut retry = RetryConfig {
        attempts: DEFAULT_RETRIES,
        backoff: DEFAULT_BACKOFF,
        max_backoff: DEFAULT_MAX_BACKOFF,
        on_status: None,
    };
    if let Some((v, p)) = fields.get("retry") {
        if let Some(r) = walk.fields(v, &p, &["attempts", "backoff", "max_backoff", "on_status"]) {
            if let Some(n) = r
                .get("attempts")
                .and_then(|(v, p)| walk.number(v, &p, 0..=10))
            {
                retry.attempts = n as u32;
            }
            if let Some(d) = r.get("backoff").and_then(|(v, p)| walk.duration(v, &p)) {
                retry.backoff = d;
            }
            if let Some(d) = r.get("max_backoff").and_then(|(v, p)| walk.duration(v, &p)) {
                retry.max_backoff = d;
            }
            if let Some((v, p)) = r.get("on_status") {
                retry.on_status = Some(read_statuses(walk, v, &p));
            }
        }
    }
    let fail_over_on = fields
        .get("fail_over_on_status")
        .map(|(v, p)| read_statuses(walk, v, &p));
    let max_attempts = fields
        .get("max_attempts")
        .and_then(|(v, p)| walk.number(v, &p, 1..=100))
        .map_or(DEFAULT_MAX_ATTEMPTS, |n| n as u32);
    let deadline = fields
        .get("deadline")
        .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_TIMEOUT))
        .unwrap_or(DEFAULT_DEADLINE);
    let mut timeouts = TimeoutOverrides::default();
    if let Some((v, p)) = fields.get("timeouts") {
        if let Some(t) = walk.fields(v, &p, &["first_byte", "first_token", "idle", "total"]) {
            timeouts.first_byte = t
                .get("first_byte")
                .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_TIMEOUT));
            timeouts.first_token = t
                .get("first_token")
                .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_TIMEOUT));
            timeouts.idle = t
                .get("idle")
                .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_TIMEOUT));
            timeouts.total = t
                .get("total")
                .and_then(|(v, p)| walk.duration_at_least(v, &p, MIN_TIMEOUT));
        }
    }
    let pricing = fields.get("pricing").and_then(|(v, p)| {
        let f = walk.fields(v, &p, &["input_per_million", "output_per_million"])?;
        let mut read = |key: &str| match f.get(key) {
            Some((v, p)) => walk.float(v, &p),
            None => {
                walk.error(
                    &p.key(key),
                    "missing: give the price in US dollars per million tokens, e.g. 2.5",
                );
                None
            }
        };
        let input = read("input_per_million");
        let output = read("output_per_million");
        Some(crate::telemetry::metrics::Pricing {
            input_per_million: input?,
            output_per_million: output?,
        })
    });
    Some(ModelConfig {
        name,
        targets,
        fallbacks,
        context_window_fallbacks,
        pricing,
        strategy,
        retry,
        fail_over_on,
        max_attempts,
        deadline,
        timeouts,
        path,
    })
}

/// `strategy`, plus its `race` / `hedge` settings.
fn read_strategy(walk: &mut Walk<'_>, fields: &Fields<'_>) -> crate::routing::Strategy {
    use crate::routing::{HedgeDelay, Strategy};
    const NAMES: [&str; 6] = [
        "weighted",
        "priority",
        "least_busy",
        "latency",
        "race",
        "hedge",
    ];
    let name = match fields.get("strategy") {
        Some((v, p)) => match walk.strict_text(v, &p) {
            Some(name) if NAMES.contains(&name.as_str()) => name,
            Some(name) => {
                let hint = super::suggest::hint(&name, NAMES);
                walk.error(
                    &p,
                    format!(
                        "unknown strategy {name:?}{hint} (strategies: {})",
                        NAMES.join(", ")
                    ),
                );
                "weighted".to_owned()
            }
            None => "weighted".to_owned(),
        },
        None => "weighted".to_owned(),
    };
    for (key, owner) in [("race", "race"), ("hedge", "hedge")] {
        if let Some((_, p)) = fields.get(key) {
            if name != owner {
                walk.error(&p, format!("`{key}` settings need `strategy: {owner}`"));
            }
        }
    }
    match name.as_str() {
        "priority" => Strategy::Priority,
        "least_busy" => Strategy::LeastBusy,
        "latency" => Strategy::Latency,
        "race" => {
            let mut fanout = DEFAULT_RACE_FANOUT;
            if let Some((v, p)) = fields.get("race") {
                if let Some(r) = walk.fields(v, &p, &["fanout"]) {
                    if let Some(n) = r.get("fanout").and_then(|(v, p)| walk.number(v, &p, 2..=8)) {
                        fanout = n as usize;
                    }
                }
            }
            Strategy::Race { fanout }
        }
        "hedge" => {
            let mut delay = HedgeDelay::P95 {
                fallback: DEFAULT_HEDGE_DELAY,
            };
            if let Some((v, p)) = fields.get("hedge") {
                if let Some(h) = walk.fields(v, &p, &["delay"]) {
                    if let Some((v, p)) = h.get("delay") {
                        if v.as_str() == Some("p95") {
                            delay = HedgeDelay::P95 {
                                fallback: DEFAULT_HEDGE_DELAY,
                            };
                        } else if let Some(d) = walk.duration(v, &p) {
                            delay = HedgeDelay::Fixed(d);
                        }
                    }
                }
            }
            Strategy::Hedge { delay }
        }
        _ => Strategy::Weighted,
    }
}

/// A list of HTTP statuses (400–599).
fn read_statuses(walk: &mut Walk<'_>, value: &Value, path: &KeyPath) -> Vec<u16> {
    walk.list(value, path)
        .into_iter()
        .filter_map(|(v, p)| walk.number(v, &p, 400..=599).map(|n| n as u16))
        .collect()
}

fn read_target(walk: &mut Walk<'_>, value: &Value, path: KeyPath) -> Option<TargetConfig> {
    // `- openai` is shorthand for `- { upstream: openai }`.
    if let Value::String(_) = value {
        let upstream = walk.strict_text(value, &path)?;
        return Some(TargetConfig {
            upstream,
            model: None,
            deployment: None,
            weight: 1,
            path,
        });
    }
    let fields = walk.fields(value, &path, TARGET_KEYS)?;
    let upstream = match fields.get("upstream") {
        Some((v, p)) => walk.strict_text(v, &p)?,
        None => {
            walk.error(
                &path.key("upstream"),
                "missing: name the upstream that serves this target",
            );
            return None;
        }
    };
    let model = fields
        .get("model")
        .and_then(|(v, p)| walk.strict_text(v, &p));
    let deployment = fields
        .get("deployment")
        .and_then(|(v, p)| walk.strict_text(v, &p));
    let weight = fields
        .get("weight")
        .and_then(|(v, p)| walk.number(v, &p, 0..=1_000_000))
        .map(|w| w as u32)
        .unwrap_or(1);
    Some(TargetConfig {
        upstream,
        model,
        deployment,
        weight,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::check_base_url;

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        assert_eq!(
            check_base_url("http://localhost:11434/").unwrap(),
            "http://localhost:11434"
        );
        assert!(check_base_url("ftp://host").is_err());
        assert!(check_base_url("http://host/v1?key=x").is_err());
        let err = check_base_url("https://user:sk-secret@api.example.com/v1").unwrap_err();
        assert!(
            err.contains("credentials") && !err.contains("sk-secret"),
            "{err}"
        );
    }
}
