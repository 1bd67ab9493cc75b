//! `resume`: a stream that breaks after its first token — cut, stalled, or
//! ended by an error event — is continued on the next target and reaches
//! the client as one complete, well-formed stream; when nothing can
//! continue it, the client gets the original failure's error event.

use std::time::{Duration, Instant};

use crate::support::client::{get, open_stream};
use crate::support::metrics_scrape::Scrape;
use crate::support::{
    chat_chunks, init_tracing, openai_error, Behaviour, Gate, MockUpstream, Router,
};

const WAIT: Duration = Duration::from_secs(10);

const CHAT_STREAM: &str = r#"{"model":"m","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"Say hello"}]}"#;

/// The primary's first chunks: the role chunk, then "Hello" and " there".
fn primary_start() -> Vec<String> {
    chat_chunks("a-model", &["Hello", " there"], false)[..3].to_vec()
}

/// A continuation as another server sends it: its own id, model and
/// created, a role chunk, `pieces`, a finish chunk, a usage chunk and
/// `[DONE]`.
fn continuation(pieces: &[&str]) -> Vec<String> {
    let chunk = |choices: String, usage: &str| {
        format!("data: {{\"id\":\"chatcmpl-second\",\"object\":\"chat.completion.chunk\",\"created\":99,\"model\":\"b-model\",\"choices\":{choices},\"usage\":{usage}}}\n\n")
    };
    let mut out = vec![chunk(
        r#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#.into(),
        "null",
    )];
    for piece in pieces {
        out.push(chunk(
            format!(
                r#"[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]"#,
                serde_json::json!(piece)
            ),
            "null",
        ));
    }
    out.push(chunk(
        r#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#.into(),
        "null",
    ));
    out.push(chunk(
        "[]".into(),
        r#"{"prompt_tokens":30,"completion_tokens":3,"total_tokens":33}"#,
    ));
    out.push("data: [DONE]\n\n".into());
    out
}

/// Two (or three) upstreams in priority order, model `m` with `resume` on.
fn config(upstreams: &[(&str, &MockUpstream, &str)], model_extra: &str) -> String {
    let mut yaml = String::from("upstreams:\n");
    for (name, mock, extra) in upstreams {
        yaml.push_str(&format!(
            "  {name}:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n{extra}",
            mock.base_url()
        ));
    }
    yaml.push_str("models:\n  m:\n    strategy: priority\n    targets:\n");
    for (name, _, _) in upstreams {
        yaml.push_str(&format!(
            "      - {{ upstream: {name}, model: {name}-model }}\n"
        ));
    }
    yaml.push_str(model_extra);
    yaml
}

const PREFILL: &str = "    prefill: assistant\n";

/// Parsed `data:` events of a stream: JSON objects, and `[DONE]` as a string.
fn events(text: &str) -> Vec<serde_json::Value> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| {
            if d == "[DONE]" {
                serde_json::Value::String("[DONE]".into())
            } else {
                serde_json::from_str(d).unwrap_or_else(|e| panic!("event {d:?}: {e}"))
            }
        })
        .collect()
}

fn content(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The stream is one whole answer, as from one server.
fn assert_one_answer(text: &str, expected: &str) -> Vec<serde_json::Value> {
    let events = events(text);
    assert_eq!(content(&events), expected, "{text}");
    assert!(!text.contains("\"error\""), "no error: {text}");
    let chunks: Vec<_> = events.iter().filter(|e| e.is_object()).collect();
    for chunk in &chunks {
        assert_eq!(
            chunk["id"], "chatcmpl-mock123",
            "one id throughout: {chunk}"
        );
        assert_eq!(chunk["model"], "a-model", "{chunk}");
        assert_eq!(chunk["created"], 1_700_000_000, "{chunk}");
        assert_eq!(chunk["choices"][0]["index"].as_u64().unwrap_or(0), 0);
    }
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"].get("role").is_some())
        .count();
    assert_eq!(roles, 1, "one role chunk: {text}");
    let finishes = chunks
        .iter()
        .filter(|c| c["choices"][0]["finish_reason"].is_string())
        .count();
    assert_eq!(finishes, 1, "one finish_reason: {text}");
    assert_eq!(text.matches("[DONE]").count(), 1, "one [DONE]: {text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    events
}

fn continuation_request(mock: &MockUpstream) -> serde_json::Value {
    mock.last_request()
        .expect("the continuation was sent")
        .json()
}

async fn resumes(router: &Router, outcome: &str) -> f64 {
    let scrape = Scrape::parse(&get(&router.url("/metrics")).await.text()).expect("metrics parse");
    scrape.value(
        "switchyard_stream_resumes_total",
        &[("model", "m"), ("outcome", outcome)],
    )
}

#[tokio::test]
async fn a_stream_cut_after_its_first_token_is_finished_by_the_next_target() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::SseCut {
        chunks: primary_start(),
    })
    .await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&[" friend", "!"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n",
    ))
    .await;

    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    assert_eq!(
        stream.header("x-switchyard-target").as_deref(),
        Some("a/a-model")
    );
    let text = String::from_utf8(stream.rest().await.expect("one whole stream").to_vec()).unwrap();
    assert_one_answer(&text, "Hello there friend!");
    assert!(
        text.starts_with(&primary_start().concat()),
        "the primary's bytes go on untouched"
    );

    let sent = continuation_request(&b);
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[1],
        serde_json::json!({"role": "assistant", "content": "Hello there"})
    );
    assert_eq!(sent["model"], "b-model");
    assert_eq!(sent["max_tokens"], 48, "two tokens were already generated");
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert!(
        !text.contains("\"usage\":{"),
        "the client did not ask for usage: {text}"
    );
    assert_eq!(resumes(&router, "resumed").await, 1.0);
}

