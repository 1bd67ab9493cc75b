//! `provider: ollama` — Ollama's OpenAI-compatible API under `/v1`.
//!
//! `base_url` is the server's root as Ollama users know it
//! (`http://localhost:11434`, like `OLLAMA_HOST`); a trailing `/v1` is
//! accepted too. Model names such as `qwen2.5:0.5b` go upstream as they are.
//! Health checks use `GET /api/tags`, which also proves the server can list
//! its models.

use super::{Endpoint, Provider, TargetAddress};

/// An Ollama server.
pub struct Ollama;

fn root(base_url: &str) -> &str {
    base_url.strip_suffix("/v1").unwrap_or(base_url)
}

impl Provider for Ollama {
    fn url(&self, target: &TargetAddress<'_>, endpoint: Endpoint) -> String {
        format!("{}/v1{}", root(target.base_url), endpoint.suffix())
    }

    fn health_url(&self, target: &TargetAddress<'_>) -> String {
        format!("{}/api/tags", root(target.base_url))
    }
}
