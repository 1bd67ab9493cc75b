//! Streams end the right way: a client that leaves stops the upstream work
//! (ARCHITECTURE.md, invariant 8), an upstream that breaks after commit ends the stream with an
//! error event rather than silence, and a graceful shutdown lets streams in
//! flight finish.

use std::time::Duration;

use crate::support;
use crate::support::client::{open_stream, try_send};
use crate::support::extra::poll_until;
use crate::support::{chat_chunks, init_tracing, one_model, Behaviour, Gate, MockUpstream, Router};

const WAIT: Duration = Duration::from_secs(5);

const CHAT_STREAM: &str =
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

async fn router_for(mock: &MockUpstream) -> Router {
    Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", mock.base_url()),
        "",
    ))
    .await
}

/// Upstream frames whose first one already carries content ("Hel"), then
/// "lo", " world", and the finish chunk with `[DONE]`.
fn frames() -> Vec<String> {
    let pieces = chat_chunks("upstream-model", &["Hel", "lo", " world"], false);
    vec![
        format!("{}{}", pieces[0], pieces[1]),
        pieces[2].clone(),
        pieces[3].clone(),
        pieces[4..].concat(),
    ]
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_cancels_the_upstream_stream() {
    init_tracing();
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: frames(),
        gate: gate.clone(),
    })
    .await;
    let router = router_for(&mock).await;

    let mut stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(stream.status, 200);
    stream.read_until(r#""content":"Hel""#).await;
    assert_eq!(mock.cancelled_streams(), 0);

    tracing::info!("client leaves while the upstream still has chunks to send");
    drop(stream);

    assert!(
        mock.wait_for_cancelled_stream(WAIT).await,
        "the upstream stream must be dropped when the client leaves"
    );
}

#[tokio::test]
async fn several_clients_that_disconnect_each_cancel_their_upstream_stream() {
    init_tracing();
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: frames(),
        gate: gate.clone(),
    })
    .await;
    let router = router_for(&mock).await;

    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
        stream.read_until(r#""content":"Hel""#).await;
        streams.push(stream);
    }
    drop(streams);

    assert!(mock.wait_for_cancelled_streams(3, WAIT).await);
    // The router still serves after the cancellations.
    gate.release_n(100);
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(stream.rest().await.unwrap(), frames().concat());
}

#[tokio::test]
async fn an_upstream_cut_after_commit_ends_the_stream_with_one_error_event_and_no_done() {
    init_tracing();
    let sent = frames()[..2].to_vec();
    let mock = MockUpstream::start(Behaviour::SseCut {
        chunks: sent.clone(),
    })
    .await;
    let router = router_for(&mock).await;

    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(stream.status, 200);
    let body = stream
        .rest()
        .await
        .expect("the router ends the stream itself, with an event");
    let text = String::from_utf8(body.to_vec()).unwrap();

    assert!(
        text.starts_with(&sent.concat()),
        "what the upstream sent arrives first, unchanged: {text:?}"
    );
    let tail = &text[sent.concat().len()..];
    assert!(
        !text.contains("[DONE]"),
        "a broken stream is not done: {text:?}"
    );
    assert_eq!(
        text.matches(r#"data: {"error""#).count(),
        1,
        "exactly one error event: {text:?}"
    );
    let payload = tail
        .strip_prefix("data: ")
        .and_then(|t| t.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("the tail is one SSE event: {tail:?}"));
    let event: serde_json::Value = serde_json::from_str(payload).expect("a JSON error event");
    let error = &event["error"];
    assert_eq!(error["code"], "upstream_stream_interrupted");
    assert!(
        error["message"].as_str().unwrap().contains("`up`"),
        "{event}"
    );
    assert!(error["type"].is_string(), "{event}");
    assert!(error.get("param").is_some(), "{event}");
}

#[tokio::test]
async fn graceful_shutdown_lets_a_stream_in_flight_finish() {
    init_tracing();
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: frames(),
        gate: gate.clone(),
    })
    .await;
    let router = router_for(&mock).await;
    let health = router.url("/health");

    let mut stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let mut received = stream.read_until(r#""content":"Hel""#).await;

    tracing::info!("shutting down with a stream in flight");
    let shutdown = tokio::spawn(router.shutdown());
    poll_until(
        "the router to stop accepting new connections",
        WAIT,
        Duration::from_millis(20),
        || {
            let health = health.clone();
            async move { try_send("GET", &health, &[], "").await.err() }
        },
    )
    .await;

    tracing::info!("releasing the rest of the stream");
    gate.release_n(3);
    let rest = stream.rest().await.expect("the stream finishes cleanly");
    received.push_str(&String::from_utf8_lossy(&rest));

    assert_eq!(received, frames().concat());
    tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("shutdown completes once the stream is done")
        .expect("the shutdown task did not panic");
    assert_eq!(mock.cancelled_streams(), 0);
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_starts_closes_the_upstream_connection() {
    use tokio::io::AsyncReadExt;
    init_tracing();
    // A bare upstream that reads the request, never answers, and reports
    // when the router closes the connection.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let (got_request, request_seen) = tokio::sync::oneshot::channel();
    let (saw_close, closed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = Vec::new();
        let mut got_request = Some(got_request);
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        if let Some(tx) = got_request.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        }
        let _ = saw_close.send(());
    });
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("{upstream}/v1"),
        "",
    ))
    .await;
    let url = router.url("/v1/chat/completions");
    let client = tokio::spawn(async move { try_send("POST", &url, &[], CHAT_STREAM).await });
    tokio::time::timeout(WAIT, request_seen)
        .await
        .expect("the request reaches the upstream")
        .unwrap();

    tracing::info!("client leaves before any answer");
    client.abort();

    tokio::time::timeout(WAIT, closed)
        .await
        .expect("the router must close the upstream connection when the client leaves")
        .unwrap();
}

#[tokio::test]
async fn an_http2_client_that_resets_its_stream_cancels_the_upstream_stream() {
    init_tracing();
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: frames(),
        gate: gate.clone(),
    })
    .await;
    let router = router_for(&mock).await;

    let mut stream =
        support::extra::H2Stream::post(&router.url("/v1/chat/completions"), CHAT_STREAM).await;
    assert_eq!(stream.status, 200);
    stream.read_until(r#""content":"Hel""#).await;

    tracing::info!("dropping only the h2 stream; the connection stays open");
    drop(stream.body.take());

    assert!(
        mock.wait_for_cancelled_stream(WAIT).await,
        "an h2 RST_STREAM must stop the upstream stream"
    );
    drop(stream);
}

#[tokio::test]
async fn a_non_stream_answer_cut_short_fails_over_to_the_next_target_not_a_short_200() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    init_tracing();
    // A bare upstream that promises 200 bytes of JSON, sends 12, and closes.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 16 * 1024];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"id\":\"chat")
                .await
                .unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    let backup =
        MockUpstream::start(Behaviour::Json(support::chat_completion_json("b", "whole"))).await;
    let router = Router::start(&format!(
        "upstreams:\n  cut:\n    provider: openai-compatible\n    base_url: {upstream}/v1\n    health_check: false\n  backup:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\nmodels:\n  m:\n    strategy: priority\n    targets: [{{ upstream: cut }}, {{ upstream: backup, model: b }}]\n",
        backup.base_url()
    ))
    .await;

    // The cut answer is read to its end before it commits, so the next
    // target answers instead: the client gets one whole answer.
    let reply = support::client::send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[("content-type", "application/json")],
        r#"{"model":"m","messages":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("backup/b")
    );
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "whole");
}
