//! An upstream's answer on the way in: its bytes as they are, or — for an
//! upstream that speaks another protocol — translated to the OpenAI shape
//! as they arrive, before the commit point and the relay see them.
//!
//! Anthropic and Gemini stream Server-Sent Events; Bedrock streams AWS's
//! binary event-stream frames, decoded here as they arrive.
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
use crate::providers::{anthropic, bedrock, gemini, Protocol};
use crate::sse::{Event, SseScanner};

/// Largest JSON answer (or error answer) read for translation.
const MAX_TRANSLATED_BODY: usize = 16 << 20;

/// The upstream body, as the rest of `forward` reads it.
pub enum AnswerBody {
    /// OpenAI-shaped already: passed through untouched.
    Plain(UpstreamBody),
    /// In the client's own protocol, which is not OpenAI's (an Anthropic
    /// target answering the Anthropic front door): passed through untouched,
    /// its stream read with Anthropic's events for the commit point, usage
    /// and errors.
    Native(UpstreamBody),
    /// Translated from another protocol (Anthropic, Gemini, Bedrock).
    Translated(Box<Translated>),
    /// Let go after the stream broke (a resume continues it elsewhere):
    /// dropping the upstream body closed its connection; this ends at once.
    Gone,
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
    /// A stream, event by event.
    Stream {
        decoder: Decoder,
        translator: StreamTranslator,
    },
    /// A whole JSON answer: a message (2xx) or an error.
    Whole {
        protocol: Protocol,
        status: StatusCode,
        read: BytesMut,
        /// The upstream model, for an answer that does not name one.
        model: String,
        /// Bedrock's `x-amzn-errortype` header.
        error_type: Option<String>,
    },
}

/// How a stream's bytes are cut into events.
enum Decoder {
    /// Server-Sent Events (Anthropic, Gemini).
    Sse(SseScanner),
    /// AWS's binary event-stream frames (Bedrock).
    EventStream(bedrock::EventStreamDecoder),
}

/// One provider's stream translator.
enum StreamTranslator {
    Anthropic(anthropic::StreamTranslator),
    Gemini(gemini::StreamTranslator),
    Bedrock(bedrock::StreamTranslator),
}

impl StreamTranslator {
    /// One SSE event (Anthropic, Gemini).
    fn event(&mut self, event: &Event<'_>, out: &mut Vec<Bytes>) {
        match self {
            StreamTranslator::Anthropic(t) if !t.finished() => t.event(event, out),
            StreamTranslator::Gemini(t) if !t.finished() => t.event(event, out),
            _ => {}
        }
    }

    /// The upstream ended cleanly: what a translator still owes (Gemini's
    /// stream has no terminator of its own).
    fn end(&mut self, out: &mut Vec<Bytes>) {
        if let StreamTranslator::Gemini(t) = self {
            if !t.finished() {
                t.end(out);
            }
        }
    }

    fn finished(&self) -> bool {
        match self {
            StreamTranslator::Anthropic(t) => t.finished(),
            StreamTranslator::Gemini(t) => t.finished(),
            StreamTranslator::Bedrock(t) => t.finished(),
        }
    }

    /// What a complete stream of this provider ends with, for errors.
    fn end_marker(&self) -> &'static str {
        match self {
            StreamTranslator::Anthropic(_) => "its message_stop event",
            StreamTranslator::Gemini(_) => "a candidate's finishReason",
            StreamTranslator::Bedrock(_) => "its messageStop and metadata events",
        }
    }

    /// The provider's name, for errors.
    fn provider(&self) -> &'static str {
        match self {
            StreamTranslator::Anthropic(_) => "Anthropic",
            StreamTranslator::Gemini(_) => "Gemini",
            StreamTranslator::Bedrock(_) => "Bedrock",
        }
    }
}

impl AnswerBody {
    /// The body of an answer with `status` from an upstream speaking
    /// `protocol` (not OpenAI's); `stream` when it is an event stream.
    /// `include_usage`: the client asked for `stream_options.include_usage`.
    /// `model`: the upstream model, for answers that do not name one.
    /// `error_type`: Bedrock's `x-amzn-errortype` header.
    pub fn translated(
        protocol: Protocol,
        inner: UpstreamBody,
        status: StatusCode,
        stream: bool,
        include_usage: bool,
        model: &str,
        error_type: Option<String>,
    ) -> AnswerBody {
        // The usage chunk always ends the translation: a client that did not
        // ask for it has it removed by the relay (as with
        // `inject_stream_usage`), while Switchyard counts the tokens.
        let mode = match protocol {
            Protocol::Anthropic if stream => Mode::Stream {
                decoder: Decoder::Sse(SseScanner::new()),
                translator: StreamTranslator::Anthropic(
                    anthropic::StreamTranslator::new(include_usage).with_usage_chunk(),
                ),
            },
            Protocol::Gemini if stream => Mode::Stream {
                decoder: Decoder::Sse(SseScanner::new()),
                translator: StreamTranslator::Gemini(
                    gemini::StreamTranslator::new(include_usage, model).with_usage_chunk(),
                ),
            },
            Protocol::Bedrock if stream => Mode::Stream {
                decoder: Decoder::EventStream(bedrock::EventStreamDecoder::new()),
                translator: StreamTranslator::Bedrock(
                    bedrock::StreamTranslator::new(include_usage, model).with_usage_chunk(),
                ),
            },
            _ => Mode::Whole {
                protocol,
                status,
                read: BytesMut::new(),
                model: model.to_owned(),
                error_type,
            },
        };
        AnswerBody::Translated(Box::new(Translated {
            inner,
            mode,
            ready: VecDeque::new(),
            done: false,
            cut: None,
        }))
    }

