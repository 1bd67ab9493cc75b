//! The upstream HTTP/1.1 client on the wire (`src/upstream/client`): requests
//! go through the real router to a raw TCP upstream written here, which
//! answers with scripted bytes, so every test controls the framing exactly
//! (split writes, pauses, closes, broken heads and chunks) and checks what
//! the client got, how many connections the upstream accepted, and the bytes
//! of every request it received.
//!
//! Everything runs on 127.0.0.1 and every wait has a deadline (the support
//! client's, or [`WITHIN`]).

use std::time::Duration;

use crate::support::client::{open_stream, post_json, try_send};
use crate::support::extra::{assert_openai_error, poll_until, raw_exchange};
use crate::support::pki::trust_test_ca;
use crate::support::raw_upstream::{find, RawUpstream, Seen, Step, WITHIN};
use crate::support::{chat_chunks, chat_completion_json, init_tracing, one_model, Reply, Router};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_STREAM: &str =
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// Pause between split writes: long enough for each to arrive on its own.
const GAP: Duration = Duration::from_millis(2);

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

fn answer(text: &str) -> String {
    chat_completion_json("upstream-model", text)
}

/// A `200` JSON answer framed by `content-length`.
fn json_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
const CHUNKED_JSON_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

/// `data` as chunks of `sizes` bytes (cycled), without the last chunk.
fn chunks(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut rest = data;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = size.min(rest.len());
        wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        wire.extend_from_slice(&rest[..n]);
        wire.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    wire
}

/// `data` as a complete chunked body: [`chunks`] then the last chunk.
fn chunked(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut wire = chunks(data, sizes);
    wire.extend_from_slice(b"0\r\n\r\n");
    wire
}

/// Where to cut a complete chunked body so that the writes split every part
/// of it: between the digits of two-digit sizes, between every CR and its
/// LF, inside chunk data, before each data CRLF, and inside the last chunk.
fn chunk_cuts(wire: &[u8]) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find(&wire[at..], b"\r\n").expect("a chunk-size line");
        let size = usize::from_str_radix(std::str::from_utf8(&wire[at..line_end]).unwrap(), 16)
            .expect("a hex chunk size");
        if line_end - at > 1 {
            cuts.push(at + 1);
        }
        cuts.push(line_end + 1);
        let data = line_end + 2;
        if size == 0 {
            // `0\r\n\r\n`: also between the two CRLFs and inside the last.
            cuts.extend([data, data + 1]);
            break;
        }
        if size > 1 {
            cuts.push(data + size / 2);
        }
        cuts.extend([data + size, data + size + 1]);
        at = data + size + 2;
        cuts.push(at);
    }
    cuts.retain(|&c| c > 0 && c < wire.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// `wire` written in pieces cut at `cuts`, with a [`GAP`] between writes.
fn split_writes(wire: &[u8], cuts: &[usize]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        if cut <= from {
            continue;
        }
        if !steps.is_empty() {
            steps.push(Step::Pause(GAP));
        }
        steps.push(Step::Write(wire[from..cut].to_vec()));
        from = cut;
    }
    steps
}

async fn router_for(raw: &RawUpstream) -> Router {
    Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", raw.base_url()),
        "",
    ))
    .await
}

/// A raw upstream whose first request gets `first` and every later one
/// `then` as a plain JSON answer, behind [`router_for`]'s router.
async fn first_then_json(first: Vec<Step>, then: &str) -> (RawUpstream, Router) {
    let then = then.to_owned();
    let raw = RawUpstream::start(move |i| match i {
        0 => first.clone(),
        _ => vec![Step::Write(json_response(&then))],
    })
    .await;
    let router = router_for(&raw).await;
    (raw, router)
}

fn assert_ok_body(reply: &Reply, expected: &str, what: &str) {
    assert_eq!(reply.status, 200, "{what}: body {:?}", reply.text());
    assert!(
        reply.body == expected.as_bytes(),
        "{what}: the body is not byte-exact\n got ({} bytes): {:?}\nwant ({} bytes): {:?}",
        reply.body.len(),
        truncate(&reply.text()),
        expected.len(),
        truncate(expected)
    );
}

