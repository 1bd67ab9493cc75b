//! The `router.yaml` schema: typed settings read through the walker.
//!
//! Every key, its default and its meaning is documented in `docs/config.md`;
//! a default here is a named constant with the reason for its number.
//! Cross-references (a target naming an upstream, fallbacks naming models)
//! are checked in `validate`; this file only reads what each key says.

mod bedrock;
mod cache;
mod keys;
mod model;
mod redis;
mod request_log;
mod server;
mod upstream;

use std::time::Duration;

use serde_yaml::Value;

use super::keypath::KeyPath;
use super::walk::{Fields, Walk};

pub use cache::*;
pub use keys::*;
pub use model::*;

pub use request_log::*;
pub use server::*;
pub use upstream::*;

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
    /// `cache:` (its bounds; models opt in).
    pub cache: CacheConfig,
    /// `keys:`, in file order.
    pub keys: Vec<KeyConfig>,
    /// `state:`
    pub state: StateConfig,
}

/// Shortest timeout, deadline or breaker cooldown accepted.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Shortest health-check interval accepted.
const MIN_HEALTH_INTERVAL: Duration = Duration::from_millis(50);

const TOP_KEYS: &[&str] = &[
    "server",
    "upstreams",
    "models",
    "request_log",
    "keys",
    "state",
    "cache",
];

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
    let cache = get("cache")
        .map(|(value, path)| read_cache(walk, value, &path))
        .unwrap_or_default();
    let keys = get("keys")
        .map(|(value, path)| read_keys(walk, value, &path))
        .unwrap_or_default();
    let state = get("state")
        .map(|(value, path)| read_state(walk, value, &path))
        .unwrap_or_default();
    Config {
        server,
        upstreams,
        models,
        request_log,
        cache,
        keys,
        state,
    }
}
