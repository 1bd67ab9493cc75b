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

use super::{UpstreamClient, UpstreamState};

type Key = (String, String);

/// Shared runtime state, owned by the server for its whole life.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    states: HashMap<Key, Arc<UpstreamState>>,
    clients: HashMap<(Key, Duration), UpstreamClient>,
}

impl Registry {
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

    /// Forgets every entry not in `keep` (name, base_url, connect timeout).
    pub fn retain(&self, keep: &[(String, String, Duration)]) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .states
            .retain(|(name, url), _| keep.iter().any(|(n, u, _)| n == name && u == url));
        inner.clients.retain(|((name, url), timeout), _| {
            keep.iter()
                .any(|(n, u, t)| n == name && u == url && t == timeout)
        });
    }
}
