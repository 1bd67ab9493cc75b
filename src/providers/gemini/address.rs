//! How a Gemini upstream is addressed and authenticated.
//!
//! `base_url` is the API's root (`https://generativelanguage.googleapis.com`,
//! the default); a trailing `/v1beta` is accepted too. The model is in the
//! path, not the body: chat completions go to
//! `POST {root}/v1beta/models/{model}:generateContent`, streamed ones to
//! `POST {root}/v1beta/models/{model}:streamGenerateContent?alt=sse` (SSE,
//! each `data:` one whole `GenerateContentResponse`). The key goes in
//! `x-goog-api-key`. Health checks use `GET {root}/v1beta/models`.
//!
//! Only Google AI Studio keys are supported; Vertex AI (OAuth tokens from a
//! service account, another URL scheme) is not.

use http::{HeaderName, HeaderValue};

use super::super::{encode_segment, Endpoint, Protocol, Provider, TargetAddress};
use crate::secret::Secret;

/// The Gemini API (`generativelanguage.googleapis.com`).
pub struct Gemini;

fn root(base_url: &str) -> &str {
    base_url.strip_suffix("/v1beta").unwrap_or(base_url)
}

impl Provider for Gemini {
    fn url(&self, target: &TargetAddress<'_>, _endpoint: Endpoint) -> String {
        format!(
            "{}/v1beta/models/{}:generateContent",
            root(target.base_url),
            encode_segment(target.model)
        )
    }

    fn stream_url(&self, target: &TargetAddress<'_>, _endpoint: Endpoint) -> Option<String> {
        Some(format!(
            "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
            root(target.base_url),
            encode_segment(target.model)
        ))
    }

    fn credential(&self, key: &Secret) -> Option<(HeaderName, HeaderValue)> {
        let mut value = HeaderValue::from_str(key.expose()).ok()?;
        value.set_sensitive(true);
        Some((HeaderName::from_static("x-goog-api-key"), value))
    }

    fn health_url(&self, target: &TargetAddress<'_>) -> String {
        format!("{}/v1beta/models", root(target.base_url))
    }

    fn protocol(&self) -> Protocol {
        Protocol::Gemini
    }

    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::ChatCompletions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(base_url: &'a str, model: &'a str) -> TargetAddress<'a> {
        TargetAddress {
            base_url,
            model,
            deployment: "",
            api_version: "",
        }
    }

    #[test]
    fn chat_completions_go_to_generate_content_with_the_key_in_x_goog_api_key() {
        let root = "https://generativelanguage.googleapis.com";
        for base in [root.to_owned(), format!("{root}/v1beta")] {
            let target = target(&base, "gemini-2.5-flash");
            assert_eq!(
                Gemini.url(&target, Endpoint::ChatCompletions),
                format!("{root}/v1beta/models/gemini-2.5-flash:generateContent")
            );
            assert_eq!(
                Gemini.stream_url(&target, Endpoint::ChatCompletions),
                Some(format!(
                    "{root}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
                ))
            );
            assert_eq!(Gemini.health_url(&target), format!("{root}/v1beta/models"));
        }
        let (name, value) = Gemini
            .credential(&Secret::new("AIza-test".into()))
            .expect("a valid key");
        assert_eq!(name, "x-goog-api-key");
        assert_eq!(value, "AIza-test");
        assert!(value.is_sensitive());
        assert_eq!(Gemini.protocol(), Protocol::Gemini);
        assert!(Gemini.serves(Endpoint::ChatCompletions));
        for other in [
            Endpoint::Completions,
            Endpoint::Embeddings,
            Endpoint::Responses,
        ] {
            assert!(!Gemini.serves(other));
        }
    }

    #[test]
    fn the_model_is_one_escaped_path_segment() {
        let target = target("http://localhost:9000", "tunedModels/my model:v1");
        assert_eq!(
            Gemini.url(&target, Endpoint::ChatCompletions),
            "http://localhost:9000/v1beta/models/tunedModels%2Fmy%20model%3Av1:generateContent"
        );
    }
}
