//! CORS, so browser apps (a React dev server, Streamlit components) can call
//! the router directly.
//!
//! Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered
//! here with 204; other responses from an allowed origin get
//! `Access-Control-Allow-Origin` and the headers a client may read.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use crate::forward::body::ResponseBody;
use crate::routing::Cors;

/// Preflight results may be cached by the browser this long (10 minutes).
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");
const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, OPTIONS");
/// Headers the OpenAI SDKs and typical apps send.
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static(
    "authorization, content-type, api-key, x-request-id, openai-organization, openai-project, openai-beta, x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, x-stainless-read-timeout",
);
const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static("x-request-id, x-switchyard-target, x-switchyard-attempts, x-upstream-request-id, retry-after, x-should-retry");

/// The `Access-Control-Allow-Origin` value for `origin`, if allowed.
fn allowed(cors: &Cors, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    let origin = origin?;
    match cors {
        Cors::Off => None,
        Cors::Any => Some(HeaderValue::from_static("*")),
        Cors::Origins(list) => list.iter().any(|o| o == origin).then(|| origin.clone()),
    }
}

/// True for a CORS preflight request.
pub fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
    method == http::Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight. Without an allowed origin it carries no CORS
/// headers, and the browser refuses the real request.
pub fn preflight(cors: &Cors, headers: &HeaderMap) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    if let Some(origin) = allowed(cors, headers.get(header::ORIGIN)) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
        let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested.unwrap_or(ALLOW_HEADERS),
        );
        out.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
    }
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// Adds CORS headers to an ordinary response.
pub fn apply(cors: &Cors, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    if let Some(origin) = allowed(cors, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}
