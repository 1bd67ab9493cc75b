//! `StreamTranslator`: PROTOCOLS.md 7.4 end to end, usage, errors, and what
//! the commit point sees.

use bytes::Bytes;

use super::super::StreamTranslator;
use crate::openai::{classify, ChunkKind};
use crate::sse::SseScanner;

/// The 7.4 example, completed: a ping, a text block, a tool_use block whose
/// input arrives in two pieces (and an empty one), the stop, the end.
const STREAM: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}"#,
    "\n\n",
    "event: ping\n",
    r#"data: {"type":"ping"}"#,
    "\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
    "\n\n",
    "event: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":0}"#,
    "\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Os"}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"lo\"}"}}"#,
    "\n\n",
    "event: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":1}"#,
    "\n\n",
    "event: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}"#,
    "\n\n",
    "event: message_stop\n",
    r#"data: {"type":"message_stop"}"#,
    "\n\n",
);

/// Feeds `chunks` of an Anthropic stream through a scanner and a
/// translator; returns every OpenAI event, and whether it finished.
fn translate_chunks(chunks: &[&[u8]], include_usage: bool) -> (Vec<String>, bool) {
    let mut scanner = SseScanner::new();
    let mut translator = StreamTranslator::new(include_usage);
    let mut out = Vec::new();
    for chunk in chunks {
        let chunk = Bytes::copy_from_slice(chunk);
        scanner
            .feed(&chunk, |e| translator.event(&e, &mut out))
            .expect("events are small");
    }
    assert_eq!(scanner.finish(|e| translator.event(&e, &mut out)), 0);
    let events = out
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).expect("UTF-8"))
        .collect();
    (events, translator.finished())
}

fn translate(stream: &str, include_usage: bool) -> (Vec<String>, bool) {
    translate_chunks(&[stream.as_bytes()], include_usage)
}

/// The `created` of the first chunk (the clock's; the same on every chunk).
fn created(events: &[String]) -> u64 {
    let data = events[0].strip_prefix("data: ").unwrap();
    let chunk: serde_json::Value = serde_json::from_str(data).unwrap();
    chunk["created"].as_u64().unwrap()
}