#[tokio::test]
async fn a_stalled_stream_is_resumed_after_the_idle_timeout_and_the_stall_is_let_go() {
    init_tracing();
    let gate = Gate::new();
    let a = MockUpstream::start(Behaviour::SseGated {
        chunks: vec![primary_start().concat(), "data: [DONE]\n\n".into()],
        gate: gate.clone(),
    })
    .await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&[" friend"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n    timeouts: { idle: 300ms }\n",
    ))
    .await;

    let started = Instant::now();
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.expect("one whole stream").to_vec()).unwrap();
    assert_one_answer(&text, "Hello there friend");
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    assert!(
        a.wait_for_cancelled_stream(WAIT).await,
        "the stalled upstream request is dropped"
    );
}

#[tokio::test]
async fn an_error_event_after_the_first_token_is_not_relayed_when_the_stream_resumes() {
    init_tracing();
    let mut chunks = primary_start();
    chunks.push(
        "data: {\"error\":{\"message\":\"model crashed\",\"type\":\"server_error\"}}\n\n".into(),
    );
    let a = MockUpstream::start(Behaviour::sse(chunks)).await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&[" friend"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n",
    ))
    .await;

    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert_one_answer(&text, "Hello there friend");
    assert!(!text.contains("model crashed"), "{text}");
}

#[tokio::test]
async fn a_stream_that_ends_without_finishing_is_resumed() {
    init_tracing();
    // A clean end of the body with no finish_reason and no [DONE].
    let a = MockUpstream::start(Behaviour::sse(primary_start())).await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&[" friend"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n",
    ))
    .await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert_one_answer(&text, "Hello there friend");
}

#[tokio::test]
async fn a_client_that_asked_for_usage_gets_one_usage_chunk_summing_both_parts() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::SseCut {
        chunks: primary_start(),
    })
    .await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&[" friend", "!"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n",
    ))
    .await;
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello"}]}"#;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], body).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    let events = assert_one_answer(&text, "Hello there friend!");
    let usages: Vec<_> = events.iter().filter(|e| e["usage"].is_object()).collect();
    assert_eq!(usages.len(), 1, "{text}");
    // The continuation's own 3 completion tokens, plus the 2 content events before the break.
    assert_eq!(
        usages[0]["usage"],
        serde_json::json!({"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35})
    );
}

#[tokio::test]
async fn a_target_that_cannot_prefill_is_skipped_for_the_resume() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::SseCut {
        chunks: primary_start(),
    })
    .await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&["unused"]))).await;
    let c = MockUpstream::start(Behaviour::sse(continuation(&[" friend"]))).await;
    let router = Router::start(&config(
        &[
            ("a", &a, PREFILL),
            ("b", &b, ""),
            ("c", &c, "    prefill: vllm\n"),
        ],
        "    resume: true\n",
    ))
    .await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert_one_answer(&text, "Hello there friend");
    assert_eq!(b.request_count(), 0, "b cannot continue a prefill");
    let sent = continuation_request(&c);
    assert_eq!(sent["continue_final_message"], true);
    assert_eq!(sent["add_generation_prompt"], false);
}

