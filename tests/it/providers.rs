//! Each provider kind addresses and authenticates its upstream the way that
//! upstream expects, and the caller's credentials never go up (ARCHITECTURE.md, invariant 6).
//! The built-in mock provider answers like OpenAI would.

use crate::support;
use crate::support::client::{open_stream, post_json, send};
use crate::support::extra::assert_openai_error;
use crate::support::{
    chat_completion_json, init_tracing, one_model, Behaviour, MockUpstream, Router,
};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

fn ok_mock() -> Behaviour {
    Behaviour::Json(chat_completion_json("upstream-model", "ok"))
}

/// The caller's own credentials, in every spelling the router must strip.
const CALLER_CREDENTIALS: [(&str, &str); 4] = [
    ("content-type", "application/json"),
    ("authorization", "Bearer sk-caller-must-not-leak"),
    ("api-key", "caller-azure-key-must-not-leak"),
    ("x-api-key", "caller-anthropic-key-must-not-leak"),
];

fn assert_no_caller_credential(sent: &support::Recorded) {
    for (name, value) in sent.headers.iter() {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(
            !value.contains("must-not-leak"),
            "the caller's credential went upstream in `{name}: {value}`"
        );
    }
    assert!(
        sent.header("x-api-key").is_none(),
        "x-api-key went upstream"
    );
}

/// The `content-type` header alone, as [`post_json`] sends it.
const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

