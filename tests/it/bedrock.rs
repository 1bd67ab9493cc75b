//! `provider: bedrock` through the router: an OpenAI client's request goes up
//! as a Bedrock Converse request (`/model/{id}/converse`, or
//! `/converse-stream` when streamed), signed with SigV4 or carrying a Bedrock
//! API key, and the answer — JSON, AWS's binary event stream, or an error
//! named in `x-amzn-errortype` — comes back in the OpenAI shape. The mock
//! writes the event stream with its own encoder (`support::eventstream`),
//! with the `p` padding field Bedrock adds to every event.

use serde_json::{json, Value};

use crate::support::client::{get, open_stream, post_json};
use crate::support::eventstream::{chunked, event, exception};
use crate::support::translated::{content_of, data_lines, read_stream};
use crate::support::*;

const MODEL: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";
const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "session-token-for-tests";

/// A router with model `br` on the Bedrock upstream at `base` (signing with
/// static keys and a session token), and an optional OpenAI `backup`.
fn config(base: &str, backup: Option<&str>) -> String {
    let mut yaml = format!(
        "upstreams:\n  br-up:\n    provider: bedrock\n    base_url: {base}\n    circuit_breaker: false\n    bedrock: {{ region: us-east-1, access_key_id: {ACCESS_KEY}, secret_access_key: \"{SECRET_KEY}\", session_token: {SESSION_TOKEN} }}\n"
    );
    if let Some(backup) = backup {
        yaml.push_str(&format!(
            "  backup:\n    provider: openai-compatible\n    base_url: {backup}/v1\n    health_check: false\n"
        ));
    }
    yaml.push_str(&format!("models:\n  br:\n    strategy: priority\n    targets:\n      - {{ upstream: br-up, model: \"{MODEL}\" }}\n"));
    if backup.is_some() {
        yaml.push_str("      - { upstream: backup, model: gpt-backup }\n");
    }
    yaml
}

fn answer(text: &str) -> String {
    json!({
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 11, "outputTokens": 4, "totalTokens": 15},
        "metrics": {"latencyMs": 321}
    })
    .to_string()
}

/// ConverseStream's events for a short text answer.
fn text_events(pieces: &[&str]) -> Vec<Vec<u8>> {
    let mut frames = vec![event(
        "messageStart",
        &json!({"role": "assistant", "p": "abcdefghij"}),
    )];
    for piece in pieces {
        frames.push(event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": piece}, "p": "abcd"}),
        ));
    }
    frames.push(event(
        "contentBlockStop",
        &json!({"contentBlockIndex": 0, "p": "ab"}),
    ));
    frames.push(event(
        "messageStop",
        &json!({"stopReason": "end_turn", "p": "abc"}),
    ));
    frames.push(event(
        "metadata",
        &json!({"usage": {"inputTokens": 13, "outputTokens": 5, "totalTokens": 18},
                "metrics": {"latencyMs": 250}, "p": "abcdef"}),
    ));
    frames
}

fn eventstream(frames: &[Vec<u8>], chunk: usize, cut: bool) -> Behaviour {
    Behaviour::Binary {
        content_type: "application/vnd.amazon.eventstream",
        chunks: chunked(frames, chunk),
        cut,
    }
}

#[tokio::test]
async fn a_chat_request_goes_up_signed_as_converse_and_comes_back_as_a_chat_completion() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(answer("Hello from Bedrock"))).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"br","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"Hi"}],"max_tokens":64,"temperature":0.2}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let up = mock.last_request().expect("the upstream got the request");
    assert_eq!(
        up.path(),
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    let authorization = up.header("authorization").expect("signed");
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"))
            && authorization.contains("/us-east-1/bedrock/aws4_request"),
        "{authorization}"
    );
    assert!(authorization.contains("SignedHeaders=") && authorization.contains("host"));
    let signature = authorization
        .rsplit("Signature=")
        .next()
        .expect("a signature");
    assert_eq!(signature.len(), 64, "{authorization}");
    assert!(up
        .header("x-amz-date")
        .is_some_and(|d| d.len() == 16 && d.ends_with('Z')));
    assert_eq!(
        up.header("x-amz-security-token").as_deref(),
        Some(SESSION_TOKEN)
    );
    let sent = up.json();
    assert_eq!(sent["system"][0]["text"], "Be terse.");
    assert_eq!(sent["messages"][0]["role"], "user");
    assert_eq!(sent["messages"][0]["content"][0]["text"], "Hi");
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 64);
    assert_eq!(sent["inferenceConfig"]["temperature"], 0.2);

    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], MODEL);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from Bedrock"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(body["usage"]["completion_tokens"], 4);
    // Neither key appears anywhere in the answer.
    assert!(!reply.text().contains(SECRET_KEY) && !reply.text().contains(SESSION_TOKEN));
}

