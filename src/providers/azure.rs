//! `provider: azure` — Azure OpenAI deployments.
//!
//! `base_url` is the resource endpoint (`https://{resource}.openai.azure.com`).
//! Requests go to `/openai/deployments/{deployment}/{endpoint}?api-version=…`
//! with the key in the `api-key` header. The Responses API has no deployment
//! in its path: it goes to `/openai/responses?api-version=…` and the body's
//! `model` carries the deployment name.

use http::{HeaderName, HeaderValue};

use super::{encode_segment, Endpoint, Provider, TargetAddress};
use crate::secret::Secret;

/// An Azure OpenAI resource.
pub struct Azure;

impl Provider for Azure {
    fn url(&self, target: &TargetAddress<'_>, endpoint: Endpoint) -> String {
        let version = encode_segment(target.api_version);
        match endpoint {
            Endpoint::Responses => {
                format!("{}/openai/responses?api-version={version}", target.base_url)
            }
            _ => format!(
                "{}/openai/deployments/{}{}?api-version={version}",
                target.base_url,
                encode_segment(target.deployment),
                endpoint.suffix()
            ),
        }
    }

    fn credential(&self, key: &Secret) -> Option<(HeaderName, HeaderValue)> {
        let mut value = HeaderValue::from_str(key.expose()).ok()?;
        value.set_sensitive(true);
        Some((HeaderName::from_static("api-key"), value))
    }

    fn health_url(&self, target: &TargetAddress<'_>) -> String {
        format!(
            "{}/openai/models?api-version={}",
            target.base_url,
            encode_segment(target.api_version)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_a_deployment_with_its_api_version() {
        let target = TargetAddress {
            base_url: "https://res.openai.azure.com",
            model: "gpt-4o",
            deployment: "gpt-4o-prod",
            api_version: "2024-10-21",
        };
        assert_eq!(
            Azure.url(&target, Endpoint::ChatCompletions),
            "https://res.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            Azure.url(&target, Endpoint::Responses),
            "https://res.openai.azure.com/openai/responses?api-version=2024-10-21"
        );
    }

    #[test]
    fn sends_the_key_as_api_key() {
        let (name, value) = Azure.credential(&Secret::new("k".into())).unwrap();
        assert_eq!(name, "api-key");
        assert_eq!(value, "k");
        assert!(value.is_sensitive());
    }
}
