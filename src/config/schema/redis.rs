//! `state.redis` — where replicas share key limits, budgets and (with
//! `cache.shared`) response-cache entries.

use std::time::Duration;

use serde_yaml::Value;

use crate::config::keypath::KeyPath;
use crate::config::walk::Walk;
use crate::shared::{OnError, RedisConfig};

/// `state.redis.timeout` by default: a Redis on the same network answers in
/// well under a millisecond; a quarter second means it is in trouble.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// `state.redis.prefix` by default.
pub const DEFAULT_REDIS_PREFIX: &str = "switchyard:";

/// Reads `state.redis`.
pub(super) fn read_redis(
    walk: &mut Walk<'_>,
    value: &Value,
    path: &KeyPath,
) -> Option<RedisConfig> {
    let fields = walk.fields(value, path, &["url", "on_error", "timeout", "prefix"])?;
    let url = match fields.get("url") {
        Some((v, p)) => {
            let url = walk.strict_text(v, &p)?;
            let url = url.trim().to_owned();
            if url.starts_with("rediss://") {
                walk.error(
                    &p,
                    "TLS to Redis (rediss://) is not built into this binary: use redis:// on a private network, or a TLS sidecar",
                );
                return None;
            }
            if !url.starts_with("redis://") || url.len() <= "redis://".len() {
                // Never echo the URL: it may hold a password.
                walk.error(
                    &p,
                    "expected redis://[user:password@]host:port/db, e.g. \"${REDIS_URL}\"",
                );
                return None;
            }
            if let Err(e) = redis::Client::open(url.as_str()) {
                let detail = e.to_string().replace(&url, "<url>");
                walk.error(&p, format!("not a Redis URL: {detail}"));
                return None;
            }
            url
        }
        None => {
            walk.error(
                &path.key("url"),
                "missing: where Redis is, e.g. url: \"${REDIS_URL}\"",
            );
            return None;
        }
    };
    let on_error = match fields.get("on_error") {
        None => OnError::FailOpen,
        Some((v, p)) => match walk.strict_text(v, &p).as_deref() {
            Some("fail_open") => OnError::FailOpen,
            Some("fail_closed") => OnError::FailClosed,
            Some(other) => {
                walk.error(
                    &p,
                    format!("unknown {other:?}: `fail_open` (admit by each replica's own limits while Redis is away; the default) or `fail_closed` (refuse limited keys' requests with 503)"),
                );
                OnError::FailOpen
            }
            None => OnError::FailOpen,
        },
    };
    let timeout = fields
        .get("timeout")
        .and_then(|(v, p)| walk.duration_at_least(v, &p, Duration::from_millis(1)))
        .unwrap_or(DEFAULT_REDIS_TIMEOUT);
    let prefix = match fields.get("prefix") {
        Some((v, p)) => walk.strict_text(v, &p)?,
        None => DEFAULT_REDIS_PREFIX.to_owned(),
    };
    Some(RedisConfig {
        url,
        on_error,
        timeout,
        prefix,
    })
}
