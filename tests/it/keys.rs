//! Router keys with permissions and limits (`keys:`): the real server on
//! loopback in front of a real mock upstream, and the binary itself for
//! the log lines and `switchyard key new`.
//!
//! Keys are given to the router as SHA-256 digests (as `switchyard key
//! new` prints them), or as `key: ${VAR}` with the variable set only in the
//! child process's environment, never in this process's.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use switchyard::quota::key::{hex, sha256};

use crate::support::client::{get, send};
use crate::support::extra::{assert_openai_error, poll_until};
use crate::support::metrics_scrape::scrape;
use crate::support::*;

const LIMITED: &str = "sk-sy-test-limited-0123456789abcdef";
const OTHER: &str = "sk-sy-test-other-fedcba9876543210";

fn digest(key: &str) -> String {
    hex(&sha256(key.as_bytes()))
}

/// Two models (`m`, priced at $1 per token so a budget is spent by one
/// answer of the mock's 18 tokens, and `other`) on the mock upstream, then
/// `keys:` as given (indented two spaces), then `extra`.
fn config(mock: &MockUpstream, keys: &str, extra: &str) -> String {
    format!(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n\
         models:\n  m:\n    targets: [{{ upstream: up, model: upstream-model }}]\n    pricing: {{ input_per_million: 1000000, output_per_million: 1000000 }}\n\
         \x20 other:\n    targets: [{{ upstream: up, model: upstream-model }}]\n\
         keys:\n{keys}{extra}",
        mock.base_url()
    )
}

async fn json_mock() -> MockUpstream {
    MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await
}

fn body(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

async fn chat_body(router: &Router, key: &str, body: &str) -> Reply {
    let auth = format!("Bearer {key}");
    send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body.to_owned(),
    )
    .await
}

async fn chat(router: &Router, key: &str, model: &str) -> Reply {
    chat_body(router, key, &body(model)).await
}

async fn authed_get(router: &Router, path: &str, key: &str) -> Reply {
    let auth = format!("Bearer {key}");
    send("GET", &router.url(path), &[("authorization", &auth)], "").await
}

fn assert_no_key(reply: &Reply) {
    let all = format!("{:?} {}", reply.headers, reply.text());
    for key in [LIMITED, OTHER] {
        assert!(!all.contains(key), "the key leaked into an answer: {all}");
    }
}

#[tokio::test]
async fn rpm_admits_exactly_the_limit_and_answers_the_rest_with_429_and_headers() {
    init_tracing();
    let mock = json_mock().await;
    let keys = format!(
        "  - {{ name: limited, sha256: {}, rpm: 10 }}\n",
        digest(LIMITED)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;

    let mut ok = 0;
    let mut limited = 0;
    for i in 0..30 {
        let reply = chat(&router, LIMITED, "m").await;
        assert_no_key(&reply);
        assert_eq!(
            reply.header("x-ratelimit-limit-requests").as_deref(),
            Some("10"),
            "every answer to a limited key says its limit"
        );
        assert!(reply.header("x-ratelimit-reset-requests").is_some());
        match reply.status.as_u16() {
            200 => {
                ok += 1;
                assert_eq!(
                    reply.header("x-ratelimit-remaining-requests"),
                    Some((10 - ok).to_string()),
                    "request {i}"
                );
            }
            429 => {
                limited += 1;
                let error = assert_openai_error(&reply, 429, "rate_limit_exceeded");
                assert_eq!(error["type"], "requests");
                assert_eq!(
                    reply.header("x-ratelimit-remaining-requests").as_deref(),
                    Some("0")
                );
                // 10 per minute: the next one fits within 6 s.
                let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=6).contains(&retry), "retry-after {retry}");
                assert!(
                    reply.header("x-should-retry").is_none(),
                    "the SDK may retry after retry-after"
                );
            }
            other => panic!("unexpected status {other}: {}", reply.text()),
        }
    }
    assert_eq!((ok, limited), (10, 20));
    assert_eq!(
        mock.requests().len(),
        10,
        "refused requests never reach the upstream"
    );

    let metrics = scrape(&router.base).await;
    assert_eq!(
        metrics.value(
            "switchyard_key_requests_total",
            &[("key", "limited"), ("result", "admitted")]
        ),
        10.0
    );
    assert_eq!(
        metrics.value(
            "switchyard_key_requests_total",
            &[("key", "limited"), ("result", "rate_limited")]
        ),
        20.0
    );
    let stats = authed_get(&router, "/stats", LIMITED).await.json();
    assert_eq!(stats["keys"][0]["name"], "limited");
    assert_eq!(stats["keys"][0]["requests"], 10);
    assert_eq!(stats["keys"][0]["rate_limited"], 20);
}

