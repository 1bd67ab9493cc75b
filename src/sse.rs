//! Zero-copy scanner of `text/event-stream` bodies, and what OpenAI-style
//! stream events mean for routing.
//!
//! This module owns three jobs:
//!
//! 1. [`SseScanner`] finds SSE event boundaries in upstream [`Bytes`] chunks as
//!    they arrive, split anywhere (even between the `\r` and `\n` of a CRLF),
//!    and parses each event's fields by the WHATWG rules into an [`Event`].
//! 2. [`classify`] says what an event means for the commit point: `[DONE]`, an
//!    error frame, content, or nothing yet ([`ChunkKind`]).
//! 3. [`usage_of_event`] and [`usage_of_body`] read token [`Usage`].
//!
//! What it must never do:
//!
//! * **Never produce or edit what the client receives.** The proxy forwards
//!   upstream chunks untouched; this module only looks at them. Nothing here is
//!   written back to a socket.
//! * **Never copy an event that lies inside one chunk.** [`Event::raw`] is then a
//!   `Bytes::slice` of that chunk. Only an event that straddles chunks is
//!   carried over, and never more than [`MAX_EVENT_BYTES`] of it.
//! * **Never build a DOM of a chunk.** Classification and usage use minimal
//!   serde structs and `IgnoredAny` for everything else.
//!
//! Who uses it: the response-body observer in `forward` (commit point,
//! mid-stream error frames) and telemetry (token usage for metrics and the
//! access log).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

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

// --- lenient serde building blocks ---------------------------------------------
//
// Upstreams disagree about types (`content` null or "", `tool_calls` null or
// [], `choices` absent). These types accept any JSON value, so one odd field
// never makes a whole chunk unreadable, and skip what they don't keep.

/// Visitor methods that return `$value` for the listed kinds of JSON value,
/// skipping the contents of sequences and maps.
macro_rules! ignore_values {
    ($value:expr; $($kind:ident),+) => { $(ignore_values!(@$kind $value);)+ };
    (@bool $value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@number $value:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@string $value:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@null $value:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@seq $value:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq)?;
            Ok($value)
        }
    };
    (@map $value:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map)?;
            Ok($value)
        }
    };
}

