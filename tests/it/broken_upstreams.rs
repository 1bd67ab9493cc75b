//! Upstreams that break the rules or stall: every relayed body is bounded
//! by the upstream's `timeouts.idle` and `timeouts.total`, error answers
//! included, and a reply the router cannot frame is a 502 naming the
//! upstream. Each case is followed by a normal request on the same pool.

use std::time::Duration;

use tokio::time::Instant;

use crate::support;
use crate::support::client::{post_json, try_send};
use crate::support::extra::assert_openai_error;
use crate::support::raw_upstream::{RawUpstream, Step};
use crate::support::{chat_completion_json, init_tracing, one_model, Router};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

fn ok_answer() -> Vec<u8> {
    let body = chat_completion_json("upstream-model", "fine");
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A raw upstream whose first answer is `first` and every later one a
/// normal 200, behind a router with short idle/total timeouts.
async fn setup(first: Vec<Step>) -> (RawUpstream, Router) {
    let raw = RawUpstream::start(move |i| {
        if i == 0 {
            first.clone()
        } else {
            vec![Step::Write(ok_answer())]
        }
    })
    .await;
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", raw.base_url()),
        "    timeouts: { first_byte: 2s, first_token: 2s, idle: 300ms, total: 2s }\n",
    ))
    .await;
    (raw, router)
}

async fn assert_next_request_served(router: &Router) {
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains("fine"));
}

/// Sends `body` to the chat endpoint; the answer (or the transport error)
/// must come within 3 s, whatever the upstream stalls.
async fn send_within_3s(router: &Router, body: &str) -> Result<support::Reply, String> {
    let started = Instant::now();
    let reply = try_send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[("content-type", "application/json")],
        body.to_owned(),
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "the client was held {waited:?}"
    );
    reply
}

#[tokio::test]
async fn an_error_answer_whose_body_stalls_ends_at_the_idle_timeout() {
    init_tracing();
    let (_raw, router) = setup(vec![
        Step::Write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"error\":{".to_vec(),
        ),
        Step::Pause(Duration::from_secs(30)),
    ])
    .await;
    let reply = send_within_3s(&router, CHAT).await;
    assert!(
        reply.is_err(),
        "a cut error body must not look complete: {reply:?}"
    );
    assert_next_request_served(&router).await;
}

#[tokio::test]
async fn an_sse_error_answer_that_stalls_ends_at_the_idle_timeout() {
    init_tracing();
    let (_raw, router) = setup(vec![
        Step::Write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n1d\r\ndata: {\"error\":\"slow down\"}\n\n\r\n".to_vec(),
        ),
        Step::Pause(Duration::from_secs(30)),
    ])
    .await;
    let reply = send_within_3s(&router, r#"{"model":"m","stream":true,"messages":[]}"#).await;
    let reply = reply.expect("an SSE answer ends with an error event");
    assert_eq!(reply.status, 400);
    let text = reply.text();
    assert!(text.contains("slow down"), "{text}");
    assert!(text.contains("upstream_idle_timeout"), "{text}");
    assert_next_request_served(&router).await;
}

#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_a_502_naming_the_upstream() {
    init_tracing();
    let (_raw, router) = setup(vec![
        Step::Write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: gzip\r\n\r\n\x1f\x8b\x08\x00binary".to_vec(),
        ),
        Step::Close,
    ])
    .await;
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`up`"), "{message}");
    assert!(message.contains("transfer coding"), "{message}");
    assert_next_request_served(&router).await;
}