#[tokio::test]
async fn tpm_is_charged_from_the_usage_observed_not_the_estimate() {
    init_tracing();
    let mock = json_mock().await;
    let keys = format!(
        "  - {{ name: tokens, sha256: {}, tpm: 1000 }}\n",
        digest(LIMITED)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;
    let asking = |n: u32| {
        format!(r#"{{"model":"m","max_tokens":{n},"messages":[{{"role":"user","content":"hi"}}]}}"#)
    };
    let estimate = |b: &str| b.len().div_ceil(4) as u64 + 400;

    let first = asking(400);
    let reply = chat_body(&router, LIMITED, &first).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-ratelimit-limit-tokens").as_deref(),
        Some("1000")
    );
    let remaining: u64 = reply
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    // The reservation: the prompt estimate plus max_tokens.
    assert!(
        (1000 - estimate(&first)..=1001 - estimate(&first)).contains(&remaining),
        "{remaining}"
    );

    // The answer used 18 tokens (the mock's usage), so the second request
    // sees 18 + its own reservation charged, not two reservations.
    let reply = chat_body(&router, LIMITED, &first).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let remaining: u64 = reply
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    let expected = 1000 - 18 - estimate(&first);
    assert!(
        (expected..=expected + 1).contains(&remaining),
        "{remaining}, expected {expected}"
    );

    // One that needs the whole minute's allowance does not fit now.
    let reply = chat_body(&router, LIMITED, &asking(5000)).await;
    let error = assert_openai_error(&reply, 429, "rate_limit_exceeded");
    assert_eq!(error["type"], "tokens");
    assert!(reply.header("retry-after").is_some());

    let stats = authed_get(&router, "/stats", LIMITED).await.json();
    assert_eq!(stats["keys"][0]["tokens"], 36, "{stats}");
}

#[tokio::test]
async fn max_parallel_refuses_while_slow_answers_run_and_frees_when_they_end() {
    init_tracing();
    let mock = MockUpstream::start(
        Behaviour::Json(chat_completion_json("upstream-model", "hi"))
            .delayed(Duration::from_millis(700)),
    )
    .await;
    let keys = format!(
        "  - {{ name: par, sha256: {}, max_parallel: 2 }}\n",
        digest(LIMITED)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;

    let (a, b, c, d) = tokio::join!(
        chat(&router, LIMITED, "m"),
        chat(&router, LIMITED, "m"),
        chat(&router, LIMITED, "m"),
        chat(&router, LIMITED, "m"),
    );
    let mut statuses: Vec<u16> = [&a, &b, &c, &d].iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 429, 429]);
    for r in [&a, &b, &c, &d] {
        if r.status == 429 {
            let error = assert_openai_error(r, 429, "rate_limit_exceeded");
            assert!(
                error["message"].as_str().unwrap().contains("parallel"),
                "{error}"
            );
            assert_eq!(r.header("retry-after").as_deref(), Some("1"));
        }
    }
    // Both slots were released when their answers ended.
    let (e, f) = tokio::join!(chat(&router, LIMITED, "m"), chat(&router, LIMITED, "m"));
    assert_eq!((e.status.as_u16(), f.status.as_u16()), (200, 200));
}

