//! Router keys: who may call the router.
//!
//! With `server.auth.keys` empty the router is open (the startup log says
//! so). Otherwise a request must carry one of the keys as
//! `Authorization: Bearer <key>` (what the OpenAI SDKs and recent Anthropic
//! SDKs send), `api-key: <key>` (Azure-style clients) or `x-api-key: <key>`
//! (Anthropic's clients). The caller's key is never forwarded:
//! `forward::headers` removes all three headers.

use http::HeaderMap;
use subtle::{Choice, ConstantTimeEq};

use super::error::GatewayError;
use crate::secret::Secret;

/// Checks the caller's key against `keys`.
///
/// # Errors
/// [`GatewayError::Unauthorized`] when keys are configured and none matches.
pub fn authenticate(headers: &HeaderMap, keys: &[Secret]) -> Result<(), GatewayError> {
    if keys.is_empty() {
        return Ok(());
    }
    let presented = headers
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
        });
    let Some(presented) = presented else {
        return Err(GatewayError::Unauthorized { key_sent: false });
    };
    // Compare every key in full, without early exit, so timing says nothing
    // about how much of a key matched: `ct_eq` compares every byte behind an
    // optimisation barrier (only a length mismatch returns at once), and
    // `Choice`'s `|` does not short-circuit across keys.
    let matched = keys.iter().fold(Choice::from(0), |found, key| {
        found | presented.as_bytes().ct_eq(key.expose().as_bytes())
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized { key_sent: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn open_router_accepts_anything() {
        assert!(authenticate(&HeaderMap::new(), &[]).is_ok());
    }

    #[test]
    fn accepts_a_bearer_or_api_key_header() {
        let keys = [Secret::new("sk-router-1".into())];
        assert!(authenticate(&with("authorization", "Bearer sk-router-1"), &keys).is_ok());
        assert!(authenticate(&with("authorization", "bearer  sk-router-1"), &keys).is_ok());
        assert!(authenticate(&with("api-key", "sk-router-1"), &keys).is_ok());
        assert!(authenticate(&with("x-api-key", "sk-router-1"), &keys).is_ok());
    }

    #[test]
    fn rejects_missing_and_wrong_keys() {
        let keys = [Secret::new("sk-router-1".into())];
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