#[tokio::test]
async fn a_pooled_connection_closed_as_it_is_reused_is_retried_once_on_a_new_one() {
    init_tracing();
    // Answer 0 normally (the connection is pooled); take request 1 on that
    // connection and close without a byte, as an upstream closing an idle
    // connection at that moment does; answer everything after.
    let raw = RawUpstream::start(|i| {
        if i == 1 {
            vec![Step::Close]
        } else {
            vec![Step::Write(ok_answer())]
        }
    })
    .await;
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", raw.base_url()),
        "",
    ))
    .await;
    for _ in 0..2 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.header("x-switchyard-attempts").as_deref(),
            Some("1"),
            "the resend is not an attempt"
        );
    }
    assert_eq!(
        raw.request_conns(),
        [0, 0, 1],
        "request 1 went again on a new connection"
    );
    let metrics = support::client::get(&router.url("/metrics")).await.text();
    let counted: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_upstream_errors_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(counted.is_empty(), "not an upstream failure: {counted:?}");
}

#[tokio::test]
async fn an_http_1_0_upstream_does_not_downgrade_the_clients_connection() {
    init_tracing();
    let body = chat_completion_json("upstream-model", "old");
    let answer = format!(
        "HTTP/1.0 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (_raw, router) = setup(vec![Step::Write(answer.into_bytes()), Step::Close]).await;
    let mut conn = tokio::net::TcpStream::connect(router.base.trim_start_matches("http://"))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{CHAT}",
        CHAT.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    // The same connection serves the next request.
    conn.write_all(request.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        n > 0 && buf.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn a_non_stream_answer_whose_first_body_bytes_are_broken_is_a_502_with_a_body() {
    init_tracing();
    let (_raw, router) = setup(vec![
        Step::Write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
                .to_vec(),
        ),
        Step::Close,
    ])
    .await;
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    assert!(
        error["message"].as_str().unwrap().contains("`up`"),
        "{error}"
    );
    assert_next_request_served(&router).await;
}

#[tokio::test]
async fn an_upstream_error_that_quotes_the_routers_key_reaches_the_client_masked() {
    init_tracing();
    let body = r#"{"error":{"message":"Incorrect API key provided: sk-test-router-key-123456. You can find your key at …","type":"invalid_request_error","code":"invalid_api_key"}}"#;
    let answer = format!(
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let raw = RawUpstream::start(move |_| vec![Step::Write(answer.clone().into_bytes())]).await;
    let router = Router::start(&one_model(
        "openai",
        &format!("{}/v1", raw.base_url()),
        "    api_key: sk-test-router-key-123456\n",
    ))
    .await;
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let text = reply.text();
    assert!(!text.contains("sk-test-router-key-123456"), "{text}");
    assert!(
        text.contains("Incorrect API key provided: [key hidden by switchyard]."),
        "{text}"
    );
    assert_eq!(
        reply.status, 401,
        "the upstream's own answer, passed through"
    );
}

#[tokio::test]
async fn a_204_with_a_body_does_not_poison_the_next_pooled_request() {
    init_tracing();
    // The body after a 204 is not part of the answer; on a pooled
    // connection it would be read as the next answer's head.
    let (raw, router) = setup(vec![Step::Write(
        b"HTTP/1.1 204 No Content\r\ncontent-length: 40\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno"
            .to_vec(),
    )])
    .await;
    let first = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_eq!(first.status, 204);
    assert_next_request_served(&router).await;
    assert_eq!(
        raw.connections(),
        2,
        "the connection with stray bytes was not reused"
    );
}

#[tokio::test]
async fn an_sse_error_answer_that_quotes_the_routers_key_is_masked_too() {
    init_tracing();
    let event = "data: {\"error\":{\"message\":\"bad key sk-test-router-key-654321\"}}\n\n";
    let answer = format!(
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{event}",
        event.len()
    );
    let raw = RawUpstream::start(move |_| vec![Step::Write(answer.clone().into_bytes())]).await;
    let router = Router::start(&one_model(
        "openai",
        &format!("{}/v1", raw.base_url()),
        "    api_key: sk-test-router-key-654321\n",
    ))
    .await;
    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 401);
    let text = reply.text();
    assert!(!text.contains("sk-test-router-key-654321"), "{text}");
    assert!(
        text.contains("bad key [key hidden by switchyard]"),
        "{text}"
    );
}
