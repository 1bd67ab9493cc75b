//! The request body the client sends: refcounted slices, as they are.
//!
//! A body of up to three parts (prefix, new model name, suffix: see
//! `json::splice_model`), so rewriting the model never copies the rest of a
//! large body.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

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

    /// The parts, in order.
    pub fn into_parts(self) -> VecDeque<Bytes> {
        self.parts
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
