//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`),
//! in which ConverseStream answers, decoded incrementally.
//!
//! A message is one frame:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | total length (big-endian, the whole frame) |
//! | 4 | headers length |
//! | 4 | prelude CRC32 (of the 8 bytes before it) |
//! | n | headers: name length (1), name, value type (1), value |
//! | m | payload (here JSON) |
//! | 4 | message CRC32 (of every byte before it) |
//!
//! [`EventStreamDecoder::feed`] takes the body's chunks as they arrive, split
//! anywhere, and calls back once per complete frame. The prelude is checked
//! as soon as its 12 bytes are in (its CRC, then the length against
//! [`MAX_MESSAGE_BYTES`]), so a corrupt or hostile length is refused before
//! anything is buffered for it; the message CRC is checked when the frame is
//! whole, and the headers are read by `aws-smithy-eventstream`, which checks
//! both CRCs again and every header's bounds. At most one frame (plus the
//! last chunk) is ever held.
//!
//! The headers kept are the ones Converse uses: `:message-type` (`event`,
//! `exception` or `error`) and the name of the event — `:event-type`,
//! `:exception-type`, or `:error-code` for each message type. An `error`
//! message carries its text in the `:error-message` header and no
//! payload; the decoder then hands that text over as the payload, so a
//! [`StreamMessage`] has all there is to know in three fields.

use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::{HeaderValue, Message};

/// The longest frame accepted, in bytes: the SSE scanner's bound for one
/// event (`sse::MAX_EVENT_BYTES`). Converse events are small (a delta, a
/// usage object); AWS's own limit is 16 MiB.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Total length, headers length, prelude CRC.
const PRELUDE_BYTES: usize = 12;
/// The shortest frame: a prelude and the message CRC.
const MIN_MESSAGE_BYTES: usize = PRELUDE_BYTES + 4;

/// One decoded event-stream message, borrowed from the decoder for the
/// length of the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamMessage<'a> {
    /// `:message-type`: `event`, `exception` or `error` (`""` when absent).
    pub message_type: &'a str,
    /// The event's name: `:event-type` of an `event`, `:exception-type` of
    /// an `exception`, `:error-code` of an `error` (`""` when absent).
    pub event_type: &'a str,
    /// The payload (JSON for Converse); for an `error` message without one,
    /// its `:error-message` header.
    pub payload: &'a [u8],
}

/// Why a stream cannot be decoded any further; the stream is then broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The prelude's CRC does not match its first 8 bytes.
    #[error("an event-stream prelude failed its CRC check")]
    PreludeChecksum,
    /// The message's CRC does not match its bytes.
    #[error("an event-stream message failed its CRC check")]
    MessageChecksum,
    /// The total length is below the 16-byte minimum or the headers do not
    /// fit in the frame.
    #[error("an event-stream message declared an impossible length ({0} bytes)")]
    BadLength(u32),
    /// The total length exceeds [`MAX_MESSAGE_BYTES`].
    #[error("an event-stream message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(u32),
    /// The headers could not be read.
    #[error("an event-stream message is malformed: {0}")]
    Malformed(String),
}

/// Decodes AWS event-stream frames from a body's chunks, split anywhere.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    /// The bytes of the frame being received (and of later ones in the
    /// same chunk, until they are decoded).
    buffer: Vec<u8>,
    /// The length of the frame at the start of `buffer`, once its prelude
    /// has been checked.
    pending: Option<usize>,
    /// A decode error ends the stream: later calls fail at once.
    broken: Option<DecodeError>,
}

