//! `MessageStream`: the event order end to end, usage, errors, the end.

use bytes::Bytes;

use super::super::MessageStream;
use crate::sse::SseScanner;

const MODEL: &str = "claude-sonnet-4-5";

/// An OpenAI stream: a role chunk, text in two pieces, two tool calls with
/// their arguments in pieces, the finish, the usage chunk, `[DONE]`.
const STREAM: &str = concat!(
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Let me "},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"check."},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"prompt_tokens_details":{"cached_tokens":64}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// The Anthropic events expected for [`STREAM`], in order.
const EXPECTED: [&str; 15] = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_chatcmpl-1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"check.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_A\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Oslo\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_B\",\"name\":\"get_time\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":18,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":64,\"output_tokens\":17}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// Feeds `chunks` through a scanner and a `MessageStream`; calls `end` when
/// `end` is set (the upstream closed). Returns the events and `finished`.
pub(super) fn translate_chunks(chunks: &[&[u8]], end: bool) -> (Vec<String>, bool) {
    let mut scanner = SseScanner::new();
    let mut stream = MessageStream::new(MODEL);
    let mut out = Vec::new();
    for chunk in chunks {
        // Chunks too large for the scanner are skipped, as a caller would stop.
        let _ = scanner.feed(&Bytes::copy_from_slice(chunk), |e| {
            stream.event(&e, &mut out)
        });
    }
    scanner.finish(|e| stream.event(&e, &mut out));
    if end {
        stream.end(&mut out);
    }
    let events = out
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).expect("UTF-8"))
        .collect();
    (events, stream.finished())
}

fn translate(stream: &str) -> (Vec<String>, bool) {
    translate_chunks(&[stream.as_bytes()], false)
}

/// The `event:` names of `events`.
fn names(events: &[String]) -> Vec<&str> {
    events
        .iter()
        .map(|e| {
            e.strip_prefix("event: ")
                .unwrap()
                .split('\n')
                .next()
                .unwrap()
        })
        .collect()
}

#[test]
fn text_then_two_tool_calls_translate_event_for_event() {
    let (events, finished) = translate(STREAM);
    assert!(finished);
    assert_eq!(events, EXPECTED);
}

#[test]
fn every_event_is_named_by_its_type_and_is_json() {
    let (events, _) = translate(STREAM);
    for event in &events {
        let (name, data) = event
            .strip_prefix("event: ")
            .unwrap()
            .split_once("\ndata: ")
            .unwrap();
        let data: serde_json::Value =
            serde_json::from_str(data.strip_suffix("\n\n").unwrap()).unwrap();
        assert_eq!(data["type"], name);
    }
}

#[test]
fn the_stream_is_the_same_however_it_is_split() {
    let whole = translate(STREAM);
    let bytes = STREAM.as_bytes();
    for size in [1, 7, 64] {
        let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
        assert_eq!(translate_chunks(&chunks, false), whole, "chunks of {size}");
    }
}

#[test]
fn each_upstream_event_answers_at_once() {
    let mut scanner = SseScanner::new();
    let mut stream = MessageStream::new(MODEL);
    let mut counts = Vec::new();
    scanner
        .feed(&Bytes::from_static(STREAM.as_bytes()), |e| {
            let mut out = Vec::new();
            stream.event(&e, &mut out);
            counts.push(out.len());
        })
        .unwrap();
    // role, text, text, tool A, args, args, tool B, args, finish, usage, DONE.
    assert_eq!(counts, [2, 2, 1, 2, 1, 1, 2, 1, 0, 0, 3]);
}

#[test]
fn a_stream_without_done_ends_when_told() {
    let cut = STREAM.find("data: [DONE]").unwrap();
    let (events, finished) = translate(&STREAM[..cut]);
    assert!(!finished);
    assert_eq!(events, EXPECTED[..12]);
    let (events, finished) = translate_chunks(&[&STREAM.as_bytes()[..cut]], true);
    assert!(finished);
    assert_eq!(events, EXPECTED);
}

