//! Bytes pass through (ARCHITECTURE.md, invariants 1 and 2): what the upstream sends
//! reaches the client unchanged and as it arrives, and what the client sends
//! reaches the upstream unchanged except for the model name.

use crate::support;
use crate::support::client::{open_stream, post_json, send};
use crate::support::{
    chat_chunks, chat_completion_json, init_tracing, one_model, Behaviour, Gate, MockUpstream,
    Router,
};

/// A one-model router (`m` served as `upstream-model`) in front of `mock`,
/// addressed as an OpenAI-compatible server.
async fn router_for(mock: &MockUpstream) -> Router {
    Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", mock.base_url()),
        "",
    ))
    .await
}

/// A mock answering every request with an `ok` chat completion from
/// `upstream-model`, behind [`router_for`]'s router.
async fn ok_upstream() -> (MockUpstream, Router) {
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let router = router_for(&mock).await;
    (mock, router)
}

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_STREAM: &str =
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn a_non_stream_answer_reaches_the_client_byte_for_byte_with_its_headers() {
    init_tracing();
    let body = chat_completion_json("upstream-model", "Hello, \"world\" — ünïcödé 🚀");
    let mock = MockUpstream::start(Behaviour::Status {
        status: 200,
        body: body.clone(),
        headers: vec![
            ("openai-processing-ms".into(), "123".into()),
            ("x-request-id".into(), "req_from_upstream_1".into()),
            ("x-ratelimit-remaining-tokens".into(), "9999".into()),
        ],
    })
    .await;
    let router = router_for(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, body.as_bytes(), "body must be byte-identical");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reply.header("openai-processing-ms").as_deref(), Some("123"));
    assert_eq!(
        reply.header("x-ratelimit-remaining-tokens").as_deref(),
        Some("9999")
    );
    assert_eq!(
        reply.header("x-upstream-request-id").as_deref(),
        Some("req_from_upstream_1"),
        "the upstream's request id is kept under another name"
    );
    let ours = reply.header("x-request-id").expect("an x-request-id");
    assert_ne!(ours, "req_from_upstream_1", "our request id wins");
}

