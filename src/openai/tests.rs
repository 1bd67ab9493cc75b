//! Classification and usage reading over real and generated streams.

use bytes::Bytes;
use serde::Deserialize;

use super::lenient::Obj;
use super::usage::WireUsage;
use super::*;
use crate::sse::tests::{scan, scan_chunks, OPENAI_STREAM};
use crate::sse::SseScanner;
use proptest::prelude::*;

/// Classifies every event of a whole stream.
fn kinds(stream: &str) -> Vec<ChunkKind> {
    let mut scanner = SseScanner::new();
    let mut out = Vec::new();
    scanner
        .feed(&Bytes::copy_from_slice(stream.as_bytes()), |e| {
            out.push(classify(&e))
        })
        .unwrap();
    assert_eq!(scanner.finish(|e| out.push(classify(&e))), 0);
    out
}

/// Classifies one `data:` payload.
fn kind_of(data: &str) -> ChunkKind {
    let kinds = kinds(&format!("data: {data}\n\n"));
    assert_eq!(kinds.len(), 1);
    kinds[0].clone()
}

/// Usage of one `data:` payload.
fn usage_of(data: &str) -> Option<Usage> {
    let mut usage = None;
    let mut scanner = SseScanner::new();
    let chunk = Bytes::from(format!("data: {data}\n\n"));
    scanner
        .feed(&chunk, |e| usage = usage_of_event(&e))
        .unwrap();
    usage
}

// --- events whose meaning the framing tests check ---

// --- framing --------------------------------------------------------------

#[test]
fn openai_stream_from_protocols_gives_its_four_events() {
    let (seen, pending, discarded) = scan_chunks(&[Bytes::from_static(OPENAI_STREAM.as_bytes())]);
    assert_eq!((pending, discarded), (0, 0));
    assert_eq!(seen.len(), 4);
    assert!(seen
        .iter()
        .all(|e| e.event.is_none() && e.has_data && !e.comment_only));
    assert!(seen[1].data_str().contains(r#""content":"Hel""#));
    assert_eq!(seen[3].data_str(), "[DONE]");
    let raw: Vec<u8> = seen.iter().flat_map(|e| e.raw.to_vec()).collect();
    assert_eq!(raw, OPENAI_STREAM.as_bytes());
    assert_eq!(
        kinds(OPENAI_STREAM),
        [
            ChunkKind::Empty,
            ChunkKind::Content,
            ChunkKind::Content,
            ChunkKind::Done
        ]
    );
}

#[test]
fn comments_and_keep_alives_are_comment_only_events() {
    let seen = scan(&[": keep-alive\n\n:\n\n\nid: 7\nretry: 10\n\n: note\ndata: x\n\n"]);
    assert_eq!(seen.len(), 5);
    for e in &seen[..4] {
        assert!(e.comment_only && !e.has_data && e.event.is_none(), "{e:?}");
    }
    assert_eq!(
        &seen[2].raw[..],
        b"\n",
        "a stray blank line is an empty event"
    );
    assert!(!seen[4].comment_only);
    assert_eq!(seen[4].data_str(), "x");
    assert_eq!(
        kinds(": keep-alive\n\n"),
        [ChunkKind::Comment],
        "comments classify as Comment"
    );
}

#[test]
fn event_names_are_read_anthropic_style() {
    let stream = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"usage":{"input_tokens":12,"output_tokens":1}}}"#,
        "\n\n",
        "event: ping\n",
        r#"data: {"type":"ping"}"#,
        "\n\n",
        "event: ping\n\n",
        "event: error\n",
        r#"data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        "\n\n",
        "event: error\n\n",
        "event:\ndata: {}\n\n",
    );
    let seen = scan(&[stream]);
    let names: Vec<Option<&str>> = seen.iter().map(|e| e.event.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some("message_start"),
            Some("ping"),
            Some("ping"),
            Some("error"),
            Some("error"),
            None
        ]
    );
    assert!(!seen[2].comment_only && !seen[2].has_data);
    assert_eq!(
        kinds(stream),
        [
            ChunkKind::Empty,
            ChunkKind::Empty,
            ChunkKind::Comment,
            ChunkKind::Error,
            ChunkKind::Error,
            ChunkKind::Empty
        ]
    );
}

// --- classification ---------------------------------------------------------

#[test]
fn done_sentinel_is_done() {
    assert_eq!(kind_of("[DONE]"), ChunkKind::Done);
    assert_eq!(kinds("data:[DONE]\n\n"), [ChunkKind::Done]);
}

