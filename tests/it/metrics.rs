//! `GET /metrics`: the numbers after known traffic, over real sockets.
//!
//! Every test starts its own router (and mock upstreams), sends requests
//! whose effect is known exactly, scrapes `/metrics` and checks the samples
//! (see `docs/metrics.md` for what each metric means). A record is finished
//! when the response body ends — before the client sees that end — so a
//! scrape after a complete response sees it; only a client that leaves needs
//! a poll (the record is finished when the router drops the body).
//!
//! The last tests check `examples/grafana-dashboard.json` against what a
//! running router exposes.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::support::client::{get, open_stream, post_json, try_open_stream, try_send};
use crate::support::extra::{dead_addr, poll_until};
use crate::support::metrics_scrape::{scrape, Scrape};
use crate::support::{
    chat_chunks, chat_completion_json, init_tracing, Behaviour, Gate, MockUpstream, Router,
};

/// Deadline for anything polled (a reload, a dropped body).
const WITHIN: Duration = Duration::from_secs(5);
const EVERY: Duration = Duration::from_millis(50);

const REQUESTS: &str = "switchyard_requests_total";
const ATTEMPTS: &str = "switchyard_attempts_total";
const TOKENS: &str = "switchyard_tokens_total";
const COST: &str = "switchyard_cost_usd_total";
const UPSTREAM_ERRORS: &str = "switchyard_upstream_errors_total";
const IN_FLIGHT: &str = "switchyard_in_flight_requests";

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

