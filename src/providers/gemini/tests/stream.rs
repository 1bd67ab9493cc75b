//! `StreamTranslator`: Google's `alt=sse` stream end to end, tool calls
//! and their signatures, finish reasons, usage, errors, cut streams, and
//! what the commit point sees.

use bytes::Bytes;

use super::super::StreamTranslator;
use crate::openai::{classify, ChunkKind};
use crate::sse::SseScanner;

const MODEL: &str = "gemini-2.5-flash";

/// ai.google.dev "Streaming" (REST, `alt=sse`): text in three events, the
/// last with `finishReason` and the final usage; Google ends lines with CRLF.
const STREAM: &str = concat!(
    r#"data: {"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8},"modelVersion": "gemini-2.5-flash","responseId": "mHQXaMbiOrOH"}"#,
    "\r\n\r\n",
    r#"data: {"candidates": [{"content": {"parts": [{"text": "I am thinking", "thought": true}, {"text": " quick brown fox"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 4,"totalTokenCount": 12},"modelVersion": "gemini-2.5-flash","responseId": "mHQXaMbiOrOH"}"#,
    "\r\n\r\n",
    r#"data: {"candidates": [{"content": {"parts": [{"text": " jumps."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 8,"cachedContentTokenCount": 2,"candidatesTokenCount": 10,"thoughtsTokenCount": 12,"totalTokenCount": 30},"modelVersion": "gemini-2.5-flash","responseId": "mHQXaMbiOrOH"}"#,
    "\r\n\r\n",
);

/// A Gemini 3 step with two parallel calls, the first signed.
const TOOL_STREAM: &str = concat!(
    r#"data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"check_flight","args":{"flight":"AA100"}},"thoughtSignature":"CiQB+/x="},{"functionCall":{"id":"fc-2","name":"book_taxi","args":{"time":"10 AM"}}}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":50,"candidatesTokenCount":20,"totalTokenCount":70},"modelVersion":"gemini-3-pro-preview","responseId":"R9"}"#,
    "\n\n",
);

/// Feeds `chunks` of a Gemini stream through a scanner and a translator,
/// then ends it; returns every OpenAI event, and whether it finished.
fn translate_chunks(chunks: &[&[u8]], include_usage: bool) -> (Vec<String>, bool) {
    translate_with(chunks, StreamTranslator::new(include_usage, MODEL))
}

