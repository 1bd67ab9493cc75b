//! The answer in the client's door protocol when the target answered in
//! OpenAI's: for the Anthropic door, an OpenAI-shaped answer (from an
//! OpenAI-compatible, Gemini or Bedrock target, or the mock provider) is
//! turned into Anthropic's — a stream event by event as it is relayed, a
//! JSON answer or an error whole (bounded) at its end.
//!
//! It runs after the relay, so usage, the access log and the request log
//! have read the OpenAI bytes already, and the relay's own error event for
//! a cut stream (OpenAI-framed) becomes Anthropic's `event: error`.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::relay::BoxError;
use crate::providers::anthropic::inbound;
use crate::sse::SseScanner;

/// Largest JSON answer (or error) read whole to translate it.
const MAX_OUTWARD_BODY: usize = 16 << 20;

/// An OpenAI answer on its way out as an Anthropic one.
pub(super) struct Outward {
    mode: Mode,
    /// Translated bytes ready to hand on.
    pub(super) ready: VecDeque<Bytes>,
    /// Everything was translated (or translation failed).
    pub(super) done: bool,
}

enum Mode {
    Stream {
        scanner: SseScanner,
        translator: inbound::MessageStream,
    },
    Whole {
        status: u16,
        read: BytesMut,
        model: String,
    },
}

impl Outward {
    /// For an answer with `status`; `sse` for a stream. `model`: the name
    /// the client asked for (Anthropic answers echo it).
    pub(super) fn new(status: u16, sse: bool, model: &str) -> Outward {
        let mode = if sse && (200..300).contains(&status) {
            Mode::Stream {
                scanner: SseScanner::new(),
                translator: inbound::MessageStream::new(model),
            }
        } else {
            Mode::Whole {
                status,
                read: BytesMut::new(),
                model: model.to_owned(),
            }
        };
        Outward {
            mode,
            ready: VecDeque::new(),
            done: false,
        }
    }

    /// Translates one chunk of the OpenAI answer.
    pub(super) fn take(&mut self, chunk: &Bytes) -> Result<(), BoxError> {
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
                self.ready.extend(out);
                fed.map_err(|_| "an event of the answer is too large to translate".into())
            }
            Mode::Whole { read, .. } => {
                if read.len() + chunk.len() > MAX_OUTWARD_BODY {
                    return Err("the answer is too large to translate".into());
                }
                read.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// The OpenAI answer ended: translate what is owed.
    pub(super) fn end(&mut self) {
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
                if !translator.finished() {
                    translator.end(&mut out);
                }
                self.ready.extend(out);
            }
            Mode::Whole {
                status,
                read,
                model,
            } => {
                let body = if (200..300).contains(status) {
                    inbound::response_from_openai(read, model).unwrap_or_else(|| {
                        inbound::error_body(
                            502,
                            "The upstream's answer could not be read as a chat completion.",
                        )
                    })
                } else {
                    inbound::error_from_openai(*status, read)
                };
                self.ready.push_back(Bytes::from(body));
            }
        }
    }
}
