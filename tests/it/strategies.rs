//! Balancing strategies (docs/resilience.md, "Balancing strategies"): the
//! order in which a model's targets are tried. Every distribution here is
//! deterministic: the weighted cycle is precomputed, power of two choices
//! with two targets compares both, and requests are sent one at a time.

use std::time::Duration;

use crate::support;
use crate::support::client::{open_stream, post_json};
use crate::support::extra::dead_addr;
use crate::support::{
    chat_chunks, chat_completion_json, init_tracing, Behaviour, Gate, MockUpstream, Reply, Router,
};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_STREAM: &str =
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn json(model: &str) -> Behaviour {
    Behaviour::Json(chat_completion_json(model, "ok"))
}

/// Model `m` with `strategy` over upstreams `a` and `b` (weights given).
fn two_targets(strategy: &str, a: &str, wa: u32, b: &str, wb: u32) -> String {
    format!(
        r#"upstreams:
  a: {{ provider: openai-compatible, base_url: "{a}/v1", health_check: false }}
  b: {{ provider: openai-compatible, base_url: "{b}/v1", health_check: false }}
models:
  m:
    strategy: {strategy}
    targets:
      - {{ upstream: a, model: a-model, weight: {wa} }}
      - {{ upstream: b, model: b-model, weight: {wb} }}
"#
    )
}

fn target(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply
        .header("x-switchyard-target")
        .expect("x-switchyard-target")
}

/// Sends `n` chat requests one after another; returns the serving targets.
async fn send_sequentially(router: &Router, n: usize) -> Vec<String> {
    let mut served = Vec::with_capacity(n);
    for _ in 0..n {
        let reply = post_json(&router.url("/v1/chat/completions"), CHAT).await;
        served.push(target(&reply));
    }
    served
}