#[tokio::test]
async fn a_rejected_prefill_never_masks_the_original_failure() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::SseCut {
        chunks: primary_start(),
    })
    .await;
    let b = MockUpstream::start(openai_error(
        400,
        "This model does not support assistant message prefill.",
        "invalid_request_error",
        "",
    ))
    .await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n",
    ))
    .await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert!(text.starts_with(&primary_start().concat()), "{text}");
    assert!(
        !text.contains("prefill"),
        "the rejection is not what the client sees: {text}"
    );
    let events = events(&text);
    let last = events.last().unwrap();
    assert_eq!(
        last["error"]["code"], "upstream_stream_interrupted",
        "{text}"
    );
    assert!(!text.contains("[DONE]"));
    assert_eq!(b.request_count(), 1);
    assert_eq!(resumes(&router, "failed").await, 1.0);
}

#[tokio::test]
async fn a_stream_of_tool_calls_is_not_resumed() {
    init_tracing();
    let chunks = vec![
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n".to_string(),
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\"}}]},\"finish_reason\":null}]}\n\n".to_string(),
    ];
    let a = MockUpstream::start(Behaviour::SseCut { chunks }).await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&["unused"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n",
    ))
    .await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("upstream_stream_interrupted"), "{text}");
    assert_eq!(
        b.request_count(),
        0,
        "tool-call arguments are not continued"
    );
}

#[tokio::test]
async fn without_resume_a_cut_stream_still_ends_with_the_error_event() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::SseCut {
        chunks: primary_start(),
    })
    .await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&["unused"]))).await;
    let router = Router::start(&config(&[("a", &a, PREFILL), ("b", &b, PREFILL)], "")).await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("upstream_stream_interrupted"), "{text}");
    assert_eq!(b.request_count(), 0);
}

#[tokio::test]
async fn a_continuation_that_breaks_too_is_resumed_again_up_to_max_resumes() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::SseCut {
        chunks: primary_start(),
    })
    .await;
    let b = MockUpstream::start(Behaviour::SseCut {
        chunks: continuation(&[" dear"])[..2].to_vec(),
    })
    .await;
    let c = MockUpstream::start(Behaviour::sse(continuation(&[" friend"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL), ("c", &c, PREFILL)],
        "    resume: { max_resumes: 2 }\n",
    ))
    .await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert_one_answer(&text, "Hello there dear friend");
    let sent = continuation_request(&c);
    assert_eq!(
        sent["messages"][1]["content"], "Hello there dear",
        "the second continuation carries everything the client has"
    );
    assert_eq!(resumes(&router, "resumed").await, 2.0);
}

#[tokio::test]
async fn an_anthropic_target_continues_the_prefill_natively() {
    init_tracing();
    let a = MockUpstream::start(Behaviour::SseCut {
        chunks: primary_start(),
    })
    .await;
    let claude = MockUpstream::start(Behaviour::sse(crate::anthropic::text_stream(&[
        " friend", "!",
    ])))
    .await;
    let yaml = format!(
        "upstreams:\n  a:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n  claude:\n    provider: anthropic\n    base_url: {}\n    api_key: sk-ant-test\nmodels:\n  m:\n    strategy: priority\n    targets: [{{ upstream: a, model: a-model }}, {{ upstream: claude, model: claude-sonnet-4-5 }}]\n    resume: true\n",
        a.base_url(),
        claude.base_url()
    );
    let router = Router::start(&yaml).await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert_one_answer(&text, "Hello there friend!");
    let sent = continuation_request(&claude);
    assert_eq!(claude.last_request().unwrap().path(), "/v1/messages");
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["role"], "assistant", "{sent}");
    assert_eq!(messages.last().unwrap()["content"], "Hello there", "{sent}");
    assert_eq!(sent["max_tokens"], 48);
}

#[tokio::test]
async fn an_error_event_read_together_with_the_first_token_is_held_back_too() {
    init_tracing();
    // One upstream read: the role chunk, the first tokens and the error.
    let mut first = primary_start();
    first.push(
        "data: {\"error\":{\"message\":\"model crashed\",\"type\":\"server_error\"}}\n\n".into(),
    );
    let a = MockUpstream::start(Behaviour::sse(vec![first.concat()])).await;
    let b = MockUpstream::start(Behaviour::sse(continuation(&[" friend"]))).await;
    let router = Router::start(&config(
        &[("a", &a, PREFILL), ("b", &b, PREFILL)],
        "    resume: true\n",
    ))
    .await;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], CHAT_STREAM).await;
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert_one_answer(&text, "Hello there friend");
    assert!(!text.contains("model crashed"), "{text}");
}
