//! `StreamTranslator` fed by `EventStreamDecoder`: a ConverseStream with
//! text and a tool call end to end, usage, exceptions, the answer tool.

use bytes::Bytes;
use serde_json::Value;

use super::super::{EventStreamDecoder, StreamTranslator};
use super::eventstream::{event, frame};
use crate::openai::{classify, ChunkKind};
use crate::sse::SseScanner;

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

/// The ConverseStream of AWS's tool-use example: text, a toolUse block
/// whose input arrives in two pieces (and an empty one), the stop, the
/// metadata.
fn tool_stream() -> Vec<u8> {
    [
        event("messageStart", r#"{"p":"abcdefghijk","role":"assistant"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Let me check"},"p":"abc"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hmm"}},"p":"abc"}"#),
        event("contentBlockStop", r#"{"contentBlockIndex":0,"p":"abcd"}"#),
        event("contentBlockStart", r#"{"contentBlockIndex":1,"p":"ab","start":{"toolUse":{"name":"top_song","toolUseId":"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"}}}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":""}},"p":"ab"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"sign\": \"WZ"}},"p":"ab"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"PZ\"}"}},"p":"ab"}"#),
        event("contentBlockStop", r#"{"contentBlockIndex":1,"p":"abcd"}"#),
        event("messageStop", r#"{"p":"abcdef","stopReason":"tool_use"}"#),
        event("metadata", r#"{"metrics":{"latencyMs":1146},"p":"abc","usage":{"inputTokens":412,"outputTokens":56,"totalTokens":1568,"cacheReadInputTokens":1000,"cacheWriteInputTokens":100}}"#),
    ]
    .concat()
}

/// Decodes and translates `chunks`; returns every OpenAI event and whether
/// the translator finished.
fn run(chunks: &[&[u8]], translator: StreamTranslator) -> (Vec<String>, bool) {
    let mut translator = translator;
    let mut decoder = EventStreamDecoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder
            .feed(chunk, |m| translator.message(&m, &mut out))
            .expect("decodes");
    }
    assert!(decoder.finish());
    let events = out
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).expect("UTF-8"))
        .collect();
    (events, translator.finished())
}

fn json(event: &str) -> Value {
    serde_json::from_str(event.strip_prefix("data: ").unwrap().trim_end()).unwrap()
}

/// The expected events, with the translator's own id and created.
fn expected(id: &str, created: u64, include_usage: bool, usage_chunk: bool) -> Vec<String> {
    let usage_null = if include_usage {
        r#","usage":null"#
    } else {
        ""
    };
    let head = format!(
        r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"{MODEL}","#
    );
    let chunk = |delta: &str, finish: &str| {
        format!(
            r#"{head}"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{usage_null}}}"#
        ) + "\n\n"
    };
    let mut events = vec![
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"content":"Let me check"}"#, "null"),
        chunk(
            r#"{"tool_calls":[{"index":0,"id":"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q","type":"function","function":{"name":"top_song","arguments":""}}]}"#,
            "null",
        ),
        chunk(
            r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"sign\": \"WZ"}}]}"#,
            "null",
        ),
        chunk(
            r#"{"tool_calls":[{"index":0,"function":{"arguments":"PZ\"}"}}]}"#,
            "null",
        ),
        chunk("{}", r#""tool_calls""#),
    ];
    if usage_chunk {
        events.push(
            format!(r#"{head}"choices":[],"usage":{{"prompt_tokens":1512,"completion_tokens":56,"total_tokens":1568,"prompt_tokens_details":{{"cached_tokens":1000}}}}}}"#)
                + "\n\n",
        );
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

#[test]
fn a_tool_stream_translates_event_by_event() {
    let bytes = tool_stream();
    for (include_usage, forced) in [(true, false), (false, false), (false, true)] {
        let mut translator = StreamTranslator::new(include_usage, MODEL);
        if forced {
            translator = translator.with_usage_chunk();
        }
        let (events, finished) = run(&[&bytes], translator);
        assert!(finished);
        let first = json(&events[0]);
        let id = first["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-") && id.len() == 33, "{id}");
        let created = first["created"].as_u64().unwrap();
        assert_eq!(
            events,
            expected(id, created, include_usage, include_usage || forced)
        );
    }
}

#[test]
fn any_split_of_the_body_gives_the_same_events() {
    let bytes = tool_stream();
    let (whole, _) = run(&[&bytes], StreamTranslator::new(true, MODEL));
    let strip = |events: Vec<String>| -> Vec<Value> {
        events
            .iter()
            .filter(|e| !e.contains("[DONE]"))
            .map(|e| {
                let mut v = json(e);
                v["id"] = Value::Null;
                v["created"] = Value::Null;
                v
            })
            .collect()
    };
    let whole = strip(whole);
    for at in (0..bytes.len()).step_by(7) {
        let (events, finished) = run(
            &[&bytes[..at], &bytes[at..]],
            StreamTranslator::new(true, MODEL),
        );
        assert!(finished);
        assert_eq!(strip(events), whole, "split at {at}");
    }
}

#[test]
fn the_commit_point_sees_content_after_the_role_chunk_and_done_at_the_end() {
    let bytes = tool_stream();
    let (events, _) = run(&[&bytes], StreamTranslator::new(false, MODEL));
    let mut scanner = SseScanner::new();
    let mut kinds = Vec::new();
    for event in &events {
        scanner
            .feed(&Bytes::from(event.clone()), |e| kinds.push(classify(&e)))
            .unwrap();
    }
    assert_eq!(kinds[..2], [ChunkKind::Empty, ChunkKind::Content]);
    assert_eq!(kinds.last(), Some(&ChunkKind::Done));
}

#[test]
fn an_exception_ends_the_stream_with_one_error_event() {
    let bytes = [
        event("messageStart", r#"{"role":"assistant"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
        frame(
            &[(":message-type", "exception"), (":exception-type", "modelStreamErrorException"), (":content-type", "application/json")],
            br#"{"message":"Model produced invalid sequence as part of ToolUse.","originalStatusCode":400}"#,
        ),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"late"}}"#),
    ]
    .concat();
    let (events, finished) = run(&[&bytes], StreamTranslator::new(false, MODEL));
    assert!(finished);
    assert_eq!(events.len(), 3);
    assert_eq!(
        json(&events[2]),
        serde_json::json!({"error": {
            "message": "Model produced invalid sequence as part of ToolUse.",
            "type": "upstream_error", "param": null, "code": "modelStreamErrorException",
        }})
    );
    for (kind, name, payload, message) in [
        (
            "exception",
            "throttlingException",
            &b"not json"[..],
            "not json",
        ),
        (
            "exception",
            "",
            &b"{}"[..],
            "The Bedrock upstream's stream failed (internalServerException).",
        ),
        ("error", "InternalFailure", &b"boom"[..], "boom"),
    ] {
        let bytes = frame(
            &[
                (":message-type", kind),
                (":exception-type", name),
                (":error-code", name),
            ],
            payload,
        );
        let (events, finished) = run(&[&bytes], StreamTranslator::new(true, MODEL));
        assert!(finished);
        assert_eq!(events.len(), 1);
        let v = json(&events[0]);
        assert_eq!(v["error"]["message"], message);
        assert_eq!(v["error"]["type"], "upstream_error");
        assert!(!events[0].contains("[DONE]"));
    }
}

