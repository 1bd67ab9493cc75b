//! The byte-level scanner under [`super::inspect`]: strings, escapes,
//! numbers and literals, validated by RFC 8259.

use super::error::{syntax, InspectError};

/// Decode the contents of an already-validated JSON string (without its quotes).
/// `at` is the offset of `raw` in the body, for error positions.
pub(super) fn unescape(raw: &[u8], at: usize) -> Result<String, InspectError> {
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

/// Cursor over the body. Every access is bounds-checked through `get`, so no input
/// can make it panic.
pub(super) struct Scanner<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

// The scanner runs once per request over the whole body: `#[inline]` keeps
// these in `inspect`'s loop (they were, before the scanner had a file of
// its own; across files the compiler stopped inlining `scan_string`).
impl Scanner<'_> {
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// JSON whitespace is exactly these four bytes (not form feed, not a BOM).
    #[inline]
    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    pub(super) fn literal(&mut self, word: &'static [u8]) -> Result<(), InspectError> {
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
    #[inline]
    pub(super) fn scan_string(&mut self) -> Result<bool, InspectError> {
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

    #[inline]
    pub(super) fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, and finite as an f64.
    #[inline]
    pub(super) fn scan_number(&mut self) -> Result<(), InspectError> {
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
