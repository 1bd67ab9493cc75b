//! Two Switchyard replicas (two servers, each with its own registry, as two
//! processes would be) on one real `redis-server` (`state.redis`): a key's
//! limits and budget hold across both, tokens are charged from the usage
//! observed, the response cache is shared, and a Redis that goes away mid-run
//! is handled as `on_error` says — then found again.

use std::time::Duration;

use switchyard::quota::key::{hex, sha256};

use crate::support::client::{get, send};
use crate::support::extra::poll_until;
use crate::support::metrics_scrape::Scrape;
use crate::support::redis::RedisServer;
use crate::support::*;

const KEY: &str = "sk-sy-test-replicas-0123456789abcdef";

/// The two replicas' config: model `m` on the mock (priced at $1 per token,
/// so one answer of the mock's 18 tokens costs $18), key `team` with
/// `limits`, Redis at `redis`, and `extra` (model keys for `m`).
fn config(
    mock: &MockUpstream,
    redis: &RedisServer,
    limits: &str,
    on_error: &str,
    extra: &str,
    n: u32,
) -> String {
    let state_file = std::env::temp_dir().join(format!(
        "switchyard-replica-{}-{n}-{}.json",
        std::process::id(),
        redis.port
    ));
    format!(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n\
         models:\n  m:\n    targets: [{{ upstream: up, model: upstream-model }}]\n    pricing: {{ input_per_million: 1000000, output_per_million: 1000000 }}\n{extra}\
         keys:\n  - {{ name: team, sha256: {}{limits} }}\n\
         state:\n  file: {}\n  redis: {{ url: \"{}\", on_error: {on_error}, timeout: 200ms }}\n",
        mock.base_url(),
        hex(&sha256(KEY.as_bytes())),
        state_file.display(),
        redis.url(),
    )
}

async fn replicas(
    mock: &MockUpstream,
    redis: &RedisServer,
    limits: &str,
    on_error: &str,
    extra: &str,
) -> (Router, Router) {
    (
        Router::start(&config(mock, redis, limits, on_error, extra, 1)).await,
        Router::start(&config(mock, redis, limits, on_error, extra, 2)).await,
    )
}

async fn chat(router: &Router, body: &str) -> Reply {
    send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {KEY}")),
        ],
        body.to_owned(),
    )
    .await
}

const HI: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

async fn redis_up(router: &Router) -> f64 {
    let text = get(&router.url("/metrics")).await.text();
    Scrape::parse(&text)
        .expect("metrics")
        .value("switchyard_redis_up", &[])
}

#[tokio::test]
async fn thirty_requests_across_two_replicas_admit_exactly_the_rpm() {
    init_tracing();
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await;
    let (a, b) = replicas(&mock, &redis, ", rpm: 10", "fail_open", "").await;
    let mut admitted = 0;
    for i in 0..30 {
        let reply = chat(if i % 2 == 0 { &a } else { &b }, HI).await;
        assert_eq!(
            reply.header("x-ratelimit-limit-requests").as_deref(),
            Some("10"),
            "{i}"
        );
        match reply.status.as_u16() {
            200 => {
                admitted += 1;
                let remaining: u64 = reply
                    .header("x-ratelimit-remaining-requests")
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(
                    remaining,
                    10 - admitted,
                    "remaining after {admitted} admitted"
                );
            }
            429 => {
                assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");
                let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=6).contains(&retry), "{retry}");
                assert_eq!(
                    reply.header("x-ratelimit-remaining-requests").as_deref(),
                    Some("0")
                );
            }
            other => panic!("request {i}: {other} {}", reply.text()),
        }
    }
    assert_eq!(admitted, 10, "exactly rpm admitted across both replicas");
    assert_eq!(mock.request_count(), 10);
}

