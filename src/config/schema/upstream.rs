//! `upstreams:` — one small reader per key of an upstream.

use std::time::Duration;

use serde_yaml::Value;

use super::bedrock::{read_bedrock, BedrockConfig};
use super::{MIN_HEALTH_INTERVAL, MIN_TIMEOUT};
use crate::config::keypath::KeyPath;
use crate::config::suggest;
use crate::config::walk::{Fields, Text, Walk};
use crate::providers::mock::MockConfig;
use crate::providers::ProviderKind;
use crate::routing::Timeouts;
use crate::secret::Secret;

/// Consecutive failures that open a target's circuit.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;

/// How long a circuit first stays open before one probe request: short, so
/// a target that was down for a moment gets its traffic back within
/// seconds (each failed probe doubles it, up to the ceiling below).
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(3);

/// The longest a circuit stays open after consecutive failed probes.
pub const DEFAULT_BREAKER_MAX_COOLDOWN: Duration = Duration::from_secs(60);

/// Interval of active health checks for local upstreams (Ollama, vLLM, …).
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(15);

/// Azure `api-version` used when the upstream does not set one: the newest
/// dated GA data-plane version.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// `upstreams.<name>.circuit_breaker`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit (0 = never).
    pub failures: u32,
    /// How long it first stays open before a probe.
    pub cooldown: Duration,
    /// The longest it stays open after consecutive failed probes.
    pub max_cooldown: Duration,
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
    /// `prefill`: how it continues a partial answer; `None` for the
    /// provider's default.
    pub prefill: Option<crate::routing::Prefill>,
    /// `health_check`
    pub health_check: HealthCheck,
    /// `mock`
    pub mock: MockConfig,
    /// `anthropic:` (Anthropic upstreams; defaults otherwise unused).
    pub anthropic: AnthropicConfig,
    /// `bedrock:` (Bedrock upstreams; defaults otherwise unused).
    pub bedrock: BedrockConfig,
    /// Set when a `${VAR}` in this upstream is unset.
    pub unresolved: Option<Unresolved>,
    /// The path of this entry, for later messages.
    pub path: KeyPath,
}

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
    "prefill",
    "anthropic",
    "bedrock",
];

/// `anthropic-version` sent when `anthropic.version` is not set: the
/// version every Anthropic SDK and example uses.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// `upstreams.<name>.anthropic` — settings of an Anthropic upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnthropicConfig {
    /// The `anthropic-version` header.
    pub version: String,
    /// `anthropic-beta` features, sent as one comma-separated header.
    pub beta: Vec<String>,
    /// `max_tokens` sent when the client gives none (Anthropic requires it).
    pub max_tokens: u32,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        AnthropicConfig {
            version: DEFAULT_ANTHROPIC_VERSION.to_owned(),
            beta: Vec::new(),
            max_tokens: crate::providers::anthropic::DEFAULT_MAX_TOKENS,
        }
    }
}

const TIMEOUT_KEYS: &[&str] = &["connect", "first_byte", "first_token", "idle", "total"];

pub(super) fn read_upstream(
    walk: &mut Walk<'_>,
    name: String,
    value: &Value,
    path: KeyPath,
) -> Option<UpstreamConfig> {
    let fields = walk.fields(value, &path, UPSTREAM_KEYS)?;
    let mut unset = Unset::default();
    let provider = read_provider(walk, &fields, &path)?;
    let mut base_url = read_base_url(walk, &fields, &path, provider, &mut unset);
    let api_key = read_api_key(walk, &fields, &path, provider, &mut unset);
    let api_version = read_api_version(walk, &fields, provider, &mut unset);
    let headers = read_headers(walk, &fields, &mut unset);
    let timeouts = read_timeouts(walk, &fields);
    let breaker = read_breaker(walk, &fields);
    let inject_stream_usage = read_inject_stream_usage(walk, &fields, provider);
    let prefill = read_prefill(walk, &fields, provider);
    let health_check = read_health_check(walk, &fields, provider);
    let mock = read_mock(walk, &fields, provider);
    let anthropic = read_anthropic(walk, &fields, provider);
    let bedrock = read_bedrock(
        walk,
        &fields,
        &path,
        provider,
        api_key.is_some(),
        &mut unset.0,
    );
    if provider == ProviderKind::Bedrock && base_url.is_empty() && !bedrock.region.is_empty() {
        base_url = crate::providers::bedrock::default_base_url(&bedrock.region);
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
        prefill,
        health_check,
        mock,
        anthropic,
        bedrock,
        unresolved: unset.0,
        path,
    })
}