#[test]
fn end_closes_whatever_is_open_and_defaults_the_stop_reason() {
    let text_only = concat!(
        r#"data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
        "\n\n"
    );
    let (events, finished) = translate_chunks(&[text_only.as_bytes()], true);
    assert!(finished);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(
        events[5].contains(
            r#""delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":0}"#
        ),
        "{}",
        events[5]
    );
    // A role chunk alone still ends as a message: message_start was sent.
    let role_only =
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: [DONE]\n\n";
    let (events, finished) = translate(role_only);
    assert!(finished);
    assert_eq!(
        names(&events),
        ["message_start", "ping", "message_delta", "message_stop"]
    );
}

#[test]
fn when_nothing_arrived_nothing_is_sent_and_it_is_not_finished() {
    assert_eq!(translate_chunks(&[b""], true), (Vec::new(), false));
    assert_eq!(
        translate_chunks(&[b": keep-alive\n\ndata: not json\n\n"], true),
        (Vec::new(), false)
    );
    assert_eq!(translate("data: [DONE]\n\n"), (Vec::new(), false));
}

#[test]
fn finish_reasons_and_vllm_stop_strings_reach_message_delta() {
    for (finish, extra, expected) in [
        (
            "stop",
            "",
            r#""stop_reason":"end_turn","stop_sequence":null"#,
        ),
        (
            "length",
            "",
            r#""stop_reason":"max_tokens","stop_sequence":null"#,
        ),
        (
            "content_filter",
            "",
            r#""stop_reason":"refusal","stop_sequence":null"#,
        ),
        (
            "stop",
            r#","stop_reason":"END""#,
            r#""stop_reason":"stop_sequence","stop_sequence":"END""#,
        ),
        (
            "stop",
            r#","stop_reason":128009"#,
            r#""stop_reason":"end_turn","stop_sequence":null"#,
        ),
    ] {
        let stream = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"x\"}},\"finish_reason\":null}}]}}\n\n\
             data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{finish}\"{extra}}}]}}\n\n\
             data: [DONE]\n\n"
        );
        let (events, _) = translate(&stream);
        let delta = &events[events.len() - 2];
        assert!(delta.contains(expected), "{finish} {extra}: {delta}");
    }
}

