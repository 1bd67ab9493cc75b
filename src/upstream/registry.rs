//! Runtime state and clients keyed by upstream identity, reused across reloads.
//!
//! `config::compile` asks the registry for each upstream's state and client;
//! an upstream with the same identity (name + address, and connect timeout
//! for the client) gets the same objects back, so a reload forgets nothing.
//! Entries no table uses any more are dropped after the swap.
//! Locked only while compiling a table, never on the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{TargetId, TargetState, UpstreamState};
use crate::h1::UpstreamClient;
use crate::telemetry::metrics::Metrics;

type Key = (String, String);

/// Shared runtime state, owned by the server for its whole life.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
    /// The response cache, made when a table first needs one.
    cache: Mutex<Option<Arc<crate::cache::Cache>>>,
    /// The Redis client of `state.redis`, kept while its settings stay.
    redis: Mutex<Option<Arc<crate::shared::Redis>>>,
    quota: Arc<crate::quota::Store>,
}

#[derive(Default)]
struct Inner {
    states: HashMap<Key, Arc<UpstreamState>>,
    clients: HashMap<(Key, Duration), UpstreamClient>,
    targets: HashMap<TargetId, Arc<TargetState>>,
}

impl Registry {
    /// The process's metrics (handles are resolved from it at compile time).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The response cache, bounded by `max_bytes` (the same cache for
    /// every table, so its entries outlive reloads).
    pub fn cache(&self, max_bytes: usize) -> Arc<crate::cache::Cache> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let cache = cache.get_or_insert_with(|| Arc::new(crate::cache::Cache::new(max_bytes)));
        cache.set_max_bytes(max_bytes);
        cache.clone()
    }

    /// The client for `config` (the same one across reloads while the
    /// settings stay, so its connection does).
    ///
    /// # Errors
    /// A URL the client cannot use.
    pub fn redis(
        &self,
        config: &crate::shared::RedisConfig,
    ) -> Result<Arc<crate::shared::Redis>, String> {
        let mut slot = self.redis.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(redis) = slot.as_ref().filter(|r| r.config() == config) {
            return Ok(redis.clone());
        }
        let redis = Arc::new(crate::shared::Redis::new(
            config.clone(),
            self.metrics.clone(),
        )?);
        *slot = Some(redis.clone());
        Ok(redis)
    }

    /// Router keys' runtime state (limits, spend), kept by key name.
    pub fn quota(&self) -> &Arc<crate::quota::Store> {
        &self.quota
    }

    /// The state for upstream `name` at `base_url`.
    pub fn state(&self, name: &str, base_url: &str) -> Arc<UpstreamState> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .states
            .entry((name.to_owned(), base_url.to_owned()))
            .or_default()
            .clone()
    }

    /// The client for upstream `name` at `base_url`.
    pub fn client(&self, name: &str, base_url: &str, connect_timeout: Duration) -> UpstreamClient {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .clients
            .entry(((name.to_owned(), base_url.to_owned()), connect_timeout))
            .or_insert_with(|| UpstreamClient::new(connect_timeout))
            .clone()
    }

    /// The runtime state of target `id`.
    pub fn target(&self, id: TargetId) -> Arc<TargetState> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.targets.entry(id).or_default().clone()
    }

    /// Forgets every entry the new table does not use: upstreams not in
    /// `keep` (name, base_url, connect timeout) and targets not in `targets`.
    pub fn retain(&self, keep: &[(String, String, Duration)], targets: &[TargetId]) {
        // Sets, so a table of many targets is not matched pairwise.
        let targets: std::collections::HashSet<&TargetId> = targets.iter().collect();
        let upstreams: std::collections::HashSet<(&str, &str)> = keep
            .iter()
            .map(|(n, u, _)| (n.as_str(), u.as_str()))
            .collect();
        let clients: std::collections::HashSet<(&str, &str, Duration)> = keep
            .iter()
            .map(|(n, u, t)| (n.as_str(), u.as_str(), *t))
            .collect();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.targets.retain(|id, _| targets.contains(id));
        inner
            .states
            .retain(|(name, url), _| upstreams.contains(&(name.as_str(), url.as_str())));
        inner.clients.retain(|((name, url), timeout), _| {
            clients.contains(&(name.as_str(), url.as_str(), *timeout))
        });
    }
}
