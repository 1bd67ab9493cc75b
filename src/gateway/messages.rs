//! Anthropic's Messages API as a second front door: `POST /v1/messages`
//! (and `/v1/messages/count_tokens`), routed by the body's `model` through
//! the same table, plan, retries and failover as the OpenAI door.
//!
//! The body is read once and sent two ways: to an Anthropic target as it
//! came (only `model` spliced), whose answer passes through untouched —
//! thinking blocks, signatures, citations and cache markers survive — and to
//! every other target as its OpenAI translation
//! (`providers::anthropic::inbound`), whose answer is translated back as it
//! streams. Every error the door answers itself is in Anthropic's envelope.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::dispatch::Caller;
use super::error::GatewayError;
use super::limits;
use super::policy::{self, Shape};
use super::proxy::{
    exhausted_response, note_served, on_exhausted, on_exhausted_answer, read_body, resolve,
};
use crate::forward::body::ResponseBody;
use crate::forward::{self, AttemptError, Native, Outbound};
use crate::json::inspect;
use crate::providers::anthropic::inbound;
use crate::providers::{Endpoint, Protocol};
use crate::routing::{Model, Table};
use crate::telemetry::access_log::AccessRecord;

/// Serves `POST /v1/messages`.
pub(super) async fn messages(
    table: &Table,
    request: Request<Incoming>,
    request_id: &str,
    record: &mut AccessRecord,
    caller: Caller<'_>,
) -> Result<Response<ResponseBody>, GatewayError> {
    record.set_model_metrics(table.unknown_model.clone());
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body, table.limits).await?;
    if record
        .sink
        .as_ref()
        .is_some_and(|log| log.config.include_content)
    {
        record.entry.request_body = Some(body.clone());
    }
    let native_inspected = inspect(&body)?;
    let name = native_inspected
        .model
        .as_deref()
        .ok_or(GatewayError::MissingModel)?;
    let model = resolve(table, name, record)?;
    let rates = limits::admit(
        caller.store,
        table.redis.as_ref(),
        caller.key,
        name,
        &body,
        record,
    )
    .await?;
    let edited = policy::apply_inspected(&model.requests, Shape::Messages, &body)?;
    let (body, native_inspected) = match &edited {
        Some((edited, inspected)) => (edited, inspected),
        None => (&body, &native_inspected),
    };
    // Translated once for every target that is not Anthropic's; a request
    // that cannot be (a server tool) can still go to Anthropic targets.
    let (openai, untranslatable) = match inbound::request_to_openai(body) {
        Ok(openai) => (Bytes::from(openai), None),
        Err(err) => (body.clone(), Some(err)),
    };
    let openai_inspected = match untranslatable {
        None => inspect(&openai)?,
        Some(_) => native_inspected.clone(),
    };
    let outbound = Outbound {
        model,
        endpoint: Endpoint::ChatCompletions,
        body: &openai,
        inspected: &openai_inspected,
        headers: &parts.headers,
        request_id,
        native: Some(Native {
            body,
            inspected: native_inspected,
            untranslatable: untranslatable.as_ref(),
        }),
    };
    let mut response = match forward::forward(outbound).await {
        Ok((response, served)) if served.exhausted && model.requests.on_exhausted.is_some() => {
            let text = model.requests.on_exhausted.as_deref().unwrap_or_default();
            let stream = native_inspected.stream == Some(true);
            let answer = on_exhausted_answer(
                response, served, record, text, name, request_id, stream, false,
            );
            to_anthropic(answer, name)
        }
        Ok((response, served)) => {
            let mut response = if response.body().is_native() {
                response
            } else {
                to_anthropic(response, name)
            };
            note_served(&mut response, served, record);
            response
        }
        Err(exhausted) => match &model.requests.on_exhausted {
            Some(text) => {
                let stream = native_inspected.stream == Some(true);
                let answer = on_exhausted(exhausted, record, text, name, request_id, stream, false);
                to_anthropic(answer, name)
            }
            None => exhausted_response(exhausted, record, true),
        },
    };
    if let Some(rates) = &rates {
        limits::apply_headers(response.headers_mut(), rates);
    }
    Ok(response)
}