/// The first unset `${VAR}` an upstream's keys refer to: it disables the
/// upstream (loaded, answered with "set VAR") rather than the whole file.
#[derive(Default)]
struct Unset(Option<Unresolved>);

impl Unset {
    fn note(&mut self, text: &Text, path: &KeyPath) {
        if let (None, Some(var)) = (&self.0, text.unset.first()) {
            self.0 = Some(Unresolved {
                path: path.clone(),
                var: var.clone(),
            });
        }
    }
}

/// `provider:` (required).
fn read_provider(walk: &mut Walk<'_>, fields: &Fields<'_>, path: &KeyPath) -> Option<ProviderKind> {
    let Some((v, p)) = fields.get("provider") else {
        walk.error(&path.key("provider"), "missing: say which provider this is (openai, openai-compatible, ollama, azure, anthropic, gemini, bedrock or mock)");
        return None;
    };
    let text = walk.strict_text(v, &p)?;
    if let Some((_, kind)) = ProviderKind::ALL.iter().find(|(s, _)| *s == text) {
        return Some(*kind);
    }
    let hint = suggest::hint(&text, ProviderKind::ALL.iter().map(|(s, _)| *s));
    let names: Vec<_> = ProviderKind::ALL.iter().map(|(s, _)| *s).collect();
    walk.error(
        &p,
        format!(
            "unknown provider {text:?}{hint} (providers: {})",
            names.join(", ")
        ),
    );
    None
}

/// `base_url:` (defaults for OpenAI and Ollama; none for the mock).
fn read_base_url(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    path: &KeyPath,
    provider: ProviderKind,
    unset: &mut Unset,
) -> String {
    let default_base = match provider {
        ProviderKind::OpenAi => Some("https://api.openai.com/v1".to_owned()),
        ProviderKind::Ollama => Some("http://localhost:11434".to_owned()),
        ProviderKind::Anthropic => Some("https://api.anthropic.com".to_owned()),
        ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com".to_owned()),
        _ => None,
    };
    let mut base_url = String::new();
    match (fields.get("base_url"), provider) {
        (Some((_, p)), ProviderKind::Mock) => walk.error(&p, "the mock provider makes no network calls; remove `base_url`"),
        (Some((v, p)), _) => {
            if let Some(text) = walk.text(v, &p) {
                unset.note(&text, &p);
                if text.unset.is_empty() {
                    match check_base_url(&text.value) {
                        Ok(url) => base_url = url,
                        Err(message) => walk.error(&p, message),
                    }
                }
            }
        }
        // Bedrock's default comes from `bedrock.region`, read later.
        (None, ProviderKind::Mock | ProviderKind::Bedrock) => {}
        (None, _) => match default_base {
            Some(url) => base_url = url,
            None => walk.error(
                &path.key("base_url"),
                format!("missing: provider {} needs the server's address, e.g. http://localhost:8000/v1", provider.as_str()),
            ),
        },
    }
    base_url
}

