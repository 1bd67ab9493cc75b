//! Anthropic's Messages API as a front door (`POST /v1/messages`): to an
//! Anthropic target the client's bytes go up and the answer's bytes come
//! back untouched (only the model spliced, the key replaced); to an
//! OpenAI-compatible target the request is translated and the answer
//! translated back, streamed event by event; every error the router answers
//! is in Anthropic's envelope.

use serde_json::{json, Value};

use crate::support::client::{open_stream, send};
use crate::support::*;

const ANTHROPIC_KEY: &str = "sk-ant-upstream-key";

/// A router with `claude` on the Anthropic mock at `anthropic` (upstream
/// model `claude-sonnet-4-5`) and `gpt` on the OpenAI mock at `openai`;
/// `claude_then_gpt` tries the Anthropic target first, then the OpenAI one.
fn config(anthropic: &str, openai: &str, server: &str) -> String {
    format!(
        "{server}upstreams:\n  ant:\n    provider: anthropic\n    base_url: {anthropic}\n    api_key: {ANTHROPIC_KEY}\n    circuit_breaker: false\n  oai:\n    provider: openai-compatible\n    base_url: {openai}/v1\n    health_check: false\nmodels:\n  claude:\n    targets: [{{ upstream: ant, model: claude-sonnet-4-5 }}]\n  gpt:\n    targets: [{{ upstream: oai, model: gpt-4o-mini }}]\n  claude_then_gpt:\n    strategy: priority\n    targets: [{{ upstream: ant, model: claude-sonnet-4-5 }}, {{ upstream: oai, model: gpt-4o-mini }}]\n"
    )
}

async fn post(router: &Router, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send("POST", &router.url("/v1/messages"), &all, body.to_owned()).await
}

/// A request with fields a translation would lose: thinking blocks with
/// signatures, cache-control markers, a server tool and a field Anthropic
/// may add tomorrow.
const RICH_REQUEST: &str = r#"{"model":"claude","max_tokens":1024,"future_field":{"x":[1,2]},
 "system":[{"type":"text","text":"Be terse.","cache_control":{"type":"ephemeral"}}],
 "thinking":{"type":"enabled","budget_tokens":2000},
 "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":2}],
 "messages":[{"role":"user","content":"What is 2+2?"},
  {"role":"assistant","content":[{"type":"thinking","thinking":"Simple.","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDYsbn"},{"type":"text","text":"4"}]},
  {"role":"user","content":[{"type":"text","text":"And 3+3?","cache_control":{"type":"ephemeral"}}]}]}"#;

const MESSAGE: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"Add.","signature":"EqQBsig"},{"type":"text","text":"6","citations":null}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"cache_read_input_tokens":5,"cache_creation_input_tokens":0,"output_tokens":7}}"#;

#[tokio::test]
async fn an_anthropic_target_gets_the_clients_bytes_and_the_client_gets_its_bytes() {
    init_tracing();
    let ant = MockUpstream::start(Behaviour::Json(MESSAGE.into())).await;
    let oai = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "gpt-4o-mini",
        "unused",
    )))
    .await;
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), "")).await;

    let reply = post(
        &router,
        &[
            ("x-api-key", "caller-key-must-not-leak"),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
        ],
        RICH_REQUEST,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    // The answer's bytes, untouched.
    assert_eq!(reply.text(), MESSAGE);
    let up = ant.last_request().expect("sent");
    assert_eq!(up.path(), "/v1/messages");
    // The client's bytes, only the model spliced.
    let expected = RICH_REQUEST.replacen("\"claude\"", "\"claude-sonnet-4-5\"", 1);
    assert_eq!(up.text(), expected);
    assert_eq!(up.header("x-api-key").as_deref(), Some(ANTHROPIC_KEY));
    assert_eq!(
        up.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        up.header("anthropic-beta").as_deref(),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(oai.request_count(), 0);
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("ant/claude-sonnet-4-5")
    );
}

#[tokio::test]
async fn an_anthropic_stream_passes_through_and_its_usage_is_counted() {
    init_tracing();
    let events = [
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        ),
        ("ping", r#"{"type": "ping"}"#),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm."}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBsig"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let chunks: Vec<String> = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    let whole = chunks.concat();
    let ant = MockUpstream::start(Behaviour::sse(chunks)).await;
    let oai = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "gpt-4o-mini",
        "unused",
    )))
    .await;
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), "")).await;

    let stream = open_stream(
        &router.url("/v1/messages"),
        &[],
        r#"{"model":"claude","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    let body = String::from_utf8(stream.rest().await.expect("a whole stream").to_vec()).unwrap();
    assert_eq!(body, whole);

    let metrics = crate::support::client::get(&router.url("/metrics"))
        .await
        .text();
    let tokens = |kind: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("switchyard_tokens_total{") && l.contains(&format!("type=\"{kind}\""))
            })
            .unwrap_or_default()
            .to_owned()
    };
    assert!(tokens("prompt").ends_with(" 25"), "{metrics}");
    assert!(tokens("completion").ends_with(" 15"), "{metrics}");
}

