//! `keys:` — router keys with what each may do — and `state:`, where
//! budgets are kept across restarts.

use std::path::PathBuf;
use std::time::SystemTime;

use serde_yaml::Value;

use crate::config::keypath::KeyPath;
use crate::config::walk::Walk;
use crate::quota::key::{parse_digest, sha256, Digest};
use crate::quota::{calendar, Budget, Limits};

/// Most entries `keys:` may have (each is a metric series and a little state).
pub const MAX_KEYS: usize = 10_000;

/// Most `labels` one key may have.
pub const MAX_LABELS: usize = 8;

/// Longest label name, in bytes (`[a-z0-9_]`).
pub const MAX_LABEL_NAME: usize = 32;

/// Longest label value, in bytes.
pub const MAX_LABEL_VALUE: usize = 64;

/// Longest key name, in bytes (`[A-Za-z0-9._-]`).
pub const MAX_KEY_NAME: usize = 64;

/// Where the state file goes when `state.file` is not set: beside the config.
pub const DEFAULT_STATE_FILE: &str = "switchyard-state.json";

/// One entry of `keys:`.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    /// `name`
    pub name: String,
    /// SHA-256 of the key (from `sha256`, or of `key`'s value).
    pub digest: Digest,
    /// `models`, each with its path; empty: every model.
    pub models: Vec<(String, KeyPath)>,
    /// `rpm`, `tpm`, `max_parallel`, `budget`.
    pub limits: Limits,
    /// `expires`
    pub expires: Option<SystemTime>,
    /// `labels`, in file order.
    pub labels: Vec<(String, String)>,
    /// The path of this entry.
    pub path: KeyPath,
}

/// `state:`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateConfig {
    /// `state.file`, as written (relative paths are relative to the config
    /// file's directory); `None`: [`DEFAULT_STATE_FILE`] there.
    pub file: Option<PathBuf>,
    /// `state.redis`: share limits, budgets (and cache entries) with the
    /// other replicas.
    pub redis: Option<crate::shared::RedisConfig>,
}

const KEY_KEYS: &[&str] = &[
    "name",
    "key",
    "sha256",
    "models",
    "rpm",
    "tpm",
    "max_parallel",
    "budget",
    "expires",
    "labels",
];

const HASH_HINT: &str = "run `switchyard key new NAME` for a new key and its line, or hash an existing one with `printf %s \"$KEY\" | sha256sum` and write `sha256: <hex>`; or keep the key in an environment variable and write `key: ${VAR}`";

pub(super) fn read_keys(walk: &mut Walk<'_>, value: &Value, path: &KeyPath) -> Vec<KeyConfig> {
    let items = walk.list(value, path);
    if items.len() > MAX_KEYS {
        walk.error(
            path,
            format!(
                "{} keys; one config may declare at most {MAX_KEYS}",
                items.len()
            ),
        );
        return Vec::new();
    }
    items
        .into_iter()
        .filter_map(|(v, p)| read_key(walk, v, p))
        .collect()
}

