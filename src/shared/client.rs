//! The Redis connection: lazy, multiplexed, reconnecting, bounded in time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::telemetry::metrics::Metrics;

/// `state.redis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `url`: `redis://[user:password@]host:port/db` (or `rediss://` for TLS
    /// — not built in this binary; refused by the config check).
    pub url: String,
    /// `on_error`: what limits do while Redis is unreachable.
    pub on_error: OnError,
    /// `timeout`: the longest one operation may take.
    pub timeout: Duration,
    /// `prefix`: the start of every key.
    pub prefix: String,
}

/// `state.redis.on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Admit by this replica's own (in-memory) limits until Redis is back.
    FailOpen,
    /// Refuse limited keys' requests (`503`) until Redis is back.
    FailClosed,
}

/// Redis could not be used for this operation (down, slow, refused): the
/// caller applies `on_error`. Says what went wrong, never a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Redis is unavailable: {0}")]
pub struct Unavailable(pub String);

/// After a failure, Redis is not asked again for this long: requests meanwhile
/// take the `on_error` path at once instead of each waiting a timeout.
const BACK_OFF: Duration = Duration::from_secs(1);

/// The process's Redis client.
pub struct Redis {
    config: RedisConfig,
    manager: ConnectionManager,
    /// Milliseconds after `epoch` until which Redis is not asked (0: up).
    down_until_ms: AtomicU64,
    epoch: Instant,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only its host part is shown.
        f.debug_struct("Redis")
            .field("address", &address_of(&self.config.url))
            .finish_non_exhaustive()
    }
}

/// `host:port/db` of a Redis URL, without any user or password.
pub(crate) fn address_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

impl Redis {
    /// A client for `config`; connects on first use (a Redis that is down at
    /// start does not stop the router).
    ///
    /// # Errors
    /// A URL the client cannot use.
    pub fn new(config: RedisConfig, metrics: Arc<Metrics>) -> Result<Redis, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("state.redis.url: {e}"))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| format!("state.redis: {e}"))?;
        Ok(Redis {
            config,
            manager,
            down_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            metrics,
        })
    }

    /// Its settings.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// `prefix` + `rest`.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.config.prefix)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether Redis answered its last operation (or has not been asked).
    pub fn is_up(&self) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) == 0
    }

    /// Runs `op` on the connection within `timeout`; a failure marks Redis
    /// down for [`BACK_OFF`] (one log line per outage, a metric per error).
    pub(crate) async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let down_until = self.down_until_ms.load(Ordering::Relaxed);
        if down_until != 0 && self.now_ms() < down_until {
            return Err(Unavailable(
                "it failed moments ago; not asked again yet".into(),
            ));
        }
        let result = tokio::time::timeout(self.config.timeout, op(self.manager.clone())).await;
        let error = match result {
            Ok(Ok(value)) => {
                if self.down_until_ms.swap(0, Ordering::Relaxed) != 0 {
                    tracing::info!(redis = address_of(&self.config.url), "Redis answers again");
                    self.metrics.redis_up.set(1);
                }
                return Ok(value);
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!(
                "no answer within {:?} (state.redis.timeout)",
                self.config.timeout
            ),
        };
        self.metrics.redis_errors.with_label_values(&[what]).inc();
        let until = self.now_ms() + BACK_OFF.as_millis() as u64;
        if self.down_until_ms.swap(until.max(1), Ordering::Relaxed) == 0 {
            self.metrics.redis_up.set(0);
            tracing::error!(
                redis = address_of(&self.config.url), op = what, error = %error,
                on_error = match self.config.on_error { OnError::FailOpen => "fail_open", OnError::FailClosed => "fail_closed" },
                "Redis is unavailable; limits follow state.redis.on_error until it answers"
            );
        }
        Err(Unavailable(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_never_shows_a_password() {
        assert_eq!(
            address_of("redis://:s3cret@10.0.0.5:6379/0"),
            "10.0.0.5:6379/0"
        );
        assert_eq!(address_of("redis://user:pw@redis:6379"), "redis:6379");
        assert_eq!(address_of("redis://127.0.0.1:6379"), "127.0.0.1:6379");
    }
}
