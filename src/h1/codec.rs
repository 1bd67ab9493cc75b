//! HTTP/1.1 framing for the upstream side: the request head we write, the
//! response head we parse, and the body decoder.
//!
//! The decoder works in place on the connection's read buffer: for a
//! chunked body it moves the data of every complete chunk in the buffer to
//! its front and hands that out as one [`Bytes`], so a burst of small SSE
//! chunks that arrived in one read goes to the client as one write (hyper's
//! own client hands chunks over one at a time, across tasks).

use std::io::Write as _;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH};
use http::{Method, StatusCode, Version};

/// Most header lines in a response head.
const MAX_HEADERS: usize = 128;
/// Largest response head.
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4096;

/// A protocol violation by the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Writes a request head: the request line and `host` first, then the
/// headers the caller adds, then `content-length` and the blank line.
pub struct HeadWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> HeadWriter<'a> {
    /// Starts the head of `method` `target` (origin form) for `authority`.
    pub fn new(out: &'a mut Vec<u8>, method: &Method, target: &str, authority: &str) -> Self {
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(if target.is_empty() {
            b"/"
        } else {
            target.as_bytes()
        });
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(authority.as_bytes());
        out.extend_from_slice(b"\r\n");
        HeadWriter { out }
    }

    /// Adds one header line. `host`, `content-length`, `transfer-encoding`
    /// and `connection` belong to the client and are skipped.
    pub fn header(&mut self, name: &HeaderName, value: &HeaderValue) {
        if matches!(
            name.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) {
            return;
        }
        self.out.extend_from_slice(name.as_str().as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Ends the head for a body of `body_len` bytes.
    pub fn finish(self, method: &Method, body_len: u64) {
        if body_len > 0 || !matches!(*method, Method::GET | Method::HEAD) {
            // Writing to a Vec cannot fail.
            let _ = write!(self.out, "content-length: {body_len}\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Writes the request head for `method` `target` with `headers` to `out`.
#[cfg(test)]
pub fn encode_head(
    method: &Method,
    target: &str,
    authority: &str,
    headers: &HeaderMap,
    body_len: u64,
    out: &mut Vec<u8>,
) {
    let mut head = HeadWriter::new(out, method, target, authority);
    for (name, value) in headers {
        head.header(name, value);
    }
    head.finish(method, body_len);
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    /// How the body is framed.
    pub framing: Framing,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Parses a response head from the front of `buf`, removing it.
///
/// `Ok(None)` means more bytes are needed. Interim (1xx) responses are
/// skipped. `method` is the request's (a `HEAD` answer has no body).
pub fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, ProtocolError> {
    loop {
        let Some((len, code, minor, spans)) = parse_spans(buf)? else {
            return Ok(None);
        };
        let status =
            StatusCode::from_u16(code).map_err(|_| ProtocolError("invalid response status"))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(ProtocolError("unexpected protocol switch (101)"));
        }
        if status.is_informational() {
            let _ = buf.split_to(len);
            continue;
        }
        let version = if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Header values are slices of the head, not copies.
        let head = buf.split_to(len).freeze();
        // Room for the headers the proxy adds (`x-switchyard-*`, the request
        // id) without growing the map.
        let mut headers = HeaderMap::with_capacity(spans.len() + 6);
        for (name, value) in spans {
            let name = HeaderName::from_bytes(&head[name])
                .map_err(|_| ProtocolError("invalid header name in response"))?;
            let value = HeaderValue::from_maybe_shared(head.slice(value))
                .map_err(|_| ProtocolError("invalid header value in response"))?;
            headers.append(name, value);
        }
        let (framing, reusable) = framing(&headers, status, method)?;
        if headers.contains_key(http::header::TRANSFER_ENCODING) {
            // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3):
            // passing the length on would truncate the answer downstream.
            headers.remove(CONTENT_LENGTH);
        }
        let keep_alive = reusable && version == Version::HTTP_11 && !has_token(&headers, "close");
        return Ok(Some(Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// Header name and value positions in a response head.
type Spans = Vec<(Range<usize>, Range<usize>)>;

/// Parses the head at the front of `buf`: its length, status code, minor
/// version and header positions, or `None` when it is not complete yet.
fn parse_spans(buf: &[u8]) -> Result<Option<(usize, u16, u8, Spans)>, ProtocolError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err(ProtocolError("response head larger than 64 KiB"));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ProtocolError("response head has too many headers"))
        }
        Err(_) => return Err(ProtocolError("malformed HTTP response head")),
    };
    // httparse takes a bare LF as a line end; an upstream that sends one is
    // refused (a proxy and its peer must agree on where each line ends).
    if memchr::memchr_iter(b'\n', &buf[..len]).any(|i| i == 0 || buf[i - 1] != b'\r') {
        return Err(ProtocolError(
            "a line of the response head ends in a bare LF",
        ));
    }
    let base = buf.as_ptr() as usize;
    // httparse's slices point into `buf`; an empty one might not, so the
    // subtraction is checked and anything outside `buf` reads as empty.
    let offset = |s: &[u8]| match (s.as_ptr() as usize).checked_sub(base) {
        Some(start) if start + s.len() <= buf.len() => start..start + s.len(),
        _ => 0..0,
    };
    let spans = response
        .headers
        .iter()
        .map(|h| (offset(h.name.as_bytes()), offset(h.value)))
        .collect();
    Ok(Some((
        len,
        response.code.unwrap_or(0),
        response.version.unwrap_or(1),
        spans,
    )))
}

/// Whether the `Connection` header lists `token`.
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Body framing by RFC 9112 §6.3, and whether the connection stays usable.
fn framing(
    headers: &HeaderMap,
    status: StatusCode,
    method: &Method,
) -> Result<(Framing, bool), ProtocolError> {
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Length(0), true));
    }
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        // Switchyard sends no `TE`, so only `chunked` is decoded; any other
        // coding (gzip, a list) would reach the client as undecodable bytes.
        let mut codings = 0;
        let mut chunked_only = true;
        for value in headers.get_all(http::header::TRANSFER_ENCODING) {
            let text = value.to_str().unwrap_or("?");
            for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                codings += 1;
                chunked_only &= coding.eq_ignore_ascii_case("chunked");
            }
        }
        if codings != 1 || !chunked_only {
            return Err(ProtocolError(
                "a transfer coding other than chunked (only chunked is accepted)",
            ));
        }
        return Ok((
            Framing::Chunked(Chunked::Size),
            !headers.contains_key(CONTENT_LENGTH),
        ));
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value
            .to_str()
            .map_err(|_| ProtocolError("invalid content-length"))?
            .split(',')
        {
            let part = part.trim();
            // Digits only: `parse` would also take a leading `+`.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ProtocolError("invalid content-length"));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| ProtocolError("invalid content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ProtocolError("conflicting content-length values"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (Framing::Length(n), true),
        None => (Framing::Eof, false),
    })
}

