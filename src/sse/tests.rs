//! The scanner against the WHATWG framing rules, chunked every way.

use super::*;

/// An event with everything owned, to compare runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) event: Option<String>,
    pub(crate) data: Vec<u8>,
    pub(crate) raw: Bytes,
    pub(crate) has_data: bool,
    pub(crate) comment_only: bool,
}

impl Seen {
    pub(crate) fn of(e: &Event<'_>) -> Seen {
        Seen {
            event: e.event.map(str::to_owned),
            data: e.data.to_vec(),
            raw: e.raw.clone(),
            has_data: e.has_data,
            comment_only: e.comment_only,
        }
    }

    pub(crate) fn data_str(&self) -> &str {
        std::str::from_utf8(&self.data).unwrap()
    }
}

/// Feeds `chunks` in order, then finishes; returns the events, the bytes
/// pending after the last chunk and the bytes `finish` discarded.
pub(crate) fn scan_chunks(chunks: &[Bytes]) -> (Vec<Seen>, usize, usize) {
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

pub(crate) fn scan(parts: &[&str]) -> Vec<Seen> {
    let chunks: Vec<Bytes> = parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect();
    scan_chunks(&chunks).0
}

pub(crate) const OPENAI_STREAM: &str = concat!(
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

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
