//! The relay: an upstream answer on its way to the client, frame by frame,
//! untouched, under the idle and total timeouts, ended by one error event
//! when the upstream breaks after the commit.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use super::answer::AnswerBody;
use super::capture::{event_text, push_capped, MAX_CAPTURE};
use super::resume::{Broken, Continuation, Resume};
use crate::openai::{self, ChunkKind, Usage};
use crate::providers::anthropic::{self, native::NativeUsage};
use crate::sse::SseScanner;
use crate::telemetry::metrics::UpstreamMetrics;
use crate::telemetry::request_log::Resumed;
use crate::text;
use crate::upstream::InFlight;

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What polling a body gives.
type Polled = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

/// An upstream answer on its way to the client: chunks held before the
/// commit first, then the rest of the body, each frame as it arrives.
pub struct Stream {
    /// Chunks read before the commit point, released first, in order.
    pub(crate) held: Vec<Bytes>,
    /// The rest of the upstream body.
    pub(crate) body: AnswerBody,
    /// `text/event-stream`: a failure can still be told in-band.
    pub(crate) sse: bool,
    /// Upstream name, for error events.
    pub(crate) upstream: String,
    /// `timeouts.idle`: longest silence between chunks.
    pub(crate) idle: Option<Duration>,
    /// `timeouts.total`: when the whole request must be done.
    pub(crate) total_deadline: Option<Instant>,
    /// Counts the request in flight at its target until the body is dropped.
    pub(crate) in_flight: Option<InFlight>,
    /// The scanner that read `held` (SSE only), continued over the rest.
    pub(crate) scanner: Option<SseScanner>,
    /// A JSON answer: keep (refcounted) chunks to read `usage` at the end.
    pub(crate) json: bool,
    /// Counts failures after the commit.
    pub(crate) metrics: Option<Arc<UpstreamMetrics>>,
    /// Remove the usage-only event (`inject_stream_usage` added it).
    pub(crate) strip_usage: bool,
    /// Usage already seen in `held`.
    pub(crate) usage: Option<Usage>,
    /// Stream ranges of usage-only events in `held`.
    pub(crate) usage_only: Vec<(u64, u64)>,
    /// Content events already counted in `held` (see `Committed`).
    pub(crate) token_events: u64,
    /// The usage of a passed-through Anthropic answer, read so far (`Some`
    /// exactly for native answers: their events and errors are Anthropic's).
    pub(crate) native_usage: Option<Box<NativeUsage>>,
    /// Hides the upstream's key in an error answer passed through.
    pub(crate) mask: Option<super::mask::Masker>,
    /// Continues the stream on another target if it breaks (`resume`).
    pub(crate) resume: Option<Box<Resume>>,
}