/// `api_key:` (required for OpenAI and Azure; an empty value sends none).
fn read_api_key(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    path: &KeyPath,
    provider: ProviderKind,
    unset: &mut Unset,
) -> Option<Secret> {
    let Some((v, p)) = fields.get("api_key") else {
        if matches!(
            provider,
            ProviderKind::OpenAi
                | ProviderKind::Azure
                | ProviderKind::Anthropic
                | ProviderKind::Gemini
        ) {
            walk.error(
                &path.key("api_key"),
                format!(
                    "missing: provider {} needs a key, e.g. api_key: \"${{{}}}\"",
                    provider.as_str(),
                    match provider {
                        ProviderKind::OpenAi => "OPENAI_API_KEY",
                        ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
                        ProviderKind::Gemini => "GEMINI_API_KEY",
                        _ => "AZURE_OPENAI_API_KEY",
                    }
                ),
            );
        }
        return None;
    };
    if provider == ProviderKind::Mock {
        walk.error(&p, "the mock provider takes no key; remove `api_key`");
        return None;
    }
    let text = walk.text(v, &p)?;
    unset.note(&text, &p);
    if !text.unset.is_empty() {
        return None;
    }
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
        return None;
    }
    (!text.value.is_empty()).then(|| Secret::new(text.value))
}

/// `api_version:` (Azure only, with a default).
fn read_api_version(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    provider: ProviderKind,
    unset: &mut Unset,
) -> Option<String> {
    match (fields.get("api_version"), provider) {
        (Some((v, p)), ProviderKind::Azure) => {
            let text = walk.text(v, &p)?;
            unset.note(&text, &p);
            Some(text.value)
        }
        (Some((_, p)), _) => {
            walk.error(&p, "only Azure upstreams take an `api_version`");
            None
        }
        (None, ProviderKind::Azure) => Some(DEFAULT_AZURE_API_VERSION.to_owned()),
        (None, _) => None,
    }
}

/// `headers:` sent with every request, names lowercased; the router's own
/// headers are refused.
fn read_headers(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    unset: &mut Unset,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    let Some((v, p)) = fields.get("headers") else {
        return headers;
    };
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
            unset.note(&text, &hp);
            if text.value.is_empty() {
                // `${OPENAI_ORG_ID:-}` unset: leave the header out.
            } else if http::HeaderValue::from_str(&text.value).is_err() {
                walk.error(&hp, "is not a valid header value (control characters?)");
            } else {
                headers.push((header.to_ascii_lowercase(), text.value));
            }
        }
    }
    headers
}

/// `timeouts:` (each at least [`MIN_TIMEOUT`]).
fn read_timeouts(walk: &mut Walk<'_>, fields: &Fields<'_>) -> Timeouts {
    let mut timeouts = Timeouts::default();
    let Some((v, p)) = fields.get("timeouts") else {
        return timeouts;
    };
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
        timeouts.first_token_auto = t.get("first_token").is_none();
        read("idle", &mut timeouts.idle);
        read("total", &mut timeouts.total);
    }
    timeouts
}

/// `circuit_breaker:` (`false` turns it off).
fn read_breaker(walk: &mut Walk<'_>, fields: &Fields<'_>) -> BreakerConfig {
    let mut breaker = BreakerConfig {
        failures: DEFAULT_BREAKER_FAILURES,
        cooldown: DEFAULT_BREAKER_COOLDOWN,
        max_cooldown: DEFAULT_BREAKER_MAX_COOLDOWN,
    };
    let Some((v, p)) = fields.get("circuit_breaker") else {
        return breaker;
    };
    match v {
        Value::Bool(false) => breaker.failures = 0,
        Value::Bool(true) => {}
        _ => {
            if let Some(b) = walk.fields(v, &p, &["failures", "cooldown", "max_cooldown"]) {
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
                if let Some((v, p)) = b.get("max_cooldown") {
                    if let Some(d) = walk.duration_at_least(v, &p, MIN_TIMEOUT) {
                        if d < breaker.cooldown {
                            walk.error(&p, "must be at least `cooldown`");
                        } else {
                            breaker.max_cooldown = d;
                        }
                    }
                }
            }
        }
    }
    breaker
}

/// `inject_stream_usage:` (not for the mock, which reports usage itself).
fn read_inject_stream_usage(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    provider: ProviderKind,
) -> bool {
    match fields.get("inject_stream_usage") {
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
    }
}

