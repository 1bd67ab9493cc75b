//! The properties the fuzz targets (`fuzz/`) check, one function per parser
//! that sees untrusted bytes. Each panics when its property fails, so
//! libFuzzer reports it; `tests/it/fuzz_corpus.rs` replays the committed
//! corpora through the same functions on every test run.
//!
//! Not part of the router's API.

use bytes::{Bytes, BytesMut};
use http::Method;

use crate::json::{inspect, splice_model, InspectError};
use crate::openai;
use crate::sse::SseScanner;

/// Splits `data` into a "control" prefix (the first byte picks cut points)
/// and the payload, then cuts the payload into chunks there.
fn chunks(data: &[u8]) -> (Vec<Bytes>, Bytes) {
    let Some((&seed, payload)) = data.split_first() else {
        return (Vec::new(), Bytes::new());
    };
    let whole = Bytes::copy_from_slice(payload);
    let mut cuts = Vec::new();
    let mut at = 0;
    let mut step = usize::from(seed % 7) + 1;
    while at < whole.len() {
        let end = (at + step).min(whole.len());
        cuts.push(whole.slice(at..end));
        at = end;
        step = (step * 3 + usize::from(seed)) % 11 + 1;
    }
    (cuts, whole)
}

/// The request-body inspector and the model splice: never panics; accepts
/// what serde_json accepts as JSON (and refuses all it refuses); a splice
/// gives valid JSON that differs from the input only in the model's value.
pub fn inspect_and_splice(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let ours = inspect(&body);
    let theirs = serde_json::from_slice::<serde_json::Value>(&body);
    match (&ours, &theirs) {
        (Ok(_), Err(e)) => panic!("accepted what serde_json refuses: {e}"),
        (Err(InspectError::Syntax { .. } | InspectError::TooDeep { .. }), Ok(_)) => {
            panic!("refused as not JSON what serde_json accepts: {ours:?}")
        }
        _ => {}
    }
    let (Ok(inspected), Ok(mut want)) = (ours, theirs) else {
        return;
    };
    let new_model = "renamed \"model\" \u{e9}\u{1F600}";
    let out = splice_model(&body, &inspected, new_model).to_bytes();
    let got: serde_json::Value =
        serde_json::from_slice(&out).expect("a spliced body is valid JSON");
    if let Some(model) = want.get_mut("model") {
        *model = serde_json::Value::String(new_model.into());
    }
    assert_eq!(got, want, "the splice changed more than the model");
}

/// The SSE scanner: any chunking of a stream yields the same events (and
/// the same failure) as the whole stream in one piece.
pub fn sse_chunking(data: &[u8]) {
    let (cuts, whole) = chunks(data);
    let scan = |pieces: &[Bytes]| {
        let mut scanner = SseScanner::new();
        let mut events = Vec::new();
        let mut failed = false;
        for piece in pieces {
            if scanner
                .feed(piece, |e| events.push((e.raw.clone(), e.data.to_vec())))
                .is_err()
            {
                failed = true;
                break;
            }
        }
        if !failed {
            scanner.finish(|e| events.push((e.raw.clone(), e.data.to_vec())));
        }
        (events, failed)
    };
    let one = scan(std::slice::from_ref(&whole));
    let many = scan(&cuts);
    assert_eq!(one, many, "the events depend on how the stream was cut");
    for (raw, _) in &one.0 {
        assert!(!raw.is_empty(), "an event with no bytes");
    }
}

/// `usage` extraction from a JSON body and from SSE events: never panics,
/// and agrees with serde_json on a body whose top-level `usage` is a plain
/// object of small whole numbers.
pub fn usage(data: &[u8]) {
    let found = openai::usage_of_body(data);
    let mut scanner = SseScanner::new();
    let _ = scanner.feed(&Bytes::copy_from_slice(data), |event| {
        let _ = openai::usage_of_event(&event);
        let _ = openai::classify(&event);
    });
    let Ok(serde_json::Value::Object(top)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return;
    };
    let Some(serde_json::Value::Object(usage)) = top.get("usage") else {
        return;
    };
    let number = |key: &str| usage.get(key).and_then(serde_json::Value::as_u64);
    if let (Some(prompt), Some(completion), Some(found)) =
        (number("prompt_tokens"), number("completion_tokens"), found)
    {
        // (A repeated `usage` key is read first-wins here, last-wins by serde.)
        let once = data.windows(7).filter(|w| w == b"\"usage\"").count() == 1;
        if prompt <= openai::MAX_TOKEN_COUNT && completion <= openai::MAX_TOKEN_COUNT && once {
            assert_eq!(
                (found.prompt_tokens, found.completion_tokens),
                (prompt, completion),
                "usage read differently from serde_json"
            );
        }
    }
}

