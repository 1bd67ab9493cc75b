//! `(method, path)` → handler, and what every response gets on its way out:
//! `x-request-id`, CORS headers and the access-log record.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderValue, Method, Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;

use super::error::GatewayError;
use super::AppState;
use super::{auth, cors, limits, messages, models, proxy, stats, status};
use crate::forward::body::ResponseBody;
use crate::providers::Endpoint;
use crate::telemetry::access_log::AccessRecord;

const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
/// A caller's request id longer than this is replaced by ours (it is echoed
/// into logs and headers, so it must stay small).
const MAX_REQUEST_ID_LEN: usize = 128;

/// What a path is, independent of method.
enum Route {
    Model(Endpoint),
    /// Anthropic's `POST /v1/messages`.
    Messages,
    /// Anthropic's `POST /v1/messages/count_tokens`.
    CountTokens,
    ModelList,
    ModelGet(String),
    Health,
    Ready,
    Status,
    Metrics,
    Stats,
    Ui,
}

fn route(path: &str) -> Option<Route> {
    let bare = path
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    Some(match bare {
        "/chat/completions" => Route::Model(Endpoint::ChatCompletions),
        "/completions" => Route::Model(Endpoint::Completions),
        "/embeddings" => Route::Model(Endpoint::Embeddings),
        "/responses" => Route::Model(Endpoint::Responses),
        "/messages" => Route::Messages,
        "/messages/count_tokens" => Route::CountTokens,
        "/models" => Route::ModelList,
        _ if bare.starts_with("/models/") && bare.len() > "/models/".len() => {
            Route::ModelGet(bare["/models/".len()..].to_owned())
        }
        _ if path == "/health" || path == "/healthz" => Route::Health,
        _ if path == "/health/ready" || path == "/readyz" => Route::Ready,
        _ if path == "/status" => Route::Status,
        _ if path == "/metrics" => Route::Metrics,
        _ if path == "/stats" => Route::Stats,
        _ if path == "/" || path == "/ui" => Route::Ui,
        _ => return None,
    })
}

/// Whether `path` is on Anthropic's door (`/v1/messages…`).
fn is_anthropic_door(path: &str) -> bool {
    path.strip_prefix("/v1")
        .unwrap_or(path)
        .starts_with("/messages")
}