fn read_key(walk: &mut Walk<'_>, value: &Value, path: KeyPath) -> Option<KeyConfig> {
    let fields = walk.fields(value, &path, KEY_KEYS)?;
    let name = match fields.get("name") {
        Some((v, p)) => {
            let name = walk.strict_text(v, &p)?;
            let ok = !name.is_empty()
                && name.len() <= MAX_KEY_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                walk.error(
                    &p,
                    format!("{name:?} is not a key name: use 1 to {MAX_KEY_NAME} letters, digits, `.`, `_` or `-` (it appears in logs and metrics)"),
                );
                return None;
            }
            Some(name)
        }
        None => {
            walk.error(
                &path.key("name"),
                "missing: give the key a name (it appears in logs, metrics and /stats instead of the key)",
            );
            None
        }
    };
    let digest = match (fields.get("sha256"), fields.get("key")) {
        (Some(_), Some((_, p))) => {
            walk.error(&p, "give either `sha256` or `key`, not both");
            None
        }
        (Some((Value::Number(_), p)), None) => {
            // A digest of only digits (or digits and one `e`) reads as a number.
            walk.error(
                &p,
                "YAML reads this digest as a number: quote it (sha256: \"…\")",
            );
            None
        }
        (Some((v, p)), None) => {
            let text = walk.strict_text(v, &p)?;
            let digest = parse_digest(&text);
            if digest.is_none() {
                walk.error(
                    &p,
                    "expected 64 hex digits (the SHA-256 of the key): `printf %s \"$KEY\" | sha256sum`",
                );
            }
            digest
        }
        (None, Some((v, p))) => {
            let literal = !matches!(v, Value::String(s) if s.contains("${"));
            if literal {
                walk.error(
                    &p,
                    format!("a clear key is not written in router.yaml: {HASH_HINT}"),
                );
                None
            } else {
                let key = walk.strict_text(v, &p)?;
                if key.trim().is_empty() {
                    walk.error(
                        &p,
                        "the key is empty (its environment variable is set to \"\")",
                    );
                    None
                } else {
                    Some(sha256(key.as_bytes()))
                }
            }
        }
        (None, None) => {
            walk.error(
                &path,
                format!("missing: give the key as `sha256: <hex>` or `key: ${{VAR}}`; {HASH_HINT}"),
            );
            None
        }
    };
    let models = match fields.get("models") {
        Some((v, p)) => {
            let models = walk.strings(v, &p);
            if models.is_empty() && matches!(v, Value::Sequence(_)) {
                walk.error(&p, "is empty: leave `models` out to allow every model");
            }
            models
        }
        None => Vec::new(),
    };
    let mut limits = Limits {
        rpm: fields
            .get("rpm")
            .and_then(|(v, p)| walk.number(v, &p, 1..=100_000_000)),
        tpm: fields
            .get("tpm")
            .and_then(|(v, p)| walk.number(v, &p, 1..=100_000_000_000)),
        max_parallel: fields
            .get("max_parallel")
            .and_then(|(v, p)| walk.number(v, &p, 1..=1_000_000))
            .map(|n| n as u32),
        budget: Budget::default(),
    };
    if let Some((v, p)) = fields.get("budget") {
        if let Some(b) = walk.fields(v, &p, &["daily_usd", "monthly_usd"]) {
            let mut read = |key: &str| {
                b.get(key).and_then(|(v, p)| {
                    let n = walk.float(v, &p)?;
                    if n <= 0.0 {
                        walk.error(&p, "must be more than 0 (leave it out for no budget)");
                        return None;
                    }
                    Some(n)
                })
            };
            limits.budget = Budget {
                daily_usd: read("daily_usd"),
                monthly_usd: read("monthly_usd"),
            };
        }
    }
    let expires = fields.get("expires").and_then(|(v, p)| {
        let text = walk.strict_text(v, &p)?;
        calendar::parse_moment(&text)
            .map_err(|message| walk.error(&p, message))
            .ok()
    });
    let mut labels = Vec::new();
    if let Some((v, p)) = fields.get("labels") {
        let named = walk.named(v, &p);
        if named.len() > MAX_LABELS {
            walk.error(
                &p,
                format!(
                    "{} labels; a key may have at most {MAX_LABELS} (they go into every log line)",
                    named.len()
                ),
            );
        } else {
            for (label, v) in named {
                let lp = p.key(&label);
                let ok = !label.is_empty()
                    && label.len() <= MAX_LABEL_NAME
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    walk.error(
                        &lp,
                        format!("label names are 1 to {MAX_LABEL_NAME} of `a-z`, `0-9`, `_`"),
                    );
                    continue;
                }
                let Some(value) = walk.strict_text(v, &lp) else {
                    continue;
                };
                if value.len() > MAX_LABEL_VALUE {
                    walk.error(
                        &lp,
                        format!(
                            "is {} bytes; a label value may have at most {MAX_LABEL_VALUE}",
                            value.len()
                        ),
                    );
                    continue;
                }
                labels.push((label, value));
            }
        }
    }
    Some(KeyConfig {
        name: name?,
        digest: digest?,
        models,
        limits,
        expires,
        labels,
        path,
    })
}

pub(super) fn read_state(walk: &mut Walk<'_>, value: &Value, path: &KeyPath) -> StateConfig {
    let mut state = StateConfig::default();
    if let Some(fields) = walk.fields(value, path, &["file", "redis"]) {
        if let Some((v, p)) = fields.get("redis") {
            state.redis = super::redis::read_redis(walk, v, &p);
        }
        if let Some((v, p)) = fields.get("file") {
            if let Some(file) = walk.strict_text(v, &p) {
                if file.trim().is_empty() {
                    walk.error(&p, "is empty: write the path of the state file");
                } else {
                    state.file = Some(file.into());
                }
            }
        }
    }
    state
}