/// Starts an OpenAI-style mock, serves `config(mock base URL)`, sends `body`
/// to `path` with `headers`, checks the answer is a 200 and returns the
/// request the mock received.
async fn upstream_receives(
    config: impl FnOnce(&str) -> String,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> support::Recorded {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = Router::start(&config(&mock.base_url())).await;
    let reply = send("POST", &router.url(path), headers, body.to_owned()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    mock.last_request().unwrap()
}

/// [`upstream_receives`] for [`CHAT`] through [`one_model`] with one
/// `provider` upstream whose extra keys are `extra_upstream`.
async fn chat_upstream_receives(
    provider: &str,
    extra_upstream: &str,
    headers: &[(&str, &str)],
) -> support::Recorded {
    upstream_receives(
        |base| one_model(provider, &format!("{base}/v1"), extra_upstream),
        "/v1/chat/completions",
        headers,
        CHAT,
    )
    .await
}

#[tokio::test]
async fn openai_gets_the_upstream_key_as_bearer_and_never_the_callers() {
    let sent = chat_upstream_receives(
        "openai",
        "    api_key: sk-test-upstream-openai\n",
        &CALLER_CREDENTIALS,
    )
    .await;

    assert_eq!(sent.uri, "/v1/chat/completions");
    let auth: Vec<_> = sent.headers.get_all("authorization").iter().collect();
    assert_eq!(auth, ["Bearer sk-test-upstream-openai"]);
    assert!(sent.header("api-key").is_none(), "api-key went upstream");
    assert_no_caller_credential(&sent);
}

#[tokio::test]
async fn openai_compatible_without_a_key_sends_no_authorization_at_all() {
    let sent = chat_upstream_receives("openai-compatible", "", &CALLER_CREDENTIALS).await;

    assert_eq!(sent.uri, "/v1/chat/completions");
    assert!(sent.header("authorization").is_none());
    assert!(sent.header("api-key").is_none());
    assert_no_caller_credential(&sent);
}

#[tokio::test]
async fn openai_compatible_with_a_key_sends_it_as_bearer() {
    let sent = chat_upstream_receives(
        "openai-compatible",
        "    api_key: sk-test-vllm-key\n",
        &CALLER_CREDENTIALS,
    )
    .await;

    assert_eq!(
        sent.header("authorization").as_deref(),
        Some("Bearer sk-test-vllm-key")
    );
    assert_no_caller_credential(&sent);
}

#[tokio::test]
async fn openai_compatible_key_can_come_from_the_environment() {
    std::env::set_var(
        "SWITCHYARD_TEST_PROVIDERS_COMPAT_KEY_7F3A",
        "sk-test-from-env-7f3a",
    );
    let sent = chat_upstream_receives(
        "openai-compatible",
        "    api_key: ${SWITCHYARD_TEST_PROVIDERS_COMPAT_KEY_7F3A}\n",
        &JSON,
    )
    .await;

    assert_eq!(
        sent.header("authorization").as_deref(),
        Some("Bearer sk-test-from-env-7f3a")
    );
}

/// A router with one Azure upstream at `base_url` and three models that
/// exercise the deployment defaulting rules.
fn azure_yaml(base_url: &str, extra: &str) -> String {
    format!(
        r#"
upstreams:
  azure-east:
    provider: azure
    base_url: {base_url}
    api_key: azure-test-key-123
{extra}
models:
  with-deployment:
    targets: [{{ upstream: azure-east, model: gpt-4o-2024-08-06, deployment: gpt4o-prod }}]
  with-model:
    targets: [{{ upstream: azure-east, model: gpt-4o-mini-2024-07-18 }}]
  bare-name:
    targets: [{{ upstream: azure-east }}]
"#
    )
}

/// [`upstream_receives`] through [`azure_yaml`] with `extra`.
async fn azure_receives(
    extra: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> support::Recorded {
    upstream_receives(|base| azure_yaml(base, extra), path, headers, body).await
}

#[tokio::test]
async fn azure_addresses_the_deployment_with_api_key_and_no_authorization() {
    let sent = azure_receives(
        "",
        "/v1/chat/completions",
        &CALLER_CREDENTIALS,
        r#"{"model":"with-deployment","messages":[]}"#,
    )
    .await;

    assert_eq!(
        sent.uri,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    let keys: Vec<_> = sent.headers.get_all("api-key").iter().collect();
    assert_eq!(keys, ["azure-test-key-123"]);
    assert!(
        sent.header("authorization").is_none(),
        "Azure gets no Authorization header"
    );
    assert_no_caller_credential(&sent);
}

#[tokio::test]
async fn azure_deployment_defaults_to_the_target_model_then_the_logical_name() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let router = Router::start(&azure_yaml(&mock.base_url(), "")).await;

    for (model, path) in [
        (
            "with-deployment",
            "/openai/deployments/gpt4o-prod/embeddings?api-version=2024-10-21",
        ),
        (
            "with-model",
            "/openai/deployments/gpt-4o-mini-2024-07-18/embeddings?api-version=2024-10-21",
        ),
        (
            "bare-name",
            "/openai/deployments/bare-name/embeddings?api-version=2024-10-21",
        ),
    ] {
        let body = format!(r#"{{"model":"{model}","input":"x"}}"#);
        let reply = post_json(&router.url("/v1/embeddings"), &body).await;
        assert_eq!(reply.status, 200, "{model}: {}", reply.text());
        assert_eq!(mock.last_request().unwrap().uri, path, "{model}");
    }
}

#[tokio::test]
async fn azure_uses_a_custom_api_version() {
    let sent = azure_receives(
        "    api_version: \"2025-01-01-preview\"\n",
        "/v1/chat/completions",
        &JSON,
        r#"{"model":"with-model","messages":[]}"#,
    )
    .await;

    assert_eq!(
        sent.uri,
        "/openai/deployments/gpt-4o-mini-2024-07-18/chat/completions?api-version=2025-01-01-preview"
    );
}

#[tokio::test]
async fn azure_responses_go_to_the_resource_level_responses_path() {
    let sent = azure_receives(
        "    api_version: \"2025-03-01-preview\"\n",
        "/v1/responses",
        &JSON,
        r#"{"model":"bare-name","input":"hi"}"#,
    )
    .await;

    assert_eq!(sent.uri, "/openai/responses?api-version=2025-03-01-preview");
    assert_eq!(
        sent.header("api-key").as_deref(),
        Some("azure-test-key-123")
    );
}

#[tokio::test]
async fn azure_responses_carry_the_deployment_name_as_the_body_model() {
    // The Responses API has no deployment in its path, so Azure reads the
    // deployment from the body's `model` (documented in providers/azure.rs).
    let sent = azure_receives(
        "    api_version: \"2025-03-01-preview\"\n",
        "/v1/responses",
        &JSON,
        r#"{"model":"with-deployment","input":"hi"}"#,
    )
    .await;

    assert_eq!(sent.uri, "/openai/responses?api-version=2025-03-01-preview");
    assert_eq!(
        sent.text(),
        r#"{"model":"gpt4o-prod","input":"hi"}"#,
        "Azure needs the deployment name in the body's model"
    );
}

#[tokio::test]
async fn ollama_is_addressed_under_v1_and_keeps_model_names_with_colons() {
    init_tracing();
    let mock = MockUpstream::start(ok_mock()).await;
    let yaml = format!(
        r#"
upstreams:
  ollama-qwen:
    provider: ollama
    base_url: {}
    health_check: false
  ollama-phi:
    provider: ollama
    base_url: {}/v1/
    health_check: false
models:
  "qwen2.5:0.5b":
    targets: [{{ upstream: ollama-qwen }}]
  phi3:mini:
    targets: [{{ upstream: ollama-phi, model: "phi3:3.8b-mini-4k-instruct-q4_K_M" }}]
"#,
        mock.base_url(),
        mock.base_url()
    );
    let router = Router::start(&yaml).await;

    let body = r#"{"model":"qwen2.5:0.5b","messages":[{"role":"user","content":"hi"}]}"#;
    let reply = post_json(&router.url("/v1/chat/completions"), body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/v1/chat/completions");
    assert_eq!(sent.text(), body, "the model name goes up as it is");
    assert!(sent.header("authorization").is_none());

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"phi3:mini","messages":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.uri, "/v1/chat/completions",
        "a base_url ending in /v1/ is not doubled"
    );
    assert_eq!(
        sent.text(),
        r#"{"model":"phi3:3.8b-mini-4k-instruct-q4_K_M","messages":[]}"#
    );
}

#[tokio::test]
async fn configured_upstream_headers_are_added_and_win_over_the_callers() {
    let sent = chat_upstream_receives(
        "openai-compatible",
        "    headers:\n      X-Org-Tag: team-a\n      OpenAI-Organization: org-test-123\n",
        &[
            ("content-type", "application/json"),
            ("openai-organization", "org-from-caller"),
            ("x-caller-header", "kept"),
        ],
    )
    .await;

    assert_eq!(sent.header("x-org-tag").as_deref(), Some("team-a"));
    let orgs: Vec<_> = sent.headers.get_all("openai-organization").iter().collect();
    assert_eq!(orgs, ["org-test-123"]);
    assert_eq!(sent.header("x-caller-header").as_deref(), Some("kept"));
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded_upstream() {
    let sent = chat_upstream_receives(
        "openai-compatible",
        "",
        &[
            ("content-type", "application/json"),
            ("connection", "keep-alive, x-hop-secret"),
            ("x-hop-secret", "must-not-cross"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-connection", "keep-alive"),
            ("expect", "100-continue"),
            ("x-end-to-end", "crosses"),
        ],
    )
    .await;

    for name in [
        "x-hop-secret",
        "keep-alive",
        "te",
        "proxy-connection",
        "expect",
    ] {
        assert!(
            sent.header(name).is_none(),
            "hop-by-hop header `{name}` was forwarded: {:?}",
            sent.headers
        );
    }
    if let Some(connection) = sent.header("connection") {
        assert!(
            !connection.contains("x-hop-secret"),
            "the caller's Connection header was forwarded: {connection:?}"
        );
    }
    assert_eq!(sent.header("x-end-to-end").as_deref(), Some("crosses"));
}

#[tokio::test]
async fn an_upgrade_header_is_not_forwarded_upstream() {
    let sent = chat_upstream_receives(
        "openai-compatible",
        "",
        &[("content-type", "application/json"), ("upgrade", "h2c")],
    )
    .await;

    assert!(sent.header("upgrade").is_none());
}

#[tokio::test]
async fn accept_encoding_is_not_forwarded_so_answers_come_back_uncompressed() {
    let sent = chat_upstream_receives(
        "openai-compatible",
        "",
        &[
            ("content-type", "application/json"),
            ("accept-encoding", "gzip, br"),
        ],
    )
    .await;

    assert!(sent.header("accept-encoding").is_none());
}

// ---------------------------------------------------------------------------
// The built-in mock provider
// ---------------------------------------------------------------------------

const BUILTIN: &str = r#"
upstreams:
  builtin:
    provider: mock
models:
  demo:
    targets: [{ upstream: builtin }]
"#;

#[tokio::test]
async fn the_builtin_mock_answers_a_chat_completion_with_usage() {
    init_tracing();
    let router = Router::start(BUILTIN).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"demo","messages":[{"role":"system","content":"be nice"},{"role":"user","content":"What is a switchyard?"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    let json = reply.json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "demo");
    assert_eq!(json["choices"][0]["message"]["role"], "assistant");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    let content = json["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("What is a switchyard?"),
        "the default reply quotes the user: {content:?}"
    );
    let usage = &json["usage"];
    let prompt = usage["prompt_tokens"].as_u64().expect("prompt_tokens");
    let completion = usage["completion_tokens"]
        .as_u64()
        .expect("completion_tokens");
    assert!(prompt > 0 && completion > 0, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(prompt + completion));
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_builtin_mock_streams_chunks_that_end_with_done() {
    init_tracing();
    let router = Router::start(BUILTIN).await;
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"stream please"}]}"#;
    let whole = post_json(&router.url("/v1/chat/completions"), body)
        .await
        .json();

    let streamed = open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"demo","stream":true,"messages":[{"role":"user","content":"stream please"}]}"#,
    )
    .await;
    assert_eq!(streamed.status, 200);
    assert_eq!(
        streamed.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let text = String::from_utf8(streamed.rest().await.unwrap().to_vec()).unwrap();

    assert!(text.ends_with("data: [DONE]\n\n"), "{text:?}");
    let events = sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        content, whole["choices"][0]["message"]["content"],
        "the stream spells the same answer"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(
        !text.contains(r#""choices":[]"#),
        "no usage chunk unless asked for"
    );
}

#[tokio::test]
async fn the_builtin_mock_sends_a_final_usage_chunk_when_asked() {
    init_tracing();
    let router = Router::start(BUILTIN).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"demo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count me"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200);
    let events = sse_data(&reply.text());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let usage_chunk: serde_json::Value =
        serde_json::from_str(&events[events.len() - 2]).expect("a JSON usage chunk");
    assert_eq!(usage_chunk["choices"], serde_json::json!([]));
    let usage = &usage_chunk["usage"];
    let prompt = usage["prompt_tokens"].as_u64().expect("prompt_tokens");
    let completion = usage["completion_tokens"]
        .as_u64()
        .expect("completion_tokens");
    assert!(completion > 0);
    assert_eq!(usage["total_tokens"].as_u64(), Some(prompt + completion));
    for event in &events[..events.len() - 2] {
        let chunk: serde_json::Value = serde_json::from_str(event).unwrap();
        assert!(
            chunk["usage"].is_null(),
            "earlier chunks carry usage: null: {event}"
        );
    }
}

#[tokio::test]
async fn the_builtin_mock_stops_at_max_tokens_with_finish_reason_length() {
    init_tracing();
    let router = Router::start(BUILTIN).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"demo","max_tokens":2,"messages":[{"role":"user","content":"a long answer please"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["choices"][0]["finish_reason"], "length");
    assert_eq!(json["usage"]["completion_tokens"], 2);
    let content = json["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.split_whitespace().count(), 2, "{content:?}");
}

/// Standard base64 decoding, enough for the mock's embeddings.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("not base64: {:?}", other as char),
        }
    };
    let mut out = Vec::new();
    for quad in text.as_bytes().chunks(4) {
        let digits: Vec<u8> = quad.iter().copied().filter(|&c| c != b'=').collect();
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | value(c) << (18 - 6 * i));
        out.extend(n.to_be_bytes()[1..digits.len()].iter());
    }
    out
}

#[tokio::test]
async fn the_builtin_mock_embeds_as_floats_and_as_base64() {
    init_tracing();
    let router = Router::start(BUILTIN).await;

    let floats = post_json(
        &router.url("/v1/embeddings"),
        r#"{"model":"demo","input":["first text","second text"]}"#,
    )
    .await;
    assert_eq!(floats.status, 200, "{}", floats.text());
    let json = floats.json();
    assert_eq!(json["object"], "list");
    assert_eq!(json["model"], "demo");
    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let vector: Vec<f64> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(!vector.is_empty());
    assert!(json["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let sized = post_json(
        &router.url("/v1/embeddings"),
        r#"{"model":"demo","input":"first text","dimensions":8}"#,
    )
    .await
    .json();
    assert_eq!(sized["data"][0]["embedding"].as_array().unwrap().len(), 8);

    let encoded = post_json(
        &router.url("/v1/embeddings"),
        r#"{"model":"demo","input":"first text","encoding_format":"base64"}"#,
    )
    .await;
    assert_eq!(encoded.status, 200, "{}", encoded.text());
    let text = encoded.json()["data"][0]["embedding"]
        .as_str()
        .expect("a base64 string")
        .to_owned();
    let bytes = base64_decode(&text);
    assert_eq!(bytes.len(), vector.len() * 4, "little-endian f32s");
    let decoded: Vec<f64> = bytes
        .chunks(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    for (a, b) in decoded.iter().zip(&vector) {
        assert!((a - b).abs() < 1e-6, "base64 and float embeddings differ");
    }
}

#[tokio::test]
async fn the_builtin_mock_answers_responses_with_an_openai_error() {
    init_tracing();
    let router = Router::start(BUILTIN).await;

    let reply = post_json(
        &router.url("/v1/responses"),
        r#"{"model":"demo","input":"hi"}"#,
    )
    .await;

    let error = assert_openai_error(&reply, 400, "unsupported_by_mock");
    assert!(
        error["message"].as_str().unwrap().contains("/v1/responses"),
        "{error}"
    );
}

#[tokio::test]
async fn a_caller_cannot_choose_the_operators_openai_organization_or_project() {
    let sent = chat_upstream_receives(
        "openai",
        "    api_key: sk-test-upstream-openai\n    headers:\n      OpenAI-Organization: org-operator\n",
        &[
            ("content-type", "application/json"),
            ("openai-organization", "org-caller"),
            ("openai-project", "proj-caller"),
        ],
    )
    .await;

    let org: Vec<_> = sent.headers.get_all("openai-organization").iter().collect();
    assert_eq!(org, ["org-operator"], "the operator's scope, once");
    assert!(
        sent.header("openai-project").is_none(),
        "the caller's project went upstream"
    );
}
