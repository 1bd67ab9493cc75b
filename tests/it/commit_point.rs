//! The commit point (ARCHITECTURE.md, "The request path"): a streamed answer commits
//! on the first SSE data frame that carries content. Content-less frames
//! before it are held and released in order at commit; a failure before it
//! (a cut, an error frame, a stream with no content) moves on to the next
//! attempt, and the client never sees the failed attempt's bytes.

use crate::support::client::{open_stream, post_json};
use crate::support::{chat_chunks, init_tracing, Behaviour, Gate, MockUpstream, Router};

const PRIMARY_STREAM: &str =
    r#"{"model":"primary","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// `primary` served by `first`, falling back to `secondary` served by `second`.
fn fallback_yaml(first: &MockUpstream, second: &MockUpstream) -> String {
    format!(
        r#"
upstreams:
  first: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
  second: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  primary:
    targets: [{{ upstream: first, model: first-model }}]
    fallbacks: [secondary]
  secondary:
    targets: [{{ upstream: second, model: second-model }}]
"#,
        first.base_url(),
        second.base_url()
    )
}

async fn fallback_serves_after(first: Behaviour) {
    let good = chat_chunks("second-model", &["Fine", " answer"], false);
    let first = MockUpstream::start(first).await;
    let second = MockUpstream::start(Behaviour::sse(good.clone())).await;
    let router = Router::start(&fallback_yaml(&first, &second)).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY_STREAM).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.text(),
        good.concat(),
        "the client sees only the fallback's stream"
    );
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("second/second-model")
    );
}

#[tokio::test]
async fn a_stream_cut_before_its_first_token_falls_back_to_the_next_model() {
    init_tracing();
    let role_only = chat_chunks("first-model", &[], false)[0].clone();
    fallback_serves_after(Behaviour::SseCut {
        chunks: vec![role_only],
    })
    .await;
}

#[tokio::test]
async fn an_error_frame_before_the_first_token_falls_back_to_the_next_model() {
    init_tracing();
    fallback_serves_after(Behaviour::sse(vec![
        r#"data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#.to_owned()
            + "\n\n",
    ]))
    .await;
}

#[tokio::test]
async fn a_stream_without_any_content_falls_back_to_the_next_model() {
    init_tracing();
    let role_only = chat_chunks("first-model", &[], false)[0].clone();
    fallback_serves_after(Behaviour::sse(vec![
        role_only,
        "data: [DONE]\n\n".to_owned(),
    ]))
    .await;
}

#[tokio::test]
async fn content_less_frames_before_the_first_token_arrive_in_order_unchanged() {
    init_tracing();
    let pieces = chat_chunks("first-model", &["Hel", "lo"], true);
    // Keep-alive comment, role-only chunk, then content held behind the gate.
    let frames = vec![
        ": keep-alive\n\n".to_owned(),
        pieces[0].clone(),
        pieces[1].clone(),
        pieces[2..].concat(),
    ];
    let gate = Gate::new();
    let first = MockUpstream::start(Behaviour::SseGated {
        chunks: frames.clone(),
        gate: gate.clone(),
    })
    .await;
    let second = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let router = Router::start(&fallback_yaml(&first, &second)).await;

    // The response starts only at the commit point (the first content
    // chunk), so release the role-only chunk and the first content chunk
    // before waiting for the headers.
    gate.release();
    gate.release();
    let mut stream = open_stream(&router.url("/v1/chat/completions"), &[], PRIMARY_STREAM).await;
    assert_eq!(stream.status, 200);
    let mut received = stream.read_until(r#""content":"Hel""#).await;
    gate.release();
    received.push_str(&String::from_utf8_lossy(&stream.rest().await.unwrap()));

    assert_eq!(received, frames.concat());
    assert_eq!(second.request_count(), 0);
}