/// How a response body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// This many bytes remain.
    Length(u64),
    /// Chunked transfer coding, in this state.
    Chunked(Chunked),
    /// Until the upstream closes the connection.
    Eof,
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunked {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// In the trailer section after the last chunk, this many bytes in.
    Trailers(usize),
    /// Past the end.
    Done,
}

impl Framing {
    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        matches!(self, Framing::Length(0) | Framing::Chunked(Chunked::Done))
    }

    /// Takes every body byte that is complete in `buf` from its front, as
    /// one buffer (empty when none is). Bytes after the body stay in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Bytes, ProtocolError> {
        match self {
            Framing::Length(left) => {
                let take = (*left).min(buf.len() as u64) as usize;
                *left -= take as u64;
                Ok(buf.split_to(take).freeze())
            }
            Framing::Eof => Ok(buf.split().freeze()),
            Framing::Chunked(state) => {
                let n = decode_chunked(state, buf)?;
                Ok(buf.split_to(n).freeze())
            }
        }
    }

    /// Body bytes known to remain, when the framing says.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Framing::Length(left) => Some(*left),
            Framing::Chunked(Chunked::Done) => Some(0),
            _ => None,
        }
    }
}

/// Decodes the complete chunks at the front of `buf` in place: their data
/// is moved to the front, the unread rest right behind it. Returns the
/// number of data bytes at the front.
fn decode_chunked(state: &mut Chunked, buf: &mut BytesMut) -> Result<usize, ProtocolError> {
    let len = buf.len();
    let (mut read, mut write) = (0usize, 0usize);
    loop {
        match state {
            Chunked::Size => {
                let Some(nl) = memchr::memchr(b'\n', &buf[read..]) else {
                    if len - read > MAX_LINE {
                        return Err(ProtocolError("chunk-size line too long"));
                    }
                    break;
                };
                let size = parse_chunk_size(crlf_line(&buf[read..read + nl])?)?;
                read += nl + 1;
                *state = if size == 0 {
                    Chunked::Trailers(0)
                } else {
                    Chunked::Data(size)
                };
            }
            Chunked::Data(left) => {
                let take = (*left).min((len - read) as u64) as usize;
                if take == 0 {
                    break;
                }
                if read != write {
                    buf.copy_within(read..read + take, write);
                }
                read += take;
                write += take;
                *left -= take as u64;
                if *left > 0 {
                    break;
                }
                *state = Chunked::DataEnd;
            }
            Chunked::DataEnd => {
                if len - read < 2 {
                    if len - read == 1 && buf[read] != b'\r' {
                        return Err(ProtocolError("chunk data not followed by CRLF"));
                    }
                    break;
                }
                if &buf[read..read + 2] != b"\r\n" {
                    return Err(ProtocolError("chunk data not followed by CRLF"));
                }
                read += 2;
                *state = Chunked::Size;
            }
            Chunked::Trailers(seen) => {
                let Some(nl) = memchr::memchr(b'\n', &buf[read..]) else {
                    if len - read > MAX_LINE {
                        return Err(ProtocolError("trailer line too long"));
                    }
                    break;
                };
                let line = crlf_line(&buf[read..read + nl])?;
                read += nl + 1;
                *seen += nl + 1;
                if *seen > MAX_TRAILERS {
                    return Err(ProtocolError("trailer section larger than 16 KiB"));
                }
                if line.is_empty() {
                    *state = Chunked::Done;
                }
            }
            Chunked::Done => break,
        }
    }
    if read != write {
        buf.copy_within(read..len, write);
        buf.truncate(write + (len - read));
    }
    Ok(write)
}

