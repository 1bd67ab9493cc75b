//! The attempt loop: walk the plan until one attempt commits, then stream
//! the answer through.
//!
//! For each target, `attempt` sends the request and `classify` decides
//! what the answer means: commit it (a 2xx, at the commit point that
//! `commit` finds), retry the same target (429/5xx, with backoff or the
//! upstream's `retry-after` when it fits the deadline), move to the next
//! target, switch to the context-window fallbacks, or return the answer
//! unchanged (a client error). `race` keeps `fanout` attempts in flight at
//! once and `hedge` adds a second after a delay; the first to commit wins
//! and the others are dropped, which closes their upstream connections.
//! All attempts run inside this request's future: none is spawned, so a
//! client that leaves cancels every one (ARCHITECTURE.md, invariant 8).
//!
//! When nothing commits, the last upstream answer that was moved past is
//! passed through unchanged (ARCHITECTURE.md, invariant 5); with no answer at all, the
//! client gets an error naming every upstream tried.
//! Next: `body` streams the committed answer; `gateway` adds headers.

mod answer;
mod attempt;
pub mod body;
mod capture;
mod classify;
mod commit;
mod error;
mod headers;
pub mod mask;
mod outward;
mod relay;
mod resume;
pub(crate) mod stream_usage;
mod translate;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;

pub use error::AttemptError;

use crate::json::Inspected;
use crate::providers::{mock, Endpoint, RequestError};
use crate::quota;
use crate::routing::{self, HedgeDelay, Model, Strategy, Target};
use crate::telemetry::metrics::TargetMetrics;
use crate::upstream::{Circuit, InFlight, TargetHold};
use body::ResponseBody;
use classify::Verdict;
use commit::Committed;

/// Largest upstream 400 body read to look for a context-window error.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What the client asked for, ready to send.
pub struct Outbound<'a> {
    /// The resolved model.
    pub model: &'a Arc<Model>,
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
    /// The client's request in its own protocol, when it came in through
    /// Anthropic's door (`/v1/messages`): sent as it is (model spliced) to
    /// Anthropic targets, whose answers then pass through untouched; `body`
    /// holds its OpenAI translation for every other target.
    pub native: Option<Native<'a>>,
}

/// A request in the client's own (Anthropic) protocol.
#[derive(Clone, Copy)]
pub struct Native<'a> {
    /// The body as received.
    pub body: &'a Bytes,
    /// Where `model` and `stream` sit in it.
    pub inspected: &'a Inspected,
    /// Why it has no OpenAI translation, if it has none (a server tool, …):
    /// then only Anthropic targets can take it, and every other target's
    /// attempt fails with this.
    pub untranslatable: Option<&'a RequestError>,
}

/// Which target answered, and after how many attempts.
#[derive(Clone)]
pub struct Served {
    /// The logical model that answered (a fallback's name when one did).
    pub model: String,
    /// `upstream/model`.
    pub target: String,
    /// Attempts made, retries included.
    pub attempts: u32,
    /// Metric handles of the target that answered.
    pub metrics: Arc<TargetMetrics>,
    /// When the first attempt was launched.
    pub upstream_started: Instant,
    /// When the answer committed (its headers are then ours to send).
    pub committed_at: Instant,
    /// Every target failed: the answer is the last upstream error that was
    /// moved past, passed through (a model's `on_exhausted` replaces it).
    pub exhausted: bool,
    /// The served target's token reservation against its `tpm`, to be
    /// settled with the answer's usage.
    pub rate_hold: Option<TargetHold>,
}

/// How one target's attempts ended.
enum Outcome {
    /// It committed: this is the answer.
    Committed(Committed, InFlight),
    /// An answer the client must get as it is (a client error, or a mock answer).
    Final(Response<ResponseBody>),
    /// It failed; `answer` is the upstream's own error response, if it sent one.
    Failed(AttemptError, Option<Response<ResponseBody>>),
    /// The prompt is over this target's context window.
    ContextWindow(Response<ResponseBody>),
}

