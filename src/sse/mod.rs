//! Zero-copy scanner of `text/event-stream` bodies: event framing only.
//!
//! [`SseScanner`] finds SSE event boundaries in upstream [`Bytes`] chunks as
//! they arrive, split anywhere (even between the `\r` and `\n` of a CRLF),
//! and parses each event's fields by the WHATWG rules into an [`Event`].
//! What an event *means* (OpenAI chunk kinds, token usage) is `openai`'s job.
//!
//! What it must never do:
//!
//! * **Never produce or edit what the client receives.** The proxy forwards
//!   upstream chunks untouched; this module only looks at them. Nothing here is
//!   written back to a socket.
//! * **Never copy an event that lies inside one chunk.** [`Event::raw`] is then a
//!   `Bytes::slice` of that chunk. Only an event that straddles chunks is
//!   carried over, and never more than [`MAX_EVENT_BYTES`] of it.
//!
//! A leaf: it imports nothing of the crate.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

/// Largest SSE event, in bytes before its terminating blank line, that the
/// scanner accepts.
///
/// This bounds the carry-over buffer, the only memory a stream can make the
/// scanner hold. Real events are far smaller: a chat chunk is a few hundred
/// bytes, and the largest common one, a Responses API `response.completed`
/// that repeats the whole output, is tens of KiB for a long answer. 1 MiB
/// leaves a wide margin for those while capping what each stream stuck
/// mid-event can pin (a thousand such streams: about 1 GiB). Events that carry
/// base64 images (`response.image_generation_call.*`) can exceed it; the caller
/// should then stop observing that stream but keep forwarding it, since the
/// client's bytes never depend on the scanner.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// UTF-8 byte order mark, which WHATWG strips at the very start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Error from [`SseScanner::feed`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    /// One event grew past [`MAX_EVENT_BYTES`] before its terminating blank line.
    #[error("an SSE event exceeded {MAX_EVENT_BYTES} bytes without ending")]
    EventTooLarge,
}

/// How far the stream's first bytes have matched a byte order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// This many BOM bytes have been seen at the stream's start, and nothing else.
    Matching(usize),
    /// The stream's start is behind us.
    Done,
}

/// Incremental scanner of a `text/event-stream` body.
///
/// Feed it each chunk as it arrives with [`feed`](SseScanner::feed); it calls
/// back once per complete event, in order, and keeps whatever incomplete
/// event is left at the end of a chunk for the next one.
///
/// **Carry-over.** An event found whole inside one chunk is handed out as a
/// slice of that chunk, with no copy. When a chunk ends inside an event, the
/// event's bytes so far are copied into a carry-over buffer; the next chunks'
/// bytes of that event are appended until its blank line arrives, and then the
/// buffer itself becomes [`Event::raw`] (no second copy) and the scanner holds
/// no memory until the next straddling event. The buffer never exceeds
/// [`MAX_EVENT_BYTES`] plus the one or two bytes of the event's final blank
/// line.
///
/// **A `\r` at the end of a chunk.** When the blank line that ends an event is
/// a `\r` and it is the chunk's last byte, the event cannot be handed out yet:
/// if the next chunk starts with `\n`, that `\n` belongs to the same line
/// ending and so to this event's `raw`. The scanner holds such an event until
/// the next non-empty chunk (or [`finish`](SseScanner::finish)) decides it. This
/// keeps the events exactly the same however the stream is split; it only
/// delays an event when an upstream splits a CRLF across chunks or uses bare
/// `\r` line endings, which OpenAI-style servers don't.
///
/// Every blank line ends an event, so `raw` of all events, in order, is
/// exactly the stream's bytes; a blank line with nothing before it is an
/// empty event (`comment_only`).
pub struct SseScanner {
    /// Bytes of the current event from earlier chunks (empty for most events).
    carry: Vec<u8>,
    /// `carry` is a complete event ended by a `\r` at the end of the last
    /// chunk, waiting to see whether a `\n` follows.
    held: bool,
    /// The current line is empty so far: a line ending now is a blank line.
    at_line_start: bool,
    /// The last byte was a `\r` ending a non-blank line, so a `\n` now is the
    /// rest of that line ending, not a blank line.
    after_cr: bool,
    bom: Bom,
    /// No event has been dispatched yet (the first one may start with a BOM).
    first_event: bool,
    /// An event was too large; the stream is no longer observed.
    failed: bool,
}

impl SseScanner {
    /// A scanner at the start of a stream.
    pub fn new() -> SseScanner {
        SseScanner {
            carry: Vec::new(),
            held: false,
            at_line_start: true,
            after_cr: false,
            bom: Bom::Matching(0),
            first_event: true,
            failed: false,
        }
    }