fn translate_with(chunks: &[&[u8]], mut translator: StreamTranslator) -> (Vec<String>, bool) {
    let mut scanner = SseScanner::new();
    let mut out = Vec::new();
    for chunk in chunks {
        let chunk = Bytes::copy_from_slice(chunk);
        scanner
            .feed(&chunk, |e| translator.event(&e, &mut out))
            .expect("events are small");
    }
    assert_eq!(scanner.finish(|e| translator.event(&e, &mut out)), 0);
    translator.end(&mut out);
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
        r#"data: {{"id":"chatcmpl-mHQXaMbiOrOH","object":"chat.completion.chunk","created":{created},"model":"gemini-2.5-flash","#
    );
    let chunk = |delta: &str, finish: &str| {
        format!(
            r#"{head}"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{usage_null}}}"#
        ) + "\n\n"
    };
    let mut events = vec![
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"content":"The"}"#, "null"),
        chunk(r#"{"content":" quick brown fox"}"#, "null"),
        chunk(r#"{"content":" jumps."}"#, "null"),
        chunk("{}", r#""stop""#),
    ];
    if include_usage {
        events.push(format!(
            r#"{head}"choices":[],"usage":{{"prompt_tokens":8,"completion_tokens":22,"total_tokens":30,"prompt_tokens_details":{{"cached_tokens":2}},"completion_tokens_details":{{"reasoning_tokens":12}}}}}}"#
        ) + "\n\n");
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

#[test]
fn googles_stream_translates_event_for_event() {
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
fn the_stream_is_the_same_however_it_is_split() {
    let whole = translate(STREAM, true);
    let bytes = STREAM.as_bytes();
    let one_at_a_time: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(translate_chunks(&one_at_a_time, true), whole);
    let sevens: Vec<&[u8]> = bytes.chunks(7).collect();
    assert_eq!(translate_chunks(&sevens, true), whole);
}

#[test]
fn events_answer_at_once_and_the_end_writes_what_is_owed() {
    let mut scanner = SseScanner::new();
    let mut translator = StreamTranslator::new(false, MODEL);
    let mut per_event = Vec::new();
    scanner
        .feed(&Bytes::from_static(STREAM.as_bytes()), |e| {
            let mut out = Vec::new();
            translator.event(&e, &mut out);
            per_event.push((out.len(), translator.finished()));
        })
        .unwrap();
    // Role + "The"; one text; the last text + the finish chunk.
    assert_eq!(per_event, [(2, false), (1, false), (2, false)]);
    let mut out = Vec::new();
    translator.end(&mut out);
    assert_eq!(out, [Bytes::from_static(b"data: [DONE]\n\n")]);
    assert!(translator.finished());
    // Nothing more after the end.
    translator.end(&mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn every_chunk_is_a_valid_chat_completion_chunk() {
    for stream in [STREAM, TOOL_STREAM] {
        let (events, _) = translate(stream, true);
        for event in &events[..events.len() - 1] {
            let data = event
                .strip_prefix("data: ")
                .unwrap()
                .strip_suffix("\n\n")
                .unwrap();
            let chunk: serde_json::Value = serde_json::from_str(data).expect("a JSON chunk");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert!(chunk["id"].as_str().unwrap().starts_with("chatcmpl-"));
            for choice in chunk["choices"].as_array().unwrap() {
                assert!(choice["delta"].is_object());
                assert!(choice.get("finish_reason").is_some());
            }
        }
    }
}

#[test]
fn function_calls_arrive_whole_with_ids_that_carry_the_signature() {
    let (events, finished) = translate(TOOL_STREAM, false);
    assert!(finished);
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events[0].contains(r#""model":"gemini-3-pro-preview""#));
    assert!(
        events[1].contains(r#""delta":{"tool_calls":[{"index":0,"id":"call_0R9_ts_CiQB-_x","type":"function","function":{"name":"check_flight","arguments":"{\"flight\":\"AA100\"}"}}]}"#),
        "{}",
        events[1]
    );
    assert!(
        events[2].contains(r#""delta":{"tool_calls":[{"index":1,"id":"call_1R9_id_fc-2","type":"function","function":{"name":"book_taxi","arguments":"{\"time\":\"10 AM\"}"}}]}"#),
        "{}",
        events[2]
    );
    assert!(events[3].contains(r#""delta":{},"logprobs":null,"finish_reason":"tool_calls""#));
    assert_eq!(events[4], "data: [DONE]\n\n");
}

#[test]
fn the_commit_point_sees_content_where_the_answer_starts() {
    for (stream, at) in [(STREAM, 1), (TOOL_STREAM, 1)] {
        let (events, _) = translate(stream, true);
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
        assert_eq!(kinds[0], ChunkKind::Empty, "the role chunk");
        assert_eq!(kinds[at], ChunkKind::Content);
        assert_eq!(kinds.last(), Some(&ChunkKind::Done));
    }
}

#[test]
fn a_filtered_answer_ends_with_a_refusal_and_content_filter() {
    let stream = concat!(
        r#"data: {"candidates":[{"content":{"parts":[{"text":"Once"}],"role":"model"},"index":0}],"responseId":"r"}"#,
        "\n\n",
        r#"data: {"candidates":[{"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH","blocked":true}]}],"responseId":"r"}"#,
        "\n\n",
    );
    let (events, finished) = translate(stream, false);
    assert!(finished);
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events[2].contains(
        r#""delta":{"refusal":"The Gemini upstream stopped the answer: finishReason SAFETY."}"#
    ));
    assert!(events[3].contains(r#""finish_reason":"content_filter""#));
    assert!(
        events[0].contains(r#""model":"gemini-2.5-flash""#),
        "the given model"
    );
}

#[test]
fn a_blocked_prompt_is_a_refusal_on_choice_zero() {
    let stream = concat!(
        r#"data: {"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":7,"totalTokenCount":7},"modelVersion":"gemini-2.5-pro","responseId":"b"}"#,
        "\n\n",
    );
    let (events, finished) = translate(stream, true);
    assert!(finished);
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events[0].contains(r#""delta":{"role":"assistant","content":""}"#));
    assert!(events[1].contains("blockReason SAFETY"));
    assert!(events[2].contains(r#""finish_reason":"content_filter""#));
    assert!(events[3].contains(r#""prompt_tokens":7"#));
}

#[test]
fn several_candidates_stream_as_several_choices() {
    let stream = concat!(
        r#"data: {"candidates":[{"content":{"parts":[{"text":"A"}],"role":"model"}},{"content":{"parts":[{"text":"B"}],"role":"model"},"index":1}],"responseId":"n"}"#,
        "\n\n",
        r#"data: {"candidates":[{"content":{"parts":[{"text":"a"}],"role":"model"},"finishReason":"STOP","index":0}],"responseId":"n"}"#,
        "\n\n",
        r#"data: {"candidates":[{"content":{"parts":[{"text":"b"}],"role":"model"},"index":1}],"responseId":"n"}"#,
        "\n\n",
    );
    let (events, finished) = translate(stream, false);
    assert!(finished);
    let choice = |e: &String| {
        let v: serde_json::Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
        (
            v["choices"][0]["index"].as_u64().unwrap(),
            v["choices"][0]["delta"].to_string(),
            v["choices"][0]["finish_reason"].clone(),
        )
    };
    let seen: Vec<_> = events[..events.len() - 1].iter().map(choice).collect();
    assert_eq!(
        seen,
        [
            (
                0,
                r#"{"content":"","role":"assistant"}"#.to_owned(),
                serde_json::Value::Null
            ),
            (0, r#"{"content":"A"}"#.to_owned(), serde_json::Value::Null),
            (
                1,
                r#"{"content":"","role":"assistant"}"#.to_owned(),
                serde_json::Value::Null
            ),
            (1, r#"{"content":"B"}"#.to_owned(), serde_json::Value::Null),
            (0, r#"{"content":"a"}"#.to_owned(), serde_json::Value::Null),
            (0, "{}".to_owned(), serde_json::json!("stop")),
            (1, r#"{"content":"b"}"#.to_owned(), serde_json::Value::Null),
            // Owed at the end: candidate 1 never said why it stopped.
            (1, "{}".to_owned(), serde_json::json!("stop")),
        ]
    );
}

#[test]
fn an_error_event_ends_the_stream_with_an_openai_error() {
    let first = &STREAM[..STREAM.find("\r\n\r\n").unwrap() + 4];
    let stream = format!(
        "{first}data: {}\n\n{}",
        r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#,
        &STREAM[first.len()..],
    );
    let (events, finished) = translate(&stream, true);
    assert!(finished);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[2],
        "data: {\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"The model is overloaded. Please try again later.\",\"param\":null,\"type\":\"upstream_error\"}}\n\n"
    );
    let mut kind = None;
    SseScanner::new()
        .feed(&Bytes::from(events[2].clone()), |e| {
            kind = Some(classify(&e))
        })
        .unwrap();
    assert_eq!(kind, Some(ChunkKind::Error));
    // Without a message or status.
    let (events, finished) = translate("data: {\"error\":{}}\n\n", false);
    assert!(finished);
    assert!(events[0].contains(r#""code":"INTERNAL""#), "{}", events[0]);
}

#[test]
fn a_cut_stream_is_not_finished() {
    let cut = STREAM.rfind("data: ").unwrap();
    let (events, finished) = translate(&STREAM[..cut], true);
    assert!(!finished);
    assert_eq!(events.len(), 3);
    assert!(!events
        .iter()
        .any(|e| e.contains("[DONE]") || e.contains("finish_reason\":\"")));
    // Nothing at all: nothing, and not finished.
    assert_eq!(translate("", true), (Vec::new(), false));
}

#[test]
fn ignored_events_produce_nothing() {
    let stream = concat!(
        ": keep-alive\n\n",
        "data: not json\n\n",
        "data: [1, 2]\n\n",
        "data: \n\n",
        "event: ping\n\n",
        r#"data: {"candidates":[{"content":{"parts":[{"text":"hidden","thought":true}]},"index":9}]}"#,
        "\n\n",
    );
    assert_eq!(translate(stream, true), (Vec::new(), false));
}

#[test]
fn usage_is_the_last_reported() {
    let (events, _) = translate(STREAM, true);
    let usage = &events[events.len() - 2];
    assert!(
        usage.contains(r#""prompt_tokens":8,"completion_tokens":22,"total_tokens":30"#),
        "{usage}"
    );
}

#[test]
fn with_usage_chunk_ends_with_the_usage_chunk_and_no_usage_null_before_it() {
    let translator = StreamTranslator::new(false, MODEL).with_usage_chunk();
    let (text, finished) = translate_with(&[STREAM.as_bytes()], translator);
    assert!(finished);
    let (done, rest) = text.split_last().unwrap();
    let (usage, chunks) = rest.split_last().unwrap();
    assert_eq!(done, "data: [DONE]\n\n");
    let usage: serde_json::Value =
        serde_json::from_str(usage.strip_prefix("data: ").unwrap().trim()).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 22);
    assert!(
        !chunks.iter().any(|c| c.contains("\"usage\"")),
        "no usage:null on the other chunks: {chunks:?}"
    );
}