#[tokio::test]
async fn the_binary_event_stream_is_decoded_across_reads_and_translated() {
    init_tracing();
    // 7-byte reads: every frame straddles several.
    let mock = MockUpstream::start(eventstream(&text_events(&["Hel", "lo", "!"]), 7, false)).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let body = read_stream(
        &router,
        r#"{"model":"br","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    let up = mock.last_request().expect("the upstream got the request");
    assert_eq!(
        up.path(),
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream"
    );
    let chunks = data_lines(&body);
    assert_eq!(content_of(&chunks), "Hello!", "{body}");
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"), "{body}");
    let parsed: Vec<Value> = chunks
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("JSON chunk"))
        .collect();
    let ids: std::collections::HashSet<&str> =
        parsed.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one id for the whole stream: {body}");
    let finishes: Vec<&Value> = parsed
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "{body}");
    let usage = parsed.last().expect("chunks");
    assert_eq!(usage["usage"]["prompt_tokens"], 13, "{body}");
    assert_eq!(usage["usage"]["completion_tokens"], 5);

    let metrics = get(&router.url("/metrics")).await.text();
    let completion = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_tokens_total{") && l.contains("type=\"completion\""))
        .unwrap_or_default()
        .to_owned();
    assert!(completion.ends_with(" 5"), "{completion}");
}

#[tokio::test]
async fn streamed_tool_use_becomes_tool_call_deltas() {
    init_tracing();
    let frames = vec![
        event("messageStart", &json!({"role": "assistant"})),
        event(
            "contentBlockStart",
            &json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather"}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 0})),
        event("messageStop", &json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            &json!({"usage": {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39}, "metrics": {"latencyMs": 100}}),
        ),
    ];
    let mock = MockUpstream::start(eventstream(&frames, 64, false)).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let body = read_stream(
        &router,
        r#"{"model":"br","stream":true,"messages":[{"role":"user","content":"Weather in Paris?"}],
            "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#,
    )
    .await;

    let sent = mock.last_request().expect("sent").json();
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["name"], "get_weather",
        "{sent}"
    );
    let parsed: Vec<Value> = data_lines(&body)
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("JSON chunk"))
        .collect();
    let calls: Vec<&Value> = parsed
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "tooluse_abc", "{body}");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, "{\"city\":\"Paris\"}");
    assert!(calls.iter().all(|c| c["index"] == 0));
    assert!(parsed
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn throttling_fails_over_to_the_next_target() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Status {
        status: 429,
        body: r#"{"message":"Too many requests, please wait before trying again."}"#.into(),
        headers: vec![(
            "x-amzn-ErrorType".into(),
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/".into(),
        )],
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
        r#"{"model":"br","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("backup/gpt-backup")
    );
}

#[tokio::test]
async fn a_bedrock_error_reaches_the_client_in_openai_format() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Status {
        status: 400,
        body: r#"{"message":"The model returned the following errors: messages: roles must alternate"}"#
            .into(),
        headers: vec![(
            "x-amzn-ErrorType".into(),
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/".into(),
        )],
    })
    .await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"br","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 400, "{}", reply.text());
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "invalid_request_error", "{error}");
    assert_eq!(error["code"], "ValidationException", "{error}");
    assert!(error["message"]
        .as_str()
        .is_some_and(|m| m.contains("roles must alternate")));
}