#[tokio::test]
async fn a_model_the_key_may_not_use_is_403_naming_the_model_not_the_key() {
    init_tracing();
    let mock = json_mock().await;
    let keys = format!(
        "  - {{ name: narrow, sha256: {}, models: [\"m*\"] }}\n  - {{ name: wide, sha256: {} }}\n",
        digest(LIMITED),
        digest(OTHER)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;
    assert_eq!(chat(&router, LIMITED, "m").await.status, 200);
    let reply = chat(&router, LIMITED, "other").await;
    let error = assert_openai_error(&reply, 403, "model_not_allowed");
    assert!(
        error["message"].as_str().unwrap().contains("`other`"),
        "{error}"
    );
    assert_no_key(&reply);
    assert_eq!(
        chat(&router, OTHER, "other").await.status,
        200,
        "no `models`: every model"
    );
    // A key with no limits gets no rate-limit headers.
    assert!(chat(&router, OTHER, "m")
        .await
        .header("x-ratelimit-limit-requests")
        .is_none());
}

#[tokio::test]
async fn an_expired_key_is_401_saying_it_expired_on_both_doors() {
    init_tracing();
    let mock = json_mock().await;
    let keys = format!(
        "  - {{ name: old, sha256: {}, expires: 2020-01-01 }}\n  - {{ name: current, sha256: {}, expires: \"2999-12-31T23:59:59Z\" }}\n",
        digest(LIMITED),
        digest(OTHER)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;
    let reply = chat(&router, LIMITED, "m").await;
    let error = assert_openai_error(&reply, 401, "invalid_api_key");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("expired at 2020-01-01T00:00:00Z"),
        "{error}"
    );
    assert_no_key(&reply);
    assert_eq!(chat(&router, OTHER, "m").await.status, 200);
    assert_eq!(chat(&router, "sk-unknown", "m").await.status, 401);

    let reply = send(
        "POST",
        &router.url("/v1/messages"),
        &[("content-type", "application/json"), ("x-api-key", LIMITED)],
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(reply.status, 401);
    let body = reply.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn a_spent_budget_is_429_insufficient_quota_saying_when_it_resets() {
    init_tracing();
    let mock = json_mock().await;
    let dir = temp_dir("budget");
    let keys = format!(
        "  - {{ name: budgeted, sha256: {}, budget: {{ daily_usd: 10 }} }}\n",
        digest(LIMITED)
    );
    let extra = format!("state:\n  file: {}\n", dir.join("state.json").display());
    let router = Router::start(&config(&mock, &keys, &extra)).await;
    // The first answer costs $18 (18 tokens at $1), over the $10 budget.
    assert_eq!(chat(&router, LIMITED, "m").await.status, 200);
    let reply = chat(&router, LIMITED, "m").await;
    let error = assert_openai_error(&reply, 429, "insufficient_quota");
    assert_eq!(error["type"], "insufficient_quota");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("daily budget of $10.00") && message.contains("T00:00:00Z (UTC midnight)"),
        "{message}"
    );
    assert_eq!(reply.header("x-should-retry").as_deref(), Some("false"));
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry));
    // Another model on the same key is refused too: the budget is the key's.
    assert_openai_error(
        &chat(&router, LIMITED, "other").await,
        429,
        "insufficient_quota",
    );

    let stats = authed_get(&router, "/stats", LIMITED).await.json();
    let key = &stats["keys"][0];
    assert_eq!(key["spend_today_usd"], 18.0, "{stats}");
    assert_eq!(key["remaining_daily_usd"], 0.0, "{stats}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-keys-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_spent_budget_survives_a_restart_through_the_state_file() {
    init_tracing();
    let mock = json_mock().await;
    let dir = temp_dir("restart");
    let file = dir.join("state.json");
    let keys = format!(
        "  - {{ name: budgeted, sha256: {}, budget: {{ monthly_usd: 10 }} }}\n",
        digest(LIMITED)
    );
    let yaml = config(
        &mock,
        &keys,
        &format!("state: {{ file: {} }}\n", file.display()),
    );

    let router = Router::start(&yaml).await;
    assert_eq!(chat(&router, LIMITED, "m").await.status, 200);
    assert_openai_error(
        &chat(&router, LIMITED, "m").await,
        429,
        "insufficient_quota",
    );
    router.shutdown().await;
    let saved = std::fs::read_to_string(&file).expect("the state file is written at shutdown");
    assert!(
        saved.contains("budgeted") && !saved.contains(LIMITED),
        "{saved}"
    );

    let router = Router::start(&yaml).await;
    let reply = chat(&router, LIMITED, "m").await;
    let error = assert_openai_error(&reply, 429, "insufficient_quota");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("monthly budget"),
        "{error}"
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "only the first request was served"
    );
    router.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_flat_server_auth_keys_still_work_beside_keys() {
    init_tracing();
    let mock = json_mock().await;
    let keys = format!(
        "  - {{ name: limited, sha256: {}, rpm: 1 }}\n",
        digest(LIMITED)
    );
    let extra = "server:\n  auth:\n    keys: [sk-flat-one]\n";
    let router = Router::start(&config(&mock, &keys, extra)).await;
    for _ in 0..3 {
        let reply = chat(&router, "sk-flat-one", "other").await;
        assert_eq!(
            reply.status,
            200,
            "a flat key has no limits: {}",
            reply.text()
        );
        assert!(reply.header("x-ratelimit-limit-requests").is_none());
    }
    assert_eq!(chat(&router, LIMITED, "m").await.status, 200);
    assert_eq!(chat(&router, LIMITED, "m").await.status, 429);
    assert_openai_error(
        &chat(&router, "sk-flat-two", "m").await,
        401,
        "invalid_api_key",
    );
    assert_eq!(get(&router.url("/v1/models")).await.status, 401);
    assert_eq!(
        authed_get(&router, "/v1/models", "sk-flat-one")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_reload_keeps_the_limiter_state() {
    init_tracing();
    let mock = json_mock().await;
    let keys = format!(
        "  - {{ name: limited, sha256: {}, rpm: 3 }}\n",
        digest(LIMITED)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;
    for _ in 0..3 {
        assert_eq!(chat(&router, LIMITED, "m").await.status, 200);
    }
    // A new table (another key added) must not hand out a fresh minute.
    let more = format!("{keys}  - {{ name: another, sha256: {} }}\n", digest(OTHER));
    let path = router.config_path().to_owned();
    let tmp = path.with_extension("yaml.edit");
    std::fs::write(&tmp, config(&mock, &more, "")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    poll_until(
        "generation 2",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let status = authed_get(&router, "/status", OTHER).await;
            (status.status == 200 && status.json()["config"]["generation"] == 2).then_some(())
        },
    )
    .await;
    let reply = chat(&router, LIMITED, "m").await;
    assert_openai_error(&reply, 429, "rate_limit_exceeded");
    assert_eq!(chat(&router, OTHER, "m").await.status, 200);
}

/// The binary with `config` on an ephemeral port, its stderr collected.
struct Binary {
    child: std::process::Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    dir: PathBuf,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Binary {
    fn start(name: &str, config: &str, env: &[(&str, &str)]) -> Binary {
        let dir = temp_dir(name);
        let path = dir.join("router.yaml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "--config",
                path.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run switchyard");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut binary = Binary {
            child,
            addr: String::new(),
            lines,
            dir,
        };
        let listening = binary.wait_for("listening");
        binary.addr = listening
            .split(|c: char| c == '"' || c.is_whitespace())
            .find_map(|w| {
                w.trim_start_matches("addr=")
                    .parse::<std::net::SocketAddr>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no address in {listening:?}"))
            .to_string();
        binary
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => assert_line_clean(&line),
                Err(_) => panic!("no stderr line with {needle:?} within 10 s"),
            }
        }
    }

    /// A chat completion over a plain socket with `key`: the whole answer.
    fn chat(&self, key: &str, model: &str) -> String {
        let body = body(model);
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             authorization: Bearer {key}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }
}

fn assert_line_clean(line: &str) {
    for key in [LIMITED, OTHER, "sk-sy-test-wrong"] {
        assert!(!line.contains(key), "a key leaked into a log line: {line}");
    }
}

#[test]
fn no_key_appears_in_any_answer_or_log_line_and_labels_reach_the_access_log() {
    let config = format!(
        "upstreams:\n  m:\n    provider: mock\nmodels:\n  demo:\n    targets: [{{ upstream: m, model: demo }}]\n  other:\n    targets: [{{ upstream: m, model: demo }}]\n\
         keys:\n  - {{ name: team-a, key: \"${{TEAM_A_KEY}}\", models: [demo], rpm: 2, labels: {{ team: search, env: prod }} }}\n\
         \x20 - {{ name: team-b, sha256: {} }}\n",
        digest(OTHER)
    );
    let binary = Binary::start("binary", &config, &[("TEAM_A_KEY", LIMITED)]);
    let answers = [
        binary.chat(LIMITED, "demo"),
        binary.chat(LIMITED, "other"),
        binary.chat(LIMITED, "demo"),
        binary.chat(LIMITED, "demo"),
        binary.chat(OTHER, "demo"),
        binary.chat("sk-sy-test-wrong", "demo"),
    ];
    let statuses: Vec<&str> = answers.iter().map(|a| &a[9..12]).collect();
    assert_eq!(statuses, ["200", "403", "200", "429", "200", "401"]);
    for answer in &answers {
        assert!(
            !answer.contains(LIMITED)
                && !answer.contains(OTHER)
                && !answer.contains("sk-sy-test-wrong"),
            "{answer}"
        );
    }
    let line = binary.wait_for("request request_id=");
    assert!(line.contains("key=\"team-a\""), "{line}");
    assert!(
        line.contains(r#"key_label_team="search" key_label_env="prod""#),
        "{line}"
    );
    // Every further line is checked by wait_for on the way to the last one.
    for _ in 0..5 {
        binary.wait_for("request request_id=");
    }
}

#[test]
fn key_new_prints_a_random_key_and_the_line_with_its_hash() {
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["key", "new", "ci-bot"])
            .output()
            .expect("run switchyard key new");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let (a, b) = (run(), run());
    let key = a.lines().next().unwrap();
    assert!(
        key.starts_with("sk-sy-") && key.len() >= "sk-sy-".len() + 64,
        "{a}"
    );
    assert_ne!(key, b.lines().next().unwrap(), "two keys must differ");
    let line = format!("- {{ name: ci-bot, sha256: \"{}\" }}", digest(key));
    assert!(a.contains(&line), "{a}\nexpected {line}");
}

#[test]
fn check_refuses_a_clear_key_and_says_how_to_hash_it() {
    let dir = temp_dir("check");
    let path = dir.join("router.yaml");
    std::fs::write(
        &path,
        "upstreams:\n  m:\n    provider: mock\nmodels:\n  demo:\n    targets: [{ upstream: m }]\n\
         keys:\n  - { name: a, key: sk-literal-key }\n  - { name: a, sha256: nothex, rpm: 0 }\n\
         \x20 - { sha256: 0000000000000000000000000000000000000000000000000000000000000000, labels: { Bad: x } }\n\
         \x20 - { name: c, sha256: 0000000000000000000000000000000000000000000000000000000000000000, models: [gpt-*], budget: { daily_usd: 0 } }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "keys[0].key: a clear key is not written in router.yaml",
        "switchyard key new NAME",
        "sha256sum",
        "keys[1].sha256: expected 64 hex digits",
        "keys[1].rpm: expected a whole number from 1",
        "keys[2].name: missing",
        "keys[2].labels.Bad: label names are",
        "keys[3].budget.daily_usd: must be more than 0",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(
        !err.contains("sk-literal-key"),
        "the clear key is echoed: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_target_at_its_rpm_is_skipped_and_traffic_spills_to_the_next() {
    init_tracing();
    let (a, b) = (json_mock().await, json_mock().await);
    let yaml = format!(
        "upstreams:\n  a:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n\
         \x20 b:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n\
         models:\n  m:\n    strategy: priority\n    targets:\n      - {{ upstream: a, model: upstream-model, rpm: 2 }}\n      - {{ upstream: b, model: upstream-model }}\n\
         \x20 solo:\n    rpm: 1\n    targets: [{{ upstream: a, model: solo-model }}]\n",
        a.base_url(),
        b.base_url()
    );
    let router = Router::start(&yaml).await;
    let url = router.url("/v1/chat/completions");
    for i in 0..5 {
        let reply = crate::support::client::post_json(&url, &body("m")).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
        let expected = if i < 2 {
            "a/upstream-model"
        } else {
            "b/upstream-model"
        };
        assert_eq!(
            reply.header("x-switchyard-target").as_deref(),
            Some(expected)
        );
    }
    assert_eq!((a.requests().len(), b.requests().len()), (2, 3));

    // Nothing left to spill to: 429 with when the target has room again.
    assert_eq!(
        crate::support::client::post_json(&url, &body("solo"))
            .await
            .status,
        200
    );
    let reply = crate::support::client::post_json(&url, &body("solo")).await;
    let error = assert_openai_error(&reply, 429, "rate_limit_exceeded");
    assert!(
        error["message"].as_str().unwrap().contains("a/solo-model"),
        "{error}"
    );
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        a.requests().len(),
        3,
        "a target at its limit is not sent to"
    );
}

#[tokio::test]
async fn a_streamed_answer_settles_tpm_and_spend_with_its_usage_event() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::sse(chat_chunks(
        "upstream-model",
        &["Hel", "lo"],
        true,
    )))
    .await;
    let keys = format!(
        "  - {{ name: streamer, sha256: {}, tpm: 5000, budget: {{ monthly_usd: 1000 }} }}\n",
        digest(LIMITED)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..2 {
        let reply = chat_body(&router, LIMITED, body).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(reply.text().contains("[DONE]"));
        assert_eq!(
            reply.header("x-ratelimit-limit-tokens").as_deref(),
            Some("5000")
        );
    }
    let stats = authed_get(&router, "/stats", LIMITED).await.json();
    let key = &stats["keys"][0];
    assert_eq!(key["tokens"], 36, "{stats}");
    assert_eq!(key["spend_this_month_usd"], 36.0, "{stats}");
    assert_eq!(key["in_flight"], 0, "{stats}");
    // Two reservations were replaced by 18 tokens each.
    let left = key["remaining_tokens"].as_u64().unwrap();
    assert!((4964..=4970).contains(&left), "{stats}");
}

#[tokio::test]
async fn the_anthropic_door_answers_a_limit_in_its_own_envelope_with_the_headers() {
    init_tracing();
    let mock = json_mock().await;
    let keys = format!(
        "  - {{ name: claude-user, sha256: {}, rpm: 1, models: [m] }}\n",
        digest(LIMITED)
    );
    let router = Router::start(&config(&mock, &keys, "")).await;
    let messages = |model: &str| {
        format!(
            r#"{{"model":"{model}","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}]}}"#
        )
    };
    let send_messages = |model: String| {
        let url = router.url("/v1/messages");
        async move {
            send(
                "POST",
                &url,
                &[("content-type", "application/json"), ("x-api-key", LIMITED)],
                model,
            )
            .await
        }
    };
    let ok = send_messages(messages("m")).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        ok.header("x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    let limited = send_messages(messages("m")).await;
    assert_eq!(limited.status, 429);
    let body = limited.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(
        limited.header("x-ratelimit-limit-requests").as_deref(),
        Some("1")
    );
    let denied = send_messages(messages("other")).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["error"]["type"], "permission_error");
}

#[tokio::test]
async fn the_request_log_names_the_key_and_its_labels_never_the_key() {
    init_tracing();
    let mock = json_mock().await;
    let dir = temp_dir("reqlog");
    let keys = format!(
        "  - {{ name: labelled, sha256: {}, labels: {{ team: search, tier: gold }} }}\n",
        digest(LIMITED)
    );
    let extra = format!("request_log:\n  dir: {}\n", dir.join("log").display());
    let router = Router::start(&config(&mock, &keys, &extra)).await;
    assert_eq!(chat(&router, LIMITED, "m").await.status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text: String = std::fs::read_dir(dir.join("log"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        if text.ends_with('\n') || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let record: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a record")).unwrap();
    assert_eq!(record["key"], "labelled", "{record}");
    assert_eq!(record["key_labels"]["team"], "search", "{record}");
    assert_eq!(record["key_labels"]["tier"], "gold", "{record}");
    assert!(!text.contains(LIMITED), "{text}");
    drop(router);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_reload_keeps_a_targets_rate_state() {
    init_tracing();
    let mock = json_mock().await;
    let yaml = |extra: &str| {
        format!(
            "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\n\
             models:\n  m:\n    targets: [{{ upstream: up, model: upstream-model, rpm: 2 }}]\n{extra}",
            mock.base_url()
        )
    };
    let router = Router::start(&yaml("")).await;
    let url = router.url("/v1/chat/completions");
    for _ in 0..2 {
        assert_eq!(
            crate::support::client::post_json(&url, &body("m"))
                .await
                .status,
            200
        );
    }
    let path = router.config_path().to_owned();
    let tmp = path.with_extension("yaml.edit");
    std::fs::write(
        &tmp,
        yaml("  n:\n    targets: [{ upstream: up, model: other-model }]\n"),
    )
    .unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    poll_until(
        "generation 2",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let status = get(&router.url("/status")).await;
            (status.json()["config"]["generation"] == 2).then_some(())
        },
    )
    .await;
    let reply = crate::support::client::post_json(&url, &body("m")).await;
    assert_openai_error(&reply, 429, "rate_limit_exceeded");
    assert_eq!(mock.requests().len(), 2);
}
