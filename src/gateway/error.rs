//! Every error Switchyard itself answers, rendered in OpenAI's error format.
//!
//! Every error the router answers to a request is a [`GatewayError`], and
//! this is where each gets its status, `type` and `code`: one exhaustive
//! `match`, so a new variant does not compile until someone picks them. The
//! body is `openai::ErrorBody`, the same one the in-stream error event and
//! the mock provider's 400 use. Messages are for the client: a
//! sentence, names in backticks, and the next step. They never carry a key.

use http::{header, HeaderValue, Response, StatusCode};

use crate::forward::body::ResponseBody;
use crate::forward::{AttemptError, Exhausted};
use crate::json::InspectError;
use crate::openai::ErrorBody;
use crate::providers::anthropic;
use crate::quota::{Denied, Period, Reason};

/// An error answered by the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The body is not the JSON object we need.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// No `model` in the body.
    #[error("missing model")]
    MissingModel,
    /// The body is over `server.max_body_bytes`.
    #[error("body too large")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body stopped arriving for `server.body_timeout`.
    #[error("request body timed out")]
    BodyTimeout {
        /// `server.body_timeout`.
        timeout: std::time::Duration,
    },
    /// The body could not be read (client disconnected, bad framing).
    #[error("cannot read body: {0}")]
    BodyRead(String),
    /// No or wrong router key.
    #[error("unauthorized")]
    Unauthorized {
        /// Whether a key was sent at all.
        key_sent: bool,
    },
    /// The key has passed its `expires`.
    #[error("key expired")]
    KeyExpired {
        /// The key's name (for the log and metrics; never in the message).
        name: String,
        /// When it expired.
        at: std::time::SystemTime,
    },
    /// The key may not call this model (`keys[].models`).
    #[error("model not allowed")]
    ModelNotAllowed {
        /// What the client asked for.
        model: String,
    },
    /// A key's limit (rate, parallel, budget) refused the request.
    #[error("rate limited")]
    RateLimited(Box<Denied>),
    /// The shared limits store (`state.redis`) is unreachable and
    /// `on_error` is `fail_closed`.
    #[error("limits unavailable")]
    LimitsUnavailable,
    /// The model is not in the table.
    #[error("model not found")]
    ModelNotFound {
        /// What the client asked for.
        model: String,
        /// A few names that exist.
        available: Vec<String>,
    },
    /// No route for this path.
    #[error("unknown path")]
    UnknownPath {
        /// Method used.
        method: String,
        /// Path used.
        path: String,
    },
    /// An HTTP/1.1 request without exactly one `Host` header.
    #[error("bad Host header")]
    BadHost {
        /// How many `Host` headers came.
        count: usize,
    },
    /// The path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Method used.
        method: String,
        /// Path used.
        path: String,
        /// Allowed methods, for the `Allow` header.
        allow: &'static str,
    },
    /// Every attempt failed before a response.
    #[error("upstream failed")]
    Upstream {
        /// The model asked for.
        model: String,
        /// Every failed attempt, in order (never empty).
        failures: Vec<AttemptError>,
        /// Set when `max_attempts` stopped the search.
        limit_reached: Option<u32>,
    },
}

/// Whole seconds until the soonest rate-limited target has room, at least 1.
fn upstream_retry_after(failures: &[AttemptError]) -> u64 {
    failures
        .iter()
        .filter_map(|f| match f {
            AttemptError::RateLimited { wait, .. } => {
                Some((wait.as_secs_f64() - 1e-6).ceil() as u64)
            }
            _ => None,
        })
        .min()
        .unwrap_or(1)
        .max(1)
}

impl From<Exhausted> for GatewayError {
    fn from(exhausted: Exhausted) -> GatewayError {
        GatewayError::Upstream {
            model: exhausted.model,
            failures: exhausted.failures,
            limit_reached: exhausted.limit_reached,
        }
    }
}

