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

/// One log line being built.
pub struct LogLine {
    buf: String,
    json: bool,
}

impl LogLine {
    /// An INFO line with `message`, stamped now, as JSON or text.
    pub fn info(message: &str, json: bool) -> LogLine {
        let mut buf = String::with_capacity(384);
        let ts = timestamp(SystemTime::now());
        if json {
            buf.push_str("{\"timestamp\":\"");
            buf.push_str(&ts);
            buf.push_str("\",\"level\":\"INFO\",\"message\":");
            push_json_str(&mut buf, message);
        } else {
            buf.push_str(&ts);
            buf.push_str("  INFO ");
            buf.push_str(message);
        }
        LogLine { buf, json }
    }

    fn key(&mut self, key: &str) {
        if self.json {
            self.buf.push_str(",\"");
            self.buf.push_str(key);
            self.buf.push_str("\":");
        } else {
            self.buf.push(' ');
            self.buf.push_str(key);
            self.buf.push('=');
        }
    }

    /// A string shown bare in text (`%value` in `tracing`): only for values
    /// that cannot hold spaces or control characters (ids, paths, methods).
    pub fn bare(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        if self.json {
            push_json_str(&mut self.buf, value);
        } else {
            self.buf.push_str(value);
        }
        self
    }

    /// A string shown quoted and escaped in text, as `tracing` shows `&str`.
    pub fn quoted(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        if self.json {
            push_json_str(&mut self.buf, value);
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
            self.buf.push_str("0.0");
        } else {
            use std::fmt::Write as _;
            let _ = write!(self.buf, "{x:?}");
        }
        self
    }

    /// The finished line, newline included.
    pub fn finish(mut self) -> String {
        if self.json {
            self.buf.push('}');
        }
        self.buf.push('\n');
        self.buf
    }

    /// Writes the line to stderr in one write.
    pub fn write(self) {
        let line = self.finish();
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// `2026-11-23T03:02:48.725765Z`: RFC 3339, UTC, microseconds.
pub fn timestamp(at: SystemTime) -> String {
    let (civil, since) = crate::telemetry::request_log::civil(at);
    let mut ts = String::with_capacity(27);
    push_padded(&mut ts, civil.year as u64, 4);
    ts.push('-');
    push_padded(&mut ts, civil.month as u64, 2);
    ts.push('-');
    push_padded(&mut ts, civil.day as u64, 2);
    ts.push('T');
    push_padded(&mut ts, civil.hour as u64, 2);
    ts.push(':');
    push_padded(&mut ts, civil.minute as u64, 2);
    ts.push(':');
    push_padded(&mut ts, civil.second as u64, 2);
    ts.push('.');
    push_padded(&mut ts, u64::from(since.subsec_micros()), 6);
    ts.push('Z');
    ts
}

/// Appends `s` quoted and escaped as Rust's `Debug` for `str` does for
/// ASCII and control characters (a client-chosen model name must not put
/// raw control characters in a log).
fn push_debug_str(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if c.is_control() => buf.extend(c.escape_unicode()),
            c => buf.push(c),
        }
    }
    buf.push('"');
}

/// Appends `s` as a JSON string.
fn push_json_str(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.push_str("\\u00");
                buf.push(char::from(HEX[(c as usize) >> 4]));
                buf.push(char::from(HEX[(c as usize) & 15]));
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

fn push_u64(buf: &mut String, n: u64) {
    push_padded(buf, n, 1);
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_padded(buf: &mut String, mut n: u64, width: usize) {
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
    // ASCII digits, always valid UTF-8.
    buf.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Milliseconds with two decimals, as `{:.2}` prints them.
fn push_ms(buf: &mut String, ms: f64) {
    let hundredths = if ms.is_finite() {
        (ms.max(0.0) * 100.0).round() as u64
    } else {
        0
    };
    push_u64(buf, hundredths / 100);
    buf.push('.');
    push_padded(buf, hundredths % 100, 2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn text_and_json_lines() {
        let mut line = LogLine::info("request", false);
        line.bare("id", "req_1")
            .quoted("model", "a \"b\"\n")
            .int("n", 42)
            .ms("d", 1.25)
            .float("cost", 0.000125);
        let text = line.finish();
        assert!(
            text.ends_with(
                "Z  INFO request id=req_1 model=\"a \\\"b\\\"\\n\" n=42 d=1.25 cost=0.000125\n"
            ),
            "{text}"
        );

        let mut line = LogLine::info("request", true);
        line.bare("id", "req_1")
            .quoted("model", "a \"b\"\n\u{1}")
            .int("n", 42)
            .ms("d", 2.5)
            .float("cost", 0.0);
        let json = line.finish();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request");
        assert_eq!(v["model"], "a \"b\"\n\u{1}");
        assert_eq!(v["n"], 42);
        assert_eq!(v["d"], 2.5);
        assert_eq!(v["cost"], 0.0);
        assert_eq!(v["timestamp"].as_str().unwrap().len(), 27);
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_392_067_123_456);
        assert_eq!(timestamp(at), "2026-11-23T00:01:07.123456Z");
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH),
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
            "esc\u{1b}[31m",
            "ünïcode",
        ] {
            let mut quoted = String::new();
            push_debug_str(&mut quoted, s);
            assert_eq!(quoted, format!("{s:?}"));
        }
    }

    #[test]
    fn numbers_print_as_display_would() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut buf = String::new();
            push_u64(&mut buf, n);
            assert_eq!(buf, n.to_string());
        }
        for ms in [0.0, 0.004, 0.006, 1.0, 12.345, 999.999, 84.73] {
            let mut buf = String::new();
            push_ms(&mut buf, ms);
            assert_eq!(
                buf,
                format!("{:.2}", (ms * 100.0_f64).round() / 100.0),
                "{ms}"
            );
        }
    }
}