fn truncate(text: &str) -> String {
    if text.len() <= 400 {
        return text.to_owned();
    }
    let mut end = 400;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Splits an SSE body into its events (each without the blank line).
fn events(text: &str) -> Vec<&str> {
    text.split("\n\n").filter(|e| !e.is_empty()).collect()
}

/// Checks that `rest` is exactly one `data: {"error":…}` event with `code`,
/// and returns the error object.
fn assert_one_error_event(rest: &str, code: &str) -> serde_json::Value {
    let evs = events(rest);
    assert_eq!(evs.len(), 1, "exactly one event must follow; got {rest:?}");
    assert!(rest.ends_with("\n\n"), "the event is terminated: {rest:?}");
    let data = evs[0]
        .strip_prefix("data: ")
        .unwrap_or_else(|| panic!("not a data event: {:?}", evs[0]));
    let value: serde_json::Value =
        serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data:?}"));
    let error = &value["error"];
    assert_eq!(error["code"], code, "{value}");
    assert!(
        !rest.contains("[DONE]"),
        "no [DONE] after an error: {rest:?}"
    );
    error.clone()
}

/// Many small content pieces, for streams of many events.
fn pieces(n: usize) -> Vec<String> {
    (0..n).map(|i| format!(" tok{i}")).collect()
}

fn sse_body(n: usize) -> String {
    let pieces = pieces(n);
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    chat_chunks("upstream-model", &refs, false).concat()
}

// ---------------------------------------------------------------------------
// Keep-alive
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sequential_answers_share_one_connection_and_arrive_byte_exact() {
    init_tracing();
    // Sizes across the read buffer's (8 KiB, growing): tiny to 70 KB.
    let sizes = [2usize, 100, 9_000, 70_000, 5];
    let answers: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| answer(&format!("{i}{}", "x".repeat(n))))
        .collect();
    let raw = RawUpstream::start({
        let answers = answers.clone();
        move |i| vec![Step::Write(json_response(&answers[i]))]
    })
    .await;
    let router = router_for(&raw).await;

    for (i, expected) in answers.iter().enumerate() {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_ok_body(&reply, expected, &format!("answer {i}"));
    }

    assert_eq!(raw.request_conns(), [0, 0, 0, 0, 0]);
    assert_eq!(raw.connections(), 1, "one keep-alive connection for all");
}

#[tokio::test]
async fn a_burst_of_small_chunks_in_one_write_is_relayed_exactly_and_the_connection_reused() {
    init_tracing();
    let sse = sse_body(30);
    let after = answer("after the stream");
    // The head and every chunk, 1 to 64 bytes each, in one write.
    let mut wire = SSE_HEAD.as_bytes().to_vec();
    wire.extend(chunked(sse.as_bytes(), &[7, 1, 13, 64, 3, 2]));
    let (raw, router) = first_then_json(vec![Step::Write(wire)], &after).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;
    assert_ok_body(&reply, &sse, "the stream");
    assert!(reply.text().ends_with("data: [DONE]\n\n"));
    assert_eq!(
        events(&reply.text()).len(),
        33,
        "role, 30 tokens, stop, [DONE]"
    );

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &after, "the answer after the stream");
    assert_eq!(raw.request_conns(), [0, 0]);
    assert_eq!(raw.connections(), 1);
}

#[tokio::test]
async fn chunk_framing_split_across_paused_writes_is_relayed_exactly_and_the_connection_reused() {
    init_tracing();
    let sse = sse_body(8);
    let after = answer("after the split stream");
    let head = SSE_HEAD.as_bytes();
    let body = chunked(sse.as_bytes(), &[17, 31, 64, 255, 1]);
    let mut wire = head.to_vec();
    wire.extend_from_slice(&body);
    // Cut the head too: inside a header, and between its two CRLFs.
    let mut cuts = vec![20, head.len() - 2];
    cuts.extend(chunk_cuts(&body).into_iter().map(|c| c + head.len()));
    let (raw, router) = first_then_json(split_writes(&wire, &cuts), &after).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;
    assert_ok_body(&reply, &sse, "the split stream");
    assert!(reply.text().ends_with("data: [DONE]\n\n"));

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &after, "the answer after the split stream");
    assert_eq!(raw.request_conns(), [0, 0]);
    assert_eq!(raw.connections(), 1);
}

