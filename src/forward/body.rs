//! Bodies on both sides of the proxy.
//!
//! [`ResponseBody`] is what the client
//! receives: our own JSON, the mock provider's stream, or the upstream body
//! passed through frame by frame, untouched. It owns the upstream body, so
//! when hyper drops it because the client left, the upstream request is
//! dropped too (ARCHITECTURE.md, invariant 8) — no code needed for that.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::capture::{event_text, push_capped, MAX_CAPTURE};
use super::outward::Outward;
use super::relay::Passthrough;
pub use super::relay::{BoxError, Stream};
use crate::openai::Usage;
use crate::providers::mock::{MockBody, MockContent, MockStream};
use crate::telemetry::access_log::AccessRecord;
use crate::text;

/// What the client receives.
pub struct ResponseBody {
    kind: Kind,
    /// Finished (access log, metrics) when the body ends or is dropped.
    record: Option<Box<AccessRecord>>,
    /// Usage known up front (the mock provider's answers).
    usage: Option<Usage>,
    /// The answer's text, captured for the request log's `include_content`.
    capture: Option<String>,
    /// Yield once after the first streamed chunk (see `poll_frame`).
    flush_first: bool,
    /// A data frame was handed over.
    sent_any: bool,
    /// Turns an OpenAI answer into the client's door protocol (Anthropic's).
    outward: Option<Box<Outward>>,
    /// Keeps the answer for the response cache, if it ends complete.
    cache: Option<Box<crate::cache::Sink>>,
}

enum Kind {
    Full(Option<Bytes>),
    Upstream(Box<Passthrough>),
    Mock(MockStream),
}

impl ResponseBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::of(Kind::Full(Some(bytes.into())))
    }

    /// An empty body.
    pub fn empty() -> ResponseBody {
        ResponseBody::of(Kind::Full(None))
    }

    fn of(kind: Kind) -> ResponseBody {
        ResponseBody {
            kind,
            record: None,
            usage: None,
            capture: None,
            flush_first: false,
            sent_any: false,
            outward: None,
            cache: None,
        }
    }

    /// Hands the answer, as the client gets it, to `sink` (the response
    /// cache), which keeps it if it ends complete.
    pub fn cache_into(&mut self, sink: crate::cache::Sink) {
        self.cache = Some(Box::new(sink));
    }

    /// An upstream answer, passed through.
    pub fn upstream(stream: Stream) -> ResponseBody {
        ResponseBody::of(Kind::Upstream(Box::new(Passthrough::new(stream))))
    }

    /// The mock provider's answer.
    pub fn from_mock(body: MockBody) -> ResponseBody {
        let kind = match body.content {
            MockContent::Full(bytes) => Kind::Full(Some(bytes)),
            MockContent::Stream(stream) => Kind::Mock(stream),
        };
        let mut response = ResponseBody::of(kind);
        response.usage = body.usage;
        response
    }

    /// Attaches the access-log record, written when the body finishes.
    pub fn with_record(mut self, record: Box<AccessRecord>) -> ResponseBody {
        self.record = Some(record);
        self
    }

    /// Captures the answer's text for the request log (`include_content`).
    pub fn capture_content(&mut self) {
        match &mut self.kind {
            Kind::Full(Some(bytes)) => {
                self.capture = Some(text::lossy_prefix(bytes, MAX_CAPTURE).into_owned())
            }
            Kind::Upstream(pass) => pass.capture_held(),
            Kind::Full(None) | Kind::Mock(_) => self.capture = Some(String::new()),
        }
    }

    /// Whether the answer is in the client's own (Anthropic) protocol already.
    pub fn is_native(&self) -> bool {
        matches!(&self.kind, Kind::Upstream(pass) if pass.is_native())
    }

    /// Turns this OpenAI-shaped answer (with `status`; `sse` for a stream)
    /// into an Anthropic one as it goes out; `model` is the name the client
    /// asked for.
    pub fn into_anthropic(mut self, status: u16, sse: bool, model: &str) -> ResponseBody {
        self.outward = Some(Box::new(Outward::new(status, sse, model)));
        self
    }

    /// The next frame of the answer as the client gets it.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(out) = self.outward.as_mut() else {
            return poll_kind(&mut self.kind, cx);
        };
        loop {
            if let Some(bytes) = out.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if out.done {
                return Poll::Ready(None);
            }
            match poll_kind(&mut self.kind, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => out.end(),
                Poll::Ready(Some(Err(err))) => {
                    out.done = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if let Err(err) = out.take(&data) {
                            out.done = true;
                            out.ready.clear();
                            return Poll::Ready(Some(Err(err)));
                        }
                    }
                }
            }
        }
    }

    /// Usage known up front (the mock provider's answers).
    pub fn with_usage(mut self, usage: Usage) -> ResponseBody {
        self.usage = Some(usage);
        self
    }

    fn finish(&mut self, outcome: &'static str) {
        if let Some(sink) = self.cache.take() {
            let failed = matches!(&self.kind, Kind::Upstream(pass) if pass.failure.is_some());
            if outcome == "completed" && !failed {
                sink.finish();
            }
        }
        let Some(mut record) = self.record.take() else {
            return;
        };
        let (usage, failure) = match &mut self.kind {
            Kind::Upstream(pass) => {
                if self.capture.is_none() {
                    self.capture = pass.final_capture();
                }
                let mut usage = pass.final_usage();
                if usage.is_none() && (outcome != "completed" || pass.failure.is_some()) {
                    // Cancelled or cut before the upstream reported usage:
                    // what was relayed is still generated (and billed).
                    usage = pass.estimated_usage();
                    record.entry.usage_estimated = usage.is_some();
                }
                record.entry.resumes = pass.take_resumes();
                (usage, pass.failure)
            }
            _ => (self.usage.take(), None),
        };
        if usage.is_some() {
            record.entry.usage = usage;
        }
        if let Some(text) = self.capture.take() {
            record.entry.response_content = Some(text);
        }
        let outcome = match failure {
            Some(kind) => {
                record.entry.error = Some(kind.to_owned());
                "upstream_error"
            }
            None => outcome,
        };
        record.finish(outcome);
    }
}