#[test]
fn a_stream_cut_before_metadata_is_not_finished() {
    let bytes = [
        event("messageStart", r#"{"role":"assistant"}"#),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ),
        event("messageStop", r#"{"stopReason":"end_turn"}"#),
    ]
    .concat();
    let (events, finished) = run(&[&bytes], StreamTranslator::new(false, MODEL));
    assert!(!finished);
    assert_eq!(events.len(), 3);
    assert_eq!(json(&events[2])["choices"][0]["finish_reason"], "stop");
}

#[test]
fn the_answer_tool_streams_as_content_and_stops() {
    let bytes = [
        event("messageStart", r#"{"role":"assistant"}"#),
        event("contentBlockStart", r#"{"contentBlockIndex":0,"start":{"toolUse":{"name":"switchyard_json_answer","toolUseId":"t1"}}}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"a\":"}}}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"1}"}}}"#),
        event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        event("messageStop", r#"{"stopReason":"tool_use"}"#),
        event("metadata", r#"{"usage":{"inputTokens":5,"outputTokens":3,"totalTokens":8}}"#),
    ]
    .concat();
    let (events, finished) = run(&[&bytes], StreamTranslator::new(false, MODEL));
    assert!(finished);
    let deltas: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| json(e)["choices"][0].clone())
        .collect();
    assert_eq!(deltas[1]["delta"]["content"], "{\"a\":");
    assert_eq!(deltas[2]["delta"]["content"], "1}");
    assert_eq!(deltas[3]["finish_reason"], "stop");
    assert_eq!(deltas.len(), 4);
}

#[test]
fn finish_reasons_and_unknown_events() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
        ("something_new", "stop"),
    ] {
        let bytes = [
            event("messageStart", r#"{"role":"assistant"}"#),
            event("somethingNew", r#"{"x":1}"#),
            event("contentBlockDelta", "not json"),
            event("messageStop", &format!(r#"{{"stopReason":"{stop}"}}"#)),
            event("metadata", "{}"),
        ]
        .concat();
        let (events, finished) = run(&[&bytes], StreamTranslator::new(false, MODEL));
        assert!(finished);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(json(&events[1])["choices"][0]["finish_reason"], finish);
    }
}
