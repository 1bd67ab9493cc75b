//! Micro-benchmarks of the per-request pieces of the hot path (criterion).
//!
//! ```sh
//! cargo bench --bench micro              # every group, about a minute and a half
//! cargo bench --bench micro -- inspect   # only the groups/benches matching "inspect"
//! ```
//!
//! - `inspect+splice`: the body peek (`json::inspect`) and the
//!   model rewrite (`splice_model`) a chat request goes through, on bodies of
//!   ~200 B to 1 MiB, with `"model"` first or last.
//! - `sse observer per chunk`: an [`SseScanner`] fed a 54-event
//!   chat.completion.chunk stream, one event per chunk or all in one buffer,
//!   with the per-event work of `forward::commit::await_commit` (classify
//!   until the commit point, usage on every event) and of
//!   `forward::relay::Passthrough::poll` (usage on every event).
//! - `plan selection`: `routing::plan` on a compiled table, walked the way
//!   `forward::forward` walks it.
//! - `anthropic translate`: `providers::anthropic` on a ~2 KiB chat request,
//!   a typical non-stream answer, and a 50-event Anthropic text stream fed
//!   to a `StreamTranslator` event by event (the events already scanned).
//! - `anthropic inbound`: `providers::anthropic::inbound`, the Anthropic
//!   front door: a ~2 KiB Messages request to a chat-completions body, a
//!   typical `chat.completion` answer to a `message`, and a 50-event
//!   chat.completion.chunk text stream fed to a `MessageStream` event by
//!   event.
//! - `gemini translate`: `providers::gemini` on the same request, a typical
//!   `generateContent` answer, and a 50-event `alt=sse` text stream.
//! - `bedrock translate`: `providers::bedrock` on the same request, a typical
//!   Converse answer, and a 50-message ConverseStream body (binary
//!   event-stream frames) decoded and translated message by message.
//!
//! - `key admission`: what a router key adds per request in memory mode:
//!   `quota::KeySet::lookup` (SHA-256 of the presented key, one hash-map
//!   probe among 1,000 digests), then for a key with limits the token
//!   estimate, `Store::admit` (budget, max_parallel, rpm, tpm) and the
//!   permit's settlement with the usage.
//!
//! Each bench checks its result once before measuring, so a broken bench
//! fails instead of timing nothing. See docs/benchmarks.md.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use switchyard::json::{inspect, splice_model};
use switchyard::openai::{classify, usage_of_body, usage_of_event, ChunkKind, Usage};
use switchyard::providers::anthropic::inbound;
use switchyard::providers::anthropic::{
    translate_request, translate_response, Options, StreamTranslator,
};
use switchyard::providers::bedrock;
use switchyard::providers::gemini;
use switchyard::providers::Endpoint;
use switchyard::routing::{plan, Model, Plan, Table};
use switchyard::sse::{Event, SseScanner};

// ---------------------------------------------------------------------------
// inspect + splice
// ---------------------------------------------------------------------------

/// The model name the client sends, and the one a target puts in its place.
const CLIENT_MODEL: &str = "gpt-4o";
const UPSTREAM_MODEL: &str = "gpt-4o-2024-08-06";

/// Message texts cycled through to build bodies: prose, code with `\n` and
/// `\"` escapes, non-ASCII text, and now and then a pasted document.
const TEXTS: &[&str] = &[
    "Can you explain how a reverse proxy differs from a load balancer? Keep it short, and give one example of each in a typical web deployment.",
    "A reverse proxy sits in front of servers and forwards client requests to them; a load balancer spreads requests over several servers. Many reverse proxies (nginx, HAProxy, Envoy) also balance load, so the two roles often overlap.",
    "Here is my config:\n\n```yaml\nupstreams:\n  openai: { provider: openai, api_key: \"${OPENAI_API_KEY}\" }\nmodels:\n  gpt-4o:\n    targets: [openai]\n```\n\nWhy does it say \"unknown key\"?",
    "Übersetze bitte ins Japanische: »Die Antwort kommt gleich.« — 答えはすぐに来ます。Merci beaucoup, ça marche très bien ! 🚀",
    "fn main() {\n    let xs: Vec<u32> = (0..10).collect();\n    println!(\"{:?}\", xs.iter().map(|x| x * 2).collect::<Vec<_>>());\n}\n\nWhat does this print, and why does the turbofish matter here?",
];

fn document(len: usize) -> String {
    let line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.\n";
    line.repeat(len / line.len() + 1)[..len].to_owned()
}