#[tokio::test]
async fn an_openai_target_gets_a_translated_request_and_the_client_an_anthropic_message() {
    init_tracing();
    let ant = MockUpstream::start(Behaviour::Json(MESSAGE.into())).await;
    let oai = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "gpt-4o-mini",
        "Four.",
    )))
    .await;
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), "")).await;

    let reply = post(
        &router,
        &[
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "prompt-caching-2024-07-31"),
        ],
        r#"{"model":"gpt","max_tokens":64,"system":"Be terse.","stop_sequences":["END"],"metadata":{"user_id":"u-1"},
            "messages":[{"role":"user","content":[{"type":"text","text":"2+2?"}]}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let up = oai.last_request().expect("sent");
    // Anthropic's protocol headers mean nothing to an OpenAI target.
    assert_eq!(up.header("anthropic-version"), None);
    assert_eq!(up.header("anthropic-beta"), None);
    let sent = up.json();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be terse."})
    );
    assert_eq!(sent["messages"][1]["role"], "user");
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(sent["user"], "u-1");
    let body = reply.json();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "gpt");
    assert_eq!(body["content"][0], json!({"type": "text", "text": "Four."}));
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["input_tokens"].as_u64().is_some(), "{body}");
    assert!(body["usage"]["output_tokens"].as_u64().is_some(), "{body}");
    assert_eq!(ant.request_count(), 0);
}

#[tokio::test]
async fn an_openai_stream_becomes_anthropics_event_sequence() {
    init_tracing();
    let ant = MockUpstream::start(Behaviour::Json(MESSAGE.into())).await;
    let oai = MockUpstream::start(Behaviour::sse(chat_chunks(
        "gpt-4o-mini",
        &["Hel", "lo"],
        true,
    )))
    .await;
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), "")).await;

    let stream = open_stream(
        &router.url("/v1/messages"),
        &[],
        r#"{"model":"gpt","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    assert!(stream
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream")));
    let body = String::from_utf8(stream.rest().await.expect("a whole stream").to_vec()).unwrap();
    let names: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .filter(|n| *n != "ping")
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{body}"
    );
    let text: String = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hello");
    let delta = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["type"] == "message_delta")
        .expect("a message_delta");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 7, "{delta}");
    // The client asked for no usage chunk, but the door asks for it (to
    // report usage in message_delta): it must not leak as an OpenAI event.
    assert!(!body.contains("chat.completion"), "{body}");
}

#[tokio::test]
async fn an_overloaded_anthropic_target_fails_over_to_an_openai_one_in_anthropics_shape() {
    init_tracing();
    let ant = MockUpstream::start(Behaviour::Status {
        status: 529,
        body: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            .into(),
        headers: vec![],
    })
    .await;
    let oai = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "gpt-4o-mini",
        "from backup",
    )))
    .await;
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), "")).await;

    let reply = post(
        &router,
        &[],
        r#"{"model":"claude_then_gpt","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("oai/gpt-4o-mini")
    );
    let body = reply.json();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "from backup");
    assert!(ant.request_count() >= 1);
}