/// No target could answer: what every attempt ran into. The gateway turns
/// it into the client's error answer.
#[derive(Debug)]
pub struct Exhausted {
    /// The model asked for.
    pub model: String,
    /// Every failed attempt, in order (never empty).
    pub failures: Vec<AttemptError>,
    /// Set when `max_attempts` stopped the search.
    pub limit_reached: Option<u32>,
    /// Attempts made.
    pub attempts: u32,
}

type Running<'a> = Pin<Box<dyn Future<Output = (usize, Outcome)> + Send + 'a>>;

/// Sends `out` along its plan.
///
/// # Errors
/// [`Exhausted`] when nothing could answer.
///
/// # Cancel safety
/// Dropping the future drops every in-flight upstream request with it.
pub async fn forward(out: Outbound<'_>) -> Result<(Response<ResponseBody>, Served), Exhausted> {
    let started = Instant::now();
    let policy = &out.model.policy;
    let deadline = started + policy.deadline;
    let plan = routing::plan(out.model);
    let mut targets: Vec<&Target> = plan.targets;
    let mut queue: VecDeque<usize> = (0..targets.len()).collect();
    let mut context_window = Some(plan.context_window);
    let attempts = AtomicU32::new(0);
    let mut failures: Vec<AttemptError> = Vec::new();
    let mut held: Option<(Response<ResponseBody>, usize)> = None;

    let (fanout, hedge) = match out.model.strategy {
        Strategy::Race { fanout } => (fanout, None),
        Strategy::Hedge { delay } => (1, Some(delay)),
        _ => (1, None),
    };
    let mut running: Vec<Running<'_>> = Vec::new();
    let mut upstream_started: Option<Instant> = None;
    let mut limit_hit = false;
    let mut hedge_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let deadline_timer = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline_timer);

    loop {
        // Keep `fanout` attempts in flight while targets and attempts remain.
        while running.len() < fanout && attempts.load(Ordering::Relaxed) < policy.max_attempts {
            let Some(index) = queue.pop_front() else {
                break;
            };
            let target = targets[index];
            if running.is_empty() {
                if let (Some(delay), true) = (hedge, hedge_timer.is_none() && !queue.is_empty()) {
                    let after = match delay {
                        HedgeDelay::Fixed(d) => d,
                        HedgeDelay::P95 { fallback } => target.state.ttft_p95().unwrap_or(fallback),
                    };
                    hedge_timer = Some(Box::pin(tokio::time::sleep(after)));
                }
            }
            upstream_started.get_or_insert_with(Instant::now);
            let more = !queue.is_empty();
            running.push(Box::pin(attempt_target(
                &out, target, index, &attempts, deadline, more,
            )));
        }
        if running.is_empty() {
            break;
        }
        enum Event {
            Deadline,
            Hedge,
            Done(usize, usize, Box<Outcome>),
        }
        let event = std::future::poll_fn(|cx| {
            if deadline_timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Deadline);
            }
            if let Some(timer) = hedge_timer.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Hedge);
                }
            }
            for (slot, attempt) in running.iter_mut().enumerate() {
                if let Poll::Ready((index, outcome)) = attempt.as_mut().poll(cx) {
                    return Poll::Ready(Event::Done(slot, index, Box::new(outcome)));
                }
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Deadline => {
                failures.push(AttemptError::Deadline {
                    after: policy.deadline,
                });
                break;
            }
            Event::Hedge => {
                // One hedged copy, to the next target; no further timers.
                hedge_timer = Some(Box::pin(tokio::time::sleep(Duration::from_secs(
                    u64::MAX / 4,
                ))));
                if attempts.load(Ordering::Relaxed) < policy.max_attempts {
                    if let Some(index) = queue.pop_front() {
                        tracing::info!(request_id = out.request_id, target = %targets[index].label, "no token yet; sending a hedged copy");
                        running.push(Box::pin(attempt_target(
                            &out,
                            targets[index],
                            index,
                            &attempts,
                            deadline,
                            !queue.is_empty(),
                        )));
                    }
                }
            }
            Event::Done(slot, index, outcome) => {
                drop(running.swap_remove(slot));
                let target = targets[index];
                match *outcome {
                    Outcome::Committed(committed, in_flight) => {
                        // Dropping `running` here cancels the losers of a race or hedge.
                        drop(running);
                        let served = served(
                            target,
                            attempts.load(Ordering::Relaxed),
                            upstream_started.unwrap_or(started),
                            out.body,
                        );
                        let resume = resumable(&out, &committed, &targets, index);
                        return Ok((
                            attempt::committed_response(
                                committed,
                                target,
                                in_flight,
                                started,
                                stream_usage::injects(&target.upstream, out.body, out.inspected),
                                resume,
                            ),
                            served,
                        ));
                    }
                    Outcome::Final(response) => {
                        let served = served(
                            target,
                            attempts.load(Ordering::Relaxed),
                            upstream_started.unwrap_or(started),
                            out.body,
                        );
                        return Ok((response, served));
                    }
                    Outcome::Failed(AttemptError::AttemptLimit { .. }, _) => limit_hit = true,
                    Outcome::Failed(error @ AttemptError::RateLimited { .. }, _) => {
                        tracing::debug!(request_id = out.request_id, target = %target.label, "target at its rpm/tpm; skipped");
                        failures.push(error);
                    }
                    Outcome::Failed(error, answer) => {
                        tracing::warn!(
                            request_id = out.request_id, target = %target.label, kind = error.kind(),
                            error = %error, "attempt failed"
                        );
                        failures.push(error);
                        if let Some(answer) = answer {
                            held = Some((answer, index));
                        }
                    }
                    Outcome::ContextWindow(answer) => {
                        match context_window.take().filter(|t| !t.is_empty()) {
                            Some(larger) => {
                                tracing::info!(request_id = out.request_id, target = %target.label, "prompt over the context window; trying context_window_fallbacks");
                                drop(std::mem::take(&mut running));
                                let first = targets.len();
                                targets.extend(larger);
                                queue = (first..targets.len()).collect();
                                held = Some((answer, index));
                            }
                            None => {
                                let served = served(
                                    target,
                                    attempts.load(Ordering::Relaxed),
                                    upstream_started.unwrap_or(started),
                                    out.body,
                                );
                                return Ok((answer, served));
                            }
                        }
                    }
                }
            }
        }
    }
    drop(running);
    let made = attempts.load(Ordering::Relaxed);
    let limit_reached = (limit_hit || (made >= policy.max_attempts && !queue.is_empty()))
        .then_some(policy.max_attempts);
    if let Some((answer, index)) = held {
        let target = targets[index];
        let mut served = served(target, made, upstream_started.unwrap_or(started), out.body);
        served.exhausted = true;
        return Ok((answer, served));
    }
    if failures.is_empty() {
        failures.push(AttemptError::AttemptLimit {
            limit: policy.max_attempts,
        });
    }
    Err(Exhausted {
        model: out.model.name.clone(),
        failures,
        limit_reached,
        attempts: made,
    })
}

