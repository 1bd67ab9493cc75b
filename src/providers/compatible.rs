//! `provider: openai-compatible` — vLLM, llama.cpp's `llama-server`, LM Studio,
//! and anything else that serves the OpenAI API. The key is optional.
//!
//! `base_url` includes the `/v1` (`http://localhost:8000/v1`), exactly what
//! one would give an OpenAI SDK as `base_url`.

use super::{Endpoint, Provider, TargetAddress};

/// Any OpenAI-compatible server.
pub struct Compatible;

impl Provider for Compatible {
    fn url(&self, target: &TargetAddress<'_>, endpoint: Endpoint) -> String {
        format!("{}{}", target.base_url, endpoint.suffix())
    }

    fn health_url(&self, target: &TargetAddress<'_>) -> String {
        format!("{}/models", target.base_url)
    }
}
