//! How a Bedrock upstream is addressed and authenticated.
//!
//! `base_url` is the runtime endpoint of a region,
//! `https://bedrock-runtime.{region}.amazonaws.com` ([`default_base_url`]).
//! Chat completions go to `POST {base_url}/model/{modelId}/converse`, or
//! `/converse-stream` for a streamed request; the model id (a model id such
//! as `anthropic.claude-3-5-sonnet-20240620-v1:0`, an inference profile id,
//! or an ARN) is one percent-encoded path segment, as the AWS SDKs send it
//! (`:` → `%3A`, `/` → `%2F`).
//!
//! Credentials: a Bedrock API key (`api_key:`) goes in `Authorization:
//! Bearer` (the trait's default); AWS access keys sign each request with
//! SigV4 instead (`sign.rs`, applied by the caller).
//!
//! Health checks: `GET {base_url}/ping`. The runtime endpoint has no read
//! operation that is cheap and needs no permission (listing models lives
//! on the control-plane host `bedrock.{region}…`), and a probe cannot be
//! SigV4-signed (it carries at most the static credential header), so the
//! probe asks the endpoint's unauthenticated ping path: it checks that the
//! regional endpoint answers, not that the credentials or the model work.
//! That path is not part of the Converse API reference; where it does not
//! answer 2xx, set `health_check.path`, or leave active checks off and let
//! passive health (failed attempts) mark the upstream down.

use super::super::{encode_segment, Endpoint, Protocol, Provider, TargetAddress};

/// Amazon Bedrock's Converse API.
pub struct Bedrock;

/// The runtime endpoint of `region`: `https://bedrock-runtime.{region}.amazonaws.com`.
pub fn default_base_url(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

impl Provider for Bedrock {
    fn url(&self, target: &TargetAddress<'_>, _endpoint: Endpoint) -> String {
        format!(
            "{}/model/{}/converse",
            target.base_url,
            encode_segment(target.model)
        )
    }

    fn stream_url(&self, target: &TargetAddress<'_>, _endpoint: Endpoint) -> Option<String> {
        Some(format!(
            "{}/model/{}/converse-stream",
            target.base_url,
            encode_segment(target.model)
        ))
    }

    fn health_url(&self, target: &TargetAddress<'_>) -> String {
        format!("{}/ping", target.base_url)
    }

    fn protocol(&self) -> Protocol {
        Protocol::Bedrock
    }

    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::ChatCompletions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn target<'a>(base_url: &'a str, model: &'a str) -> TargetAddress<'a> {
        TargetAddress {
            base_url,
            model,
            deployment: "",
            api_version: "",
        }
    }

    #[test]
    fn converse_and_converse_stream_carry_the_encoded_model_id() {
        let base = default_base_url("us-east-1");
        assert_eq!(base, "https://bedrock-runtime.us-east-1.amazonaws.com");
        let t = target(&base, "anthropic.claude-3-5-sonnet-20240620-v1:0");
        assert_eq!(
            Bedrock.url(&t, Endpoint::ChatCompletions),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        assert_eq!(
            Bedrock.stream_url(&t, Endpoint::ChatCompletions).as_deref(),
            Some("https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream")
        );
        let arn = target(
            &base,
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x",
        );
        assert!(Bedrock
            .url(&arn, Endpoint::ChatCompletions)
            .ends_with("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x/converse"));
        assert_eq!(
            Bedrock.health_url(&t),
            "https://bedrock-runtime.us-east-1.amazonaws.com/ping"
        );
        assert_eq!(Bedrock.protocol(), Protocol::Bedrock);
        assert!(Bedrock.serves(Endpoint::ChatCompletions));
        for endpoint in [
            Endpoint::Completions,
            Endpoint::Embeddings,
            Endpoint::Responses,
        ] {
            assert!(!Bedrock.serves(endpoint));
        }
    }

    #[test]
    fn an_api_key_is_a_bearer_token() {
        let (name, value) = Bedrock
            .credential(&Secret::new("ABSKexample".into()))
            .expect("a valid key");
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value, "Bearer ABSKexample");
        assert!(value.is_sensitive());
    }
}
