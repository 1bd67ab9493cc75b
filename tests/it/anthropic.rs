//! `provider: anthropic` through the router: an OpenAI client's request goes
//! up as an Anthropic Messages request (`/v1/messages`, `x-api-key`,
//! `anthropic-version`), and the Anthropic answer — whole, streamed, or an
//! error — comes back in the OpenAI shape, with failover, commit point and
//! usage working as for an OpenAI upstream. The mock speaks Anthropic's wire
//! format as its documentation shows it.

use serde_json::{json, Value};

use crate::support::client::{get, open_stream, post_json};
use crate::support::translated::{content_of, data_lines, read_stream};
use crate::support::*;

const KEY: &str = "sk-ant-test-key";

/// A router with model `claude` on the Anthropic upstream at `base`, then
/// `fallback_extra` (more YAML for the model), and an optional OpenAI
/// `backup` upstream as its second target.
fn config(base: &str, backup: Option<&str>, upstream_extra: &str) -> String {
    let mut yaml = format!(
        "upstreams:\n  claude-up:\n    provider: anthropic\n    base_url: {base}\n    api_key: {KEY}\n{upstream_extra}"
    );
    if let Some(backup) = backup {
        yaml.push_str(&format!(
            "  backup:\n    provider: openai-compatible\n    base_url: {backup}/v1\n    health_check: false\n"
        ));
    }
    yaml.push_str("models:\n  claude:\n    strategy: priority\n    targets:\n      - { upstream: claude-up, model: claude-sonnet-4-5 }\n");
    if backup.is_some() {
        yaml.push_str("      - { upstream: backup, model: gpt-backup }\n");
    }
    yaml
}

fn message(text: &str, stop_reason: &str) -> String {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 6,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3}
    })
    .to_string()
}

/// Anthropic's documented event sequence for a short text answer, with a
/// `ping` in it, one event per chunk.
pub(crate) fn text_stream(pieces: &[&str]) -> Vec<String> {
    let mut events = vec![
        sse_event(
            "message_start",
            &json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "content": [],
            "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        ),
        sse_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        sse_event("ping", &json!({"type": "ping"})),
    ];
    for piece in pieces {
        events.push(sse_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.push(sse_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(sse_event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                "stop_sequence": null}, "usage": {"output_tokens": 15}}),
    ));
    events.push(sse_event("message_stop", &json!({"type": "message_stop"})));
    events
}

fn sse_event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A streamed chat request for `claude` that does not ask for usage.
const HI_STREAM: &str =
    r#"{"model":"claude","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;

#[tokio::test]
async fn a_chat_request_goes_up_as_a_messages_request_and_comes_back_as_a_chat_completion() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(message("Hi there!", "end_turn"))).await;
    let router = Router::start(&config(&mock.base_url(), None, "")).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"claude","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"Hi"}],"temperature":0.5}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let up = mock.last_request().expect("the upstream got the request");
    assert_eq!(up.path(), "/v1/messages");
    assert_eq!(up.header("x-api-key").as_deref(), Some(KEY));
    assert_eq!(
        up.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        up.header("authorization"),
        None,
        "the key goes in x-api-key only"
    );
    let sent = up.json();
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "Be terse.");
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "Hi"}]));
    assert_eq!(
        sent["max_tokens"], 4096,
        "the default when the client sends none"
    );
    assert_eq!(sent["temperature"], 0.5);

    let answer = reply.json();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    assert_eq!(answer["choices"][0]["message"]["content"], "Hi there!");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        answer["usage"]["prompt_tokens"], 15,
        "input + cache read + cache creation"
    );
    assert_eq!(answer["usage"]["completion_tokens"], 6);
    assert_eq!(answer["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("claude-up/claude-sonnet-4-5")
    );
    assert!(reply
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
}

#[tokio::test]
async fn the_version_beta_and_default_max_tokens_are_the_upstreams_settings() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(message("ok", "max_tokens"))).await;
    let router = Router::start(&config(
        &mock.base_url(),
        None,
        "    anthropic: { version: \"2024-01-01\", beta: [a-2024, b-2025], max_tokens: 1000 }\n",
    ))
    .await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"claude","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let up = mock.last_request().unwrap();
    assert_eq!(
        up.header("anthropic-version").as_deref(),
        Some("2024-01-01")
    );
    assert_eq!(
        up.header("anthropic-beta").as_deref(),
        Some("a-2024,b-2025")
    );
    assert_eq!(up.json()["max_tokens"], 1000);
    assert_eq!(reply.json()["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn a_stream_is_translated_event_by_event_with_usage_when_asked() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::sse(text_stream(&["Hel", "lo", "!"]))).await;
    let router = Router::start(&config(&mock.base_url(), None, "")).await;

    let stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"claude","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    assert_eq!(stream.status, 200);
    assert!(stream
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream"));
    let body = String::from_utf8(stream.rest().await.expect("a whole stream").to_vec()).unwrap();

    let chunks = data_lines(&body);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"), "{body}");
    assert_eq!(content_of(&chunks), "Hello!");
    let parsed: Vec<Value> = chunks[..chunks.len() - 1]
        .iter()
        .map(|c| serde_json::from_str(c).expect("every chunk is JSON"))
        .collect();
    assert!(parsed
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(parsed[0]["choices"][0]["delta"]["role"], "assistant");
    let finish: Vec<&Value> = parsed
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .map(|c| &c["choices"][0]["finish_reason"])
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    let usage = parsed.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 25);
    assert_eq!(usage["usage"]["completion_tokens"], 15);
    assert!(!body.contains("ping"), "pings are not relayed");
    let up = mock.last_request().unwrap();
    assert_eq!(up.json()["stream"], true);
    assert!(
        up.json().get("stream_options").is_none(),
        "not an Anthropic field"
    );
}

#[tokio::test]
async fn a_stream_without_include_usage_shows_no_usage_chunk_but_its_tokens_are_counted() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::sse(text_stream(&["Hi"]))).await;
    let router = Router::start(&config(&mock.base_url(), None, "")).await;

    let body = read_stream(&router, HI_STREAM).await;

    assert!(!body.contains("\"usage\""), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let metrics = get(&router.url("/metrics")).await.text();
    let completion = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_tokens_total{") && l.contains("type=\"completion\""))
        .unwrap_or_default()
        .to_owned();
    assert!(completion.ends_with(" 15"), "{completion}");
}

