//! Model policies through the real router: `system_prompt`, `defaults` and
//! `clamp` edit the request surgically (what the upstream receives is the
//! client's bytes plus exactly those edits); `on_exhausted` answers a valid
//! chat completion or stream when every target failed.

use crate::support::client::{open_stream, post_json, send};
use crate::support::{
    chat_completion_json, init_tracing, openai_error, Behaviour, MockUpstream, Router,
};

fn config(mock: &MockUpstream, model_extra: &str) -> String {
    format!(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\nmodels:\n  m:\n    targets: [{{ upstream: up, model: m }}]\n{model_extra}",
        mock.base_url()
    )
}

#[tokio::test]
async fn a_system_prompt_is_added_only_where_the_request_has_none() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "ok"))).await;
    let router = Router::start(&config(&mock, "    system_prompt: You answer in French.\n")).await;

    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    let sent = mock.last_request().unwrap().text();
    assert_eq!(
        sent,
        r#"{"model":"m","messages":[{"role":"system","content":"You answer in French."},{"role":"user","content":"hi"}]}"#
    );

    let own = r#"{"model":"m", "messages":[{"role":"system","content":"Mine."},{"role":"user","content":"hi"}]}"#;
    post_json(&router.url("/v1/chat/completions"), own).await;
    assert_eq!(
        mock.last_request().unwrap().text(),
        own,
        "a request with its own system message is untouched"
    );
}

#[tokio::test]
async fn defaults_fill_in_and_clamps_cap_while_every_other_byte_stays() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "ok"))).await;
    let router = Router::start(&config(
        &mock,
        "    defaults: { temperature: 0.2 }\n    clamp: { max_tokens: 1000, top_p: { min: 0.1, max: 0.9 } }\n",
    ))
    .await;
    let body = r#"{ "model" : "m", "max_completion_tokens": 5000, "top_p": 1, "messages":[{"role":"user","content":"hi"}] }"#;
    post_json(&router.url("/v1/chat/completions"), body).await;
    assert_eq!(
        mock.last_request().unwrap().text(),
        r#"{ "model" : "m", "max_completion_tokens": 1000, "top_p": 0.9, "messages":[{"role":"user","content":"hi"}] ,"temperature":0.2}"#
    );
}

#[tokio::test]
async fn on_exhausted_answers_a_marked_chat_completion_when_every_target_failed() {
    init_tracing();
    let mock = MockUpstream::start(openai_error(503, "overloaded", "server_error", "")).await;
    let router = Router::start(&config(
        &mock,
        "    retry: { attempts: 0 }\n    on_exhausted: The assistant is busy; try again in a minute.\n",
    ))
    .await;
    let reply = post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-exhausted").as_deref(),
        Some("true")
    );
    let v = reply.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "The assistant is busy; try again in a minute."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["system_fingerprint"], "switchyard-on-exhausted");
    assert!(v["id"]
        .as_str()
        .unwrap()
        .starts_with("chatcmpl-switchyard-"));
    assert_eq!(v["usage"]["total_tokens"], 0);

    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], body).await;
    assert_eq!(stream.status, 200);
    let text = String::from_utf8(stream.rest().await.unwrap().to_vec()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(
        text.contains(r#""content":"The assistant is busy; try again in a minute.""#),
        "{text}"
    );
    assert!(
        text.contains(r#""choices":[],"#) && text.contains(r#""total_tokens":0"#),
        "{text}"
    );
}

#[tokio::test]
async fn other_endpoints_still_get_the_error_when_every_target_failed() {
    init_tracing();
    let mock = MockUpstream::start(openai_error(503, "overloaded", "server_error", "")).await;
    let router = Router::start(&config(
        &mock,
        "    retry: { attempts: 0 }\n    on_exhausted: Busy.\n",
    ))
    .await;
    let reply = send(
        "POST",
        &router.url("/v1/embeddings"),
        &[("content-type", "application/json")],
        r#"{"model":"m","input":"x"}"#,
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.text());
}

#[tokio::test]
async fn the_anthropic_door_gets_the_system_prompt_in_its_own_member_and_on_exhausted_in_its_shape()
{
    init_tracing();
    let mock = MockUpstream::start(openai_error(503, "overloaded", "server_error", "")).await;
    let router = Router::start(&config(
        &mock,
        "    retry: { attempts: 0 }\n    system_prompt: Be brief.\n    on_exhausted: Busy.\n",
    ))
    .await;
    let reply = send(
        "POST",
        &router.url("/v1/messages"),
        &[
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
        ],
        r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let sent = mock.last_request().unwrap().json();
    assert_eq!(
        sent["messages"][0],
        serde_json::json!({"role": "system", "content": "Be brief."}),
        "{sent}"
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Busy.");
}
