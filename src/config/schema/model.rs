//! `models:` — targets, strategy, retries and fallbacks of each model.

use std::time::Duration;

use serde_yaml::Value;

use super::MIN_TIMEOUT;
use crate::config::keypath::KeyPath;
use crate::config::walk::{Fields, Walk};
use crate::routing::Timeouts;

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
            first_token_auto: self.first_token.is_none() && base.first_token_auto,
            idle: self.idle.unwrap_or(base.idle),
            total: self.total.unwrap_or(base.total),
        }
    }
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
    /// `resume`: continue a stream that broke after its first token.
    pub resume: Option<crate::routing::ResumePolicy>,
    /// `system_prompt`, `defaults`, `clamp`, `on_exhausted`.
    pub requests: crate::routing::RequestPolicy,
    /// `cache`: how long its answers are kept (off when `None`).
    pub cache: Option<Duration>,
    /// `rpm`/`tpm`: the default limits of each of its targets.
    pub rates: crate::quota::Rates,
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
    /// `rpm`/`tpm` of this target (each unset one falls back to the model's).
    pub rates: crate::quota::Rates,
    /// The path of this entry.
    pub path: KeyPath,
}

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
    "resume",
    "system_prompt",
    "defaults",
    "clamp",
    "on_exhausted",
    "cache",
    "rpm",
    "tpm",
];

const TARGET_KEYS: &[&str] = &["upstream", "model", "deployment", "weight", "rpm", "tpm"];

/// `rpm` and `tpm` of a model or target entry.
fn read_rates(walk: &mut Walk<'_>, fields: &Fields<'_>) -> crate::quota::Rates {
    crate::quota::Rates {
        rpm: fields
            .get("rpm")
            .and_then(|(v, p)| walk.number(v, &p, 1..=100_000_000)),
        tpm: fields
            .get("tpm")
            .and_then(|(v, p)| walk.number(v, &p, 1..=100_000_000_000)),
    }
}

