//! The built-in status page and the `healthcheck` subcommand.

use std::process::Command;

use crate::support::*;

const CONFIG: &str = "upstreams:\n  m: { provider: mock }\nmodels:\n  demo: { targets: [m] }\n";

#[tokio::test]
async fn the_status_page_is_self_contained_html() {
    let router = Router::start(CONFIG).await;
    for path in ["/", "/ui"] {
        let reply = client::get(&router.url(path)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        let csp = reply.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
            "{csp}"
        );
        let html = reply.text();
        assert!(html.contains("<title>Switchyard status</title>"));
        // Everything it needs is inline or from this router: no external URLs.
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "the page loads nothing external"
        );
        assert!(html.contains(r#"getJson("/status")"#) && html.contains(r#"getJson("/stats")"#));
    }
}

#[tokio::test]
async fn the_status_json_the_page_reads_has_what_it_renders() {
    let router = Router::start(CONFIG).await;
    let status = client::get(&router.url("/status")).await.json();
    let model = &status["models"][0];
    assert_eq!(model["name"], "demo");
    assert_eq!(model["strategy"], "weighted");
    assert_eq!(model["target_states"][0]["target"], "m/demo");
    assert_eq!(model["target_states"][0]["circuit"], "closed");
    assert_eq!(status["upstreams"][0]["state"], "up");
    let stats = client::get(&router.url("/stats")).await.json();
    assert!(stats["totals"].is_object());
}

#[tokio::test]
async fn healthcheck_exits_zero_only_for_a_healthy_router() {
    let router = Router::start(CONFIG).await;
    let bin = env!("CARGO_BIN_EXE_switchyard");
    let run = move |url: String| {
        let out = Command::new(bin)
            .args(["healthcheck", &url])
            .output()
            .expect("run switchyard");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let healthy = router.url("/health");
    let (code, _) = tokio::task::spawn_blocking(move || run(healthy))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    let missing = router.url("/no-such-path");
    let (code, stderr) = tokio::task::spawn_blocking(move || run(missing))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("answered 404"), "{stderr}");
    let (code, stderr) =
        tokio::task::spawn_blocking(move || run("http://127.0.0.1:1/health".into()))
            .await
            .unwrap();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("refused"), "{stderr}");
}