/// The running state of a [`Stream`].
///
/// SSE answers are relayed *event-aligned*: when an upstream chunk ends in
/// the middle of an event, the bytes up to its last complete event go on at
/// once and the remainder waits (as refcounted slices, never copied) for the
/// rest of that event. A client cannot use half an event anyway, so this
/// adds no delay to any event; and if the upstream then breaks, the client
/// gets whole events followed by our error event — never half an event
/// glued to it, which no SSE client could parse. At a clean end every byte
/// goes on, so the client receives exactly what the upstream sent.
pub(super) struct Passthrough {
    inner: AnswerBody,
    sse: bool,
    /// Finds event boundaries; `None` for non-SSE bodies, and after an event
    /// too large to scan (then chunks are relayed as they come).
    scanner: Option<SseScanner>,
    /// Chunks received and not yet relayed, in order.
    unsent: VecDeque<Bytes>,
    /// Total bytes in `unsent`.
    unsent_len: usize,
    /// Bytes at the front of `unsent` that may be relayed now.
    ready: usize,
    upstream: String,
    idle: Option<Duration>,
    last_frame: Instant,
    /// Armed at the idle or total deadline, whichever is sooner, the first
    /// time the upstream makes us wait (an answer that is already buffered
    /// never needs one); re-armed lazily when it fires early (cheaper than
    /// resetting a timer per chunk).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    total_deadline: Option<Instant>,
    done: bool,
    _in_flight: Option<InFlight>,
    /// The last `usage` seen in the stream.
    usage: Option<Usage>,
    /// See [`Stream::native_usage`].
    native_usage: Option<Box<NativeUsage>>,
    /// Events relayed that count as a token ([`openai::counts_as_token`]),
    /// for the estimate of a stream that ends without usage.
    token_events: u64,
    /// Chunks of a JSON answer (refcounted, not copied), up to
    /// [`MAX_USAGE_BODY`], read for `usage` when the answer ends.
    json: Option<Vec<Bytes>>,
    json_len: usize,
    /// Why Switchyard cut the answer short, if it did.
    pub(super) failure: Option<&'static str>,
    /// The answer's text, for the request log's `include_content`.
    capture: Option<String>,
    /// Remove usage-only events (see `stream_usage`).
    strip_usage: bool,
    /// Stream offset where the last complete event ends.
    events_end: u64,
    /// Stream offset relayed (or skipped) so far.
    sent: u64,
    /// Stream ranges to leave out, in order.
    skips: VecDeque<(u64, u64)>,
    metrics: Option<Arc<UpstreamMetrics>>,
    /// Hides the upstream's key (error answers passed through; see `mask`).
    mask: Option<super::mask::Masker>,
    /// See [`Stream::resume`]; it also holds the state of a resume in
    /// progress (boxed: a stream without `resume` pays one pointer).
    resume: Option<Box<Resume>>,
}

/// Largest JSON answer kept for reading its `usage` (larger ones are
/// relayed the same, but their usage is not counted).
const MAX_USAGE_BODY: usize = 4 << 20;

