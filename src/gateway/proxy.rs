//! The model endpoints: read the body (bounded), find `model` and `stream`
//! without parsing the whole body, resolve the model, hand over to `forward`.

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::cache;
use super::dispatch::Caller;
use super::error::GatewayError;
use super::limits;
use super::policy::{self, Shape};
use crate::forward::body::ResponseBody;
use crate::forward::{self, Exhausted, Outbound, Served};
use crate::json::inspect;
use crate::providers::Endpoint;
use crate::routing::{RequestLimits, Table};
use crate::telemetry::access_log::AccessRecord;

const X_TARGET: http::HeaderName = http::HeaderName::from_static("x-switchyard-target");
const X_ATTEMPTS: http::HeaderName = http::HeaderName::from_static("x-switchyard-attempts");
const X_MODEL: http::HeaderName = http::HeaderName::from_static("x-switchyard-model");
const X_SHOULD_RETRY: http::HeaderName = http::HeaderName::from_static("x-should-retry");

/// Serves one model request.
pub(super) async fn proxy(
    table: &Table,
    endpoint: Endpoint,
    request: Request<Incoming>,
    request_id: &str,
    record: &mut AccessRecord,
    caller: Caller<'_>,
) -> Result<Response<ResponseBody>, GatewayError> {
    // Counted under `(unknown)` until the body names a model we serve.
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
    let inspected = inspect(&body)?;
    let name = inspected
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
    let shape = match endpoint {
        Endpoint::ChatCompletions => Shape::Chat,
        Endpoint::Responses => Shape::Responses,
        _ => Shape::Other,
    };
    let edited = policy::apply_inspected(&model.requests, shape, &body)?;
    let (body, inspected) = match &edited {
        Some((edited, inspected)) => (edited, inspected),
        None => (&body, &inspected),
    };
    let outbound = Outbound {
        model,
        endpoint,
        body,
        inspected,
        headers: &parts.headers,
        request_id,
        native: None,
    };
    let stream = inspected.stream == Some(true);
    let include_usage = || stream && crate::forward::stream_usage::client_asked(body, inspected);
    let cached = cache::lookup(
        table,
        model,
        endpoint,
        &parts.headers,
        body,
        inspected,
        include_usage,
    );
    let on_exhausted_text = match endpoint {
        Endpoint::ChatCompletions => model.requests.on_exhausted.as_deref(),
        _ => None,
    };
    let hit = match &cached {
        Some(cached) => cached.hit(record).await,
        None => None,
    };
    let mut response = match hit {
        Some(hit) => {
            record.entry.served_model = Some(model.name.clone());
            hit
        }
        None => match forward::forward(outbound).await {
            Ok((response, served)) if served.exhausted && on_exhausted_text.is_some() => {
                let text = on_exhausted_text.unwrap_or_default();
                on_exhausted_answer(
                    response,
                    served,
                    record,
                    text,
                    name,
                    request_id,
                    stream,
                    include_usage(),
                )
            }
            Ok((mut response, served)) => {
                note_served(&mut response, served, record);
                if let Some(cached) = cached {
                    cached.store(&mut response);
                }
                response
            }
            Err(exhausted) => match on_exhausted_text {
                Some(text) => on_exhausted(
                    exhausted,
                    record,
                    text,
                    name,
                    request_id,
                    stream,
                    include_usage(),
                ),
                None => exhausted_response(exhausted, record, false),
            },
        },
    };
    if let Some(rates) = &rates {
        limits::apply_headers(response.headers_mut(), rates);
    }
    Ok(response)
}

/// The model's `on_exhausted` message instead of `failed`, the last
/// upstream error every target answered (the access log records its status).
#[allow(clippy::too_many_arguments)]
pub(super) fn on_exhausted_answer(
    failed: Response<ResponseBody>,
    served: Served,
    record: &mut AccessRecord,
    text: &str,
    model: &str,
    request_id: &str,
    stream: bool,
    include_usage: bool,
) -> Response<ResponseBody> {
    let status = failed.status();
    drop(failed);
    tracing::warn!(request_id, model, %status, target = %served.target, "every target failed; answering with the model's on_exhausted message");
    record.entry.attempts = served.attempts;
    record.entry.error = Some(format!("upstream_status_{}", status.as_u16()));
    let mut response = policy::exhausted_answer(text, model, request_id, stream, include_usage);
    response
        .headers_mut()
        .insert(X_ATTEMPTS, HeaderValue::from(served.attempts));
    response
}

/// The model's `on_exhausted` message instead of the error `exhausted`
/// would be (which the access log still records).
pub(super) fn on_exhausted(
    exhausted: Exhausted,
    record: &mut AccessRecord,
    text: &str,
    model: &str,
    request_id: &str,
    stream: bool,
    include_usage: bool,
) -> Response<ResponseBody> {
    let attempts = exhausted.attempts;
    let error = GatewayError::from(exhausted);
    tracing::warn!(request_id, model, error = %error, "every target failed; answering with the model's on_exhausted message");
    record.entry.attempts = attempts;
    record.entry.error = Some(error.code().to_owned());
    let mut response = policy::exhausted_answer(text, model, request_id, stream, include_usage);
    response
        .headers_mut()
        .insert(X_ATTEMPTS, HeaderValue::from(attempts));
    response
}

