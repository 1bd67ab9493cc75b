//! One attempt: build the upstream request, send it within the first-byte
//! deadline, and turn transport failures into [`AttemptError`]s.

use http::{header, Response};

use super::answer::AnswerBody;
use super::body::{ResponseBody, Stream};
use super::commit::Committed;
use super::headers;
use super::mask::Masker;
use super::stream_usage;
use super::translate;
use super::{AttemptError, Outbound};
use crate::h1::RequestBody;
use crate::json::splice_model;
use crate::providers::anthropic::native::NativeUsage;
use crate::providers::Protocol;
use crate::routing::{Target, Translation};
use crate::upstream::InFlight;

/// Sends `out` to `target`.
pub(super) async fn send(
    out: &Outbound<'_>,
    target: &Target,
) -> Result<Response<AnswerBody>, AttemptError> {
    let upstream = &target.upstream;
    let transport = |detail: String| AttemptError::Transport {
        upstream: upstream.name.clone(),
        address: upstream.base_url.clone(),
        detail,
    };
    let (Some(client), Some(uri)) = (
        &upstream.client,
        target.url(out.endpoint, out.inspected.stream == Some(true)),
    ) else {
        return Err(transport("no client for this upstream".into()));
    };
    let provider = upstream.provider.map(|p| (p, p.protocol()));
    let protocol = provider.map_or(Protocol::OpenAi, |(_, protocol)| protocol);
    if let Some((p, _)) = provider {
        if !p.serves(out.endpoint) {
            return Err(AttemptError::Unsupported {
                upstream: upstream.name.clone(),
                provider: upstream.kind.as_str(),
                endpoint: format!("/v1{}", out.endpoint.suffix()),
            });
        }
    }
    // The Anthropic door's own bytes go to an Anthropic target untouched
    // but for the model (ARCHITECTURE.md, invariant 1).
    let native = out.native.filter(|_| protocol == Protocol::Anthropic);
    if let (None, Some(err)) = (native, out.native.and_then(|n| n.untranslatable)) {
        return Err(AttemptError::Untranslatable {
            upstream: upstream.name.clone(),
            provider: upstream.kind.as_str(),
            message: err.message.clone(),
            param: err.param,
        });
    }
    let translated = match (&native, &upstream.translation) {
        (None, Some(translation)) => Some(translate::request(out, target, translation, uri)?),
        _ => None,
    };
    let (body, signed) = match (native, translated) {
        (Some(native), _) => {
            let spliced = splice_model(
                native.body,
                native.inspected,
                target.body_model(out.endpoint),
            );
            (RequestBody::new(spliced.parts), Vec::new())
        }
        (None, Some(request)) => (request.body, request.signed),
        (None, None) => {
            // Only the model name changes; every other byte goes up as the
            // client sent it.
            let inject = stream_usage::injects(upstream, out.body, out.inspected);
            let body = stream_usage::request_body(
                out.body,
                out.inspected,
                target.body_model(out.endpoint),
                inject,
            );
            (body, Vec::new())
        }
    };
    let send = client.send(
        &http::Method::POST,
        uri,
        |head| {
            headers::upstream_request(
                out.headers,
                upstream,
                out.request_id,
                out.native.is_some(),
                native.is_some(),
                head,
            );
            for (name, value) in &signed {
                head.header(name, value);
            }
        },
        body,
    );
    let sent = tokio::time::timeout(target.timeouts.first_byte, send).await;
    match sent {
        Ok(Ok(response)) if native.is_some() => Ok(response.map(AnswerBody::Native)),
        Ok(Ok(response)) if protocol != Protocol::OpenAi => {
            let (mut head, body) = response.into_parts();
            let include_usage = stream_usage::client_asked(out.body, out.inspected);
            let body = translate::answer(protocol, &mut head, body, target, include_usage);
            Ok(Response::from_parts(head, body))
        }
        Ok(Ok(response)) => Ok(response.map(AnswerBody::Plain)),
        Ok(Err(err)) if err.is_connect() => Err(AttemptError::Connect {
            upstream: upstream.name.clone(),
            address: upstream.base_url.clone(),
            detail: err.to_string(),
        }),
        Ok(Err(err)) => Err(transport(err.to_string())),
        Err(_) => Err(AttemptError::FirstByteTimeout {
            upstream: upstream.name.clone(),
            address: upstream.base_url.clone(),
            after: target.timeouts.first_byte,
        }),
    }
}