/// An OpenAI-shaped answer (any status) as Anthropic's.
fn to_anthropic(response: Response<ResponseBody>, model: &str) -> Response<ResponseBody> {
    let (mut head, body) = response.into_parts();
    let sse = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    head.headers.remove(header::CONTENT_LENGTH);
    if !sse {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let body = body.into_anthropic(head.status.as_u16(), sse, model);
    Response::from_parts(head, body)
}

/// Marks a `count_tokens` answer that Switchyard estimated (no Anthropic
/// target could count).
const X_TOKEN_COUNT: http::HeaderName = http::HeaderName::from_static("x-switchyard-token-count");

/// Serves `POST /v1/messages/count_tokens`: passed through to the model's
/// Anthropic targets (in plan order, with failover); when the model has
/// none, an estimate (`inbound::estimate_input_tokens`, a documented
/// heuristic) marked `x-switchyard-token-count: estimated`.
pub(super) async fn count_tokens(
    table: &Table,
    request: Request<Incoming>,
    request_id: &str,
    record: &mut AccessRecord,
) -> Result<Response<ResponseBody>, GatewayError> {
    record.set_model_metrics(table.unknown_model.clone());
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body, table.limits).await?;
    let inspected = inspect(&body)?;
    let name = inspected
        .model
        .as_deref()
        .ok_or(GatewayError::MissingModel)?;
    let model = resolve(table, name, record)?;
    let outbound = Outbound {
        model,
        endpoint: Endpoint::CountTokens,
        body: &body,
        inspected: &inspected,
        headers: &parts.headers,
        request_id,
        native: Some(Native {
            body: &body,
            inspected: &inspected,
            untranslatable: None,
        }),
    };
    // When the Anthropic targets cannot count (none, or every one failed
    // as a request to /v1/messages would fail over), the model's other
    // targets would serve the messages: answer the estimate for them.
    let others = serves_elsewhere(model);
    match forward::forward(outbound).await {
        Ok((mut response, served)) => {
            let status = response.status().as_u16();
            if others && (status == 429 || status >= 500) {
                return Ok(estimate(&body, record));
            }
            note_served(&mut response, served, record);
            Ok(response)
        }
        Err(exhausted)
            if others
                || exhausted
                    .failures
                    .iter()
                    .all(|f| matches!(f, AttemptError::Unsupported { .. })) =>
        {
            Ok(estimate(&body, record))
        }
        Err(exhausted) => Ok(exhausted_response(exhausted, record, true)),
    }
}

/// Whether `model` (or a fallback) has a target that does not speak
/// Anthropic's protocol.
fn serves_elsewhere(model: &Model) -> bool {
    std::iter::once(model)
        .chain(model.fallbacks.iter().map(|m| &**m))
        .flat_map(|m| &m.targets)
        .any(|t| {
            t.upstream
                .provider
                .is_none_or(|p| p.protocol() != Protocol::Anthropic)
        })
}

/// The `count_tokens` estimate for `body`, marked as one.
fn estimate(body: &[u8], record: &mut AccessRecord) -> Response<ResponseBody> {
    record.entry.error = None;
    let (status, body) = match inbound::estimate_input_tokens(body) {
        Ok(tokens) => (
            http::StatusCode::OK,
            format!("{{\"input_tokens\":{tokens}}}").into_bytes(),
        ),
        Err(err) => (
            http::StatusCode::BAD_REQUEST,
            inbound::error_body(400, &err.message),
        ),
    };
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status.is_success() {
        headers.insert(X_TOKEN_COUNT, HeaderValue::from_static("estimated"));
    }
    response
}
