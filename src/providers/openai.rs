//! `provider: openai` — api.openai.com (or a proxy of it) with a Bearer key.
//!
//! `base_url` includes the `/v1` (`https://api.openai.com/v1`), as in the
//! OpenAI SDKs' `base_url`.

use super::{Endpoint, Provider, TargetAddress};

/// The OpenAI API.
pub struct OpenAi;

impl Provider for OpenAi {
    fn url(&self, target: &TargetAddress<'_>, endpoint: Endpoint) -> String {
        format!("{}{}", target.base_url, endpoint.suffix())
    }

    fn health_url(&self, target: &TargetAddress<'_>) -> String {
        format!("{}/models", target.base_url)
    }
}
