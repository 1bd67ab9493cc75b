//! CORS, so browser apps (a React dev server on :3000, Streamlit on :8501)
//! can call the router directly, and nobody else's page can.

use crate::support;
use crate::support::client::{get, post_json, send};
use crate::support::{
    chat_completion_json, init_tracing, one_model, Behaviour, MockUpstream, Router,
};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

async fn default_router(mock: &MockUpstream) -> Router {
    Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", mock.base_url()),
        "",
    ))
    .await
}

async fn preflight(router: &Router, origin: &str) -> support::Reply {
    send(
        "OPTIONS",
        &router.url("/v1/chat/completions"),
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        "",
    )
    .await
}

fn lower(value: Option<String>) -> String {
    value.unwrap_or_default().to_ascii_lowercase()
}

#[tokio::test]
async fn a_preflight_from_the_default_dev_origins_is_allowed() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let router = default_router(&mock).await;

    for origin in ["http://localhost:3000", "http://localhost:8501"] {
        let reply = preflight(&router, origin).await;

        assert_eq!(reply.status, 204, "{origin}");
        assert_eq!(
            reply.header("access-control-allow-origin").as_deref(),
            Some(origin)
        );
        let methods = lower(reply.header("access-control-allow-methods"));
        assert!(methods.contains("post"), "{origin}: {methods}");
        let headers = lower(reply.header("access-control-allow-headers"));
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{origin}: {headers}"
        );
        assert!(
            lower(reply.header("vary")).contains("origin"),
            "an echoed origin must vary on Origin"
        );
    }
    assert_eq!(mock.request_count(), 0, "a preflight never goes upstream");
}

#[tokio::test]
async fn a_preflight_needs_no_router_key() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let yaml = format!(
        "server:\n  auth:\n    keys: [sk-router-cors-1]\n{}",
        one_model("openai-compatible", &format!("{}/v1", mock.base_url()), "")
    );
    let router = Router::start(&yaml).await;

    let reply = preflight(&router, "http://localhost:3000").await;

    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
}

#[tokio::test]
async fn a_disallowed_origin_gets_no_allow_origin() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let router = default_router(&mock).await;

    let reply = preflight(&router, "http://evil.example").await;
    assert!(
        reply.header("access-control-allow-origin").is_none(),
        "{:?}",
        reply.headers
    );

    let reply = send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("origin", "http://evil.example"),
        ],
        CHAT,
    )
    .await;
    assert!(reply.header("access-control-allow-origin").is_none());
    assert!(reply.header("access-control-expose-headers").is_none());
}

#[tokio::test]
async fn responses_to_an_allowed_origin_carry_allow_origin_and_expose_headers() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let router = default_router(&mock).await;
    let origin = [("origin", "http://localhost:8501")];

    let models = send("GET", &router.url("/v1/models"), &origin, "").await;
    let chat = send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("origin", "http://localhost:8501"),
        ],
        CHAT,
    )
    .await;
    let error = send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("origin", "http://localhost:8501"),
        ],
        r#"{"model":"nope"}"#,
    )
    .await;

    for (what, reply) in [("models", &models), ("chat", &chat), ("error", &error)] {
        assert_eq!(
            reply.header("access-control-allow-origin").as_deref(),
            Some("http://localhost:8501"),
            "{what}"
        );
        let exposed = lower(reply.header("access-control-expose-headers"));
        assert!(exposed.contains("x-request-id"), "{what}: {exposed}");
    }
    assert_eq!(error.status, 404, "a browser can read the error too");
    let exposed = lower(chat.header("access-control-expose-headers"));
    assert!(exposed.contains("x-switchyard-target"), "{exposed}");
}

#[tokio::test]
async fn a_wildcard_config_allows_any_origin_with_a_star() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let yaml = format!(
        "server:\n  cors:\n    allow_origins: [\"*\"]\n{}",
        one_model("openai-compatible", &format!("{}/v1", mock.base_url()), "")
    );
    let router = Router::start(&yaml).await;

    let reply = preflight(&router, "https://anything.example").await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );

    let reply = send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("origin", "https://anything.example"),
        ],
        CHAT,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
}

#[tokio::test]
async fn a_configured_origin_list_replaces_the_defaults() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let yaml = format!(
        "server:\n  cors:\n    allow_origins: [\"https://chat.example.com/\"]\n{}",
        one_model("openai-compatible", &format!("{}/v1", mock.base_url()), "")
    );
    let router = Router::start(&yaml).await;

    let allowed = preflight(&router, "https://chat.example.com").await;
    assert_eq!(
        allowed.header("access-control-allow-origin").as_deref(),
        Some("https://chat.example.com")
    );
    let default_one = preflight(&router, "http://localhost:3000").await;
    assert!(default_one.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn requests_without_an_origin_get_no_cors_headers() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let router = default_router(&mock).await;

    let reply = get(&router.url("/v1/models")).await;
    let chat = post_json(&router.url("/v1/chat/completions"), CHAT).await;

    for reply in [reply, chat] {
        assert!(reply.header("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn an_upstreams_own_cors_headers_do_not_open_the_router_to_a_disallowed_origin() {
    // vLLM and other FastAPI servers answer any Origin with `*`; the router's
    // policy, not the upstream's, decides which pages may read its answers.
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Status {
        status: 200,
        body: chat_completion_json("upstream-model", "ok"),
        headers: vec![
            ("access-control-allow-origin".into(), "*".into()),
            ("access-control-allow-credentials".into(), "true".into()),
        ],
    })
    .await;
    let router = default_router(&mock).await;

    let reply = send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("origin", "http://evil.example"),
        ],
        CHAT,
    )
    .await;

    assert_eq!(reply.status, 200);
    assert!(
        reply.header("access-control-allow-origin").is_none(),
        "a disallowed origin got access-control-allow-origin: {:?}",
        reply.header("access-control-allow-origin")
    );
    assert!(reply.header("access-control-allow-credentials").is_none());
}
