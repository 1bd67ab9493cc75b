//! The small JSON endpoints: `/v1/models` (OpenAI's list shape, from the
//! config), `/health` (liveness), `/health/ready` (each upstream's state) and
//! `/status` (the operator's view, which never shows a credential).

use std::time::Duration;

use crate::support::client::{get, send};
use crate::support::extra::{assert_openai_error, dead_addr, poll_until};
use crate::support::{init_tracing, Behaviour, MockUpstream, Router};

const WAIT: Duration = Duration::from_secs(10);

fn models_yaml(mock: &MockUpstream) -> String {
    format!(
        r#"
upstreams:
  up: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  zeta: {{ targets: [up] }}
  alpha: {{ targets: [up] }}
  "qwen2.5:0.5b": {{ targets: [up] }}
  meta-llama/Llama-3-8B: {{ targets: [up] }}
  gpt-4o: {{ targets: [{{ upstream: up, model: gpt-4o-2024-08-06 }}] }}
"#,
        mock.base_url()
    )
}

#[tokio::test]
async fn the_model_list_has_every_model_in_file_order_in_openai_shape() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let router = Router::start(&models_yaml(&mock)).await;

    let reply = get(&router.url("/v1/models")).await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    let json = reply.json();
    assert_eq!(json["object"], "list");
    let data = json["data"].as_array().expect("a data list");
    let ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "zeta",
            "alpha",
            "qwen2.5:0.5b",
            "meta-llama/Llama-3-8B",
            "gpt-4o"
        ]
    );
    for model in data {
        assert_eq!(model["object"], "model", "{model}");
        assert!(model["created"].is_u64(), "{model}");
        assert!(model["owned_by"].is_string(), "{model}");
    }
    assert_eq!(mock.request_count(), 0, "the list comes from the config");
    let bare = get(&router.url("/models")).await;
    assert_eq!(bare.json(), json, "/models without /v1 is the same list");
}