#[tokio::test]
async fn an_overloaded_anthropic_upstream_fails_over_to_the_next_target() {
    init_tracing();
    let overloaded =
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let mock = MockUpstream::start(Behaviour::Status {
        status: 529,
        body: overloaded.into(),
        headers: vec![],
    })
    .await;
    let backup = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "gpt-backup",
        "from backup",
    )))
    .await;
    let router = Router::start(&config(
        &mock.base_url(),
        Some(&backup.base_url()),
        "    circuit_breaker: false\n",
    ))
    .await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"claude","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("backup/gpt-backup")
    );
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "from backup"
    );
}

#[tokio::test]
async fn an_anthropic_error_reaches_the_client_in_openai_format() {
    init_tracing();
    let invalid = r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"},"request_id":"req_1"}"#;
    let mock = MockUpstream::start(Behaviour::Status {
        status: 400,
        body: invalid.into(),
        headers: vec![],
    })
    .await;
    let router = Router::start(&config(&mock.base_url(), None, "")).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"claude","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 400);
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "invalid_request_error", "{}", reply.text());
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("roles must alternate"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn an_error_event_after_the_first_token_ends_the_stream_with_an_openai_error_frame() {
    init_tracing();
    let mut events = text_stream(&["Hel"]);
    events.truncate(4); // message_start, block start, ping, one delta
    events.push(sse_event(
        "error",
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    let mock = MockUpstream::start(Behaviour::sse(events)).await;
    let router = Router::start(&config(&mock.base_url(), None, "")).await;

    let body = read_stream(&router, HI_STREAM).await;

    let chunks = data_lines(&body);
    assert_eq!(content_of(&chunks), "Hel");
    let last: Value = serde_json::from_str(chunks.last().unwrap()).expect("JSON");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Overloaded"),
        "{body}"
    );
    assert!(!body.contains("[DONE]"), "{body}");
}

#[tokio::test]
async fn an_error_event_before_the_first_token_fails_over() {
    init_tracing();
    let mut events = text_stream(&[]);
    events.truncate(3);
    events.push(sse_event(
        "error",
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    let mock = MockUpstream::start(Behaviour::sse(events)).await;
    let backup = MockUpstream::start(Behaviour::sse(chat_chunks(
        "gpt-backup",
        &["from ", "backup"],
        false,
    )))
    .await;
    let router = Router::start(&config(
        &mock.base_url(),
        Some(&backup.base_url()),
        "    circuit_breaker: false\n",
    ))
    .await;

    let stream = open_stream(&router.url("/v1/chat/completions"), &[], HI_STREAM).await;
    assert_eq!(
        stream.header("x-switchyard-target").as_deref(),
        Some("backup/gpt-backup")
    );
    let body = String::from_utf8(stream.rest().await.expect("a whole stream").to_vec()).unwrap();
    assert_eq!(content_of(&data_lines(&body)), "from backup");
}

#[tokio::test]
async fn what_anthropic_cannot_serve_is_a_400_that_says_so() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(message("unused", "end_turn"))).await;
    let router = Router::start(&config(&mock.base_url(), None, "")).await;

    let embeddings = post_json(
        &router.url("/v1/embeddings"),
        r#"{"model":"claude","input":"hello"}"#,
    )
    .await;
    assert_eq!(embeddings.status, 400, "{}", embeddings.text());
    assert_eq!(embeddings.json()["error"]["code"], "unsupported_endpoint");
    assert!(
        embeddings.text().contains("/v1/embeddings"),
        "{}",
        embeddings.text()
    );

    let two = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"claude","n":2,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    assert_eq!(two.status, 400, "{}", two.text());
    assert_eq!(two.json()["error"]["code"], "unsupported_parameter");
    assert_eq!(two.json()["error"]["type"], "invalid_request_error");
    assert_eq!(mock.request_count(), 0, "nothing went up");
}

#[tokio::test]
async fn a_stream_that_ends_before_message_stop_is_reported_as_cut() {
    init_tracing();
    let mut events = text_stream(&["Hel", "lo"]);
    events.truncate(5); // message_start, block start, ping, two deltas: no message_stop
    let mock = MockUpstream::start(Behaviour::sse(events)).await;
    let router = Router::start(&config(&mock.base_url(), None, "")).await;

    let body = read_stream(&router, HI_STREAM).await;

    let chunks = data_lines(&body);
    assert_eq!(content_of(&chunks), "Hello");
    let last: Value = serde_json::from_str(chunks.last().unwrap()).expect("JSON");
    assert_eq!(
        last["error"]["code"], "upstream_stream_interrupted",
        "{body}"
    );
    assert!(
        !body.contains("[DONE]"),
        "a cut answer never looks complete: {body}"
    );
}
