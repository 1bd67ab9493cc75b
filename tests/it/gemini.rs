//! `provider: gemini` through the router: an OpenAI client's request goes up
//! as a Gemini `generateContent` request (the model in the path, the key in
//! `x-goog-api-key`; `:streamGenerateContent?alt=sse` when streamed), and the
//! answer — whole, streamed, or an error — comes back in the OpenAI shape,
//! with failover, commit point and usage as for an OpenAI upstream. The mock
//! speaks Gemini's wire format as its documentation shows it (SSE events
//! separated by CRLF, usage cumulative, no terminator).

use serde_json::{json, Value};

use crate::support::client::{get, open_stream, post_json};
use crate::support::translated::{content_of, data_lines, read_stream};
use crate::support::*;

const KEY: &str = "gemini-test-key";

/// A router with model `gem` on the Gemini upstream at `base`, and an
/// optional OpenAI `backup` upstream as its second target.
fn config(base: &str, backup: Option<&str>) -> String {
    let mut yaml = format!(
        "upstreams:\n  gem-up:\n    provider: gemini\n    base_url: {base}\n    api_key: {KEY}\n    circuit_breaker: false\n"
    );
    if let Some(backup) = backup {
        yaml.push_str(&format!(
            "  backup:\n    provider: openai-compatible\n    base_url: {backup}/v1\n    health_check: false\n"
        ));
    }
    yaml.push_str("models:\n  gem:\n    strategy: priority\n    targets:\n      - { upstream: gem-up, model: gemini-2.5-flash }\n");
    if backup.is_some() {
        yaml.push_str("      - { upstream: backup, model: gpt-backup }\n");
    }
    yaml
}

/// A whole `generateContent` answer.
fn answer(text: &str, finish: &str) -> String {
    json!({
        "candidates": [{
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": finish,
            "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 5,
                          "totalTokenCount": 14},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"
    })
    .to_string()
}

/// One `streamGenerateContent?alt=sse` event, as Gemini frames it (CRLF).
fn event(data: &Value) -> String {
    format!("data: {data}\r\n\r\n")
}

/// Gemini's stream for a short text answer: one event per piece, usage on
/// each (cumulative), `finishReason` on the last.
fn text_stream(pieces: &[&str]) -> Vec<String> {
    let last = pieces.len() - 1;
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut candidate =
                json!({"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0});
            if i == last {
                candidate["finishReason"] = json!("STOP");
            }
            event(&json!({
                "candidates": [candidate],
                "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": i + 1,
                                  "totalTokenCount": 8 + i},
                "modelVersion": "gemini-2.5-flash",
                "responseId": "stream-1"
            }))
        })
        .collect()
}

#[tokio::test]
async fn a_chat_request_goes_up_as_generate_content_and_comes_back_as_a_chat_completion() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(answer("Hi there!", "STOP"))).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"gem","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"Hi"}],"temperature":0.5,"max_tokens":50}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let up = mock.last_request().expect("the upstream got the request");
    assert_eq!(
        up.uri.to_string(),
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(up.header("x-goog-api-key").as_deref(), Some(KEY));
    assert_eq!(up.header("authorization"), None);
    let sent = up.json();
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "Be terse.");
    assert_eq!(sent["contents"][0]["role"], "user");
    assert_eq!(sent["contents"][0]["parts"][0]["text"], "Hi");
    assert_eq!(sent["generationConfig"]["temperature"], 0.5);
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 50);
    assert!(
        sent.get("model").is_none() && sent.get("stream").is_none(),
        "{sent}"
    );

    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "Hi there!");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 9);
    assert_eq!(body["usage"]["completion_tokens"], 5);
    assert_eq!(body["usage"]["total_tokens"], 14);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn a_stream_is_translated_event_by_event_with_usage_when_asked() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::sse(text_stream(&["Hel", "lo, ", "world"]))).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let body = read_stream(
        &router,
        r#"{"model":"gem","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    let up = mock.last_request().expect("the upstream got the request");
    assert_eq!(
        up.uri.to_string(),
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    let chunks = data_lines(&body);
    assert_eq!(content_of(&chunks), "Hello, world");
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"), "{body}");
    let parsed: Vec<Value> = chunks
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("JSON chunk"))
        .collect();
    assert!(parsed
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let finishes: Vec<&Value> = parsed
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "{body}");
    assert_eq!(finishes[0]["choices"][0]["finish_reason"], "stop");
    let usage = parsed.last().expect("chunks");
    assert_eq!(usage["choices"], json!([]), "{body}");
    assert_eq!(usage["usage"]["prompt_tokens"], 7);
    assert_eq!(usage["usage"]["completion_tokens"], 3);

    // Without include_usage the client gets no usage chunk, but the tokens
    // are still counted.
    let body = read_stream(
        &router,
        r#"{"model":"gem","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    assert!(!body.contains("\"usage\""), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let metrics = get(&router.url("/metrics")).await.text();
    let completion = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_tokens_total{") && l.contains("type=\"completion\""))
        .unwrap_or_default()
        .to_owned();
    assert!(completion.ends_with(" 6"), "{completion}");
}