/// The HTTP/1.1 response codec: never panics, and never yields more body
/// than the head framed (a `Content-Length` body), however the bytes arrive.
pub fn http_response(data: &[u8]) {
    let (cuts, _) = chunks(data);
    let method = if data.first().is_some_and(|b| b & 0x80 != 0) {
        Method::HEAD
    } else {
        Method::POST
    };
    let mut buf = BytesMut::new();
    let mut pieces = cuts.into_iter();
    let head = loop {
        match crate::h1::parse_head_for_fuzzing(&mut buf, &method) {
            Ok(Some(head)) => break head,
            Ok(None) => match pieces.next() {
                Some(piece) => buf.extend_from_slice(&piece),
                None => return,
            },
            Err(_) => return,
        }
    };
    let (mut framing, limit) = head;
    let mut body = 0u64;
    loop {
        match framing.decode(&mut buf) {
            Ok(data) => body += data.len() as u64,
            Err(_) => return,
        }
        if let Some(limit) = limit {
            assert!(
                body <= limit,
                "{body} body bytes for a content-length of {limit}"
            );
        }
        if framing.is_done() {
            return;
        }
        match pieces.next() {
            Some(piece) => buf.extend_from_slice(&piece),
            None => return,
        }
    }
}

/// Config parse and validation: never panics, and every error names where
/// it is (a key path, or the line for YAML syntax).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = crate::upstream::Registry::default();
    let lookup = |name: &str| (name == "SET").then(|| "value".to_string());
    if let Err(errors) = crate::config::load_str(text, "fuzz.yaml", &lookup, &registry, 1) {
        assert!(!errors.errors.is_empty(), "a failed load with no error");
        for error in &errors.errors {
            assert!(!error.message.trim().is_empty(), "an error with no message");
            assert!(
                !error.path.to_string().is_empty(),
                "an error with no key path"
            );
        }
    }
}

/// The translating providers (Anthropic, Gemini, Bedrock): any bytes as a
/// client request, an upstream answer, an error or a stream never panic;
/// every translated stream chunk is whole SSE events whose data is JSON or
/// `[DONE]`; and Bedrock's event-stream decoder yields the same messages
/// (and the same failure) however the bytes are cut.
pub fn translate(data: &[u8]) {
    use crate::providers::{anthropic, bedrock, gemini};
    let (cuts, whole) = chunks(data);
    let _ = anthropic::translate_request(&whole, "m", &anthropic::Options::default());
    let _ = gemini::translate_request(&whole);
    let _ = bedrock::translate_request(&whole, &bedrock::Options::default());
    let mut answers = vec![
        anthropic::translate_response(&whole),
        gemini::translate_response(&whole, "m"),
        bedrock::translate_response(&whole, "m"),
    ];
    for status in [400, 429, 500, 503, 529] {
        answers.push(Some(anthropic::translate_error(status, &whole)));
        answers.push(Some(gemini::translate_error(status, &whole)));
        answers.push(Some(bedrock::translate_error(
            status,
            Some("ThrottlingException:http://x"),
            &whole,
        )));
    }
    for answer in answers.into_iter().flatten() {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&answer).is_ok(),
            "a translated answer is not JSON"
        );
    }

    // Anthropic's and Gemini's streams are SSE.
    let mut out = Vec::new();
    let mut scanner = SseScanner::new();
    let mut claude = anthropic::StreamTranslator::new(true).with_usage_chunk();
    let mut gem = gemini::StreamTranslator::new(true, "m").with_usage_chunk();
    for piece in &cuts {
        let fed = scanner.feed(piece, |event| {
            if !claude.finished() {
                claude.event(&event, &mut out);
            }
            if !gem.finished() {
                gem.event(&event, &mut out);
            }
        });
        if fed.is_err() {
            break;
        }
    }
    if !gem.finished() {
        gem.end(&mut out);
    }

    // Bedrock's is binary frames.
    let decode = |pieces: &[Bytes]| {
        let mut decoder = bedrock::EventStreamDecoder::new();
        let mut messages = Vec::new();
        let mut failed = false;
        for piece in pieces {
            let fed = decoder.feed(piece, |m| {
                messages.push((
                    m.message_type.to_owned(),
                    m.event_type.to_owned(),
                    m.payload.to_vec(),
                ))
            });
            if fed.is_err() {
                failed = true;
                break;
            }
        }
        (messages, failed)
    };
    let one = decode(std::slice::from_ref(&whole));
    let many = decode(&cuts);
    assert_eq!(
        one, many,
        "the decoded frames depend on how the bytes were cut"
    );
    let mut translator = bedrock::StreamTranslator::new(true, "m").with_usage_chunk();
    for (message_type, event_type, payload) in &one.0 {
        if translator.finished() {
            break;
        }
        let message = bedrock::StreamMessage {
            message_type,
            event_type,
            payload,
        };
        translator.message(&message, &mut out);
    }

    for chunk in &out {
        let mut rest: &[u8] = chunk;
        while !rest.is_empty() {
            let end = memchr::memmem::find(rest, b"\n\n").expect("a whole SSE event");
            let event = &rest[..end];
            let data = event.strip_prefix(b"data: ").expect("a data event");
            assert!(
                data == b"[DONE]" || serde_json::from_slice::<serde_json::Value>(data).is_ok(),
                "an event whose data is neither JSON nor [DONE]"
            );
            rest = &rest[end + 2..];
        }
    }
}