#[tokio::test]
async fn one_model_can_be_fetched_by_id_plain_or_percent_encoded() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let router = Router::start(&models_yaml(&mock)).await;

    for (path, id) in [
        ("/v1/models/alpha", "alpha"),
        ("/v1/models/qwen2.5:0.5b", "qwen2.5:0.5b"),
        ("/v1/models/qwen2.5%3A0.5b", "qwen2.5:0.5b"),
        ("/v1/models/qwen2.5%3a0.5b", "qwen2.5:0.5b"),
        ("/v1/models/meta-llama/Llama-3-8B", "meta-llama/Llama-3-8B"),
        (
            "/v1/models/meta-llama%2FLlama-3-8B",
            "meta-llama/Llama-3-8B",
        ),
        ("/models/gpt-4o", "gpt-4o"),
    ] {
        let reply = get(&router.url(path)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let json = reply.json();
        assert_eq!(json["id"], id, "{path}");
        assert_eq!(json["object"], "model", "{path}");
        assert!(json["owned_by"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn an_unknown_model_id_is_a_404_model_not_found() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let router = Router::start(&models_yaml(&mock)).await;

    for path in [
        "/v1/models/gpt-5",
        "/v1/models/qwen2.5%3A7b",
        "/v1/models/gpt-4o-2024-08-06",
    ] {
        let reply = get(&router.url(path)).await;
        let error = assert_openai_error(&reply, 404, "model_not_found");
        assert!(
            error["message"].as_str().unwrap().contains("alpha"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn health_answers_ok() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let router = Router::start(&models_yaml(&mock)).await;

    let reply = get(&router.url("/health")).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
}

/// The `state` of upstream `name` in a readiness or status body.
fn state_of(body: &serde_json::Value, name: &str) -> Option<String> {
    body["upstreams"]
        .as_array()?
        .iter()
        .find(|u| u["name"] == name)
        .and_then(|u| u["state"].as_str())
        .map(str::to_owned)
}

#[tokio::test]
async fn readiness_shows_each_upstream_up_down_or_disabled() {
    init_tracing();
    const VAR: &str = "SWITCHYARD_TEST_READY_UNSET_KEY_K2M9";
    std::env::remove_var(VAR);
    let live = MockUpstream::start(Behaviour::Json(r#"{"object":"list","data":[]}"#.into())).await;
    let dead = dead_addr().await;
    let yaml = format!(
        r#"
upstreams:
  live:
    provider: openai-compatible
    base_url: {}/v1
    health_check: {{ interval: 100ms }}
  dead:
    provider: ollama
    base_url: http://{dead}
    health_check: {{ interval: 100ms }}
  nokey:
    provider: openai-compatible
    base_url: http://127.0.0.1:9/v1
    api_key: ${{{VAR}}}
models:
  a: {{ targets: [live] }}
  b: {{ targets: [dead] }}
  c: {{ targets: [nokey] }}
"#,
        live.base_url()
    );
    let router = Router::start(&yaml).await;
    let url = router.url("/health/ready");

    let body = poll_until(
        "live to be up and dead to be down",
        WAIT,
        Duration::from_millis(50),
        || {
            let url = url.clone();
            async move {
                let body = get(&url).await.json();
                (state_of(&body, "live").as_deref() == Some("up")
                    && state_of(&body, "dead").as_deref() == Some("down"))
                .then_some(body)
            }
        },
    )
    .await;

    assert_eq!(state_of(&body, "nokey").as_deref(), Some("disabled"));
    let nokey = body["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "nokey")
        .unwrap();
    assert!(
        nokey["reason"].as_str().unwrap_or_default().contains(VAR),
        "a disabled upstream says which variable to set: {nokey}"
    );
    let ready = get(&url).await;
    assert_eq!(ready.status, 200, "one usable model is enough to be ready");
    assert_eq!(ready.json()["status"], "ready");
    let probes = live.requests();
    assert!(!probes.is_empty());
    assert!(
        probes
            .iter()
            .all(|r| r.method == "GET" && r.path() == "/v1/models"),
        "the probe of an OpenAI-compatible server is GET /v1/models"
    );
}

#[tokio::test]
async fn readiness_is_503_when_no_model_can_be_served() {
    init_tracing();
    const VAR: &str = "SWITCHYARD_TEST_READY_NOTHING_USABLE_P4W1";
    std::env::remove_var(VAR);
    let yaml = format!(
        r#"
upstreams:
  nokey:
    provider: openai
    api_key: ${{{VAR}}}
models:
  gpt-4o-mini: {{ targets: [nokey] }}
"#
    );
    let router = Router::start(&yaml).await;

    let reply = get(&router.url("/health/ready")).await;

    assert_eq!(reply.status, 503);
    let body = reply.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(state_of(&body, "nokey").as_deref(), Some("disabled"));
    assert_eq!(get(&router.url("/health")).await.status, 200, "still alive");
}

#[tokio::test]
async fn status_shows_addresses_but_never_a_key() {
    init_tracing();
    const VAR: &str = "SWITCHYARD_TEST_STATUS_KEY_FROM_ENV_J7Q2";
    std::env::set_var(VAR, "sk-test-status-env-secret-5150");
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let yaml = format!(
        r#"
upstreams:
  literal:
    provider: openai
    base_url: {base}/v1
    api_key: sk-test-status-literal-secret-8675309
  from-env:
    provider: openai-compatible
    base_url: {base}/compat/v1
    api_key: ${{{VAR}}}
    health_check: false
  azure-east:
    provider: azure
    base_url: {base}
    api_key: azure-status-secret-c0ffee
  builtin:
    provider: mock
models:
  a: {{ targets: [literal] }}
  b: {{ targets: [from-env] }}
  c: {{ targets: [{{ upstream: azure-east, deployment: dep }}] }}
  d: {{ targets: [builtin] }}
"#,
        base = mock.base_url()
    );
    let router = Router::start(&yaml).await;

    let status = get(&router.url("/status")).await;
    let ready = get(&router.url("/health/ready")).await;

    assert_eq!(status.status, 200, "{}", status.text());
    let text = status.text();
    assert!(text.contains(&format!("{}/v1", mock.base_url())), "{text}");
    assert!(
        text.contains(&format!("{}/compat/v1", mock.base_url())),
        "{text}"
    );
    for body in [&text, &ready.text()] {
        for secret in [
            "sk-test-status-literal-secret-8675309",
            "sk-test-status-env-secret-5150",
            "azure-status-secret-c0ffee",
        ] {
            assert!(!body.contains(secret), "a key leaked into a status body");
        }
    }
    let json = status.json();
    let names: Vec<&str> = json["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["literal", "from-env", "azure-east", "builtin"]);
    assert_eq!(state_of(&json, "builtin").as_deref(), Some("up"));
}

#[tokio::test]
async fn status_needs_the_router_key_but_readiness_does_not() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json("{}".into())).await;
    let yaml = format!(
        r#"
server:
  auth:
    keys: [sk-router-status-1]
upstreams:
  up: {{ provider: openai-compatible, base_url: "{}/v1", health_check: false }}
models:
  m: {{ targets: [up] }}
"#,
        mock.base_url()
    );
    let router = Router::start(&yaml).await;

    assert_openai_error(&get(&router.url("/status")).await, 401, "invalid_api_key");
    let with_key = send(
        "GET",
        &router.url("/status"),
        &[("authorization", "Bearer sk-router-status-1")],
        "",
    )
    .await;
    assert_eq!(with_key.status, 200);
    assert!(!with_key.text().contains("sk-router-status-1"));
    assert_eq!(get(&router.url("/health/ready")).await.status, 200);
    assert_eq!(get(&router.url("/health")).await.status, 200);
}
