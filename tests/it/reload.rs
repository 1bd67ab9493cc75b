//! Hot reload (ARCHITECTURE.md, invariant 3): editing `router.yaml` swaps in
//! a whole new table within a second; a broken edit is rejected loudly and
//! the last good table keeps serving; requests in flight finish on the table
//! they started with; no request is dropped while reloads happen.
//!
//! SIGHUP is not covered here: sending it from a test would hit the test
//! process itself, and the server runs in-process.
//!
//! Edits are made like an editor makes them: write a sibling file, rename it
//! over the config. Every wait polls with a deadline (for failing only).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::client::{get, open_stream, post_json, try_send};
use crate::support::extra::poll_until;
use crate::support::{
    chat_chunks, chat_completion_json, init_tracing, Behaviour, Gate, MockUpstream, Recorded,
    Router,
};

/// Deadline for a reload to show in `/status` (debounce is 250 ms).
const WITHIN: Duration = Duration::from_secs(5);
const EVERY: Duration = Duration::from_millis(50);

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

fn chat_stream(model: &str) -> String {
    format!(r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#)
}

/// Replaces the file at `path` the way editors do: write a sibling, rename it over.
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.edit");
    std::fs::write(&tmp, text).expect("write the new config");
    std::fs::rename(&tmp, path).expect("rename it over the config");
}

async fn status(router: &Router) -> serde_json::Value {
    let reply = get(&router.url("/status")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// Polls `/status` until `check` accepts its `config` object.
async fn wait_for_config(
    router: &Router,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    poll_until(what, WITHIN, EVERY, || async {
        let config = status(router).await["config"].clone();
        check(&config).then_some(config)
    })
    .await
}

async fn model_names(router: &Router) -> Vec<String> {
    let reply = get(&router.url("/v1/models")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

fn upstream(name: &str, base: &str) -> String {
    format!("  {name}: {{ provider: openai-compatible, base_url: \"{base}/v1\", health_check: false }}\n")
}

#[tokio::test]
async fn an_edited_config_file_adds_a_model_without_a_restart() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("served", "ok"))).await;
    let base = mock.base_url();
    let v1 = format!(
        "upstreams:\n{}models:\n  m:\n    targets: [{{ upstream: up, model: served }}]\n",
        upstream("up", &base)
    );
    let router = Router::start(&v1).await;
    assert_eq!(model_names(&router).await, ["m"]);
    let before = status(&router).await["config"].clone();
    assert_eq!(before["generation"], 1, "{before}");

    let v2 = format!("{v1}  added:\n    targets: [{{ upstream: up, model: served }}]\n");
    rewrite(router.config_path(), &v2);
    let names = poll_until("`added` in GET /v1/models", WITHIN, EVERY, || async {
        let names = model_names(&router).await;
        names.iter().any(|n| n == "added").then_some(names)
    })
    .await;

    assert_eq!(names, ["m", "added"]);
    let config = status(&router).await["config"].clone();
    assert_eq!(config["generation"], 2, "{config}");
    assert_eq!(config["reloads_succeeded"], 1, "{config}");
    assert_eq!(config["reloads_failed"], 0, "{config}");
    assert!(config["last_reload_error"].is_null(), "{config}");
    let reply = post_json(&router.url("/v1/chat/completions"), &chat("added")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-model").as_deref(), Some("added"));
}

#[tokio::test]
async fn an_edit_that_removes_a_model_makes_it_unknown() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("served", "ok"))).await;
    let keep = format!(
        "upstreams:\n{}models:\n  m:\n    targets: [{{ upstream: up, model: served }}]\n",
        upstream("up", &mock.base_url())
    );
    let v1 = format!("{keep}  gone:\n    targets: [{{ upstream: up, model: served }}]\n");
    let router = Router::start(&v1).await;
    let reply = post_json(&router.url("/v1/chat/completions"), &chat("gone")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    rewrite(router.config_path(), &keep);
    wait_for_config(&router, "generation 2", |c| c["generation"] == 2).await;

    let reply = post_json(&router.url("/v1/chat/completions"), &chat("gone")).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "model_not_found");
    assert_eq!(model_names(&router).await, ["m"]);
}

