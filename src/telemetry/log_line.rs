//! Log lines written directly, for the access log: one per request, so
//! its cost is per-request cost. Through `tracing`'s formatter a line took
//! about a fifth of a proxied request's instructions (its visitor and
//! escaping writer go character by character); built here it is a few
//! hundred bytes appended to one buffer and one `write` to stderr.
//!
//! The output is the same as the `tracing` formatter's, text or JSON, so
//! the access log reads like every other log line. Filtering still belongs
//! to `RUST_LOG`: callers ask `tracing::enabled!` first. On a terminal
//! (colours) the access log goes through `tracing` as before.

use std::io::Write as _;
use std::time::SystemTime;

use crate::json::push_json_string;

/// One log line being built, as bytes (always UTF-8: only `&str` and
/// ASCII go in).
pub struct LogLine {
    buf: Vec<u8>,
    json: bool,
}

impl LogLine {
    /// An INFO line with `message`, stamped now, as JSON or text.
    pub fn info(message: &str, json: bool) -> LogLine {
        let mut buf = Vec::with_capacity(384);
        if json {
            buf.extend_from_slice(b"{\"timestamp\":\"");
            push_timestamp(&mut buf, SystemTime::now());
            buf.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":");
            push_json_string(&mut buf, message);
        } else {
            push_timestamp(&mut buf, SystemTime::now());
            buf.extend_from_slice(b"  INFO ");
            buf.extend_from_slice(message.as_bytes());
        }
        LogLine { buf, json }
    }

    fn key(&mut self, key: &str) {
        if self.json {
            self.buf.extend_from_slice(b",\"");
            self.buf.extend_from_slice(key.as_bytes());
            self.buf.extend_from_slice(b"\":");
        } else {
            self.buf.push(b' ');
            self.buf.extend_from_slice(key.as_bytes());
            self.buf.push(b'=');
        }
    }

    /// A string shown bare in text (`%value` in `tracing`): only for values
    /// that cannot hold spaces or control characters (ids, paths, methods).
    pub fn bare(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        if self.json {
            push_json_string(&mut self.buf, value);
        } else {
            self.buf.extend_from_slice(value.as_bytes());
        }
        self
    }

    /// A string shown quoted and escaped in text, as `tracing` shows `&str`.
    pub fn quoted(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        if self.json {
            push_json_string(&mut self.buf, value);
        } else {
            push_debug_str(&mut self.buf, value);
        }
        self
    }

    /// An integer.
    pub fn int(&mut self, key: &str, n: u64) -> &mut Self {
        self.key(key);
        push_u64(&mut self.buf, n);
        self
    }

    /// A boolean, `true` or `false` in both forms.
    pub fn flag(&mut self, key: &str, b: bool) -> &mut Self {
        self.key(key);
        self.buf
            .extend_from_slice(if b { b"true" } else { b"false" });
        self
    }

    /// Milliseconds with two decimals.
    pub fn ms(&mut self, key: &str, ms: f64) -> &mut Self {
        self.key(key);
        push_ms(&mut self.buf, ms);
        self
    }

    /// A float as Rust prints it (`0.0`, `0.000125`); JSON gets `0.0` for
    /// anything not finite.
    pub fn float(&mut self, key: &str, x: f64) -> &mut Self {
        self.key(key);
        if x == 0.0 || !x.is_finite() {
            self.buf.extend_from_slice(b"0.0");
        } else {
            let _ = write!(self.buf, "{x:?}");
        }
        self
    }

    /// The finished line, newline included.
    pub fn finish(mut self) -> Vec<u8> {
        if self.json {
            self.buf.push(b'}');
        }
        self.buf.push(b'\n');
        self.buf
    }

    /// Writes the line to stderr in one write.
    pub fn write(self) {
        let line = self.finish();
        let _ = std::io::stderr().write_all(&line);
    }
}