/// The model `name` names, counted under its metrics from here on.
pub(super) fn resolve<'t>(
    table: &'t Table,
    name: &str,
    record: &mut AccessRecord,
) -> Result<&'t std::sync::Arc<crate::routing::Model>, GatewayError> {
    record.entry.model = Some(name.to_owned());
    let model = table
        .model(name)
        .ok_or_else(|| GatewayError::ModelNotFound {
            model: name.to_owned(),
            available: table
                .some_model_names(5)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        })?;
    record.set_model_metrics(model.metrics.clone());
    Ok(model)
}

/// Says who served the answer: Switchyard's headers and the access record.
pub(super) fn note_served(
    response: &mut Response<ResponseBody>,
    served: Served,
    record: &mut AccessRecord,
) {
    let headers = response.headers_mut();
    if let Ok(target) = HeaderValue::from_str(&served.target) {
        headers.insert(X_TARGET, target);
    }
    if let Ok(model) = HeaderValue::from_str(&served.model) {
        headers.insert(X_MODEL, model);
    }
    headers.insert(X_ATTEMPTS, HeaderValue::from(served.attempts));
    advise_no_retry(response, served.attempts);
    // Our own time: before the first upstream send, and from the
    // commit to here (the headers go out as this returns).
    if let Some(started) = record.started {
        let before = served
            .upstream_started
            .into_std()
            .saturating_duration_since(started);
        let after = served.committed_at.elapsed();
        record.overhead_us = Some((before + after).as_micros() as u64);
    }
    if let Some(hold) = served.rate_hold {
        record.settle.push(Box::new(hold));
    }
    record.entry.target = Some(served.target);
    record.entry.served_model = Some(served.model);
    record.set_target_metrics(served.metrics);
    record.entry.attempts = served.attempts;
}

/// The error answer when no target could serve; `anthropic` for the
/// Anthropic door's envelope.
pub(super) fn exhausted_response(
    exhausted: Exhausted,
    record: &mut AccessRecord,
    anthropic: bool,
) -> Response<ResponseBody> {
    let attempts = exhausted.attempts;
    let error = GatewayError::from(exhausted);
    record.entry.attempts = attempts;
    record.entry.error = Some(error.code().to_owned());
    let mut response = if anthropic {
        error.into_anthropic_response()
    } else {
        error.into_response()
    };
    response
        .headers_mut()
        .insert(X_ATTEMPTS, HeaderValue::from(attempts));
    advise_no_retry(&mut response, attempts);
    response
}

/// Switchyard's retries replace the client's: when it already retried or
/// failed over and still answers with a status the OpenAI SDKs would retry
/// (408, 409, 429, 5xx), it says `x-should-retry: false`, so one request
/// does not become the SDK's three times ours. An upstream's own
/// `x-should-retry` is left as it is; a single attempt leaves the retry
/// (and any `retry-after`) to the client.
fn advise_no_retry(response: &mut Response<ResponseBody>, attempts: u32) {
    let status = response.status().as_u16();
    let retryable = matches!(status, 408 | 409 | 429) || status >= 500;
    if attempts >= 2 && retryable && !response.headers().contains_key(X_SHOULD_RETRY) {
        response
            .headers_mut()
            .insert(X_SHOULD_RETRY, HeaderValue::from_static("false"));
    }
}

/// Reads the whole body, refusing more than `max_body_bytes` and a pause
/// of more than `body_timeout` between two pieces. A declared
/// `Content-Length` over the limit is refused before reading anything.
pub(super) async fn read_body(
    headers: &http::HeaderMap,
    body: Incoming,
    limits: RequestLimits,
) -> Result<Bytes, GatewayError> {
    let limit = limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let mut body = Limited::new(body, limit as usize);
    // One piece (the usual case) is passed on as it is, without a copy.
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    loop {
        let frame = match tokio::time::timeout(limits.body_timeout, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => {
                return Ok(match more {
                    Some(all) => all.freeze(),
                    None => first.unwrap_or_default(),
                })
            }
            Ok(Some(Err(err))) if err.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(GatewayError::BodyTooLarge { limit })
            }
            Ok(Some(Err(err))) => return Err(GatewayError::BodyRead(err.to_string())),
            Err(_) => {
                return Err(GatewayError::BodyTimeout {
                    timeout: limits.body_timeout,
                })
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match (&mut more, first.take()) {
            (Some(all), _) => all.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(earlier)) => {
                let mut all = BytesMut::with_capacity(
                    declared
                        .map_or(0, |n| n as usize)
                        .max(earlier.len() + data.len()),
                );
                all.extend_from_slice(&earlier);
                all.extend_from_slice(&data);
                more = Some(all);
            }
        }
    }
}
