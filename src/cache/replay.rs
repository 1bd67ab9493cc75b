//! A cached entry as the answer to a request: the bytes first served, or
//! the other form made from them.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use super::Entry;
use crate::openai::{self, ChunkKind};
use crate::sse::SseScanner;

/// What a hit answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// A JSON answer (`application/json`).
    Json(Bytes),
    /// An SSE stream (`text/event-stream`).
    Sse(Bytes),
}

/// The answer `entry` gives a request (`stream`, and whether it asked for
/// usage), or `None` when the entry can't answer it (a miss):
///
/// - a non-streamed request gets the JSON answer byte for byte;
/// - a streamed one gets the stream byte for byte when it asked for usage
///   the same way; the same stream without its usage chunk when it did not;
///   else a stream made from the JSON answer (a chat completion: a role
///   chunk, its content and tool calls, the finish chunk, usage if asked).
pub fn replay(entry: &Entry, stream: bool, include_usage: bool) -> Option<Replay> {
    if !stream {
        return entry.json.clone().map(Replay::Json);
    }
    match &entry.sse {
        Some((bytes, with_usage)) if *with_usage == include_usage => {
            return Some(Replay::Sse(bytes.clone()))
        }
        Some((bytes, true)) => return without_usage(bytes).map(Replay::Sse),
        _ => {}
    }
    entry
        .json
        .as_ref()
        .and_then(|json| stream_of(json, include_usage))
        .map(Replay::Sse)
}

/// The stream without its usage-only chunk.
fn without_usage(bytes: &Bytes) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(bytes.len());
    let mut scanner = SseScanner::new();
    scanner
        .feed(bytes, |event| {
            let usage_only = openai::usage_of_event(&event).is_some()
                && openai::classify(&event) == ChunkKind::Empty;
            if !usage_only {
                out.extend_from_slice(&event.raw);
            }
        })
        .ok()?;
    Some(out.freeze())
}

/// A chat completion as the stream that would have said it.
fn stream_of(json: &[u8], include_usage: bool) -> Option<Bytes> {
    let answer: Value = serde_json::from_slice(json).ok()?;
    if answer.get("object")?.as_str()? != "chat.completion" {
        return None;
    }
    let head = |choices: Value| {
        let mut chunk = json!({
            "id": answer.get("id"),
            "object": "chat.completion.chunk",
            "created": answer.get("created"),
            "model": answer.get("model"),
            "choices": choices,
        });
        if let Some(fp) = answer.get("system_fingerprint") {
            chunk["system_fingerprint"] = fp.clone();
        }
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut events: Vec<Value> = Vec::new();
    for choice in answer.get("choices")?.as_array()? {
        let index = choice.get("index").cloned().unwrap_or(json!(0));
        let message = choice.get("message")?;
        let delta = |delta: Value, finish: Value| json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        events.push(head(delta(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )));
        for key in ["reasoning_content", "content", "refusal"] {
            if let Some(text) = message
                .get(key)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                events.push(head(delta(json!({ key: text }), Value::Null)));
            }
        }
        if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    let mut call = call.clone();
                    call["index"] = json!(i);
                    call
                })
                .collect();
            if !calls.is_empty() {
                events.push(head(delta(json!({ "tool_calls": calls }), Value::Null)));
            }
        }
        let finish = choice
            .get("finish_reason")
            .cloned()
            .unwrap_or(json!("stop"));
        events.push(head(delta(json!({}), finish)));
    }
    if include_usage {
        let mut usage = head(json!([]));
        usage["usage"] = answer.get("usage").cloned().unwrap_or(Value::Null);
        events.push(usage);
    }
    let mut out = BytesMut::new();
    for event in events {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&event).ok()?);
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":7,"model":"gpt","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    const STREAM: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\ndata: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\ndata: [DONE]\n\n";

    fn entry(json: bool, sse: Option<bool>) -> Entry {
        Entry {
            json: json.then(|| Bytes::from_static(ANSWER.as_bytes())),
            sse: sse.map(|usage| (Bytes::from_static(STREAM.as_bytes()), usage)),
        }
    }

    #[test]
    fn each_form_replays_byte_for_byte() {
        let e = entry(true, Some(true));
        assert_eq!(
            replay(&e, false, false),
            Some(Replay::Json(Bytes::from_static(ANSWER.as_bytes())))
        );
        assert_eq!(
            replay(&e, true, true),
            Some(Replay::Sse(Bytes::from_static(STREAM.as_bytes())))
        );
    }

    #[test]
    fn a_stream_without_usage_drops_only_the_usage_chunk() {
        let Some(Replay::Sse(out)) = replay(&entry(false, Some(true)), true, false) else {
            panic!("a stream")
        };
        let text = std::str::from_utf8(&out).unwrap();
        assert!(!text.contains("\"prompt_tokens\""), "{text}");
        assert!(
            text.contains("\"content\":\"Hi\"") && text.ends_with("data: [DONE]\n\n"),
            "{text}"
        );
    }

    #[test]
    fn a_json_answer_becomes_a_stream_and_not_the_other_way() {
        let Some(Replay::Sse(out)) = replay(&entry(true, None), true, true) else {
            panic!("a stream")
        };
        let text = std::str::from_utf8(&out).unwrap();
        let data: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(data[1]["choices"][0]["delta"]["content"], "Hi!");
        assert_eq!(data[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(data[3]["usage"]["total_tokens"], 5);
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert_eq!(
            replay(&entry(false, Some(false)), false, false),
            None,
            "a stream is not turned into JSON"
        );
    }
}
