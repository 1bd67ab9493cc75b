//! Errors are answers (ARCHITECTURE.md, invariant 5): every error the router produces is
//! an OpenAI-format body with the right status and a useful message; an
//! upstream's own error passes through unchanged when no fallback is left;
//! failures before a response move on to the next target or fallback model;
//! and no input makes the router fall over.

use std::time::Duration;

use crate::support::client::{get, post_json, send, try_send};
use crate::support::extra::{assert_openai_error, dead_addr, raw_exchange};
use crate::support::{
    chat_completion_json, init_tracing, one_model, openai_error, Behaviour, MockUpstream, Router,
};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

fn ok_mock() -> Behaviour {
    Behaviour::Json(chat_completion_json("upstream-model", "ok"))
}

async fn router_for(mock: &MockUpstream) -> Router {
    Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", mock.base_url()),
        "",
    ))
    .await
}

// ---------------------------------------------------------------------------
// The client's mistakes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_a_400_invalid_json() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = router_for(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), r#"{"model": "m","#).await;

    assert_openai_error(&reply, 400, "invalid_json");
    assert_eq!(mock.request_count(), 0, "nothing goes upstream");
}

#[tokio::test]
async fn a_body_without_a_model_is_a_400_naming_the_model_param() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = router_for(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), r#"{"messages":[]}"#).await;

    let error = assert_openai_error(&reply, 400, "missing_required_parameter");
    assert_eq!(error["param"], "model");
    assert_eq!(error["type"], "invalid_request_error");
}

#[tokio::test]
async fn a_model_that_is_not_a_string_is_a_400_naming_the_model_param() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = router_for(&mock).await;

    for body in [
        r#"{"model":42,"messages":[]}"#,
        r#"{"model":null,"messages":[]}"#,
        r#"{"model":["m"],"messages":[]}"#,
    ] {
        let reply = post_json(&router.url("/v1/chat/completions"), body).await;
        let error = assert_openai_error(&reply, 400, "invalid_type");
        assert_eq!(error["param"], "model", "{body}");
    }
}

#[tokio::test]
async fn an_unknown_model_is_a_404_that_lists_the_available_names() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let yaml = format!(
        r#"
upstreams:
  up: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  gpt-4o-mini: {{ targets: [up] }}
  "qwen2.5:0.5b": {{ targets: [up] }}
"#,
        mock.base_url()
    );
    let router = Router::start(&yaml).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"gpt-5-ultra","messages":[]}"#,
    )
    .await;

    let error = assert_openai_error(&reply, 404, "model_not_found");
    assert_eq!(error["param"], "model");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("gpt-5-ultra"), "{message}");
    assert!(message.contains("gpt-4o-mini"), "{message}");
    assert!(message.contains("qwen2.5:0.5b"), "{message}");
}

#[tokio::test]
async fn an_unknown_path_is_a_404_unknown_url() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = router_for(&mock).await;

    // (`/` is the status page: a POST there is a 405, not a 404.)
    for path in ["/v1/nope", "/v2/chat/completions", "/nope", "/v1/models/"] {
        let reply = post_json(&router.url(path), CHAT).await;
        let error = assert_openai_error(&reply, 404, "unknown_url");
        assert!(
            error["message"].as_str().unwrap().contains(path),
            "{path}: {error}"
        );
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_with_an_allow_header() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = router_for(&mock).await;

    let reply = get(&router.url("/v1/chat/completions")).await;
    assert_openai_error(&reply, 405, "method_not_allowed");
    assert_eq!(reply.header("allow").as_deref(), Some("POST"));

    let reply = post_json(&router.url("/v1/models"), "{}").await;
    assert_openai_error(&reply, 405, "method_not_allowed");
    let allow = reply.header("allow").expect("an Allow header");
    assert!(allow.contains("GET"), "{allow}");

    let reply = send("DELETE", &router.url("/health"), &[], "").await;
    assert_openai_error(&reply, 405, "method_not_allowed");
    assert!(reply.header("allow").is_some());
}

const SMALL_LIMIT: &str = "server:\n  max_body_bytes: 1KiB\n";

async fn small_limit_router(mock: &MockUpstream) -> Router {
    let yaml = format!(
        "{SMALL_LIMIT}{}",
        one_model("openai-compatible", &format!("{}/v1", mock.base_url()), "")
    );
    Router::start(&yaml).await
}