impl GatewayError {
    /// Status, OpenAI `type`, `param`, `code` and message.
    fn parts(
        &self,
    ) -> (
        StatusCode,
        &'static str,
        Option<&'static str>,
        &'static str,
        String,
    ) {
        use GatewayError as E;
        const INVALID: &str = "invalid_request_error";
        match self {
            E::Inspect(err @ InspectError::ModelNotString { .. }) => (
                StatusCode::BAD_REQUEST, INVALID, Some("model"), "invalid_type",
                format!("{err}. Send the model name as a string, e.g. \"model\": \"gpt-4o-mini\"."),
            ),
            E::Inspect(err @ InspectError::StreamNotBool { .. }) => (
                StatusCode::BAD_REQUEST, INVALID, Some("stream"), "invalid_type",
                format!("{err}. Send \"stream\": true or false."),
            ),
            E::Inspect(err) => (
                StatusCode::BAD_REQUEST, INVALID, None, "invalid_json",
                format!("{err}. Send a JSON object with `Content-Type: application/json`."),
            ),
            E::MissingModel => (
                StatusCode::BAD_REQUEST, INVALID, Some("model"), "missing_required_parameter",
                "You must provide a model parameter: the request body has no `model` field. See `GET /v1/models` for the names this router serves.".into(),
            ),
            E::BodyTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE, INVALID, None, "request_too_large",
                format!("The request body is larger than this router accepts ({limit} bytes, `server.max_body_bytes`). Send a smaller request, or ask the operator to raise the limit."),
            ),
            E::BadHost { count } => (
                StatusCode::BAD_REQUEST, INVALID, None, "invalid_host",
                if *count == 0 {
                    "The request has no Host header; HTTP/1.1 requires one (clients send it themselves).".to_owned()
                } else {
                    format!("The request has {count} Host headers; HTTP/1.1 allows exactly one.")
                },
            ),
            E::BodyTimeout { timeout } => (
                StatusCode::REQUEST_TIMEOUT, INVALID, None, "request_timeout",
                format!("The request body stopped arriving for {} (`server.body_timeout`). Send the whole body without pausing.", crate::units::format_duration(*timeout)),
            ),
            E::BodyRead(detail) => (
                StatusCode::BAD_REQUEST, INVALID, None, "invalid_body",
                format!("The request body could not be read: {detail}."),
            ),
            E::Unauthorized { key_sent: false } => (
                StatusCode::UNAUTHORIZED, INVALID, None, "invalid_api_key",
                "This router requires an API key. Send it as `Authorization: Bearer <key>` (the OpenAI SDKs do this with `api_key`) or `x-api-key: <key>` (the Anthropic SDKs).".into(),
            ),
            E::Unauthorized { key_sent: true } => (
                StatusCode::UNAUTHORIZED, INVALID, None, "invalid_api_key",
                "The API key is not one of this router's keys. Check the key your client sends (its `api_key`, OPENAI_API_KEY or ANTHROPIC_API_KEY).".into(),
            ),
            E::KeyExpired { at, .. } => (
                StatusCode::UNAUTHORIZED, INVALID, None, "invalid_api_key",
                format!("This API key expired at {}. Ask the operator of this router for a new key.", humantime::format_rfc3339_seconds(*at)),
            ),
            E::ModelNotAllowed { model } => (
                StatusCode::FORBIDDEN, INVALID, Some("model"), "model_not_allowed",
                format!("This API key may not use the model `{model}`. Use a model the key allows (`GET /v1/models` lists the router's models), or ask the operator to add it to the key's `models`."),
            ),
            E::RateLimited(denied) => {
                let wait = denied.reason.retry_after();
                match &denied.reason {
                    Reason::Requests { .. } => (
                        StatusCode::TOO_MANY_REQUESTS, "requests", None, "rate_limit_exceeded",
                        format!("Rate limit reached for requests per minute (limit {}). Retry after {wait} s.", denied.headers.requests.map_or(0, |r| r.limit)),
                    ),
                    Reason::Tokens { needed, .. } => (
                        StatusCode::TOO_MANY_REQUESTS, "tokens", None, "rate_limit_exceeded",
                        format!("Rate limit reached for tokens per minute (limit {}, this request reserves {needed}: its prompt estimate plus its `max_tokens`). Retry after {wait} s, or set a smaller `max_tokens`.", denied.headers.tokens.map_or(0, |r| r.limit)),
                    ),
                    Reason::Parallel { limit } => (
                        StatusCode::TOO_MANY_REQUESTS, "requests", None, "rate_limit_exceeded",
                        format!("Too many requests at once for this API key (limit {limit} in parallel). Retry when one of them has finished."),
                    ),
                    Reason::Budget { period, limit_usd, resets_on, .. } => (
                        StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", None, "insufficient_quota",
                        format!(
                            "This API key has spent its {} budget of ${limit_usd:.2}. It resets at {resets_on}T00:00:00Z ({}); ask the operator to raise the budget to continue sooner.",
                            match period { Period::Daily => "daily", Period::Monthly => "monthly" },
                            match period { Period::Daily => "UTC midnight", Period::Monthly => "the first of the month, UTC" },
                        ),
                    ),
                }
            }
            E::LimitsUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE, "server_error", None, "limits_unavailable",
                "This router cannot reach the store that holds its API keys' limits (Redis), and is set to refuse limited keys' requests until it can (state.redis.on_error: fail_closed). Retry in a few seconds.".into(),
            ),
            E::ModelNotFound { model, available } => {
                let names: Vec<String> = available.iter().map(|n| format!("`{n}`")).collect();
                let listing = if names.is_empty() {
                    "This router serves no models.".to_owned()
                } else {
                    format!("Available models include {}; `GET /v1/models` lists them all.", names.join(", "))
                };
                (
                    StatusCode::NOT_FOUND, INVALID, Some("model"), "model_not_found",
                    format!("The model `{model}` does not exist on this router. {listing}"),
                )
            }
            E::UnknownPath { method, path } => (
                StatusCode::NOT_FOUND, INVALID, None, "unknown_url",
                format!("Invalid URL ({method} {path}). This router serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/messages, /v1/messages/count_tokens, /v1/models, /health, /status, /stats, /metrics and its status page at /."),
            ),
            E::MethodNotAllowed { method, path, allow } => (
                StatusCode::METHOD_NOT_ALLOWED, INVALID, None, "method_not_allowed",
                format!("{method} is not allowed on {path}; use {allow}."),
            ),
            E::Upstream { model, failures, limit_reached } => {
                let last = failures.last().expect("an upstream error has at least one failure");
                let (status, code) = match last {
                    AttemptError::Connect { .. } | AttemptError::Transport { .. } => (StatusCode::BAD_GATEWAY, "upstream_unreachable"),
                    AttemptError::FirstByteTimeout { .. } | AttemptError::FirstTokenTimeout { .. } | AttemptError::Deadline { .. } => {
                        (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
                    }
                    AttemptError::NotConfigured { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_not_configured"),
                    AttemptError::Unsupported { .. } => (StatusCode::BAD_REQUEST, "unsupported_endpoint"),
                    AttemptError::Untranslatable { .. } => (StatusCode::BAD_REQUEST, "unsupported_parameter"),
                    AttemptError::ErrorEvent { .. } | AttemptError::EmptyStream { .. } | AttemptError::Status { .. } => {
                        (StatusCode::BAD_GATEWAY, "upstream_failed")
                    }
                    AttemptError::AttemptLimit { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
                    AttemptError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded"),
                };
                let advice = match last {
                    AttemptError::NotConfigured { var, .. } => format!(" Set {var} in Switchyard's environment and restart it."),
                    AttemptError::Connect { .. } => " Check that the upstream is running and reachable from Switchyard.".to_owned(),
                    AttemptError::Unsupported { .. } => " Use a model served by an OpenAI-compatible upstream for this endpoint.".to_owned(),
                    AttemptError::Untranslatable { .. } => " Change the request, or use a model whose upstream supports it.".to_owned(),
                    AttemptError::FirstByteTimeout { .. } | AttemptError::FirstTokenTimeout { .. } | AttemptError::Deadline { .. } => {
                        " The upstream may be overloaded or still loading the model; retry later or raise the timeout.".to_owned()
                    }
                    AttemptError::RateLimited { .. } => format!(" Retry after {} s.", upstream_retry_after(failures)),
                    AttemptError::Transport { .. }
                    | AttemptError::ErrorEvent { .. }
                    | AttemptError::EmptyStream { .. }
                    | AttemptError::Status { .. }
                    | AttemptError::AttemptLimit { .. } => " Retry the request.".to_owned(),
                };
                let causes = if failures.len() == 1 {
                    format!("{last}")
                } else {
                    let listed: Vec<String> = failures.iter().enumerate().map(|(i, f)| format!("({}) {f}", i + 1)).collect();
                    format!("{} attempts failed: {}", failures.len(), listed.join("; "))
                };
                let causes = match limit_reached {
                    Some(limit) if !matches!(last, AttemptError::AttemptLimit { .. }) => {
                        format!("{causes} (stopped at the model's limit of {limit} attempts, `max_attempts`)")
                    }
                    _ => causes,
                };
                let param = match last {
                    AttemptError::Untranslatable { param, .. } => *param,
                    _ => None,
                };
                // A cause that is a sentence already ends with its own period.
                let causes = causes.trim_end_matches('.');
                (
                    status,
                    match status {
                        StatusCode::BAD_REQUEST => INVALID,
                        StatusCode::TOO_MANY_REQUESTS => "requests",
                        _ => "upstream_error",
                    },
                    param,
                    code,
                    format!("The model `{model}` could not be served: {causes}.{advice}"),
                )
            }
        }
    }

    /// Whether this error is answered before the request body was read to
    /// its end (a refused key, an unknown path, a body over the limit …).
    pub fn leaves_body_unread(&self) -> bool {
        matches!(
            self,
            GatewayError::Unauthorized { .. }
                | GatewayError::KeyExpired { .. }
                | GatewayError::UnknownPath { .. }
                | GatewayError::BadHost { .. }
                | GatewayError::MethodNotAllowed { .. }
                | GatewayError::BodyTooLarge { .. }
                | GatewayError::BodyTimeout { .. }
                | GatewayError::BodyRead(_)
        )
    }

    /// The OpenAI `code` this error is answered with.
    pub fn code(&self) -> &'static str {
        self.parts().3
    }

