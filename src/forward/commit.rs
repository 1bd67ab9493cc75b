//! The commit point: when an attempt becomes the answer.
//!
//! A non-streamed 2xx commits on its headers and the first piece of its
//! body (so a body that is broken from its first byte still fails over, or
//! becomes a 502, instead of a head with nothing after it). A stream (`text/event-stream`)
//! commits on its first event that carries content — a delta with text,
//! tool calls or a refusal, or a finish reason (see `openai::classify`).
//! Events before it that carry none (vLLM's role-only first chunk, Azure's
//! empty-`choices` prompt-filter chunk, keep-alive comments) are held, in
//! order and bounded, and handed over with the commit, so a failure before
//! the first token still moves on to the next target while time to first
//! token stays what the upstream gave.
//!
//! Before commit, these fail the attempt: an error event, the stream ending
//! (or breaking) with no content, and `timeouts.first_token` passing.
//! Never retries (that is the attempt loop) and never edits a byte: held
//! chunks are released exactly as received.

use std::future::Future;
use std::task::Poll;

use bytes::Bytes;
use http::{header, response::Parts, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::answer::AnswerBody;
use super::AttemptError;
use crate::openai::{self, ChunkKind, Usage};
use crate::providers::anthropic::{self, native::NativeUsage};
use crate::routing::Target;
use crate::sse::SseScanner;

/// Most chunks held before commit. Content-less preambles are one or two
/// events; past this the stream is committed as it is (and the choice is
/// logged), rather than buffer without bound.
pub const MAX_HELD_CHUNKS: usize = 64;
/// Most bytes held before commit, for the same reason.
pub const MAX_HELD_BYTES: usize = 256 * 1024;

/// Most of a whole (non-stream) answer read before it commits: the same as
/// the relay keeps to read its `usage`, so holding it costs no more memory.
pub const MAX_WHOLE_ANSWER: usize = 4 << 20;

/// An attempt that became the answer.
pub struct Committed {
    /// Status and headers.
    pub head: Parts,
    /// Chunks read before the commit, in order (empty for non-streams).
    pub held: Vec<Bytes>,
    /// The rest of the upstream body.
    pub body: AnswerBody,
    /// Whether this is an SSE stream.
    pub sse: bool,
    /// The scanner that read `held`, to continue over the rest (SSE only).
    pub scanner: Option<SseScanner>,
    /// The last usage seen in `held`.
    pub usage: Option<Usage>,
    /// Stream ranges of usage-only events in `held`.
    pub usage_only: Vec<(u64, u64)>,
    /// Content events in `held`: the committing one and those after it
    /// (for the usage estimate of a stream that ends without usage).
    pub token_events: u64,
    /// The usage read so far of a passed-through Anthropic stream
    /// (`Some` exactly for native answers; continued by the relay).
    pub native_usage: Option<Box<NativeUsage>>,
}

fn is_sse(head: &Parts) -> bool {
    head.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Waits for the commit point of a 2xx `response` from `target`, sent at
/// `started`, at most `first_token` (see `Timeouts::first_token_for`).
///
/// # Errors
/// [`AttemptError`] for an error event, an empty or broken stream, or no
/// content within `timeouts.first_token`.
///
/// # Cancel safety
/// Dropping the future drops the upstream body, which closes its connection.
pub async fn await_commit(
    response: Response<AnswerBody>,
    target: &Target,
    started: Instant,
    first_token: std::time::Duration,
) -> Result<Committed, AttemptError> {
    let (head, mut body) = response.into_parts();
    let upstream = &target.upstream;
    let native = body.is_native();
    let deadline = started + first_token;
    if !is_sse(&head) {
        let mut held = Vec::new();
        // Usually already in the read buffer with the head: no wait.
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(AttemptError::FirstTokenTimeout {
                    upstream: upstream.name.clone(),
                    address: upstream.base_url.clone(),
                    after: first_token,
                })
            }
            Ok(Some(Err(err))) => {
                return Err(AttemptError::Transport {
                    upstream: upstream.name.clone(),
                    address: upstream.base_url.clone(),
                    detail: format!("its answer's body broke off at once: {err}"),
                })
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        held.push(data);
                    }
                }
            }
            Ok(None) => {}
        }
        // A whole answer is generated before its head is sent, so the rest
        // is already on its way: read it before committing, and an answer
        // cut short fails over to the next target instead of reaching the
        // client broken. Larger answers commit at the cap and stream on.
        let mut held_bytes: usize = held.iter().map(Bytes::len).sum();
        while !body.is_end_stream() && held_bytes < MAX_WHOLE_ANSWER {
            let idle = target.timeouts.idle;
            // Usually already read: a timer only when it has to wait.
            let mut next = body.frame();
            let ready =
                std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut next).poll(cx)))
                    .await;
            let frame = match ready {
                Poll::Ready(frame) => Ok(frame),
                Poll::Pending => tokio::time::timeout(idle, next).await,
            };
            match frame {
                Err(_) => {
                    return Err(AttemptError::Transport {
                        upstream: upstream.name.clone(),
                        address: upstream.base_url.clone(),
                        detail: format!(
                            "its answer stopped for {} before its end (`timeouts.idle`)",
                            crate::units::format_duration(idle)
                        ),
                    })
                }
                Ok(Some(Err(err))) => {
                    return Err(AttemptError::Transport {
                        upstream: upstream.name.clone(),
                        address: upstream.base_url.clone(),
                        detail: format!("its answer broke off before its end: {err}"),
                    })
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        held_bytes += data.len();
                        if !data.is_empty() {
                            held.push(data);
                        }
                    }
                }
                Ok(None) => break,
            }
        }
        return Ok(Committed {
            head,
            held,
            body,
            sse: false,
            scanner: None,
            usage: None,
            usage_only: Vec::new(),
            token_events: 0,
            native_usage: native.then(Box::<NativeUsage>::default),
        });
    }
    let mut scanner = SseScanner::new();
    let mut token_events = 0;
    let mut native_usage = native.then(Box::<NativeUsage>::default);
    let mut held: Vec<Bytes> = Vec::new();
    let mut held_bytes = 0usize;
    // Stream offset where the last complete event ends, the last usage seen,
    // and the ranges of usage-only events (for `inject_stream_usage`).
    let mut events_end: u64 = 0;
    let mut usage: Option<Usage> = None;
    let mut usage_only: Vec<(u64, u64)> = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(AttemptError::FirstTokenTimeout {
                    upstream: upstream.name.clone(),
                    address: upstream.base_url.clone(),
                    after: first_token,
                })
            }
            Ok(None) => {
                return Err(AttemptError::EmptyStream {
                    upstream: upstream.name.clone(),
                    address: upstream.base_url.clone(),
                })
            }
            Ok(Some(Err(err))) => {
                return Err(AttemptError::Transport {
                    upstream: upstream.name.clone(),
                    address: upstream.base_url.clone(),
                    detail: format!("the stream broke before its first token: {err}"),
                })
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry no content
        };
        let mut verdict: Option<Result<(), AttemptError>> = None;
        let fed = scanner.feed(&data, |event| {
            // Usage can share a chunk with the first token (short answers):
            // read it from every event, before and after the verdict.
            let start = events_end;
            events_end += event.raw.len() as u64;
            if let Some(tracker) = native_usage.as_mut() {
                tracker.event(&event);
                if verdict.is_some() && openai::counts_as_token(&event) {
                    token_events += 1;
                }
            } else if let Some(found) = openai::usage_of_event(&event) {
                usage = Some(found);
                if crate::forward::stream_usage::is_usage_only(&event) {
                    usage_only.push((start, events_end));
                }
            } else if verdict.is_some() && openai::counts_as_token(&event) {
                token_events += 1;
            }
            if verdict.is_some() {
                return;
            }
            let kind = if native {
                anthropic::native::classify(&event)
            } else {
                openai::classify(&event)
            };
            match kind {
                ChunkKind::Content => {
                    token_events += 1;
                    verdict = Some(Ok(()));
                }
                ChunkKind::Error => {
                    verdict = Some(Err(AttemptError::ErrorEvent {
                        upstream: upstream.name.clone(),
                        address: upstream.base_url.clone(),
                        event: snippet(&event.data),
                    }))
                }
                ChunkKind::Done => {
                    verdict = Some(Err(AttemptError::EmptyStream {
                        upstream: upstream.name.clone(),
                        address: upstream.base_url.clone(),
                    }))
                }
                ChunkKind::Empty | ChunkKind::Comment | ChunkKind::Other => {}
            }
        });
        held_bytes += data.len();
        held.push(data);
        if fed.is_err() {
            // An event too large to scan is surely content; pass it on.
            verdict = verdict.or(Some(Ok(())));
        }
        let over_limits = held.len() >= MAX_HELD_CHUNKS || held_bytes >= MAX_HELD_BYTES;
        match verdict {
            Some(Err(err)) => return Err(err),
            None if !over_limits => continue,
            None => tracing::warn!(
                target = %target.label,
                chunks = held.len(),
                bytes = held_bytes,
                "stream sent no content within the hold limits; committing it as it is"
            ),
            Some(Ok(())) => {}
        }
        return Ok(Committed {
            head,
            held,
            body,
            sse: true,
            scanner: Some(scanner),
            usage,
            usage_only,
            token_events,
            native_usage,
        });
    }
}

/// The first 200 bytes of an event, as text, for logs and error messages.
fn snippet(data: &[u8]) -> String {
    crate::text::lossy_prefix(data, 200).into_owned()
}