#[tokio::test]
async fn an_exception_after_the_first_token_ends_the_stream_with_one_error_event() {
    init_tracing();
    let mut frames = text_events(&["Hel", "lo"]);
    frames.truncate(3); // messageStart and two deltas
    frames.push(exception(
        "modelStreamErrorException",
        "The model stream failed.",
    ));
    let mock = MockUpstream::start(eventstream(&frames, 1000, false)).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let body = read_stream(
        &router,
        r#"{"model":"br","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    let chunks = data_lines(&body);
    assert_eq!(content_of(&chunks), "Hello");
    assert!(!body.contains("[DONE]"), "{body}");
    let last: Value = serde_json::from_str(chunks.last().expect("an error event")).unwrap();
    assert!(
        last["error"]["code"]
            .as_str()
            .is_some_and(|c| c.contains("modelStreamErrorException")),
        "{body}"
    );
}

#[tokio::test]
async fn a_stream_cut_mid_frame_is_reported_as_cut() {
    init_tracing();
    let frames = text_events(&["Hel", "lo", "there"]);
    let whole = frames[..3].concat();
    // The third frame loses its last bytes, then the body ends cleanly.
    let cut_short = vec![whole[..whole.len() - 5].to_vec()];
    let mock = MockUpstream::start(eventstream(&cut_short, 1000, false)).await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"br","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    let body = String::from_utf8(stream.rest().await.expect("the body").to_vec()).unwrap();
    let chunks = data_lines(&body);
    assert_eq!(content_of(&chunks), "Hel", "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
    let last: Value = serde_json::from_str(chunks.last().expect("an error event")).unwrap();
    assert!(last["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn a_bedrock_api_key_is_sent_as_a_bearer_token_instead_of_a_signature() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(answer("keyed"))).await;
    let yaml = format!(
        "upstreams:\n  br-up:\n    provider: bedrock\n    base_url: {}\n    api_key: bedrock-api-key-123\n    bedrock: {{ region: eu-west-1 }}\nmodels:\n  br:\n    targets:\n      - {{ upstream: br-up, model: meta.llama3-8b-instruct-v1:0 }}\n",
        mock.base_url()
    );
    let router = Router::start(&yaml).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"br","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let up = mock.last_request().expect("sent");
    assert_eq!(
        up.header("authorization").as_deref(),
        Some("Bearer bedrock-api-key-123")
    );
    assert_eq!(up.header("x-amz-date"), None);
    assert_eq!(up.path(), "/model/meta.llama3-8b-instruct-v1%3A0/converse");
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_drops_the_bedrock_request() {
    init_tracing();
    let gate = Gate::new();
    let frames = text_events(&["Hel", "lo", " there"]);
    // One frame per chunk: the first two (messageStart, "Hel") at once, then
    // each waits for the gate, which never opens.
    let first = [frames[0].clone(), frames[1].clone()].concat();
    let mock = MockUpstream::start(Behaviour::BinaryGated {
        content_type: "application/vnd.amazon.eventstream",
        chunks: std::iter::once(first)
            .chain(frames[2..].iter().cloned())
            .map(bytes::Bytes::from)
            .collect(),
        gate: gate.clone(),
    })
    .await;
    let router = Router::start(&config(&mock.base_url(), None)).await;

    let mut stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"br","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
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

#[tokio::test]
async fn an_exception_before_the_first_token_fails_over_invisibly() {
    init_tracing();
    let frames = vec![
        event("messageStart", &json!({"role": "assistant"})),
        exception("throttlingException", "Too many tokens, please wait."),
    ];
    let mock = MockUpstream::start(eventstream(&frames, 1000, false)).await;
    let backup = MockUpstream::start(Behaviour::sse(chat_chunks(
        "gpt-backup",
        &["from", " backup"],
        false,
    )))
    .await;
    let router = Router::start(&config(&mock.base_url(), Some(&backup.base_url()))).await;

    let stream = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"br","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .await;
    assert_eq!(
        stream.header("x-switchyard-target").as_deref(),
        Some("backup/gpt-backup")
    );
    let body = String::from_utf8(stream.rest().await.expect("a whole stream").to_vec()).unwrap();
    assert_eq!(content_of(&data_lines(&body)), "from backup");
    assert!(!body.contains("throttling"), "{body}");
}