/// An upstream answer that is not committed (an error status) as the
/// client's: same status, headers minus hop-by-hop, body untouched, and
/// bounded by the target's idle and total timeouts like any relayed body.
pub(super) fn pass_through(
    response: Response<AnswerBody>,
    target: &Target,
    sent_at: tokio::time::Instant,
) -> Response<ResponseBody> {
    let upstream = &target.upstream;
    let (mut parts, body) = response.into_parts();
    headers::downstream_response(&mut parts.headers);
    parts.version = http::Version::HTTP_11;
    let sse = is_sse(&parts.headers);
    // An error answer may quote the key the router sent (ARCHITECTURE.md, invariant 6).
    // With SigV4 there is no key header; the session token is what AWS may quote.
    let mask = upstream
        .credential
        .as_ref()
        .and_then(|(_, value)| {
            let value = value.as_bytes();
            Masker::new(value.strip_prefix(b"Bearer ").unwrap_or(value))
        })
        .or_else(|| match &upstream.translation {
            Some(Translation::Bedrock {
                signing: Some(signing),
                ..
            }) => signing
                .credentials
                .session_token
                .as_ref()
                .and_then(|token| Masker::new(token.expose().as_bytes())),
            _ => None,
        });
    if sse || mask.is_some() {
        // An error event may be appended, or the key masked: the length changes.
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    let native_usage = body.is_native().then(Box::<NativeUsage>::default);
    let stream = Stream {
        held: Vec::new(),
        body,
        sse,
        upstream: upstream.name.clone(),
        idle: Some(target.timeouts.idle),
        total_deadline: Some(sent_at + target.timeouts.total),
        in_flight: None,
        scanner: None,
        json: false,
        metrics: None,
        strip_usage: false,
        usage: None,
        usage_only: Vec::new(),
        token_events: 0,
        native_usage,
        mask,
        resume: None,
    };
    Response::from_parts(parts, ResponseBody::upstream(stream))
}

/// The committed answer as the client's: held chunks first, then the rest
/// of the upstream body, with the idle and total timeouts watching it.
pub(super) fn committed_response(
    committed: Committed,
    target: &Target,
    in_flight: InFlight,
    started: tokio::time::Instant,
    strip_usage: bool,
    resume: Option<Box<super::resume::Resume>>,
) -> Response<ResponseBody> {
    let Committed {
        mut head,
        held,
        body,
        sse,
        scanner,
        usage,
        usage_only,
        token_events,
        native_usage,
    } = committed;
    headers::downstream_response(&mut head.headers);
    // The client keeps its own protocol: an HTTP/1.0 upstream must not make
    // the router answer in HTTP/1.0 (and close the client's connection).
    head.version = http::Version::HTTP_11;
    if sse {
        // An error event may be appended if the stream breaks, so the length
        // can no longer be promised.
        head.headers.remove(header::CONTENT_LENGTH);
    }
    let stream = Stream {
        held,
        body,
        sse,
        upstream: target.upstream.name.clone(),
        idle: Some(target.timeouts.idle),
        total_deadline: Some(started + target.timeouts.total),
        in_flight: Some(in_flight),
        scanner,
        json: !sse && is_json(&head.headers),
        metrics: Some(target.upstream.metrics.clone()),
        strip_usage: sse && strip_usage,
        usage,
        usage_only,
        token_events,
        native_usage,
        mask: None,
        resume,
    };
    Response::from_parts(head, ResponseBody::upstream(stream))
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

fn is_sse(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}