/// The expected events for [`STREAM`].
fn expected(created: u64, include_usage: bool) -> Vec<String> {
    let usage_null = if include_usage {
        r#","usage":null"#
    } else {
        ""
    };
    let head = format!(
        r#"data: {{"id":"msg_01","object":"chat.completion.chunk","created":{created},"model":"claude-sonnet-4-5","choices":[{{"index":0,"delta":"#
    );
    let chunk = |delta: &str, finish: &str| {
        format!(r#"{head}{delta},"logprobs":null,"finish_reason":{finish}}}]{usage_null}}}"#)
            + "\n\n"
    };
    let mut events = vec![
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"content":"Hi"}"#, "null"),
        chunk(
            r#"{"tool_calls":[{"index":0,"id":"toolu_01","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
            "null",
        ),
        chunk(
            r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Os"}}]}"#,
            "null",
        ),
        chunk(
            r#"{"tool_calls":[{"index":0,"function":{"arguments":"lo\"}"}}]}"#,
            "null",
        ),
        chunk("{}", r#""tool_calls""#),
    ];
    if include_usage {
        events.push(format!(
            r#"data: {{"id":"msg_01","object":"chat.completion.chunk","created":{created},"model":"claude-sonnet-4-5","choices":[],"usage":{{"prompt_tokens":2112,"completion_tokens":42,"total_tokens":2154,"prompt_tokens_details":{{"cached_tokens":2000}}}}}}"#
        ) + "\n\n");
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

#[test]
fn the_protocols_example_translates_event_for_event() {
    for include_usage in [false, true] {
        let (events, finished) = translate(STREAM, include_usage);
        assert!(finished);
        assert_eq!(
            events,
            expected(created(&events), include_usage),
            "include_usage {include_usage}"
        );
    }
}

#[test]
fn every_chunk_is_a_valid_chat_completion_chunk() {
    let (events, _) = translate(STREAM, true);
    for event in &events[..events.len() - 1] {
        let data = event
            .strip_prefix("data: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        let chunk: serde_json::Value = serde_json::from_str(data).expect("a JSON chunk");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "msg_01");
        assert!(chunk["choices"].is_array());
        for choice in chunk["choices"].as_array().unwrap() {
            assert_eq!(choice["index"], 0);
            assert!(choice["delta"].is_object());
            assert!(choice.get("finish_reason").is_some());
        }
    }
}

#[test]
fn the_stream_is_the_same_however_it_is_split() {
    let whole = translate(STREAM, true);
    let bytes = STREAM.as_bytes();
    let one_at_a_time: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(translate_chunks(&one_at_a_time, true), whole);
    let sevens: Vec<&[u8]> = bytes.chunks(7).collect();
    assert_eq!(translate_chunks(&sevens, true), whole);
}

#[test]
fn events_arrive_one_at_a_time_and_each_answers_at_once() {
    let mut scanner = SseScanner::new();
    let mut translator = StreamTranslator::new(false);
    let mut per_event = Vec::new();
    scanner
        .feed(&Bytes::from_static(STREAM.as_bytes()), |e| {
            let mut out = Vec::new();
            translator.event(&e, &mut out);
            per_event.push((e.event.map(str::to_owned), out.len(), translator.finished()));
        })
        .unwrap();
    let seen: Vec<(&str, usize, bool)> = per_event
        .iter()
        .map(|(name, n, finished)| (name.as_deref().unwrap_or(""), *n, *finished))
        .collect();
    assert_eq!(
        seen,
        [
            ("message_start", 1, false),
            ("ping", 0, false),
            ("content_block_start", 0, false),
            ("content_block_delta", 1, false),
            ("content_block_stop", 0, false),
            ("content_block_start", 1, false),
            ("content_block_delta", 0, false),
            ("content_block_delta", 1, false),
            ("content_block_delta", 1, false),
            ("content_block_stop", 0, false),
            ("message_delta", 1, false),
            ("message_stop", 1, true),
        ]
    );
}

#[test]
fn the_commit_point_sees_content_where_the_answer_starts() {
    let (events, _) = translate(STREAM, true);
    let mut scanner = SseScanner::new();
    let mut kinds = Vec::new();
    for event in &events {
        scanner
            .feed(&Bytes::from(event.clone()), |e| kinds.push(classify(&e)))
            .unwrap();
    }
    assert_eq!(
        kinds,
        [
            ChunkKind::Empty,   // role
            ChunkKind::Content, // "Hi"
            ChunkKind::Content, // tool call start
            ChunkKind::Content,
            ChunkKind::Content,
            ChunkKind::Content, // finish_reason
            ChunkKind::Empty,   // usage
            ChunkKind::Done,
        ]
    );
    // A tool call with no text before it commits at its first chunk.
    let tool_first = STREAM.replace(r#""text_delta","text":"Hi""#, r#""text_delta","text":"""#);
    let (events, _) = translate(&tool_first, false);
    let kinds: Vec<ChunkKind> = events
        .iter()
        .map(|e| {
            let mut kind = None;
            SseScanner::new()
                .feed(&Bytes::from(e.clone()), |e| kind = Some(classify(&e)))
                .unwrap();
            kind.unwrap()
        })
        .collect();
    assert_eq!(kinds[..2], [ChunkKind::Empty, ChunkKind::Content]);
    assert!(events[1].contains("tool_calls"));
}

#[test]
fn an_error_event_ends_the_stream_with_an_openai_error() {
    let cut = STREAM.find("event: content_block_start").unwrap();
    let stream = format!(
        "{}event: error\ndata: {}\n\n{}",
        &STREAM[..cut],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        &STREAM[cut..],
    );
    let (events, finished) = translate(&stream, true);
    assert!(finished);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[1],
        "data: {\"error\":{\"code\":\"overloaded_error\",\"message\":\"Overloaded\",\"param\":null,\"type\":\"upstream_error\"}}\n\n"
    );
    let mut kind = None;
    SseScanner::new()
        .feed(&Bytes::from(events[1].clone()), |e| {
            kind = Some(classify(&e))
        })
        .unwrap();
    assert_eq!(kind, Some(ChunkKind::Error));
}

#[test]
fn an_unreadable_error_event_still_ends_the_stream() {
    let (events, finished) = translate("event: error\ndata: upstream exploded\n\n", false);
    assert!(finished);
    assert_eq!(events.len(), 1);
    assert!(events[0].contains(r#""code":"api_error""#), "{}", events[0]);
    assert!(
        events[0].contains(r#""type":"upstream_error""#),
        "{}",
        events[0]
    );
}

#[test]
fn a_cut_stream_is_not_finished() {
    let cut = STREAM.find("event: message_delta").unwrap();
    let (events, finished) = translate(&STREAM[..cut], true);
    assert!(!finished);
    assert!(!events.iter().any(|e| e.contains("[DONE]")));
}

#[test]
fn message_stop_without_a_stop_reason_still_finishes() {
    let stream = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1}}}"#,
        "\n\n",
        "event: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );
    let (events, finished) = translate(stream, false);
    assert!(finished);
    assert_eq!(events.len(), 3);
    assert!(events[1].contains(r#""delta":{},"logprobs":null,"finish_reason":"stop""#));
}

#[test]
fn ignored_events_produce_nothing() {
    let stream = concat!(
        ": keep-alive\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        "\n\n",
        "event: something_new\ndata: {\"type\":\"something_new\"}\n\n",
        "data: not json\n\n",
    );
    assert_eq!(translate(stream, true), (Vec::new(), false));
}

#[test]
fn tool_calls_are_numbered_by_tool_blocks_not_anthropic_indices() {
    let stream = STREAM.replace(r#""index":1"#, r#""index":5"#);
    let second_tool = concat!(
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":6,"content_block":{"type":"tool_use","id":"toolu_02","name":"now","input":{}}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":6,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        "\n\n",
    );
    let at = stream.find("event: message_delta").unwrap();
    let stream = format!("{}{second_tool}{}", &stream[..at], &stream[at..]);
    let (events, _) = translate(&stream, false);
    assert!(events[2].contains(r#""tool_calls":[{"index":0,"id":"toolu_01""#));
    assert!(
        events[5].contains(r#""tool_calls":[{"index":1,"id":"toolu_02""#),
        "{}",
        events[5]
    );
    assert!(events[6].contains(r#""tool_calls":[{"index":1,"function":{"arguments":"{}"}}]"#));
}

#[test]
fn nothing_is_relayed_after_the_end() {
    let (events, _) = translate(&format!("{STREAM}{STREAM}"), true);
    assert_eq!(events, expected(created(&events), true));
}

#[test]
fn message_delta_usage_updates_the_counts() {
    // Newer API versions repeat input counts in message_delta, cumulatively.
    let stream = STREAM.replace(
        r#""usage":{"output_tokens":42}"#,
        r#""usage":{"input_tokens":20,"cache_read_input_tokens":2000,"output_tokens":42}"#,
    );
    let (events, _) = translate(&stream, true);
    let usage = &events[events.len() - 2];
    assert!(
        usage.contains(r#""prompt_tokens":2120,"completion_tokens":42,"total_tokens":2162"#),
        "{usage}"
    );
}

#[test]
fn with_usage_chunk_ends_with_the_usage_chunk_and_no_usage_null_before_it() {
    // The router asks for this when the client did not ask for usage: it
    // counts the usage chunk and removes it before the client sees it.
    let mut scanner = SseScanner::new();
    let mut translator = StreamTranslator::new(false).with_usage_chunk();
    let mut out = Vec::new();
    scanner
        .feed(&Bytes::from_static(STREAM.as_bytes()), |e| {
            translator.event(&e, &mut out)
        })
        .unwrap();
    let text: Vec<String> = out
        .iter()
        .map(|e| String::from_utf8(e.to_vec()).unwrap())
        .collect();
    let (done, rest) = text.split_last().unwrap();
    let (usage, chunks) = rest.split_last().unwrap();
    assert_eq!(done, "data: [DONE]\n\n");
    let usage: serde_json::Value =
        serde_json::from_str(usage.strip_prefix("data: ").unwrap().trim()).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 2112);
    assert_eq!(usage["usage"]["completion_tokens"], 42);
    assert_eq!(usage["usage"]["total_tokens"], 2154);
    assert!(
        !chunks.iter().any(|c| c.contains("\"usage\"")),
        "no usage:null on the other chunks: {chunks:?}"
    );
}