/// The next frame of the answer as Switchyard has it (OpenAI-shaped, or
/// the client's own protocol for a native answer).
fn poll_kind(
    kind: &mut Kind,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    match kind {
        Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        Kind::Mock(stream) => Pin::new(stream).poll_frame(cx).map(|f| f.map(Ok)),
        Kind::Upstream(pass) => pass.poll(cx),
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Dropped before the end: the client went away (or the connection broke).
        self.finish("client_cancelled");
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.flush_first {
            // The first chunk of a streamed answer was just handed over. Say
            // "not ready" once, so hyper writes the head and that chunk now
            // instead of first buffering every chunk that is already there
            // (a burst from a fast upstream would otherwise hold back the
            // first token until the whole burst was relayed).
            this.flush_first = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = this.poll_out(cx);
        match &polled {
            Poll::Ready(None) => this.finish("completed"),
            Poll::Ready(Some(Err(_))) => this.finish("upstream_error"),
            Poll::Ready(Some(Ok(frame))) => {
                if !this.sent_any && frame.is_data() {
                    this.sent_any = true;
                    this.flush_first = !matches!(this.kind, Kind::Full(_));
                }
                if let (Kind::Mock(_), Some(capture), Some(data)) =
                    (&this.kind, this.capture.as_mut(), frame.data_ref())
                {
                    if let Some(text) = data.strip_prefix(b"data: ").and_then(event_text) {
                        push_capped(capture, &text);
                    }
                }
                if let (Some(record), Some(data)) = (this.record.as_deref_mut(), frame.data_ref()) {
                    record.observe_bytes(data.len());
                }
                if let (Some(sink), Some(data)) = (this.cache.as_deref_mut(), frame.data_ref()) {
                    sink.push(data);
                }
                // hyper stops polling once a body says it has ended, so the
                // last frame is where a complete response is recorded.
                if this.is_end_stream() {
                    this.finish("completed");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        if let Some(out) = &self.outward {
            return out.done && out.ready.is_empty();
        }
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(pass) => pass.is_end_stream(),
            Kind::Mock(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.outward.is_some() {
            return SizeHint::default();
        }
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream(pass) => pass.size_hint(),
            Kind::Mock(_) => SizeHint::default(),
        }
    }
}