fn chat_stream(model: &str, include_usage: bool) -> String {
    let options = if include_usage {
        r#","stream_options":{"include_usage":true}"#
    } else {
        ""
    };
    format!(
        r#"{{"model":"{model}","stream":true{options},"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

/// One `openai-compatible` upstream entry at `base` (no health checks);
/// `extra` is added inside its braces.
fn upstream(name: &str, base: &str, extra: &str) -> String {
    format!("  {name}: {{ provider: openai-compatible, base_url: \"{base}/v1\", health_check: false{extra} }}\n")
}

/// A model entry served by `upstream` as `upstream-model`; `extra` is
/// appended verbatim (indent it by four spaces).
fn model(name: &str, upstream: &str, extra: &str) -> String {
    format!("  {name}:\n    targets: [{{ upstream: {upstream}, model: upstream-model }}]\n{extra}")
}

/// A config with one upstream `up` at `base` and one model `m` on it.
fn one_model_config(base: &str, model_extra: &str) -> String {
    format!(
        "upstreams:\n{}models:\n{}",
        upstream("up", base, ""),
        model("m", "up", model_extra)
    )
}

/// Labels of model `m`'s only target.
const M_UP: [(&str, &str); 2] = [("model", "m"), ("target", "up/upstream-model")];

fn with<'a>(base: &[(&'a str, &'a str)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(more).copied().collect()
}

/// Asserts the sum of `name{labels}` is `want`, showing the family on failure.
#[track_caller]
fn expect(scrape: &Scrape, name: &str, labels: &[(&str, &str)], want: f64) {
    let got = scrape.value(name, labels);
    assert!(
        got == want,
        "{name}{labels:?}: expected {want}, got {got}\nnon-zero samples of its family:\n{}",
        family_lines(scrape, name, true)
    );
}

/// Asserts `name{labels}` exists (a sample, even at 0).
#[track_caller]
fn expect_present(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) {
    assert!(
        scrape.has(name, labels),
        "no sample {name}{labels:?} in the scrape; samples named {name}:\n{}",
        family_lines(scrape, name, false)
    );
}

/// The sample lines of `name`'s family (only non-zero ones if `nonzero`).
fn family_lines(scrape: &Scrape, name: &str, nonzero: bool) -> String {
    let family = scrape.family_of(name);
    scrape
        .text
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && scrape.family_of(l.split(['{', ' ']).next().unwrap_or("")) == family
                && !(nonzero && l.ends_with(" 0"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Scrapes until `check` accepts; after [`WITHIN`], panics with `what` and
/// what `show` says about the last scrape.
async fn scrape_until(
    router: &Router,
    what: &str,
    check: impl Fn(&Scrape) -> bool,
    show: impl Fn(&Scrape) -> String,
) -> Scrape {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let s = scrape(&router.base).await;
        if check(&s) {
            return s;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "gave up after {WITHIN:?} waiting for {what}; last scrape: {}",
                show(&s)
            );
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Replaces the file at `path` the way editors do: write a sibling, rename it over.
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.edit");
    std::fs::write(&tmp, text).expect("write the new config");
    std::fs::rename(&tmp, path).expect("rename it over the config");
}

async fn config_status(router: &Router) -> serde_json::Value {
    let reply = get(&router.url("/status")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["config"].clone()
}

// ---------------------------------------------------------------------------
// The scrape parser itself
// ---------------------------------------------------------------------------

#[test]
fn the_scrape_parser_reads_labels_escapes_and_sums() {
    let text = concat!(
        "# HELP x_total Help.\n# TYPE x_total counter\n",
        "x_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 3\nx_total 2.5 1700000000\n",
        "# TYPE h histogram\n",
        "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
    );
    let s = Scrape::parse(text).unwrap();
    assert_eq!(s.samples.len(), 6);
    assert_eq!(s.samples[0].label("b"), Some("q\"\\\n"));
    assert_eq!(s.value("x_total", &[]), 5.5);
    assert_eq!(s.value("x_total", &[("a", "1")]), 3.0);
    assert_eq!(s.value("x_total", &[("a", "2")]), 0.0);
    assert_eq!(s.value("absent", &[]), 0.0);
    assert_eq!(s.family_of("h_bucket"), "h");
    assert_eq!(s.family_of("x_total"), "x_total");
    s.check_well_formed().unwrap();

    assert!(Scrape::parse("x{a=1} 2\n").is_err());
    assert!(Scrape::parse("x 2 3 4\n").is_err());
    let bad_count = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n";
    assert!(Scrape::parse(bad_count)
        .unwrap()
        .check_well_formed()
        .is_err());
    let no_newline = "# TYPE g gauge\ng 1";
    assert!(Scrape::parse(no_newline)
        .unwrap()
        .check_well_formed()
        .is_err());
}

// ---------------------------------------------------------------------------
// Requests, attempts, latency, tokens, cost
// ---------------------------------------------------------------------------

#[tokio::test]
async fn non_stream_requests_count_requests_attempts_tokens_and_latency() {
    init_tracing();
    const N: usize = 3;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let router = Router::start(&one_model_config(&mock.base_url(), "")).await;

    let before = scrape(&router.base).await;
    expect_present(&before, REQUESTS, &with(&M_UP, &[("status_class", "2xx")]));
    expect(&before, REQUESTS, &[], 0.0);

    for _ in 0..N {
        let reply = post_json(&router.url("/v1/chat/completions"), &chat("m")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }

    let s = scrape(&router.base).await;
    let n = N as f64;
    expect(
        &s,
        REQUESTS,
        &with(&M_UP, &[("status_class", "2xx"), ("outcome", "completed")]),
        n,
    );
    // Nothing else was counted: not the scrapes, not another class or outcome.
    expect(&s, REQUESTS, &[], n);
    expect(&s, ATTEMPTS, &with(&M_UP, &[("result", "ok")]), n);
    expect(&s, ATTEMPTS, &[], n);
    expect(&s, TOKENS, &with(&M_UP, &[("type", "prompt")]), 11.0 * n);
    expect(&s, TOKENS, &with(&M_UP, &[("type", "completion")]), 7.0 * n);
    // No `pricing`: no cost.
    expect(&s, COST, &[], 0.0);
    expect(&s, "switchyard_request_duration_seconds_count", &M_UP, n);
    expect(&s, "switchyard_time_to_first_token_seconds_count", &M_UP, n);
    expect(
        &s,
        "switchyard_request_duration_seconds_bucket",
        &with(&M_UP, &[("le", "+Inf")]),
        n,
    );
    expect_present(&s, IN_FLIGHT, &[("model", "m")]);
    expect(&s, IN_FLIGHT, &[], 0.0);
    expect(
        &s,
        "switchyard_overhead_microseconds_count",
        &[("model", "m")],
        n,
    );
    expect(&s, UPSTREAM_ERRORS, &[], 0.0);
    expect(&s, "switchyard_fallbacks_total", &[], 0.0);
    let duration = s.value("switchyard_request_duration_seconds_sum", &M_UP);
    let ttft = s.value("switchyard_time_to_first_token_seconds_sum", &M_UP);
    assert!(
        duration > 0.0 && ttft > 0.0 && ttft <= duration + 1e-9,
        "the time to the headers is part of the whole duration: ttft {ttft}, duration {duration}"
    );
    s.check_well_formed()
        .unwrap_or_else(|e| panic!("{e}\n{}", s.text));
}

#[tokio::test]
async fn cost_is_computed_from_the_models_pricing_and_the_reported_usage() {
    init_tracing();
    const N: usize = 4;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let router = Router::start(&one_model_config(
        &mock.base_url(),
        "    pricing: { input_per_million: 2.0, output_per_million: 8.0 }\n",
    ))
    .await;

    for _ in 0..N {
        let reply = post_json(&router.url("/v1/chat/completions"), &chat("m")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }

    let s = scrape(&router.base).await;
    let want = (11.0 * 2.0 + 7.0 * 8.0) / 1e6 * N as f64;
    let got = s.value(COST, &M_UP);
    assert!(
        (got - want).abs() < 1e-9,
        "{COST}: expected {want}, got {got}\n{}",
        s.text
    );
    expect(
        &s,
        TOKENS,
        &with(&M_UP, &[("type", "prompt")]),
        11.0 * N as f64,
    );
}

#[tokio::test]
async fn stream_tokens_come_from_the_usage_chunk_and_only_when_there_is_one() {
    init_tracing();
    let with_usage = MockUpstream::start(Behaviour::sse(chat_chunks(
        "upstream-model",
        &["Hel", "lo"],
        true,
    )))
    .await;
    let without_usage = MockUpstream::start(Behaviour::sse(chat_chunks(
        "upstream-model",
        &["Hel", "lo"],
        false,
    )))
    .await;
    let config = format!(
        "upstreams:\n{}{}models:\n{}{}",
        upstream("a", &with_usage.base_url(), ""),
        upstream("b", &without_usage.base_url(), ""),
        model("usage", "a", ""),
        model("plain", "b", ""),
    );
    let router = Router::start(&config).await;

    let url = router.url("/v1/chat/completions");
    let reply = try_send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        chat_stream("usage", true),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains(r#""prompt_tokens":11"#));
    let reply = try_send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        chat_stream("plain", false),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(!reply.text().contains("prompt_tokens"));

    let s = scrape(&router.base).await;
    let a = [("model", "usage"), ("target", "a/upstream-model")];
    let b = [("model", "plain"), ("target", "b/upstream-model")];
    expect(&s, TOKENS, &with(&a, &[("type", "prompt")]), 11.0);
    expect(&s, TOKENS, &with(&a, &[("type", "completion")]), 7.0);
    expect_present(&s, TOKENS, &with(&b, &[("type", "prompt")]));
    expect(&s, TOKENS, &b, 0.0);
    for labels in [&a, &b] {
        expect(
            &s,
            REQUESTS,
            &with(labels, &[("status_class", "2xx"), ("outcome", "completed")]),
            1.0,
        );
        expect(
            &s,
            "switchyard_time_to_first_token_seconds_count",
            labels,
            1.0,
        );
    }
}

/// An upstream may send a short answer in one frame: the first token and
/// the usage chunk together. The usage must still be counted.
#[tokio::test]
async fn stream_usage_in_the_same_frame_as_the_first_token_is_counted() {
    init_tracing();
    let one_frame = chat_chunks("upstream-model", &["Hi"], true).concat();
    let mock = MockUpstream::start(Behaviour::sse(vec![one_frame.clone()])).await;
    let router = Router::start(&one_model_config(&mock.base_url(), "")).await;

    let reply = try_send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[("content-type", "application/json")],
        chat_stream("m", true),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), one_frame, "the stream is relayed unchanged");

    let s = scrape(&router.base).await;
    expect(
        &s,
        REQUESTS,
        &with(&M_UP, &[("status_class", "2xx"), ("outcome", "completed")]),
        1.0,
    );
    expect(&s, TOKENS, &with(&M_UP, &[("type", "prompt")]), 11.0);
    expect(&s, TOKENS, &with(&M_UP, &[("type", "completion")]), 7.0);
}

#[tokio::test]
async fn the_mock_provider_always_reports_usage() {
    init_tracing();
    let router = Router::start(concat!(
        "upstreams:\n  local: { provider: mock, mock: { reply: \"one two three four\" } }\n",
        "models:\n  demo:\n    targets: [local]\n",
    ))
    .await;
    let url = router.url("/v1/chat/completions");

    let reply = post_json(&url, &chat("demo")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let usage = reply.json()["usage"].clone();
    let prompt = usage["prompt_tokens"].as_f64().expect("prompt_tokens");
    let completion = usage["completion_tokens"]
        .as_f64()
        .expect("completion_tokens");
    assert!(prompt > 0.0 && completion > 0.0, "{usage}");
    let s = scrape(&router.base).await;
    let demo = [("model", "demo")];
    expect(&s, TOKENS, &with(&demo, &[("type", "prompt")]), prompt);
    expect(
        &s,
        TOKENS,
        &with(&demo, &[("type", "completion")]),
        completion,
    );

    // A stream without `stream_options.include_usage`: the client sees no
    // usage, but the mock still reports it to the metrics.
    let reply = try_send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        chat_stream("demo", false),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains("[DONE]"), "{}", reply.text());
    let s = scrape(&router.base).await;
    expect(
        &s,
        TOKENS,
        &with(&demo, &[("type", "prompt")]),
        2.0 * prompt,
    );
    expect(
        &s,
        TOKENS,
        &with(&demo, &[("type", "completion")]),
        2.0 * completion,
    );
    expect(
        &s,
        REQUESTS,
        &with(&demo, &[("status_class", "2xx"), ("outcome", "completed")]),
        2.0,
    );
    expect(&s, ATTEMPTS, &with(&demo, &[("result", "ok")]), 2.0);
}

// ---------------------------------------------------------------------------
// Failures: attempts, upstream errors, fallbacks, unknown models
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_target_then_a_fallback_counts_the_error_and_the_fallback() {
    init_tracing();
    let dead = dead_addr().await;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let config = format!(
        "upstreams:\n{}{}models:\n{}{}",
        upstream("dead", &format!("http://{dead}"), ""),
        upstream("live", &mock.base_url(), ""),
        model("asked", "dead", "    fallbacks: [backup]\n"),
        model("backup", "live", ""),
    );
    let router = Router::start(&config).await;

    let reply = post_json(&router.url("/v1/chat/completions"), &chat("asked")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-model").as_deref(),
        Some("backup")
    );

    let s = scrape(&router.base).await;
    let dead_target = [("model", "asked"), ("target", "dead/upstream-model")];
    let live_target = [("model", "backup"), ("target", "live/upstream-model")];
    expect(
        &s,
        ATTEMPTS,
        &with(&dead_target, &[("result", "connect")]),
        1.0,
    );
    expect(&s, ATTEMPTS, &with(&live_target, &[("result", "ok")]), 1.0);
    expect(&s, ATTEMPTS, &[], 2.0);
    expect(
        &s,
        UPSTREAM_ERRORS,
        &[("upstream", "dead"), ("kind", "connect")],
        1.0,
    );
    expect(&s, UPSTREAM_ERRORS, &[], 1.0);
    expect(
        &s,
        "switchyard_fallbacks_total",
        &[("model", "asked"), ("served_by", "backup")],
        1.0,
    );
    // Per-target series carry the model whose target served; per-request
    // series (in flight, overhead) the model asked for.
    expect(
        &s,
        REQUESTS,
        &with(
            &live_target,
            &[("status_class", "2xx"), ("outcome", "completed")],
        ),
        1.0,
    );
    expect(&s, REQUESTS, &[], 1.0);
    expect(&s, TOKENS, &with(&live_target, &[("type", "prompt")]), 11.0);
    expect(
        &s,
        "switchyard_overhead_microseconds_count",
        &[("model", "asked")],
        1.0,
    );
    expect(&s, IN_FLIGHT, &[], 0.0);
}

#[tokio::test]
async fn an_unknown_model_is_counted_under_unknown_without_a_new_label_value() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let router = Router::start(&one_model_config(&mock.base_url(), "")).await;
    const MADE_UP: &str = "made-up-model-7f3a9c";

    let reply = post_json(&router.url("/v1/chat/completions"), &chat(MADE_UP)).await;
    assert_eq!(reply.status, 404, "{}", reply.text());

    let s = scrape(&router.base).await;
    expect(
        &s,
        REQUESTS,
        &[
            ("model", "(unknown)"),
            ("target", "(none)"),
            ("status_class", "4xx"),
            ("outcome", "completed"),
        ],
        1.0,
    );
    expect(&s, REQUESTS, &[], 1.0);
    expect(&s, IN_FLIGHT, &[("model", "(unknown)")], 0.0);
    expect(&s, ATTEMPTS, &[], 0.0);
    assert!(
        !s.text.contains(MADE_UP),
        "a model name the client made up must not become a label value:\n{}",
        s.text
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_stream_cut_after_commit_counts_an_upstream_error_outcome() {
    init_tracing();
    let pieces = chat_chunks("upstream-model", &["Hel", "lo"], false);
    // The first content event commits; the upstream then breaks off.
    let sent = vec![pieces[0].clone() + &pieces[1], pieces[2].clone()];
    let mock = MockUpstream::start(Behaviour::SseCut { chunks: sent }).await;
    let router = Router::start(&one_model_config(&mock.base_url(), "")).await;

    let stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        &chat_stream("m", false),
    )
    .await;
    assert_eq!(stream.status, 200);
    let body = stream
        .rest()
        .await
        .expect("the router ends the stream itself");
    assert!(
        String::from_utf8_lossy(&body).contains("upstream_stream_interrupted"),
        "{body:?}"
    );

    let s = scrape(&router.base).await;
    expect(
        &s,
        REQUESTS,
        &with(
            &M_UP,
            &[("status_class", "2xx"), ("outcome", "upstream_error")],
        ),
        1.0,
    );
    expect(&s, REQUESTS, &[], 1.0);
    expect(
        &s,
        UPSTREAM_ERRORS,
        &[("upstream", "up"), ("kind", "stream_interrupted")],
        1.0,
    );
    expect(&s, UPSTREAM_ERRORS, &[], 1.0);
    // The attempt itself committed.
    expect(&s, ATTEMPTS, &with(&M_UP, &[("result", "ok")]), 1.0);
    expect(&s, "switchyard_request_duration_seconds_count", &M_UP, 1.0);
    expect(&s, IN_FLIGHT, &[], 0.0);
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_counts_client_cancelled() {
    init_tracing();
    let pieces = chat_chunks("upstream-model", &["Hel", "lo", " world"], false);
    let frames = vec![
        pieces[0].clone() + &pieces[1],
        pieces[2].clone(),
        pieces[3].clone(),
        pieces[4..].concat(),
    ];
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: frames,
        gate: gate.clone(),
    })
    .await;
    let router = Router::start(&one_model_config(&mock.base_url(), "")).await;

    let mut stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        &chat_stream("m", false),
    )
    .await;
    assert_eq!(stream.status, 200);
    stream.read_until(r#""content":"Hel""#).await;
    let during = scrape(&router.base).await;
    expect(&during, IN_FLIGHT, &[("model", "m")], 1.0);
    expect(&during, REQUESTS, &[], 0.0);
    drop(stream);

    let cancelled = with(
        &M_UP,
        &[("status_class", "2xx"), ("outcome", "client_cancelled")],
    );
    let s = scrape_until(
        &router,
        "outcome=\"client_cancelled\" to be counted",
        |s| s.value(REQUESTS, &cancelled) >= 1.0,
        |s| family_lines(s, REQUESTS, true),
    )
    .await;
    expect(&s, REQUESTS, &cancelled, 1.0);
    expect(&s, REQUESTS, &[], 1.0);
    expect(&s, IN_FLIGHT, &[], 0.0);
    expect(&s, "switchyard_request_duration_seconds_count", &M_UP, 1.0);
    expect(&s, UPSTREAM_ERRORS, &[], 0.0);
}

/// A client that gives up before the answer commits (a slow upstream, a
/// client timeout) leaves no request in flight and is counted once.
#[tokio::test]
async fn a_client_that_leaves_before_the_answer_starts_is_not_left_in_flight() {
    init_tracing();
    let pieces = chat_chunks("upstream-model", &["Hel"], false);
    // The role-only first chunk carries no content: no commit until the
    // gate opens, which it never does.
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: pieces,
        gate: gate.clone(),
    })
    .await;
    let router = Router::start(&one_model_config(&mock.base_url(), "")).await;

    let url = router.url("/v1/chat/completions");
    let client = tokio::spawn(async move {
        let _ = try_open_stream(&url, &[], &chat_stream("m", false)).await;
    });
    assert!(
        mock.wait_for_requests(1, WITHIN).await,
        "the attempt was sent"
    );
    let during = scrape(&router.base).await;
    expect(&during, IN_FLIGHT, &[("model", "m")], 1.0);
    client.abort();
    let _ = client.await;
    assert!(
        mock.wait_for_cancelled_stream(WITHIN).await,
        "the router drops the attempt when its client leaves"
    );

    let m = [("model", "m")];
    let settled = scrape_until(
        &router,
        "the request to leave in-flight (expected switchyard_in_flight_requests{model=\"m\"} 0)",
        |s| s.value(IN_FLIGHT, &m) == 0.0,
        |s| {
            format!(
                "in flight {}, requests counted {}\n{}",
                s.value(IN_FLIGHT, &m),
                s.value(REQUESTS, &m),
                family_lines(s, IN_FLIGHT, false)
            )
        },
    )
    .await;
    expect(
        &settled,
        REQUESTS,
        &[("model", "m"), ("outcome", "client_cancelled")],
        1.0,
    );
}

// ---------------------------------------------------------------------------
// Process and config metrics, circuit gauge, the exposition itself
// ---------------------------------------------------------------------------

#[tokio::test]
async fn build_info_config_generation_and_reload_counters() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let v1 = one_model_config(&mock.base_url(), "");
    let router = Router::start(&v1).await;

    let s = scrape(&router.base).await;
    expect(
        &s,
        "switchyard_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    assert_eq!(
        s.series("switchyard_build_info", &[]).count(),
        1,
        "one build_info series"
    );
    let sha = s
        .series("switchyard_build_info", &[])
        .next()
        .and_then(|b| b.label("git_sha").map(str::to_owned));
    assert!(sha.is_some_and(|sha| !sha.is_empty()), "{}", s.text);
    expect(&s, "switchyard_config_generation", &[], 1.0);

    // A good edit: generation 2, one successful reload.
    let v2 = format!("{v1}{}", model("added", "up", ""));
    rewrite(router.config_path(), &v2);
    poll_until("generation 2 in /status", WITHIN, EVERY, || async {
        let config = config_status(&router).await;
        (config["generation"] == 2).then_some(())
    })
    .await;
    let s = scrape(&router.base).await;
    expect(&s, "switchyard_config_generation", &[], 2.0);
    expect(
        &s,
        "switchyard_config_reloads_total",
        &[("result", "success")],
        1.0,
    );
    expect(
        &s,
        "switchyard_config_reloads_total",
        &[("result", "failure")],
        0.0,
    );
    // The new model's series exist at once, at zero.
    expect_present(&s, REQUESTS, &[("model", "added")]);

    // A broken edit: rejected, counted, and the generation stays.
    rewrite(
        router.config_path(),
        &format!("{v2}  broken:\n    targets: [{{ upstream: nowhere }}]\n"),
    );
    poll_until("a failed reload in /status", WITHIN, EVERY, || async {
        let config = config_status(&router).await;
        (config["reloads_failed"] == 1).then_some(())
    })
    .await;
    let s = scrape(&router.base).await;
    expect(
        &s,
        "switchyard_config_reloads_total",
        &[("result", "failure")],
        1.0,
    );
    expect(
        &s,
        "switchyard_config_reloads_total",
        &[("result", "success")],
        1.0,
    );
    expect(&s, "switchyard_config_generation", &[], 2.0);
}

/// Both results of the reload counter exist from the start, at 0: a series
/// born at 1 hides its first increment from `increase()` and `rate()`, so
/// an alert on `increase(…{result="failure"}[5m]) > 0` would miss the
/// first failed reload.
#[tokio::test]
async fn reload_counters_are_exported_at_zero_before_any_reload() {
    init_tracing();
    let router = Router::start(concat!(
        "upstreams:\n  local: { provider: mock }\n",
        "models:\n  demo:\n    targets: [local]\n",
    ))
    .await;
    let s = scrape(&router.base).await;
    for result in ["success", "failure"] {
        expect_present(&s, "switchyard_config_reloads_total", &[("result", result)]);
        expect(
            &s,
            "switchyard_config_reloads_total",
            &[("result", result)],
            0.0,
        );
    }
}

#[tokio::test]
async fn an_open_circuit_shows_as_2_at_scrape_time() {
    init_tracing();
    let dead = dead_addr().await;
    let config = format!(
        "upstreams:\n{}models:\n{}",
        upstream(
            "dead",
            &format!("http://{dead}"),
            ", circuit_breaker: { failures: 1, cooldown: 60s }"
        ),
        model("m", "dead", ""),
    );
    let router = Router::start(&config).await;
    let target = [("model", "m"), ("target", "dead/upstream-model")];

    let before = scrape(&router.base).await;
    expect_present(&before, "switchyard_circuit_state", &target);
    expect(&before, "switchyard_circuit_state", &target, 0.0);

    let reply = post_json(&router.url("/v1/chat/completions"), &chat("m")).await;
    assert!(reply.status.is_server_error(), "{}", reply.text());

    let s = scrape(&router.base).await;
    expect(&s, "switchyard_circuit_state", &target, 2.0);
    expect(&s, ATTEMPTS, &with(&target, &[("result", "connect")]), 1.0);
    expect(
        &s,
        REQUESTS,
        &[
            ("model", "m"),
            ("target", "(none)"),
            ("status_class", "5xx"),
            ("outcome", "completed"),
        ],
        1.0,
    );
}

/// A reload that removes a target must not leave its circuit reported open
/// forever: `set_circuits` refreshes only the targets of the table being
/// served, so a removed target's gauge would keep its last value (and an
/// alert on `switchyard_circuit_state == 2` would never clear).
#[tokio::test]
async fn a_target_removed_by_a_reload_does_not_stay_reported_open() {
    init_tracing();
    let dead = dead_addr().await;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let live = upstream("live", &mock.base_url(), "");
    let v1 = format!(
        "upstreams:\n{}{live}models:\n{}{}",
        upstream(
            "dead",
            &format!("http://{dead}"),
            ", circuit_breaker: { failures: 1, cooldown: 60s }"
        ),
        model("m", "dead", ""),
        model("other", "live", ""),
    );
    let router = Router::start(&v1).await;
    let reply = post_json(&router.url("/v1/chat/completions"), &chat("m")).await;
    assert!(reply.status.is_server_error(), "{}", reply.text());
    let gone = [("target", "dead/upstream-model")];
    expect(
        &scrape(&router.base).await,
        "switchyard_circuit_state",
        &gone,
        2.0,
    );

    // The edit removes model `m` and upstream `dead`.
    let v2 = format!("upstreams:\n{live}models:\n{}", model("other", "live", ""));
    rewrite(router.config_path(), &v2);
    poll_until("generation 2 in /status", WITHIN, EVERY, || async {
        (config_status(&router).await["generation"] == 2).then_some(())
    })
    .await;

    let s = scrape(&router.base).await;
    let stale: Vec<_> = s
        .series("switchyard_circuit_state", &gone)
        .filter(|sample| sample.value != 0.0)
        .collect();
    assert!(
        stale.is_empty(),
        "a target that is no longer configured still reports a circuit state: {stale:?}"
    );
}

#[tokio::test]
async fn series_of_models_a_reload_renamed_leave_metrics_and_kept_ones_keep_counting() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let live = upstream("live", &mock.base_url(), "");
    let config = |names: &[String]| {
        let models: String = names.iter().map(|n| model(n, "live", "")).collect();
        format!(
            "upstreams:\n{live}models:\n{}{models}",
            model("kept", "live", "")
        )
    };
    let router = Router::start(&config(&["first-0".to_string()])).await;
    for model in ["kept", "first-0"] {
        let reply = post_json(&router.url("/v1/chat/completions"), &chat(model)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let size_after_one = get(&router.url("/metrics")).await.text().len();

    // Ten reloads, each renaming 20 models.
    for generation in 2..=11u32 {
        let names: Vec<String> = (0..20)
            .map(|i| format!("renamed-{generation}-{i}"))
            .collect();
        rewrite(router.config_path(), &config(&names));
        poll_until("the reload in /status", WITHIN, EVERY, || async {
            (config_status(&router).await["generation"] == generation).then_some(())
        })
        .await;
    }
    let reply = post_json(&router.url("/v1/chat/completions"), &chat("kept")).await;
    assert_eq!(reply.status, 200);

    // The replaced tables are dropped as their last users let go (a probe
    // task or a request may hold one a moment longer).
    let gone = ["first-0", "renamed-2-0", "renamed-10-19"];
    let s = scrape_until(
        &router,
        "the renamed models' series to leave",
        |s| {
            gone.iter()
                .all(|old| !s.text.contains(&format!("model=\"{old}\"")))
        },
        |s| format!("{} bytes", s.text.len()),
    )
    .await;
    let text = s.text.clone();
    for old in gone {
        assert!(
            !text.contains(&format!("model=\"{old}\"")),
            "series of `{old}`, renamed away, are still exported"
        );
    }
    assert!(
        text.contains("model=\"renamed-11-19\""),
        "the current models are exported"
    );
    // `kept` kept its series, and its count, across every reload.
    expect(
        &s,
        REQUESTS,
        &[
            ("model", "kept"),
            ("target", "live/upstream-model"),
            ("status_class", "2xx"),
        ],
        2.0,
    );
    // The exposition holds the current 21 models (and `(unknown)`), not the
    // 201 ever loaded.
    let models: BTreeSet<&str> = text
        .split("model=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(models.len(), 22, "{models:?}");
    assert!(
        text.len() < size_after_one * 30,
        "/metrics grew from {size_after_one} to {} bytes over renames",
        text.len()
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_need_no_router_key() {
    init_tracing();
    let router = Router::start(concat!(
        "server:\n  auth:\n    keys: [\"sk-metrics-test\"]\n",
        "upstreams:\n  local: { provider: mock }\n",
        "models:\n  demo:\n    targets: [local]\n",
    ))
    .await;
    // The router key is enforced elsewhere…
    assert_eq!(get(&router.url("/v1/models")).await.status, 401);
    let reply = try_send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer sk-metrics-test"),
        ],
        chat("demo"),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());

    // …but not on /metrics.
    let reply = get(&router.url("/metrics")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = reply.text();
    assert!(text.ends_with('\n'), "the last line ends with \\n");
    assert!(!text.contains('\r'), "lines end with \\n alone");
    let s = Scrape::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    s.check_well_formed()
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    for family in s.types.keys() {
        assert!(
            s.help.get(family).is_some_and(|h| !h.trim().is_empty()),
            "{family} has HELP text"
        );
        assert!(family.starts_with("switchyard_"), "{family}");
    }
    expect(
        &s,
        REQUESTS,
        &[("model", "demo"), ("status_class", "2xx")],
        1.0,
    );
}

// ---------------------------------------------------------------------------
// The Grafana dashboard
// ---------------------------------------------------------------------------

const DASHBOARD: &str = "examples/grafana-dashboard.json";

fn dashboard() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every string under a key named `expr`, `query` or `definition`.
fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query" | "definition", serde_json::Value::String(q)) => {
                        out.push(q.clone())
                    }
                    _ => queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// A metric named in a query, with the label names its `{…}` matches on.
#[derive(Debug)]
struct MetricRef {
    name: String,
    labels: Vec<String>,
}

/// Finds every `switchyard_…` metric name in `expr` and the label names of
/// its selector, if it has one.
fn metric_refs(expr: &str) -> Vec<MetricRef> {
    let bytes = expr.as_bytes();
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut refs = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("switchyard_") {
        let start = i + at;
        if start > 0 && is_name_byte(bytes[start - 1]) {
            i = start + 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && is_name_byte(bytes[end]) {
            end += 1;
        }
        let name = expr[start..end].to_owned();
        let mut labels = Vec::new();
        let mut j = end;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'{' {
            j += 1;
            loop {
                while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b',') {
                    j += 1;
                }
                if j >= bytes.len() || bytes[j] == b'}' {
                    break;
                }
                let label_start = j;
                while j < bytes.len() && is_name_byte(bytes[j]) {
                    j += 1;
                }
                labels.push(expr[label_start..j].to_owned());
                // Operator, then a quoted value (with escapes).
                while j < bytes.len() && bytes[j] != b'"' {
                    j += 1;
                }
                j += 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    if bytes[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                j += 1;
            }
        }
        refs.push(MetricRef { name, labels });
        i = end;
    }
    refs
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_with_a_prometheus_input_and_a_model_variable() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "a DS_PROMETHEUS datasource input"
    );
    let variables = d["templating"]["list"].as_array().expect("templating.list");
    let model = variables
        .iter()
        .find(|v| v["name"] == "model")
        .expect("a `model` variable");
    assert_eq!(model["type"], "query");
    let mut model_queries = Vec::new();
    queries(model, &mut model_queries);
    assert!(
        model_queries
            .iter()
            .any(|q| q == "label_values(switchyard_requests_total, model)"),
        "{model_queries:?}"
    );

    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut with_queries = 0;
    for panel in panels {
        let id = panel["id"].as_u64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap_or_default();
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {title:?} uses the Prometheus input"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} has a query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(expr.contains("switchyard_"), "{title:?}: {expr:?}");
            let depth = expr.chars().try_fold(0i32, |depth, c| {
                let depth = match c {
                    '(' | '{' | '[' => depth + 1,
                    ')' | '}' | ']' => depth - 1,
                    _ => depth,
                };
                (depth >= 0).then_some(depth)
            });
            assert_eq!(depth, Some(0), "{title:?}: unbalanced brackets in {expr:?}");
        }
        with_queries += 1;
    }
    assert!(with_queries >= 15, "{with_queries} panels with queries");
}

/// `docs/metrics.md` has a section `### \`name\` — type` for every metric
/// family a running router exposes.
#[tokio::test]
async fn every_exposed_metric_is_documented_with_its_type() {
    init_tracing();
    let router = Router::start(concat!(
        "upstreams:\n  local: { provider: mock }\n",
        "models:\n  demo:\n    targets: [local]\n    fallbacks: [other]\n",
        "  other:\n    targets: [local]\n",
    ))
    .await;
    let s = scrape(&router.base).await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let docs = std::fs::read_to_string(&path).expect("docs/metrics.md");
    let missing: Vec<String> = s
        .types
        .iter()
        .map(|(family, kind)| format!("### `{family}` — {kind}"))
        .filter(|heading| !docs.lines().any(|line| line.trim() == heading))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/metrics.md lacks these sections:\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exposed_and_every_family_is_shown() {
    init_tracing();
    // A fresh router, as Grafana first sees it: no traffic, no reload yet.
    let dead = dead_addr().await;
    let config = format!(
        "upstreams:\n  local: {{ provider: mock }}\n{}models:\n{}  demo:\n    targets: [local]\n    cache: true\n",
        upstream("remote", &format!("http://{dead}"), ""),
        model("primary", "remote", "    fallbacks: [demo]\n"),
    );
    let router = Router::start(&config).await;
    // One lookup, so the cache's series exist (they are made on first use).
    crate::support::client::post_json(
        &format!("{}/v1/chat/completions", router.base),
        r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let s = scrape(&router.base).await;
    let exposed = s.sample_names();

    let mut all = Vec::new();
    queries(&dashboard(), &mut all);
    let mut used_families = BTreeSet::new();
    let mut problems = Vec::new();
    for expr in &all {
        for r in metric_refs(expr) {
            let family = s.family_of(&r.name);
            let kind = s.types.get(family).map(String::as_str);
            if !exposed.contains(r.name.as_str()) {
                problems.push(format!("{} (in {expr:?}) is not exposed", r.name));
                continue;
            }
            if kind == Some("histogram") && family == r.name {
                problems.push(format!(
                    "{} is a histogram; query its _bucket, _sum or _count",
                    r.name
                ));
            }
            let known = s.label_names(&r.name);
            for label in &r.labels {
                if !known.contains(label.as_str()) {
                    problems.push(format!(
                        "{} has no label {label:?} (it has {known:?}); in {expr:?}",
                        r.name
                    ));
                }
            }
            used_families.insert(family.to_owned());
        }
    }
    for family in s.types.keys() {
        if !used_families.contains(family) {
            problems.push(format!("no panel shows {family}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{DASHBOARD} against a running router:\n  {}\nexposed: {exposed:?}",
        problems.join("\n  ")
    );
}
