//! The attempt loop: walk the plan until one attempt answers, then stream
//! the answer through.
//!
//! An attempt that fails before any response (connect refused, reset, no
//! headers in time, an upstream that is not configured) moves on to the next
//! target in the plan; so does a 429 or 5xx while another target is left.
//! The last attempt's answer — the upstream's own error included — goes to
//! the client unchanged (invariant 5). Never edits response bytes (that is
//! `body`'s job, and it only appends an error event to a broken stream).
//! Next: `gateway::dispatch` adds the request id and CORS headers.

mod attempt;
pub mod body;
mod error;
mod headers;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};

pub use error::{describe_client_error, AttemptError};

use crate::gateway::error::GatewayError;
use crate::gateway::inspect::Inspected;
use crate::providers::{mock, Endpoint};
use crate::routing::{self, Model};
use body::ResponseBody;

/// What the client asked for, ready to send.
pub struct Outbound<'a> {
    /// The resolved model.
    pub model: &'a Model,
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The client's body, as received.
    pub body: &'a Bytes,
    /// Where `model` and `stream` sit in it.
    pub inspected: &'a Inspected,
    /// The client's headers (filtered before use).
    pub headers: &'a HeaderMap,
    /// This request's id, forwarded as `x-request-id`.
    pub request_id: &'a str,
}

/// Which target answered, and after how many attempts.
#[derive(Debug, Clone)]
pub struct Served {
    /// `upstream/model`.
    pub target: String,
    /// Attempts made, this one included.
    pub attempts: u32,
}

/// Sends `out` along its plan.
///
/// # Errors
/// [`GatewayError::Upstream`] when no attempt produced a response;
/// [`GatewayError::Mock`] when the mock provider refused the request.
///
/// # Cancel safety
/// Dropping the future drops the in-flight upstream request with it.
pub async fn forward(
    out: Outbound<'_>,
) -> Result<(Response<ResponseBody>, Served), (GatewayError, u32)> {
    let plan = routing::plan(out.model);
    let mut failures = Vec::new();
    // The last 429/5xx answer skipped for another target: if every later
    // attempt fails without an answer, this is what the client gets.
    let mut held = None;
    let total = plan.targets.len();
    let out_targets = plan.targets;
    for (i, target) in out_targets.iter().copied().enumerate() {
        let attempts = i as u32 + 1;
        let upstream = &target.upstream;
        let served = Served {
            target: target.label.clone(),
            attempts,
        };
        if let Some(unresolved) = &upstream.unresolved {
            failures.push(AttemptError::NotConfigured {
                upstream: upstream.name.clone(),
                var: unresolved.var.clone(),
            });
            continue;
        }
        if let Some(config) = &upstream.mock {
            let response = mock::respond(config, out.endpoint, &target.upstream_model, out.body)
                .await
                .map_err(|e| (GatewayError::from(e), attempts))?;
            return Ok((response, served));
        }
        match attempt::send(&out, target).await {
            Ok(response) => {
                upstream.state.mark_up();
                let status = response.status();
                let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                if retryable && i + 1 < total {
                    tracing::warn!(
                        request_id = out.request_id, target = %target.label, %status,
                        "upstream answered {status}; trying the next target"
                    );
                    held = Some((response, i));
                    continue;
                }
                return Ok((attempt::pass_through(response, upstream), served));
            }
            Err(err) => {
                upstream.state.mark_down(err.to_string());
                tracing::warn!(
                    request_id = out.request_id, target = %target.label, kind = err.kind(),
                    error = %err, "attempt failed"
                );
                failures.push(err);
            }
        }
    }
    let attempts = total as u32;
    if let Some((response, i)) = held {
        let target = &out_targets[i];
        return Ok((
            attempt::pass_through(response, &target.upstream),
            Served {
                target: target.label.clone(),
                attempts,
            },
        ));
    }
    Err((
        GatewayError::Upstream {
            model: out.model.name.clone(),
            failures,
        },
        attempts,
    ))
}