fn longest_run(served: &[String], who: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for s in served {
        run = if s == who { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[tokio::test]
async fn weighted_three_to_one_sends_exactly_thirty_and_ten_of_forty_smoothly() {
    init_tracing();
    let a = MockUpstream::start(json("a-model")).await;
    let b = MockUpstream::start(json("b-model")).await;
    let router = Router::start(&two_targets("weighted", &a.base_url(), 3, &b.base_url(), 1)).await;

    let served = send_sequentially(&router, 40).await;

    assert_eq!(a.request_count(), 30, "{served:?}");
    assert_eq!(b.request_count(), 10, "{served:?}");
    assert!(
        longest_run(&served, "a/a-model") <= 3,
        "smooth: never more than 3 in a row to the heavy target: {served:?}"
    );
    assert_eq!(
        longest_run(&served, "b/b-model"),
        1,
        "the light target is never picked twice in a row: {served:?}"
    );
    for window in served.chunks(4) {
        let light = window.iter().filter(|s| *s == "b/b-model").count();
        assert_eq!(light, 1, "every 4 requests follow 3:1 exactly: {served:?}");
    }
}

#[tokio::test]
async fn weighted_is_the_default_strategy() {
    init_tracing();
    let a = MockUpstream::start(json("a-model")).await;
    let b = MockUpstream::start(json("b-model")).await;
    let yaml = two_targets("weighted", &a.base_url(), 3, &b.base_url(), 1)
        .replace("    strategy: weighted\n", "");
    assert!(!yaml.contains("strategy"));
    let router = Router::start(&yaml).await;

    send_sequentially(&router, 8).await;

    assert_eq!((a.request_count(), b.request_count()), (6, 2));
}

#[tokio::test]
async fn a_weight_zero_target_is_never_used_while_the_other_is_healthy() {
    init_tracing();
    let a = MockUpstream::start(json("a-model")).await;
    let b = MockUpstream::start(json("b-model")).await;
    let router = Router::start(&two_targets("weighted", &a.base_url(), 1, &b.base_url(), 0)).await;

    let served = send_sequentially(&router, 20).await;

    assert!(served.iter().all(|s| s == "a/a-model"), "{served:?}");
    assert_eq!(a.request_count(), 20);
    assert_eq!(b.request_count(), 0);
}

#[tokio::test]
async fn priority_sends_everything_to_the_first_target_while_it_is_healthy() {
    init_tracing();
    let a = MockUpstream::start(json("a-model")).await;
    let b = MockUpstream::start(json("b-model")).await;
    // Weights are ignored by `priority`.
    let router = Router::start(&two_targets("priority", &a.base_url(), 1, &b.base_url(), 5)).await;

    let served = send_sequentially(&router, 12).await;

    assert!(served.iter().all(|s| s == "a/a-model"), "{served:?}");
    assert_eq!(a.request_count(), 12);
    assert_eq!(b.request_count(), 0);
}

#[tokio::test]
async fn least_busy_sends_new_requests_away_from_the_target_holding_a_stream() {
    init_tracing();
    // Streamed requests get a stream that commits at once (role + content in
    // the first chunk) and then waits on the gate; others get JSON.
    let gate = Gate::new();
    let behaviour = |model: &'static str, gate: Gate| {
        move |req: &support::Recorded| {
            if req.text().contains(r#""stream":true"#) {
                let chunks = chat_chunks(model, &["held", " open"], false);
                Behaviour::SseGated {
                    chunks: vec![chunks[..2].concat(), chunks[2..].concat()],
                    gate: gate.clone(),
                }
            } else {
                json(model)
            }
        }
    };
    let a = MockUpstream::start_with(behaviour("a-model", gate.clone())).await;
    let b = MockUpstream::start_with(behaviour("b-model", gate.clone())).await;
    let router = Router::start(&two_targets(
        "least_busy",
        &a.base_url(),
        1,
        &b.base_url(),
        1,
    ))
    .await;

    // With nothing in flight the first choice is random; whoever gets the
    // stream is the busy one.
    let mut held = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(held.status, 200);
    held.read_until(r#""content":"held""#).await;
    let busy = held
        .header("x-switchyard-target")
        .expect("x-switchyard-target");
    let idle = if busy == "a/a-model" {
        "b/b-model"
    } else {
        "a/a-model"
    };
    tracing::info!(%busy, "holding a stream open");

    let served = send_sequentially(&router, 6).await;

    assert!(
        served.iter().all(|s| s == idle),
        "with one stream open at {busy}, every request goes to {idle}: {served:?}"
    );
    gate.release();
    let rest = held.rest().await.expect("the held stream ends cleanly");
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn latency_prefers_the_target_with_the_faster_first_token() {
    init_tracing();
    // The slow target answers only after 300 ms, so each of its samples is at
    // least that; the fast one answers at once. Only the difference matters,
    // nothing is timed on the client side.
    let fast = MockUpstream::start(json("a-model")).await;
    let slow = MockUpstream::start(json("b-model").delayed(Duration::from_millis(300))).await;
    let router = Router::start(&two_targets(
        "latency",
        &fast.base_url(),
        1,
        &slow.base_url(),
        1,
    ))
    .await;

    let served = send_sequentially(&router, 30).await;

    // An untried target goes first, so the slow one is measured once, within
    // the first two requests; after that both have samples and the fast one
    // always wins the (two-candidate) comparison.
    assert_eq!(slow.request_count(), 1, "{served:?}");
    assert!(
        served[..2].iter().any(|s| s == "b/b-model"),
        "the slow target is measured early: {served:?}"
    );
    assert!(
        served[20..].iter().all(|s| s == "a/a-model"),
        "the last 10 go to the fast target: {served:?}"
    );
}

#[tokio::test]
async fn fallbacks_are_followed_transitively() {
    init_tracing();
    let dead_a = dead_addr().await;
    let dead_b = dead_addr().await;
    let c = MockUpstream::start(json("c-model")).await;
    let yaml = format!(
        r#"upstreams:
  ua: {{ provider: openai-compatible, base_url: "http://{dead_a}/v1", health_check: false }}
  ub: {{ provider: openai-compatible, base_url: "http://{dead_b}/v1", health_check: false }}
  uc: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  a:
    targets: [{{ upstream: ua, model: a-model }}]
    fallbacks: [b]
  b:
    targets: [{{ upstream: ub, model: b-model }}]
    fallbacks: [c]
  c:
    targets: [{{ upstream: uc, model: c-model }}]
"#,
        c.base_url()
    );
    let router = Router::start(&yaml).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;

    assert_eq!(target(&reply), "uc/c-model");
    assert_eq!(reply.header("x-switchyard-model").as_deref(), Some("c"));
    assert_eq!(reply.header("x-switchyard-attempts").as_deref(), Some("3"));
    assert_eq!(reply.text(), chat_completion_json("c-model", "ok"));
    assert_eq!(c.request_count(), 1);
    assert_eq!(c.last_request().unwrap().json()["model"], "c-model");
}

#[tokio::test]
async fn a_models_weighted_shares_hold_when_another_model_falls_back_to_it() {
    init_tracing();
    // `primary` is healthy and lists `shared` as its fallback, so its
    // requests never reach `shared`. `shared`'s own traffic must still be
    // split exactly 3:1.
    let p = MockUpstream::start(json("p-model")).await;
    let a = MockUpstream::start(json("a-model")).await;
    let b = MockUpstream::start(json("b-model")).await;
    let yaml = format!(
        r#"upstreams:
  p: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
  a: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
  b: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  primary:
    targets: [{{ upstream: p, model: p-model }}]
    fallbacks: [shared]
  shared:
    targets:
      - {{ upstream: a, model: a-model, weight: 3 }}
      - {{ upstream: b, model: b-model, weight: 1 }}
"#,
        p.base_url(),
        a.base_url(),
        b.base_url()
    );
    let router = Router::start(&yaml).await;

    let mut shared_served = Vec::new();
    for _ in 0..20 {
        let reply = post_json(
            &router.url("/v1/chat/completions"),
            r#"{"model":"primary","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(target(&reply), "p/p-model");
        let reply = post_json(
            &router.url("/v1/chat/completions"),
            r#"{"model":"shared","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        shared_served.push(target(&reply));
    }

    assert_eq!(p.request_count(), 20);
    assert_eq!(
        (a.request_count(), b.request_count()),
        (15, 5),
        "`shared`'s 20 requests split 3:1: {shared_served:?}"
    );
}