#[test]
fn chunk_cuts_split_every_part_of_a_chunked_body() {
    let wire = chunked(b"0123456789abcdefXYZ", &[17, 2]);
    assert_eq!(wire, b"11\r\n0123456789abcdefX\r\n2\r\nYZ\r\n0\r\n\r\n");
    let pieces: Vec<String> = split_writes(&wire, &chunk_cuts(&wire))
        .into_iter()
        .filter_map(|step| match step {
            Step::Write(w) => Some(String::from_utf8(w).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(
        pieces,
        [
            "1",
            "1\r",
            "\n01234567",
            "89abcdefX",
            "\r",
            "\n",
            "2\r",
            "\nY",
            "Z",
            "\r",
            "\n",
            "0\r",
            "\n",
            "\r",
            "\n"
        ]
    );
}

#[tokio::test]
async fn chunk_extensions_and_trailers_are_consumed_and_the_connection_reused() {
    init_tracing();
    let body = answer("with trailers");
    let (a, b) = body.split_at(10);
    let wire = format!(
        "{CHUNKED_JSON_HEAD}{:X};name=value\r\n{a}\r\n{:x} ; x=\"y\"\r\n{b}\r\n0\r\nx-trailer: 1\r\nx-other: 2\r\n\r\n",
        a.len(),
        b.len()
    );
    let (raw, router) = first_then_json(vec![Step::Write(wire.into_bytes())], &body).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the chunked answer");
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the next answer");
    assert_eq!(raw.request_conns(), [0, 0]);
}

#[tokio::test]
async fn a_large_chunked_body_arrives_exact_and_the_connection_reused() {
    init_tracing();
    // 300 KB in chunks of 100 KB and odd sizes: larger than the largest read.
    let big = answer(&"0123456789abcdef".repeat(20_000));
    let raw = RawUpstream::start({
        let big = big.clone();
        move |_| {
            let mut wire = CHUNKED_JSON_HEAD.as_bytes().to_vec();
            wire.extend(chunked(big.as_bytes(), &[100_000, 4_093, 1]));
            vec![Step::Write(wire)]
        }
    })
    .await;
    let router = router_for(&raw).await;

    for i in 0..2 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_ok_body(&reply, &big, &format!("large answer {i}"));
    }
    assert_eq!(raw.request_conns(), [0, 0]);
}

// ---------------------------------------------------------------------------
// When a connection is not reused
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_close_delimited_body_is_relayed_whole_and_the_next_request_opens_a_new_connection() {
    init_tracing();
    let body = answer(&"close-delimited ".repeat(2_000));
    let after = answer("after the close");
    let (a, b) = body.split_at(body.len() / 3);
    let (raw, router) = first_then_json(
        vec![
            Step::Write(
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{a}")
                    .into_bytes(),
            ),
            Step::Pause(Duration::from_millis(20)),
            Step::Write(b.as_bytes().to_vec()),
            Step::Close,
        ],
        &after,
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the close-delimited answer");
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &after, "the next answer");
    assert_eq!(raw.request_conns(), [0, 1]);
    assert_eq!(raw.connections(), 2);
}

#[tokio::test]
async fn answers_with_connection_close_or_http_1_0_are_not_reused() {
    init_tracing();
    let body = answer("ok");
    // None of these answers closes the connection itself: only the client
    // decides not to reuse it.
    let raw = RawUpstream::start({
        let body = body.clone();
        move |i| {
            let head = match i {
                0 => "HTTP/1.1 200 OK\r\nconnection: close\r\n",
                1 => "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n",
                2 => "HTTP/1.0 200 OK\r\n",
                _ => "HTTP/1.1 200 OK\r\n",
            };
            vec![Step::Write(
                format!(
                    "{head}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes(),
            )]
        }
    })
    .await;
    let router = router_for(&raw).await;

    for i in 0..5 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_ok_body(&reply, &body, &format!("answer {i}"));
    }
    assert_eq!(
        raw.request_conns(),
        [0, 1, 2, 3, 3],
        "a new connection after each closing answer, then one reused"
    );
}

/// RFC 9112 §6.3: with both, `transfer-encoding` wins, and an intermediary
/// must remove the `content-length` before forwarding.
#[tokio::test]
async fn an_answer_with_both_chunked_and_content_length_is_relayed_whole_and_not_reused() {
    init_tracing();
    let body = answer("chunked wins");
    let mut wire = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    wire.extend(chunked(body.as_bytes(), &[50]));
    let (raw, router) = first_then_json(vec![Step::Write(wire)], &body).await;

    for i in 0..2 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_ok_body(&reply, &body, &format!("answer {i}"));
    }
    assert_eq!(raw.request_conns(), [0, 1]);
}

#[tokio::test]
async fn bytes_after_a_complete_body_keep_the_connection_out_of_the_pool() {
    init_tracing();
    let first = answer("first");
    let second = answer("second");
    // An unasked-for second answer right behind the first.
    let mut wire = json_response(&first);
    wire.extend(json_response(&answer("STALE")));
    let (raw, router) = first_then_json(vec![Step::Write(wire)], &second).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &first, "the first answer");
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &second, "the second answer (never the stale one)");
    assert_eq!(raw.request_conns(), [0, 1]);
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_reused() {
    init_tracing();
    let body = answer("ok");
    // A keep-alive answer, then the upstream's idle timeout.
    let (raw, router) = first_then_json(
        vec![
            Step::Write(json_response(&body)),
            Step::Pause(Duration::from_millis(50)),
            Step::Close,
        ],
        &body,
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the first answer");
    poll_until(
        "the upstream to close the idle connection",
        WITHIN,
        Duration::from_millis(5),
        || async { (raw.server_closes() == 1).then_some(()) },
    )
    .await;
    // Give the FIN a moment to reach the router's end (no measurement).
    tokio::time::sleep(Duration::from_millis(20)).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the answer after the close");
    assert_eq!(raw.request_conns(), [0, 1]);
    assert_eq!(raw.connections(), 2);
}

#[tokio::test]
async fn a_connection_the_upstream_closes_right_after_answering_is_not_reused() {
    init_tracing();
    let body = answer("ok");
    // Keep-alive by its headers, but closed at once (as a server whose
    // keep-alive request limit was reached without saying so).
    let raw = RawUpstream::start({
        let body = body.clone();
        move |_| vec![Step::Write(json_response(&body)), Step::Close]
    })
    .await;
    let router = router_for(&raw).await;

    for i in 0..5 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_ok_body(&reply, &body, &format!("answer {i}"));
    }
    assert_eq!(raw.request_conns(), [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn an_idle_connection_with_unasked_for_bytes_is_not_reused() {
    init_tracing();
    let body = answer("ok");
    // A keep-alive answer, then (idle) an answer nobody asked for;
    // the connection stays open.
    let (raw, router) = first_then_json(
        vec![
            Step::Write(json_response(&body)),
            Step::Pause(Duration::from_millis(20)),
            Step::Write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n".to_vec()),
        ],
        &body,
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the first answer");
    poll_until(
        "the upstream to send its unasked-for answer",
        WITHIN,
        Duration::from_millis(5),
        || async { (raw.answered() == 1).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the next answer (never the 408)");
    assert_eq!(raw.request_conns(), [0, 1]);
}

#[tokio::test]
async fn a_stream_the_client_leaves_closes_its_upstream_connection_which_is_not_reused() {
    init_tracing();
    let sse = chat_chunks("upstream-model", &["Hel", "lo"], false);
    let after = answer("after the left stream");
    // Two events and then nothing: the stream is still open.
    let mut wire = SSE_HEAD.as_bytes().to_vec();
    wire.extend(chunks(sse[..2].concat().as_bytes(), &[1000]));
    let (raw, router) =
        first_then_json(vec![Step::Write(wire), Step::AwaitPeerClose], &after).await;

    let mut stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(stream.status, 200);
    stream.read_until(r#""content":"Hel""#).await;
    drop(stream);
    poll_until(
        "the upstream connection to be closed",
        WITHIN,
        Duration::from_millis(5),
        || async { (raw.peer_closes() == 1).then_some(()) },
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &after, "the answer after the left stream");
    assert_eq!(raw.request_conns(), [0, 1]);
}

#[tokio::test]
async fn concurrent_requests_open_a_connection_each_and_both_are_pooled() {
    init_tracing();
    let body = answer("ok");
    let raw = RawUpstream::start({
        let body = body.clone();
        move |i| match i {
            // The first two answer only once both requests are in.
            0 | 1 => vec![Step::AwaitRequests(2), Step::Write(json_response(&body))],
            _ => vec![Step::Write(json_response(&body))],
        }
    })
    .await;
    let router = router_for(&raw).await;
    let url = router.url("/v1/chat/completions");

    let (a, b) = tokio::join!(post_json(&url, CHAT), post_json(&url, CHAT));
    assert_ok_body(&a, &body, "concurrent answer a");
    assert_ok_body(&b, &body, "concurrent answer b");
    assert_eq!(raw.connections(), 2);
    // Both went back to the pool: two at once again need no new connection.
    let (a, b) = tokio::join!(post_json(&url, CHAT), post_json(&url, CHAT));
    assert_ok_body(&a, &body, "pooled answer a");
    assert_ok_body(&b, &body, "pooled answer b");
    let mut conns = raw.request_conns();
    assert_eq!(conns.len(), 4);
    conns[2..].sort_unstable();
    assert_eq!(conns[2..], [0, 1], "both pooled connections were reused");
    assert_eq!(raw.connections(), 2);
}

// ---------------------------------------------------------------------------
// Broken answers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_chunked_stream_cut_after_the_first_token_ends_with_one_interrupted_error_event() {
    init_tracing();
    let events_sent = chat_chunks("upstream-model", &["Hel", "lo", " there"], false);
    let relayed = events_sent[..2].concat(); // role, "Hel"
    let after = answer("after the cut");
    let mut first = SSE_HEAD.as_bytes().to_vec();
    first.extend(chunks(events_sent[0].as_bytes(), &[1000]));
    first.extend(chunks(events_sent[1].as_bytes(), &[1000]));
    // The next chunk announces the whole event but carries 10 bytes.
    let next = events_sent[2].as_bytes();
    let mut cut = format!("{:x}\r\n", next.len()).into_bytes();
    cut.extend_from_slice(&next[..10]);
    let (raw, router) = first_then_json(
        vec![
            Step::Write(first),
            Step::Pause(Duration::from_millis(20)),
            Step::Write(cut),
            Step::Close,
        ],
        &after,
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    assert!(
        text.starts_with(&relayed),
        "the events before the cut arrive unchanged; got {text:?}"
    );
    let error = assert_one_error_event(&text[relayed.len()..], "upstream_stream_interrupted");
    assert!(
        error["message"].as_str().unwrap().contains("`up`"),
        "{error}"
    );

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &after, "the answer after the cut");
    assert_eq!(
        raw.request_conns(),
        [0, 1],
        "nothing retried; a new connection next"
    );
}

#[tokio::test]
async fn a_chunked_stream_cut_between_chunks_ends_with_one_interrupted_error_event() {
    init_tracing();
    let events_sent = chat_chunks("upstream-model", &["Hel", "lo"], false);
    let relayed = events_sent[..3].concat(); // role, "Hel", "lo"
    let raw = RawUpstream::start({
        let relayed = relayed.clone();
        move |_| {
            // Whole chunks, no last chunk, then the close.
            let mut wire = SSE_HEAD.as_bytes().to_vec();
            wire.extend(chunks(relayed.as_bytes(), &[40]));
            vec![Step::Write(wire), Step::Close]
        }
    })
    .await;
    let router = router_for(&raw).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    assert!(text.starts_with(&relayed), "got {text:?}");
    assert_one_error_event(&text[relayed.len()..], "upstream_stream_interrupted");
}

#[tokio::test]
async fn a_content_length_body_cut_short_is_an_error_for_the_client() {
    init_tracing();
    let body = answer(&"truncated ".repeat(100));
    let raw = RawUpstream::start({
        let body = body.clone();
        move |_| {
            let mut wire = json_response(&body);
            wire.truncate(wire.len() - body.len() / 2);
            vec![Step::Write(wire), Step::Close]
        }
    })
    .await;
    let router = router_for(&raw).await;

    // A whole answer is read to its end before it commits: the cut is an
    // attempt that failed (the next target would be tried), never a short 200.
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("broke off before its end"), "{message}");
    assert_eq!(raw.requests().len(), 1);
}

#[tokio::test]
async fn a_chunked_json_body_cut_before_its_last_chunk_is_an_error_for_the_client() {
    init_tracing();
    let body = answer("cut chunked json");
    let raw = RawUpstream::start({
        let body = body.clone();
        move |_| {
            let mut wire = CHUNKED_JSON_HEAD.as_bytes().to_vec();
            wire.extend(chunks(body.as_bytes(), &[30]));
            vec![Step::Write(wire), Step::Close]
        }
    })
    .await;
    let router = router_for(&raw).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("broke off before its end"), "{message}");
}

#[tokio::test]
async fn a_malformed_response_head_is_a_502_naming_the_upstream() {
    init_tracing();
    let after = answer("after the garbage");
    // Garbage, and the connection left open.
    let (raw, router) =
        first_then_json(vec![Step::Write(b"garbage\r\n\r\n".to_vec())], &after).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("upstream `up`"), "{message}");
    assert!(
        message.contains("malformed HTTP response head"),
        "{message}"
    );
    assert_eq!(raw.requests().len(), 1, "not retried on the same upstream");

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &after, "the answer after the garbage");
    assert_eq!(
        raw.request_conns(),
        [0, 1],
        "the broken connection is not reused"
    );
}

#[tokio::test]
async fn a_head_the_upstream_closes_in_the_middle_of_is_a_502() {
    init_tracing();
    let raw = RawUpstream::start(|_| {
        vec![
            Step::Write(b"HTTP/1.1 200 OK\r\ncontent-type: appl".to_vec()),
            Step::Close,
        ]
    })
    .await;
    let router = router_for(&raw).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("upstream `up`"), "{message}");
    assert!(
        message.contains("in the middle of the response head"),
        "{message}"
    );
}

#[tokio::test]
async fn a_large_response_head_is_read_and_one_past_64_kib_is_a_502() {
    init_tracing();
    let body = answer("big head");
    let big = "h".repeat(20_000);
    let raw = RawUpstream::start({
        let (body, big) = (body.clone(), big.clone());
        move |i| {
            let value = if i == 0 { big.clone() } else { "x".repeat(70_000) };
            let wire = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-big: {value}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes();
            // Written in 1000-byte pieces, so the head arrives in many reads.
            let cuts: Vec<usize> = (1..wire.len() / 1000).map(|k| k * 1000).collect();
            split_writes(&wire, &cuts)
        }
    })
    .await;
    let router = router_for(&raw).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_ok_body(&reply, &body, "the answer with a 20 KB header");
    assert_eq!(reply.header("x-big").as_deref(), Some(big.as_str()));

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("upstream `up`"), "{message}");
    assert!(message.contains("larger than 64 KiB"), "{message}");
}