/// What a committed stream keeps to be resumed, for a streamed chat
/// completion of a model with `resume` on: the client's request and the
/// targets after the one that answered (then those before it), in plan order.
fn resumable(
    out: &Outbound<'_>,
    committed: &Committed,
    targets: &[&Target],
    index: usize,
) -> Option<Box<resume::Resume>> {
    let policy = out.model.policy.resume?;
    let answer_is_native = committed.native_usage.is_some();
    if out.endpoint != Endpoint::ChatCompletions || !committed.sse || answer_is_native {
        return None;
    }
    let candidates = targets[index + 1..]
        .iter()
        .chain(&targets[..index.min(targets.len())])
        .filter_map(|t| routing::locate(out.model, t))
        .collect();
    Some(Box::new(resume::Resume::new(
        out.model.clone(),
        policy,
        candidates,
        out.body.clone(),
        out.headers,
        out.native.is_some(),
        out.request_id,
        stream_usage::client_asked(out.body, out.inspected),
    )))
}

fn served(target: &Target, attempts: u32, upstream_started: Instant, body: &[u8]) -> Served {
    Served {
        rate_hold: target.rates.tpm.map(|_| TargetHold {
            state: target.state.clone(),
            rates: target.rates,
            reserved: quota::estimate_tokens(body),
        }),
        model: target.model.clone(),
        target: target.label.clone(),
        attempts,
        metrics: target.metrics.clone(),
        upstream_started,
        committed_at: Instant::now(),
        exhausted: false,
    }
}

