//! The response cache through the real router: a repeated request is
//! answered byte for byte from the cache without an upstream call, streamed
//! or not; only whole answers are kept; `Cache-Control` on the request is
//! honoured; hits are counted with zero tokens.

use std::time::Duration;

use crate::support::client::{get, open_stream, send};
use crate::support::metrics_scrape::Scrape;
use crate::support::{
    chat_chunks, chat_completion_json, init_tracing, openai_error, Behaviour, MockUpstream, Router,
};

const CHAT: &str =
    r#"{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}],"temperature":0}"#;
const CHAT_STREAM: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"What is 2+2?"}],"temperature":0}"#;

fn config(mock: &MockUpstream, cache: &str) -> String {
    format!(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\nmodels:\n  m:\n    targets: [{{ upstream: up, model: m }}]\n    retry: {{ attempts: 0 }}\n{cache}",
        mock.base_url()
    )
}

async fn post(router: &Router, body: &str, headers: &[(&str, &str)]) -> crate::support::Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(
        "POST",
        &router.url("/v1/chat/completions"),
        &all,
        body.to_owned(),
    )
    .await
}

async fn scrape(router: &Router) -> Scrape {
    Scrape::parse(&get(&router.url("/metrics")).await.text()).expect("metrics parse")
}

#[tokio::test]
async fn a_repeated_request_is_answered_byte_for_byte_from_the_cache() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "4"))).await;
    let router = Router::start(&config(&mock, "    cache: { ttl: 10m }\n")).await;

    let first = post(&router, CHAT, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-switchyard-cache").as_deref(), Some("miss"));
    // The same request, written differently (key order, whitespace, a user id).
    let again = r#"{ "temperature": 0, "user": "someone-else", "messages": [{"content":"What is 2+2?","role":"user"}], "model": "m" }"#;
    let second = post(&router, again, &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-switchyard-cache").as_deref(), Some("hit"));
    assert_eq!(second.body, first.body, "byte for byte");
    assert_eq!(mock.request_count(), 1, "the hit made no upstream call");

    let other = post(&router, &CHAT.replace("2+2", "3+3"), &[]).await;
    assert_eq!(other.header("x-switchyard-cache").as_deref(), Some("miss"));
    assert_eq!(mock.request_count(), 2);

    let m = scrape(&router).await;
    assert_eq!(
        m.value(
            "switchyard_cache_lookups_total",
            &[("model", "m"), ("result", "hit")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "switchyard_cache_lookups_total",
            &[("model", "m"), ("result", "miss")]
        ),
        2.0
    );
    assert_eq!(
        m.value(
            "switchyard_requests_total",
            &[
                ("model", "m"),
                ("target", "(cache)"),
                ("status_class", "2xx")
            ]
        ),
        1.0
    );
    assert_eq!(m.value("switchyard_cache_entries", &[]), 2.0);
    assert!(m.value("switchyard_cache_bytes", &[]) > 0.0);
}

#[tokio::test]
async fn a_stream_replays_byte_for_byte_and_a_json_answer_can_be_replayed_as_a_stream() {
    init_tracing();
    let chunks = chat_chunks("m", &["2", "+2", " is 4"], true);
    let mock = MockUpstream::start_sequence(vec![
        Behaviour::sse(chunks.clone()),
        Behaviour::Json(chat_completion_json("m", "Four.")),
    ])
    .await;
    let router = Router::start(&config(&mock, "    cache: true\n")).await;
    let with_usage = CHAT_STREAM.replace(
        r#""stream":true"#,
        r#""stream":true,"stream_options":{"include_usage":true}"#,
    );

    let first = open_stream(&router.url("/v1/chat/completions"), &[], &with_usage).await;
    assert_eq!(first.header("x-switchyard-cache").as_deref(), Some("miss"));
    let first = first.rest().await.unwrap();
    assert_eq!(first, chunks.concat());
    let second = open_stream(&router.url("/v1/chat/completions"), &[], &with_usage).await;
    assert_eq!(second.header("x-switchyard-cache").as_deref(), Some("hit"));
    assert_eq!(
        second.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(second.rest().await.unwrap(), first, "byte for byte");
    // Without include_usage: the same stream minus its usage chunk.
    let plain = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(plain.header("x-switchyard-cache").as_deref(), Some("hit"));
    let plain = String::from_utf8(plain.rest().await.unwrap().to_vec()).unwrap();
    assert!(
        !plain.contains("prompt_tokens") && plain.ends_with("data: [DONE]\n\n"),
        "{plain}"
    );
    assert_eq!(mock.request_count(), 1);

    // A non-streamed request can't be made from a stream: a miss, then kept.
    let json = post(&router, CHAT, &[]).await;
    assert_eq!(json.header("x-switchyard-cache").as_deref(), Some("miss"));
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn cache_control_on_the_request_is_honoured() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "4"))).await;
    let router = Router::start(&config(&mock, "    cache: true\n")).await;

    post(&router, CHAT, &[("cache-control", "no-store")]).await;
    let after_no_store = post(&router, CHAT, &[]).await;
    assert_eq!(
        after_no_store.header("x-switchyard-cache").as_deref(),
        Some("miss"),
        "no-store kept nothing"
    );
    assert_eq!(mock.request_count(), 2);

    let fresh = post(&router, CHAT, &[("cache-control", "no-cache")]).await;
    assert_eq!(
        fresh.header("x-switchyard-cache").as_deref(),
        Some("bypass")
    );
    assert_eq!(mock.request_count(), 3, "no-cache asks the upstream");
    let hit = post(&router, CHAT, &[]).await;
    assert_eq!(hit.header("x-switchyard-cache").as_deref(), Some("hit"));
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn failures_and_cut_streams_are_not_kept() {
    init_tracing();
    let mut cut = chat_chunks("m", &["2", "+2"], false);
    cut.truncate(2);
    let mock = MockUpstream::start_sequence(vec![
        openai_error(500, "boom", "server_error", ""),
        Behaviour::SseCut { chunks: cut },
        Behaviour::Json(chat_completion_json("m", "4")),
    ])
    .await;
    let router = Router::start(&config(&mock, "    cache: true\n")).await;

    assert_eq!(post(&router, CHAT, &[]).await.status, 500);
    let broken = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let broken = String::from_utf8(broken.rest().await.unwrap().to_vec()).unwrap();
    assert!(broken.contains("upstream_stream_interrupted"), "{broken}");
    let third = post(&router, CHAT, &[]).await;
    assert_eq!(third.header("x-switchyard-cache").as_deref(), Some("miss"));
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn entries_expire_after_their_ttl_and_survive_a_reload() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "4"))).await;
    let router = Router::start(&config(&mock, "    cache: { ttl: 1s }\n")).await;
    post(&router, CHAT, &[]).await;
    // A reload with the same cache settings keeps the entry.
    let yaml = config(&mock, "    cache: { ttl: 1s }\n") + "# touched\n";
    std::fs::write(router.config_path(), yaml).unwrap();
    crate::support::extra::poll_until(
        "the reload",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let s = scrape(&router).await;
            (s.value("switchyard_config_generation", &[]) >= 2.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        post(&router, CHAT, &[])
            .await
            .header("x-switchyard-cache")
            .as_deref(),
        Some("hit")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        post(&router, CHAT, &[])
            .await
            .header("x-switchyard-cache")
            .as_deref(),
        Some("miss")
    );
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn a_model_without_cache_says_nothing_about_it() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "4"))).await;
    let router = Router::start(&config(&mock, "")).await;
    let reply = post(&router, CHAT, &[]).await;
    assert_eq!(reply.header("x-switchyard-cache"), None);
    post(&router, CHAT, &[]).await;
    assert_eq!(mock.request_count(), 2);
}