#[test]
fn absurd_token_counts_are_not_believed() {
    let usage = usage_of_body(
        br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":4294967297,"total_tokens":5}}"#,
    )
    .unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (0, 0));
    let usage = usage_of_body(br#"{"usage":{"prompt_tokens":4294967296,"completion_tokens":1e3}}"#)
        .unwrap();
    assert_eq!(
        (usage.prompt_tokens, usage.completion_tokens),
        (1 << 32, 1000)
    );
}

#[test]
fn error_frame_is_error() {
    assert_eq!(
        kind_of(
            r#"{"error":{"message":"upstream timed out","type":"server_error","param":null,"code":null}}"#
        ),
        ChunkKind::Error
    );
    assert_eq!(
        kind_of(r#"{"error":{"message":"x","code":400}}"#),
        ChunkKind::Error
    );
    assert_eq!(kind_of(r#"{"error":"boom"}"#), ChunkKind::Error);
    // Falsy as Python sees it: not an error frame.
    for falsy in [
        r#"{"error":null}"#,
        r#"{"error":{}}"#,
        r#"{"error":""}"#,
        r#"{"error":false}"#,
    ] {
        assert_eq!(kind_of(falsy), ChunkKind::Empty, "{falsy}");
    }
    // An error next to content still is an error.
    assert_eq!(
        kind_of(r#"{"choices":[{"delta":{"content":"x"}}],"error":{"message":"m"}}"#),
        ChunkKind::Error
    );
}

#[test]
fn role_only_first_chunk_is_empty() {
    assert_eq!(
        kind_of(
            r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#
        ),
        ChunkKind::Empty
    );
    assert_eq!(
        kind_of(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":null,"refusal":null},"logprobs":null}],"usage":null}"#
        ),
        ChunkKind::Empty
    );
    assert_eq!(
        kind_of(r#"{"choices":[{"delta":{"tool_calls":[]}}]}"#),
        ChunkKind::Empty
    );
}

#[test]
fn azure_prompt_filter_chunk_with_empty_choices_is_empty() {
    assert_eq!(
        kind_of(
            r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#
        ),
        ChunkKind::Empty
    );
    assert_eq!(
        kind_of(r#"{"id":"x"}"#),
        ChunkKind::Empty,
        "no choices at all"
    );
    assert_eq!(kind_of(r#"{"choices":null}"#), ChunkKind::Empty);
}

#[test]
fn content_chunk_is_content() {
    assert_eq!(
        kind_of(
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}"#
        ),
        ChunkKind::Content
    );
    // Any choice counts, with n > 1.
    assert_eq!(
        kind_of(r#"{"choices":[{"index":0,"delta":{}},{"index":1,"delta":{"content":"x"}}]}"#),
        ChunkKind::Content
    );
    assert_eq!(
        kind_of(r#"{"choices":[{"delta":{"content":"caf\u00e9"}}]}"#),
        ChunkKind::Content
    );
    assert_eq!(
        kind_of(r#"{"choices":[{"delta":{"refusal":"no"}}]}"#),
        ChunkKind::Content
    );
    assert_eq!(
        kind_of(r#"{"choices":[{"delta":{"function_call":{"name":"f"}}}]}"#),
        ChunkKind::Content
    );
    assert_eq!(
        kind_of(r#"{"choices":[{"delta":{"reasoning_content":"Let me think"}}]}"#),
        ChunkKind::Content
    );
}

#[test]
fn tool_calls_delta_is_content() {
    assert_eq!(
        kind_of(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#
        ),
        ChunkKind::Content
    );
}

#[test]
fn finish_reason_chunk_is_content() {
    assert_eq!(
        kind_of(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
        ChunkKind::Content
    );
    assert_eq!(
        kind_of(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}"#),
        ChunkKind::Content
    );
}

#[test]
fn usage_only_chunk_is_empty_and_gives_its_numbers() {
    let chunk = r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}}}"#;
    assert_eq!(kind_of(chunk), ChunkKind::Empty);
    assert_eq!(
        usage_of(chunk),
        Some(Usage {
            prompt_tokens: 13,
            completion_tokens: 5,
            total_tokens: 18
        })
    );
    // Missing total: the sum.
    assert_eq!(
        usage_of(r#"{"usage":{"prompt_tokens":2,"completion_tokens":3}}"#),
        Some(Usage {
            prompt_tokens: 2,
            completion_tokens: 3,
            total_tokens: 5
        })
    );
}

#[test]
fn null_usage_gives_none() {
    assert_eq!(
        usage_of(r#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#),
        None
    );
    assert_eq!(usage_of(r#"{"usage" : null}"#), None);
    assert_eq!(usage_of(r#"{"choices":[]}"#), None);
    assert_eq!(usage_of(r#"{"note":"usage","usage":"n/a"}"#), None);
    assert_eq!(usage_of(r#"[DONE]"#), None);
    // A quoted "usage" value does not hide a real key after it.
    assert_eq!(
        usage_of(r#"{"k":"usage","usage":{"total_tokens":1}}"#),
        Some(Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 1
        })
    );
    let mut scanner = SseScanner::new();
    let mut usage = Some(Usage::default());
    scanner
        .feed(&Bytes::from_static(b": usage\n\n"), |e| {
            usage = usage_of_event(&e)
        })
        .unwrap();
    assert_eq!(usage, None, "no data, no usage");
}

#[test]
fn legacy_completions_chunk_with_text_is_content() {
    assert_eq!(
        kind_of(
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":"Hello","index":0,"logprobs":null,"finish_reason":null}]}"#
        ),
        ChunkKind::Content
    );
    assert_eq!(
        kind_of(
            r#"{"object":"text_completion","choices":[{"text":"","index":0,"logprobs":null,"finish_reason":null}]}"#
        ),
        ChunkKind::Empty
    );
}

#[test]
fn responses_api_events_classify_by_type() {
    let cases = [
        (
            r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","usage":null}}"#,
            ChunkKind::Empty,
        ),
        (
            r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1"}}"#,
            ChunkKind::Empty,
        ),
        (
            r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"type":"message"}}"#,
            ChunkKind::Content,
        ),
        (
            r#"{"type":"response.content_part.added","sequence_number":3}"#,
            ChunkKind::Empty,
        ),
        (
            r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"delta":"Hi"}"#,
            ChunkKind::Content,
        ),
        (
            r#"{"type":"response.function_call_arguments.delta","delta":"{"}"#,
            ChunkKind::Content,
        ),
        (
            r#"{"type":"response.refusal.delta","delta":"no"}"#,
            ChunkKind::Content,
        ),
        (
            r#"{"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":7,"output_tokens":3,"total_tokens":10}}}"#,
            ChunkKind::Content,
        ),
        (
            r#"{"type":"response.failed","response":{"error":{"code":"server_error"}}}"#,
            ChunkKind::Error,
        ),
        (
            r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null,"sequence_number":5}"#,
            ChunkKind::Error,
        ),
    ];
    for (data, kind) in &cases {
        assert_eq!(kind_of(data), *kind, "{data}");
    }
    let stream = concat!(
        "event: response.output_text.delta\n",
        r#"data: {"delta":"Hi"}"#,
        "\n\n",
    );
    assert_eq!(
        kinds(stream),
        [ChunkKind::Content],
        "the event name stands in for a missing type"
    );
    assert_eq!(
        usage_of(cases[7].0),
        Some(Usage {
            prompt_tokens: 7,
            completion_tokens: 3,
            total_tokens: 10
        })
    );
    assert_eq!(usage_of(cases[0].0), None);
}

#[test]
fn data_that_is_not_a_json_object_is_other_or_empty() {
    assert_eq!(kind_of("hello"), ChunkKind::Other);
    assert_eq!(
        kind_of(r#"{"choices":[{"delta":{"content":"x"}}]"#),
        ChunkKind::Other
    );
    assert_eq!(kinds("data:\n\n"), [ChunkKind::Other]);
    assert_eq!(kind_of(r#"[{"error":"x"}]"#), ChunkKind::Empty);
    assert_eq!(kind_of("42"), ChunkKind::Empty);
    // Odd types inside are tolerated, not fatal.
    assert_eq!(
        kind_of(r#"{"choices":[7,{"delta":[1]},{"delta":{"content":5}}]}"#),
        ChunkKind::Content
    );
    assert_eq!(kind_of(r#"{"choices":{"0":1},"type":3}"#), ChunkKind::Empty);
    // Multi-line data is joined before parsing.
    assert_eq!(
        kinds("data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\n"),
        [ChunkKind::Content]
    );
}

#[test]
fn usage_of_body_reads_chat_completion_and_responses_bodies() {
    let chat = br#"{
      "id": "chatcmpl-abc", "object": "chat.completion", "created": 1726012687,
      "model": "gpt-4o-mini-2024-07-18",
      "choices": [{"index": 0, "message": {"role":"assistant","content":"Hi! usage","refusal":null},
                   "logprobs": null, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}},
      "system_fingerprint": "fp_1"
    }"#;
    assert_eq!(
        usage_of_body(chat),
        Some(Usage {
            prompt_tokens: 13,
            completion_tokens: 5,
            total_tokens: 18
        })
    );
    let responses = br#"{"id":"resp_1","object":"response","created_at":1,"status":"completed",
      "output":[{"type":"message","content":[{"type":"output_text","text":"hi","annotations":[]}]}],
      "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,
               "output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}"#;
    assert_eq!(
        usage_of_body(responses),
        Some(Usage {
            prompt_tokens: 36,
            completion_tokens: 87,
            total_tokens: 123
        })
    );
    let nested = br#"{"type":"response.completed","response":{"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}}"#;
    assert_eq!(
        usage_of_body(nested),
        Some(Usage {
            prompt_tokens: 1,
            completion_tokens: 2,
            total_tokens: 3
        })
    );
    let embeddings =
        br#"{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    assert_eq!(
        usage_of_body(embeddings),
        Some(Usage {
            prompt_tokens: 8,
            completion_tokens: 0,
            total_tokens: 8
        })
    );
    assert_eq!(usage_of_body(br#"{"usage":null}"#), None);
    assert_eq!(
        usage_of_body(br#"{"usage":{"prompt_tokens":-1,"total_tokens":2.0}}"#),
        Some(Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 2
        })
    );
    assert_eq!(usage_of_body(b"not json \"usage\": 1"), None);
    assert_eq!(usage_of_body(b""), None);
}

// --- properties -----------------------------------------------------------------

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Never write regression files into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One generated event: optional comment, optional name, data lines (each
/// with or without the space after the colon).
#[derive(Debug, Clone)]
struct GenEvent {
    comment: Option<String>,
    name: Option<String>,
    data: Vec<(bool, String)>,
}

fn arb_payload() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~é😀]{0,40}",
        prop::sample::select(vec![
            String::from("[DONE]"),
            String::from(
                r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#
            ),
            String::from(r#"{"error":{"message":"boom","code":500}}"#),
            String::from(
                r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
            ),
            String::from(" leading space"),
            String::from(":colon"),
            String::new(),
        ]),
    ]
}

fn arb_event() -> impl Strategy<Value = GenEvent> {
    (
        proptest::option::of("[ -~]{0,12}"),
        proptest::option::of(prop_oneof!["[a-z_.]{1,16}", Just(String::from("error"))]),
        proptest::collection::vec((any::<bool>(), arb_payload()), 0..4),
    )
        .prop_map(|(comment, name, data)| GenEvent {
            comment,
            name,
            data,
        })
}

fn serialize(events: &[GenEvent], eol: &str) -> String {
    let mut out = String::new();
    for e in events {
        if let Some(c) = &e.comment {
            out += &format!(":{c}{eol}");
        }
        if let Some(n) = &e.name {
            out += &format!("event: {n}{eol}");
        }
        for (space, p) in &e.data {
            out += &format!("data:{}{p}{eol}", if *space { " " } else { "" });
        }
        out += eol;
    }
    out
}

/// What WHATWG says each generated event is: (name, data, has_data).
fn expected(events: &[GenEvent]) -> Vec<(Option<String>, String, bool)> {
    events
        .iter()
        .map(|e| {
            let values: Vec<&str> = e
                .data
                .iter()
                .map(|(space, p)| {
                    if *space {
                        p.as_str()
                    } else {
                        p.strip_prefix(' ').unwrap_or(p)
                    }
                })
                .collect();
            (e.name.clone(), values.join("\n"), !e.data.is_empty())
        })
        .collect()
}

/// Cuts `bytes` at the given points (duplicates give empty chunks).
fn split(bytes: &Bytes, cuts: &[prop::sample::Index]) -> Vec<Bytes> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for p in points {
        chunks.push(bytes.slice(from..p));
        from = p;
    }
    chunks.push(bytes.slice(from..));
    chunks
}

/// Bytes that are mostly SSE syntax, so random input makes real events.
fn arb_sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet =
        prop::sample::select(b"\r\n\r\n:: data:event{}\"[DONE]\xEF\xBB\xBFx\x00\xff".to_vec());
    proptest::collection::vec(prop_oneof![3 => alphabet, 1 => any::<u8>()], 0..400)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_chunking_yields_the_same_events_as_one_chunk(
        events in proptest::collection::vec(arb_event(), 0..8),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream = Bytes::from(serialize(&events, eol));
        let (whole, whole_pending, whole_discarded) = scan_chunks(std::slice::from_ref(&stream));
        let (pieces, _, pieces_discarded) = scan_chunks(&split(&stream, &cuts));
        prop_assert_eq!(&pieces, &whole);
        prop_assert_eq!((whole_discarded, pieces_discarded), (0, 0));

        // The events are the ones generated, by the WHATWG rules.
        let got: Vec<(Option<String>, String, bool)> = whole
            .iter()
            .map(|e| (e.event.clone().filter(|n| !n.is_empty()), e.data_str().to_owned(), e.has_data))
            .collect();
        prop_assert_eq!(got, expected(&events));

        // Together the raw slices are the stream, byte for byte.
        let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
        prop_assert_eq!(&raw[..], &stream[..]);
        // Only a bare-CR stream leaves its last event waiting for `finish`.
        if eol != "\r" || events.is_empty() {
            prop_assert_eq!(whole_pending, 0);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_depend_on_chunking(
        bytes in arb_sse_bytes(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream = Bytes::from(bytes);
        let (whole, _, discarded) = scan_chunks(std::slice::from_ref(&stream));
        let (pieces, _, pieces_discarded) = scan_chunks(&split(&stream, &cuts));
        prop_assert_eq!(&pieces, &whole);
        prop_assert_eq!(pieces_discarded, discarded);
        // Every byte is in some event's raw, or discarded at the end.
        let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
        prop_assert_eq!(raw.len() + discarded, stream.len());
        prop_assert_eq!(&raw[..], &stream[..raw.len()]);

        let mut scanner = SseScanner::new();
        scanner.feed(&stream, |e| {
            let _ = classify(&e);
            let _ = usage_of_event(&e);
        }).unwrap();
        let _ = usage_of_body(&stream);
    }
}

/// The reference: parse the whole body with serde (the way usage was
/// read before the structural scan).
fn usage_by_serde(json: &[u8]) -> Option<Usage> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Carrier {
        usage: Obj<WireUsage>,
        response: Obj<ResponseCarrier>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct ResponseCarrier {
        usage: Obj<WireUsage>,
    }
    let carrier = serde_json::from_slice::<Obj<Carrier>>(json).ok()?.0?;
    carrier
        .usage
        .0
        .or_else(|| carrier.response.0.and_then(|r| r.usage.0))
        .map(WireUsage::into_usage)
}

fn json_member() -> impl Strategy<Value = String> {
    let text = || proptest::string::string_regex(r#"[a-z {}\[\]:,"\\]{0,12}"#).unwrap();
    prop_oneof![
        text().prop_map(|t| format!("\"note\":{}", serde_json::Value::String(t))),
        text().prop_map(|t| format!("{}:1", serde_json::Value::String(t))),
        Just("\"choices\":[{\"usage\":{\"prompt_tokens\":99}}]".to_owned()),
        Just("\"meta\":{\"usage\":{\"completion_tokens\":98},\"x\":[1,{}]}".to_owned()),
        Just("\"text\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":97}\"".to_owned()),
        (0u64..50, 0u64..50).prop_map(|(p, c)| format!(
            "\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{c},\"details\":{{\"a\":[1]}}}}"
        )),
        Just("\"usage\":null".to_owned()),
        (0u64..50).prop_map(|o| format!(
            "\"response\":{{\"id\":\"r\",\"usage\":{{\"input_tokens\":3,\"output_tokens\":{o}}}}}"
        )),
    ]
}

proptest! {
    /// The structural scan finds the same usage as parsing the whole
    /// body, whatever surrounds it: nested `usage` keys, escaped quotes
    /// and braces in strings, null usage, Responses-API nesting.
    #[test]
    fn usage_scan_agrees_with_a_full_parse(
        members in proptest::collection::vec(json_member(), 0..6),
        ws in proptest::sample::select(vec!["", " ", "\n  "]),
    ) {
        let mut seen = std::collections::HashSet::new();
        // Duplicate keys are an error for the reference; keep one each.
        let members: Vec<String> = members
            .into_iter()
            .filter(|m| seen.insert(m.split(':').next().unwrap_or_default().to_owned()))
            .collect();
        let body = format!("{ws}{{{ws}{}{ws}}}", members.join(&format!(",{ws}")));
        prop_assert_eq!(usage_of_body(body.as_bytes()), usage_by_serde(body.as_bytes()), "{}", body);
    }
}

#[test]
fn after_the_first_token_every_data_event_but_done_counts_for_the_estimate() {
    let counts = |stream: &str| {
        let mut scanner = SseScanner::new();
        let mut n = 0;
        scanner
            .feed(&Bytes::copy_from_slice(stream.as_bytes()), |e| {
                n += usize::from(counts_as_token(&e))
            })
            .unwrap();
        n
    };
    let stream = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
        ": keep-alive\n\n",
        "event: ping\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(counts(stream), 2);
}