impl EventStreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> EventStreamDecoder {
        EventStreamDecoder::default()
    }

    /// Appends `chunk` and calls `f` for each message it completes, in order.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on a bad CRC, an impossible or oversized length, or
    /// malformed headers. Messages before the bad one have been handed to
    /// `f`; the decoder stays broken (every later call fails the same way).
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(StreamMessage<'_>),
    ) -> Result<(), DecodeError> {
        if let Some(error) = &self.broken {
            return Err(error.clone());
        }
        match self.decode(chunk, &mut f) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.buffer = Vec::new();
                self.pending = None;
                self.broken = Some(error.clone());
                Err(error)
            }
        }
    }

    /// True when no partial frame is left: the stream ended on a frame
    /// boundary (and nothing failed).
    pub fn finish(&self) -> bool {
        self.buffer.is_empty() && self.broken.is_none()
    }

    fn decode(
        &mut self,
        chunk: &[u8],
        f: &mut impl FnMut(StreamMessage<'_>),
    ) -> Result<(), DecodeError> {
        // Frames wholly inside `chunk` are decoded from it without copying;
        // only a frame's unfinished start is kept in `buffer`.
        let mut rest = chunk;
        if !self.buffer.is_empty() {
            let need = match self.pending {
                Some(total) => total - self.buffer.len(),
                None => PRELUDE_BYTES - self.buffer.len(),
            };
            let take = need.min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.is_none() && self.buffer.len() == PRELUDE_BYTES {
                let total = check_prelude(&self.buffer)?;
                self.pending = Some(total);
                let more = (total - PRELUDE_BYTES).min(rest.len());
                self.buffer.extend_from_slice(&rest[..more]);
                rest = &rest[more..];
            }
            match self.pending {
                Some(total) if self.buffer.len() == total => {
                    let frame = std::mem::take(&mut self.buffer);
                    self.pending = None;
                    deliver(&frame, f)?;
                    // Keep the allocation for the next partial frame.
                    self.buffer = frame;
                    self.buffer.clear();
                }
                _ => return Ok(()),
            }
        }
        while rest.len() >= PRELUDE_BYTES {
            let total = check_prelude(&rest[..PRELUDE_BYTES])?;
            if rest.len() < total {
                break;
            }
            deliver(&rest[..total], f)?;
            rest = &rest[total..];
        }
        if !rest.is_empty() {
            if rest.len() >= PRELUDE_BYTES {
                self.pending = Some(check_prelude(&rest[..PRELUDE_BYTES])?);
            }
            self.buffer.extend_from_slice(rest);
        }
        Ok(())
    }
}

/// Checks a prelude; returns the frame's total length.
fn check_prelude(prelude: &[u8]) -> Result<usize, DecodeError> {
    let word = |at: usize| {
        u32::from_be_bytes([
            prelude[at],
            prelude[at + 1],
            prelude[at + 2],
            prelude[at + 3],
        ])
    };
    let (total, headers, crc) = (word(0), word(4), word(8));
    if crc32fast::hash(&prelude[..8]) != crc {
        return Err(DecodeError::PreludeChecksum);
    }
    let total_bytes = total as usize;
    if total_bytes > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge(total));
    }
    if total_bytes < MIN_MESSAGE_BYTES || headers as usize > total_bytes - MIN_MESSAGE_BYTES {
        return Err(DecodeError::BadLength(total));
    }
    Ok(total_bytes)
}

/// Checks one whole frame's CRC, reads it, and hands it to `f`.
fn deliver(frame: &[u8], f: &mut impl FnMut(StreamMessage<'_>)) -> Result<(), DecodeError> {
    let (body, crc) = frame.split_at(frame.len() - 4);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Err(DecodeError::MessageChecksum);
    }
    let message = read_message_from(frame).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let message_type = header(&message, ":message-type");
    let (event_type, payload) = match message_type {
        "exception" => (header(&message, ":exception-type"), &message.payload()[..]),
        "error" => {
            let payload = &message.payload()[..];
            let text = header(&message, ":error-message");
            let payload = if payload.is_empty() {
                text.as_bytes()
            } else {
                payload
            };
            (header(&message, ":error-code"), payload)
        }
        _ => (header(&message, ":event-type"), &message.payload()[..]),
    };
    f(StreamMessage {
        message_type,
        event_type,
        payload,
    });
    Ok(())
}

/// A string header's value, `""` when absent or not a string.
fn header<'m>(message: &'m Message, name: &str) -> &'m str {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("")
}