/// RFC 9110 §8.6: `Content-Length = 1*DIGIT`.
#[tokio::test]
async fn a_content_length_that_is_not_digits_is_a_502() {
    init_tracing();
    let raw = RawUpstream::start(|i| {
        let length = ["+5", "5x", "-5", "0x5"][i % 4];
        vec![Step::Write(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{{}}   "
            )
            .into_bytes(),
        )]
    })
    .await;
    let router = router_for(&raw).await;

    let mut wrong = Vec::new();
    for length in ["+5", "5x", "-5", "0x5"] {
        let result = try_send(
            "POST",
            &router.url("/v1/chat/completions"),
            &[("content-type", "application/json")],
            CHAT,
        )
        .await;
        let message = result.as_ref().ok().and_then(|reply| {
            (reply.status == 502)
                .then(|| reply.json()["error"]["message"].as_str().map(str::to_owned))
                .flatten()
        });
        if !message
            .is_some_and(|m| m.contains("upstream `up`") && m.contains("invalid content-length"))
        {
            wrong.push(format!(
                "content-length {length}: {:?}",
                result.map(|r| (r.status, r.header("content-length"), r.text()))
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "not a 502 naming the upstream:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn an_invalid_chunk_size_before_the_first_token_is_a_502() {
    init_tracing();
    let raw = RawUpstream::start(|_| {
        vec![Step::Write(
            format!("{SSE_HEAD}zz\r\ndata: {{}}\r\n").into_bytes(),
        )]
    })
    .await;
    let router = router_for(&raw).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("upstream `up`"), "{message}");
    assert!(message.contains("invalid chunk size"), "{message}");
}

#[tokio::test]
async fn an_invalid_chunk_size_in_a_json_body_is_an_error_for_the_client() {
    init_tracing();
    let raw = RawUpstream::start(|_| {
        vec![Step::Write(
            format!("{CHUNKED_JSON_HEAD}5\r\n{{\"id\"\r\nzz\r\nmore\r\n0\r\n\r\n").into_bytes(),
        )]
    })
    .await;
    let router = router_for(&raw).await;

    // The first piece of a JSON body is read at the commit: a chunk error
    // there is a 502 (the attempt failed); later, a broken body.
    let result = try_send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[("content-type", "application/json")],
        CHAT,
    )
    .await;
    if let Ok(reply) = result {
        assert_openai_error(&reply, 502, "upstream_unreachable");
    }
}

#[tokio::test]
async fn an_interim_100_continue_and_103_are_skipped() {
    init_tracing();
    let body = answer("after the interim answers");
    let raw = RawUpstream::start({
        let body = body.clone();
        move |i| match i {
            0 => vec![
                Step::Write(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
                Step::Pause(Duration::from_millis(10)),
                Step::Write(b"HTTP/1.1 103 Early Hints\r\nlink: </hint>\r\n\r\n".to_vec()),
                Step::Pause(Duration::from_millis(10)),
                Step::Write(json_response(&body)),
            ],
            // Interim and final answer in one write.
            1 => {
                let mut wire = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
                wire.extend(json_response(&body));
                vec![Step::Write(wire)]
            }
            _ => vec![Step::Write(json_response(&body))],
        }
    })
    .await;
    let router = router_for(&raw).await;

    for i in 0..3 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_ok_body(&reply, &body, &format!("answer {i}"));
        assert_eq!(reply.header("link"), None, "interim headers are dropped");
    }
    assert_eq!(raw.request_conns(), [0, 0, 0]);
}

// ---------------------------------------------------------------------------
// The request on the wire
// ---------------------------------------------------------------------------

/// Checks the framing of `seen`: request line, one `host`, one correct
/// `content-length`, no `transfer-encoding` or `connection`, and the body.
fn assert_request_framing(seen: &Seen, port: u16, expected_body: &[u8]) {
    let first = seen.head.split("\r\n").next().unwrap_or_default();
    assert_eq!(first, "POST /v1/chat/completions HTTP/1.1", "{}", seen.head);
    assert_eq!(
        seen.headers("host"),
        [format!("127.0.0.1:{port}")],
        "{}",
        seen.head
    );
    assert_eq!(
        seen.headers("content-length"),
        [expected_body.len().to_string()],
        "{}",
        seen.head
    );
    assert!(
        seen.headers("transfer-encoding").is_empty(),
        "{}",
        seen.head
    );
    assert!(seen.headers("connection").is_empty(), "{}", seen.head);
    assert!(
        seen.body == expected_body,
        "the body went up changed: {} bytes, want {}",
        seen.body.len(),
        expected_body.len()
    );
}

#[tokio::test]
async fn the_request_goes_up_with_host_content_length_and_the_exact_body() {
    init_tracing();
    let ok = answer("ok");
    let raw = RawUpstream::start({
        let ok = ok.clone();
        move |_| vec![Step::Write(json_response(&ok))]
    })
    .await;
    let router = router_for(&raw).await;
    let port = raw.addr.port();
    let model_up = |body: &str| body.replacen(r#""model":"m""#, r#""model":"upstream-model""#, 1);

    // Small (written with the head) and large (past 64 KiB, written after it).
    let small = r#"{"model":"m", "messages":[{"role":"user","content":"h\u00e9 \"q\""}],"n":1.50}"#;
    let large = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "large body ".repeat(20_000)
    );
    for body in [small, large.as_str()] {
        let reply = post_json(&router.url("/v1/chat/completions"), body).await;
        assert_ok_body(&reply, &ok, "the answer");
    }
    // A chunked request from the client goes up with a content-length.
    let chunked_request = {
        let mut wire = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            router.base.trim_start_matches("http://")
        )
        .into_bytes();
        wire.extend(chunked(CHAT.as_bytes(), &[9]));
        wire
    };
    let reply = raw_exchange(&router.base, &chunked_request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let seen = raw.requests();
    assert_eq!(seen.len(), 3);
    assert_request_framing(&seen[0], port, model_up(small).as_bytes());
    assert_request_framing(&seen[1], port, model_up(&large).as_bytes());
    assert_request_framing(&seen[2], port, model_up(CHAT).as_bytes());
    assert_eq!(raw.request_conns(), [0, 0, 0]);
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_https_base_url_to_a_plain_server_fails_the_tls_handshake_with_a_502() {
    init_tracing();
    // The first upstream TLS connection fixes the router's roots for the
    // whole test process: add the upstream_tls tests' CA before it.
    trust_test_ca();
    let raw = RawUpstream::start(|_| vec![Step::Write(json_response(&answer("plain")))]).await;
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("https://{}/v1", raw.addr),
        "",
    ))
    .await;

    let reply = tokio::time::timeout(WITHIN, post_json(&router.url("/v1/chat/completions"), CHAT))
        .await
        .expect("the handshake failure is answered within the deadline");

    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("cannot connect to upstream `up`"),
        "a connect error: {message}"
    );
    assert!(message.contains("TLS handshake failed"), "{message}");
    assert!(raw.requests().is_empty(), "no plain request was sent");
    let hellos = raw.not_http();
    assert_eq!(hellos.len(), 1, "one TLS attempt");
    assert_eq!(hellos[0][0], 0x16, "it began with a TLS handshake record");
}

// ---------------------------------------------------------------------------
// Health probes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn health_probes_read_their_answer_and_reuse_one_connection() {
    init_tracing();
    let raw = RawUpstream::start(|_| {
        vec![Step::Write(json_response(
            r#"{"object":"list","data":[{"id":"upstream-model","object":"model"}]}"#,
        ))]
    })
    .await;
    let _router = Router::start(&format!(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    \
         health_check: {{ interval: 50ms }}\nmodels:\n  m:\n    targets: [{{ upstream: up, model: upstream-model }}]\n",
        raw.base_url()
    ))
    .await;
    poll_until(
        "four health probes",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async { (raw.answered() >= 4).then_some(()) },
    )
    .await;
    assert!(
        raw.requests()
            .iter()
            .all(|seen| seen.head.starts_with("GET /v1/models HTTP/1.1\r\n")),
        "only probes were sent"
    );
    assert_eq!(
        raw.connections(),
        1,
        "every probe after the first reused the kept-alive connection"
    );
}
