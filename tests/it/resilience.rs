//! Resilience (ARCHITECTURE.md, "The request path", and docs/resilience.md): each way
//! an upstream can fail, before the commit point (the request moves on and
//! the client never notices) and after it (the stream ends with one error
//! event). Every test checks what the client saw, how many requests each
//! mock received, and the `x-switchyard-*` headers.
//!
//! Order is made deterministic with `strategy: priority` (file order), and
//! races are sequenced with gates and `wait_for_requests`, never with sleeps.

use std::time::Duration;

use crate::support::client::{get, post_json, try_send};
use crate::support::extra::{assert_openai_error, dead_addr, poll_until};
use crate::support::{
    chat_chunks, chat_completion_json, init_tracing, openai_error, Behaviour, Gate, MockUpstream,
    Reply, Router,
};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_STREAM: &str =
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// How long a test waits for something the router must do (a deadline for
/// failing, never a measurement).
const WITHIN: Duration = Duration::from_secs(5);

/// One upstream entry: name, base URL (without `/v1`), extra inline keys.
type Up<'a> = (&'a str, &'a str, &'a str);

/// A config with the given upstreams (all `openai-compatible`, health checks
/// off) and one model `m` whose targets are those upstreams in order, each
/// serving `<name>-model`. `model_extra` holds more keys of `m`, one per
/// line, unindented.
fn config(strategy: &str, upstreams: &[Up<'_>], model_extra: &str) -> String {
    let mut yaml = String::from("upstreams:\n");
    for (name, base, extra) in upstreams {
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(", {extra}")
        };
        yaml.push_str(&format!(
            "  {name}: {{ provider: openai-compatible, base_url: \"{base}/v1\", health_check: false{extra} }}\n"
        ));
    }
    yaml.push_str(&format!(
        "models:\n  m:\n    strategy: {strategy}\n    targets:\n"
    ));
    for (name, _, _) in upstreams {
        yaml.push_str(&format!(
            "      - {{ upstream: {name}, model: {name}-model }}\n"
        ));
    }
    for line in model_extra.lines().filter(|l| !l.trim().is_empty()) {
        yaml.push_str("    ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    yaml
}

/// `config("priority", …)`.
fn priority(upstreams: &[Up<'_>], model_extra: &str) -> String {
    config("priority", upstreams, model_extra)
}

/// A router whose model `m` tries `first` (with the inline upstream keys
/// `first_extra`), then `second`, by priority; `model_extra` as for
/// [`config`].
async fn first_then_second(
    first: &MockUpstream,
    first_extra: &str,
    second: &MockUpstream,
    model_extra: &str,
) -> Router {
    Router::start(&priority(
        &[
            ("first", &first.base_url(), first_extra),
            ("second", &second.base_url(), ""),
        ],
        model_extra,
    ))
    .await
}

/// `http://` + an address nobody listens on.
async fn dead() -> String {
    format!("http://{}", dead_addr().await)
}

fn answer(model: &str, text: &str) -> String {
    chat_completion_json(model, text)
}

fn json(model: &str, text: &str) -> Behaviour {
    Behaviour::Json(answer(model, text))
}

fn status_with(status: u16, body: &str, headers: &[(&str, &str)]) -> Behaviour {
    Behaviour::Status {
        status,
        body: body.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

fn rate_limited(retry_after: &str) -> Behaviour {
    status_with(429, RATE_LIMITED, &[("retry-after", retry_after)])
}

/// A role-only first chunk: held before the commit, never content.
fn role_only(model: &str) -> String {
    chat_chunks(model, &[], false)[0].clone()
}

/// A stream that sends its role-only chunk and then nothing (its gate is
/// never released).
fn stalled_stream(model: &str) -> Behaviour {
    Behaviour::SseGated {
        chunks: chat_chunks(model, &["never", " sent"], false),
        gate: Gate::new(),
    }
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply.header(name)
}

fn assert_served_by(reply: &Reply, target: &str, attempts: u32) {
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert_eq!(
        header(reply, "x-switchyard-target").as_deref(),
        Some(target),
        "x-switchyard-target"
    );
    assert_eq!(
        header(reply, "x-switchyard-attempts"),
        Some(attempts.to_string()),
        "x-switchyard-attempts"
    );
}

/// Splits an SSE body into its events (each without the blank line).
fn events(text: &str) -> Vec<&str> {
    text.split("\n\n").filter(|e| !e.is_empty()).collect()
}

/// Checks that `rest` is exactly one `data: {"error":…}` event with `code`,
/// and returns the error object.
fn assert_one_error_event(rest: &str, code: &str) -> serde_json::Value {
    let evs = events(rest);
    assert_eq!(
        evs.len(),
        1,
        "after the relayed chunks exactly one event must follow; got {rest:?}"
    );
    assert!(rest.ends_with("\n\n"), "the event is terminated: {rest:?}");
    let data = evs[0]
        .strip_prefix("data: ")
        .unwrap_or_else(|| panic!("not a data event: {:?}", evs[0]));
    let value: serde_json::Value =
        serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data:?}"));
    let error = &value["error"];
    assert_eq!(error["code"], code, "{value}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{value}"
    );
    assert!(error["type"].is_string(), "{value}");
    assert!(
        !rest.contains("[DONE]"),
        "no [DONE] after an error: {rest:?}"
    );
    error.clone()
}

// ---------------------------------------------------------------------------
// Before the commit: connection failures and timeouts
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_connection_on_the_first_target_is_served_by_the_second() {
    init_tracing();
    let dead = dead().await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = Router::start(&priority(
        &[("first", &dead, ""), ("second", &second.base_url(), "")],
        "",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(reply.text(), answer("second-model", "from second"));
    assert_eq!(second.request_count(), 1);
    assert_eq!(
        header(&reply, "x-should-retry"),
        None,
        "a 200 needs no advice"
    );
}

#[tokio::test]
async fn a_reset_before_the_response_head_moves_on_to_the_next_target() {
    init_tracing();
    let first = MockUpstream::start(Behaviour::Reset).await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(reply.text(), answer("second-model", "from second"));
    assert_eq!(
        first.request_count(),
        1,
        "a reset is not retried on the same target"
    );
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn a_hang_past_first_byte_moves_on_to_the_next_target() {
    init_tracing();
    let first = MockUpstream::start(Behaviour::Hang).await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "timeouts: { first_byte: 300ms }", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(reply.text(), answer("second-model", "from second"));
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

// ---------------------------------------------------------------------------
// Before the commit: statuses
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_429_with_retry_after_zero_is_retried_once_on_the_same_target() {
    init_tracing();
    let first = MockUpstream::start_sequence(vec![
        rate_limited("0"),
        json("first-model", "from first, second try"),
    ])
    .await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "first/first-model", 2);
    assert_eq!(
        reply.text(),
        answer("first-model", "from first, second try")
    );
    assert_eq!(first.request_count(), 2);
    assert_eq!(second.request_count(), 0);
}

#[tokio::test]
async fn a_failure_that_opens_the_circuit_moves_on_instead_of_retrying_the_same_target() {
    init_tracing();
    // One failure opens `first`'s circuit; `retry.attempts: 3` would
    // otherwise send three more requests to a target now known to be down
    // (each "as the last resort") before `second` was ever tried.
    let first = MockUpstream::start(status_with(503, "overloaded", &[])).await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(
        &first,
        "circuit_breaker: { failures: 1, cooldown: 60s }",
        &second,
        "retry: { attempts: 3, backoff: 1ms }",
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(
        first.request_count(),
        1,
        "no retry on the target whose circuit just opened"
    );
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn a_target_whose_circuit_stays_closed_is_still_retried() {
    init_tracing();
    // Two failures are needed to open it: the first 503 is retried there.
    let first = MockUpstream::start_sequence(vec![
        status_with(503, "overloaded", &[]),
        json("first-model", "from first, second try"),
    ])
    .await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(
        &first,
        "circuit_breaker: { failures: 2, cooldown: 60s }",
        &second,
        "retry: { attempts: 1, backoff: 1ms }",
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "first/first-model", 2);
    assert_eq!(first.request_count(), 2);
    assert_eq!(second.request_count(), 0);
}

#[tokio::test]
async fn a_429_asking_to_wait_longer_than_max_backoff_moves_to_the_next_target_without_waiting() {
    init_tracing();
    // `retry-after: 30` is far past `retry.max_backoff` (4s) and past the
    // client's 10 s deadline: sleeping on it would fail the test.
    let first = MockUpstream::start(rate_limited("30")).await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(reply.text(), answer("second-model", "from second"));
    assert_eq!(first.request_count(), 1, "not retried on the same target");
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn a_single_targets_429_passes_through_unchanged_with_its_retry_after() {
    init_tracing();
    let only = MockUpstream::start(rate_limited("30")).await;
    let router = Router::start(&priority(&[("only", &only.base_url(), "")], "")).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 429);
    assert_eq!(
        reply.text(),
        RATE_LIMITED,
        "the upstream's body, byte for byte"
    );
    assert_eq!(header(&reply, "retry-after").as_deref(), Some("30"));
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("1")
    );
    assert_eq!(
        header(&reply, "x-should-retry"),
        None,
        "after one attempt the retry is the client's to make"
    );
    assert_eq!(only.request_count(), 1);
}

#[tokio::test]
async fn a_429_retried_on_the_only_target_comes_back_with_x_should_retry_false() {
    init_tracing();
    let only = MockUpstream::start(rate_limited("0")).await;
    let router = Router::start(&priority(&[("only", &only.base_url(), "")], "")).await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 429);
    assert_eq!(reply.text(), RATE_LIMITED);
    assert_eq!(header(&reply, "retry-after").as_deref(), Some("0"));
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("2")
    );
    assert_eq!(header(&reply, "x-should-retry").as_deref(), Some("false"));
    assert_eq!(only.request_count(), 2);
}

#[tokio::test]
async fn a_5xx_is_retried_once_on_the_same_target_then_moves_to_the_next() {
    init_tracing();
    for code in [500u16, 503] {
        tracing::info!(code, "first target answers {code} every time");
        let first = MockUpstream::start(openai_error(code, "busy", "server_error", "")).await;
        let second = MockUpstream::start(json("second-model", "from second")).await;
        let router = first_then_second(&first, "", &second, "").await;

        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

        assert_served_by(&reply, "second/second-model", 3);
        assert_eq!(reply.text(), answer("second-model", "from second"));
        assert_eq!(
            first.request_count(),
            2,
            "{code}: the attempt and one retry"
        );
        assert_eq!(second.request_count(), 1, "{code}");
    }
}

#[tokio::test]
async fn with_retry_attempts_zero_a_5xx_moves_straight_to_the_next_target() {
    init_tracing();
    for code in [500u16, 503] {
        let first = MockUpstream::start(openai_error(code, "busy", "server_error", "")).await;
        let second = MockUpstream::start(json("second-model", "from second")).await;
        let router = first_then_second(&first, "", &second, "retry: { attempts: 0 }").await;

        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

        assert_served_by(&reply, "second/second-model", 2);
        assert_eq!(first.request_count(), 1, "{code}: no same-target retry");
        assert_eq!(second.request_count(), 1, "{code}");
    }
}

#[tokio::test]
async fn a_401_moves_on_to_the_next_target_without_a_retry() {
    init_tracing();
    let first = MockUpstream::start(openai_error(
        401,
        "Incorrect API key provided",
        "invalid_request_error",
        "invalid_api_key",
    ))
    .await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(reply.text(), answer("second-model", "from second"));
    assert_eq!(
        first.request_count(),
        1,
        "a 401 is not retried on the same target"
    );
    assert_eq!(second.request_count(), 1);
    // `/status` still answers and lists the upstream; it does not (yet)
    // expose the target's `misconfigured` flag, so that is not checked here.
    let status = get(&router.url("/status")).await.json();
    let names: Vec<&str> = status["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["first", "second"], "{status}");
}

#[tokio::test]
async fn an_upstream_error_answer_beats_a_later_connect_failure_and_passes_through_unchanged() {
    init_tracing();
    let body = r#"{"error":{"message":"first is overloaded","type":"server_error","param":null,"code":null}}"#;
    let first = MockUpstream::start(status_with(503, body, &[("x-from", "first")])).await;
    let dead = dead().await;
    let router = Router::start(&priority(
        &[("first", &first.base_url(), ""), ("second", &dead, "")],
        "",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 503);
    assert_eq!(reply.text(), body, "the upstream's answer, byte for byte");
    assert_eq!(header(&reply, "x-from").as_deref(), Some("first"));
    assert_eq!(
        header(&reply, "x-switchyard-target").as_deref(),
        Some("first/first-model")
    );
    // The attempt, its retry, and the connect failure at `second`.
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("3")
    );
    assert_eq!(header(&reply, "x-should-retry").as_deref(), Some("false"));
    assert_eq!(first.request_count(), 2);
}

// ---------------------------------------------------------------------------
// Context-window errors and the client's own mistakes
// ---------------------------------------------------------------------------

const CONTEXT_TOO_LONG: &str = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
const BAD_TEMPERATURE: &str = r#"{"error":{"message":"2.5 is greater than the maximum of 2 - 'temperature'","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}"#;

/// `m` on `small` (plus `other` when given) with `model_extra`; model `big`
/// on upstream `big`; model `spare` on upstream `spare`.
fn context_config(
    small: &str,
    other: Option<&str>,
    big: &str,
    spare: &str,
    model_extra: &str,
) -> String {
    let other_upstream = other
        .map(|o| format!("  other: {{ provider: openai-compatible, base_url: \"{o}/v1\", health_check: false }}\n"))
        .unwrap_or_default();
    let other_target = if other.is_some() {
        "      - { upstream: other, model: other-model }\n"
    } else {
        ""
    };
    let extra: String = model_extra
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("    {l}\n"))
        .collect();
    format!(
        r#"upstreams:
  small: {{ provider: openai-compatible, base_url: "{small}/v1", health_check: false }}
{other_upstream}  big: {{ provider: openai-compatible, base_url: "{big}/v1", health_check: false }}
  spare: {{ provider: openai-compatible, base_url: "{spare}/v1", health_check: false }}
models:
  m:
    strategy: priority
    targets:
      - {{ upstream: small, model: small-model }}
{other_target}{extra}  big:
    targets: [{{ upstream: big, model: big-model }}]
  spare:
    targets: [{{ upstream: spare, model: spare-model }}]
"#
    )
}

#[tokio::test]
async fn a_context_length_400_is_served_by_the_context_window_fallback() {
    init_tracing();
    let small = MockUpstream::start(status_with(400, CONTEXT_TOO_LONG, &[])).await;
    let big = MockUpstream::start(json("big-model", "from big")).await;
    let spare = MockUpstream::start(json("spare-model", "from spare")).await;
    let router = Router::start(&context_config(
        &small.base_url(),
        None,
        &big.base_url(),
        &spare.base_url(),
        "context_window_fallbacks: [big]\nfallbacks: [spare]",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "big/big-model", 2);
    assert_eq!(reply.text(), answer("big-model", "from big"));
    assert_eq!(header(&reply, "x-switchyard-model").as_deref(), Some("big"));
    assert_eq!(small.request_count(), 1);
    assert_eq!(big.request_count(), 1);
    assert_eq!(
        spare.request_count(),
        0,
        "context-window errors skip plain fallbacks"
    );
}

#[tokio::test]
async fn without_context_window_fallbacks_a_context_length_400_passes_through_unchanged() {
    init_tracing();
    let small = MockUpstream::start(status_with(400, CONTEXT_TOO_LONG, &[])).await;
    let other = MockUpstream::start(json("other-model", "from other")).await;
    let big = MockUpstream::start(json("big-model", "from big")).await;
    let spare = MockUpstream::start(json("spare-model", "from spare")).await;
    let router = Router::start(&context_config(
        &small.base_url(),
        Some(&other.base_url()),
        &big.base_url(),
        &spare.base_url(),
        "fallbacks: [spare]",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.text(), CONTEXT_TOO_LONG);
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("1")
    );
    assert_eq!(small.request_count(), 1);
    assert_eq!(other.request_count(), 0);
    assert_eq!(big.request_count(), 0);
    assert_eq!(spare.request_count(), 0);
}

#[tokio::test]
async fn a_plain_400_is_returned_unchanged_and_tried_nowhere_else() {
    init_tracing();
    for extra in [
        "fallbacks: [spare]",
        "fallbacks: [spare]\ncontext_window_fallbacks: [big]",
    ] {
        tracing::info!(extra, "model settings");
        let small = MockUpstream::start(status_with(
            400,
            BAD_TEMPERATURE,
            &[("x-request-kind", "bad-temperature")],
        ))
        .await;
        let other = MockUpstream::start(json("other-model", "from other")).await;
        let big = MockUpstream::start(json("big-model", "from big")).await;
        let spare = MockUpstream::start(json("spare-model", "from spare")).await;
        let router = Router::start(&context_config(
            &small.base_url(),
            Some(&other.base_url()),
            &big.base_url(),
            &spare.base_url(),
            extra,
        ))
        .await;

        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

        assert_eq!(reply.status, 400, "{extra}");
        assert_eq!(reply.text(), BAD_TEMPERATURE, "{extra}");
        assert_eq!(
            header(&reply, "x-request-kind").as_deref(),
            Some("bad-temperature"),
            "{extra}: the upstream's headers pass through"
        );
        assert_eq!(
            header(&reply, "x-switchyard-attempts").as_deref(),
            Some("1")
        );
        assert_eq!(header(&reply, "x-should-retry"), None, "{extra}");
        assert_eq!(small.request_count(), 1, "{extra}");
        assert_eq!(other.request_count(), 0, "{extra}");
        assert_eq!(big.request_count(), 0, "{extra}");
        assert_eq!(spare.request_count(), 0, "{extra}");
    }
}

// ---------------------------------------------------------------------------
// Before the commit: streams
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_error_event_first_moves_on_and_the_client_sees_only_the_second_stream() {
    init_tracing();
    let good = chat_chunks("second-model", &["Fine", " answer"], false);
    let first = MockUpstream::start(Behaviour::sse(vec![
        r#"data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#.to_owned()
            + "\n\n",
        "data: [DONE]\n\n".to_owned(),
    ]))
    .await;
    let second = MockUpstream::start(Behaviour::sse(good.clone())).await;
    let router = first_then_second(&first, "", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(
        reply.text(),
        good.concat(),
        "only the second stream, byte for byte"
    );
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn a_stream_that_ends_without_content_moves_on_to_the_next_target() {
    init_tracing();
    let good = chat_chunks("second-model", &["Fine"], false);
    let first = MockUpstream::start(Behaviour::sse(vec![
        role_only("first-model"),
        "data: [DONE]\n\n".to_owned(),
    ]))
    .await;
    let second = MockUpstream::start(Behaviour::sse(good.clone())).await;
    let router = first_then_second(&first, "", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(reply.text(), good.concat());
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn no_token_within_first_token_moves_on_and_cancels_the_first_stream() {
    init_tracing();
    let good = chat_chunks("second-model", &["Fine", " answer"], false);
    let first = MockUpstream::start(stalled_stream("first-model")).await;
    let second = MockUpstream::start(Behaviour::sse(good.clone())).await;
    let router = first_then_second(&first, "timeouts: { first_token: 300ms }", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(
        reply.text(),
        good.concat(),
        "the first stream's held role chunk is not relayed"
    );
    assert!(
        first.wait_for_cancelled_stream(WITHIN).await,
        "the stalled upstream stream was not cancelled"
    );
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

// ---------------------------------------------------------------------------
// After the commit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_stream_cut_after_content_ends_with_one_interrupted_error_event_and_is_not_retried() {
    init_tracing();
    let chunks = chat_chunks("first-model", &["Hel", "lo", " there"], false);
    let sent: Vec<String> = chunks[..3].to_vec(); // role, "Hel", "lo"
    let first = MockUpstream::start(Behaviour::SseCut {
        chunks: sent.clone(),
    })
    .await;
    let second =
        MockUpstream::start(Behaviour::sse(chat_chunks("second-model", &["no"], false))).await;
    let router = first_then_second(&first, "", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;

    assert_served_by(&reply, "first/first-model", 1);
    let text = reply.text();
    let relayed = sent.concat();
    assert!(
        text.starts_with(&relayed),
        "the chunks sent before the cut arrive unchanged; got {text:?}"
    );
    let error = assert_one_error_event(&text[relayed.len()..], "upstream_stream_interrupted");
    assert!(
        error["message"].as_str().unwrap().contains("`first`"),
        "{error}"
    );
    assert_eq!(first.request_count(), 1);
    assert_eq!(
        second.request_count(),
        0,
        "nothing is retried after the commit"
    );
}

#[tokio::test]
async fn silence_after_the_commit_past_idle_ends_the_stream_with_one_idle_error_event() {
    init_tracing();
    let chunks = chat_chunks("first-model", &["Hel", "lo"], false);
    // The role chunk and the first content chunk arrive together; the rest
    // waits behind a gate that is never released.
    let gated = vec![chunks[..2].concat(), chunks[2..].concat()];
    let first = MockUpstream::start(Behaviour::SseGated {
        chunks: gated.clone(),
        gate: Gate::new(),
    })
    .await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "timeouts: { idle: 300ms }", &second, "").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;

    assert_served_by(&reply, "first/first-model", 1);
    let text = reply.text();
    assert!(
        text.starts_with(&gated[0]),
        "the chunk before the silence arrives unchanged; got {text:?}"
    );
    assert_one_error_event(&text[gated[0].len()..], "upstream_idle_timeout");
    assert_eq!(second.request_count(), 0);
    assert!(
        first.wait_for_cancelled_stream(WITHIN).await,
        "the silent upstream stream was not dropped"
    );
}

// ---------------------------------------------------------------------------
// When nothing works
// ---------------------------------------------------------------------------

/// A router whose model `m` tries `alpha`, `beta` and `gamma` by priority,
/// all at addresses nobody listens on (returned as `127.0.0.1:PORT`, in that
/// order); `model_extra` as for [`config`].
async fn three_refusing(model_extra: &str) -> (Router, [String; 3]) {
    let addrs = [dead_addr().await, dead_addr().await, dead_addr().await];
    let [a, b, c] = addrs.clone().map(|addr| format!("http://{addr}"));
    let router = Router::start(&priority(
        &[("alpha", &a, ""), ("beta", &b, ""), ("gamma", &c, "")],
        model_extra,
    ))
    .await;
    (router, addrs)
}

#[tokio::test]
async fn when_every_target_refuses_the_502_names_each_upstream_and_address() {
    init_tracing();
    let (router, [a, b, c]) = three_refusing("").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    let error = assert_openai_error(&reply, 502, "upstream_unreachable");
    let message = error["message"].as_str().unwrap();
    for (name, addr) in [("alpha", &a), ("beta", &b), ("gamma", &c)] {
        assert!(
            message.contains(&format!("`{name}`")) && message.contains(addr.as_str()),
            "{name} at {addr} missing from {message:?}"
        );
    }
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("3")
    );
    assert_eq!(header(&reply, "x-should-retry").as_deref(), Some("false"));
}

#[tokio::test]
async fn max_attempts_caps_the_attempts_across_targets() {
    init_tracing();
    let (router, [_, _, c]) = three_refusing("max_attempts: 2").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert!(reply.status.is_server_error(), "{}", reply.text());
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("2")
    );
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("`alpha`") && message.contains("`beta`"),
        "{message}"
    );
    assert!(
        !message.contains("`gamma`") && !message.contains(c.as_str()),
        "the third target was never tried: {message}"
    );
    assert!(
        message.contains("max_attempts"),
        "says which limit: {message}"
    );
}

#[tokio::test]
async fn the_attempt_limit_message_counts_only_the_attempts_made() {
    init_tracing();
    let (router, _) = three_refusing("max_attempts: 2").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("2")
    );
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !message.contains("3 attempts failed"),
        "two attempts were made (x-switchyard-attempts: 2), but the message claims three: {message}"
    );
}

#[tokio::test]
async fn the_model_deadline_ends_a_hanging_attempt_with_a_504() {
    init_tracing();
    let first = MockUpstream::start(Behaviour::Hang).await;
    let router = Router::start(&priority(
        &[("first", &first.base_url(), "timeouts: { first_byte: 30s }")],
        "deadline: 500ms",
    ))
    .await;

    // The client's own deadline (10 s) is the deadline for failing: without
    // the model deadline the attempt would wait 30 s for its first byte.
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    let error = assert_openai_error(&reply, 504, "upstream_timeout");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`deadline`"), "{message}");
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("1")
    );
    assert_eq!(first.request_count(), 1);
}

// ---------------------------------------------------------------------------
// Circuit breaking
// ---------------------------------------------------------------------------

/// `broken` (refusing, breaker opens after 2 failures for 60 s) before
/// `healthy`, by priority.
fn breaker_config(dead: &str, healthy: &str, more_models: &str) -> String {
    format!(
        r#"upstreams:
  broken: {{ provider: openai-compatible, base_url: "{dead}/v1", health_check: false, circuit_breaker: {{ failures: 2, cooldown: 60s }} }}
  healthy: {{ provider: openai-compatible, base_url: "{healthy}/v1", health_check: false }}
models:
  m:
    strategy: priority
    targets:
      - {{ upstream: broken, model: broken-model }}
      - {{ upstream: healthy, model: healthy-model }}
{more_models}"#
    )
}

/// Sends two requests that fail at `broken` and are served by `healthy`.
async fn open_the_circuit(router: &Router) {
    for n in 1..=2 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_served_by(&reply, "healthy/healthy-model", 2);
        tracing::info!(n, "request failed at `broken`, served by `healthy`");
    }
}

#[tokio::test]
async fn an_open_circuit_sends_the_next_request_to_the_healthy_target_first() {
    init_tracing();
    let dead = dead().await;
    let healthy = MockUpstream::start(json("healthy-model", "ok")).await;
    let router = Router::start(&breaker_config(&dead, &healthy.base_url(), "")).await;

    open_the_circuit(&router).await;
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "healthy/healthy-model", 1);
    assert_eq!(healthy.request_count(), 3);
}

#[tokio::test]
async fn when_the_only_targets_circuit_is_open_it_is_still_tried_as_a_last_resort() {
    init_tracing();
    let body = r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#;
    let only = MockUpstream::start_sequence(vec![
        status_with(503, body, &[]),
        status_with(503, body, &[]),
        json("only-model", "back"),
    ])
    .await;
    let router = Router::start(&priority(
        &[(
            "only",
            &only.base_url(),
            "circuit_breaker: { failures: 2, cooldown: 60s }",
        )],
        "retry: { attempts: 0 }",
    ))
    .await;

    for n in 1..=2 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_eq!(reply.status, 503, "request {n}");
        assert_eq!(reply.text(), body);
    }
    // The circuit is now open; with nothing else to try the request still
    // goes to the target rather than failing without trying.
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "only/only-model", 1);
    assert_eq!(reply.text(), answer("only-model", "back"));
    assert_eq!(only.request_count(), 3);
}

/// Replaces the file at `path` the way editors do: write a sibling, rename it over.
fn rewrite(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("yaml.edit");
    std::fs::write(&tmp, text).expect("write the new config");
    std::fs::rename(&tmp, path).expect("rename it over the config");
}

async fn generation(router: &Router) -> u64 {
    get(&router.url("/status")).await.json()["config"]["generation"]
        .as_u64()
        .expect("config.generation is a number")
}

#[tokio::test]
async fn an_open_circuit_stays_open_across_a_reload() {
    init_tracing();
    let dead = dead().await;
    let healthy = MockUpstream::start(json("healthy-model", "ok")).await;
    let router = Router::start(&breaker_config(&dead, &healthy.base_url(), "")).await;
    open_the_circuit(&router).await;
    let before = generation(&router).await;

    tracing::info!("adding an unrelated model to the config file");
    let more = "  other:\n    targets: [{ upstream: healthy, model: other-model }]\n";
    rewrite(
        router.config_path(),
        &breaker_config(&dead, &healthy.base_url(), more),
    );
    poll_until(
        "the reload to be applied (config.generation to increase)",
        WITHIN,
        Duration::from_millis(50),
        || async {
            let now = generation(&router).await;
            (now > before).then_some(now)
        },
    )
    .await;
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "healthy/healthy-model", 1);
    assert_eq!(healthy.request_count(), 3);
}

// ---------------------------------------------------------------------------
// Race and hedge
// ---------------------------------------------------------------------------

/// Starts a streamed chat request in the background.
fn spawn_stream_request(router: &Router) -> tokio::task::JoinHandle<Reply> {
    let url = router.url("/v1/chat/completions");
    tokio::spawn(async move { post_json(&url, CHAT_STREAM).await })
}

#[tokio::test]
async fn a_race_is_won_by_the_target_that_streams_and_the_loser_is_cancelled() {
    init_tracing();
    let good = chat_chunks("b-model", &["Fast", " answer"], false);
    let gate_b = Gate::new();
    let a = MockUpstream::start(stalled_stream("a-model")).await;
    let b = MockUpstream::start(Behaviour::SseGated {
        chunks: good.clone(),
        gate: gate_b.clone(),
    })
    .await;
    let router = Router::start(&config(
        "race",
        &[("a", &a.base_url(), ""), ("b", &b.base_url(), "")],
        "",
    ))
    .await;

    let client = spawn_stream_request(&router);
    // Both copies are out before B may send content, so A's stream exists
    // when B wins.
    assert!(a.wait_for_requests(1, WITHIN).await, "A got the request");
    assert!(
        b.wait_for_requests(1, WITHIN).await,
        "B got the request at once"
    );
    gate_b.release_n(good.len() - 1);
    let reply = client.await.expect("client task");

    assert_served_by(&reply, "b/b-model", 2);
    assert_eq!(
        reply.text(),
        good.concat(),
        "only B's stream, byte for byte"
    );
    assert!(
        a.wait_for_cancelled_stream(WITHIN).await,
        "the losing stream was not cancelled"
    );
    assert_eq!(a.request_count(), 1);
    assert_eq!(b.request_count(), 1);
}

#[tokio::test]
async fn a_race_of_two_json_answers_returns_exactly_one_of_them_unchanged() {
    init_tracing();
    let a = MockUpstream::start(json("a-model", "from a")).await;
    let b = MockUpstream::start(json("b-model", "from b")).await;
    let router = Router::start(&config(
        "race",
        &[("a", &a.base_url(), ""), ("b", &b.base_url(), "")],
        "",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let target = header(&reply, "x-switchyard-target").expect("x-switchyard-target");
    let expected = match target.as_str() {
        "a/a-model" => answer("a-model", "from a"),
        "b/b-model" => answer("b-model", "from b"),
        other => panic!("unexpected target {other}"),
    };
    assert_eq!(reply.text(), expected, "the winner's body, byte for byte");
    assert!(a.request_count() + b.request_count() >= 1);
}

#[tokio::test]
async fn a_hedge_sends_a_second_copy_after_the_delay_and_cancels_the_first() {
    init_tracing();
    let good = chat_chunks("second-model", &["Hedged"], false);
    let gate = Gate::new();
    // With no latency samples both targets score alike and the sort is
    // stable, so `first` (file order) gets the first copy.
    let first = MockUpstream::start(stalled_stream("first-model")).await;
    let second = MockUpstream::start(Behaviour::SseGated {
        chunks: good.clone(),
        gate: gate.clone(),
    })
    .await;
    let router = Router::start(&config(
        "hedge",
        &[
            ("first", &first.base_url(), ""),
            ("second", &second.base_url(), ""),
        ],
        "hedge: { delay: 200ms }",
    ))
    .await;

    let client = spawn_stream_request(&router);
    assert!(first.wait_for_requests(1, WITHIN).await, "first copy");
    assert!(
        second.wait_for_requests(1, WITHIN).await,
        "the hedged copy was never sent"
    );
    gate.release_n(good.len() - 1);
    let reply = client.await.expect("client task");

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(reply.text(), good.concat());
    assert!(
        first.wait_for_cancelled_stream(WITHIN).await,
        "the first copy was not cancelled"
    );
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn a_hedge_sends_no_second_copy_when_the_first_answers_in_time() {
    init_tracing();
    let first = MockUpstream::start(json("first-model", "quick")).await;
    let second = MockUpstream::start(json("second-model", "unused")).await;
    // A long delay: "in time" must not depend on the machine's speed.
    let router = Router::start(&config(
        "hedge",
        &[
            ("first", &first.base_url(), ""),
            ("second", &second.base_url(), ""),
        ],
        "hedge: { delay: 10s }",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "first/first-model", 1);
    assert_eq!(reply.text(), answer("first-model", "quick"));
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 0);
}

// ---------------------------------------------------------------------------
// Per-model settings
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_model_level_first_byte_override_moves_a_hang_to_the_next_target() {
    init_tracing();
    // `models.m.timeouts.first_byte` overrides the upstream's 300 s default;
    // without the override the client's 10 s deadline fails the test.
    let first = MockUpstream::start(Behaviour::Hang).await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "", &second, "timeouts: { first_byte: 300ms }").await;

    let reply = try_send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[("content-type", "application/json")],
        CHAT,
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "the model's `timeouts.first_byte: 300ms` was not applied to the hanging target: {e}"
        )
    });

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn a_model_level_total_timeout_ends_a_committed_stream_with_one_total_error_event() {
    init_tracing();
    let chunks = chat_chunks("first-model", &["Hel", "lo"], false);
    let gated = vec![chunks[..2].concat(), chunks[2..].concat()];
    let first = MockUpstream::start(Behaviour::SseGated {
        chunks: gated.clone(),
        gate: Gate::new(),
    })
    .await;
    let router = Router::start(&priority(
        &[("first", &first.base_url(), "")],
        "timeouts: { total: 500ms }",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;

    assert_served_by(&reply, "first/first-model", 1);
    let text = reply.text();
    assert!(text.starts_with(&gated[0]), "{text:?}");
    assert_one_error_event(&text[gated[0].len()..], "upstream_total_timeout");
}

#[tokio::test]
async fn a_status_listed_in_fail_over_on_status_moves_to_the_next_target() {
    init_tracing();
    let body = r#"{"error":{"message":"unprocessable","type":"invalid_request_error","param":null,"code":null}}"#;
    let first = MockUpstream::start(status_with(422, body, &[])).await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(&first, "", &second, "fail_over_on_status: [422]").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn retry_on_status_replaces_the_retried_set() {
    init_tracing();
    // 429 is no longer retried on the same target; it moves on instead.
    let first = MockUpstream::start(rate_limited("0")).await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(
        &first,
        "",
        &second,
        "retry: { on_status: [503] }\nfail_over_on_status: [429]",
    )
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(first.request_count(), 1);
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn max_attempts_counts_same_target_retries() {
    init_tracing();
    let body = r#"{"error":{"message":"busy","type":"server_error","param":null,"code":null}}"#;
    let first = MockUpstream::start(status_with(503, body, &[])).await;
    let second = MockUpstream::start(json("second-model", "unused")).await;
    let router = first_then_second(&first, "", &second, "max_attempts: 2").await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    // The attempt and its retry use both attempts; the 503 passes through.
    assert_eq!(reply.status, 503);
    assert_eq!(reply.text(), body);
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("2")
    );
    assert_eq!(header(&reply, "x-should-retry").as_deref(), Some("false"));
    assert_eq!(first.request_count(), 2);
    assert_eq!(second.request_count(), 0);
}

#[tokio::test]
async fn when_the_context_window_fallback_is_unreachable_the_original_400_is_returned() {
    init_tracing();
    let small = MockUpstream::start(status_with(400, CONTEXT_TOO_LONG, &[])).await;
    let big = dead().await;
    let spare = MockUpstream::start(json("spare-model", "from spare")).await;
    let router = Router::start(&context_config(
        &small.base_url(),
        None,
        &big,
        &spare.base_url(),
        "context_window_fallbacks: [big]",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.text(), CONTEXT_TOO_LONG, "the upstream's own answer");
    assert_eq!(
        header(&reply, "x-switchyard-attempts").as_deref(),
        Some("2")
    );
    assert_eq!(small.request_count(), 1);
    assert_eq!(spare.request_count(), 0);
}

#[tokio::test]
async fn a_hedge_moves_on_at_once_when_the_first_target_fails_fast() {
    init_tracing();
    let dead = dead().await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    // A hedge delay longer than the client's deadline: waiting for it would
    // fail the test.
    let router = Router::start(&config(
        "hedge",
        &[("first", &dead, ""), ("second", &second.base_url(), "")],
        "hedge: { delay: 30s }",
    ))
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    assert_served_by(&reply, "second/second-model", 2);
    assert_eq!(second.request_count(), 1);
}

#[tokio::test]
async fn a_flapping_primary_gets_its_traffic_back_after_one_short_cooldown_and_a_failed_probe_doubles_it(
) {
    init_tracing();
    let body = r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#;
    // Down for two requests (the outage, then the first probe), then up.
    let first = MockUpstream::start_sequence(vec![
        status_with(503, body, &[]),
        status_with(503, body, &[]),
        json("first-model", "back"),
    ])
    .await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(
        &first,
        "circuit_breaker: { failures: 1, cooldown: 400ms, max_cooldown: 10s }",
        &second,
        "retry: { attempts: 0 }",
    )
    .await;
    let url = router.url("/v1/chat/completions");

    // The outage: one failure opens the circuit; the fallback serves.
    assert_served_by(&post_json(&url, CHAT).await, "second/second-model", 2);
    // While open, the primary is not tried at all.
    assert_served_by(&post_json(&url, CHAT).await, "second/second-model", 1);
    assert_eq!(first.request_count(), 1);

    // After the first cooldown a probe goes to the primary; it fails, and
    // the circuit opens for twice as long (800 ms).
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_served_by(&post_json(&url, CHAT).await, "second/second-model", 2);
    assert_eq!(first.request_count(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_served_by(&post_json(&url, CHAT).await, "second/second-model", 1);
    assert_eq!(first.request_count(), 2, "still open: the cooldown doubled");

    // The primary is up: the next probe closes the circuit and the primary
    // takes the traffic again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_served_by(&post_json(&url, CHAT).await, "first/first-model", 1);
    assert_served_by(&post_json(&url, CHAT).await, "first/first-model", 1);
    assert_eq!(first.request_count(), 4);
}

#[tokio::test]
async fn after_the_cooldown_a_probe_reaches_the_target_and_its_success_closes_the_circuit() {
    init_tracing();
    let body = r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#;
    let first = MockUpstream::start_sequence(vec![
        status_with(503, body, &[]),
        status_with(503, body, &[]),
        json("first-model", "recovered"),
    ])
    .await;
    let second = MockUpstream::start(json("second-model", "from second")).await;
    let router = first_then_second(
        &first,
        "circuit_breaker: { failures: 2, cooldown: 300ms }",
        &second,
        "retry: { attempts: 0 }",
    )
    .await;
    for _ in 0..2 {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_served_by(&reply, "second/second-model", 2);
    }

    // Requests go to `second` until the cooldown ends; then one probe goes
    // to `first`, whose success closes the circuit.
    let probe = poll_until(
        "a request served by `first` again",
        WITHIN,
        Duration::from_millis(50),
        || async {
            let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
            (header(&reply, "x-switchyard-target").as_deref() == Some("first/first-model"))
                .then_some(reply)
        },
    )
    .await;

    assert_served_by(&probe, "first/first-model", 1);
    assert_eq!(
        first.request_count(),
        3,
        "while open, `first` got nothing; the probe is its third request"
    );
    let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_served_by(&reply, "first/first-model", 1);
}