fn padded_body(len: usize) -> String {
    let head = r#"{"model":"m","messages":[{"role":"user","content":""#;
    let tail = r#""}]}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

#[tokio::test]
async fn a_body_over_max_body_bytes_with_a_content_length_is_a_413() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = small_limit_router(&mock).await;

    let fits = post_json(&router.url("/v1/chat/completions"), &padded_body(1024)).await;
    assert_eq!(
        fits.status,
        200,
        "a body at the limit is fine: {}",
        fits.text()
    );

    let reply = post_json(&router.url("/v1/chat/completions"), &padded_body(4096)).await;
    let error = assert_openai_error(&reply, 413, "request_too_large");
    assert!(
        error["message"].as_str().unwrap().contains("1024"),
        "{error}"
    );
    assert_eq!(
        mock.request_count(),
        1,
        "the large body never went upstream"
    );
}

#[tokio::test]
async fn a_chunked_body_over_max_body_bytes_is_a_413() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = small_limit_router(&mock).await;
    let body = padded_body(4096);
    let mut request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: router\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for piece in body.as_bytes().chunks(500) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");

    let reply = raw_exchange(&router.base, &request).await;

    assert_openai_error(&reply, 413, "request_too_large");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_small_chunked_body_is_accepted() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = small_limit_router(&mock).await;
    let mut request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: router\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for piece in CHAT.as_bytes().chunks(10) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");

    let reply = raw_exchange(&router.base, &request).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        mock.last_request().unwrap().text(),
        r#"{"model":"upstream-model","messages":[{"role":"user","content":"hi"}]}"#
    );
}

// ---------------------------------------------------------------------------
// Router keys
// ---------------------------------------------------------------------------

async fn keyed_router(mock: &MockUpstream) -> Router {
    let yaml = format!(
        "server:\n  auth:\n    keys: [sk-router-test-1, sk-router-test-2]\n{}",
        one_model("openai-compatible", &format!("{}/v1", mock.base_url()), "")
    );
    Router::start(&yaml).await
}

#[tokio::test]
async fn a_missing_router_key_is_a_401() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = keyed_router(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_openai_error(&reply, 401, "invalid_api_key");

    let reply = get(&router.url("/v1/models")).await;
    assert_openai_error(&reply, 401, "invalid_api_key");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_wrong_router_key_is_a_401() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = keyed_router(&mock).await;

    for (name, value) in [
        ("authorization", "Bearer sk-router-test-3"),
        ("authorization", "Bearer sk-router-test-1x"),
        ("api-key", "sk-router-test"),
        ("authorization", "Basic c2stcm91dGVyLXRlc3QtMQ=="),
    ] {
        let reply = send(
            "POST",
            &router.url("/v1/chat/completions"),
            &[("content-type", "application/json"), (name, value)],
            CHAT,
        )
        .await;
        let error = assert_openai_error(&reply, 401, "invalid_api_key");
        assert!(
            !error.to_string().contains("sk-router-test-1"),
            "an error must not echo a key: {error}"
        );
    }
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn the_right_router_key_works_as_bearer_or_api_key_and_is_not_forwarded() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = keyed_router(&mock).await;

    for (name, value) in [
        ("authorization", "Bearer sk-router-test-1"),
        ("api-key", "sk-router-test-2"),
    ] {
        let reply = send(
            "POST",
            &router.url("/v1/chat/completions"),
            &[("content-type", "application/json"), (name, value)],
            CHAT,
        )
        .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        let sent = mock.last_request().unwrap();
        assert!(sent.header("authorization").is_none(), "{name} forwarded");
        assert!(sent.header("api-key").is_none(), "{name} forwarded");
    }
    let models = send(
        "GET",
        &router.url("/v1/models"),
        &[("authorization", "Bearer sk-router-test-2")],
        "",
    )
    .await;
    assert_eq!(models.status, 200);
}

#[tokio::test]
async fn health_stays_open_when_router_keys_are_set() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = keyed_router(&mock).await;

    let reply = get(&router.url("/health")).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
}

// ---------------------------------------------------------------------------
// Upstream failures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_naming_it_and_its_address() {
    init_tracing();
    let addr = dead_addr().await;
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("http://{addr}/v1"),
        "    api_key: sk-test-unreachable-secret-31337\n",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    assert!(
        !reply.text().contains("sk-test-unreachable-secret-31337"),
        "an error never carries an upstream key"
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`up`"), "names the upstream: {message}");
    assert!(message.contains(&addr), "names the address: {message}");
    assert!(message.contains("`m`"), "names the model: {message}");
}