    /// The OpenAI-format response.
    pub fn into_response(self) -> Response<ResponseBody> {
        let (status, kind, param, code, message) = self.parts();
        let body = ErrorBody {
            message: &message,
            kind,
            param,
            code,
        };
        self.respond(status, body.to_json().into_bytes())
    }

    /// The same error in Anthropic's envelope, for the Anthropic door:
    /// `{"type":"error","error":{"type","message"}}` with Anthropic's error
    /// type for the status.
    pub fn into_anthropic_response(self) -> Response<ResponseBody> {
        let (status, _, _, _, message) = self.parts();
        let body = anthropic::inbound::error_body(status.as_u16(), &message);
        self.respond(status, body)
    }

    fn respond(self, status: StatusCode, body: Vec<u8>) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match &self {
            GatewayError::MethodNotAllowed { allow, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            // A missing variable will not appear by retrying: tell the SDK
            // not to spend its retries (it honours `x-should-retry`).
            GatewayError::Upstream { failures, .. }
                if matches!(failures.last(), Some(AttemptError::NotConfigured { .. })) =>
            {
                headers.insert("x-should-retry", HeaderValue::from_static("false"));
            }
            // Every target left was at its own rpm/tpm: when the first has room.
            GatewayError::Upstream { failures, .. }
                if matches!(failures.last(), Some(AttemptError::RateLimited { .. })) =>
            {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(upstream_retry_after(failures)),
                );
            }
            GatewayError::RateLimited(denied) => {
                super::limits::apply_headers(headers, &denied.headers);
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(denied.reason.retry_after()),
                );
                // A spent budget does not come back within an SDK's retries.
                if matches!(denied.reason, Reason::Budget { .. }) {
                    headers.insert("x-should-retry", HeaderValue::from_static("false"));
                }
            }
            // Redis comes back, or the replica's back-off ends, within seconds.
            GatewayError::LimitsUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            _ => {}
        }
        response
    }
}
