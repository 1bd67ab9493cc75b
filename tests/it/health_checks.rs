//! Active health checks feed planning: an upstream whose probe fails moves
//! behind the others until it answers again.

use std::time::Duration;

use crate::support::*;

fn config(a: &MockUpstream, b: &MockUpstream) -> String {
    format!(
        r#"upstreams:
  a:
    provider: openai-compatible
    base_url: {a}/v1
    health_check: {{ interval: 100ms }}
  b:
    provider: openai-compatible
    base_url: {b}/v1
    health_check: false
models:
  m:
    strategy: priority
    targets: [{{ upstream: a, model: a-model }}, {{ upstream: b, model: b-model }}]
"#,
        a = a.base_url(),
        b = b.base_url()
    )
}

async fn wait_for_state(router: &Router, upstream: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ready = client::get(&router.url("/health/ready")).await.json();
        let found = ready["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == upstream && u["state"] == state);
        if found {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{upstream} never became {state}: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_upstream_failing_its_health_check_is_tried_after_the_others() {
    init_tracing();
    // `a` answers chat requests but fails its probe (GET /v1/models).
    let a = MockUpstream::start_with(|request: &Recorded| {
        if request.method == http::Method::GET {
            openai_error(503, "loading model", "server_error", "")
        } else {
            Behaviour::Json(chat_completion_json("a-model", "from a"))
        }
    })
    .await;
    let b = MockUpstream::start(Behaviour::Json(chat_completion_json("b-model", "from b"))).await;
    let router = Router::start(&config(&a, &b)).await;

    wait_for_state(&router, "a", "down").await;
    let reply = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","messages":[]}"#,
    )
    .await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("b/b-model")
    );
    assert_eq!(reply.header("x-switchyard-attempts").as_deref(), Some("1"));
    let status = client::get(&router.url("/status")).await.json();
    let a_status = status["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "a")
        .unwrap()
        .clone();
    assert!(
        a_status["last_error"].as_str().unwrap().contains("503"),
        "{a_status}"
    );
}

#[tokio::test]
async fn a_healthy_probe_keeps_the_priority_order() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::Json(chat_completion_json("a-model", "from a"))).await;
    let b = MockUpstream::start(Behaviour::Json(chat_completion_json("b-model", "from b"))).await;
    let router = Router::start(&config(&a, &b)).await;

    wait_for_state(&router, "a", "up").await;
    let reply = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","messages":[]}"#,
    )
    .await;

    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("a/a-model")
    );
    assert_eq!(b.request_count(), 0);
}