#[tokio::test]
async fn a_file_written_in_place_is_reloaded_too() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("served", "ok"))).await;
    let v1 = format!(
        "upstreams:\n{}models:\n  m:\n    targets: [{{ upstream: up, model: served }}]\n",
        upstream("up", &mock.base_url())
    );
    let router = Router::start(&v1).await;

    // Not every editor renames: `echo ... > router.yaml` truncates and writes.
    let v2 = format!("{v1}  added:\n    targets: [{{ upstream: up, model: served }}]\n");
    std::fs::write(router.config_path(), &v2).expect("write the config in place");
    poll_until("`added` in GET /v1/models", WITHIN, EVERY, || async {
        let names = model_names(&router).await;
        names.iter().any(|n| n == "added").then_some(())
    })
    .await;

    let reply = post_json(&router.url("/v1/chat/completions"), &chat("added")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_rejected_edit_keeps_the_old_table_serving_until_a_valid_edit() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("served", "ok"))).await;
    let base = mock.base_url();
    let v1 = format!(
        "upstreams:\n{}models:\n  m:\n    targets: [{{ upstream: up, model: served }}]\n",
        upstream("up", &base)
    );
    let router = Router::start(&v1).await;

    tracing::info!("an edit that names an upstream nobody declared");
    let broken = format!("{v1}  m2:\n    targets: [{{ upstream: nope }}]\n");
    rewrite(router.config_path(), &broken);
    let config = wait_for_config(&router, "reloads_failed to reach 1", |c| {
        c["reloads_failed"] == 1
    })
    .await;

    assert_eq!(
        config["generation"], 1,
        "the old table is still served: {config}"
    );
    assert_eq!(config["reloads_succeeded"], 0, "{config}");
    let error = config["last_reload_error"]
        .as_str()
        .unwrap_or_else(|| panic!("last_reload_error is set: {config}"));
    assert!(
        error.contains("models.m2.targets[0].upstream"),
        "names the key path: {error}"
    );
    assert!(
        error.contains("nope"),
        "names the unknown upstream: {error}"
    );
    // Error text can quote the config: only counts reach the open readiness view.
    let ready = get(&router.url("/health/ready")).await.text();
    assert!(
        ready.contains("\"reloads_failed\":1")
            && !ready.contains("last_reload_error")
            && !ready.contains("nope"),
        "{ready}"
    );
    let reply = post_json(&router.url("/v1/chat/completions"), &chat("m")).await;
    assert_eq!(reply.status, 200, "the old table serves: {}", reply.text());
    let reply = post_json(&router.url("/v1/chat/completions"), &chat("m2")).await;
    assert_eq!(reply.status, 404, "the rejected table is never served");
    assert_eq!(model_names(&router).await, ["m"]);

    tracing::info!("fixing the edit");
    let fixed = format!("{v1}  m2:\n    targets: [{{ upstream: up, model: served }}]\n");
    rewrite(router.config_path(), &fixed);
    let config = wait_for_config(&router, "generation 2", |c| c["generation"] == 2).await;

    assert!(
        config["last_reload_error"].is_null(),
        "a good reload clears the error: {config}"
    );
    assert_eq!(config["reloads_failed"], 1, "{config}");
    assert_eq!(config["reloads_succeeded"], 1, "{config}");
    let reply = post_json(&router.url("/v1/chat/completions"), &chat("m2")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_request_in_flight_during_a_reload_finishes_on_its_old_table() {
    init_tracing();
    let old_chunks = chat_chunks("old-model", &["from", " old"], false);
    // Role + first content at once (the commit), the rest one per release.
    let first = old_chunks[..2].concat();
    let gated = vec![
        first.clone(),
        old_chunks[2].clone(),
        old_chunks[3..].concat(),
    ];
    let gate = Gate::new();
    let old = MockUpstream::start(Behaviour::SseGated {
        chunks: gated.clone(),
        gate: gate.clone(),
    })
    .await;
    let new_chunks = chat_chunks("new-model", &["from", " new"], false);
    let new = MockUpstream::start(Behaviour::sse(new_chunks.clone())).await;
    let v1 = format!(
        "upstreams:\n{}models:\n  m:\n    targets: [{{ upstream: old, model: old-model }}]\n",
        upstream("old", &old.base_url())
    );
    let router = Router::start(&v1).await;

    let mut stream = open_stream(&router.url("/v1/chat/completions"), &[], &chat_stream("m")).await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.header("x-switchyard-target").as_deref(),
        Some("old/old-model")
    );
    let mut received = stream.read_until(r#""content":"from""#).await;

    tracing::info!("reloading: `m` now points at upstream `new`; `old` is gone");
    let v2 = format!(
        "upstreams:\n{}models:\n  m:\n    targets: [{{ upstream: new, model: new-model }}]\n",
        upstream("new", &new.base_url())
    );
    rewrite(router.config_path(), &v2);
    wait_for_config(&router, "generation 2", |c| c["generation"] == 2).await;
    gate.release_n(2);
    let rest = stream.rest().await.expect("the old stream ends cleanly");
    received.push_str(&String::from_utf8_lossy(&rest));

    assert_eq!(
        received,
        old_chunks.concat(),
        "the whole stream, from `old`"
    );
    let reply = post_json(&router.url("/v1/chat/completions"), &chat_stream("m")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-target").as_deref(),
        Some("new/new-model")
    );
    assert_eq!(reply.text(), new_chunks.concat());
    assert_eq!(old.request_count(), 1);
    assert_eq!(new.request_count(), 1);
}

// ---------------------------------------------------------------------------
// Reloads under load
// ---------------------------------------------------------------------------

/// Valid version `k`: model `load` is served by upstream `up_v{k}` (all
/// versions point at the same mock), plus models that come and go.
fn valid_version(k: usize, base: &str) -> String {
    let mut yaml = String::from("upstreams:\n");
    yaml.push_str(&upstream(&format!("up_v{k}"), base));
    yaml.push_str(&upstream("spare", base));
    yaml.push_str("models:\n");
    yaml.push_str(&format!(
        "  load:\n    targets: [{{ upstream: up_v{k}, model: load-model }}]\n"
    ));
    // Renamed every version; another one only in even versions.
    yaml.push_str(&format!("  extra_{k}:\n    targets: [spare]\n"));
    if k.is_multiple_of(2) {
        yaml.push_str("  even:\n    targets: [spare]\n");
    }
    yaml
}

/// Invalid edit `k`: a valid-looking file with one model naming an upstream
/// that does not exist (each text differs, so each one is a new edit).
fn invalid_version(k: usize, base: &str) -> String {
    format!(
        "{}  broken_{k}:\n    targets: [{{ upstream: missing_{k} }}]\n",
        valid_version(100 + k, base)
    )
}

/// The version number in a `up_v{k}/load-model` label.
fn version_of(label: &str) -> usize {
    label
        .strip_prefix("up_v")
        .and_then(|rest| rest.strip_suffix("/load-model"))
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("unexpected target label {label:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_drop_no_request_and_each_is_served_by_a_live_table() {
    init_tracing();
    let chunks = chat_chunks("load-model", &["one", " two", " three"], false);
    let json_body = chat_completion_json("load-model", "ok");
    let mock = {
        let chunks = chunks.clone();
        let json_body = json_body.clone();
        // Small delays only pace the load so that it overlaps the reloads.
        MockUpstream::start_with(move |req: &Recorded| {
            if req.text().contains(r#""stream":true"#) {
                Behaviour::Sse {
                    chunks: chunks.clone(),
                    delay: Duration::from_millis(3),
                }
            } else {
                Behaviour::Json(json_body.clone()).delayed(Duration::from_millis(10))
            }
        })
        .await
    };
    let base = mock.base_url();
    let router = Arc::new(Router::start(&valid_version(1, &base)).await);

    // `written`: the newest valid version whose file write has begun.
    // `confirmed`: the newest valid version `/status` showed as served.
    // `seen[k]`: some request was served by version `k`.
    let written = Arc::new(AtomicUsize::new(1));
    let confirmed = Arc::new(AtomicUsize::new(1));
    let writer_done = Arc::new(AtomicBool::new(false));
    let seen: Arc<Vec<AtomicBool>> = Arc::new((0..16).map(|_| AtomicBool::new(false)).collect());

    let mut load = Vec::new();
    for task in 0..4usize {
        let router = router.clone();
        let (written, confirmed, writer_done, seen) = (
            written.clone(),
            confirmed.clone(),
            writer_done.clone(),
            seen.clone(),
        );
        let (chunks, json_body) = (chunks.clone(), json_body.clone());
        load.push(tokio::spawn(async move {
            let url = router.url("/v1/chat/completions");
            let mut failures: Vec<String> = Vec::new();
            let mut served = 0usize;
            let mut i = 0usize;
            while (i < 30 || !writer_done.load(Ordering::SeqCst)) && i < 2000 {
                let streamed = (i + task).is_multiple_of(2);
                let body = if streamed {
                    chat_stream("load")
                } else {
                    chat("load")
                };
                let low = confirmed.load(Ordering::SeqCst);
                let result = try_send(
                    "POST",
                    &url,
                    &[("content-type", "application/json")],
                    body.into_bytes(),
                )
                .await;
                let high = written.load(Ordering::SeqCst);
                i += 1;
                let reply = match result {
                    Ok(reply) => reply,
                    Err(e) => {
                        failures.push(format!("task {task} request {i}: {e}"));
                        continue;
                    }
                };
                let expected = if streamed {
                    chunks.concat()
                } else {
                    json_body.clone()
                };
                if reply.status != 200 || reply.text() != expected {
                    failures.push(format!(
                        "task {task} request {i} (stream: {streamed}): status {} body {:?}",
                        reply.status,
                        reply.text()
                    ));
                    continue;
                }
                let label = reply.header("x-switchyard-target").unwrap_or_default();
                let version = version_of(&label);
                if !(low..=high).contains(&version) {
                    failures.push(format!(
                        "task {task} request {i}: served by version {version}, but only versions {low}..={high} were live while it ran"
                    ));
                }
                seen[version].store(true, Ordering::SeqCst);
                served += 1;
            }
            (served, failures)
        }));
    }

    // Ten edits: valid ones move `load` to a new upstream label; invalid
    // ones must change nothing. Before each edit the writer waits until the
    // load was served by the current version, so every version serves under
    // load.
    let wait_seen = |k: usize| {
        let seen = seen.clone();
        async move {
            poll_until(
                &format!("a request served by version {k}"),
                WITHIN,
                Duration::from_millis(5),
                || async { seen[k].load(Ordering::SeqCst).then_some(()) },
            )
            .await
        }
    };
    let plan = [
        true, false, true, true, false, true, false, true, true, false,
    ];
    let mut version = 1usize;
    let mut rejected = 0u64;
    for (n, valid) in plan.into_iter().enumerate() {
        wait_seen(version).await;
        if valid {
            version += 1;
            written.store(version, Ordering::SeqCst);
            tracing::info!(n, version, "writing a valid version");
            rewrite(router.config_path(), &valid_version(version, &base));
            let generation = version as u64;
            wait_for_config(&router, &format!("generation {generation}"), |c| {
                c["generation"] == generation
            })
            .await;
            confirmed.store(version, Ordering::SeqCst);
        } else {
            rejected += 1;
            tracing::info!(n, "writing an invalid version");
            rewrite(router.config_path(), &invalid_version(n, &base));
            let config = wait_for_config(&router, &format!("reloads_failed {rejected}"), |c| {
                c["reloads_failed"] == rejected
            })
            .await;
            assert_eq!(
                config["generation"], version as u64,
                "a rejected edit changes nothing: {config}"
            );
        }
    }
    wait_seen(version).await;
    writer_done.store(true, Ordering::SeqCst);

    let mut total = 0;
    let mut failures = Vec::new();
    for task in load {
        let (served, failed) = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the load finishes within its deadline")
            .expect("load task");
        total += served;
        failures.extend(failed);
    }
    assert!(
        failures.is_empty(),
        "{} failed requests:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total >= 120,
        "every task sent at least 30 requests ({total})"
    );
    let served_versions: Vec<usize> = (0..16)
        .filter(|k| seen[*k].load(Ordering::SeqCst))
        .collect();
    assert_eq!(
        served_versions,
        (1..=version).collect::<Vec<_>>(),
        "every valid version served, no other"
    );
    tracing::info!(total, "requests served during the reloads");
    let config = status(&router).await["config"].clone();
    assert_eq!(config["generation"], version as u64, "{config}");
    assert_eq!(config["reloads_failed"], rejected, "{config}");
    let names = model_names(&router).await;
    assert_eq!(names, ["load", &format!("extra_{version}")], "{names:?}");
}