#[tokio::test]
async fn a_budget_spent_on_one_replica_is_spent_on_the_other() {
    init_tracing();
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await;
    // $18 per answer: the first answer spends the $10 budget.
    let (a, b) = replicas(
        &mock,
        &redis,
        ", budget: { daily_usd: 10 }",
        "fail_open",
        "",
    )
    .await;
    assert_eq!(chat(&a, HI).await.status, 200);
    // The spend is settled in Redis when the answer ends (just after).
    let refused = poll_until(
        "the spend to reach Redis",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let reply = chat(&b, HI).await;
            (reply.status == 429).then_some(reply)
        },
    )
    .await;
    assert_eq!(refused.json()["error"]["code"], "insufficient_quota");
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("UTC midnight"));
    // (A request b admitted before the first answer's spend was settled —
    // budgets are charged when answers end — is the only other one.)
    assert!(mock.request_count() <= 2, "{}", mock.request_count());
    // /stats on the replica that served nothing shows the spend from Redis.
    let auth = format!("Bearer {KEY}");
    let stats = send("GET", &b.url("/stats"), &[("authorization", &auth)], "").await;
    let team = stats.json()["keys"][0].clone();
    assert_eq!(team["name"], "team");
    let spent = team["spend_today_usd"].as_f64().unwrap();
    assert!(spent == 18.0 || spent == 36.0, "{team}");
    assert_eq!(team["remaining_daily_usd"], 0.0, "{team}");
    assert_eq!(team["rate_limited"], 1, "{team}");
}

#[tokio::test]
async fn tokens_are_charged_from_the_usage_observed_across_replicas() {
    init_tracing();
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await;
    let (a, b) = replicas(&mock, &redis, ", tpm: 100", "fail_open", "").await;
    // Each request reserves its max_tokens (60) and a prompt estimate; the
    // answer uses 18 tokens. Only once the first reservation is corrected to
    // 18 does a second fit under 100.
    let body = r#"{"model":"m","max_tokens":60,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(chat(&a, body).await.status, 200);
    let second = poll_until(
        "the correction to reach Redis",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let reply = chat(&b, body).await;
            (reply.status == 200).then_some(reply)
        },
    )
    .await;
    let remaining: u64 = second
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < 100 - 18 - 60, "{remaining}");
}

#[tokio::test]
async fn the_response_cache_is_shared_byte_for_byte() {
    init_tracing();
    let redis = RedisServer::start().await;
    let chunks = chat_chunks("upstream-model", &["Hel", "lo"], false);
    let mock = MockUpstream::start_sequence(vec![
        Behaviour::Json(chat_completion_json("upstream-model", "hi")),
        Behaviour::sse(chunks),
    ])
    .await;
    let yaml = |n| {
        config(
            &mock,
            &redis,
            "",
            "fail_open",
            "    cache: { ttl: 1m }\n",
            n,
        ) + "cache: { shared: true }\n"
    };
    let a = Router::start(&yaml(1)).await;
    let b = Router::start(&yaml(2)).await;

    let first = chat(&a, HI).await;
    assert_eq!(first.header("x-switchyard-cache").as_deref(), Some("miss"));
    let second = poll_until(
        "the entry to reach Redis",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let reply = chat(&b, HI).await;
            (reply.header("x-switchyard-cache").as_deref() == Some("hit")).then_some(reply)
        },
    )
    .await;
    assert_eq!(
        second.body, first.body,
        "byte for byte, from the other replica"
    );

    let stream = HI.replace(r#""model":"m","#, r#""model":"m","stream":true,"#);
    let streamed = chat(&b, &stream).await;
    // A stream made from the JSON answer another replica kept: not a call.
    assert_eq!(
        streamed.header("x-switchyard-cache").as_deref(),
        Some("hit")
    );
    assert!(streamed.text().ends_with("data: [DONE]\n\n"));
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn with_redis_gone_fail_open_serves_by_local_limits_and_recovers() {
    init_tracing();
    let mut redis = RedisServer::start().await;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await;
    let (a, b) = replicas(&mock, &redis, ", rpm: 1000", "fail_open", "").await;
    assert_eq!(chat(&a, HI).await.status, 200);
    redis.stop();
    for router in [&a, &b, &a, &b] {
        assert_eq!(
            chat(router, HI).await.status,
            200,
            "served by the replica's own limits"
        );
    }
    assert_eq!(redis_up(&a).await, 0.0);
    redis.restart().await;
    poll_until(
        "Redis to be found again",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async {
            let ok = chat(&a, HI).await.status == 200;
            (ok && redis_up(&a).await == 1.0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn with_redis_gone_fail_closed_refuses_with_503_and_recovers() {
    init_tracing();
    let mut redis = RedisServer::start().await;
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await;
    let (a, _b) = replicas(&mock, &redis, ", rpm: 1000", "fail_closed", "").await;
    assert_eq!(chat(&a, HI).await.status, 200);
    redis.stop();
    let refused = chat(&a, HI).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "limits_unavailable");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    redis.restart().await;
    poll_until(
        "Redis to be found again",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async { (chat(&a, HI).await.status == 200).then_some(()) },
    )
    .await;
}
