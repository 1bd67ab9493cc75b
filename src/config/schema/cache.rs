//! `cache:` — the response cache's bounds (models opt in with
//! `models.<name>.cache`).

use serde_yaml::Value;

use crate::cache::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRY_BYTES};
use crate::config::keypath::KeyPath;
use crate::config::walk::Walk;

/// `cache:`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// `max_bytes`: memory the cache may hold in all.
    pub max_bytes: usize,
    /// `max_entry_bytes`: the largest answer kept.
    pub max_entry_bytes: usize,
    /// `shared`: entries also kept in `state.redis`, for every replica.
    pub shared: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            shared: false,
        }
    }
}

/// Reads `cache:`.
pub(super) fn read_cache(walk: &mut Walk<'_>, value: &Value, path: &KeyPath) -> CacheConfig {
    let mut cache = CacheConfig::default();
    let Some(fields) = walk.fields(value, path, &["max_bytes", "max_entry_bytes", "shared"]) else {
        return cache;
    };
    if let Some((v, p)) = fields.get("max_bytes") {
        if let Some(n) = walk.bytes(v, &p) {
            if !(1024..=64 << 30).contains(&n) {
                walk.error(&p, "must be between 1KiB and 64GiB");
            } else {
                cache.max_bytes = n as usize;
            }
        }
    }
    if let Some((v, p)) = fields.get("max_entry_bytes") {
        if let Some(n) = walk.bytes(v, &p) {
            if n < 256 {
                walk.error(&p, "must be at least 256B");
            } else {
                cache.max_entry_bytes = n as usize;
            }
        }
    }
    match fields.get("shared") {
        Some((Value::Bool(b), _)) => cache.shared = *b,
        Some((_, p)) => walk.error(&p, "expected true or false"),
        None => {}
    }
    if cache.max_entry_bytes > cache.max_bytes {
        walk.error(
            &path.key("max_entry_bytes"),
            "must not be more than `max_bytes`",
        );
    }
    cache
}