#[tokio::test]
async fn every_error_the_door_answers_is_in_anthropics_envelope() {
    init_tracing();
    let ant = MockUpstream::start(Behaviour::Status {
        status: 400,
        body: r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_1"}"#.into(),
        headers: vec![],
    })
    .await;
    let oai = MockUpstream::start(openai_error(
        429,
        "Rate limit reached",
        "requests",
        "rate_limit_exceeded",
    ))
    .await;
    let server = "server:\n  auth:\n    keys: [sk-router]\n";
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), server)).await;
    let key = [("x-api-key", "sk-router")];
    let hi = r#"{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#;

    let envelope = |reply: &Reply, status: u16, kind: &str| {
        assert_eq!(reply.status, status, "{}", reply.text());
        let body = reply.json();
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    };
    // The router's own: no key, a wrong key, an unknown model, bad JSON.
    envelope(&post(&router, &[], hi).await, 401, "authentication_error");
    envelope(
        &post(&router, &[("x-api-key", "nope")], hi).await,
        401,
        "authentication_error",
    );
    // Recent SDKs send the key as a Bearer token.
    let bearer = post(&router, &[("authorization", "Bearer sk-router")], hi).await;
    assert_eq!(bearer.status, 400, "{}", bearer.text());
    envelope(
        &post(
            &router,
            &key,
            r#"{"model":"nope","max_tokens":5,"messages":[]}"#,
        )
        .await,
        404,
        "not_found_error",
    );
    envelope(
        &post(&router, &key, "{not json").await,
        400,
        "invalid_request_error",
    );
    // An Anthropic target's own error passes through as it is.
    let passed = post(&router, &key, hi).await;
    assert_eq!(passed.status, 400);
    assert!(
        passed.text().contains("max_tokens: Field required"),
        "{}",
        passed.text()
    );
    // An OpenAI target's error is put in Anthropic's envelope.
    let gpt = post(
        &router,
        &key,
        r#"{"model":"gpt","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    envelope(&gpt, 429, "rate_limit_error");
    // A request an OpenAI target cannot take (a server tool).
    let server_tool = post(
        &router,
        &key,
        r#"{"model":"gpt","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    envelope(&server_tool, 400, "invalid_request_error");
    // An unknown path under the door, and a GET.
    let get = send("GET", &router.url("/v1/messages"), &key, "").await;
    envelope(&get, 405, "invalid_request_error");
}

#[tokio::test]
async fn a_break_after_the_first_token_ends_an_anthropic_stream_with_an_error_event() {
    init_tracing();
    let chunks = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n".to_owned(),
    ];
    let ant = MockUpstream::start(Behaviour::SseCut { chunks }).await;
    let oai = MockUpstream::start(Behaviour::SseCut {
        chunks: chat_chunks("gpt-4o-mini", &["Hel", "lo"], false)[..2].to_vec(),
    })
    .await;
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), "")).await;

    for model in ["claude", "gpt"] {
        let stream = open_stream(
            &router.url("/v1/messages"),
            &[],
            &format!(r#"{{"model":"{model}","max_tokens":64,"stream":true,"messages":[{{"role":"user","content":"Hi"}}]}}"#),
        )
        .await;
        let body = String::from_utf8(stream.rest().await.expect("the body").to_vec()).unwrap();
        assert!(body.contains("\"text\":\"Hel\""), "{model}: {body}");
        let last = body.trim_end().rsplit("\n\n").next().expect("an event");
        assert!(last.starts_with("event: error\ndata: "), "{model}: {body}");
        let data: Value =
            serde_json::from_str(last.trim_start_matches("event: error\ndata: ")).unwrap();
        assert_eq!(data["type"], "error", "{model}: {body}");
        assert!(data["error"]["message"].is_string());
        assert!(!body.contains("message_stop"), "{model}: {body}");
    }
}

#[tokio::test]
async fn count_tokens_goes_to_an_anthropic_target_and_is_estimated_for_others() {
    init_tracing();
    let ant = MockUpstream::start(Behaviour::Json(r#"{"input_tokens":14}"#.into())).await;
    let oai = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "gpt-4o-mini",
        "unused",
    )))
    .await;
    let router = Router::start(&config(&ant.base_url(), &oai.base_url(), "")).await;
    let count = |model: &str| {
        format!(
            r#"{{"model":"{model}","system":"You are a scientist","messages":[{{"role":"user","content":"Hello, Claude, how many tokens is this?"}}]}}"#
        )
    };

    let counted = send(
        "POST",
        &router.url("/v1/messages/count_tokens"),
        &[("content-type", "application/json")],
        count("claude"),
    )
    .await;
    assert_eq!(counted.status, 200, "{}", counted.text());
    assert_eq!(counted.text(), r#"{"input_tokens":14}"#);
    let up = ant.last_request().expect("sent");
    assert_eq!(up.path(), "/v1/messages/count_tokens");
    assert_eq!(up.json()["model"], "claude-sonnet-4-5");
    assert_eq!(counted.header("x-switchyard-token-count"), None);

    let estimated = send(
        "POST",
        &router.url("/v1/messages/count_tokens"),
        &[("content-type", "application/json")],
        count("gpt"),
    )
    .await;
    assert_eq!(estimated.status, 200, "{}", estimated.text());
    assert_eq!(
        estimated.header("x-switchyard-token-count").as_deref(),
        Some("estimated")
    );
    let tokens = estimated.json()["input_tokens"].as_u64().expect("a count");
    assert!((5..100).contains(&tokens), "{tokens}");
    assert_eq!(oai.request_count(), 0, "nothing goes to an OpenAI target");

    let metrics = crate::support::client::get(&router.url("/metrics"))
        .await
        .text();
    assert!(
        metrics.contains("switchyard_door_requests_total{door=\"anthropic\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("switchyard_door_requests_total{door=\"openai\"} 0"));
}