pub(super) fn read_model(
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
    let resume = fields
        .get("resume")
        .and_then(|(v, p)| read_resume(walk, v, &p));
    let requests = read_request_policy(walk, &fields);
    let cache = fields
        .get("cache")
        .and_then(|(v, p)| read_model_cache(walk, v, &p));
    let rates = read_rates(walk, &fields);
    Some(ModelConfig {
        cache,
        name,
        rates,
        targets,
        resume,
        requests,
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

/// How long a model's answers are cached with `cache: true`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// `cache`: `true`, `false`, or `{ ttl }`.
fn read_model_cache(walk: &mut Walk<'_>, v: &Value, p: &KeyPath) -> Option<Duration> {
    match v {
        Value::Bool(true) => Some(DEFAULT_CACHE_TTL),
        Value::Bool(false) => None,
        Value::Mapping(_) => {
            let f = walk.fields(v, p, &["ttl"])?;
            match f.get("ttl") {
                Some((v, p)) => walk.duration_at_least(v, &p, Duration::from_secs(1)),
                None => Some(DEFAULT_CACHE_TTL),
            }
        }
        _ => {
            walk.error(p, "expected true, false or { ttl: 10m }");
            None
        }
    }
}

/// Most bytes of a `system_prompt` or `on_exhausted` text.
const MAX_POLICY_TEXT: usize = 64 * 1024;

/// `system_prompt`, `defaults`, `clamp` and `on_exhausted`.
fn read_request_policy(walk: &mut Walk<'_>, fields: &Fields<'_>) -> crate::routing::RequestPolicy {
    use crate::routing::{Clamp, RequestPolicy, SystemPrompt, SystemPromptMode};
    let mut policy = RequestPolicy::default();
    let text = |walk: &mut Walk<'_>, v: &Value, p: &KeyPath| -> Option<String> {
        let t = walk.strict_text(v, p)?;
        if t.trim().is_empty() {
            walk.error(p, "is empty: write the text, or remove the key");
            return None;
        }
        if t.len() > MAX_POLICY_TEXT {
            walk.error(p, "is longer than 64KiB");
            return None;
        }
        Some(t)
    };
    if let Some((v, p)) = fields.get("system_prompt") {
        policy.system_prompt = match v {
            Value::Mapping(_) => walk.fields(v, &p, &["text", "mode"]).and_then(|f| {
                let mode = match f.get("mode") {
                    None => SystemPromptMode::IfMissing,
                    Some((v, p)) => match walk.strict_text(v, &p).as_deref() {
                        Some("if_missing") => SystemPromptMode::IfMissing,
                        Some("always") => SystemPromptMode::Always,
                        Some(other) => {
                            walk.error(&p, format!("unknown mode {other:?}: `if_missing` (the default) or `always`"));
                            SystemPromptMode::IfMissing
                        }
                        None => SystemPromptMode::IfMissing,
                    },
                };
                match f.get("text") {
                    Some((v, p)) => text(walk, v, &p).map(|text| SystemPrompt { text, mode }),
                    None => {
                        walk.error(&p.key("text"), "missing: the system prompt's text");
                        None
                    }
                }
            }),
            _ => text(walk, v, &p).map(|text| SystemPrompt {
                text,
                mode: SystemPromptMode::IfMissing,
            }),
        };
    }
    if let Some((v, p)) = fields.get("defaults") {
        match v {
            Value::Mapping(map) => {
                for (key, value) in map {
                    let Some(key) = key.as_str() else {
                        walk.error(&p, "keys must be request member names, e.g. temperature");
                        continue;
                    };
                    let kp = p.key(key);
                    if matches!(key, "model" | "messages" | "stream" | "input" | "prompt") {
                        walk.error(
                            &kp,
                            "is the request itself, not a parameter: it can't have a default",
                        );
                        continue;
                    }
                    match serde_json::to_string(value) {
                        Ok(json) if !value.is_null() => {
                            policy.defaults.push((key.to_owned(), json))
                        }
                        _ => walk.error(
                            &kp,
                            "expected a JSON value (a number, string, true/false, list or mapping)",
                        ),
                    }
                }
            }
            _ => walk.error(
                &p,
                "expected a mapping, e.g. { temperature: 0.2, max_tokens: 1024 }",
            ),
        }
    }
    if let Some((v, p)) = fields.get("clamp") {
        match v {
            Value::Mapping(map) => {
                for (key, value) in map {
                    let Some(key) = key.as_str() else {
                        walk.error(&p, "keys must be request member names, e.g. max_tokens");
                        continue;
                    };
                    let kp = p.key(key);
                    let (min, max) = match value {
                        Value::Number(_) => match walk.float(value, &kp) {
                            Some(max) => (None, Some(max)),
                            // Already reported.
                            None => continue,
                        },
                        Value::Mapping(_) => match walk.fields(value, &kp, &["min", "max"]) {
                            Some(f) => (
                                f.get("min").and_then(|(v, p)| walk.float(v, &p)),
                                f.get("max").and_then(|(v, p)| walk.float(v, &p)),
                            ),
                            None => continue,
                        },
                        _ => {
                            walk.error(
                                &kp,
                                "expected a highest value (max_tokens: 4096) or { min, max }",
                            );
                            continue;
                        }
                    };
                    if min.is_none() && max.is_none() {
                        walk.error(&kp, "give `min`, `max` or both");
                        continue;
                    }
                    if let (Some(lo), Some(hi)) = (min, max) {
                        if lo > hi {
                            walk.error(&kp, "`min` is above `max`");
                            continue;
                        }
                    }
                    policy.clamps.push(Clamp {
                        key: key.to_owned(),
                        min,
                        max,
                    });
                }
            }
            _ => walk.error(
                &p,
                "expected a mapping, e.g. { max_tokens: 4096, temperature: { max: 1 } }",
            ),
        }
    }
    if let Some((v, p)) = fields.get("on_exhausted") {
        policy.on_exhausted = text(walk, v, &p);
    }
    policy
}

/// `resume`: `true`, `false`, or `{ max_resumes, max_text }`.
fn read_resume(
    walk: &mut Walk<'_>,
    v: &Value,
    p: &KeyPath,
) -> Option<crate::routing::ResumePolicy> {
    use crate::routing::ResumePolicy;
    match v {
        Value::Bool(true) => Some(ResumePolicy::default()),
        Value::Bool(false) => None,
        Value::Mapping(_) => {
            let f = walk.fields(v, p, &["max_resumes", "max_text"])?;
            let mut policy = ResumePolicy::default();
            if let Some(n) = f
                .get("max_resumes")
                .and_then(|(v, p)| walk.number(v, &p, 0..=10))
            {
                policy.max_resumes = n as u32;
            }
            if let Some(n) = f.get("max_text").and_then(|(v, p)| walk.bytes(v, &p)) {
                if n == 0 || n > 16 << 20 {
                    walk.error(&p.key("max_text"), "must be between 1 byte and 16MiB");
                } else {
                    policy.max_text = n as usize;
                }
            }
            (policy.max_resumes > 0).then_some(policy)
        }
        _ => {
            walk.error(
                p,
                "expected true, false or { max_resumes: 2, max_text: 128KiB }",
            );
            None
        }
    }
}

/// `strategy`, plus its `race` / `hedge` settings.
pub(super) fn read_strategy(walk: &mut Walk<'_>, fields: &Fields<'_>) -> crate::routing::Strategy {
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
                let hint = crate::config::suggest::hint(&name, NAMES);
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
pub(super) fn read_statuses(walk: &mut Walk<'_>, value: &Value, path: &KeyPath) -> Vec<u16> {
    walk.list(value, path)
        .into_iter()
        .filter_map(|(v, p)| walk.number(v, &p, 400..=599).map(|n| n as u16))
        .collect()
}

pub(super) fn read_target(
    walk: &mut Walk<'_>,
    value: &Value,
    path: KeyPath,
) -> Option<TargetConfig> {
    // `- openai` is shorthand for `- { upstream: openai }`.
    if let Value::String(_) = value {
        let upstream = walk.strict_text(value, &path)?;
        return Some(TargetConfig {
            upstream,
            model: None,
            deployment: None,
            weight: 1,
            rates: crate::quota::Rates::default(),
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
    let rates = read_rates(walk, &fields);
    Some(TargetConfig {
        upstream,
        model,
        deployment,
        weight,
        rates,
        path,
    })
}
