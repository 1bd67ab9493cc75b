//! The request inspector: one validating pass over a buffered body that
//! picks out what routing needs from the top-level object.
//!
//! Strictness compared with `serde_json` (which upstream-facing code may also use):
//! every body that `serde_json::from_slice::<serde_json::Value>` rejects is rejected
//! here too (nesting limit, out-of-range numbers, lone surrogates and invalid UTF-8
//! included). We are stricter in one place on purpose: a top-level `"model"`,
//! `"stream"` or `"stream_options"` key that appears twice is an error, because
//! which copy an upstream honours differs between JSON parsers and we must route on
//! the same value the upstream will read.

use std::ops::Range;

use super::error::{syntax, InspectError};
use super::scan::{unescape, Scanner};

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