#[tokio::test]
async fn an_sse_stream_reaches_the_client_byte_for_byte() {
    init_tracing();
    let chunks = chat_chunks(
        "upstream-model",
        &["Hel", "lo", ", \"wörld\"", "\n", " 🚀"],
        false,
    );
    let mock = MockUpstream::start(Behaviour::sse(chunks.clone())).await;
    let router = router_for(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(reply.text(), chunks.concat());
    assert!(reply.text().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn a_stream_with_include_usage_passes_through_unchanged_usage_chunk_included() {
    init_tracing();
    let chunks = chat_chunks("upstream-model", &["A", "B", "C"], true);
    let mock = MockUpstream::start(Behaviour::sse(chunks.clone())).await;
    let router = router_for(&mock).await;
    let request = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;

    let reply = post_json(&router.url("/v1/chat/completions"), request).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), chunks.concat());
    let sent = mock.last_request().expect("the mock got the request");
    assert_eq!(
        sent.json()["stream_options"],
        serde_json::json!({"include_usage": true}),
        "the client's stream_options reach the upstream"
    );
}

#[tokio::test]
async fn streaming_is_incremental_chunk_two_is_not_needed_to_read_chunk_one() {
    init_tracing();
    let pieces = chat_chunks("upstream-model", &["Hel", "lo", " world"], false);
    // The first upstream frame carries content, so it is past any commit point.
    let frames = vec![
        format!("{}{}", pieces[0], pieces[1]),
        pieces[2].clone(),
        pieces[3].clone(),
        pieces[4..].concat(),
    ];
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: frames.clone(),
        gate: gate.clone(),
    })
    .await;
    let router = router_for(&mock).await;

    let mut stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(stream.status, 200);
    tracing::info!("reading chunk 1 while the upstream holds chunk 2");
    let mut received = stream.read_until(r#""content":"Hel""#).await;
    assert!(
        !received.contains(r#""content":"lo""#),
        "chunk 2 cannot have been sent yet"
    );

    tracing::info!("releasing chunk 2");
    gate.release();
    received.push_str(&stream.read_until(r#""content":"lo""#).await);
    gate.release_n(2);
    let rest = stream.rest().await.expect("the stream ends cleanly");
    received.push_str(&String::from_utf8_lossy(&rest));

    assert_eq!(received, frames.concat());
}

#[tokio::test]
async fn the_model_rewrite_changes_only_the_model_value() {
    init_tracing();
    let (mock, router) = ok_upstream().await;
    let before = "{\n  \"messages\" : [ {\"role\":\"user\",\"content\":\"Grüße, 世界! \\u00e9 \\ud83d\\ude00 \\\"quoted\\\" \\/ \\n\"} ],\n\t\"model\"\t:\t";
    let after = concat!(
        " ,\r\n  \"temperature\": 0.2, \"top_p\": 1e0, \"presence_penalty\": -0.0, \"max_tokens\": 100,\n",
        "  \"x_future_field\": {\"nested\": [1, 2.50, null, false, {}, []], \"model\": \"not-me\"},\n",
        "  \"tools\": [{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":",
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}],\n",
        "  \"tool_choice\": \"auto\",\n",
        "  \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"w\", \"schema\": {\"type\": \"object\"}}},\n",
        "  \"stream\": false, \"user\": null, \"logit_bias\": {\"50256\": -100}\n}\n"
    );
    let body = format!("{before}\"m\"{after}");
    let expected = format!("{before}\"upstream-model\"{after}");

    let reply = post_json(&router.url("/v1/chat/completions"), &body).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = mock.last_request().expect("the mock got the request");
    assert_eq!(
        sent.text(),
        expected,
        "only the model value may change on the way up"
    );
    assert_eq!(
        sent.header("content-length").as_deref(),
        Some(expected.len().to_string().as_str())
    );
}

#[tokio::test]
async fn without_a_model_override_the_body_is_forwarded_unchanged() {
    init_tracing();
    let mock =
        MockUpstream::start(Behaviour::Json(chat_completion_json("qwen2.5:0.5b", "ok"))).await;
    let yaml = format!(
        r#"
upstreams:
  local:
    provider: openai-compatible
    base_url: {}/v1
    health_check: false
models:
  "qwen2.5:0.5b":
    targets: [{{ upstream: local }}]
"#,
        mock.base_url()
    );
    let router = Router::start(&yaml).await;
    let body = "{ \"model\" :\"qwen2.5:0.5b\",\n\t\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],  \"temperature\":0.70, \"n\":null }  ";

    let reply = post_json(&router.url("/v1/chat/completions"), body).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(mock.last_request().unwrap().text(), body);
}

#[tokio::test]
async fn the_callers_request_id_is_echoed_and_forwarded_upstream() {
    init_tracing();
    let (mock, router) = ok_upstream().await;

    let reply = send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("x-request-id", "trace-abc-123"),
        ],
        CHAT,
    )
    .await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-request-id").as_deref(),
        Some("trace-abc-123")
    );
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.headers.get_all("x-request-id").iter().count(), 1);
    assert_eq!(
        sent.header("x-request-id").as_deref(),
        Some("trace-abc-123")
    );
}

#[tokio::test]
async fn a_request_id_is_generated_when_the_caller_sends_none() {
    init_tracing();
    let (mock, router) = ok_upstream().await;

    let first = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    let second = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    let first_id = first
        .header("x-request-id")
        .expect("a generated request id");
    let second_id = second
        .header("x-request-id")
        .expect("a generated request id");
    assert!(!first_id.is_empty());
    assert_ne!(first_id, second_id, "each request gets its own id");
    let sent = mock.requests();
    assert_eq!(sent[0].header("x-request-id"), Some(first_id));
    assert_eq!(sent[1].header("x-request-id"), Some(second_id));
}

#[tokio::test]
async fn an_overlong_caller_request_id_is_replaced() {
    init_tracing();
    let (mock, router) = ok_upstream().await;
    let long = "x".repeat(500);

    let reply = send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("x-request-id", long.as_str()),
        ],
        CHAT,
    )
    .await;

    let id = reply.header("x-request-id").expect("an x-request-id");
    assert_ne!(id, long);
    assert_eq!(
        mock.last_request().unwrap().header("x-request-id"),
        Some(id)
    );
}