/// Skips the rest of a sequence; returns how many elements it had.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<usize, A::Error> {
    let mut n = 0;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Skips the rest of a map; returns how many entries it had.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<usize, A::Error> {
    let mut n = 0;
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// `Some(T)` when the value is a JSON object, `None` for any other value.
struct Obj<T>(Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Obj<T> {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Obj<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            ignore_values!(Obj(None); bool, number, string, null, seq);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Whether a value is present and non-null, and whether it is truthy as
/// Python sees it (openai-python tests `data.get("error")`): not null, false,
/// 0, "", [] or {}.
#[derive(Debug, Default, Clone, Copy)]
struct Shape {
    non_null: bool,
    truthy: bool,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        struct V;
        fn value(truthy: bool) -> Shape {
            Shape {
                non_null: true,
                truthy,
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Shape, E> {
                Ok(value(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Shape, E> {
                Ok(value(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shape, E> {
                Ok(value(v != 0))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Shape, E> {
                Ok(value(v != 0.0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
                Ok(value(!v.is_empty()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Shape, E> {
                Ok(value(!v.is_empty()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Shape, A::Error> {
                Ok(value(drain_seq(seq)? > 0))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
                Ok(value(drain_map(map)? > 0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A token count: a non-negative integer (or an integral float) up to
/// [`MAX_TOKEN_COUNT`]; anything else counts as absent.
#[derive(Default)]
struct Count(Option<u64>);

/// The largest token count believed (2^32, far above any context window):
/// an absurd number from a broken upstream must not wrap the counters or
/// the cost it is added to.
pub const MAX_TOKEN_COUNT: u64 = 1 << 32;

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count((v <= MAX_TOKEN_COUNT).then_some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                Ok(Count(
                    u64::try_from(v).ok().filter(|v| *v <= MAX_TOKEN_COUNT),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                // The range check keeps the `as` conversion exact.
                let integral = v.fract() == 0.0 && (0.0..=MAX_TOKEN_COUNT as f64).contains(&v);
                Ok(Count(integral.then_some(v as u64)))
            }
            ignore_values!(Count(None); bool, string, null, seq, map);
        }
        d.deserialize_any(V)
    }
}

// --- classification ----------------------------------------------------------

/// What an OpenAI-style event (`chat.completion.chunk`, `text_completion`, or a
/// Responses API event) says, for routing decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkKind {
    /// The data starts with `[DONE]` (openai-python's own test).
    Done,
    /// An error frame: a JSON object with a truthy top-level `"error"` (as
    /// openai-python decides), `event: error`, or a `type` of `"error"` or
    /// `"response.failed"`.
    Error,
    /// Carries content, so the stream can commit: any choice with a non-empty
    /// `delta.content`, `delta.tool_calls`, `delta.refusal`,
    /// `delta.reasoning_content` or `delta.reasoning`, a non-null
    /// `delta.function_call` or `finish_reason`, or a non-empty `text` (legacy
    /// completions). Responses API: `response.output_item.added`,
    /// `response.output_text.delta`, `response.function_call_arguments.delta`,
    /// `response.refusal.delta`, `response.completed` and
    /// `response.incomplete`.
    Content,
    /// Valid JSON without content: the role-only first chunk, an empty-choices
    /// chunk (Azure's prompt filter results, the usage chunk), Responses
    /// `response.created` / `response.in_progress`, non-object JSON.
    Empty,
    /// No data: comments, keep-alives, a bare `event:` line.
    Comment,
    /// Data that is not JSON (the client's SDK would fail to parse it).
    Other,
}

/// Classifies one event for the commit point and error detection.
pub fn classify(event: &Event<'_>) -> ChunkKind {
    if event.event == Some("error") {
        return ChunkKind::Error;
    }
    if !event.has_data {
        return ChunkKind::Comment;
    }
    let data: &[u8] = &event.data;
    if data.starts_with(b"[DONE]") {
        return ChunkKind::Done;
    }
    match serde_json::from_slice::<Obj<Frame>>(data) {
        Ok(Obj(Some(frame))) => frame.kind(event.event),
        Ok(Obj(None)) => ChunkKind::Empty,
        // Valid JSON our structs refuse (a duplicated key) carries nothing we
        // can rely on; only bytes that are not JSON at all are `Other`.
        Err(_) if serde_json::from_slice::<IgnoredAny>(data).is_ok() => ChunkKind::Empty,
        Err(_) => ChunkKind::Other,
    }
}

/// The top-level fields of a stream chunk that classification needs.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Frame {
    error: Shape,
    #[serde(rename = "type")]
    kind: TypeTag,
    choices: Choices,
}

impl Frame {
    fn kind(&self, event_name: Option<&str>) -> ChunkKind {
        if self.error.truthy {
            return ChunkKind::Error;
        }
        // Responses API events name their type in the data; fall back to the
        // `event:` line for servers that only put it there.
        let tag = match (&self.kind, event_name) {
            (TypeTag::Absent, Some(name)) => TypeTag::of(name),
            (tag, _) => *tag,
        };
        match tag {
            TypeTag::Error => ChunkKind::Error,
            TypeTag::ResponseContent => ChunkKind::Content,
            TypeTag::ResponseQuiet => ChunkKind::Empty,
            TypeTag::Absent | TypeTag::Other if self.choices.content => ChunkKind::Content,
            TypeTag::Absent | TypeTag::Other => ChunkKind::Empty,
        }
    }
}

/// What a `type` string means.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum TypeTag {
    #[default]
    Absent,
    Error,
    ResponseContent,
    ResponseQuiet,
    /// Not a Responses API type (e.g. Anthropic's `message_start`), or not a string.
    Other,
}

impl TypeTag {
    fn of(kind: &str) -> TypeTag {
        match kind {
            "error" | "response.failed" => TypeTag::Error,
            // `response.output_item.added` announces every output item before
            // its deltas; `response.incomplete` is a final answer cut by
            // `max_output_tokens` or the content filter, like a chat chunk's
            // `finish_reason`.
            "response.output_item.added"
            | "response.output_text.delta"
            | "response.function_call_arguments.delta"
            | "response.refusal.delta"
            | "response.completed"
            | "response.incomplete" => TypeTag::ResponseContent,
            kind if kind.starts_with("response.") => TypeTag::ResponseQuiet,
            _ => TypeTag::Other,
        }
    }
}

impl<'de> Deserialize<'de> for TypeTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TypeTag, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeTag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TypeTag, E> {
                Ok(TypeTag::of(v))
            }
            ignore_values!(TypeTag::Other; bool, number, null, seq, map);
        }
        d.deserialize_any(V)
    }
}

/// Whether any element of `choices` carries content; anything but an array
/// carries none. Reads the array without collecting it.
#[derive(Default)]
struct Choices {
    content: bool,
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Choices, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices, A::Error> {
                let mut content = false;
                while let Some(Obj(choice)) = seq.next_element::<Obj<Choice>>()? {
                    content |= choice.is_some_and(|c| c.carries_content());
                }
                Ok(Choices { content })
            }
            ignore_values!(Choices::default(); bool, number, string, null, map);
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Choice {
    delta: Obj<Delta>,
    /// Legacy completions stream their tokens here.
    text: Shape,
    finish_reason: Shape,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Delta {
    content: Shape,
    tool_calls: Shape,
    refusal: Shape,
    function_call: Shape,
    /// Reasoning tokens from vLLM, llama.cpp (`reasoning_content`) and Ollama
    /// (`reasoning`): the client sees them, so the answer has started.
    reasoning_content: Shape,
    reasoning: Shape,
}

impl Choice {
    fn carries_content(&self) -> bool {
        let delta = self.delta.0.as_ref().is_some_and(|d| {
            d.content.truthy
                || d.tool_calls.truthy
                || d.refusal.truthy
                || d.function_call.non_null
                || d.reasoning_content.truthy
                || d.reasoning.truthy
        });
        delta || self.text.truthy || self.finish_reason.non_null
    }
}

// --- usage -------------------------------------------------------------------

/// Token usage as reported in a chunk's or body's `usage` object.
///
/// Chat and legacy completions report `prompt_tokens` / `completion_tokens` /
/// `total_tokens`; the Responses API reports `input_tokens` / `output_tokens` /
/// `total_tokens`, which map to the same fields. A missing count is 0; a
/// missing total is the sum of the other two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens in the prompt (`prompt_tokens` or `input_tokens`).
    pub prompt_tokens: u64,
    /// Tokens generated (`completion_tokens` or `output_tokens`), reasoning included.
    pub completion_tokens: u64,
    /// `total_tokens`, or the sum of the two above when absent.
    pub total_tokens: u64,
}

/// Usage from one event's data, if it carries a non-null `usage` object at the
/// top level or under `response` (Responses API `response.completed`).
///
/// Chat chunks with `include_usage` say `"usage":null` on every chunk but the
/// last, so a byte search skips those (and all chunks without `"usage"`)
/// before any parsing. A key spelled with `\u` escapes is not found.
///
/// Anthropic streams are not OpenAI-style: their `message_delta` usage reads
/// as output tokens only, and their input tokens (under `message`) are not
/// read; counting those is the translator's job.
pub fn usage_of_event(event: &Event<'_>) -> Option<Usage> {
    if !event.has_data {
        return None;
    }
    usage_in_json(&event.data)
}

/// Usage from a whole non-stream JSON response body: the top-level `usage`, or
/// `response.usage`.
///
/// Parses only those objects; everything else is skipped with `IgnoredAny`, so
/// no DOM is built however large the body is.
pub fn usage_of_body(body: &[u8]) -> Option<Usage> {
    usage_in_json(body)
}

/// The top-level `usage` object, else `response.usage`. Only those two
/// objects are parsed; the rest of the body is skipped by a structural scan
/// (strings jumped with `memchr`), which costs a fraction of walking every
/// value with serde — this runs on every non-streamed answer.
fn usage_in_json(json: &[u8]) -> Option<Usage> {
    if !mentions_non_null_usage(json) {
        return None;
    }
    let top = skip_ws(json);
    if let Some(usage) = member(top, b"usage").and_then(|at| usage_object(&top[at..])) {
        return Some(usage);
    }
    let response = &top[member(top, b"response")?..];
    usage_object(&response[member(response, b"usage")?..])
}

/// The usage object at the start of `value`, if it is one.
fn usage_object(value: &[u8]) -> Option<Usage> {
    if value.first() != Some(&b'{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(value);
    WireUsage::deserialize(&mut de)
        .ok()
        .map(WireUsage::into_usage)
}

/// Where the value of member `key` starts, when `json` starts with an
/// object that has that key (spelled without escapes) at its top level.
fn member(json: &[u8], key: &[u8]) -> Option<usize> {
    if json.first() != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => {
                let start = i + 1;
                let end = string_end(json, start)?;
                i = end + 1;
                if depth == 1 {
                    let rest = skip_ws(&json[i..]);
                    if let Some(after) = rest.strip_prefix(b":") {
                        if &json[start..end] == key {
                            return Some(json.len() - skip_ws(after).len());
                        }
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the string whose content starts at `i`.
fn string_end(json: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[at] == b'"' {
            return Some(at);
        }
        i = at + 2;
    }
}

const USAGE_KEY: &[u8] = b"\"usage\"";

/// True when some `"usage"` key is followed by anything but `null`.
fn mentions_non_null_usage(json: &[u8]) -> bool {
    let mut from = 0;
    while let Some(at) = find_usage_key(&json[from..]) {
        from += at + USAGE_KEY.len();
        let after = skip_ws(&json[from..]);
        let Some(value) = after.strip_prefix(b":") else {
            continue; // a string value "usage", not a key
        };
        if !skip_ws(value).starts_with(b"null") {
            return true;
        }
    }
    false
}

/// Where `"usage"` first occurs in `haystack`. The searcher is built once:
/// this runs on every streamed event, where building it per call (as
/// `memmem::find` does) was most of the cost.
fn find_usage_key(haystack: &[u8]) -> Option<usize> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| memchr::memmem::Finder::new(USAGE_KEY))
        .find(haystack)
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    &bytes[n..]
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    total_tokens: Count,
    input_tokens: Count,
    output_tokens: Count,
}

impl WireUsage {
    fn into_usage(self) -> Usage {
        let prompt = self.prompt_tokens.0.or(self.input_tokens.0).unwrap_or(0);
        let completion = self
            .completion_tokens
            .0
            .or(self.output_tokens.0)
            .unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self
                .total_tokens
                .0
                .unwrap_or(prompt.saturating_add(completion)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An event with everything owned, to compare runs.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seen {
        event: Option<String>,
        data: Vec<u8>,
        raw: Bytes,
        has_data: bool,
        comment_only: bool,
    }

    impl Seen {
        fn of(e: &Event<'_>) -> Seen {
            Seen {
                event: e.event.map(str::to_owned),
                data: e.data.to_vec(),
                raw: e.raw.clone(),
                has_data: e.has_data,
                comment_only: e.comment_only,
            }
        }

        fn data_str(&self) -> &str {
            std::str::from_utf8(&self.data).unwrap()
        }
    }

    /// Feeds `chunks` in order, then finishes; returns the events, the bytes
    /// pending after the last chunk and the bytes `finish` discarded.
    fn scan_chunks(chunks: &[Bytes]) -> (Vec<Seen>, usize, usize) {
        let mut scanner = SseScanner::new();
        let mut seen = Vec::new();
        for chunk in chunks {
            scanner
                .feed(chunk, |e| seen.push(Seen::of(&e)))
                .expect("no event is too large");
        }
        let pending = scanner.pending();
        let discarded = scanner.finish(|e| seen.push(Seen::of(&e)));
        (seen, pending, discarded)
    }

    fn scan(parts: &[&str]) -> Vec<Seen> {
        let chunks: Vec<Bytes> = parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        scan_chunks(&chunks).0
    }

    /// Classifies every event of a whole stream.
    fn kinds(stream: &str) -> Vec<ChunkKind> {
        let mut scanner = SseScanner::new();
        let mut out = Vec::new();
        scanner
            .feed(&Bytes::copy_from_slice(stream.as_bytes()), |e| {
                out.push(classify(&e))
            })
            .unwrap();
        assert_eq!(scanner.finish(|e| out.push(classify(&e))), 0);
        out
    }

    /// Classifies one `data:` payload.
    fn kind_of(data: &str) -> ChunkKind {
        let kinds = kinds(&format!("data: {data}\n\n"));
        assert_eq!(kinds.len(), 1);
        kinds[0].clone()
    }

    /// Usage of one `data:` payload.
    fn usage_of(data: &str) -> Option<Usage> {
        let mut usage = None;
        let mut scanner = SseScanner::new();
        let chunk = Bytes::from(format!("data: {data}\n\n"));
        scanner
            .feed(&chunk, |e| usage = usage_of_event(&e))
            .unwrap();
        usage
    }

    const OPENAI_STREAM: &str = concat!(
        r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
        "\n\n",
        "data: [DONE]\n\n",
    );

    // --- framing --------------------------------------------------------------

    #[test]
    fn openai_stream_from_protocols_gives_its_four_events() {
        let (seen, pending, discarded) =
            scan_chunks(&[Bytes::from_static(OPENAI_STREAM.as_bytes())]);
        assert_eq!((pending, discarded), (0, 0));
        assert_eq!(seen.len(), 4);
        assert!(seen
            .iter()
            .all(|e| e.event.is_none() && e.has_data && !e.comment_only));
        assert!(seen[1].data_str().contains(r#""content":"Hel""#));
        assert_eq!(seen[3].data_str(), "[DONE]");
        let raw: Vec<u8> = seen.iter().flat_map(|e| e.raw.to_vec()).collect();
        assert_eq!(raw, OPENAI_STREAM.as_bytes());
        assert_eq!(
            kinds(OPENAI_STREAM),
            [
                ChunkKind::Empty,
                ChunkKind::Content,
                ChunkKind::Content,
                ChunkKind::Done
            ]
        );
    }

    #[test]
    fn crlf_line_endings_end_lines_and_events() {
        let seen = scan(&["event: a\r\ndata: 1\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n"]);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].event.as_deref(), Some("a"));
        assert_eq!(seen[0].data_str(), "1\n2");
        assert_eq!(&seen[0].raw[..], b"event: a\r\ndata: 1\r\ndata: 2\r\n\r\n");
        assert_eq!(seen[1].data_str(), "3");
        assert_eq!(&seen[1].raw[..], b"data: 3\r\n\r\n");
    }

    #[test]
    fn bare_cr_line_endings_end_lines_and_events() {
        let mut scanner = SseScanner::new();
        let mut seen = Vec::new();
        let chunk = Bytes::from_static(b"data: 1\rdata: 2\r\rdata: 3\r\r");
        scanner.feed(&chunk, |e| seen.push(Seen::of(&e))).unwrap();
        // The last `\r` might still be followed by `\n`: that event waits.
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].data_str(), "1\n2");
        assert_eq!(scanner.pending(), b"data: 3\r\r".len());
        scanner
            .feed(&Bytes::from_static(b"data: 4\r\r"), |e| {
                seen.push(Seen::of(&e))
            })
            .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(&seen[1].raw[..], b"data: 3\r\r");
        assert_eq!(scanner.finish(|e| seen.push(Seen::of(&e))), 0);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].data_str(), "4");
        assert_eq!(scanner.pending(), 0);
    }

    #[test]
    fn cr_ending_one_chunk_and_lf_starting_the_next_are_one_line_ending() {
        // Inside an event: not a blank line, so still one event.
        let seen = scan(&["data: a\r", "\ndata: b\r\n\r\n"]);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].data_str(), "a\nb");
        assert_eq!(&seen[0].raw[..], b"data: a\r\ndata: b\r\n\r\n");

        // On the blank line: the `\n` belongs to the first event's raw.
        let seen = scan(&["data: a\r\n\r", "\ndata: b\r\n\r\n"]);
        assert_eq!(seen.len(), 2);
        assert_eq!(&seen[0].raw[..], b"data: a\r\n\r\n");
        assert_eq!(&seen[1].raw[..], b"data: b\r\n\r\n");
        assert_eq!(seen[1].data_str(), "b");

        // Split before the blank line's CR.
        let seen = scan(&["data: a\r", "\r\n", "data: b\r\n\r\n"]);
        assert_eq!(seen.len(), 2);
        assert_eq!(&seen[0].raw[..], b"data: a\r\r\n");
    }

    #[test]
    fn multiple_data_lines_join_with_newline() {
        let mut scanner = SseScanner::new();
        let chunk = Bytes::from_static(b"data: one\ndata:\ndata: three\n\ndata: solo\n\n");
        let mut seen = Vec::new();
        scanner
            .feed(&chunk, |e| {
                seen.push((e.data.to_vec(), matches!(e.data, Cow::Borrowed(_))))
            })
            .unwrap();
        assert_eq!(
            seen,
            [(b"one\n\nthree".to_vec(), false), (b"solo".to_vec(), true)]
        );
    }

    #[test]
    fn one_leading_space_after_the_colon_is_removed() {
        let seen = scan(&["data:x\n\ndata: x\n\ndata:  x\n\ndata\n\ndata:\n\n"]);
        let data: Vec<&str> = seen.iter().map(Seen::data_str).collect();
        assert_eq!(data, ["x", "x", " x", "", ""]);
        assert!(seen.iter().all(|e| e.has_data));
    }

    #[test]
    fn comments_and_keep_alives_are_comment_only_events() {
        let seen = scan(&[": keep-alive\n\n:\n\n\nid: 7\nretry: 10\n\n: note\ndata: x\n\n"]);
        assert_eq!(seen.len(), 5);
        for e in &seen[..4] {
            assert!(e.comment_only && !e.has_data && e.event.is_none(), "{e:?}");
        }
        assert_eq!(
            &seen[2].raw[..],
            b"\n",
            "a stray blank line is an empty event"
        );
        assert!(!seen[4].comment_only);
        assert_eq!(seen[4].data_str(), "x");
        assert_eq!(
            kinds(": keep-alive\n\n"),
            [ChunkKind::Comment],
            "comments classify as Comment"
        );
    }

    #[test]
    fn event_names_are_read_anthropic_style() {
        let stream = concat!(
            "event: message_start\n",
            r#"data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"usage":{"input_tokens":12,"output_tokens":1}}}"#,
            "\n\n",
            "event: ping\n",
            r#"data: {"type":"ping"}"#,
            "\n\n",
            "event: ping\n\n",
            "event: error\n",
            r#"data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            "\n\n",
            "event: error\n\n",
            "event:\ndata: {}\n\n",
        );
        let seen = scan(&[stream]);
        let names: Vec<Option<&str>> = seen.iter().map(|e| e.event.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("message_start"),
                Some("ping"),
                Some("ping"),
                Some("error"),
                Some("error"),
                None
            ]
        );
        assert!(!seen[2].comment_only && !seen[2].has_data);
        assert_eq!(
            kinds(stream),
            [
                ChunkKind::Empty,
                ChunkKind::Empty,
                ChunkKind::Comment,
                ChunkKind::Error,
                ChunkKind::Error,
                ChunkKind::Empty
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_at_stream_start_is_ignored() {
        let seen = scan(&["\u{FEFF}data: a\n\n\u{FEFF}data: b\n\n"]);
        assert_eq!(seen[0].data_str(), "a");
        // Only at the stream's start: later it is part of a field name.
        assert!(!seen[1].has_data);
        // Split inside the BOM, and a BOM followed by a blank line.
        let bom = Bytes::from_static(b"\xEF\xBB\xBF\ndata: a\n\n");
        let (seen, _, _) = scan_chunks(&[bom.slice(..1), bom.slice(1..2), bom.slice(2..)]);
        assert_eq!(seen.len(), 2);
        assert!(seen[0].comment_only);
        assert_eq!(seen[1].data_str(), "a");
        // Two bytes of a BOM then something else are ordinary bytes.
        let odd = Bytes::from_static(b"\xEF\xBB\ndata: a\n\n");
        let (seen, _, _) = scan_chunks(&[odd.slice(..2), odd.slice(2..)]);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].data_str(), "a");
    }

    #[test]
    fn empty_chunks_change_nothing() {
        let seen = scan(&["", "data: a", "", "\n", "", "\n", ""]);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].data_str(), "a");
    }

    #[test]
    fn finish_discards_an_unterminated_event_and_says_how_much() {
        let mut scanner = SseScanner::new();
        let mut n = 0;
        scanner
            .feed(&Bytes::from_static(b"data: a\n\ndata: cut"), |_| n += 1)
            .unwrap();
        assert_eq!((n, scanner.pending()), (1, 9));
        assert_eq!(scanner.finish(|_| n += 1), 9);
        assert_eq!((n, scanner.pending()), (1, 0));
    }

    #[test]
    fn events_inside_one_chunk_are_not_copied() {
        let chunk = Bytes::from(OPENAI_STREAM.as_bytes().to_vec());
        let range = chunk.as_ptr_range();
        let mut scanner = SseScanner::new();
        let mut count = 0;
        scanner
            .feed(&chunk, |e| {
                count += 1;
                assert!(range.contains(&e.raw.as_ptr()));
                assert!(e.raw.len() <= chunk.len());
                assert!(matches!(e.data, Cow::Borrowed(_)));
                let data = e.data.as_ptr();
                assert!(range.contains(&data), "data borrows from the chunk");
            })
            .unwrap();
        assert_eq!(count, 4);

        // An event split across chunks is the one that gets copied.
        let (a, b) = (chunk.slice(..10), chunk.slice(10..));
        let mut copied = None;
        scanner.feed(&a, |_| unreachable!()).unwrap();
        assert_eq!(scanner.pending(), 10);
        scanner
            .feed(&b, |e| {
                copied.get_or_insert(!range.contains(&e.raw.as_ptr()));
            })
            .unwrap();
        assert_eq!(copied, Some(true));
    }

    #[test]
    fn an_event_larger_than_max_event_bytes_is_rejected() {
        let big = Bytes::from(format!("data: {}", "x".repeat(MAX_EVENT_BYTES)));
        // Whole, and growing across chunks.
        let mut whole = SseScanner::new();
        assert_eq!(whole.feed(&big, |_| ()), Err(SseError::EventTooLarge));
        assert_eq!(whole.pending(), 0);
        let mut pieces = SseScanner::new();
        let mut result = Ok(());
        let mut fed = 0;
        for start in (0..big.len()).step_by(64 * 1024) {
            result = pieces.feed(
                &big.slice(start..(start + 64 * 1024).min(big.len())),
                |_| (),
            );
            fed += 1;
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge));
        assert_eq!(
            fed, 17,
            "fails as soon as the carry-over would pass the bound"
        );
        assert!(pieces.pending() == 0);
        // Sticky: the next event is not observed either.
        let next = Bytes::from_static(b"\n\ndata: a\n\n");
        assert_eq!(
            pieces.feed(&next, |_| panic!()),
            Err(SseError::EventTooLarge)
        );

        // Also when it ends inside the same chunk: the result never depends on
        // how the stream was split.
        let mut ended = SseScanner::new();
        let mut events = 0;
        let stream = Bytes::from(format!(
            "data: a\n\n{}\n\n",
            &*String::from_utf8_lossy(&big)
        ));
        assert_eq!(
            ended.feed(&stream, |_| events += 1),
            Err(SseError::EventTooLarge)
        );
        assert_eq!(events, 1, "events before the big one are dispatched");

        // Right at the bound is fine: the bound counts the bytes before the
        // terminating blank line, the data line's own `\n` included.
        let fits = Bytes::from(format!("data: {}\n\n", "x".repeat(MAX_EVENT_BYTES - 7)));
        let mut ok = SseScanner::new();
        let mut len = 0;
        ok.feed(&fits.slice(..1000), |_| ()).unwrap();
        ok.feed(&fits.slice(1000..), |e| len = e.data.len())
            .unwrap();
        assert_eq!(len, MAX_EVENT_BYTES - 7);
        let over = Bytes::from(format!("data: {}\n\n", "x".repeat(MAX_EVENT_BYTES - 6)));
        assert_eq!(
            SseScanner::new().feed(&over, |_| ()),
            Err(SseError::EventTooLarge)
        );
    }

    // --- classification ---------------------------------------------------------

    #[test]
    fn done_sentinel_is_done() {
        assert_eq!(kind_of("[DONE]"), ChunkKind::Done);
        assert_eq!(kinds("data:[DONE]\n\n"), [ChunkKind::Done]);
    }

    #[test]
    fn absurd_token_counts_are_not_believed() {
        let usage = usage_of_body(
            br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":4294967297,"total_tokens":5}}"#,
        )
        .unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (0, 0));
        let usage =
            usage_of_body(br#"{"usage":{"prompt_tokens":4294967296,"completion_tokens":1e3}}"#)
                .unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (1 << 32, 1000)
        );
    }

    #[test]
    fn error_frame_is_error() {
        assert_eq!(
            kind_of(
                r#"{"error":{"message":"upstream timed out","type":"server_error","param":null,"code":null}}"#
            ),
            ChunkKind::Error
        );
        assert_eq!(
            kind_of(r#"{"error":{"message":"x","code":400}}"#),
            ChunkKind::Error
        );
        assert_eq!(kind_of(r#"{"error":"boom"}"#), ChunkKind::Error);
        // Falsy as Python sees it: not an error frame.
        for falsy in [
            r#"{"error":null}"#,
            r#"{"error":{}}"#,
            r#"{"error":""}"#,
            r#"{"error":false}"#,
        ] {
            assert_eq!(kind_of(falsy), ChunkKind::Empty, "{falsy}");
        }
        // An error next to content still is an error.
        assert_eq!(
            kind_of(r#"{"choices":[{"delta":{"content":"x"}}],"error":{"message":"m"}}"#),
            ChunkKind::Error
        );
    }

    #[test]
    fn role_only_first_chunk_is_empty() {
        assert_eq!(
            kind_of(
                r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#
            ),
            ChunkKind::Empty
        );
        assert_eq!(
            kind_of(
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":null,"refusal":null},"logprobs":null}],"usage":null}"#
            ),
            ChunkKind::Empty
        );
        assert_eq!(
            kind_of(r#"{"choices":[{"delta":{"tool_calls":[]}}]}"#),
            ChunkKind::Empty
        );
    }

    #[test]
    fn azure_prompt_filter_chunk_with_empty_choices_is_empty() {
        assert_eq!(
            kind_of(
                r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#
            ),
            ChunkKind::Empty
        );
        assert_eq!(
            kind_of(r#"{"id":"x"}"#),
            ChunkKind::Empty,
            "no choices at all"
        );
        assert_eq!(kind_of(r#"{"choices":null}"#), ChunkKind::Empty);
    }

    #[test]
    fn content_chunk_is_content() {
        assert_eq!(
            kind_of(
                r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}"#
            ),
            ChunkKind::Content
        );
        // Any choice counts, with n > 1.
        assert_eq!(
            kind_of(r#"{"choices":[{"index":0,"delta":{}},{"index":1,"delta":{"content":"x"}}]}"#),
            ChunkKind::Content
        );
        assert_eq!(
            kind_of(r#"{"choices":[{"delta":{"content":"caf\u00e9"}}]}"#),
            ChunkKind::Content
        );
        assert_eq!(
            kind_of(r#"{"choices":[{"delta":{"refusal":"no"}}]}"#),
            ChunkKind::Content
        );
        assert_eq!(
            kind_of(r#"{"choices":[{"delta":{"function_call":{"name":"f"}}}]}"#),
            ChunkKind::Content
        );
        assert_eq!(
            kind_of(r#"{"choices":[{"delta":{"reasoning_content":"Let me think"}}]}"#),
            ChunkKind::Content
        );
    }

    #[test]
    fn tool_calls_delta_is_content() {
        assert_eq!(
            kind_of(
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#
            ),
            ChunkKind::Content
        );
    }

    #[test]
    fn finish_reason_chunk_is_content() {
        assert_eq!(
            kind_of(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
            ChunkKind::Content
        );
        assert_eq!(
            kind_of(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}"#),
            ChunkKind::Content
        );
    }

    #[test]
    fn usage_only_chunk_is_empty_and_gives_its_numbers() {
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}}}"#;
        assert_eq!(kind_of(chunk), ChunkKind::Empty);
        assert_eq!(
            usage_of(chunk),
            Some(Usage {
                prompt_tokens: 13,
                completion_tokens: 5,
                total_tokens: 18
            })
        );
        // Missing total: the sum.
        assert_eq!(
            usage_of(r#"{"usage":{"prompt_tokens":2,"completion_tokens":3}}"#),
            Some(Usage {
                prompt_tokens: 2,
                completion_tokens: 3,
                total_tokens: 5
            })
        );
    }

    #[test]
    fn null_usage_gives_none() {
        assert_eq!(
            usage_of(r#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#),
            None
        );
        assert_eq!(usage_of(r#"{"usage" : null}"#), None);
        assert_eq!(usage_of(r#"{"choices":[]}"#), None);
        assert_eq!(usage_of(r#"{"note":"usage","usage":"n/a"}"#), None);
        assert_eq!(usage_of(r#"[DONE]"#), None);
        // A quoted "usage" value does not hide a real key after it.
        assert_eq!(
            usage_of(r#"{"k":"usage","usage":{"total_tokens":1}}"#),
            Some(Usage {
                prompt_tokens: 0,
                completion_tokens: 0,
                total_tokens: 1
            })
        );
        let mut scanner = SseScanner::new();
        let mut usage = Some(Usage::default());
        scanner
            .feed(&Bytes::from_static(b": usage\n\n"), |e| {
                usage = usage_of_event(&e)
            })
            .unwrap();
        assert_eq!(usage, None, "no data, no usage");
    }

    #[test]
    fn legacy_completions_chunk_with_text_is_content() {
        assert_eq!(
            kind_of(
                r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":"Hello","index":0,"logprobs":null,"finish_reason":null}]}"#
            ),
            ChunkKind::Content
        );
        assert_eq!(
            kind_of(
                r#"{"object":"text_completion","choices":[{"text":"","index":0,"logprobs":null,"finish_reason":null}]}"#
            ),
            ChunkKind::Empty
        );
    }

    #[test]
    fn responses_api_events_classify_by_type() {
        let cases = [
            (
                r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","usage":null}}"#,
                ChunkKind::Empty,
            ),
            (
                r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1"}}"#,
                ChunkKind::Empty,
            ),
            (
                r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"type":"message"}}"#,
                ChunkKind::Content,
            ),
            (
                r#"{"type":"response.content_part.added","sequence_number":3}"#,
                ChunkKind::Empty,
            ),
            (
                r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"delta":"Hi"}"#,
                ChunkKind::Content,
            ),
            (
                r#"{"type":"response.function_call_arguments.delta","delta":"{"}"#,
                ChunkKind::Content,
            ),
            (
                r#"{"type":"response.refusal.delta","delta":"no"}"#,
                ChunkKind::Content,
            ),
            (
                r#"{"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":7,"output_tokens":3,"total_tokens":10}}}"#,
                ChunkKind::Content,
            ),
            (
                r#"{"type":"response.failed","response":{"error":{"code":"server_error"}}}"#,
                ChunkKind::Error,
            ),
            (
                r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null,"sequence_number":5}"#,
                ChunkKind::Error,
            ),
        ];
        for (data, kind) in &cases {
            assert_eq!(kind_of(data), *kind, "{data}");
        }
        let stream = concat!(
            "event: response.output_text.delta\n",
            r#"data: {"delta":"Hi"}"#,
            "\n\n",
        );
        assert_eq!(
            kinds(stream),
            [ChunkKind::Content],
            "the event name stands in for a missing type"
        );
        assert_eq!(
            usage_of(cases[7].0),
            Some(Usage {
                prompt_tokens: 7,
                completion_tokens: 3,
                total_tokens: 10
            })
        );
        assert_eq!(usage_of(cases[0].0), None);
    }

    #[test]
    fn data_that_is_not_a_json_object_is_other_or_empty() {
        assert_eq!(kind_of("hello"), ChunkKind::Other);
        assert_eq!(
            kind_of(r#"{"choices":[{"delta":{"content":"x"}}]"#),
            ChunkKind::Other
        );
        assert_eq!(kinds("data:\n\n"), [ChunkKind::Other]);
        assert_eq!(kind_of(r#"[{"error":"x"}]"#), ChunkKind::Empty);
        assert_eq!(kind_of("42"), ChunkKind::Empty);
        // Odd types inside are tolerated, not fatal.
        assert_eq!(
            kind_of(r#"{"choices":[7,{"delta":[1]},{"delta":{"content":5}}]}"#),
            ChunkKind::Content
        );
        assert_eq!(kind_of(r#"{"choices":{"0":1},"type":3}"#), ChunkKind::Empty);
        // Multi-line data is joined before parsing.
        assert_eq!(
            kinds("data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\n"),
            [ChunkKind::Content]
        );
    }

    #[test]
    fn usage_of_body_reads_chat_completion_and_responses_bodies() {
        let chat = br#"{
          "id": "chatcmpl-abc", "object": "chat.completion", "created": 1726012687,
          "model": "gpt-4o-mini-2024-07-18",
          "choices": [{"index": 0, "message": {"role":"assistant","content":"Hi! usage","refusal":null},
                       "logprobs": null, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0}},
          "system_fingerprint": "fp_1"
        }"#;
        assert_eq!(
            usage_of_body(chat),
            Some(Usage {
                prompt_tokens: 13,
                completion_tokens: 5,
                total_tokens: 18
            })
        );
        let responses = br#"{"id":"resp_1","object":"response","created_at":1,"status":"completed",
          "output":[{"type":"message","content":[{"type":"output_text","text":"hi","annotations":[]}]}],
          "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,
                   "output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}"#;
        assert_eq!(
            usage_of_body(responses),
            Some(Usage {
                prompt_tokens: 36,
                completion_tokens: 87,
                total_tokens: 123
            })
        );
        let nested = br#"{"type":"response.completed","response":{"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}}"#;
        assert_eq!(
            usage_of_body(nested),
            Some(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3
            })
        );
        let embeddings = br#"{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(
            usage_of_body(embeddings),
            Some(Usage {
                prompt_tokens: 8,
                completion_tokens: 0,
                total_tokens: 8
            })
        );
        assert_eq!(usage_of_body(br#"{"usage":null}"#), None);
        assert_eq!(
            usage_of_body(br#"{"usage":{"prompt_tokens":-1,"total_tokens":2.0}}"#),
            Some(Usage {
                prompt_tokens: 0,
                completion_tokens: 0,
                total_tokens: 2
            })
        );
        assert_eq!(usage_of_body(b"not json \"usage\": 1"), None);
        assert_eq!(usage_of_body(b""), None);
    }

    // --- properties -----------------------------------------------------------------

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            // Never write regression files into the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// One generated event: optional comment, optional name, data lines (each
    /// with or without the space after the colon).
    #[derive(Debug, Clone)]
    struct GenEvent {
        comment: Option<String>,
        name: Option<String>,
        data: Vec<(bool, String)>,
    }

    fn arb_payload() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~é😀]{0,40}",
            prop::sample::select(vec![
                String::from("[DONE]"),
                String::from(
                    r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#
                ),
                String::from(r#"{"error":{"message":"boom","code":500}}"#),
                String::from(
                    r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
                ),
                String::from(" leading space"),
                String::from(":colon"),
                String::new(),
            ]),
        ]
    }

    fn arb_event() -> impl Strategy<Value = GenEvent> {
        (
            proptest::option::of("[ -~]{0,12}"),
            proptest::option::of(prop_oneof!["[a-z_.]{1,16}", Just(String::from("error"))]),
            proptest::collection::vec((any::<bool>(), arb_payload()), 0..4),
        )
            .prop_map(|(comment, name, data)| GenEvent {
                comment,
                name,
                data,
            })
    }

    fn serialize(events: &[GenEvent], eol: &str) -> String {
        let mut out = String::new();
        for e in events {
            if let Some(c) = &e.comment {
                out += &format!(":{c}{eol}");
            }
            if let Some(n) = &e.name {
                out += &format!("event: {n}{eol}");
            }
            for (space, p) in &e.data {
                out += &format!("data:{}{p}{eol}", if *space { " " } else { "" });
            }
            out += eol;
        }
        out
    }

    /// What WHATWG says each generated event is: (name, data, has_data).
    fn expected(events: &[GenEvent]) -> Vec<(Option<String>, String, bool)> {
        events
            .iter()
            .map(|e| {
                let values: Vec<&str> = e
                    .data
                    .iter()
                    .map(|(space, p)| {
                        if *space {
                            p.as_str()
                        } else {
                            p.strip_prefix(' ').unwrap_or(p)
                        }
                    })
                    .collect();
                (e.name.clone(), values.join("\n"), !e.data.is_empty())
            })
            .collect()
    }

    /// Cuts `bytes` at the given points (duplicates give empty chunks).
    fn split(bytes: &Bytes, cuts: &[prop::sample::Index]) -> Vec<Bytes> {
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for p in points {
            chunks.push(bytes.slice(from..p));
            from = p;
        }
        chunks.push(bytes.slice(from..));
        chunks
    }

    /// Bytes that are mostly SSE syntax, so random input makes real events.
    fn arb_sse_bytes() -> impl Strategy<Value = Vec<u8>> {
        let alphabet =
            prop::sample::select(b"\r\n\r\n:: data:event{}\"[DONE]\xEF\xBB\xBFx\x00\xff".to_vec());
        proptest::collection::vec(prop_oneof![3 => alphabet, 1 => any::<u8>()], 0..400)
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_chunking_yields_the_same_events_as_one_chunk(
            events in proptest::collection::vec(arb_event(), 0..8),
            eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let stream = Bytes::from(serialize(&events, eol));
            let (whole, whole_pending, whole_discarded) = scan_chunks(std::slice::from_ref(&stream));
            let (pieces, _, pieces_discarded) = scan_chunks(&split(&stream, &cuts));
            prop_assert_eq!(&pieces, &whole);
            prop_assert_eq!((whole_discarded, pieces_discarded), (0, 0));

            // The events are the ones generated, by the WHATWG rules.
            let got: Vec<(Option<String>, String, bool)> = whole
                .iter()
                .map(|e| (e.event.clone().filter(|n| !n.is_empty()), e.data_str().to_owned(), e.has_data))
                .collect();
            prop_assert_eq!(got, expected(&events));

            // Together the raw slices are the stream, byte for byte.
            let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
            prop_assert_eq!(&raw[..], &stream[..]);
            // Only a bare-CR stream leaves its last event waiting for `finish`.
            if eol != "\r" || events.is_empty() {
                prop_assert_eq!(whole_pending, 0);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_never_depend_on_chunking(
            bytes in arb_sse_bytes(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let stream = Bytes::from(bytes);
            let (whole, _, discarded) = scan_chunks(std::slice::from_ref(&stream));
            let (pieces, _, pieces_discarded) = scan_chunks(&split(&stream, &cuts));
            prop_assert_eq!(&pieces, &whole);
            prop_assert_eq!(pieces_discarded, discarded);
            // Every byte is in some event's raw, or discarded at the end.
            let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
            prop_assert_eq!(raw.len() + discarded, stream.len());
            prop_assert_eq!(&raw[..], &stream[..raw.len()]);

            let mut scanner = SseScanner::new();
            scanner.feed(&stream, |e| {
                let _ = classify(&e);
                let _ = usage_of_event(&e);
            }).unwrap();
            let _ = usage_of_body(&stream);
        }
    }

    /// The reference: parse the whole body with serde (the way usage was
    /// read before the structural scan).
    fn usage_by_serde(json: &[u8]) -> Option<Usage> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Carrier {
            usage: Obj<WireUsage>,
            response: Obj<ResponseCarrier>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct ResponseCarrier {
            usage: Obj<WireUsage>,
        }
        let carrier = serde_json::from_slice::<Obj<Carrier>>(json).ok()?.0?;
        carrier
            .usage
            .0
            .or_else(|| carrier.response.0.and_then(|r| r.usage.0))
            .map(WireUsage::into_usage)
    }

    fn json_member() -> impl Strategy<Value = String> {
        let text = || proptest::string::string_regex(r#"[a-z {}\[\]:,"\\]{0,12}"#).unwrap();
        prop_oneof![
            text().prop_map(|t| format!("\"note\":{}", serde_json::Value::String(t))),
            text().prop_map(|t| format!("{}:1", serde_json::Value::String(t))),
            Just("\"choices\":[{\"usage\":{\"prompt_tokens\":99}}]".to_owned()),
            Just("\"meta\":{\"usage\":{\"completion_tokens\":98},\"x\":[1,{}]}".to_owned()),
            Just("\"text\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":97}\"".to_owned()),
            (0u64..50, 0u64..50).prop_map(|(p, c)| format!(
                "\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{c},\"details\":{{\"a\":[1]}}}}"
            )),
            Just("\"usage\":null".to_owned()),
            (0u64..50).prop_map(|o| format!(
                "\"response\":{{\"id\":\"r\",\"usage\":{{\"input_tokens\":3,\"output_tokens\":{o}}}}}"
            )),
        ]
    }

    proptest! {
        /// The structural scan finds the same usage as parsing the whole
        /// body, whatever surrounds it: nested `usage` keys, escaped quotes
        /// and braces in strings, null usage, Responses-API nesting.
        #[test]
        fn usage_scan_agrees_with_a_full_parse(
            members in proptest::collection::vec(json_member(), 0..6),
            ws in proptest::sample::select(vec!["", " ", "\n  "]),
        ) {
            let mut seen = std::collections::HashSet::new();
            // Duplicate keys are an error for the reference; keep one each.
            let members: Vec<String> = members
                .into_iter()
                .filter(|m| seen.insert(m.split(':').next().unwrap_or_default().to_owned()))
                .collect();
            let body = format!("{ws}{{{ws}{}{ws}}}", members.join(&format!(",{ws}")));
            prop_assert_eq!(usage_of_body(body.as_bytes()), usage_by_serde(body.as_bytes()), "{}", body);
        }
    }
}