/// Most bytes of trailer fields after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// A line without its `\n`: it must end in `\r` (a bare LF is refused, as
/// in the head), returned without it.
fn crlf_line(line: &[u8]) -> Result<&[u8], ProtocolError> {
    line.strip_suffix(b"\r").ok_or(ProtocolError(
        "a line of the chunked body ends in a bare LF",
    ))
}

/// The size of a chunk-size line (without its CRLF): hex digits (leading
/// zeros allowed), then optional extensions `;name[=value]`, which are
/// checked for shape and ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    if digits.is_empty() {
        return Err(ProtocolError("invalid chunk size"));
    }
    let significant = digits
        .iter()
        .position(|&b| b != b'0')
        .map_or(&digits[..0], |i| &digits[i..]);
    if significant.len() > 15 {
        return Err(ProtocolError("chunk size too large"));
    }
    let mut size: u64 = 0;
    for &b in significant {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        size = size * 16 + u64::from(d);
    }
    check_extensions(rest)?;
    Ok(size)
}

/// `*( BWS ";" BWS name [ BWS "=" BWS value ] )`, value a token or a
/// quoted string (RFC 9112 §7.1.1).
fn check_extensions(mut rest: &[u8]) -> Result<(), ProtocolError> {
    const BAD: ProtocolError = ProtocolError("invalid chunk extension");
    let ws = |s: &[u8]| -> usize { s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count() };
    let token = |s: &[u8]| -> usize {
        s.iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            .count()
    };
    loop {
        rest = &rest[ws(rest)..];
        if rest.is_empty() {
            return Ok(());
        }
        rest = rest.strip_prefix(b";").ok_or(BAD)?;
        rest = &rest[ws(rest)..];
        let name = token(rest);
        if name == 0 {
            return Err(BAD);
        }
        rest = &rest[name..];
        let after = &rest[ws(rest)..];
        let Some(value) = after.strip_prefix(b"=") else {
            continue;
        };
        rest = &value[ws(value)..];
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let mut i = 0;
            loop {
                match quoted.get(i) {
                    None => return Err(BAD),
                    Some(b'"') => break,
                    Some(b'\\') if quoted.get(i + 1).is_some_and(|b| *b >= 0x20 || *b == b'\t') => {
                        i += 2
                    }
                    Some(&b) if b >= 0x20 && b != 0x7f || b == b'\t' => i += 1,
                    Some(_) => return Err(BAD),
                }
            }
            rest = &quoted[i + 1..];
        } else {
            let value = token(rest);
            if value == 0 {
                return Err(BAD);
            }
            rest = &rest[value..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(text: &str) -> Result<Option<Head>, ProtocolError> {
        parse_head(&mut BytesMut::from(text), &Method::POST)
    }

    #[test]
    fn encodes_a_request_head() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer k"));
        headers.insert("host", HeaderValue::from_static("ignored"));
        let mut out = Vec::new();
        encode_head(
            &Method::POST,
            "/v1/chat/completions",
            "127.0.0.1:9",
            &headers,
            12,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:9\r\nauthorization: Bearer k\r\ncontent-length: 12\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_head(&Method::GET, "", "h", &HeaderMap::new(), 0, &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
    }

    #[test]
    fn parses_heads_and_their_framing() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        assert_eq!(h.headers["x-a"], "b");

        let h = head("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked(Chunked::Size));
        // Chunked wins over a length, which is not passed on.
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked(Chunked::Size));
        assert!(!h.headers.contains_key(CONTENT_LENGTH));
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, Framing::Eof);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        // An interim answer is skipped.
        let h =
            head("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(h.status, 201);
        assert!(head("HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
    }

    /// Decodes a whole chunked body given in one piece.
    fn decode_chunked_body(body: &str) -> Result<(Vec<u8>, bool), ProtocolError> {
        let mut framing = Framing::Chunked(Chunked::Size);
        let mut buf = BytesMut::from(body);
        let data = framing.decode(&mut buf)?;
        Ok((data.to_vec(), framing.is_done()))
    }

    #[test]
    fn bare_lf_line_ends_are_refused_in_heads_and_chunked_bodies() {
        assert!(head("HTTP/1.1 200 OK\ncontent-length: 0\n\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: 0\n\r\n").is_err());
        assert!(decode_chunked_body("5\nhello\r\n0\r\n\r\n").is_err());
        assert!(decode_chunked_body("5\r\nhello\n0\r\n\r\n").is_err());
        assert!(decode_chunked_body("5\r\nhello\r\n0\r\n\n").is_err());
        assert_eq!(
            decode_chunked_body("5\r\nhello\r\n0\r\n\r\n").unwrap(),
            (b"hello".to_vec(), true)
        );
    }

    #[test]
    fn chunk_extensions_are_checked_and_zero_padded_sizes_accepted() {
        for ok in [
            "5;a\r\nhello",
            "5 ; a = b ;c=\"q \\\" d\"\r\nhello",
            "00000000000000000005\r\nhello",
        ] {
            assert_eq!(
                decode_chunked_body(&format!("{ok}\r\n0\r\n\r\n"))
                    .unwrap()
                    .0,
                b"hello",
                "{ok:?}"
            );
        }
        for bad in [
            "5 garbage\r\n",
            "5;\r\n",
            "5;a=\r\n",
            "5;a=\"open\r\n",
            "5;a\x01\r\n",
            "5x\r\n",
        ] {
            assert!(
                decode_chunked_body(&format!("{bad}hello\r\n0\r\n\r\n")).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            decode_chunked_body("10000000000000000\r\n").is_err(),
            "over 15 significant digits"
        );
    }

    #[test]
    fn trailers_are_bounded() {
        let few: String = (0..10).map(|i| format!("x-t{i}: v\r\n")).collect();
        assert!(decode_chunked_body(&format!("0\r\n{few}\r\n")).unwrap().1);
        let many: String = (0..2000).map(|i| format!("x-t{i}: value\r\n")).collect();
        assert!(decode_chunked_body(&format!("0\r\n{many}\r\n")).is_err());
    }

    #[test]
    fn transfer_codings_other_than_chunked_alone_are_refused() {
        for te in ["gzip", "gzip, chunked", "chunked, chunked", "identity", ""] {
            let text = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: {te}\r\n\r\n");
            assert!(
                head(&text).is_err(),
                "transfer-encoding: {te:?} was accepted"
            );
        }
        let h = head("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked(Chunked::Size));
    }

    #[test]
    fn empty_header_values_are_kept_empty() {
        let h = head("HTTP/1.1 200 OK\r\nx-empty:\r\nx-b: \r\ncontent-length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.headers["x-empty"], "");
        assert_eq!(h.headers["x-b"], "");
        assert_eq!(h.framing, Framing::Length(0));
    }

    #[test]
    fn rejects_bad_heads() {
        assert!(head("garbage\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 101 Switching\r\n\r\n").is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD + 1));
        assert!(head(&huge).is_err());
    }

    #[test]
    fn the_bytes_after_a_head_stay_for_the_body() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
        let mut h = parse_head(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(&h.framing.decode(&mut buf).unwrap()[..], b"hello");
        assert!(h.framing.is_done());
    }

    #[test]
    fn decodes_every_complete_chunk_of_a_read_as_one_buffer() {
        let mut f = Framing::Chunked(Chunked::Size);
        let mut buf = BytesMut::from("5\r\nhello\r\n6;ext=1\r\n world\r\n3\r\n!!");
        assert_eq!(&f.decode(&mut buf).unwrap()[..], b"hello world!!");
        assert_eq!(f, Framing::Chunked(Chunked::Data(1)));
        buf.extend_from_slice(b"!\r\n0\r\ntrailer: x\r\n\r\nNEXT");
        assert_eq!(&f.decode(&mut buf).unwrap()[..], b"!");
        assert!(f.is_done());
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn rejects_bad_chunks() {
        for bad in ["zz\r\n", "5\r\nhelloXY", &format!("{}\r\n", "f".repeat(16))] {
            let mut f = Framing::Chunked(Chunked::Size);
            assert!(f.decode(&mut BytesMut::from(bad)).is_err(), "{bad:?}");
        }
    }

    fn chunked(data: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for d in data.iter().filter(|d| !d.is_empty()) {
            out.extend_from_slice(format!("{:x}\r\n", d.len()).as_bytes());
            out.extend_from_slice(d);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    proptest! {
        /// No reply an upstream can send makes the head parser or the body
        /// decoder panic.
        #[test]
        fn arbitrary_replies_never_panic(
            prefix in proptest::sample::select(vec![
                "", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            ]),
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut buf = BytesMut::from(prefix.as_bytes());
            buf.extend_from_slice(&bytes);
            if let Ok(Some(mut head)) = parse_head(&mut buf, &Method::POST) {
                let _ = head.framing.decode(&mut buf);
            }
            let mut chunked = Framing::Chunked(Chunked::Size);
            let _ = chunked.decode(&mut BytesMut::from(&bytes[..]));
        }

        /// However the wire bytes are split into reads, the decoded bytes
        /// are the chunks' data in order, and the end is found.
        #[test]
        fn chunked_decoding_is_independent_of_read_boundaries(
            data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
            cuts in proptest::collection::vec(1usize..200, 0..20),
        ) {
            let wire = chunked(&data);
            let mut f = Framing::Chunked(Chunked::Size);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain(std::iter::repeat(64)) {
                if at >= wire.len() { break; }
                let end = (at + cut).min(wire.len());
                buf.extend_from_slice(&wire[at..end]);
                at = end;
                out.extend_from_slice(&f.decode(&mut buf).unwrap());
            }
            prop_assert!(f.is_done());
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, data.concat());
        }
    }
}
