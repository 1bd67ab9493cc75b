//! An upstream's answer on the way in: its bytes as they are, or — for an
//! upstream that speaks another protocol — translated to the OpenAI shape
//! as they arrive, before the commit point and the relay see them.
//!
//! Everything after this (commit, relay, usage, the access log) reads
//! OpenAI-shaped bytes, so a translated stream commits at its first content
//! delta, fails over on an error event before it, and ends with one error
//! event after it, exactly like an OpenAI one. A stream is translated event
//! by event (each upstream read becomes at most one frame); a JSON answer,
//! error or not, is read whole (bounded) and translated at its end.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};

use crate::h1::{ClientError, UpstreamBody};
use crate::providers::anthropic;
use crate::sse::SseScanner;

/// Largest JSON answer (or error answer) read for translation.
const MAX_TRANSLATED_BODY: usize = 16 << 20;

/// The upstream body, as the rest of `forward` reads it.
pub enum AnswerBody {
    /// OpenAI-shaped already: passed through untouched.
    Plain(UpstreamBody),
    /// Translated from Anthropic's Messages API.
    Anthropic(Box<Translated>),
}

/// A body being translated.
pub struct Translated {
    inner: UpstreamBody,
    mode: Mode,
    /// Translated bytes ready to hand on.
    ready: VecDeque<Bytes>,
    /// The upstream body ended (or failed); nothing more will be read.
    done: bool,
    /// Reported once `ready` is drained: the stream ended before its end.
    cut: Option<ClientError>,
}

enum Mode {
    /// An SSE stream, event by event.
    Stream {
        scanner: SseScanner,
        translator: anthropic::StreamTranslator,
    },
    /// A whole JSON answer: a message (2xx) or an error.
    Whole { status: StatusCode, read: BytesMut },
}

impl AnswerBody {
    /// The body of an answer from an Anthropic upstream with `status`;
    /// `sse` when it is an event stream.
    /// `include_usage`: the client asked for `stream_options.include_usage`.
    pub fn anthropic(
        inner: UpstreamBody,
        status: StatusCode,
        sse: bool,
        include_usage: bool,
    ) -> AnswerBody {
        let mode = if sse && status.is_success() {
            Mode::Stream {
                scanner: SseScanner::new(),
                // The usage chunk always ends the translation: a client that
                // did not ask for it has it removed by the relay (as with
                // `inject_stream_usage`), while Switchyard counts the tokens.
                translator: anthropic::StreamTranslator::new(include_usage).with_usage_chunk(),
            }
        } else {
            Mode::Whole {
                status,
                read: BytesMut::new(),
            }
        };
        AnswerBody::Anthropic(Box::new(Translated {
            inner,
            mode,
            ready: VecDeque::new(),
            done: false,
            cut: None,
        }))
    }

    /// Ends the upstream body at `at` whatever the client does (see
    /// `UpstreamBody::close_at`).
    pub fn close_at(&mut self, at: tokio::time::Instant) {
        match self {
            AnswerBody::Plain(body) => body.close_at(at),
            AnswerBody::Anthropic(t) => t.inner.close_at(at),
        }
    }
}

impl Translated {
    /// Translates one upstream chunk; `Err` when a JSON answer outgrows
    /// [`MAX_TRANSLATED_BODY`].
    fn take(&mut self, chunk: &Bytes) -> Result<(), ClientError> {
        match &mut self.mode {
            Mode::Stream {
                scanner,
                translator,
            } => {
                let mut out = Vec::new();
                let fed = scanner.feed(chunk, |event| {
                    if !translator.finished() {
                        translator.event(&event, &mut out);
                    }
                });
                if fed.is_err() {
                    return Err(ClientError::protocol(
                        "an event of the Anthropic stream is too large to translate",
                    ));
                }
                push_joined(&mut self.ready, out);
                Ok(())
            }
            Mode::Whole { read, .. } => {
                if read.len() + chunk.len() > MAX_TRANSLATED_BODY {
                    return Err(ClientError::protocol(
                        "the Anthropic answer is too large to translate",
                    ));
                }
                read.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// The upstream body ended cleanly: a whole answer is translated now.
    fn end(&mut self) -> Result<(), ClientError> {
        self.done = true;
        match &mut self.mode {
            Mode::Stream {
                scanner,
                translator,
            } => {
                let mut out = Vec::new();
                scanner.finish(|event| {
                    if !translator.finished() {
                        translator.event(&event, &mut out);
                    }
                });
                push_joined(&mut self.ready, out);
                if !translator.finished() {
                    // A clean end without `message_stop` is a cut answer,
                    // not a short one: say so after what did arrive.
                    self.cut = Some(ClientError::receive(
                        "the Anthropic stream ended before its message_stop event",
                    ));
                }
                Ok(())
            }
            Mode::Whole { status, read } => {
                let translated = if status.is_success() {
                    anthropic::translate_response(read).ok_or_else(|| {
                        ClientError::protocol("the Anthropic answer is not a message")
                    })?
                } else {
                    anthropic::translate_error(status.as_u16(), read)
                };
                self.ready.push_back(Bytes::from(translated));
                Ok(())
            }
        }
    }
}

/// Queues the events one upstream read produced as one frame.
fn push_joined(ready: &mut VecDeque<Bytes>, mut out: Vec<Bytes>) {
    match out.len() {
        0 => {}
        1 => ready.extend(out.pop()),
        _ => ready.push_back(Bytes::from(out.concat())),
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = ClientError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientError>>> {
        let t = match self.get_mut() {
            AnswerBody::Plain(body) => return Pin::new(body).poll_frame(cx),
            AnswerBody::Anthropic(t) => t,
        };
        loop {
            if let Some(bytes) = t.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if t.done {
                return Poll::Ready(t.cut.take().map(Err));
            }
            match Pin::new(&mut t.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    if let Err(err) = t.end() {
                        return Poll::Ready(Some(Err(err)));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    // `ready` is empty here: it is drained before each read.
                    t.done = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(chunk) = frame.into_data() {
                        if let Err(err) = t.take(&chunk) {
                            t.done = true;
                            t.ready.clear();
                            return Poll::Ready(Some(Err(err)));
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AnswerBody::Plain(body) => body.is_end_stream(),
            AnswerBody::Anthropic(t) => t.done && t.ready.is_empty() && t.cut.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AnswerBody::Plain(body) => body.size_hint(),
            // The translated length is known only at the end.
            AnswerBody::Anthropic(_) => SizeHint::default(),
        }
    }
}