/// A chat-completion request body of about `target` bytes (at least the
/// minimal one): alternating user/assistant messages after a system prompt,
/// with `"model"` as the first or the last top-level key.
fn chat_body(target: usize, model_first: bool) -> Bytes {
    let model = format!(
        r#""model":{}"#,
        serde_json::to_string(CLIENT_MODEL).unwrap()
    );
    let tail = r#""temperature":0.7,"top_p":1,"max_tokens":1024,"stream":true,"stream_options":{"include_usage":true},"user":"user-1234""#;
    let mut messages = vec![format!(
        r#"{{"role":"system","content":{}}}"#,
        serde_json::to_string("You are a concise, helpful assistant.").unwrap()
    )];
    // `{`, `,`, `"messages":[`, `],`, `}` around the fields.
    let overhead = model.len() + tail.len() + 17;
    let mut len = overhead + messages[0].len();
    let mut i = 0;
    loop {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        // A pasted document now and then, when it fits in the target size.
        let text = if i % 16 == 15 && len + 4100 <= target {
            document(4000)
        } else {
            TEXTS[i % TEXTS.len()].to_owned()
        };
        let message = format!(
            r#"{{"role":"{role}","content":{}}}"#,
            serde_json::to_string(&text).unwrap()
        );
        len += message.len() + 1;
        messages.push(message);
        i += 1;
        if len >= target {
            break;
        }
    }
    let messages = format!(r#""messages":[{}]"#, messages.join(","));
    let body = if model_first {
        format!("{{{model},{messages},{tail}}}")
    } else {
        format!("{{{messages},{tail},{model}}}")
    };
    assert_eq!(body.len(), len);
    Bytes::from(body)
}

/// The small body of `benches/added_latency.rs` (model renamed).
const SMALL_BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something about proxies in one sentence, please."}],"temperature":0.2,"max_tokens":64}"#;

fn check_splice(body: &Bytes) {
    let inspected = inspect(body).expect("the bench body inspects");
    assert_eq!(inspected.model.as_deref(), Some(CLIENT_MODEL));
    let spliced = splice_model(body, &inspected, UPSTREAM_MODEL);
    assert!(spliced.parts.len() >= 2, "the model was rewritten");
    let out: serde_json::Value =
        serde_json::from_slice(&spliced.to_bytes()).expect("the spliced body is JSON");
    let original: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(out["model"], UPSTREAM_MODEL);
    assert_eq!(out["messages"], original["messages"]);
    assert_eq!(
        spliced.len(),
        body.len() + UPSTREAM_MODEL.len() - CLIENT_MODEL.len()
    );
}

fn bench_inspect_splice(c: &mut Criterion) {
    let mut bodies = vec![("200B".to_owned(), Bytes::from_static(SMALL_BODY.as_bytes()))];
    for (name, size) in [("4KiB", 4 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)] {
        bodies.push((format!("{name}/model-first"), chat_body(size, true)));
        bodies.push((format!("{name}/model-last"), chat_body(size, false)));
    }

    let mut group = c.benchmark_group("inspect+splice");
    // 1 MiB takes about a millisecond; 50 samples fit the measurement time.
    group.sample_size(50);
    for (name, body) in &bodies {
        check_splice(body);
        let size = body.len();
        assert!(
            name.starts_with("200B") && size <= 256
                || name.starts_with("4KiB") && (4 << 10..5 << 10).contains(&size)
                || name.starts_with("64KiB") && (64 << 10..65 << 10).contains(&size)
                || name.starts_with("1MiB") && ((1 << 20)..(1 << 20) + 1024).contains(&size),
            "{name}: {size} bytes"
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| {
                let inspected = match inspect(black_box(body)) {
                    Ok(inspected) => inspected,
                    Err(e) => panic!("{e}"),
                };
                black_box(splice_model(body, &inspected, black_box(UPSTREAM_MODEL)))
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// SSE observer
// ---------------------------------------------------------------------------

const TOKENS: usize = 50;
/// Role chunk, 50 content chunks, finish chunk, usage chunk, `[DONE]`.
const EVENTS: usize = TOKENS + 4;
const WORDS: &[&str] = &[
    " The",
    " proxy",
    " forwards",
    " each",
    " chunk",
    " as",
    " it",
    " arrives",
    ",",
    " and",
];

/// An OpenAI chat stream with `stream_options.include_usage`, one event per
/// chunk, as api.openai.com sends it (`"usage":null` on every chunk but the
/// usage chunk).
fn stream_chunks() -> Vec<Bytes> {
    const HEAD: &str = r#"{"id":"chatcmpl-BqZ3kWm9x2Lr8TfYp1VnDcQe7HsA4","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8""#;
    let event = |json: String| Bytes::from(format!("data: {json}\n\n"));
    let mut chunks = vec![event(format!(
        r#"{HEAD},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
    ))];
    for i in 0..TOKENS {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap();
        chunks.push(event(format!(
            r#"{HEAD},"choices":[{{"index":0,"delta":{{"content":{word}}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        )));
    }
    chunks.push(event(format!(
        r#"{HEAD},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}],"usage":null}}"#
    )));
    chunks.push(event(format!(
        r#"{HEAD},"choices":[],"usage":{{"prompt_tokens":24,"completion_tokens":{TOKENS},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}}}"#,
        24 + TOKENS
    )));
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    assert_eq!(chunks.len(), EVENTS);
    chunks
}

/// What the proxy does per event: `await_commit` until the commit point,
/// then `Passthrough::poll` (with `inject_stream_usage` on, so a usage
/// event is also checked for being usage-only).
#[derive(Default)]
struct Observer {
    events: usize,
    events_end: u64,
    usage: Option<Usage>,
    usage_only: Vec<(u64, u64)>,
    /// Index of the event that committed the stream.
    committed_at: Option<usize>,
    failed: bool,
}

impl Observer {
    fn on_event(&mut self, event: Event<'_>) {
        let start = self.events_end;
        self.events_end += event.raw.len() as u64;
        if let Some(found) = usage_of_event(&event) {
            self.usage = Some(found);
            // `forward::stream_usage::is_usage_only` (crate-private), inlined.
            if usage_of_event(&event).is_some() && classify(&event) == ChunkKind::Empty {
                self.usage_only.push((start, self.events_end));
            }
        }
        if self.committed_at.is_none() && !self.failed {
            match classify(&event) {
                ChunkKind::Content => self.committed_at = Some(self.events),
                ChunkKind::Error | ChunkKind::Done => self.failed = true,
                ChunkKind::Empty | ChunkKind::Comment | ChunkKind::Other => {}
            }
        }
        self.events += 1;
    }
}

/// Counts events and classifies every one of them (what the commit phase
/// costs per event while no content has come yet).
#[derive(Default)]
struct ClassifyAll {
    events: usize,
    content: usize,
    usage: Option<Usage>,
}

impl ClassifyAll {
    fn on_event(&mut self, event: Event<'_>) {
        if let Some(found) = usage_of_event(&event) {
            self.usage = Some(found);
        }
        if classify(&event) == ChunkKind::Content {
            self.content += 1;
        }
        self.events += 1;
    }
}

fn observe(chunks: &[Bytes]) -> Observer {
    let mut scanner = SseScanner::new();
    let mut observer = Observer::default();
    for chunk in chunks {
        if scanner.feed(chunk, |e| observer.on_event(e)).is_err() {
            panic!("event too large");
        }
    }
    scanner.finish(|e| observer.on_event(e));
    observer
}

fn classify_all(chunks: &[Bytes]) -> ClassifyAll {
    let mut scanner = SseScanner::new();
    let mut seen = ClassifyAll::default();
    for chunk in chunks {
        if scanner.feed(chunk, |e| seen.on_event(e)).is_err() {
            panic!("event too large");
        }
    }
    scanner.finish(|e| seen.on_event(e));
    seen
}

fn scan_only(chunks: &[Bytes]) -> usize {
    let mut scanner = SseScanner::new();
    let mut events = 0;
    for chunk in chunks {
        if scanner.feed(chunk, |_| events += 1).is_err() {
            panic!("event too large");
        }
    }
    scanner.finish(|_| events += 1);
    events
}

fn bench_sse(c: &mut Criterion) {
    let per_chunk = stream_chunks();
    let total: usize = per_chunk.iter().map(Bytes::len).sum();
    let one_buffer = vec![Bytes::from(per_chunk.concat())];
    let usage = Usage {
        prompt_tokens: 24,
        completion_tokens: TOKENS as u64,
        total_tokens: 24 + TOKENS as u64,
    };

    for chunks in [&per_chunk, &one_buffer] {
        let seen = observe(chunks);
        assert_eq!(seen.events, EVENTS);
        assert_eq!(seen.events_end, total as u64);
        assert_eq!(
            seen.committed_at,
            Some(1),
            "the first content chunk commits"
        );
        assert!(!seen.failed);
        assert_eq!(seen.usage, Some(usage));
        assert_eq!(seen.usage_only.len(), 1, "one usage-only event");
        let all = classify_all(chunks);
        assert_eq!((all.events, all.content), (EVENTS, TOKENS + 1));
        assert_eq!(all.usage, Some(usage));
        assert_eq!(scan_only(chunks), EVENTS);
    }
    // The non-stream counterpart reads usage the same way.
    let completion = br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[],"usage":{"prompt_tokens":24,"completion_tokens":50,"total_tokens":74}}"#;
    assert_eq!(usage_of_body(completion), Some(usage));

    let mut group = c.benchmark_group("sse observer per chunk");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (layout, chunks) in [("54 chunks", &per_chunk), ("one buffer", &one_buffer)] {
        group.bench_with_input(
            BenchmarkId::new("scan only", layout),
            chunks,
            |b, chunks| b.iter(|| black_box(scan_only(black_box(chunks)))),
        );
        group.bench_with_input(
            BenchmarkId::new("proxy observer", layout),
            chunks,
            |b, chunks| b.iter(|| black_box(observe(black_box(chunks)).events_end)),
        );
        group.bench_with_input(
            BenchmarkId::new("classify+usage every event", layout),
            chunks,
            |b, chunks| b.iter(|| black_box(classify_all(black_box(chunks)).content)),
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// plan selection
// ---------------------------------------------------------------------------

const ROUTER_YAML: &str = r#"
upstreams:
  a: { provider: openai-compatible, base_url: "http://10.0.0.1:8000/v1", health_check: false }
  b: { provider: openai-compatible, base_url: "http://10.0.0.2:8000/v1", health_check: false }
  c: { provider: openai-compatible, base_url: "http://10.0.0.3:8000/v1", health_check: false }
  d: { provider: openai-compatible, base_url: "http://10.0.0.4:8000/v1", health_check: false }
models:
  chat:
    targets:
      - { upstream: a, model: a-model, weight: 3 }
      - { upstream: b, model: b-model, weight: 2 }
      - { upstream: c, model: c-model, weight: 1 }
    fallbacks: [backup]
  backup:
    targets: [{ upstream: d, model: d-model }]
  ranked:
    strategy: priority
    targets:
      - { upstream: a, model: a-model }
      - { upstream: b, model: b-model }
      - { upstream: c, model: c-model }
"#;

fn table() -> Table {
    let registry = switchyard::upstream::Registry::default();
    match switchyard::config::load_str(ROUTER_YAML, "micro.yaml", &|_| None, &registry, 1) {
        Ok(loaded) => loaded.table,
        Err(errors) => panic!("{errors}"),
    }
}

/// Walks a plan the way `forward::forward` does: a queue of indices, and
/// for each target the upstream model name and URL an attempt needs.
fn walk(plan: Plan<'_>) -> usize {
    let targets = plan.targets;
    let mut queue: VecDeque<usize> = (0..targets.len()).collect();
    let mut walked = 0;
    while let Some(index) = queue.pop_front() {
        let target = targets[index];
        black_box(target.body_model(Endpoint::ChatCompletions));
        black_box(target.url(Endpoint::ChatCompletions, false));
        walked += 1;
    }
    black_box(plan.context_window);
    walked
}

fn labels(model: &Model) -> Vec<String> {
    plan(model)
        .targets
        .iter()
        .map(|t| t.label.clone())
        .collect()
}

fn bench_plan(c: &mut Criterion) {
    let table = table();
    let chat = table.model("chat").expect("model chat").clone();
    let ranked = table.model("ranked").expect("model ranked").clone();

    // Weighted 3:2:1: one full cycle puts each target first by its weight,
    // the others by weight after it, and the fallback's target last.
    let mut firsts = Vec::new();
    for _ in 0..6 {
        let order = labels(&chat);
        assert_eq!(order.len(), 4, "{order:?}");
        assert_eq!(order[3], "d/d-model", "{order:?}");
        firsts.push(order[0].clone());
    }
    firsts.sort();
    assert_eq!(
        firsts,
        [
            "a/a-model",
            "a/a-model",
            "a/a-model",
            "b/b-model",
            "b/b-model",
            "c/c-model"
        ]
    );
    assert_eq!(labels(&ranked), ["a/a-model", "b/b-model", "c/c-model"]);

    let mut group = c.benchmark_group("plan selection");
    group.bench_function("weighted 3 targets + fallback", |b| {
        b.iter(|| walk(plan(black_box(&chat))))
    });
    group.bench_function("priority 3 targets", |b| {
        b.iter(|| walk(plan(black_box(&ranked))))
    });
    group.bench_function("lookup + weighted 3 targets + fallback", |b| {
        b.iter(|| {
            let model = table.model(black_box("chat")).expect("model chat");
            walk(plan(model))
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// anthropic translate
// ---------------------------------------------------------------------------

const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5-20250929";

/// A typical non-stream Anthropic answer: a paragraph, cache-aware usage.
const ANTHROPIC_ANSWER: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"A reverse proxy sits in front of one or more servers and forwards client requests to them, often adding TLS termination, caching or authentication. A load balancer spreads requests over several equivalent servers to share load and survive failures. Example: nginx terminating TLS for a single app server is a reverse proxy; HAProxy spreading traffic over three identical API servers is a load balancer."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":412,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"output_tokens":86,"service_tier":"standard"}}"#;

/// Anthropic stream events: message_start, ping, a text block of 44
/// deltas, message_delta, message_stop: 50 events.
const ANTHROPIC_EVENTS: usize = 50;

fn anthropic_events() -> Vec<Event<'static>> {
    let event = |name: &'static str, data: String| Event {
        raw: Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
        event: Some(name),
        data: Cow::Owned(data.into_bytes()),
        has_data: true,
        comment_only: false,
    };
    let mut events = vec![
        event("message_start", r#"{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":412,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"output_tokens":1}}}"#.to_owned()),
        event("ping", r#"{"type":"ping"}"#.to_owned()),
        event("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_owned()),
    ];
    for i in 0..ANTHROPIC_EVENTS - 6 {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap();
        events.push(event(
            "content_block_delta",
            format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{word}}}}}"#),
        ));
    }
    events.push(event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#.to_owned(),
    ));
    events.push(event("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":44}}"#.to_owned()));
    events.push(event(
        "message_stop",
        r#"{"type":"message_stop"}"#.to_owned(),
    ));
    assert_eq!(events.len(), ANTHROPIC_EVENTS);
    events
}

/// One stream through a fresh translator; returns the bytes it wrote.
fn translate_stream(events: &[Event<'_>], out: &mut Vec<Bytes>) -> usize {
    let mut translator = StreamTranslator::new(true);
    out.clear();
    for event in events {
        translator.event(event, out);
    }
    assert!(translator.finished());
    out.iter().map(Bytes::len).sum()
}

fn bench_anthropic(c: &mut Criterion) {
    let options = Options::default();
    let request = chat_body(2 << 10, true);
    assert!(
        (2 << 10..3 << 10).contains(&request.len()),
        "{}",
        request.len()
    );
    let translated = translate_request(&request, ANTHROPIC_MODEL, &options).expect("translates");
    let translated: serde_json::Value = serde_json::from_slice(&translated).unwrap();
    assert_eq!(translated["model"], ANTHROPIC_MODEL);
    assert_eq!(
        translated["system"],
        "You are a concise, helpful assistant."
    );
    assert!(translated["messages"].as_array().unwrap().len() >= 8);

    let answer = translate_response(ANTHROPIC_ANSWER.as_bytes()).expect("a message");
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["usage"]["prompt_tokens"], 1436);

    let events = anthropic_events();
    let mut out = Vec::new();
    translate_stream(&events, &mut out);
    // Role, 44 texts, finish, usage, [DONE].
    assert_eq!(out.len(), ANTHROPIC_EVENTS - 2);
    let mut scanner = SseScanner::new();
    let mut kinds = Vec::new();
    for chunk in &out {
        scanner.feed(chunk, |e| kinds.push(classify(&e))).unwrap();
    }
    assert_eq!(kinds[..2], [ChunkKind::Empty, ChunkKind::Content]);
    assert_eq!(kinds.last(), Some(&ChunkKind::Done));

    let mut group = c.benchmark_group("anthropic translate");
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("request 2KiB", |b| {
        b.iter(|| {
            black_box(translate_request(
                black_box(&request),
                ANTHROPIC_MODEL,
                &options,
            ))
        })
    });
    group.throughput(Throughput::Bytes(ANTHROPIC_ANSWER.len() as u64));
    group.bench_function("response", |b| {
        b.iter(|| black_box(translate_response(black_box(ANTHROPIC_ANSWER.as_bytes()))))
    });
    group.throughput(Throughput::Elements(ANTHROPIC_EVENTS as u64));
    group.bench_function("stream 50 events", |b| {
        b.iter(|| black_box(translate_stream(black_box(&events), &mut out)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// anthropic inbound
// ---------------------------------------------------------------------------

/// A typical non-stream OpenAI answer: a paragraph, usage with cached tokens.
const OPENAI_ANSWER: &str = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"A reverse proxy sits in front of one or more servers and forwards client requests to them, often adding TLS termination, caching or authentication. A load balancer spreads requests over several equivalent servers to share load and survive failures. Example: nginx terminating TLS for a single app server is a reverse proxy; HAProxy spreading traffic over three identical API servers is a load balancer.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1436,"completion_tokens":86,"total_tokens":1522,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"service_tier":"default","system_fingerprint":"fp_f33640a400"}"#;

/// OpenAI stream events: a role chunk, 46 text pieces, the finish, the
/// usage chunk, `[DONE]`: 50 events.
const OPENAI_EVENTS: usize = 50;

fn openai_events() -> Vec<Event<'static>> {
    let event = |data: String| Event {
        raw: Bytes::from(format!("data: {data}\n\n")),
        event: None,
        data: Cow::Owned(data.into_bytes()),
        has_data: true,
        comment_only: false,
    };
    let head = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f33640a400","choices":[{"index":0,"delta":"#;
    let mut events = vec![event(format!(
        r#"{head}{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
    ))];
    for i in 0..OPENAI_EVENTS - 4 {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap();
        events.push(event(format!(
            r#"{head}{{"content":{word}}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        )));
    }
    events.push(event(format!(
        r#"{head}{{}},"logprobs":null,"finish_reason":"stop"}}],"usage":null}}"#
    )));
    events.push(event(r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":1436,"completion_tokens":46,"total_tokens":1482,"prompt_tokens_details":{"cached_tokens":1024}}}"#.to_owned()));
    events.push(event("[DONE]".to_owned()));
    assert_eq!(events.len(), OPENAI_EVENTS);
    events
}

/// One stream through a fresh `MessageStream`; returns the bytes it wrote.
fn inbound_stream(events: &[Event<'_>], out: &mut Vec<Bytes>) -> usize {
    let mut stream = inbound::MessageStream::new(ANTHROPIC_MODEL);
    out.clear();
    for event in events {
        stream.event(event, out);
    }
    assert!(stream.finished());
    out.iter().map(Bytes::len).sum()
}

fn bench_anthropic_inbound(c: &mut Criterion) {
    // The ~2 KiB chat request, as the Messages request a Claude client sends.
    let request = translate_request(
        &chat_body(2 << 10, true),
        ANTHROPIC_MODEL,
        &Options::default(),
    )
    .expect("translates");
    assert!(
        (1 << 10..3 << 10).contains(&request.len()),
        "{}",
        request.len()
    );
    let translated = inbound::request_to_openai(&request).expect("translates back");
    let translated: serde_json::Value = serde_json::from_slice(&translated).unwrap();
    assert_eq!(translated["messages"][0]["role"], "system");
    assert!(translated["messages"].as_array().unwrap().len() >= 8);

    let answer = inbound::response_from_openai(OPENAI_ANSWER.as_bytes(), ANTHROPIC_MODEL)
        .expect("a chat completion");
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["usage"]["input_tokens"], 412);
    assert_eq!(answer["usage"]["cache_read_input_tokens"], 1024);

    let events = openai_events();
    let mut out = Vec::new();
    inbound_stream(&events, &mut out);
    // message_start, ping, block start, 46 deltas, block stop, message_delta, message_stop.
    assert_eq!(out.len(), OPENAI_EVENTS + 2);
    assert!(out[out.len() - 2].starts_with(b"event: message_delta"));

    let mut group = c.benchmark_group("anthropic inbound");
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("request 2KiB", |b| {
        b.iter(|| black_box(inbound::request_to_openai(black_box(&request))))
    });
    group.throughput(Throughput::Bytes(OPENAI_ANSWER.len() as u64));
    group.bench_function("response", |b| {
        b.iter(|| {
            black_box(inbound::response_from_openai(
                black_box(OPENAI_ANSWER.as_bytes()),
                ANTHROPIC_MODEL,
            ))
        })
    });
    group.throughput(Throughput::Elements(OPENAI_EVENTS as u64));
    group.bench_function("stream 50 events", |b| {
        b.iter(|| black_box(inbound_stream(black_box(&events), &mut out)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// gemini translate
// ---------------------------------------------------------------------------

const GEMINI_MODEL: &str = "gemini-2.5-flash";

/// A typical non-stream Gemini answer: a paragraph, usage with thinking.
const GEMINI_ANSWER: &str = r#"{"candidates":[{"content":{"parts":[{"text":"A reverse proxy sits in front of one or more servers and forwards client requests to them, often adding TLS termination, caching or authentication. A load balancer spreads requests over several equivalent servers to share load and survive failures. Example: nginx terminating TLS for a single app server is a reverse proxy; HAProxy spreading traffic over three identical API servers is a load balancer."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1436,"candidatesTokenCount":86,"totalTokenCount":1702,"cachedContentTokenCount":1024,"promptTokensDetails":[{"modality":"TEXT","tokenCount":1436}],"thoughtsTokenCount":180},"modelVersion":"gemini-2.5-flash","responseId":"mHQXaMbiOrOHz7IPr5zWwAQ"}"#;

/// Gemini stream events: 49 text pieces, then the last with finishReason
/// and the final usage: 50 events.
const GEMINI_EVENTS: usize = 50;

fn gemini_events() -> Vec<Event<'static>> {
    let event = |data: String| Event {
        raw: Bytes::from(format!("data: {data}\r\n\r\n")),
        event: None,
        data: Cow::Owned(data.into_bytes()),
        has_data: true,
        comment_only: false,
    };
    let mut events = Vec::with_capacity(GEMINI_EVENTS);
    for i in 0..GEMINI_EVENTS - 1 {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap();
        events.push(event(format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":{word}}}],"role":"model"}},"index":0}}],"usageMetadata":{{"promptTokenCount":1436,"totalTokenCount":1436}},"modelVersion":"gemini-2.5-flash","responseId":"mHQXaMbiOrOHz7IPr5zWwAQ"}}"#
        )));
    }
    events.push(event(r#"{"candidates":[{"content":{"parts":[{"text":"."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1436,"candidatesTokenCount":50,"totalTokenCount":1486},"modelVersion":"gemini-2.5-flash","responseId":"mHQXaMbiOrOHz7IPr5zWwAQ"}"#.to_owned()));
    assert_eq!(events.len(), GEMINI_EVENTS);
    events
}

/// One Gemini stream through a fresh translator, ended; returns the bytes it wrote.
fn translate_gemini_stream(events: &[Event<'_>], out: &mut Vec<Bytes>) -> usize {
    let mut translator = gemini::StreamTranslator::new(true, GEMINI_MODEL);
    out.clear();
    for event in events {
        translator.event(event, out);
    }
    translator.end(out);
    assert!(translator.finished());
    out.iter().map(Bytes::len).sum()
}

fn bench_gemini(c: &mut Criterion) {
    let request = chat_body(2 << 10, true);
    let translated = gemini::translate_request(&request).expect("translates");
    let translated: serde_json::Value = serde_json::from_slice(&translated).unwrap();
    assert_eq!(
        translated["systemInstruction"]["parts"][0]["text"],
        "You are a concise, helpful assistant."
    );
    assert!(translated["contents"].as_array().unwrap().len() >= 8);

    let answer =
        gemini::translate_response(GEMINI_ANSWER.as_bytes(), GEMINI_MODEL).expect("an answer");
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["usage"]["completion_tokens"], 266);

    let events = gemini_events();
    let mut out = Vec::new();
    translate_gemini_stream(&events, &mut out);
    // Role, 50 texts, finish, usage, [DONE].
    assert_eq!(out.len(), GEMINI_EVENTS + 4);
    let mut scanner = SseScanner::new();
    let mut kinds = Vec::new();
    for chunk in &out {
        scanner.feed(chunk, |e| kinds.push(classify(&e))).unwrap();
    }
    assert_eq!(kinds[..2], [ChunkKind::Empty, ChunkKind::Content]);
    assert_eq!(kinds.last(), Some(&ChunkKind::Done));

    let mut group = c.benchmark_group("gemini translate");
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("request 2KiB", |b| {
        b.iter(|| black_box(gemini::translate_request(black_box(&request))))
    });
    group.throughput(Throughput::Bytes(GEMINI_ANSWER.len() as u64));
    group.bench_function("response", |b| {
        b.iter(|| {
            black_box(gemini::translate_response(
                black_box(GEMINI_ANSWER.as_bytes()),
                GEMINI_MODEL,
            ))
        })
    });
    group.throughput(Throughput::Elements(GEMINI_EVENTS as u64));
    group.bench_function("stream 50 events", |b| {
        b.iter(|| black_box(translate_gemini_stream(black_box(&events), &mut out)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// bedrock translate
// ---------------------------------------------------------------------------

const BEDROCK_MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/// A typical Converse answer: the Anthropic answer's paragraph, cache-aware usage.
const BEDROCK_ANSWER: &str = r#"{"output":{"message":{"role":"assistant","content":[{"text":"A reverse proxy sits in front of one or more servers and forwards client requests to them, often adding TLS termination, caching or authentication. A load balancer spreads requests over several equivalent servers to share load and survive failures. Example: nginx terminating TLS for a single app server is a reverse proxy; HAProxy spreading traffic over three identical API servers is a load balancer."}]}},"stopReason":"end_turn","usage":{"inputTokens":412,"outputTokens":86,"totalTokens":1522,"cacheReadInputTokens":1024,"cacheWriteInputTokens":0},"metrics":{"latencyMs":2210}}"#;

/// ConverseStream messages: messageStart, 46 text deltas, contentBlockStop,
/// messageStop, metadata: 50 messages.
const BEDROCK_MESSAGES: usize = 50;

/// One event-stream frame (string headers, CRC32s), as Bedrock writes it.
fn eventstream_frame(event_type: &str, payload: &str) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ] {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 16 + headers.len() + payload.len();
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&(total as u32).to_be_bytes());
    frame.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&frame);
    frame.extend_from_slice(&prelude_crc.to_be_bytes());
    frame.extend_from_slice(&headers);
    frame.extend_from_slice(payload.as_bytes());
    let crc = crc32(&frame);
    frame.extend_from_slice(&crc.to_be_bytes());
    frame
}

/// CRC-32 (IEEE), bitwise: only builds the bench's input.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A ConverseStream body, one frame per message.
fn bedrock_stream() -> Vec<u8> {
    let mut body = eventstream_frame(
        "messageStart",
        r#"{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN","role":"assistant"}"#,
    );
    for i in 0..BEDROCK_MESSAGES - 4 {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap();
        body.extend(eventstream_frame(
            "contentBlockDelta",
            &format!(
                r#"{{"contentBlockIndex":0,"delta":{{"text":{word}}},"p":"abcdefghijklmnop"}}"#
            ),
        ));
    }
    body.extend(eventstream_frame(
        "contentBlockStop",
        r#"{"contentBlockIndex":0,"p":"abcdefghijklmnopqrstuv"}"#,
    ));
    body.extend(eventstream_frame(
        "messageStop",
        r#"{"p":"abcdefghijklmnop","stopReason":"end_turn"}"#,
    ));
    body.extend(eventstream_frame("metadata", r#"{"metrics":{"latencyMs":2210},"p":"abcdef","usage":{"cacheReadInputTokens":1024,"cacheWriteInputTokens":0,"inputTokens":412,"outputTokens":46,"totalTokens":1482}}"#));
    body
}

/// One stream through a fresh decoder and translator, one message per
/// chunk; returns the bytes it wrote.
fn bedrock_translate_stream(frames: &[Bytes], out: &mut Vec<Bytes>) -> usize {
    let mut decoder = bedrock::EventStreamDecoder::new();
    let mut translator = bedrock::StreamTranslator::new(true, BEDROCK_MODEL);
    out.clear();
    for frame in frames {
        decoder
            .feed(frame, |m| translator.message(&m, out))
            .expect("valid frames");
    }
    assert!(translator.finished() && decoder.finish());
    out.iter().map(Bytes::len).sum()
}

fn bench_bedrock(c: &mut Criterion) {
    let options = bedrock::Options::default();
    let request = chat_body(2 << 10, true);
    let translated = bedrock::translate_request(&request, &options).expect("translates");
    let translated: serde_json::Value = serde_json::from_slice(&translated).unwrap();
    assert_eq!(
        translated["system"][0]["text"],
        "You are a concise, helpful assistant."
    );
    assert!(translated["messages"].as_array().unwrap().len() >= 8);

    let answer =
        bedrock::translate_response(BEDROCK_ANSWER.as_bytes(), BEDROCK_MODEL).expect("an answer");
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["usage"]["prompt_tokens"], 1436);

    // One frame per chunk, as a typical upstream read delivers them.
    let body = bedrock_stream();
    let mut frames = Vec::new();
    let mut rest = &body[..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        frames.push(Bytes::copy_from_slice(&rest[..len]));
        rest = &rest[len..];
    }
    assert_eq!(frames.len(), BEDROCK_MESSAGES);
    let mut out = Vec::new();
    bedrock_translate_stream(&frames, &mut out);
    // Role, 46 texts, finish, usage, [DONE].
    assert_eq!(out.len(), BEDROCK_MESSAGES);
    let mut scanner = SseScanner::new();
    let mut kinds = Vec::new();
    for chunk in &out {
        scanner.feed(chunk, |e| kinds.push(classify(&e))).unwrap();
    }
    assert_eq!(kinds[..2], [ChunkKind::Empty, ChunkKind::Content]);
    assert_eq!(kinds.last(), Some(&ChunkKind::Done));

    let mut group = c.benchmark_group("bedrock translate");
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("request 2KiB", |b| {
        b.iter(|| black_box(bedrock::translate_request(black_box(&request), &options)))
    });
    group.throughput(Throughput::Bytes(BEDROCK_ANSWER.len() as u64));
    group.bench_function("response", |b| {
        b.iter(|| {
            black_box(bedrock::translate_response(
                black_box(BEDROCK_ANSWER.as_bytes()),
                BEDROCK_MODEL,
            ))
        })
    });
    group.throughput(Throughput::Elements(BEDROCK_MESSAGES as u64));
    group.bench_function("stream 50 messages (decode+translate)", |b| {
        b.iter(|| black_box(bedrock_translate_stream(black_box(&frames), &mut out)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// key admission
// ---------------------------------------------------------------------------

fn bench_keys(c: &mut Criterion) {
    use std::sync::Arc;
    use switchyard::quota::key::sha256;
    use switchyard::quota::{estimate_tokens, Budget, KeySet, KeySpec, Limits, Store};

    let spec = |i: usize, limits: Limits| {
        Arc::new(KeySpec {
            name: format!("key-{i}"),
            models: Vec::new(),
            limits,
            expires: None,
            labels: Arc::new([]),
            state: Arc::default(),
            counters: None,
        })
    };
    // Limits that never refuse, so every iteration pays the whole admission.
    let limited = Limits {
        rpm: Some(100_000_000),
        tpm: Some(100_000_000_000),
        max_parallel: Some(1_000_000),
        budget: Budget {
            daily_usd: Some(1e12),
            monthly_usd: Some(1e12),
        },
    };
    let keys = KeySet::new(
        (0..1000)
            .map(|i| {
                let key = format!("sk-sy-bench-{i:04}-0123456789abcdef0123456789abcdef");
                let limits = if i == 500 { limited } else { Limits::default() };
                (sha256(key.as_bytes()), spec(i, limits))
            })
            .collect(),
    );
    let presented = "sk-sy-bench-0500-0123456789abcdef0123456789abcdef";
    let body = br#"{"model":"gpt-4o","max_tokens":256,"messages":[{"role":"user","content":"Say hello in one word."}]}"#;
    let found = keys.lookup(presented).expect("the key is in the set");
    assert_eq!(found.name, "key-500");
    assert!(keys.lookup("sk-sy-not-a-key").is_none());
    let store = Store::default();
    let mut permit = store.admit(found, estimate_tokens(body)).expect("admitted");
    permit.settle(Some(74), Some(0.0001));
    drop(permit);

    let mut group = c.benchmark_group("key admission");
    group.bench_function("lookup (sha256 + map, 1000 keys)", |b| {
        b.iter(|| keys.lookup(black_box(presented)).is_some())
    });
    group.bench_function(
        "lookup + admit + settle (rpm, tpm, parallel, budget)",
        |b| {
            b.iter(|| {
                let key = keys.lookup(black_box(presented)).expect("key");
                let mut permit = store
                    .admit(key, estimate_tokens(black_box(body)))
                    .expect("admitted");
                permit.settle(Some(74), Some(0.0001));
            })
        },
    );
    group.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench_inspect_splice, bench_sse, bench_plan, bench_keys, bench_anthropic, bench_anthropic_inbound, bench_gemini, bench_bedrock
}
criterion_main!(micro);