/// `2026-11-23T03:02:48.725765Z`: RFC 3339, UTC, microseconds.
fn push_timestamp(buf: &mut Vec<u8>, at: SystemTime) {
    let at = crate::telemetry::request_log::rfc3339_range(at);
    let _ = write!(buf, "{}", humantime::format_rfc3339_micros(at));
}

/// Appends `s` quoted and escaped as Rust's `Debug` for `str` does for
/// ASCII and control characters (a client-chosen model name must not put
/// raw control characters in a log). Bytes of multi-byte characters are
/// all >= 0x80, so the ASCII cases can be found byte by byte; the C1
/// controls (U+0080..U+009F, `0xC2 0x80..0x9F`) are escaped too.
fn push_debug_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => push_unicode_escape(buf, u32::from(b)),
            0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => {
                push_unicode_escape(buf, u32::from(bytes[i + 1]));
                i += 1;
            }
            _ => buf.push(b),
        }
        i += 1;
    }
    buf.push(b'"');
}

/// `\u{1b}`, as `char::escape_unicode` writes it.
fn push_unicode_escape(buf: &mut Vec<u8>, c: u32) {
    let _ = write!(buf, "\\u{{{c:x}}}");
}

fn push_u64(buf: &mut Vec<u8>, n: u64) {
    push_padded(buf, n, 1);
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_padded(buf: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let at = at.min(digits.len() - width.min(digits.len()));
    buf.extend_from_slice(&digits[at..]);
}

/// Milliseconds with two decimals, as `{:.2}` prints them.
fn push_ms(buf: &mut Vec<u8>, ms: f64) {
    let hundredths = if ms.is_finite() {
        (ms.max(0.0) * 100.0).round() as u64
    } else {
        0
    };
    push_u64(buf, hundredths / 100);
    buf.push(b'.');
    push_padded(buf, hundredths % 100, 2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        f(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn text_and_json_lines() {
        let mut line = LogLine::info("request", false);
        line.bare("id", "req_1")
            .quoted("model", "a \"b\"\n")
            .int("n", 42)
            .ms("d", 1.25)
            .float("cost", 0.000125);
        let line = String::from_utf8(line.finish()).unwrap();
        assert!(
            line.ends_with(
                "Z  INFO request id=req_1 model=\"a \\\"b\\\"\\n\" n=42 d=1.25 cost=0.000125\n"
            ),
            "{line}"
        );

        let mut line = LogLine::info("request", true);
        line.bare("id", "req_1")
            .quoted("model", "a \"b\"\n\u{1}é")
            .int("n", 42)
            .ms("d", 2.5)
            .float("cost", 0.0);
        let v: serde_json::Value = serde_json::from_slice(&line.finish()).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request");
        assert_eq!(v["model"], "a \"b\"\n\u{1}é");
        assert_eq!(v["n"], 42);
        assert_eq!(v["d"], 2.5);
        assert_eq!(v["cost"], 0.0);
        assert_eq!(v["timestamp"].as_str().unwrap().len(), 27);
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_392_067_123_456);
        assert_eq!(
            text(|b| push_timestamp(b, at)),
            "2026-11-23T00:01:07.123456Z"
        );
        assert_eq!(
            text(|b| push_timestamp(b, SystemTime::UNIX_EPOCH)),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn quoting_matches_debug_for_ascii_and_control_characters() {
        for s in [
            "plain",
            "with \"quotes\"",
            "back\\slash",
            "new\nline\r\t",
            "esc\u{1b}[31m\u{7f}",
            "c1\u{85}\u{9f}",
            "ünïcode ÿ € 😀",
        ] {
            assert_eq!(text(|b| push_debug_str(b, s)), format!("{s:?}"));
        }
    }

    #[test]
    fn numbers_print_as_display_would() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            assert_eq!(text(|b| push_u64(b, n)), n.to_string());
        }
        for ms in [0.0, 0.004, 0.006, 1.0, 12.345, 999.999, 84.73] {
            assert_eq!(
                text(|b| push_ms(b, ms)),
                format!("{:.2}", (ms * 100.0_f64).round() / 100.0),
                "{ms}"
            );
        }
    }
}
