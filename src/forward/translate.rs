//! The request and answer of an upstream that speaks another protocol
//! (Anthropic, Gemini, Bedrock): the client's OpenAI body translated on the
//! way up (and, for Bedrock with AWS keys, signed with SigV4), the answer's
//! head made OpenAI-shaped on the way back; the body itself is translated
//! by [`AnswerBody`] as it arrives.

use std::time::SystemTime;

use bytes::Bytes;
use http::response::Parts;
use http::{header, HeaderName, HeaderValue, Uri};

use super::answer::AnswerBody;
use super::{AttemptError, Outbound};
use crate::h1::{RequestBody, UpstreamBody};
use crate::providers::{anthropic, bedrock, gemini, Protocol, RequestError};
use crate::routing::{Target, Translation};

/// The translated request: its body, and the headers signing added.
pub(super) struct Request {
    /// The body in the upstream's protocol.
    pub body: RequestBody,
    /// SigV4 headers (`authorization`, `x-amz-date`, …) for Bedrock with
    /// AWS keys; empty otherwise.
    pub signed: Vec<(HeaderName, HeaderValue)>,
}

/// Translates `out` for `target`'s upstream, which `translation` describes,
/// and signs it for `uri` where the upstream needs that.
pub(super) fn request(
    out: &Outbound<'_>,
    target: &Target,
    translation: &Translation,
    uri: &Uri,
) -> Result<Request, AttemptError> {
    let upstream = &target.upstream;
    let untranslatable = |err: RequestError| AttemptError::Untranslatable {
        upstream: upstream.name.clone(),
        provider: upstream.kind.as_str(),
        message: err.message,
        param: err.param,
    };
    let model = target.body_model(out.endpoint);
    let body = match translation {
        Translation::Anthropic(options) => anthropic::translate_request(out.body, model, options),
        Translation::Gemini => gemini::translate_request(out.body),
        Translation::Bedrock { options, .. } => bedrock::translate_request(out.body, options),
    }
    .map_err(untranslatable)?;
    let mut signed = Vec::new();
    if let Translation::Bedrock {
        signing: Some(signing),
        ..
    } = translation
    {
        // The content type signed must be the one sent (`headers::upstream_request`).
        let content_type = upstream
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        signed = bedrock::sign(
            "POST",
            uri,
            &[("content-type", content_type)],
            &body,
            &signing.credentials,
            &signing.region,
            SystemTime::now(),
        )
        .map_err(|err| AttemptError::Transport {
            upstream: upstream.name.clone(),
            address: upstream.base_url.clone(),
            detail: format!("the request could not be signed for AWS: {err}"),
        })?;
    }
    Ok(Request {
        body: RequestBody::new([Bytes::from(body)]),
        signed,
    })
}

/// The answer of a translating upstream with the OpenAI-shaped head: a
/// stream (SSE, or Bedrock's binary event stream) becomes
/// `text/event-stream`, anything else `application/json`, and its length is
/// no longer known. `include_usage`: the client asked for the usage chunk.
pub(super) fn answer(
    protocol: Protocol,
    head: &mut Parts,
    body: UpstreamBody,
    target: &Target,
    include_usage: bool,
) -> AnswerBody {
    let content_type = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start();
    let stream = head.status.is_success()
        && match protocol {
            Protocol::Bedrock => content_type.starts_with("application/vnd.amazon.eventstream"),
            _ => content_type.starts_with("text/event-stream"),
        };
    // Bedrock names its error in a header (`ThrottlingException:http://…`).
    let error_type = (protocol == Protocol::Bedrock && !head.status.is_success())
        .then(|| {
            head.headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .flatten();
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if stream {
            "text/event-stream"
        } else {
            "application/json"
        }),
    );
    AnswerBody::translated(
        protocol,
        body,
        head.status,
        stream,
        include_usage,
        &target.upstream_model,
        error_type,
    )
}
