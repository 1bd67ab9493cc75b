//! How an Anthropic upstream is addressed and authenticated.
//!
//! `base_url` is the API's root (`https://api.anthropic.com`, the default);
//! a trailing `/v1` is accepted too. Chat completions go to
//! `POST {root}/v1/messages`, translated; the key goes in `x-api-key`; the
//! `anthropic-version` (and any `anthropic-beta`) header is set per upstream
//! when the table compiles. Health checks use `GET {root}/v1/models`.

use http::{HeaderName, HeaderValue};

use super::super::{Endpoint, Protocol, Provider, TargetAddress};
use crate::secret::Secret;

/// The Anthropic Messages API.
pub struct Anthropic;

fn root(base_url: &str) -> &str {
    base_url.strip_suffix("/v1").unwrap_or(base_url)
}

impl Provider for Anthropic {
    fn url(&self, target: &TargetAddress<'_>, endpoint: Endpoint) -> String {
        match endpoint {
            Endpoint::CountTokens => format!("{}/v1/messages/count_tokens", root(target.base_url)),
            _ => format!("{}/v1/messages", root(target.base_url)),
        }
    }

    fn credential(&self, key: &Secret) -> Option<(HeaderName, HeaderValue)> {
        let mut value = HeaderValue::from_str(key.expose()).ok()?;
        value.set_sensitive(true);
        Some((HeaderName::from_static("x-api-key"), value))
    }

    fn health_url(&self, target: &TargetAddress<'_>) -> String {
        format!("{}/v1/models", root(target.base_url))
    }

    fn protocol(&self) -> Protocol {
        Protocol::Anthropic
    }

    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::ChatCompletions | Endpoint::CountTokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(base_url: &str) -> TargetAddress<'_> {
        TargetAddress {
            base_url,
            model: "claude-sonnet-4-5",
            deployment: "",
            api_version: "",
        }
    }

    #[test]
    fn chat_completions_go_to_the_messages_endpoint_with_the_key_in_x_api_key() {
        for base in ["https://api.anthropic.com", "https://api.anthropic.com/v1"] {
            assert_eq!(
                Anthropic.url(&target(base), Endpoint::ChatCompletions),
                "https://api.anthropic.com/v1/messages"
            );
            assert_eq!(
                Anthropic.health_url(&target(base)),
                "https://api.anthropic.com/v1/models"
            );
        }
        let (name, value) = Anthropic
            .credential(&Secret::new("sk-ant-test".into()))
            .expect("a valid key");
        assert_eq!(name, "x-api-key");
        assert_eq!(value, "sk-ant-test");
        assert!(value.is_sensitive());
        assert!(Anthropic.serves(Endpoint::ChatCompletions));
        assert!(!Anthropic.serves(Endpoint::Embeddings));
        assert!(!Anthropic.serves(Endpoint::Responses));
    }
}
