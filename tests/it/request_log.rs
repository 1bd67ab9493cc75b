//! Request log records written by a running router: one JSON line per
//! model request, content only when asked, rotation by size.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-reqlog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(mock: &MockUpstream, dir: &Path, extra: &str) -> String {
    format!(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: {}/v1\n    health_check: false\nmodels:\n  m:\n    targets: [{{ upstream: up, model: upstream-model }}]\n    pricing: {{ input_per_million: 2.0, output_per_million: 8.0 }}\nrequest_log:\n  dir: {}\n{extra}",
        mock.base_url(),
        dir.display()
    )
}

/// Every record in `dir`, oldest file first, waiting until `n` are there.
async fn records(dir: &Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        let lines: Vec<Value> = files
            .iter()
            .flat_map(|f| {
                // Only whole lines: the writer may be in the middle of one
                // (a 1 MiB record takes more than one write).
                let text = std::fs::read_to_string(f).unwrap_or_default();
                let whole = text.rfind('\n').map_or("", |end| &text[..end]);
                whole
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .map(|l| serde_json::from_str(&l).expect("every line is one JSON object"))
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} records after 5 s",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_model_request_becomes_one_record_without_content() {
    init_tracing();
    let dir = temp_dir("plain");
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await;
    let router = Router::start(&config(&mock, &dir, "")).await;

    let ok = client::send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer sk-caller-secret"),
            ("x-request-id", "req-log-1"),
        ],
        r#"{"model":"m","messages":[{"role":"user","content":"secret prompt"}]}"#,
    )
    .await;
    assert_eq!(ok.status, 200);
    let missing = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"nope","messages":[]}"#,
    )
    .await;
    assert_eq!(missing.status, 404);
    client::get(&router.url("/health")).await; // not a model request: not recorded

    let lines = records(&dir, 2).await;
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    assert_eq!(first["request_id"], "req-log-1");
    assert_eq!(first["model"], "m");
    assert_eq!(first["target"], "up/upstream-model");
    assert_eq!(first["status"], 200);
    assert_eq!(first["outcome"], "completed");
    assert_eq!(first["usage"]["prompt_tokens"], 11);
    assert_eq!(first["usage"]["completion_tokens"], 7);
    assert!((first["cost_usd"].as_f64().unwrap() - (11.0 * 2.0 + 7.0 * 8.0) / 1e6).abs() < 1e-12);
    assert!(first["ts"].as_str().unwrap().ends_with('Z'));
    assert!(first.get("request").is_none() && first.get("response").is_none());
    assert_eq!(lines[1]["error"], "model_not_found");
    let text = std::fs::read_to_string(
        std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(!text.contains("secret prompt") && !text.contains("sk-caller-secret"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn include_content_records_the_request_and_the_streamed_text() {
    init_tracing();
    let dir = temp_dir("content");
    let mock = MockUpstream::start(Behaviour::sse(chat_chunks(
        "upstream-model",
        &["Hel", "lo"],
        true,
    )))
    .await;
    let router = Router::start(&config(&mock, &dir, "  include_content: true\n")).await;

    let body = "{\n  \"model\": \"m\",\n  \"stream\": true,\n  \"messages\": [{\"role\": \"user\", \"content\": \"say hello\"}]\n}";
    let reply = client::send(
        "POST",
        &router.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer sk-caller-secret"),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, 200);

    let lines = records(&dir, 1).await;
    let record = &lines[0];
    assert_eq!(record["request"]["messages"][0]["content"], "say hello");
    assert_eq!(record["response"], "Hello");
    assert_eq!(record["usage"]["total_tokens"], 18);
    let text = std::fs::read_to_string(
        std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "a pretty-printed body stays on one line"
    );
    assert!(!text.contains("sk-caller-secret"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn files_rotate_at_max_file_bytes() {
    init_tracing();
    let dir = temp_dir("rotate");
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "hi",
    )))
    .await;
    let router = Router::start(&config(&mock, &dir, "  max_file_bytes: 4096\n")).await;

    for _ in 0..30 {
        let reply = client::post_json(
            &router.url("/v1/chat/completions"),
            r#"{"model":"m","messages":[]}"#,
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let lines = records(&dir, 30).await;
    assert_eq!(lines.len(), 30);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 2, "rotated: {files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("requests-") && name.ends_with(".jsonl"),
            "{name}"
        );
        assert!(
            std::fs::metadata(file).unwrap().len() <= 4096,
            "{name} is over the limit"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// More than the 1 MiB content cap of three-byte characters, so that the cap
/// falls inside a character (1,048,576 is not a multiple of 3).
fn cjk_past_the_cap() -> String {
    "中".repeat((1 << 20) / 3 + 1000)
}

/// The captured text is a prefix of the answer, at most 1 MiB, ending on a
/// whole character.
fn assert_capped_prefix(record: &Value, answer: &str) {
    let captured = record["response"].as_str().expect("response captured");
    assert!(
        captured.len() <= 1 << 20,
        "{} bytes captured",
        captured.len()
    );
    assert!(
        captured.len() > (1 << 20) - 4,
        "{} bytes captured",
        captured.len()
    );
    assert!(
        answer.starts_with(captured),
        "the capture is a prefix of the answer"
    );
}

#[tokio::test]
async fn a_streamed_multibyte_answer_past_the_capture_cap_is_cut_at_a_character() {
    init_tracing();
    let dir = temp_dir("cjk-stream");
    // Two ASCII bytes first, so the cap falls inside a character.
    let piece = "中".repeat(1000);
    let mut pieces = vec!["ab"];
    pieces.extend(std::iter::repeat_n(piece.as_str(), 360));
    let answer = pieces.concat();
    let mock = MockUpstream::start(Behaviour::sse(chat_chunks(
        "upstream-model",
        &pieces,
        false,
    )))
    .await;
    let router = Router::start(&config(&mock, &dir, "  include_content: true\n")).await;

    let reply = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().ends_with("data: [DONE]\n\n"),
        "the whole stream arrived"
    );

    assert_capped_prefix(&records(&dir, 1).await[0], &answer);
    // The process is still serving.
    assert_eq!(client::get(&router.url("/health")).await.status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_json_multibyte_answer_past_the_capture_cap_is_cut_at_a_character() {
    init_tracing();
    let dir = temp_dir("cjk-json");
    let answer = cjk_past_the_cap();
    let body = chat_completion_json("upstream-model", &answer);
    let mock = MockUpstream::start(Behaviour::Json(body.clone())).await;
    let router = Router::start(&config(&mock, &dir, "  include_content: true\n")).await;

    let reply = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","messages":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), body, "the answer passed through whole");

    assert_capped_prefix(&records(&dir, 1).await[0], &body);
    assert_eq!(client::get(&router.url("/health")).await.status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_cancelled_stream_records_the_tokens_it_relayed_as_an_estimate() {
    init_tracing();
    let dir = temp_dir("cancelled");
    // The role chunk, three content chunks at once, then the rest held back
    // until the client has left.
    let chunks = chat_chunks("upstream-model", &["one", " two", " three", " four"], true);
    let gate = Gate::new();
    let first: String = chunks[..4].concat();
    let mut gated = vec![first];
    gated.extend(chunks[4..].iter().cloned());
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: gated,
        gate: gate.clone(),
    })
    .await;
    let router = Router::start(&config(&mock, &dir, "")).await;

    let mut stream = crate::support::client::open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count"}]}"#,
    )
    .await;
    let seen = stream.read_until(" three").await;
    assert!(seen.contains(" three"), "{seen}");
    drop(stream);
    assert!(
        mock.wait_for_cancelled_stream(Duration::from_secs(5)).await,
        "the upstream stream is dropped"
    );

    let record = records(&dir, 1).await.remove(0);
    assert_eq!(record["outcome"], "client_cancelled", "{record}");
    assert_eq!(record["usage"]["completion_tokens"], 3, "{record}");
    assert_eq!(record["usage"]["prompt_tokens"], 0, "{record}");
    assert_eq!(record["usage"]["estimated"], true, "{record}");
    // Priced as what was generated: 3 output tokens at $8 per million.
    assert!((record["cost_usd"].as_f64().unwrap() - 3.0 * 8.0 / 1e6).abs() < 1e-12);

    // A stream that ends with its usage reports it as it is, not estimated.
    gate.release_n(10);
    let stream = crate::support::client::open_stream(
        &router.url("/v1/chat/completions"),
        &[],
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count"}]}"#,
    )
    .await;
    let body = stream.rest().await.expect("a whole stream");
    assert!(body.ends_with(b"data: [DONE]\n\n"), "{body:?}");
    let records = records(&dir, 2).await;
    assert_eq!(
        records[1]["usage"]["completion_tokens"], 7,
        "{}",
        records[1]
    );
    assert!(records[1]["usage"].get("estimated").is_none());
}