    /// Whether the bytes are in the client's own non-OpenAI protocol.
    pub fn is_native(&self) -> bool {
        matches!(self, AnswerBody::Native(_))
    }

    /// Ends the upstream body at `at` whatever the client does (see
    /// `UpstreamBody::close_at`).
    pub fn close_at(&mut self, at: tokio::time::Instant) {
        match self {
            AnswerBody::Plain(body) | AnswerBody::Native(body) => body.close_at(at),
            AnswerBody::Translated(t) => t.inner.close_at(at),
            AnswerBody::Gone => {}
        }
    }
}

impl Translated {
    /// Translates one upstream chunk; `Err` when a JSON answer outgrows
    /// [`MAX_TRANSLATED_BODY`].
    fn take(&mut self, chunk: &Bytes) -> Result<(), ClientError> {
        match &mut self.mode {
            Mode::Stream {
                decoder,
                translator,
            } => {
                let mut out = Vec::new();
                let fed = match decoder {
                    Decoder::Sse(scanner) => scanner
                        .feed(chunk, |event| translator.event(&event, &mut out))
                        .is_ok(),
                    Decoder::EventStream(frames) => frames
                        .feed(chunk, |message| {
                            if let StreamTranslator::Bedrock(t) = translator {
                                if !t.finished() {
                                    t.message(&message, &mut out);
                                }
                            }
                        })
                        .is_ok(),
                };
                if !fed {
                    return Err(ClientError::protocol(&format!(
                        "an event of the {} stream is too large or malformed to translate",
                        translator.provider()
                    )));
                }
                push_joined(&mut self.ready, out);
                Ok(())
            }
            Mode::Whole { read, .. } => {
                if read.len() + chunk.len() > MAX_TRANSLATED_BODY {
                    return Err(ClientError::protocol(
                        "the upstream's answer is too large to translate",
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
                decoder,
                translator,
            } => {
                let mut out = Vec::new();
                if let Decoder::Sse(scanner) = decoder {
                    scanner.finish(|event| translator.event(&event, &mut out));
                }
                translator.end(&mut out);
                push_joined(&mut self.ready, out);
                if !translator.finished() {
                    // A clean end before the stream's own end is a cut
                    // answer, not a short one: say so after what did arrive.
                    self.cut = Some(ClientError::receive(format!(
                        "the {} stream ended before {}",
                        translator.provider(),
                        translator.end_marker()
                    )));
                }
                Ok(())
            }
            Mode::Whole {
                protocol,
                status,
                read,
                model,
                error_type,
            } => {
                let translated = if status.is_success() {
                    let answer = match protocol {
                        Protocol::Anthropic => anthropic::translate_response(read),
                        Protocol::Gemini => gemini::translate_response(read, model),
                        Protocol::Bedrock => bedrock::translate_response(read, model),
                        Protocol::OpenAi => Some(read.to_vec()),
                    };
                    answer.ok_or_else(|| {
                        ClientError::protocol("the upstream's answer could not be translated")
                    })?
                } else {
                    match protocol {
                        Protocol::Gemini => gemini::translate_error(status.as_u16(), read),
                        Protocol::Bedrock => {
                            bedrock::translate_error(status.as_u16(), error_type.as_deref(), read)
                        }
                        _ => anthropic::translate_error(status.as_u16(), read),
                    }
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
            AnswerBody::Plain(body) | AnswerBody::Native(body) => {
                return Pin::new(body).poll_frame(cx)
            }
            AnswerBody::Translated(t) => t,
            AnswerBody::Gone => return Poll::Ready(None),
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
            AnswerBody::Plain(body) | AnswerBody::Native(body) => body.is_end_stream(),
            AnswerBody::Translated(t) => t.done && t.ready.is_empty() && t.cut.is_none(),
            AnswerBody::Gone => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AnswerBody::Plain(body) | AnswerBody::Native(body) => body.size_hint(),
            // The translated length is known only at the end.
            AnswerBody::Translated(_) => SizeHint::default(),
            AnswerBody::Gone => SizeHint::with_exact(0),
        }
    }
}