#[tokio::test]
async fn the_response_names_the_target_and_the_attempt_count() {
    init_tracing();
    let (_mock, router) = ok_upstream().await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("up/upstream-model")
    );
    assert_eq!(reply.header("x-switchyard-attempts").as_deref(), Some("1"));
}

#[tokio::test]
async fn paths_without_the_v1_prefix_are_served_too() {
    init_tracing();
    let (mock, router) = ok_upstream().await;

    let reply = post_json(&router.url("/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(mock.last_request().unwrap().path(), "/v1/chat/completions");
}

#[tokio::test]
async fn each_endpoint_is_routed_by_the_body_model_to_the_same_path_upstream() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::Json(r#"{"from":"a"}"#.into())).await;
    let b = MockUpstream::start(Behaviour::Json(r#"{"from":"b"}"#.into())).await;
    let yaml = format!(
        r#"
upstreams:
  a: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
  b: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  model-a: {{ targets: [{{ upstream: a }}] }}
  model-b: {{ targets: [{{ upstream: b, model: served-by-b }}] }}
"#,
        a.base_url(),
        b.base_url()
    );
    let router = Router::start(&yaml).await;

    for path in [
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/chat/completions",
    ] {
        let to_b = post_json(&router.url(path), r#"{"model":"model-b","input":"x"}"#).await;
        assert_eq!(to_b.status, 200, "{path}: {}", to_b.text());
        assert_eq!(to_b.text(), r#"{"from":"b"}"#, "{path}");
        let seen = b.last_request().unwrap();
        assert_eq!(seen.path(), path, "b saw the wrong path");
        assert_eq!(seen.text(), r#"{"model":"served-by-b","input":"x"}"#);

        let to_a = post_json(&router.url(path), r#"{"input":"y","model":"model-a"}"#).await;
        assert_eq!(to_a.text(), r#"{"from":"a"}"#, "{path}");
        assert_eq!(
            a.last_request().unwrap().path(),
            path,
            "a saw the wrong path"
        );
    }
    assert_eq!(a.request_count(), 4);
    assert_eq!(b.request_count(), 4);
}

#[tokio::test]
async fn a_large_body_with_the_model_last_is_forwarded_exactly() {
    init_tracing();
    let (mock, router) = ok_upstream().await;
    let history: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                r#"{{"role":"user","content":"message {i}: {}"}}"#,
                "ü".repeat(500)
            )
        })
        .collect();
    let before = format!(r#"{{"messages":[{}],"model":"#, history.join(","));
    let body = format!(r#"{before}"m"}}"#);
    let expected = format!(r#"{before}"upstream-model"}}"#);
    assert!(body.len() > 2_000_000, "a body of a few MiB");

    let reply = post_json(&router.url("/v1/chat/completions"), &body).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = mock.last_request().unwrap();
    assert!(
        sent.body == expected.as_bytes(),
        "the large body changed beyond the model"
    );
}

#[tokio::test]
async fn an_http2_client_gets_the_same_bytes_as_an_http1_client() {
    init_tracing();
    let chunks = chat_chunks("upstream-model", &["over", " h2c"], true);
    let mock = MockUpstream::start_with({
        let chunks = chunks.clone();
        move |req: &support::Recorded| {
            if req.text().contains(r#""stream":true"#) {
                Behaviour::sse(chunks.clone())
            } else {
                Behaviour::Json(chat_completion_json("upstream-model", "over h2c"))
            }
        }
    })
    .await;
    let router = router_for(&mock).await;
    let url = router.url("/v1/chat/completions");

    let mut whole = support::extra::H2Stream::post(&url, CHAT).await;
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.rest().await,
        chat_completion_json("upstream-model", "over h2c").as_bytes()
    );

    let mut streamed = support::extra::H2Stream::post(&url, CHAT_STREAM).await;
    assert_eq!(streamed.status, 200);
    assert_eq!(
        streamed.headers.get("content-type").unwrap(),
        "text/event-stream"
    );
    assert_eq!(streamed.rest().await, chunks.concat().as_bytes());
}