/// Every attempt at one target: the first, and same-target retries; `more`
/// when the plan has somewhere else to go after it.
async fn attempt_target(
    out: &Outbound<'_>,
    target: &Target,
    index: usize,
    attempts: &AtomicU32,
    deadline: Instant,
    more: bool,
) -> (usize, Outcome) {
    let outcome = attempt_target_inner(out, target, attempts, deadline, more).await;
    match &outcome {
        Outcome::Committed(..) | Outcome::Final(_) | Outcome::ContextWindow(_) => {
            note(target, None)
        }
        Outcome::Failed(
            AttemptError::AttemptLimit { .. }
            | AttemptError::Deadline { .. }
            | AttemptError::RateLimited { .. },
            _,
        ) => {}
        Outcome::Failed(err, _) => note(target, Some(err.kind())),
    }
    (index, outcome)
}

/// Counts one attempt at `target`: `None` for an answer, else the error kind.
fn note(target: &Target, error: Option<&'static str>) {
    target.metrics.attempt(error);
    if let Some(kind) = error {
        target.upstream.metrics.error(kind);
    }
}

async fn attempt_target_inner(
    out: &Outbound<'_>,
    target: &Target,
    attempts: &AtomicU32,
    deadline: Instant,
    more: bool,
) -> Outcome {
    let upstream = &target.upstream;
    let policy = &out.model.policy;
    if let Some(unresolved) = &upstream.unresolved {
        return Outcome::Failed(
            AttemptError::NotConfigured {
                upstream: upstream.name.clone(),
                var: unresolved.clone(),
            },
            None,
        );
    }
    let mut retry = 0;
    loop {
        // A target at its own rpm/tpm is skipped like an open circuit
        // (before an attempt is counted): the request moves on.
        if target.rates.any() {
            let tokens = target
                .rates
                .tpm
                .map_or(0, |_| quota::estimate_tokens(out.body));
            if let Err(wait) = target.state.rate.take(target.rates, tokens) {
                return Outcome::Failed(
                    AttemptError::RateLimited {
                        target: target.label.clone(),
                        wait: Duration::from_secs_f64(wait.max(0.0)),
                    },
                    None,
                );
            }
        }
        if attempts.fetch_add(1, Ordering::Relaxed) >= policy.max_attempts {
            attempts.fetch_sub(1, Ordering::Relaxed);
            return Outcome::Failed(
                AttemptError::AttemptLimit {
                    limit: policy.max_attempts,
                },
                None,
            );
        }
        if upstream.mock.is_some() && out.endpoint == Endpoint::CountTokens {
            // Only Anthropic targets count tokens; the door estimates otherwise.
            return Outcome::Failed(
                AttemptError::Unsupported {
                    upstream: upstream.name.clone(),
                    provider: upstream.kind.as_str(),
                    endpoint: "/v1/messages/count_tokens".to_owned(),
                },
                None,
            );
        }
        if let Some(config) = &upstream.mock {
            return match mock::respond(config, out.endpoint, &target.upstream_model, out.body).await
            {
                Ok(response) => Outcome::Final(response.map(ResponseBody::from_mock)),
                Err(err) => Outcome::Final(err.answer().map(ResponseBody::from_mock)),
            };
        }
        // Open circuits sit at the end of the plan, so reaching one means
        // every other target failed: try it anyway, as a last resort.
        let admission = target.state.admit().unwrap_or_else(|| {
            tracing::info!(request_id = out.request_id, target = %target.label, "circuit open; trying it as the last resort");
            target.state.force_admit()
        });
        let in_flight = target.state.enter();
        let sent_at = Instant::now();
        let response = match attempt::send(out, target).await {
            Ok(response) => response,
            Err(err) => {
                admission.failure(&target.breaker);
                upstream.state.mark_down(err.to_string());
                return Outcome::Failed(err, None);
            }
        };
        upstream.state.mark_up();
        let status = response.status();
        if status.is_success() {
            let first_token = target
                .timeouts
                .first_token_for(more, target.state.ttft_p95());
            return match commit::await_commit(response, target, sent_at, first_token).await {
                Ok(committed) => {
                    admission.success();
                    target.state.observe_ttft(sent_at.elapsed());
                    Outcome::Committed(committed, in_flight)
                }
                Err(err) => {
                    admission.failure(&target.breaker);
                    Outcome::Failed(err, None)
                }
            };
        }
        // A 400 is read (bounded) only when it could send us elsewhere.
        let (response, body) = if status == StatusCode::BAD_REQUEST
            && !out.model.context_window_fallbacks.is_empty()
        {
            let (head, body) = response.into_parts();
            match Limited::new(body, MAX_ERROR_BODY).collect().await {
                Ok(collected) => {
                    let bytes = collected.to_bytes();
                    (
                        Response::from_parts(head, ResponseBody::full(bytes.clone())),
                        Some(bytes),
                    )
                }
                Err(err) => {
                    return Outcome::Failed(
                        AttemptError::Transport {
                            upstream: upstream.name.clone(),
                            address: upstream.base_url.clone(),
                            detail: format!("reading its {status} answer failed: {err}"),
                        },
                        None,
                    )
                }
            }
        } else {
            let retry_after = classify::retry_after(response.headers());
            let response = attempt::pass_through(response, target, sent_at);
            let verdict = classify::classify_status(status, None, &policy.statuses);
            if verdict == Verdict::RetrySame {
                admission.failure(&target.breaker);
                // A failure that opened the circuit (or a failed half-open
                // probe, or the last-resort try of an open one) ends this
                // target's turn: the plan moves on to targets and fallbacks
                // that are not known to be down.
                let closed = target.state.circuit() == Circuit::Closed;
                if closed && retry < policy.retries {
                    let delay = retry_after.unwrap_or_else(|| {
                        classify::backoff(
                            retry,
                            policy.backoff,
                            policy.max_backoff,
                            routing::random_unit(),
                        )
                    });
                    // A longer wait than one backoff ceiling is better spent on
                    // another target, or by the client (it gets `retry-after`).
                    if delay <= policy.max_backoff && Instant::now() + delay < deadline {
                        tracing::info!(
                            request_id = out.request_id, target = %target.label, %status,
                            delay_ms = delay.as_millis() as u64, "retrying the same target"
                        );
                        note(target, Some("status"));
                        drop(response);
                        drop(in_flight);
                        tokio::time::sleep(delay).await;
                        retry += 1;
                        continue;
                    }
                }
                if !closed {
                    tracing::info!(
                        request_id = out.request_id, target = %target.label, %status,
                        "circuit open; moving on instead of retrying this target"
                    );
                }
                return Outcome::Failed(status_error(target, status), Some(response));
            }
            return finish(verdict, response, status, target, admission);
        };
        let verdict = classify::classify_status(status, body.as_deref(), &policy.statuses);
        return finish(verdict, response, status, target, admission);
    }
}

/// The outcome for a non-2xx answer that is not retried on the same target.
fn finish(
    verdict: Verdict,
    response: Response<ResponseBody>,
    status: StatusCode,
    target: &Target,
    admission: crate::upstream::Admission,
) -> Outcome {
    match verdict {
        Verdict::Accept | Verdict::RetrySame => {
            // The client's own mistake: the target is fine.
            admission.success();
            Outcome::Final(response)
        }
        Verdict::ContextWindow => {
            admission.success();
            Outcome::ContextWindow(response)
        }
        Verdict::Next => {
            if classify::is_misconfiguration(status) {
                target.state.mark_misconfigured();
                tracing::error!(
                    target = %target.label, %status,
                    "upstream refused the request as misconfigured (check its key, deployment or model name); trying the next target"
                );
            }
            admission.failure(&target.breaker);
            Outcome::Failed(status_error(target, status), Some(response))
        }
    }
}

fn status_error(target: &Target, status: StatusCode) -> AttemptError {
    AttemptError::Status {
        upstream: target.upstream.name.clone(),
        address: target.upstream.base_url.clone(),
        status,
    }
}
