//! Router keys: who may call the router.
//!
//! With no keys (neither `server.auth.keys` nor `keys:`) the router is open
//! (the startup log says so). Otherwise a request must carry one of the keys as
//! `Authorization: Bearer <key>` (what the OpenAI SDKs and recent Anthropic
//! SDKs send), `api-key: <key>` (Azure-style clients) or `x-api-key: <key>`
//! (Anthropic's clients). The caller's key is never forwarded:
//! `forward::headers` removes all three headers. Keys are compared as
//! SHA-256 digests, one hash-map lookup per request (`quota::key` says why
//! that is safe); which models a key may call and its limits are applied
//! in `limits` once the body names the model.

use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;

use super::error::GatewayError;
use crate::quota::{KeySet, KeySpec};

/// The key the caller sent, from whichever header carries it.
fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .or_else(|| {
            ["api-key", "x-api-key"].iter().find_map(|name| {
                headers
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            })
        })
}

/// Finds the caller's key in `keys` (`quota::key` says why a hash-map
/// lookup of SHA-256 digests is safe against timing). `None` when the
/// router is open.
///
/// # Errors
/// [`GatewayError::Unauthorized`] when keys are configured and none
/// matches; [`GatewayError::KeyExpired`] for a key past its `expires`.
pub fn authenticate(
    headers: &HeaderMap,
    keys: &KeySet,
) -> Result<Option<Arc<KeySpec>>, GatewayError> {
    if keys.is_empty() {
        return Ok(None);
    }
    let Some(presented) = presented(headers) else {
        return Err(GatewayError::Unauthorized { key_sent: false });
    };
    let Some(key) = keys.lookup(presented) else {
        return Err(GatewayError::Unauthorized { key_sent: true });
    };
    if let Some(at) = key.expires.filter(|_| key.expired(SystemTime::now())) {
        return Err(GatewayError::KeyExpired {
            name: key.name.clone(),
            at,
        });
    }
    Ok(Some(key.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn keys(clear: &[&str]) -> KeySet {
        KeySet::new(
            clear
                .iter()
                .map(|k| {
                    let spec = KeySpec {
                        name: format!("k-{k}"),
                        models: Vec::new(),
                        limits: Default::default(),
                        expires: None,
                        labels: Arc::new([]),
                        state: Arc::default(),
                        counters: None,
                    };
                    (crate::quota::key::sha256(k.as_bytes()), Arc::new(spec))
                })
                .collect(),
        )
    }

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn open_router_accepts_anything() {
        assert!(authenticate(&HeaderMap::new(), &KeySet::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn accepts_a_bearer_or_api_key_header() {
        let keys = keys(&["sk-router-1"]);
        assert!(authenticate(&with("authorization", "Bearer sk-router-1"), &keys).is_ok());
        assert!(authenticate(&with("authorization", "bearer  sk-router-1"), &keys).is_ok());
        assert!(authenticate(&with("api-key", "sk-router-1"), &keys).is_ok());
        assert!(authenticate(&with("x-api-key", "sk-router-1"), &keys).is_ok());
    }

    #[test]
    fn rejects_missing_and_wrong_keys() {
        let keys = keys(&["sk-router-1"]);
        assert!(matches!(
            authenticate(&HeaderMap::new(), &keys),
            Err(GatewayError::Unauthorized { key_sent: false })
        ));
        assert!(matches!(
            authenticate(&with("authorization", "Bearer sk-router-2"), &keys),
            Err(GatewayError::Unauthorized { key_sent: true })
        ));
        assert!(matches!(
            authenticate(&with("authorization", "Basic abc"), &keys),
            Err(GatewayError::Unauthorized { key_sent: false })
        ));
    }
}