#[tokio::test]
async fn an_upstream_that_resets_the_connection_is_a_502() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Reset).await;
    let router = router_for(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    assert!(
        error["message"].as_str().unwrap().contains("`up`"),
        "{error}"
    );
    assert!(mock.request_count() >= 1);
}

#[tokio::test]
async fn an_upstream_that_sends_nothing_before_first_byte_timeout_is_a_504() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Hang).await;
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", mock.base_url()),
        "    timeouts: { first_byte: 300ms }\n",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    let error = assert_openai_error(&reply, 504, "upstream_timeout");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("300ms"), "{message}");
    assert!(message.contains("timeouts.first_byte"), "{message}");
}

#[tokio::test]
async fn an_upstream_with_an_unset_key_variable_is_a_503_that_says_which() {
    init_tracing();
    const VAR: &str = "SWITCHYARD_TEST_ERRORS_UNSET_KEY_Q81Z";
    std::env::remove_var(VAR);
    let mock = MockUpstream::start(ok_mock()).await;
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", mock.base_url()),
        &format!("    api_key: ${{{VAR}}}\n"),
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    let error = assert_openai_error(&reply, 503, "upstream_not_configured");
    assert!(error["message"].as_str().unwrap().contains(VAR), "{error}");
    assert_eq!(reply.header("x-should-retry").as_deref(), Some("false"));
    assert_eq!(
        mock.request_count(),
        0,
        "a disabled upstream is never called"
    );
}

#[tokio::test]
async fn an_upstreams_own_error_passes_through_unchanged() {
    init_tracing();
    let upstream_error = openai_error(
        400,
        "This model's maximum context length is 128000 tokens.",
        "invalid_request_error",
        "context_length_exceeded",
    );
    let Behaviour::Status { body, .. } = upstream_error.clone() else {
        unreachable!()
    };
    let mock = MockUpstream::start(upstream_error).await;
    let router = router_for(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.text(), body);
}

#[tokio::test]
async fn an_upstream_429_with_retry_after_passes_through_when_no_target_is_left() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Status {
        status: 429,
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
        headers: vec![("retry-after".into(), "7".into())],
    })
    .await;
    let router = router_for(&mock).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after").as_deref(), Some("7"));
    assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        mock.request_count(),
        1,
        "a retry-after longer than retry.max_backoff is left to the client"
    );
}

// ---------------------------------------------------------------------------
// Moving on to the next target or fallback model
// ---------------------------------------------------------------------------

/// `primary` served by `first`, falling back to `secondary` served by `second`.
fn fallback_yaml(first: &str, second: &str) -> String {
    format!(
        r#"
upstreams:
  first: {{ provider: openai-compatible, base_url: "{first}/v1", health_check: false }}
  second: {{ provider: openai-compatible, base_url: "{second}/v1", health_check: false }}
models:
  primary:
    targets: [{{ upstream: first, model: first-model }}]
    fallbacks: [secondary]
  secondary:
    targets: [{{ upstream: second, model: second-model }}]
"#
    )
}

const PRIMARY: &str = r#"{"model":"primary","messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn a_connect_failure_moves_on_to_the_fallback_model() {
    init_tracing();
    let dead = format!("http://{}", dead_addr().await);
    let live =
        MockUpstream::start(Behaviour::Json(chat_completion_json("second-model", "ok"))).await;
    let router = Router::start(&fallback_yaml(&dead, &live.base_url())).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), chat_completion_json("second-model", "ok"));
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("second/second-model")
    );
    assert_eq!(reply.header("x-switchyard-attempts").as_deref(), Some("2"));
    assert_eq!(
        live.last_request().unwrap().json()["model"],
        "second-model",
        "the fallback gets its own upstream model name"
    );
}

#[tokio::test]
async fn a_connect_failure_moves_on_to_the_models_next_target() {
    init_tracing();
    let dead = dead_addr().await;
    let live = MockUpstream::start(ok_mock()).await;
    // The weights make the dead target first in all but one plan in a million.
    let yaml = format!(
        r#"
upstreams:
  dead: {{ provider: openai-compatible, base_url: "http://{dead}/v1", health_check: false }}
  live: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  m:
    targets:
      - {{ upstream: dead, weight: 1000000 }}
      - {{ upstream: live, weight: 1 }}
"#,
        live.base_url()
    );
    let router = Router::start(&yaml).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("live/m")
    );
    assert_eq!(reply.header("x-switchyard-attempts").as_deref(), Some("2"));
    assert_eq!(live.request_count(), 1);
}