#[test]
fn tool_calls_finished_with_stop_still_stop_for_tool_use() {
    let stream = concat!(
        r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{}"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let (events, _) = translate(stream);
    assert!(events[events.len() - 2].contains(r#""stop_reason":"tool_use""#));
}

#[test]
fn reasoning_streams_as_a_thinking_block_before_the_text() {
    let stream = concat!(
        r#"data: {"choices":[{"delta":{"role":"assistant","reasoning_content":"Six "}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"reasoning":"sevens."}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"content":"42"}}]}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let (events, _) = translate(stream);
    assert_eq!(
        events[2],
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    );
    assert_eq!(
        events[3],
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Six \"}}\n\n"
    );
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(events[6].contains(r#""index":1,"content_block":{"type":"text""#));
}

#[test]
fn usage_on_the_first_chunk_goes_into_message_start() {
    let stream = concat!(
        r#"data: {"id":"x","choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let (events, _) = translate(stream);
    assert!(events[0].contains(r#""usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}"#), "{}", events[0]);
}

#[test]
fn an_error_frame_becomes_an_anthropic_error_event_and_the_end() {
    let cut = STREAM.find("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\"").unwrap();
    let stream = format!(
        "{}data: {}\n\n{}",
        &STREAM[..cut],
        r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        &STREAM[cut..]
    );
    let (events, finished) = translate(&stream);
    assert!(finished);
    assert_eq!(events.len(), 6, "{events:?}");
    assert_eq!(
        events[5],
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The server had an error while processing your request.\"}}\n\n"
    );
    for (error, kind) in [
        (
            r#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#,
            "rate_limit_error",
        ),
        (
            r#"{"error":{"message":"busy","type":"overloaded_error"}}"#,
            "overloaded_error",
        ),
        (
            r#"{"error":{"message":"gone","code":404}}"#,
            "not_found_error",
        ),
        // The translated providers' own codes, as their translations pass them on.
        (
            r#"{"error":{"message":"busy","type":"upstream_error","code":"UNAVAILABLE"}}"#,
            "overloaded_error",
        ),
        (
            r#"{"error":{"message":"quota","type":"upstream_error","code":"RESOURCE_EXHAUSTED"}}"#,
            "rate_limit_error",
        ),
        (
            r#"{"error":{"message":"slow","type":"upstream_error","code":"throttlingException"}}"#,
            "rate_limit_error",
        ),
        (r#"{"error":"plain text"}"#, "api_error"),
        (r#"{"error":{}}"#, "api_error"),
    ] {
        let (events, finished) = translate(&format!("data: {error}\n\n"));
        assert!(finished, "{error}");
        assert_eq!(names(&events), ["error"], "{error}");
        assert!(
            events[0].contains(&format!(r#""type":"{kind}""#)),
            "{error}: {}",
            events[0]
        );
    }
    let (events, finished) = translate("event: error\ndata: upstream exploded\n\n");
    assert!(finished);
    assert!(events[0].contains("The OpenAI-compatible upstream's stream failed."));
}

#[test]
fn nothing_is_sent_after_the_end() {
    let (events, _) = translate(&format!("{STREAM}{STREAM}"));
    assert_eq!(events, EXPECTED);
    let mut stream = MessageStream::new(MODEL);
    let mut out = Vec::new();
    stream.end(&mut out);
    assert!(out.is_empty());
}

#[test]
fn servers_that_repeat_ids_or_omit_indexes_still_get_one_block_per_call() {
    let stream = concat!(
        r#"data: {"choices":[{"delta":{"tool_calls":[{"id":"g1","function":{"name":"a","arguments":"{\"x\":"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"tool_calls":[{"id":"g1","function":{"arguments":"1}"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"tool_calls":[{"id":"g2","function":{"name":"b","arguments":"{}"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":1,"delta":{"content":"another choice"}}]}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let (events, _) = translate(stream);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(events[2].contains(r#""id":"g1","name":"a""#));
    assert!(
        events[6].contains(r#""index":1,"content_block":{"type":"tool_use","id":"g2","name":"b""#)
    );
}

#[test]
fn a_late_piece_of_a_closed_tool_call_is_dropped() {
    let stream = concat!(
        r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c0","function":{"name":"a","arguments":"{}"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c1","function":{"name":"b","arguments":"{"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"late"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"}"}}]}}]}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let (events, _) = translate(stream);
    assert!(!events.iter().any(|e| e.contains("late")));
    assert!(
        events
            .iter()
            .any(|e| e
                .contains(r#""index":1,"delta":{"type":"input_json_delta","partial_json":"}"}"#))
    );
}

#[test]
fn calls_sent_whole_at_one_index_are_told_apart_by_their_ids() {
    let stream = concat!(
        r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c0","function":{"name":"a","arguments":"{\"x\":1}"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"b","arguments":"{}"}}]}}]}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let (events, _) = translate(stream);
    assert!(
        events[2].contains(r#""index":0,"content_block":{"type":"tool_use","id":"c0","name":"a""#)
    );
    assert!(
        events[3].contains(
            r#""index":0,"delta":{"type":"input_json_delta","partial_json":"{\"x\":1}"}"#
        ),
        "{}",
        events[3]
    );
    assert!(
        events[5].contains(r#""index":1,"content_block":{"type":"tool_use","id":"c1","name":"b""#),
        "{}",
        events[5]
    );
    assert!(
        events[6].contains(r#""index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}"#)
    );
}
