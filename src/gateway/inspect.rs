//! Request-body inspection: the one place that looks inside a client's JSON body.
//!
//! This module owns two jobs:
//!
//! 1. [`inspect`] scans a fully buffered request body once, checks that it is one
//!    well-formed JSON value (RFC 8259), and picks out what routing needs from the
//!    top-level object: the `"model"` string, the `"stream"` flag, where the
//!    `"stream_options"` value sits, and where the object closes.
//! 2. [`splice_model`] rewrites the model name surgically, as up to three
//!    zero-copy [`Bytes`] parts.
//!
//! What it must never do:
//!
//! * **Never build a DOM.** Bodies can be several MiB of chat history; turning them
//!   into a `serde_json::Value` costs an allocation per node and throws away the
//!   client's formatting. The scanner keeps only a small container stack and a few
//!   offsets, and runs in linear time with bounded (explicit, non-recursive) depth.
//! * **Never change a byte outside the model value.** Key order, whitespace, number
//!   spellings such as `0.2` or `1e3`, and fields we do not know about are the
//!   client's business and must reach the upstream exactly as sent.
//!
//! Where the request goes next: the gateway answers an [`InspectError`] with a 400,
//! otherwise routing looks up the targets configured for [`Inspected::model`], and
//! the forwarder uses [`splice_model`] to put each target's upstream model name in
//! place before sending the body on.
//!
//! Strictness compared with `serde_json` (which upstream-facing code may also use):
//! every body that `serde_json::from_slice::<serde_json::Value>` rejects is rejected
//! here too (nesting limit, out-of-range numbers, lone surrogates and invalid UTF-8
//! included). We are stricter in one place on purpose: a top-level `"model"`,
//! `"stream"` or `"stream_options"` key that appears twice is an error, because
//! which copy an upstream honours differs between JSON parsers and we must route on
//! the same value the upstream will read.

use std::ops::Range;

use bytes::Bytes;

/// What routing needs from a JSON request body, found by [`inspect`].
///
/// All offsets and ranges are byte positions in the body that was inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// Unescaped value of the top-level `"model"` string (`None` if absent).
    pub model: Option<String>,
    /// Byte range of the model value INCLUDING its quotes, in the body
    /// (`None` if there is no top-level `"model"`).
    pub model_span: Option<Range<usize>>,
    /// Top-level `"stream"`: `Some(true/false)` if it is a JSON bool, `None` if
    /// absent or `null`.
    pub stream: Option<bool>,
    /// Byte range of the whole top-level `"stream_options"` value, if present (for
    /// later edits). Its type is not checked here: normally an object, but the
    /// range is reported for any value so that an edit can replace it wholesale.
    pub stream_options_span: Option<Range<usize>>,
    /// Byte offset of the top-level object's closing `'}'` (for inserting fields
    /// later).
    pub object_end: usize,
}

/// Why a request body was refused. Every variant is the client's fault and maps
/// to HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Body is not valid JSON. `offset` is the byte offset where parsing failed;
    /// `reason` is short lowercase text such as `"expected ',' or '}'"`.
    #[error("the request body is not valid JSON: {reason} at byte {offset}")]
    Syntax {
        /// Byte offset in the body where the problem was found.
        offset: usize,
        /// Short lowercase description of the problem.
        reason: &'static str,
    },
    /// Valid JSON but the top level is not an object.
    #[error("the request body must be a JSON object")]
    NotAnObject,
    /// `"model"` is present but not a string (`found` is e.g. `"number"`,
    /// `"null"`, `"object"`).
    #[error("`model` must be a string, found {found}")]
    ModelNotString {
        /// JSON type that was found instead.
        found: &'static str,
    },
    /// `"stream"` is present but neither a bool nor `null`.
    #[error("`stream` must be a boolean, found {found}")]
    StreamNotBool {
        /// JSON type that was found instead.
        found: &'static str,
    },
    /// The same top-level key appears twice (`"model"`, `"stream"` or
    /// `"stream_options"`); JSON parsers disagree on which copy wins, so we refuse
    /// to guess.
    #[error("the request body has more than one `{key}` field")]
    DuplicateKey {
        /// The repeated key.
        key: &'static str,
    },
    /// Arrays/objects nest deeper than [`MAX_DEPTH`].
    #[error("the request body nests deeper than {max} levels")]
    TooDeep {
        /// The limit that was exceeded ([`MAX_DEPTH`]).
        max: usize,
    },
}

/// Deepest array/object nesting [`inspect`] accepts (the top-level object is
/// level 1).
///
/// Why 127: real chat-completion bodies nest fewer than 20 levels (tool-call JSON
/// schemas are the deepest part), so the limit never bites honest clients, while it
/// bounds the container stack a hostile body can make us keep. It is exactly the
/// depth `serde_json` accepts by default (its recursion limit of 128 refuses the
/// 128th level), so every body we pass can also be parsed by `serde_json`-based
/// code further along.
pub const MAX_DEPTH: usize = 127;