/// Serves one request. Never fails: every error is an OpenAI-format answer.
pub async fn handle(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let request_id = request_id(request.headers());
    let table = state.table.load_full();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut record = Box::new(AccessRecord::new(
        request_id.clone(),
        request.method().clone(),
        request.uri().path().to_owned(),
        started,
    ));

    // An HTTP/1 request whose body is not read to its end cannot be
    // followed by another on the same connection: hyper closes it.
    let body_pending =
        request.version() != http::Version::HTTP_2 && !request.body().is_end_stream();
    // Anthropic's door answers its errors in Anthropic's envelope.
    let anthropic_door = is_anthropic_door(request.uri().path());
    let mut response = if cors::is_preflight(request.method(), request.headers()) {
        cors::preflight(&table.cors, request.headers())
    } else {
        match serve(&state, &table, request, &request_id, &mut record).await {
            Ok(response) => response,
            Err(error) => {
                record.entry.error = Some(error.code().to_owned());
                let close = body_pending && error.leaves_body_unread();
                let mut response = if anthropic_door {
                    error.into_anthropic_response()
                } else {
                    error.into_response()
                };
                if close {
                    // Say so, so the client opens a new connection for its
                    // next request instead of losing it to the close.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        }
    };

    let headers = response.headers_mut();
    cors::apply(&table.cors, origin.as_ref(), headers);
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert(X_REQUEST_ID, id);
    }
    record.entry.status = response.status().as_u16();
    record.entry.ttft_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let capture = record
        .sink
        .as_ref()
        .is_some_and(|log| log.config.include_content);
    let mut body = response.map(|body| body.with_record(record));
    if capture {
        body.body_mut().capture_content();
    }
    Ok(body)
}

async fn serve(
    state: &AppState,
    table: &Arc<crate::routing::Table>,
    request: Request<Incoming>,
    request_id: &str,
    record: &mut AccessRecord,
) -> Result<Response<ResponseBody>, GatewayError> {
    let path = request.uri().path();
    let method = request.method();
    // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host.
    if request.version() == http::Version::HTTP_11 {
        let hosts = request.headers().get_all(header::HOST).iter().count();
        if hosts != 1 {
            return Err(GatewayError::BadHost { count: hosts });
        }
    }
    let Some(route) = route(path) else {
        return Err(GatewayError::UnknownPath {
            method: method.to_string(),
            path: path.to_owned(),
        });
    };
    let allow = match route {
        Route::Model(_) | Route::Messages | Route::CountTokens => "POST",
        _ => "GET, HEAD",
    };
    let method_ok = match route {
        Route::Model(_) | Route::Messages | Route::CountTokens => method == Method::POST,
        _ => method == Method::GET || method == Method::HEAD,
    };
    if !method_ok {
        return Err(GatewayError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_owned(),
            allow,
        });
    }
    let keys = &table.keys;
    match route {
        Route::Health => Ok(status::live()),
        Route::Metrics => Ok(status::metrics(state, table)),
        Route::Ui => Ok(status::page()),
        Route::Stats => {
            authenticate(state, request.headers(), keys)?;
            let shared = stats::shared_spend(table).await;
            Ok(stats::stats(state, table, &shared))
        }
        Route::Ready => Ok(status::ready(state, table, false, &Default::default())),
        Route::Status => {
            authenticate(state, request.headers(), keys)?;
            let shared = stats::shared_spend(table).await;
            Ok(status::ready(state, table, true, &shared))
        }
        Route::ModelList => {
            let key = authenticate(state, request.headers(), keys)?;
            Ok(models::list(table, key.as_deref()))
        }
        Route::ModelGet(id) => {
            authenticate(state, request.headers(), keys)?;
            models::get(table, &id)
        }
        Route::Model(endpoint) => {
            state.registry.metrics().door_openai.inc();
            // Only model requests go to the request log (not probes or scrapes).
            record.sink = state.request_log.load_full();
            let key = authenticate(state, request.headers(), keys)?;
            limits::note_key(key.as_ref(), record);
            let caller = Caller {
                key: key.as_ref(),
                store: state.registry.quota(),
            };
            proxy::proxy(table, endpoint, request, request_id, record, caller).await
        }
        Route::Messages => {
            state.registry.metrics().door_anthropic.inc();
            record.sink = state.request_log.load_full();
            let key = authenticate(state, request.headers(), keys)?;
            limits::note_key(key.as_ref(), record);
            let caller = Caller {
                key: key.as_ref(),
                store: state.registry.quota(),
            };
            messages::messages(table, request, request_id, record, caller).await
        }
        Route::CountTokens => {
            state.registry.metrics().door_anthropic.inc();
            authenticate(state, request.headers(), keys)?;
            messages::count_tokens(table, request, request_id, record).await
        }
    }
}

/// Who is calling a model endpoint: their key (none on an open router),
/// for its permissions and limits.
#[derive(Clone, Copy)]
pub(super) struct Caller<'a> {
    /// The key, when keys are configured.
    pub key: Option<&'a Arc<crate::quota::KeySpec>>,
    /// Where its limits are kept and admissions decided.
    pub store: &'a crate::quota::Store,
}

/// [`auth::authenticate`], counting an expired key under its name.
fn authenticate(
    state: &AppState,
    headers: &http::HeaderMap,
    keys: &crate::quota::KeySet,
) -> Result<Option<Arc<crate::quota::KeySpec>>, GatewayError> {
    auth::authenticate(headers, keys).inspect_err(|err| {
        if let GatewayError::KeyExpired { name, .. } = err {
            state
                .registry
                .metrics()
                .key_requests
                .with_label_values(&[name.as_str(), "expired"])
                .inc();
        }
    })
}

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(0);

/// The caller's `x-request-id` when it is sane, else a new one.
fn request_id(headers: &http::HeaderMap) -> String {
    if let Some(id) = headers.get(X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
        if !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id.bytes().all(|b| b.is_ascii_graphic())
        {
            return id.to_owned();
        }
    }
    // Unique per process and unlikely to repeat across restarts: start time
    // in the high bits, a counter in the low bits.
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    });
    let n = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
    // `format!("req_{epoch:x}{n:08x}")`, without the formatting machinery.
    let mut id = String::with_capacity(32);
    id.push_str("req_");
    push_hex(&mut id, epoch, 1);
    push_hex(&mut id, n, 8);
    id
}

/// `n` in lowercase hex, zero-padded to at least `width` digits.
fn push_hex(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 16];
    let mut at = digits.len();
    while n > 0 {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
    }
    let at = at.min(digits.len() - width.min(digits.len()));
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::push_hex;

    #[test]
    fn hex_matches_the_format_macro() {
        for (n, width) in [
            (0u64, 1),
            (0, 8),
            (0x1f, 8),
            (0xdead_beef, 8),
            (u64::MAX, 8),
            (0x660e_8e3d, 1),
        ] {
            let mut out = String::new();
            push_hex(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$x}"), "{n} {width}");
        }
    }
}
