//! `inject_stream_usage`: usage asked for upstream, the extra usage event
//! removed before the client sees it, tokens still counted.

use std::time::Duration;

use crate::support::*;

fn config(mock: &MockUpstream, inject: bool) -> String {
    format!(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n    inject_stream_usage: {inject}\nmodels:\n  m:\n    targets: [{{ upstream: up }}]\n",
        mock.base_url()
    )
}

/// A mock that streams usage only when the request asks for it, as OpenAI does.
async fn usage_aware_mock() -> MockUpstream {
    MockUpstream::start_with(|request: &Recorded| {
        let asked = request.json()["stream_options"]["include_usage"] == true;
        Behaviour::sse(chat_chunks("m", &["Hel", "lo"], asked))
    })
    .await
}

fn tokens(metrics: &str, kind: &str) -> String {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("switchyard_tokens_total{") && l.contains(&format!("type=\"{kind}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("missing")
        .to_owned()
}

#[tokio::test]
async fn injected_usage_is_counted_and_its_event_removed() {
    init_tracing();
    let mock = usage_aware_mock().await;
    let router = Router::start(&config(&mock, true)).await;

    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let reply = client::post_json(&router.url("/v1/chat/completions"), body).await;

    assert_eq!(reply.status, 200);
    let sent = mock.requests()[0].json();
    assert_eq!(
        sent["stream_options"],
        serde_json::json!({"include_usage": true})
    );
    // The client gets every event the upstream sent except the usage-only one.
    let upstream: Vec<String> = chat_chunks("m", &["Hel", "lo"], true);
    let expected: String = upstream
        .iter()
        .filter(|e| !e.contains(r#""choices":[]"#))
        .cloned()
        .collect();
    assert_eq!(reply.text(), expected);
    assert!(reply.text().ends_with("data: [DONE]\n\n"));

    // The tokens were counted from the removed event (11 prompt, 7 completion).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = client::get(&router.url("/metrics")).await.text();
        if tokens(&metrics, "prompt") == "11" {
            assert_eq!(tokens(&metrics, "completion"), "7");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tokens never counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_asked_for_usage_gets_the_stream_untouched() {
    init_tracing();
    let mock = usage_aware_mock().await;
    let router = Router::start(&config(&mock, true)).await;

    let body =
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let reply = client::post_json(&router.url("/v1/chat/completions"), body).await;

    assert_eq!(mock.requests()[0].text(), body);
    assert_eq!(
        reply.text(),
        chat_chunks("m", &["Hel", "lo"], true).concat()
    );
}

#[tokio::test]
async fn without_the_setting_the_request_and_stream_are_untouched() {
    init_tracing();
    let mock = usage_aware_mock().await;
    let router = Router::start(&config(&mock, false)).await;

    let body = r#"{"model":"m","stream":true,"messages":[]}"#;
    let reply = client::post_json(&router.url("/v1/chat/completions"), body).await;

    assert_eq!(mock.requests()[0].text(), body);
    assert_eq!(
        reply.text(),
        chat_chunks("m", &["Hel", "lo"], false).concat()
    );
}

#[tokio::test]
async fn non_stream_requests_are_not_edited() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "hi"))).await;
    let router = Router::start(&config(&mock, true)).await;

    let body = r#"{"model":"m","messages":[]}"#;
    let reply = client::post_json(&router.url("/v1/chat/completions"), body).await;

    assert_eq!(reply.status, 200);
    assert_eq!(mock.requests()[0].text(), body);
}