/// `prefill:` — `none`, `assistant` or `vllm` (not for the mock, which
/// cannot be resumed to).
fn read_prefill(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    provider: ProviderKind,
) -> Option<crate::routing::Prefill> {
    use crate::routing::Prefill;
    let (v, p) = fields.get("prefill")?;
    let name = walk.strict_text(v, &p)?;
    let Some(prefill) = Prefill::parse(&name) else {
        let hint = crate::config::suggest::hint(&name, Prefill::NAMES);
        walk.error(
            &p,
            format!(
                "unknown prefill {name:?}{hint}: `assistant` (the server continues a final assistant message: llama.cpp, Ollama, Anthropic), `vllm` (vLLM's continue_final_message) or `none`"
            ),
        );
        return None;
    };
    if provider == ProviderKind::Mock && prefill != Prefill::None {
        walk.error(
            &p,
            "the mock provider cannot continue a partial answer; remove `prefill`",
        );
        return None;
    }
    Some(prefill)
}

/// `health_check:` (on by default for local upstreams: Ollama and
/// OpenAI-compatible servers).
fn read_health_check(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    provider: ProviderKind,
) -> HealthCheck {
    let local = matches!(provider, ProviderKind::Ollama | ProviderKind::Compatible);
    let mut health_check = HealthCheck {
        interval: local.then_some(DEFAULT_HEALTH_INTERVAL),
        path: None,
    };
    let Some((v, p)) = fields.get("health_check") else {
        return health_check;
    };
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
    health_check
}

/// `mock:` (only for `provider: mock`).
fn read_mock(walk: &mut Walk<'_>, fields: &Fields<'_>, provider: ProviderKind) -> MockConfig {
    let mut mock = MockConfig {
        reply: None,
        first_token_delay: Duration::ZERO,
        token_delay: Duration::ZERO,
    };
    let Some((v, p)) = fields.get("mock") else {
        return mock;
    };
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
    mock
}

/// `anthropic:` (only for `provider: anthropic`): `version`, `beta` (a
/// string or a list) and `max_tokens` (the default for requests without one).
fn read_anthropic(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    provider: ProviderKind,
) -> AnthropicConfig {
    let mut config = AnthropicConfig::default();
    let Some((v, p)) = fields.get("anthropic") else {
        return config;
    };
    if provider != ProviderKind::Anthropic {
        walk.error(
            &p,
            "only `provider: anthropic` upstreams take `anthropic` settings",
        );
        return config;
    }
    let Some(a) = walk.fields(v, &p, &["version", "beta", "max_tokens"]) else {
        return config;
    };
    if let Some((v, p)) = a.get("version") {
        if let Some(version) = walk.strict_text(v, &p) {
            if http::HeaderValue::from_str(&version).is_ok() && !version.is_empty() {
                config.version = version;
            } else {
                walk.error(&p, "is not a valid header value");
            }
        }
    }
    if let Some((v, p)) = a.get("beta") {
        let items: Vec<(&Value, KeyPath)> = match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (item, p.index(i)))
                .collect(),
            other => vec![(other, p.clone())],
        };
        for (item, ip) in items {
            if let Some(feature) = walk.strict_text(item, &ip) {
                if feature.is_empty()
                    || feature.contains(',')
                    || http::HeaderValue::from_str(&feature).is_err()
                {
                    walk.error(
                        &ip,
                        "must be one beta feature name, e.g. prompt-caching-2024-07-31",
                    );
                } else {
                    config.beta.push(feature);
                }
            }
        }
    }
    if let Some(n) = a
        .get("max_tokens")
        .and_then(|(v, p)| walk.number(v, &p, 1..=1_000_000))
    {
        config.max_tokens = n as u32;
    }
    config
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
    // in it would leak there (ARCHITECTURE.md, invariant 6).
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(
            "must not contain credentials (user:password@); put the key in `api_key` or `headers`"
                .into(),
        );
    }
    Ok(trimmed.to_owned())
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
