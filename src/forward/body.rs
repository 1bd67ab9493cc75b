//! Bodies on both sides of the proxy.
//!
//! [`RequestBody`] is the client's buffered body as up to three refcounted
//! slices (prefix, new model name, suffix), so rewriting the model never
//! copies the rest of a large body. [`ResponseBody`] is what the client
//! receives: our own JSON, the mock provider's stream, or the upstream body
//! passed through frame by frame, untouched. It owns the upstream body, so
//! when hyper drops it because the client left, the upstream request is
//! dropped too (invariant 8) — no code needed for that.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::providers::mock::MockStream;
use crate::telemetry::access_log::AccessRecord;

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body made of refcounted slices, sent as they are.
#[derive(Debug, Default)]
pub struct RequestBody {
    parts: VecDeque<Bytes>,
    len: u64,
}

impl RequestBody {
    /// A body of these parts, in order.
    pub fn new(parts: impl IntoIterator<Item = Bytes>) -> RequestBody {
        let parts: VecDeque<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let len = parts.iter().map(|p| p.len() as u64).sum();
        RequestBody { parts, len }
    }

    /// An empty body (health checks).
    pub fn empty() -> RequestBody {
        RequestBody::default()
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match this.parts.pop_front() {
            Some(part) => {
                this.len -= part.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(part))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// What the client receives.
pub struct ResponseBody {
    kind: Kind,
    /// Written to the access log when the body ends or is dropped.
    record: Option<Box<AccessRecord>>,
}

enum Kind {
    Full(Option<Bytes>),
    Upstream(Passthrough),
    Mock(MockStream),
}

/// The upstream's body, passed through; an error after the response started
/// ends an SSE stream with one OpenAI-style error event instead of silence.
struct Passthrough {
    inner: Incoming,
    /// `text/event-stream`: a failure can still be told in-band.
    sse: bool,
    /// Upstream name, for the error event.
    upstream: String,
    done: bool,
}

impl ResponseBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody {
            kind: Kind::Full(Some(bytes.into())),
            record: None,
        }
    }

    /// An empty body.
    pub fn empty() -> ResponseBody {
        ResponseBody {
            kind: Kind::Full(None),
            record: None,
        }
    }

    /// The upstream's body, passed through.
    pub fn upstream(inner: Incoming, sse: bool, upstream: &str) -> ResponseBody {
        ResponseBody {
            kind: Kind::Upstream(Passthrough {
                inner,
                sse,
                upstream: upstream.to_owned(),
                done: false,
            }),
            record: None,
        }
    }

    /// The mock provider's answer.
    pub fn mock(stream: MockStream) -> ResponseBody {
        ResponseBody {
            kind: Kind::Mock(stream),
            record: None,
        }
    }

    /// Attaches the access-log record, written when the body finishes.
    pub fn with_record(mut self, record: Box<AccessRecord>) -> ResponseBody {
        self.record = Some(record);
        self
    }

    /// The attached record, to fill in fields known later.
    pub fn record_mut(&mut self) -> Option<&mut AccessRecord> {
        self.record.as_deref_mut()
    }

    fn finish(&mut self, outcome: &'static str) {
        if let Some(record) = self.record.take() {
            record.emit(outcome);
        }
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
        let polled = match &mut this.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Mock(stream) => Pin::new(stream).poll_frame(cx),
            Kind::Upstream(pass) => pass.poll(cx),
        };
        match &polled {
            Poll::Ready(None) => this.finish("completed"),
            Poll::Ready(Some(Err(_))) => this.finish("upstream_error"),
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(record), Some(data)) = (this.record.as_deref_mut(), frame.data_ref()) {
                    record.observe_bytes(data.len());
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
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(pass) => pass.done || pass.inner.is_end_stream(),
            Kind::Mock(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            // An SSE error event may be appended, so only a non-SSE body may
            // promise the upstream's exact length.
            Kind::Upstream(pass) if !pass.sse => pass.inner.size_hint(),
            Kind::Upstream(_) | Kind::Mock(_) => SizeHint::default(),
        }
    }
}

impl Passthrough {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(err))) if self.sse => {
                self.done = true;
                tracing::warn!(upstream = %self.upstream, error = %err, "upstream stream broke off after the response started");
                Poll::Ready(Some(Ok(Frame::data(stream_error_event(&self.upstream)))))
            }
            Poll::Ready(Some(Err(err))) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(err))))
            }
            other => other.map(|o| o.map(|r| r.map_err(|e| Box::new(e) as BoxError))),
        }
    }
}

/// The one event sent when an upstream stream breaks after it started: the
/// OpenAI SDKs raise `APIError` with this message instead of returning a
/// silently truncated answer.
fn stream_error_event(upstream: &str) -> Bytes {
    let body = serde_json::json!({
        "error": {
            "message": format!("The upstream `{upstream}` stream broke off before it finished; the answer is incomplete. Retry the request."),
            "type": "upstream_error",
            "param": null,
            "code": "upstream_stream_interrupted",
        }
    });
    Bytes::from(format!("data: {body}\n\n"))
}