    /// Feeds the next chunk; calls `on_event` for every event it completes, in
    /// stream order.
    ///
    /// Events inside `chunk` borrow from it and their `raw` is a slice of it.
    /// Empty chunks are allowed and change nothing.
    ///
    /// # Errors
    ///
    /// [`SseError::EventTooLarge`] when one event's bytes before its
    /// terminating blank line exceed [`MAX_EVENT_BYTES`]. Events before it have
    /// been dispatched. The error is sticky: the scanner drops its buffer and
    /// every later `feed` returns the same error, because without the event's
    /// end it cannot find where the next one starts. The result does not depend
    /// on how the stream was split into chunks.
    pub fn feed(
        &mut self,
        chunk: &Bytes,
        mut on_event: impl FnMut(Event<'_>),
    ) -> Result<(), SseError> {
        if self.failed {
            return Err(SseError::EventTooLarge);
        }
        let buf: &[u8] = chunk;
        if buf.is_empty() {
            return Ok(());
        }
        // `start` is where the current event begins in this chunk; `i` is the
        // scan position.
        let mut start = 0;
        let mut i = 0;

        if self.held {
            let end = usize::from(buf[0] == b'\n');
            self.carry.extend_from_slice(&buf[..end]);
            self.held = false;
            self.dispatch_carry(&mut on_event);
            start = end;
            i = end;
        }

        if let Bom::Matching(mut matched) = self.bom {
            while i < buf.len() && matched < BOM.len() && buf[i] == BOM[matched] {
                matched += 1;
                i += 1;
            }
            if matched == BOM.len() {
                self.bom = Bom::Done;
            } else if i < buf.len() {
                // Not a BOM after all: the bytes matched so far are line content.
                if matched > 0 {
                    self.at_line_start = false;
                }
                self.bom = Bom::Done;
            } else {
                self.bom = Bom::Matching(matched);
            }
        }

        while i < buf.len() {
            let Some(k) = find_eol(&buf[i..]) else {
                self.at_line_start = false;
                self.after_cr = false;
                break;
            };
            if k > 0 {
                self.at_line_start = false;
                self.after_cr = false;
            }
            let p = i + k;
            let byte = buf[p];
            if byte == b'\n' && self.after_cr {
                // The second half of a CRLF, possibly split across chunks.
                self.after_cr = false;
                i = p + 1;
                continue;
            }
            if !self.at_line_start {
                // The end of a non-empty line.
                self.at_line_start = true;
                self.after_cr = byte == b'\r';
                i = p + 1;
                continue;
            }

            // A blank line: the event ends here. Check the size before copying
            // anything, so the carry-over never grows past the bound.
            if self.carry.len() + (p - start) > MAX_EVENT_BYTES {
                return Err(self.fail());
            }
            let end = if byte == b'\n' {
                p + 1
            } else if p + 1 < buf.len() {
                p + 1 + usize::from(buf[p + 1] == b'\n')
            } else {
                // A `\r` as the chunk's last byte: wait for the next chunk to
                // say whether a `\n` completes it (see the type's docs).
                self.carry.extend_from_slice(&buf[start..]);
                self.held = true;
                return Ok(());
            };
            if self.carry.is_empty() {
                let strip_bom = std::mem::replace(&mut self.first_event, false);
                on_event(parse_event(
                    &buf[start..end],
                    chunk.slice(start..end),
                    strip_bom,
                ));
            } else {
                self.carry.extend_from_slice(&buf[start..end]);
                self.dispatch_carry(&mut on_event);
            }
            self.at_line_start = true;
            self.after_cr = false;
            start = end;
            i = end;
        }

        // The rest of the chunk is the start of an event that has not ended yet.
        let rest = buf.len() - start;
        if rest > 0 {
            if self.carry.len() + rest > MAX_EVENT_BYTES {
                return Err(self.fail());
            }
            self.carry.extend_from_slice(&buf[start..]);
        }
        Ok(())
    }

    /// Bytes held for an incomplete event: 0 when the last chunk ended on an
    /// event boundary.
    ///
    /// Also counts an event whose final `\r` was the last chunk's last byte,
    /// which is held until the next byte is seen (see the type's docs).
    pub fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Ends the stream and resets the scanner for a new one.
    ///
    /// Dispatches an event still waiting to see whether a `\n` follows its
    /// final `\r`, and discards an event that never got its blank line, as
    /// WHATWG does at the end of a stream. Returns how many bytes were
    /// discarded (0 when the stream ended on an event boundary), so a caller
    /// can tell a cut stream from a clean end.
    pub fn finish(&mut self, mut on_event: impl FnMut(Event<'_>)) -> usize {
        let discarded = if self.held {
            self.held = false;
            self.dispatch_carry(&mut on_event);
            0
        } else {
            self.carry.len()
        };
        *self = SseScanner::new();
        discarded
    }

    /// Dispatches the complete event in `carry`, handing the buffer itself out
    /// as `raw`.
    fn dispatch_carry(&mut self, on_event: &mut impl FnMut(Event<'_>)) {
        let raw = Bytes::from(std::mem::take(&mut self.carry));
        let strip_bom = std::mem::replace(&mut self.first_event, false);
        on_event(parse_event(&raw, raw.clone(), strip_bom));
        self.at_line_start = true;
        self.after_cr = false;
    }

    fn fail(&mut self) -> SseError {
        self.failed = true;
        self.held = false;
        self.carry = Vec::new();
        SseError::EventTooLarge
    }
}

impl Default for SseScanner {
    fn default() -> SseScanner {
        SseScanner::new()
    }
}

impl fmt::Debug for SseScanner {
    // Not derived: the carry-over can be a MiB of bytes nobody wants in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseScanner")
            .field("pending", &self.carry.len())
            .field("held", &self.held)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// One dispatched SSE event.
///
/// Fields follow the WHATWG rules: a line is `name:value` with one leading
/// space of the value removed (`data:x` and `data: x` are the same, `data:  x`
/// keeps one space) or just `name` (empty value); lines starting with `:` are
/// comments; lines end with `\n`, `\r\n` or `\r`; a blank line dispatches.
/// `data` lines accumulate, `event` sets the name, `id`, `retry` and unknown
/// fields change nothing observed here. An event with no data and no event
/// name is a comment-only (or empty) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The whole event, including its terminating blank line, exactly as
    /// received: a slice of the chunk when the event lay inside one chunk.
    pub raw: Bytes,
    /// The `event:` field's value (the last one, when repeated); `None` when
    /// absent, empty (which WHATWG treats as the default `message`), or not
    /// UTF-8.
    pub event: Option<&'a str>,
    /// The `data:` field values joined by `\n`: borrowed when there is a single
    /// data line (the common case), owned when several are joined. Empty when
    /// there is no data line.
    pub data: Cow<'a, [u8]>,
    /// At least one `data` line (a lone `data:` gives empty `data` and `true`).
    pub has_data: bool,
    /// No data and no event name: only comments (`: keep-alive`), `id:` or
    /// `retry:` lines, or nothing at all (a stray blank line).
    pub comment_only: bool,
}

/// Parses one complete event (`bytes` ends with its blank line).
fn parse_event(bytes: &[u8], raw: Bytes, strip_bom: bool) -> Event<'_> {
    let mut rest = match bytes.strip_prefix(BOM) {
        Some(after) if strip_bom => after,
        _ => bytes,
    };
    let mut event: Option<&[u8]> = None;
    let mut data: Option<Cow<'_, [u8]>> = None;
    loop {
        let eol = find_eol(rest).unwrap_or(rest.len());
        let line = &rest[..eol];
        if line.is_empty() {
            // The terminating blank line (by construction the only empty line).
            break;
        }
        rest = skip_eol(&rest[eol..]);
        if line[0] == b':' {
            continue;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => match &line[colon + 1..] {
                [b' ', value @ ..] => (&line[..colon], value),
                value => (&line[..colon], value),
            },
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                data = Some(match data {
                    None => Cow::Borrowed(value),
                    Some(joined) => {
                        let mut joined = joined.into_owned();
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                        Cow::Owned(joined)
                    }
                });
            }
            b"event" => event = Some(value),
            // `id`, `retry` and unknown fields: nothing the router observes.
            _ => {}
        }
    }
    let event = event
        .filter(|name| !name.is_empty())
        .and_then(|name| std::str::from_utf8(name).ok());
    let has_data = data.is_some();
    Event {
        raw,
        event,
        data: data.unwrap_or(Cow::Borrowed(&[])),
        has_data,
        comment_only: !has_data && event.is_none(),
    }
}

/// Offset of the first `\r` or `\n`.
fn find_eol(bytes: &[u8]) -> Option<usize> {
    // memchr2 scans a word (or a SIMD register) at a time: this runs over
    // every byte of every stream.
    memchr::memchr2(b'\n', b'\r', bytes)
}

/// `bytes` after the line ending it starts with (`\r\n`, `\r` or `\n`).
fn skip_eol(bytes: &[u8]) -> &[u8] {
    match bytes {
        [b'\r', b'\n', rest @ ..] => rest,
        [_, rest @ ..] => rest,
        [] => bytes,
    }
}

#[cfg(test)]
pub(crate) mod tests;