fn next_deadline(from: Instant, idle: Option<Duration>, total: Option<Instant>) -> Option<Instant> {
    match (idle.map(|d| from + d), total) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why a committed answer was cut short by Switchyard.
#[derive(Debug, thiserror::Error)]
enum Cut {
    #[error("upstream `{0}` sent nothing for {1:?} (`timeouts.idle`)")]
    Idle(String, Duration),
    #[error("upstream `{0}` did not finish within `timeouts.total`")]
    Total(String),
}

impl Passthrough {
    /// Starts relaying `stream`.
    pub(super) fn new(mut stream: Stream) -> Passthrough {
        if let (true, Some(deadline)) = (stream.sse, stream.total_deadline) {
            // A stream is generated as it is read: enforced even while the
            // client reads nothing. (A JSON answer was generated whole
            // before its head came; a client that leaves it unread costs
            // the upstream nothing, and `server.send_timeout` ends it.)
            stream.body.close_at(deadline);
        }
        let scanner = match (stream.sse, stream.scanner) {
            // A masked error answer is relayed as bytes (a key may be cut
            // across events), not event by event.
            _ if stream.mask.is_some() => None,
            (false, _) => None,
            (true, Some(scanner)) => Some(scanner),
            (true, None) => {
                // Nothing was scanned yet: scan what was held, if anything.
                let mut scanner = SseScanner::new();
                let ok = stream
                    .held
                    .iter()
                    .all(|chunk| scanner.feed(chunk, |_| {}).is_ok());
                ok.then_some(scanner)
            }
        };
        let mut resume = stream.resume.filter(|_| stream.sse);
        let mut error_at = None;
        if let Some(resume) = resume.as_mut() {
            // The events read with the commit: the answer's start, and
            // perhaps (in the same read) an error event that ends it.
            let mut scanner = SseScanner::new();
            let max = resume.max_text();
            let mut offset = 0u64;
            for chunk in &stream.held {
                let _ = scanner.feed(chunk, |event| {
                    let start = offset;
                    offset += event.raw.len() as u64;
                    if error_at.is_some() {
                        return;
                    }
                    if resume.possible() && openai::classify(&event) == ChunkKind::Error {
                        error_at = Some((start, event.raw.clone()));
                    } else if event.has_data {
                        resume.transcript.observe(&event.data, max);
                    }
                });
            }
        }
        let unsent_len: usize = stream.held.iter().map(Bytes::len).sum();
        // A JSON answer's first chunk is read at the commit: its usage counts.
        let json = (stream.json && unsent_len <= MAX_USAGE_BODY).then(|| stream.held.clone());
        let mut ready = unsent_len - scanner.as_ref().map_or(0, |s| s.pending().min(unsent_len));
        if let Some((start, _)) = &error_at {
            ready = ready.min(*start as usize);
        }
        if let Some(resume) = resume.as_mut() {
            resume.error_at = error_at;
        }
        Passthrough {
            inner: stream.body,
            sse: stream.sse,
            scanner,
            unsent: stream.held.into(),
            unsent_len,
            ready,
            upstream: stream.upstream,
            idle: stream.idle,
            last_frame: Instant::now(),
            timer: None,
            total_deadline: stream.total_deadline,
            done: false,
            _in_flight: stream.in_flight,
            usage: stream.usage,
            token_events: stream.token_events,
            native_usage: stream.native_usage,
            json,
            json_len: unsent_len,
            failure: None,
            capture: None,
            strip_usage: stream.strip_usage,
            events_end: ready as u64,
            sent: 0,
            skips: if stream.strip_usage {
                stream.usage_only.into()
            } else {
                VecDeque::new()
            },
            metrics: stream.metrics,
            mask: stream.mask,
            resume,
        }
    }

    /// Reads the text of the events held before the commit (only complete
    /// ones: a partial last event is read by the scanner when it completes).
    pub(super) fn capture_held(&mut self) {
        let mut text = String::new();
        if self.sse {
            let mut scanner = SseScanner::new();
            for chunk in &self.unsent {
                let _ = scanner.feed(chunk, |event| {
                    if let Some(t) = event_text(&event.data) {
                        push_capped(&mut text, &t);
                    }
                });
            }
        }
        self.capture = Some(text);
    }

    /// A stream that may be resumed ends here before it finished (no
    /// `finish_reason`, no `[DONE]`): that is a break, not an end.
    fn ends_unfinished(&self) -> bool {
        self.resume
            .as_ref()
            .is_some_and(|r| r.possible() && !r.transcript.finished())
    }

    /// Every byte went on and nothing more will come.
    pub(super) fn is_end_stream(&self) -> bool {
        self.unsent.is_empty()
            && self
                .resume
                .as_ref()
                .is_none_or(|r| r.continuing.is_none() && r.error_at.is_none())
            && (self.done || (self.inner.is_end_stream() && !self.ends_unfinished()))
            && self.mask.as_ref().is_none_or(|m| m.is_empty())
    }

    /// The exact length only for a non-SSE, unmasked body (an SSE error
    /// event may be appended; a mask may shorten it).
    pub(super) fn size_hint(&self) -> SizeHint {
        if self.sse || self.mask.is_some() {
            return SizeHint::default();
        }
        // Held bytes (read at the commit) come first.
        let rest = self.inner.size_hint();
        let held = self.unsent_len as u64;
        match rest.exact() {
            Some(n) => SizeHint::with_exact(n + held),
            None => {
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + held);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + held);
                }
                hint
            }
        }
    }
    pub(super) fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(chunk) = self.take_ready() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if self.resume.as_ref().is_some_and(|r| r.continuing.is_some()) {
                match self.poll_continuing(cx) {
                    Some(poll) => return poll,
                    None => continue,
                }
            }
            if let Some((_, event)) = self.resume.as_mut().and_then(|r| r.error_at.take()) {
                // Everything before the upstream's error event went on.
                tracing::warn!(upstream = %self.upstream, "upstream sent an error event after the answer started");
                return self.on_break("error_event", event, cx);
            }
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if self.idle.is_some() {
                        self.last_frame = Instant::now();
                    }
                    let frame = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    if self.resume.as_ref().is_some_and(|r| r.splicing) {
                        self.feed_spliced(&frame);
                        continue;
                    }
                    let Some(scanner) = self.scanner.as_mut() else {
                        let frame = match self.mask.as_mut() {
                            Some(mask) => mask.push(frame),
                            None => frame,
                        };
                        if frame.is_empty() {
                            continue;
                        }
                        if let Some(json) = self.json.as_mut() {
                            self.json_len += frame.len();
                            if self.json_len <= MAX_USAGE_BODY {
                                json.push(frame.clone());
                            } else {
                                self.json = None;
                            }
                        }
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    };
                    let mut usage = None;
                    let native_usage = &mut self.native_usage;
                    let token_events = &mut self.token_events;
                    let capture = &mut self.capture;
                    let (strip, events_end, skips) =
                        (self.strip_usage, &mut self.events_end, &mut self.skips);
                    let resume = &mut self.resume;
                    let scanned = scanner.feed(&frame, |event| {
                        if resume.as_ref().is_some_and(|r| r.error_at.is_some()) {
                            // The answer ends at the error event before.
                            return;
                        }
                        let start = *events_end;
                        *events_end += event.raw.len() as u64;
                        if let Some(resume) = resume.as_mut() {
                            if resume.possible() && openai::classify(&event) == ChunkKind::Error {
                                resume.error_at = Some((start, event.raw.clone()));
                                return;
                            }
                            if event.has_data {
                                let max = resume.max_text();
                                resume.transcript.observe(&event.data, max);
                            }
                        }
                        if let Some(tracker) = native_usage.as_mut() {
                            tracker.event(&event);
                            if openai::counts_as_token(&event) {
                                *token_events += 1;
                            }
                        } else if let Some(found) = openai::usage_of_event(&event) {
                            usage = Some(found);
                            if strip && super::stream_usage::is_usage_only(&event) {
                                skips.push_back((start, *events_end));
                            }
                        } else if openai::counts_as_token(&event) {
                            *token_events += 1;
                        }
                        if let Some(capture) = capture.as_mut() {
                            if let Some(text) = event_text(&event.data) {
                                push_capped(capture, &text);
                            }
                        }
                    });
                    if usage.is_some() {
                        self.usage = usage;
                    }
                    self.unsent_len += frame.len();
                    self.unsent.push_back(frame);
                    match scanned {
                        Ok(()) => {
                            self.ready = self.unsent_len - scanner.pending().min(self.unsent_len)
                        }
                        Err(_) => {
                            // An event too large to scan: relay as it comes.
                            self.scanner = None;
                            self.ready = self.unsent_len;
                        }
                    }
                    if let Some((start, _)) = self.resume.as_ref().and_then(|r| r.error_at.as_ref())
                    {
                        self.ready = start.saturating_sub(self.sent) as usize;
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    tracing::warn!(upstream = %self.upstream, error = %err, "upstream stream broke off after the answer started");
                    if !self.sse {
                        self.done = true;
                        self.fail("stream_interrupted");
                        return Poll::Ready(Some(Err(Box::new(err))));
                    }
                    // Whole events were relayed; the broken one is dropped.
                    let message = format!("The upstream `{}` stream broke off before it finished; the answer is incomplete. Retry the request.", self.upstream);
                    let event = self.error_event(&message, "upstream_stream_interrupted");
                    return self.on_break("stream_interrupted", event, cx);
                }
                Poll::Ready(None) if self.ends_unfinished() => {
                    // A clean end with no finish_reason and no [DONE]: cut short.
                    tracing::warn!(upstream = %self.upstream, "upstream stream ended before it finished");
                    let message = format!("The upstream `{}` stream ended before it finished; the answer is incomplete. Retry the request.", self.upstream);
                    let event = self.error_event(&message, "upstream_stream_interrupted");
                    return self.on_break("stream_interrupted", event, cx);
                }
                Poll::Ready(None) => {
                    // A clean end: every byte goes on, a last unterminated event too.
                    self.done = true;
                    if let Some(rest) = self.mask.as_mut().map(|m| m.finish()) {
                        if !rest.is_empty() {
                            self.unsent_len += rest.len();
                            self.unsent.push_back(rest);
                        }
                    }
                    self.ready = self.unsent_len;
                }
                Poll::Pending => return self.poll_timer(cx),
            }
        }
    }

    /// The next relayable bytes: whole chunks, or the front of one,
    /// leaving out any range in `skips`.
    fn take_ready(&mut self) -> Option<Bytes> {
        loop {
            if self.ready == 0 {
                return None;
            }
            let mut limit = self.ready;
            if let Some(&(start, end)) = self.skips.front() {
                if start <= self.sent {
                    // Inside a range to leave out: drop up to its end.
                    let n = ((end - self.sent) as usize).min(self.ready);
                    self.discard(n);
                    if self.sent >= end {
                        self.skips.pop_front();
                    }
                    continue;
                }
                limit = limit.min((start - self.sent) as usize);
            }
            let front = self.unsent.front_mut()?;
            let chunk = if front.len() <= limit {
                self.unsent.pop_front()?
            } else {
                front.split_to(limit)
            };
            self.ready -= chunk.len();
            self.unsent_len -= chunk.len();
            self.sent += chunk.len() as u64;
            return Some(chunk);
        }
    }

    /// Drops `n` ready bytes from the front of `unsent`.
    fn discard(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.unsent.front_mut() else {
                return;
            };
            let take = n.min(front.len());
            if take == front.len() {
                self.unsent.pop_front();
            } else {
                let _ = front.split_to(take);
            }
            n -= take;
            self.ready -= take;
            self.unsent_len -= take;
            self.sent += take as u64;
        }
    }

    fn fail(&mut self, kind: &'static str) {
        self.failure = Some(kind);
        if let Some(metrics) = &self.metrics {
            metrics.error(kind);
        }
    }

    /// The usage the answer reported: the last usage event of a stream, or
    /// the `usage` of a complete JSON answer.
    pub(super) fn final_usage(&mut self) -> Option<Usage> {
        let native = self.native_usage.is_some();
        if self.usage.is_none() && (self.done || self.inner.is_end_stream()) {
            if let Some(chunks) = self.json.take() {
                let read = if native {
                    anthropic::native::usage_of_message
                } else {
                    openai::usage_of_body
                };
                self.usage = match chunks.as_slice() {
                    [one] => read(one),
                    many => read(&many.concat()),
                };
            }
        }
        if self.sse {
            if let Some(tracker) = &self.native_usage {
                return tracker.usage();
            }
        }
        self.usage
    }

    /// Whether the answer is in the client's own Anthropic protocol.
    pub(super) fn is_native(&self) -> bool {
        self.native_usage.is_some()
    }

    /// The one event that ends a stream Switchyard had to cut short, in the
    /// answer's own framing.
    fn error_event(&self, message: &str, code: &str) -> Bytes {
        if self.is_native() {
            anthropic::native::error_event(message)
        } else {
            error_event(message, code)
        }
    }

    /// For a stream that ends without reported usage: one completion token
    /// per relayed content event, no prompt tokens (unknown). `None` when
    /// nothing was relayed or the answer is not a stream.
    pub(super) fn estimated_usage(&self) -> Option<Usage> {
        let reported = self.usage.is_some()
            || self
                .native_usage
                .as_ref()
                .is_some_and(|t| t.usage().is_some());
        (self.sse && !reported && self.token_events > 0).then_some(Usage {
            prompt_tokens: 0,
            completion_tokens: self.token_events,
            total_tokens: self.token_events,
        })
    }

    /// The captured text: stream deltas, or the whole JSON answer.
    pub(super) fn final_capture(&mut self) -> Option<String> {
        let mut capture = self.capture.take()?;
        if capture.is_empty() {
            if let Some(chunks) = &self.json {
                let body = chunks.concat();
                capture = text::lossy_prefix(&body, MAX_CAPTURE).into_owned();
            }
        }
        Some(capture)
    }

    fn drop_unsent(&mut self) {
        self.unsent.clear();
        self.unsent_len = 0;
        self.ready = 0;
    }

    /// The stream broke after its first token (`kind`): look for a
    /// continuation (`resume`), or end it with `event`.
    fn on_break(
        &mut self,
        kind: &'static str,
        event: Bytes,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.fail(kind);
        self.drop_unsent();
        self.timer = None;
        if let Some(resume) = self.resume.as_mut() {
            resume.error_at = None;
            match resume.start(self.token_events, self.total_deadline) {
                Some(search) => {
                    tracing::info!(request_id = resume.request_id(), upstream = %self.upstream, kind, "the stream broke after its first token; looking for a target to continue it");
                    // Dropping the body closes the broken (or stalled) connection.
                    self.inner = AnswerBody::Gone;
                    self._in_flight = None;
                    resume.continuing = Some(search);
                    resume.broken = Some(Broken {
                        kind,
                        at: Instant::now(),
                        event,
                    });
                    return match self.poll_continuing(cx) {
                        Some(poll) => poll,
                        None => {
                            // Continued: relay from the next poll on.
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    };
                }
                None => {
                    resume.count(false);
                    resume.log.push(Resumed {
                        after: kind,
                        target: None,
                        ms: 0.0,
                    });
                }
            }
        }
        self.done = true;
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    /// Polls the search for a continuation: `None` once one is relaying,
    /// else what to return (pending, or the original failure's event).
    fn poll_continuing(&mut self, cx: &mut Context<'_>) -> Option<Polled> {
        let resume = self.resume.as_mut()?;
        let search = resume.continuing.as_mut()?;
        let Poll::Ready(found) = search.as_mut().poll(cx) else {
            return Some(Poll::Pending);
        };
        resume.continuing = None;
        let broken = resume.broken.take()?;
        resume.searched(found.candidates);
        let ms = broken.at.elapsed().as_secs_f64() * 1000.0;
        let target = found.continuation.as_ref().map(|c| c.label.clone());
        resume.count(target.is_some());
        resume.log.push(Resumed {
            after: broken.kind,
            target: target.clone(),
            ms,
        });
        match found.continuation {
            Some(continuation) => {
                tracing::info!(
                    request_id = resume.request_id(),
                    target = target.as_deref().unwrap_or("-"),
                    after = broken.kind,
                    ms = format_args!("{ms:.1}"),
                    "the stream continues on another target"
                );
                self.install(continuation);
                None
            }
            None => {
                tracing::warn!(
                    request_id = resume.request_id(),
                    after = broken.kind,
                    "no target could continue the stream; ending it with the original error"
                );
                self.done = true;
                Some(Poll::Ready(Some(Ok(Frame::data(broken.event)))))
            }
        }
    }

    /// Relays `continuation` from here on, spliced into the client's stream.
    fn install(&mut self, continuation: Continuation) {
        let Continuation {
            committed,
            in_flight,
            label: _,
            upstream,
            idle,
            metrics,
        } = continuation;
        self.inner = committed.body;
        if let Some(deadline) = self.total_deadline {
            self.inner.close_at(deadline);
        }
        self.upstream = upstream;
        self.idle = Some(idle);
        self.metrics = Some(metrics);
        self._in_flight = Some(in_flight);
        self.last_frame = Instant::now();
        self.timer = None;
        self.failure = None;
        self.done = false;
        if let Some(resume) = self.resume.as_mut() {
            resume.splicing = true;
        }
        self.scanner = Some(SseScanner::new());
        self.skips.clear();
        self.strip_usage = false;
        for chunk in &committed.held {
            self.feed_spliced(chunk);
        }
    }

    /// Reads one chunk of a continuation: its events rewritten into the
    /// client's stream, ready to relay.
    fn feed_spliced(&mut self, frame: &Bytes) {
        let (Some(scanner), Some(resume)) = (self.scanner.as_mut(), self.resume.as_mut()) else {
            return;
        };
        let mut out: Vec<Bytes> = Vec::new();
        let mut error: Option<Bytes> = None;
        let mut usage = None;
        let mut tokens = 0;
        let capture = &mut self.capture;
        let fed = scanner.feed(frame, |event| {
            if error.is_some() {
                return;
            }
            if resume.possible() && openai::classify(&event) == ChunkKind::Error {
                error = Some(event.raw.clone());
                return;
            }
            if event.has_data {
                let max = resume.max_text();
                resume.transcript.observe(&event.data, max);
            }
            let Some(splice) = resume.splice.as_mut() else {
                return;
            };
            let spliced = splice.rewrite(&event.raw, &event.data, event.has_data);
            if spliced.usage.is_some() {
                usage = spliced.usage;
            }
            if let Some(bytes) = spliced.bytes {
                if openai::counts_as_token(&event) {
                    tokens += 1;
                }
                if let Some(capture) = capture.as_mut() {
                    if let Some(text) = bytes.strip_prefix(b"data: ").and_then(event_text) {
                        push_capped(capture, &text);
                    }
                }
                out.push(bytes);
            }
        });
        if fed.is_err() && error.is_none() {
            let message = format!(
                "The upstream `{}` stream sent an event too large to read; the answer is incomplete. Retry the request.",
                self.upstream
            );
            error = Some(self.error_event(&message, "upstream_stream_interrupted"));
        }
        for bytes in out {
            self.events_end += bytes.len() as u64;
            self.unsent_len += bytes.len();
            self.ready += bytes.len();
            self.unsent.push_back(bytes);
        }
        if usage.is_some() {
            self.usage = usage;
        }
        self.token_events += tokens;
        if let Some(raw) = error {
            if let Some(resume) = self.resume.as_mut() {
                resume.error_at = Some((self.events_end, raw));
            }
        }
    }

    /// Every break of this stream and what became of it.
    pub(super) fn take_resumes(&mut self) -> Vec<Resumed> {
        self.resume
            .as_mut()
            .map(|r| std::mem::take(&mut r.log))
            .unwrap_or_default()
    }

    /// Checks the idle and total deadlines while the upstream is silent.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.timer.is_none() {
                let Some(at) = next_deadline(self.last_frame, self.idle, self.total_deadline)
                else {
                    return Poll::Pending;
                };
                self.timer = Some(Box::pin(tokio::time::sleep_until(at)));
            }
            let Some(timer) = self.timer.as_mut() else {
                return Poll::Pending;
            };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let cut = if self.total_deadline.is_some_and(|t| now >= t) {
                Cut::Total(self.upstream.clone())
            } else if let Some(idle) = self.idle.filter(|idle| now >= self.last_frame + *idle) {
                Cut::Idle(self.upstream.clone(), idle)
            } else {
                // Fired for a deadline that moved on: re-arm and poll again.
                match next_deadline(self.last_frame, self.idle, self.total_deadline) {
                    Some(at) => timer.as_mut().reset(at),
                    None => self.timer = None,
                }
                continue;
            };
            tracing::warn!(upstream = %self.upstream, "{cut}; ending the answer");
            if let (true, Cut::Idle(..)) = (self.sse, &cut) {
                // A stall: a resume may continue the answer elsewhere.
                let message = format!("The {cut}; the answer is incomplete. Retry the request.");
                let event = self.error_event(&message, "upstream_idle_timeout");
                return self.on_break("idle_timeout", event, cx);
            }
            self.done = true;
            self.fail(match cut {
                Cut::Idle(..) => "idle_timeout",
                Cut::Total(..) => "total_timeout",
            });
            return if self.sse {
                self.drop_unsent();
                let (message, code) = match &cut {
                    Cut::Idle(..) => (
                        format!("The {cut}; the answer is incomplete. Retry the request."),
                        "upstream_idle_timeout",
                    ),
                    Cut::Total(..) => (
                        format!("The {cut}; the answer is incomplete."),
                        "upstream_total_timeout",
                    ),
                };
                Poll::Ready(Some(Ok(Frame::data(self.error_event(&message, code)))))
            } else {
                Poll::Ready(Some(Err(Box::new(cut))))
            };
        }
    }
}

/// The one event that ends a stream Switchyard had to cut short: the OpenAI
/// SDKs raise `APIError` with this message instead of returning a silently
/// truncated answer. No `[DONE]` follows.
fn error_event(message: &str, code: &str) -> Bytes {
    openai::ErrorBody {
        message,
        kind: "upstream_error",
        param: None,
        code,
    }
    .to_event()
}