/// Scan `body` once: validate that it is one JSON value and pick out the fields of
/// [`Inspected`].
///
/// Validation follows RFC 8259: strings with valid escapes (including `\uXXXX`
/// surrogate pairs; a lone surrogate is refused), no raw control characters and
/// valid UTF-8 inside strings, numbers per the grammar
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` (and finite as an `f64`, as
/// `serde_json` requires), `true`/`false`/`null`, whitespace limited to space, tab,
/// CR and LF, and nothing but whitespace after the value. A leading UTF-8 BOM is
/// refused.
///
/// Only keys of the top-level object count; keys are compared after unescaping, so
/// `"mod\u0065l"` is `"model"`. Syntax and depth errors win over the
/// field-level errors ([`InspectError::ModelNotString`] and friends), which are
/// reported only once the whole body is known to be well-formed.
///
/// Linear time, no recursion, never panics.
pub fn inspect(body: &[u8]) -> Result<Inspected, InspectError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if body.starts_with(BOM) {
        // serde_json refuses it too; a BOM is not JSON whitespace.
        return Err(syntax(0, "byte-order mark is not allowed"));
    }

    let mut s = Scanner {
        bytes: body,
        pos: 0,
    };
    // One entry per open array/object. Capped at MAX_DEPTH, so at most 127 bytes.
    let mut stack: Vec<Container> = Vec::new();
    let mut state = State::Value;

    let mut top_is_object = false;
    // Key of the top-level member whose value is being scanned, and where that
    // value starts.
    let mut field = Field::Other;
    let mut member_start = 0usize;
    let mut seen = [false; 3];
    // First field-level error; held back so that a syntax error anywhere in the
    // body still takes precedence.
    let mut deferred: Option<InspectError> = None;

    let mut found = Inspected {
        model: None,
        model_span: None,
        stream: None,
        stream_options_span: None,
        object_end: 0,
    };

    loop {
        match state {
            State::Value => {
                s.skip_ws();
                if stack.as_slice() == [Container::Object] {
                    member_start = s.pos;
                }
                let Some(b) = s.peek() else {
                    return Err(syntax(s.pos, "unexpected end of input"));
                };
                match b {
                    b'{' => {
                        push(&mut stack, Container::Object)?;
                        if stack.len() == 1 {
                            top_is_object = true;
                        }
                        s.pos += 1;
                        state = State::FirstKey;
                    }
                    b'[' => {
                        push(&mut stack, Container::Array)?;
                        s.pos += 1;
                        s.skip_ws();
                        if s.peek() == Some(b']') {
                            s.pos += 1;
                            stack.pop();
                            state = State::AfterValue;
                        }
                        // Otherwise stay in State::Value for the first element.
                    }
                    b'"' => {
                        s.scan_string()?;
                        state = State::AfterValue;
                    }
                    b't' => {
                        s.literal(b"true")?;
                        state = State::AfterValue;
                    }
                    b'f' => {
                        s.literal(b"false")?;
                        state = State::AfterValue;
                    }
                    b'n' => {
                        s.literal(b"null")?;
                        state = State::AfterValue;
                    }
                    b'-' | b'0'..=b'9' => {
                        s.scan_number()?;
                        state = State::AfterValue;
                    }
                    _ => return Err(syntax(s.pos, "expected a value")),
                }
            }

            State::AfterValue => {
                if stack.as_slice() == [Container::Object] {
                    // A value directly inside the top-level object just ended.
                    let span = member_start..s.pos;
                    if let Err(e) = record_member(body, field, span, &mut found) {
                        deferred.get_or_insert(e);
                    }
                }
                s.skip_ws();
                match stack.last() {
                    None => {
                        if s.pos != body.len() {
                            return Err(syntax(s.pos, "trailing characters after the value"));
                        }
                        break;
                    }
                    Some(Container::Object) => match s.bump() {
                        Some(b',') => state = State::NextKey,
                        Some(b'}') => {
                            stack.pop();
                            if stack.is_empty() {
                                found.object_end = s.pos - 1;
                            }
                        }
                        Some(_) => return Err(syntax(s.pos - 1, "expected ',' or '}'")),
                        None => return Err(syntax(s.pos, "unexpected end of input")),
                    },
                    Some(Container::Array) => match s.bump() {
                        Some(b',') => {
                            s.skip_ws();
                            if s.peek() == Some(b']') {
                                return Err(syntax(s.pos, "trailing comma"));
                            }
                            state = State::Value;
                        }
                        Some(b']') => {
                            stack.pop();
                        }
                        Some(_) => return Err(syntax(s.pos - 1, "expected ',' or ']'")),
                        None => return Err(syntax(s.pos, "unexpected end of input")),
                    },
                }
            }

            State::FirstKey | State::NextKey => {
                s.skip_ws();
                match s.peek() {
                    Some(b'"') => {
                        let start = s.pos;
                        let escaped = s.scan_string()?;
                        if stack.len() == 1 {
                            // Quotes excluded; the scan guarantees both are there.
                            let raw = &body[start + 1..s.pos - 1];
                            field = classify_key(raw, escaped, start + 1)?;
                            if let Some(i) = field.index() {
                                if seen[i] {
                                    deferred.get_or_insert(InspectError::DuplicateKey {
                                        key: field.name(),
                                    });
                                }
                                seen[i] = true;
                            }
                        }
                        s.skip_ws();
                        match s.bump() {
                            Some(b':') => state = State::Value,
                            Some(_) => return Err(syntax(s.pos - 1, "expected ':'")),
                            None => return Err(syntax(s.pos, "unexpected end of input")),
                        }
                    }
                    Some(b'}') if state == State::FirstKey => {
                        s.pos += 1;
                        stack.pop();
                        if stack.is_empty() {
                            found.object_end = s.pos - 1;
                        }
                        state = State::AfterValue;
                    }
                    Some(b'}') => return Err(syntax(s.pos, "trailing comma")),
                    Some(_) => return Err(syntax(s.pos, "expected a string key")),
                    None => return Err(syntax(s.pos, "unexpected end of input")),
                }
            }
        }
    }

    if !top_is_object {
        return Err(InspectError::NotAnObject);
    }
    match deferred {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// Return the body with the model value (`inspected.model_span`) replaced by
/// `new_model` encoded as a JSON string, escaped the way `serde_json` does it.
///
/// Zero-copy: the result is the untouched prefix and suffix of `body` (shared, not
/// copied) around a freshly encoded value. When there is no model span, or the
/// encoded value is byte-for-byte what is already there, the result is the single
/// original `body`. `inspected` must come from `inspect(body)`; a span that does
/// not fit `body` is a caller bug and also yields the body unchanged rather than a
/// panic.
pub fn splice_model(body: &Bytes, inspected: &Inspected, new_model: &str) -> Spliced {
    let unchanged = || Spliced {
        parts: vec![body.clone()],
    };
    let Some(span) = inspected.model_span.clone() else {
        return unchanged();
    };
    if span.start > span.end || span.end > body.len() {
        return unchanged();
    }
    let encoded = encode_json_string(new_model);
    if body[span.clone()] == encoded[..] {
        return unchanged();
    }
    let mut parts = Vec::with_capacity(3);
    if span.start > 0 {
        parts.push(body.slice(..span.start));
    }
    parts.push(Bytes::from(encoded));
    if span.end < body.len() {
        parts.push(body.slice(span.end..));
    }
    Spliced { parts }
}

/// The parts of a rewritten body; concatenated in order they are the new body.
///
/// There are one to three parts: the original body alone, or prefix / new model
/// value / suffix (an empty prefix or suffix is left out). Hand them to the HTTP
/// body as a stream of chunks to avoid copying a large body.
#[derive(Debug, Clone)]
pub struct Spliced {
    /// The chunks of the new body, in order.
    pub parts: Vec<Bytes>,
}

impl Spliced {
    /// Total length in bytes of the new body (use it for `Content-Length`).
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Whether the new body is empty (never true for a body [`inspect`] accepted).
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Bytes::is_empty)
    }

    /// The new body as one buffer. Free for a single part; otherwise it copies, so
    /// prefer streaming [`Spliced::parts`] for large bodies.
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [] => Bytes::new(),
            [only] => only.clone(),
            parts => {
                let mut out = Vec::with_capacity(self.len());
                for p in parts {
                    out.extend_from_slice(p);
                }
                Bytes::from(out)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Scanner internals
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

/// Where the scanner is in the grammar. An explicit state plus the container stack
/// replaces recursion, so hostile nesting cannot overflow the thread's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value must start here.
    Value,
    /// A value just ended; expect a separator, a closing bracket or the end.
    AfterValue,
    /// Just after `{`: a key or `}`.
    FirstKey,
    /// Just after a `,` in an object: a key (a `}` would be a trailing comma).
    NextKey,
}

/// Top-level keys routing cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Model,
    Stream,
    StreamOptions,
    Other,
}

impl Field {
    fn index(self) -> Option<usize> {
        match self {
            Field::Model => Some(0),
            Field::Stream => Some(1),
            Field::StreamOptions => Some(2),
            Field::Other => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Model => "model",
            Field::Stream => "stream",
            Field::StreamOptions => "stream_options",
            Field::Other => "",
        }
    }

    fn from_key(key: &[u8]) -> Field {
        match key {
            b"model" => Field::Model,
            b"stream" => Field::Stream,
            b"stream_options" => Field::StreamOptions,
            _ => Field::Other,
        }
    }
}

fn syntax(offset: usize, reason: &'static str) -> InspectError {
    InspectError::Syntax { offset, reason }
}

fn push(stack: &mut Vec<Container>, c: Container) -> Result<(), InspectError> {
    if stack.len() >= MAX_DEPTH {
        return Err(InspectError::TooDeep { max: MAX_DEPTH });
    }
    stack.push(c);
    Ok(())
}

/// Identify a top-level key. `raw` is the key without quotes, already validated;
/// `at` is its offset in the body (for error positions).
fn classify_key(raw: &[u8], escaped: bool, at: usize) -> Result<Field, InspectError> {
    if !escaped {
        return Ok(Field::from_key(raw));
    }
    // Each escape spells at most one byte of an ASCII key in six raw bytes, so a
    // longer key cannot be one of ours; skip decoding attacker-sized keys.
    if raw.len() > 6 * "stream_options".len() {
        return Ok(Field::Other);
    }
    Ok(Field::from_key(unescape(raw, at)?.as_bytes()))
}

/// Store what a finished top-level member value means for routing.
fn record_member(
    body: &[u8],
    field: Field,
    span: Range<usize>,
    found: &mut Inspected,
) -> Result<(), InspectError> {
    let first = body.get(span.start).copied().unwrap_or(b'?');
    match field {
        Field::Model => {
            if first != b'"' {
                return Err(InspectError::ModelNotString {
                    found: type_name(first),
                });
            }
            // The value is a complete string, so it has both quotes.
            let raw = body.get(span.start + 1..span.end - 1).unwrap_or_default();
            found.model = Some(unescape(raw, span.start + 1)?);
            found.model_span = Some(span);
        }
        Field::Stream => match first {
            b't' => found.stream = Some(true),
            b'f' => found.stream = Some(false),
            b'n' => found.stream = None,
            _ => {
                return Err(InspectError::StreamNotBool {
                    found: type_name(first),
                })
            }
        },
        Field::StreamOptions => found.stream_options_span = Some(span),
        Field::Other => {}
    }
    Ok(())
}

/// JSON type name of a value from its first byte.
fn type_name(first: u8) -> &'static str {
    match first {
        b'"' => "string",
        b'{' => "object",
        b'[' => "array",
        b't' | b'f' => "boolean",
        b'n' => "null",
        _ => "number",
    }
}

/// Decode the contents of an already-validated JSON string (without its quotes).
/// `at` is the offset of `raw` in the body, for error positions.
fn unescape(raw: &[u8], at: usize) -> Result<String, InspectError> {
    // Fast path: no escapes means the text is the value (still checked as UTF-8
    // rather than trusted, so no `unsafe` is needed).
    if !raw.contains(&b'\\') {
        return match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(syntax(at + e.valid_up_to(), "invalid utf-8 in string")),
        };
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let (c, next) = parse_escape(raw, i).map_err(|(off, why)| syntax(at + off, why))?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            i = next;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| syntax(at, "invalid utf-8 in string"))
}

/// Parse one escape sequence starting at the backslash `bytes[at]`. Returns the
/// character and the index just after the sequence, or `(offset, reason)`.
/// Shared by the validating scan and [`unescape`] so both agree exactly.
fn parse_escape(bytes: &[u8], at: usize) -> Result<(char, usize), (usize, &'static str)> {
    let Some(&kind) = bytes.get(at + 1) else {
        return Err((at + 1, "unterminated string"));
    };
    let simple = match kind {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{08}',
        b'f' => '\u{0C}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return parse_unicode_escape(bytes, at),
        _ => return Err((at + 1, "invalid escape")),
    };
    Ok((simple, at + 2))
}

/// `\uXXXX`, or a `\uD8xx\uDCxx` surrogate pair, starting at the backslash.
fn parse_unicode_escape(bytes: &[u8], at: usize) -> Result<(char, usize), (usize, &'static str)> {
    let hi = hex4(bytes, at + 2)?;
    match hi {
        0xD800..=0xDBFF => {
            // A high surrogate must be followed at once by an escaped low one.
            if bytes.get(at + 6) != Some(&b'\\') || bytes.get(at + 7) != Some(&b'u') {
                return Err((at, "lone surrogate in \\u escape"));
            }
            let lo = hex4(bytes, at + 8)?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err((at, "lone surrogate in \\u escape"));
            }
            let cp = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
            match char::from_u32(cp) {
                Some(c) => Ok((c, at + 12)),
                None => Err((at, "lone surrogate in \\u escape")),
            }
        }
        0xDC00..=0xDFFF => Err((at, "lone surrogate in \\u escape")),
        _ => match char::from_u32(u32::from(hi)) {
            Some(c) => Ok((c, at + 6)),
            None => Err((at, "invalid \\u escape")),
        },
    }
}

fn hex4(bytes: &[u8], at: usize) -> Result<u16, (usize, &'static str)> {
    let Some(digits) = bytes.get(at..at + 4) else {
        return Err((at, "invalid \\u escape"));
    };
    let mut v: u16 = 0;
    for (i, &d) in digits.iter().enumerate() {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err((at + i, "invalid \\u escape")),
        };
        v = (v << 4) | u16::from(n);
    }
    Ok(v)
}

/// Encode `s` as a JSON string literal with quotes, escaping exactly what
/// `serde_json` escapes (`"`, `\`, and control characters below 0x20) in the same
/// spelling, so a rewritten body looks like one serde_json would have produced.
fn encode_json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// Appends `s` to `out` as [`encode_json_string`] spells it (the access
/// log's JSON lines use it too).
pub(crate) fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x00..=0x1F => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Cursor over the body. Every access is bounds-checked through `get`, so no input
/// can make it panic.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// JSON whitespace is exactly these four bytes (not form feed, not a BOM).
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), InspectError> {
        match self.bytes.get(self.pos..self.pos + word.len()) {
            Some(got) if got == word => {
                self.pos += word.len();
                Ok(())
            }
            _ => Err(syntax(self.pos, "invalid literal")),
        }
    }

    /// Validate a string starting at its opening quote; leaves `pos` after the
    /// closing quote. Returns whether it contains escapes.
    fn scan_string(&mut self) -> Result<bool, InspectError> {
        let content_start = self.pos + 1;
        self.pos = content_start;
        let mut escaped = false;
        let mut non_ascii = false;
        loop {
            let Some(b) = self.peek() else {
                return Err(syntax(self.pos, "unterminated string"));
            };
            match b {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    let (_, next) = parse_escape(self.bytes, self.pos)
                        .map_err(|(off, why)| syntax(off, why))?;
                    self.pos = next;
                }
                0x00..=0x1F => return Err(syntax(self.pos, "control character in string")),
                0x80..=0xFF => {
                    non_ascii = true;
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
        if non_ascii {
            // Escapes are ASCII, so validating the raw content validates the text.
            let content = self.bytes.get(content_start..self.pos).unwrap_or_default();
            if let Err(e) = std::str::from_utf8(content) {
                return Err(syntax(
                    content_start + e.valid_up_to(),
                    "invalid utf-8 in string",
                ));
            }
        }
        self.pos += 1; // closing quote
        Ok(escaped)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, and finite as an f64.
    fn scan_number(&mut self) -> Result<(), InspectError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_digits = match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(syntax(self.pos, "leading zero in number"));
                }
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            None => return Err(syntax(self.pos, "unexpected end of input")),
            Some(_) => return Err(syntax(self.pos, "invalid number")),
        };
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(syntax(self.pos, "expected a digit after '.'"));
            }
        }
        let mut has_exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            has_exponent = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(syntax(self.pos, "expected a digit in exponent"));
            }
        }
        // serde_json refuses numbers that overflow an f64 ("number out of range"),
        // and its (fast, slightly inexact) float parser decides the boundary a hair
        // differently from std's correctly rounded one. Only an exponent or a very
        // long integer part can get near f64::MAX, so in just those cases we ask
        // serde_json itself about this one number token (not the body): that keeps
        // our accept set inside serde_json's, while `0.2` or `1024` cost nothing.
        if has_exponent || int_digits > 300 {
            let token = self.bytes.get(start..self.pos).unwrap_or_default();
            if serde_json::from_slice::<serde_json::Number>(token).is_err() {
                return Err(syntax(start, "number out of range"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    fn ok(body: &str) -> Inspected {
        match inspect(body.as_bytes()) {
            Ok(i) => i,
            Err(e) => panic!("expected {body:?} to inspect, got {e}"),
        }
    }

    fn err(body: &[u8]) -> InspectError {
        match inspect(body) {
            Ok(i) => panic!(
                "expected {:?} to fail, got {i:?}",
                String::from_utf8_lossy(body)
            ),
            Err(e) => e,
        }
    }

    fn syntax_reason(body: &[u8]) -> &'static str {
        match err(body) {
            InspectError::Syntax { reason, .. } => reason,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    // --- field extraction -------------------------------------------------

    #[test]
    fn a_typical_chat_body_yields_model_stream_and_spans() {
        let body = r#"{
  "model": "gpt-4o-mini",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi \"there\""}
  ],
  "temperature": 0.2,
  "stream": true,
  "stream_options": {"include_usage": true}
}
"#;
        let i = ok(body);
        assert_eq!(i.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(&body[i.model_span.clone().unwrap()], "\"gpt-4o-mini\"");
        assert_eq!(i.stream, Some(true));
        assert_eq!(
            &body[i.stream_options_span.clone().unwrap()],
            r#"{"include_usage": true}"#
        );
        assert_eq!(i.object_end, body.rfind('}').unwrap());
    }

    #[test]
    fn a_body_without_model_has_no_model_and_no_span() {
        let i = ok(r#"{"messages": [], "stream": false}"#);
        assert_eq!(i.model, None);
        assert_eq!(i.model_span, None);
        assert_eq!(i.stream_options_span, None);
    }

    #[test]
    fn stream_true_false_null_and_absent_are_read_as_such() {
        assert_eq!(ok(r#"{"stream":true}"#).stream, Some(true));
        assert_eq!(ok(r#"{"stream":false}"#).stream, Some(false));
        assert_eq!(ok(r#"{"stream":null}"#).stream, None);
        assert_eq!(ok(r#"{"model":"m"}"#).stream, None);
    }

    #[test]
    fn the_empty_object_is_accepted_with_its_closing_brace_found() {
        let i = ok(" { } \n");
        assert_eq!(i.model, None);
        assert_eq!(i.object_end, 3);
    }

    #[test]
    fn model_and_stream_nested_below_the_top_level_are_ignored() {
        let body = r#"{"messages":[{"model":"x","stream":"no"}],"meta":{"model":7},"model":"top"}"#;
        let i = ok(body);
        assert_eq!(i.model.as_deref(), Some("top"));
        assert_eq!(i.stream, None);
        let only_nested = ok(r#"{"a":{"model":"x"},"b":[{"stream":true}]}"#);
        assert_eq!(only_nested.model, None);
        assert_eq!(only_nested.stream, None);
    }

    #[test]
    fn a_model_inside_a_top_level_array_is_not_a_model() {
        assert_eq!(err(br#"[{"model":"x"}]"#), InspectError::NotAnObject);
    }

    #[test]
    fn an_escaped_model_value_is_unescaped_and_its_span_keeps_the_escapes() {
        let body = r#"{"model":"a\"b\\c\/d\n\u00e9\ud83d\ude00\u0041"}"#;
        let i = ok(body);
        assert_eq!(i.model.as_deref(), Some("a\"b\\c/d\né😀A"));
        assert_eq!(
            &body[i.model_span.unwrap()],
            r#""a\"b\\c\/d\n\u00e9\ud83d\ude00\u0041""#
        );
    }

    #[test]
    fn a_model_with_raw_unicode_is_returned_as_is() {
        assert_eq!(ok(r#"{"model":"模型-ü"}"#).model.as_deref(), Some("模型-ü"));
    }

    #[test]
    fn an_escaped_key_spelling_model_counts_as_model() {
        let i = ok(r#"{"mod\u0065l":"m","str\u0065am":true,"\u0073tream_options":{}}"#);
        assert_eq!(i.model.as_deref(), Some("m"));
        assert_eq!(i.stream, Some(true));
        assert!(i.stream_options_span.is_some());
        // An escaped and a plain spelling of the same key are one key twice.
        assert_eq!(
            err(br#"{"model":"a","mod\u0065l":"b"}"#),
            InspectError::DuplicateKey { key: "model" }
        );
    }

    #[test]
    fn keys_that_only_resemble_model_are_other_fields() {
        let i = ok(r#"{"Model":1,"models":2,"model ":3,"stream_option":4}"#);
        assert_eq!(i.model, None);
        assert_eq!(i.stream, None);
        assert_eq!(i.stream_options_span, None);
    }

    #[test]
    fn stream_options_span_covers_any_value_type() {
        let body = r#"{"stream_options" : null }"#;
        let i = ok(body);
        assert_eq!(&body[i.stream_options_span.unwrap()], "null");
    }

    // --- errors -----------------------------------------------------------

    #[test]
    fn an_empty_body_is_a_syntax_error() {
        assert_eq!(
            err(b""),
            InspectError::Syntax {
                offset: 0,
                reason: "unexpected end of input"
            }
        );
    }

    #[test]
    fn a_whitespace_only_body_is_a_syntax_error() {
        assert_eq!(
            err(b" \r\n\t "),
            InspectError::Syntax {
                offset: 5,
                reason: "unexpected end of input"
            }
        );
    }

    #[test]
    fn trailing_garbage_after_the_object_is_a_syntax_error() {
        assert_eq!(
            err(br#"{"model":"m"} x"#),
            InspectError::Syntax {
                offset: 14,
                reason: "trailing characters after the value"
            }
        );
        assert_eq!(
            syntax_reason(b"{}{}"),
            "trailing characters after the value"
        );
        // Trailing whitespace is fine.
        ok("{} \n\r\t");
    }

    #[test]
    fn a_leading_byte_order_mark_is_refused() {
        assert_eq!(
            syntax_reason(b"\xEF\xBB\xBF{}"),
            "byte-order mark is not allowed"
        );
    }

    #[test]
    fn structural_mistakes_are_syntax_errors_with_a_useful_reason() {
        assert_eq!(syntax_reason(br#"{"a":1 "b":2}"#), "expected ',' or '}'");
        assert_eq!(syntax_reason(br#"{"a":[1 2]}"#), "expected ',' or ']'");
        assert_eq!(syntax_reason(br#"{"a" 1}"#), "expected ':'");
        assert_eq!(syntax_reason(br#"{a:1}"#), "expected a string key");
        assert_eq!(syntax_reason(br#"{"a":1,}"#), "trailing comma");
        assert_eq!(syntax_reason(br#"{"a":[1,]}"#), "trailing comma");
        assert_eq!(syntax_reason(br#"{"a":}"#), "expected a value");
        assert_eq!(syntax_reason(br#"{"a":tru}"#), "invalid literal");
        assert_eq!(syntax_reason(br#"{"a":1"#), "unexpected end of input");
        assert_eq!(syntax_reason(br#"{"a":"b"#), "unterminated string");
        assert_eq!(syntax_reason(b"{\"a\":\x0c1}"), "expected a value");
    }

    #[test]
    fn the_top_level_must_be_an_object() {
        for body in ["[]", "[1,2]", "\"model\"", "12", "true", "null"] {
            assert_eq!(err(body.as_bytes()), InspectError::NotAnObject, "{body}");
        }
        // ...but a malformed non-object is reported as malformed.
        assert_eq!(syntax_reason(b"[1,"), "unexpected end of input");
    }

    #[test]
    fn a_model_that_is_not_a_string_is_refused_with_its_type() {
        for (value, found) in [
            ("1", "number"),
            ("-0.5e3", "number"),
            ("null", "null"),
            ("true", "boolean"),
            ("{}", "object"),
            ("[\"m\"]", "array"),
        ] {
            let body = format!(r#"{{"model": {value}}}"#);
            assert_eq!(
                err(body.as_bytes()),
                InspectError::ModelNotString { found },
                "{body}"
            );
        }
    }

    #[test]
    fn a_stream_that_is_not_a_bool_is_refused_with_its_type() {
        for (value, found) in [
            ("\"true\"", "string"),
            ("1", "number"),
            ("{}", "object"),
            ("[]", "array"),
        ] {
            let body = format!(r#"{{"stream": {value}}}"#);
            assert_eq!(
                err(body.as_bytes()),
                InspectError::StreamNotBool { found },
                "{body}"
            );
        }
    }

    #[test]
    fn a_repeated_model_stream_or_stream_options_key_is_refused() {
        assert_eq!(
            err(br#"{"model":"a","model":"b"}"#),
            InspectError::DuplicateKey { key: "model" }
        );
        assert_eq!(
            err(br#"{"stream":true,"x":1,"stream":false}"#),
            InspectError::DuplicateKey { key: "stream" }
        );
        assert_eq!(
            err(br#"{"stream_options":{},"stream_options":{}}"#),
            InspectError::DuplicateKey {
                key: "stream_options"
            }
        );
        // Other keys may repeat: they are not ours to judge.
        ok(r#"{"x":1,"x":2}"#);
    }

    #[test]
    fn a_syntax_error_wins_over_a_field_error_found_earlier() {
        assert_eq!(syntax_reason(br#"{"model":1,"x":}"#), "expected a value");
        assert_eq!(
            syntax_reason(br#"{"model":"a","model":"b""#),
            "unexpected end of input"
        );
    }

    #[test]
    fn nesting_up_to_max_depth_is_accepted() {
        let inner = MAX_DEPTH - 1; // the top-level object is one level
        let body = format!(r#"{{"a":{}{}}}"#, "[".repeat(inner), "]".repeat(inner));
        ok(&body);
        assert!(serde_json::from_str::<Value>(&body).is_ok());
    }

    #[test]
    fn nesting_beyond_max_depth_is_too_deep() {
        let inner = MAX_DEPTH;
        let body = format!(r#"{{"a":{}{}}}"#, "[".repeat(inner), "]".repeat(inner));
        assert_eq!(
            err(body.as_bytes()),
            InspectError::TooDeep { max: MAX_DEPTH }
        );
        // serde_json draws the line at the same place.
        assert!(serde_json::from_str::<Value>(&body).is_err());
        let objects = format!(
            "{}{}",
            r#"{"a":"#.repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            err(objects.as_bytes()),
            InspectError::TooDeep { max: MAX_DEPTH }
        );
    }

    #[test]
    fn a_hundred_thousand_open_brackets_are_too_deep_not_a_stack_overflow() {
        let body = vec![b'['; 100_000];
        assert_eq!(err(&body), InspectError::TooDeep { max: MAX_DEPTH });
        let mut in_object = b"{\"model\":\"m\",\"x\":".to_vec();
        in_object.resize(in_object.len() + 100_000, b'[');
        assert_eq!(err(&in_object), InspectError::TooDeep { max: MAX_DEPTH });
    }

    #[test]
    fn bad_escapes_and_lone_surrogates_are_syntax_errors() {
        for (s, reason) in [
            (r#"\x"#, "invalid escape"),
            (r#"\'"#, "invalid escape"),
            (r#"\u12"#, "invalid \\u escape"),
            (r#"\u12G4"#, "invalid \\u escape"),
            (r#"\ud800"#, "lone surrogate in \\u escape"),
            (r#"\ud800x"#, "lone surrogate in \\u escape"),
            (r#"\ud800\u0041"#, "lone surrogate in \\u escape"),
            (r#"\udc00"#, "lone surrogate in \\u escape"),
            (r#"\ude00\ud83d"#, "lone surrogate in \\u escape"),
        ] {
            for body in [
                format!(r#"{{"model":"{s}"}}"#),
                format!(r#"{{"{s}":1}}"#),
                format!(r#"{{"x":["{s}"]}}"#),
            ] {
                assert_eq!(syntax_reason(body.as_bytes()), reason, "{body}");
                assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
            }
        }
    }

    #[test]
    fn raw_control_characters_in_strings_are_syntax_errors() {
        for c in [0u8, b'\n', b'\t', 0x1F] {
            let mut body = br#"{"x":"a"#.to_vec();
            body.push(c);
            body.extend_from_slice(br#""}"#);
            assert_eq!(
                err(&body),
                InspectError::Syntax {
                    offset: 7,
                    reason: "control character in string"
                }
            );
        }
        // DEL is not a control character in JSON.
        ok("{\"x\":\"\u{7f}\"}");
    }

    #[test]
    fn invalid_utf8_in_strings_is_a_syntax_error() {
        for bad in [
            &b"\xff"[..],
            b"\xc3",
            b"\xc3(",
            b"\xed\xa0\x80",
            b"\xf8\x88\x80\x80\x80",
        ] {
            let mut body = br#"{"model":"ab"#.to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(br#""}"#);
            assert_eq!(
                err(&body),
                InspectError::Syntax {
                    offset: 12,
                    reason: "invalid utf-8 in string"
                }
            );
        }
        // Outside strings any non-ASCII byte is simply not JSON.
        assert_eq!(
            syntax_reason("{\"a\":1,\u{e9}}".as_bytes()),
            "expected a string key"
        );
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        let valid = [
            "0",
            "-0",
            "7",
            "-12",
            "0.2",
            "10.25",
            "1e3",
            "1E+3",
            "1e-3",
            "-0.0e0",
            "2.5E-10",
            "123456789012345678901234567890",
            "0e400",
        ];
        for n in valid {
            let body = format!(r#"{{"n":{n}}}"#);
            ok(&body);
            assert!(serde_json::from_str::<Value>(&body).is_ok(), "{n}");
        }
        let invalid = [
            "01",
            "-",
            "-a",
            "+1",
            ".5",
            "1.",
            "1.e3",
            "1e",
            "1e+",
            "0x10",
            "1_000",
            "NaN",
            "Infinity",
            "--1",
            "1e400",
            "-1e309",
            "1.7976931348623158e308",
        ];
        for n in invalid {
            let body = format!(r#"{{"n":{n}}}"#);
            assert!(inspect(body.as_bytes()).is_err(), "{n} should be refused");
            assert!(serde_json::from_str::<Value>(&body).is_err(), "{n}");
        }
        assert_eq!(syntax_reason(br#"{"n":1e400}"#), "number out of range");
        assert_eq!(syntax_reason(br#"{"n":01}"#), "leading zero in number");
        let huge = format!(r#"{{"n":1{}}}"#, "0".repeat(309));
        assert_eq!(syntax_reason(huge.as_bytes()), "number out of range");
    }

    #[test]
    fn errors_read_well_when_displayed() {
        assert_eq!(
            err(b"{").to_string(),
            "the request body is not valid JSON: unexpected end of input at byte 1"
        );
        assert_eq!(
            err(br#"{"model":3}"#).to_string(),
            "`model` must be a string, found number"
        );
        assert_eq!(
            InspectError::TooDeep { max: MAX_DEPTH }.to_string(),
            format!("the request body nests deeper than {MAX_DEPTH} levels")
        );
    }

    // --- splicing ---------------------------------------------------------

    fn spliced(body: &str, new_model: &str) -> (Spliced, Inspected, Bytes) {
        let bytes = Bytes::copy_from_slice(body.as_bytes());
        let i = ok(body);
        (splice_model(&bytes, &i, new_model), i, bytes)
    }

    #[test]
    fn splicing_keeps_every_byte_outside_the_model_value() {
        let body = "{ \"temperature\": 0.2,\t\"model\" :\r\n  \"alias\"  ,\n\"x-unknown\": [1e3, {\"b\":null}], \"max_tokens\":1024 }  ";
        let (out, i, _) = spliced(body, "upstream/real-model");
        let span = i.model_span.unwrap();
        let out = out.to_bytes();
        let expected = format!(
            "{}\"upstream/real-model\"{}",
            &body[..span.start],
            &body[span.end..]
        );
        assert_eq!(out, expected.as_bytes());
        assert!(std::str::from_utf8(&out)
            .unwrap()
            .contains("\"temperature\": 0.2,\t"));

        let mut want: Value = serde_json::from_str(body).unwrap();
        want["model"] = json!("upstream/real-model");
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), want);
    }

    #[test]
    fn splicing_is_three_zero_copy_parts_around_the_new_value() {
        let (out, i, bytes) = spliced(r#"{"model":"a","stream":true}"#, "b");
        assert_eq!(out.parts.len(), 3);
        assert_eq!(out.parts[0].as_ptr(), bytes.as_ptr());
        assert_eq!(&out.parts[1][..], b"\"b\"");
        assert_eq!(
            out.parts[2].as_ptr(),
            bytes[i.model_span.unwrap().end..].as_ptr()
        );
        assert_eq!(out.len(), bytes.len());
        assert!(!out.is_empty());
    }

    #[test]
    fn a_new_model_name_with_quotes_backslashes_controls_and_unicode_is_escaped() {
        for name in [
            "a\"b",
            "back\\slash",
            "ünï-模型-😀",
            "line\nbreak\ttab\r\u{8}\u{c}",
            "\u{0}\u{1f}\u{7f}",
            "</script>",
            "",
        ] {
            let (out, _, _) = spliced(r#"{"model":"old","n":0.2}"#, name);
            let out = out.to_bytes();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v, json!({"model": name, "n": 0.2}), "{name:?}");
            assert_eq!(
                encode_json_string(name),
                serde_json::to_vec(name).unwrap(),
                "{name:?}"
            );
            assert_eq!(inspect(&out).unwrap().model.as_deref(), Some(name));
        }
    }

    #[test]
    fn splicing_the_same_encoded_name_returns_the_original_body_uncopied() {
        let (out, _, bytes) = spliced(r#"{"model":"same","x":1}"#, "same");
        assert_eq!(out.parts.len(), 1);
        assert_eq!(out.parts[0].as_ptr(), bytes.as_ptr());
        assert_eq!(out.to_bytes(), bytes);
    }

    #[test]
    fn splicing_an_equal_name_spelled_differently_rewrites_the_spelling() {
        // Same string value, different bytes: we emit serde_json's spelling.
        let (out, _, _) = spliced(r#"{"model":"\u0061"}"#, "a");
        assert_eq!(out.to_bytes(), &br#"{"model":"a"}"#[..]);
    }

    #[test]
    fn splicing_a_body_without_model_returns_it_unchanged() {
        let (out, _, bytes) = spliced(r#"{"messages":[]}"#, "m");
        assert_eq!(out.parts.len(), 1);
        assert_eq!(out.parts[0].as_ptr(), bytes.as_ptr());
    }

    #[test]
    fn splicing_with_a_span_that_does_not_fit_the_body_does_not_panic() {
        let bytes = Bytes::from_static(b"{}");
        let mut i = ok(r#"{"model":"m"}"#);
        let out = splice_model(&bytes, &i, "x");
        assert_eq!(out.to_bytes(), bytes);
        i.model_span = Some(Range { start: 2, end: 1 });
        assert_eq!(splice_model(&bytes, &i, "x").to_bytes(), bytes);
    }

    // --- properties ---------------------------------------------------------

    /// Strings that exercise escaping: quotes, backslashes, control characters,
    /// DEL, non-ASCII, astral characters (surrogate pairs when escaped), and any char.
    fn arb_text() -> impl Strategy<Value = String> {
        let tricky = prop::sample::select(vec![
            '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', '\u{7f}', 'é',
            '模', '😀', '\u{2028}', '\u{feff}', 'a', 'z', ' ',
        ]);
        prop::collection::vec(prop_oneof![tricky, any::<char>()], 0..10).prop_map(String::from_iter)
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Non-finite floats become null, as serde_json itself does.
            any::<f64>().prop_map(Value::from),
            (-1000i32..1000).prop_map(|n| Value::from(f64::from(n) / 10.0)),
            arb_text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((arb_text(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Top-level request-like objects; "model", "stream" and "stream_options" are
    /// present in some cases, and decoys with those names are nested below.
    fn arb_body() -> impl Strategy<Value = Value> {
        (
            prop::collection::vec((arb_text(), arb_value()), 0..6),
            prop::option::of(prop_oneof![arb_text(), Just("gpt-4o".to_string())]),
            prop::option::of(prop::option::of(any::<bool>())),
            prop::option::of(arb_value()),
            any::<bool>(),
        )
            .prop_map(|(members, model, stream, stream_options, decoys)| {
                let mut map: Map<String, Value> = members
                    .into_iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "model" | "stream" | "stream_options"))
                    .collect();
                if decoys {
                    map.insert(
                        "messages".into(),
                        json!([{"model": 5, "stream": "x", "stream_options": 1}]),
                    );
                }
                if let Some(m) = model {
                    map.insert("model".into(), Value::String(m));
                }
                if let Some(s) = stream {
                    map.insert("stream".into(), s.map_or(Value::Null, Value::Bool));
                }
                if let Some(o) = stream_options {
                    map.insert("stream_options".into(), o);
                }
                Value::Object(map)
            })
    }

    fn serializations(v: &Value) -> [Vec<u8>; 2] {
        [
            serde_json::to_vec(v).unwrap(),
            serde_json::to_vec_pretty(v).unwrap(),
        ]
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 128,
            // Never write regression files into the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// JSON-ish bytes, so random inputs get past the first byte more often.
    fn arb_jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = prop::sample::select(
            b"{}[]\":, \n0123456789-+.eEtruefalsn\\u\"a\xc3\xa9\x00\x1f".to_vec(),
        );
        prop::collection::vec(prop_oneof![alphabet, any::<u8>()], 0..512)
    }

    /// The body after one random edit: delete, insert or overwrite a byte.
    fn arb_mutated_body() -> impl Strategy<Value = Vec<u8>> {
        (
            arb_body(),
            any::<bool>(),
            any::<prop::sample::Index>(),
            0u8..3,
            any::<u8>(),
        )
            .prop_map(|(v, pretty, at, op, byte)| {
                let mut b = if pretty {
                    serde_json::to_vec_pretty(&v).unwrap()
                } else {
                    serde_json::to_vec(&v).unwrap()
                };
                let i = at.index(b.len() + 1);
                const POOL: &[u8] = b"{}[]\":,\\ 0-.eunt\xff";
                let byte = POOL[usize::from(byte) % POOL.len()];
                match op {
                    0 if i < b.len() => {
                        b.remove(i);
                    }
                    1 => b.insert(i, byte),
                    _ if i < b.len() => b[i] = byte,
                    _ => b.push(byte),
                }
                b
            })
    }

    /// Agreement with serde_json: whatever it refuses, we refuse; whatever it
    /// accepts, we do not call malformed. Where we are stricter than serde_json it
    /// is on purpose and never a syntax error: a repeated top-level "model",
    /// "stream" or "stream_options" key (serde_json keeps the last one) and the
    /// field-type checks are `DuplicateKey`/`ModelNotString`/`StreamNotBool`, and a
    /// non-object top level is `NotAnObject`. Depth and number range match
    /// serde_json exactly (see `MAX_DEPTH` and `Scanner::scan_number`).
    fn agrees_with_serde(body: &[u8]) -> Result<(), TestCaseError> {
        let ours = inspect(body);
        match serde_json::from_slice::<Value>(body) {
            Err(e) => prop_assert!(ours.is_err(), "serde_json refused ({e}) but we accepted"),
            Ok(_) => prop_assert!(
                !matches!(
                    ours,
                    Err(InspectError::Syntax { .. } | InspectError::TooDeep { .. })
                ),
                "serde_json accepted but we said {ours:?}"
            ),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn serialized_objects_inspect_to_the_model_and_stream_they_contain(v in arb_body()) {
            for body in serializations(&v) {
                // Compare with what serde_json reads back, not with `v`: without its
                // `float_roundtrip` feature serde_json may read a float back a ULP off.
                let v: Value = serde_json::from_slice(&body).unwrap();
                let i = inspect(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(i.model.as_deref(), v.get("model").and_then(Value::as_str));
                prop_assert_eq!(i.stream, v.get("stream").and_then(Value::as_bool));
                if let Some(span) = i.model_span.clone() {
                    let value: Value = serde_json::from_slice(&body[span]).unwrap();
                    prop_assert_eq!(Some(&value), v.get("model"));
                }
                match (&i.stream_options_span, v.get("stream_options")) {
                    (Some(span), Some(want)) => {
                        let got: Value = serde_json::from_slice(&body[span.clone()]).unwrap();
                        prop_assert_eq!(&got, want);
                    }
                    (None, None) => {}
                    (got, want) => prop_assert!(false, "span {got:?} for {want:?}"),
                }
                prop_assert_eq!(body[i.object_end], b'}');
                prop_assert!(body[i.object_end + 1..].iter().all(u8::is_ascii_whitespace));
            }
        }

        #[test]
        fn splicing_changes_only_the_model(v in arb_body(), new_model in arb_text()) {
            for body in serializations(&v) {
                let v: Value = serde_json::from_slice(&body).unwrap(); // see above
                let body = Bytes::from(body);
                let i = inspect(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let out = splice_model(&body, &i, &new_model).to_bytes();

                let mut want = v.clone();
                if let Some(m) = want.get_mut("model") {
                    *m = Value::String(new_model.clone());
                }
                let got: Value = serde_json::from_slice(&out).unwrap();
                prop_assert_eq!(got, want);

                match i.model_span {
                    Some(span) => {
                        let tail = body.len() - span.end;
                        prop_assert_eq!(&out[..span.start], &body[..span.start]);
                        prop_assert_eq!(&out[out.len() - tail..], &body[span.end..]);
                        prop_assert_eq!(
                            &out[span.start..out.len() - tail],
                            &serde_json::to_vec(&new_model).unwrap()[..]
                        );
                    }
                    None => prop_assert_eq!(&out, &body),
                }
            }
        }

        #[test]
        fn inspect_never_panics_and_refuses_whatever_serde_json_refuses(
            body in prop::collection::vec(any::<u8>(), 0..512)
        ) {
            agrees_with_serde(&body)?;
        }

        #[test]
        fn inspect_agrees_with_serde_json_on_json_like_noise(body in arb_jsonish_bytes()) {
            agrees_with_serde(&body)?;
        }

        #[test]
        fn inspect_agrees_with_serde_json_on_almost_valid_bodies(body in arb_mutated_body()) {
            agrees_with_serde(&body)?;
        }

        #[test]
        fn model_names_are_encoded_exactly_like_serde_json(s in arb_text()) {
            prop_assert_eq!(encode_json_string(&s), serde_json::to_vec(&s).unwrap());
        }
    }
}