#[tokio::test]
async fn tool_calls_go_up_as_function_declarations_and_come_back_as_tool_calls() {
    init_tracing();
    let call = json!({
        "candidates": [{
            "content": {"parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], "role": "model"},
            "finishReason": "STOP", "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 6, "totalTokenCount": 26}
    })
    .to_string();
    let mock = MockUpstream::start(Behaviour::Json(call)).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"gem","messages":[{"role":"user","content":"Weather in Paris?"}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
            "tool_choice":"required"}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = mock.last_request().expect("sent").json();
    let declaration = &sent["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "get_weather");
    assert_eq!(
        sent["toolConfig"]["functionCallingConfig"]["mode"], "ANY",
        "{sent}"
    );
    let body = reply.json();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("a string"))
            .expect("JSON arguments");
    assert_eq!(arguments, json!({"city": "Paris"}));
    assert!(call["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn an_exhausted_gemini_quota_fails_over_to_the_next_target() {
    init_tracing();
    let exhausted = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
    let mock = MockUpstream::start(Behaviour::Status {
        status: 429,
        body: exhausted.into(),
        headers: vec![],
    })
    .await;
    let backup = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "gpt-backup",
        "from backup",
    )))
    .await;
    let router = Router::start(&config(&mock.base_url(), Some(&backup.base_url()))).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"gem","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("backup/gpt-backup")
    );
    assert!(mock.request_count() >= 1);
}

#[tokio::test]
async fn a_gemini_error_reaches_the_client_in_openai_format() {
    init_tracing();
    let invalid = r#"{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified","status":"INVALID_ARGUMENT"}}"#;
    let mock = MockUpstream::start(Behaviour::Status {
        status: 400,
        body: invalid.into(),
        headers: vec![],
    })
    .await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"gem","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 400, "{}", reply.text());
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "INVALID_ARGUMENT");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("contents is not specified")),
        "{error}"
    );
    assert!(!reply.text().contains(KEY));
}

#[tokio::test]
async fn a_stream_that_ends_without_a_finish_reason_is_reported_as_cut() {
    init_tracing();
    let mut events = text_stream(&["Hel", "lo", "never"]);
    events.pop();
    let mock = MockUpstream::start(Behaviour::sse(events)).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"gem","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    let body = String::from_utf8(stream.rest().await.expect("the body").to_vec()).unwrap();
    let chunks = data_lines(&body);
    assert_eq!(content_of(&chunks), "Hello");
    assert!(!body.contains("[DONE]"), "{body}");
    let last: Value = serde_json::from_str(chunks.last().expect("an error event")).unwrap();
    assert!(last["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn embeddings_on_a_gemini_model_are_a_400_that_says_so() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(answer("unused", "STOP"))).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let reply = post_json(
        &router.url("/v1/embeddings"),
        r#"{"model":"gem","input":"hello"}"#,
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "unsupported_endpoint");
    assert_eq!(mock.request_count(), 0, "nothing went up");
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_drops_the_gemini_request() {
    init_tracing();
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: text_stream(&["Hel", "lo", " there"]),
        gate: gate.clone(),
    })
    .await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let mut stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"gem","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    let seen = stream.read_until("Hel").await;
    assert!(seen.contains("Hel"), "{seen}");
    drop(stream);
    assert!(
        mock.wait_for_cancelled_stream(std::time::Duration::from_secs(5))
            .await,
        "the upstream request is dropped when the client leaves"
    );
}