#[tokio::test]
async fn an_upstream_503_moves_on_to_the_fallback_model() {
    init_tracing();
    let overloaded = MockUpstream::start(openai_error(503, "overloaded", "server_error", "")).await;
    let live =
        MockUpstream::start(Behaviour::Json(chat_completion_json("second-model", "ok"))).await;
    let router = Router::start(&fallback_yaml(&overloaded.base_url(), &live.base_url())).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), chat_completion_json("second-model", "ok"));
    // One same-target retry (retry.attempts defaults to 1), then the fallback.
    assert_eq!(overloaded.request_count(), 2);
    assert_eq!(live.request_count(), 1);
}

#[tokio::test]
async fn an_upstream_429_moves_on_to_the_fallback_model() {
    init_tracing();
    let limited = MockUpstream::start(openai_error(
        429,
        "Rate limit reached",
        "requests",
        "rate_limit_exceeded",
    ))
    .await;
    let live =
        MockUpstream::start(Behaviour::Json(chat_completion_json("second-model", "ok"))).await;
    let router = Router::start(&fallback_yaml(&limited.base_url(), &live.base_url())).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(live.request_count(), 1);
}

#[tokio::test]
async fn a_first_byte_timeout_moves_on_to_the_fallback_model() {
    init_tracing();
    let slow = MockUpstream::start(Behaviour::Hang).await;
    let live =
        MockUpstream::start(Behaviour::Json(chat_completion_json("second-model", "ok"))).await;
    let yaml = fallback_yaml(&slow.base_url(), &live.base_url()).replace(
        "first: { provider: openai-compatible,",
        "first: { timeouts: { first_byte: 300ms }, provider: openai-compatible,",
    );
    assert!(yaml.contains("300ms"));
    let router = Router::start(&yaml).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), chat_completion_json("second-model", "ok"));
    assert_eq!(slow.request_count(), 1);
}

#[tokio::test]
async fn an_upstream_with_an_unset_key_is_skipped_for_the_fallback() {
    init_tracing();
    const VAR: &str = "SWITCHYARD_TEST_ERRORS_SKIP_UNSET_N4T8";
    std::env::remove_var(VAR);
    let unused = MockUpstream::start(ok_mock()).await;
    let live =
        MockUpstream::start(Behaviour::Json(chat_completion_json("second-model", "ok"))).await;
    let yaml = fallback_yaml(&unused.base_url(), &live.base_url()).replace(
        "first: { provider: openai-compatible,",
        &format!("first: {{ api_key: \"${{{VAR}}}\", provider: openai-compatible,"),
    );
    assert!(yaml.contains(VAR));
    let router = Router::start(&yaml).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(unused.request_count(), 0);
    assert_eq!(live.request_count(), 1);
}

#[tokio::test]
async fn when_every_attempt_answers_5xx_the_last_answer_passes_through_unchanged() {
    init_tracing();
    let first =
        MockUpstream::start(openai_error(503, "first is overloaded", "server_error", "")).await;
    let last_behaviour = Behaviour::Status {
        status: 500,
        body:
            r#"{"error":{"message":"second broke","type":"server_error","param":null,"code":null}}"#
                .into(),
        headers: vec![("x-from".into(), "second".into())],
    };
    let second = MockUpstream::start(last_behaviour).await;
    let router = Router::start(&fallback_yaml(&first.base_url(), &second.base_url())).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.text(),
        r#"{"error":{"message":"second broke","type":"server_error","param":null,"code":null}}"#
    );
    assert_eq!(reply.header("x-from").as_deref(), Some("second"));
    // Each target: the attempt and one same-target retry.
    assert_eq!(first.request_count(), 2);
    assert_eq!(second.request_count(), 2);
}

#[tokio::test]
async fn an_upstream_5xx_answer_beats_a_later_connect_failure() {
    init_tracing();
    let first =
        MockUpstream::start(openai_error(503, "first is overloaded", "server_error", "")).await;
    let dead = format!("http://{}", dead_addr().await);
    let router = Router::start(&fallback_yaml(&first.base_url(), &dead)).await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["message"], "first is overloaded");
}

#[tokio::test]
async fn when_every_attempt_fails_to_connect_the_502_lists_each_attempt() {
    init_tracing();
    let dead_one = dead_addr().await;
    let dead_two = dead_addr().await;
    let router = Router::start(&fallback_yaml(
        &format!("http://{dead_one}"),
        &format!("http://{dead_two}"),
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), PRIMARY).await;

    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`first`") && message.contains(&dead_one),
        "{message}"
    );
    assert!(
        message.contains("`second`") && message.contains(&dead_two),
        "{message}"
    );
}

// ---------------------------------------------------------------------------
// Garbage in
// ---------------------------------------------------------------------------

/// A small deterministic generator (xorshift), so failures reproduce.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_bodies_get_400s_and_the_router_keeps_serving() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = router_for(&mock).await;
    let url = router.url("/v1/chat/completions");

    let mut bodies: Vec<Vec<u8>> = (1..=8u64)
        .map(|seed| random_bytes(seed * 7919, 64 * seed as usize))
        .collect();
    bodies.push(Vec::new());
    bodies.push(b"[".repeat(100_000));
    bodies.push(br#"{"a":"#.repeat(50_000));
    bodies.push(
        format!(
            r#"{{"model":"m","messages":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        )
        .into_bytes(),
    );
    bodies.push(b"\xEF\xBB\xBF{\"model\":\"m\"}".to_vec());
    bodies.push(b"{\"model\":\"m\xff\xfe\"}".to_vec());
    bodies.push(br#"{"model":"\ud800","messages":[]}"#.to_vec());
    bodies.push(br#"{"model":"m","model":"m"}"#.to_vec());
    bodies.push(b"null".to_vec());
    bodies.push(b"[]".to_vec());
    bodies.push(br#""m""#.to_vec());
    bodies.push(b"1e999999".to_vec());
    bodies.push(b"{\"model\":\"m\"}\0".to_vec());

    for (i, body) in bodies.into_iter().enumerate() {
        let reply = try_send("POST", &url, &[("content-type", "application/json")], body)
            .await
            .unwrap_or_else(|e| panic!("body #{i}: the router dropped the connection: {e}"));
        assert_eq!(reply.status, 400, "body #{i}: {}", reply.text());
        let error = reply.json();
        assert!(error["error"]["message"].is_string(), "body #{i}: {error}");
    }
    assert_eq!(mock.request_count(), 0, "no garbage went upstream");

    let health = get(&router.url("/health")).await;
    assert_eq!(health.status, 200);
    let good = post_json(&url, CHAT).await;
    assert_eq!(good.status, 200, "{}", good.text());
}

#[tokio::test]
async fn garbage_to_the_builtin_mock_gets_a_400_not_a_crash() {
    init_tracing();
    let router = Router::start(
        "upstreams:\n  builtin: { provider: mock }\nmodels:\n  demo: { targets: [builtin] }\n",
    )
    .await;

    for (path, body) in [
        (
            "/v1/chat/completions",
            r#"{"model":"demo","messages":"hi"}"#,
        ),
        ("/v1/chat/completions", r#"{"model":"demo"}"#),
        ("/v1/completions", r#"{"model":"demo","prompt":{"a":1}}"#),
        ("/v1/embeddings", r#"{"model":"demo","input":[]}"#),
        (
            "/v1/embeddings",
            r#"{"model":"demo","input":"x","dimensions":99999999}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"demo","messages":[{"role":"user","content":[{"type":"image_url"}]}],"max_tokens":0}"#,
        ),
    ] {
        let reply = try_send(
            "POST",
            &router.url(path),
            &[("content-type", "application/json")],
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("{path} {body}: the router dropped the connection: {e}"));
        assert!(
            reply.status == 200 || reply.status == 400,
            "{path} {body}: {} {}",
            reply.status,
            reply.text()
        );
        if reply.status == 400 {
            let _ = reply.json()["error"]["message"]
                .as_str()
                .expect("an error message");
        }
    }
    assert_eq!(get(&router.url("/health")).await.status, 200);
}

#[tokio::test]
async fn a_hanging_upstream_does_not_block_other_requests() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Hang).await;
    let router = router_for(&mock).await;
    let url = router.url("/v1/chat/completions");
    let hanging = tokio::spawn(async move { try_send("POST", &url, &[], CHAT).await });
    assert!(mock.wait_for_requests(1, Duration::from_secs(5)).await);

    let reply = post_json(&router.url("/v1/chat/completions"), "{").await;

    assert_openai_error(&reply, 400, "invalid_json");
    hanging.abort();
}
