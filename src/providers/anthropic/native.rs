//! An Anthropic stream passed through untouched (an Anthropic target
//! answering the Anthropic front door): what its events mean for the commit
//! point and the usage count, and the error event that ends a stream
//! Switchyard has to cut.
//!
//! | event | for the commit point |
//! |---|---|
//! | `content_block_delta` (text, tool input, thinking, citations) | content: the stream commits |
//! | `message_delta` (the stop reason) | content (an answer may be empty) |
//! | `message_stop` before any content | the end: an empty stream |
//! | `error` (by `event:` name or data `type`) | an error: fail over before the commit |
//! | `message_start`, `content_block_start`, `content_block_stop`, `ping`, unknown | nothing yet |

use bytes::Bytes;
use serde::Deserialize;

use super::response::AnthropicUsage;
use crate::json::push_json_string;
use crate::openai::{ChunkKind, Usage};
use crate::sse::Event;

/// The `type` and usage-bearing members of an event's data.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Data<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    message: Option<MessageUsage>,
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MessageUsage {
    usage: Option<AnthropicUsage>,
}

/// The event's type: its `event:` name, else its data's `type`.
fn kind<'a>(event: &'a Event<'_>, data: Option<&'a Data<'_>>) -> Option<&'a str> {
    event.event.or_else(|| data.and_then(|d| d.kind))
}

/// What one event of a passed-through Anthropic stream means for the commit
/// point (the table above).
pub fn classify(event: &Event<'_>) -> ChunkKind {
    let named = event.event;
    let parsed = if named.is_none() && event.has_data {
        serde_json::from_slice::<Data<'_>>(&event.data).ok()
    } else {
        None
    };
    match kind(event, parsed.as_ref()) {
        Some("error") => ChunkKind::Error,
        Some("content_block_delta" | "message_delta") => ChunkKind::Content,
        Some("message_stop") => ChunkKind::Done,
        Some(_) => ChunkKind::Empty,
        None if event.has_data => ChunkKind::Other,
        None => ChunkKind::Comment,
    }
}

/// The usage of a passed-through Anthropic stream: input counts from
/// `message_start`, output (and any later input counts) from each
/// `message_delta`, cumulative.
#[derive(Debug, Default)]
pub struct NativeUsage {
    usage: AnthropicUsage,
    seen: bool,
}

impl NativeUsage {
    /// Reads one event (only `message_start` and `message_delta` are parsed).
    pub fn event(&mut self, event: &Event<'_>) {
        if !event.has_data {
            return;
        }
        if let Some(name) = event.event {
            if name != "message_start" && name != "message_delta" {
                return;
            }
        } else if memchr::memmem::find(&event.data, b"\"usage\"").is_none() {
            return;
        }
        let Ok(data) = serde_json::from_slice::<Data<'_>>(&event.data) else {
            return;
        };
        let found = match data.kind {
            Some("message_start") => data.message.and_then(|m| m.usage),
            Some("message_delta") => data.usage,
            _ => None,
        };
        if let Some(found) = found {
            self.usage.update(found);
            self.seen = true;
        }
    }

    /// The usage so far in OpenAI's terms (cache reads and writes counted
    /// into the prompt), if any arrived.
    pub fn usage(&self) -> Option<Usage> {
        self.seen.then(|| {
            let usage = self.usage.to_openai();
            Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                total_tokens: usage.total_tokens,
            }
        })
    }
}

/// The usage of a whole Anthropic message (a non-streamed answer).
pub fn usage_of_message(body: &[u8]) -> Option<Usage> {
    let data = serde_json::from_slice::<Data<'_>>(body).ok()?;
    let mut usage = NativeUsage::default();
    usage.usage.update(data.usage?);
    usage.seen = true;
    usage.usage()
}

/// The event that ends a stream Switchyard cut after it committed, in
/// Anthropic's framing (`event: error`, an `api_error` envelope).
pub fn error_event(message: &str) -> Bytes {
    let mut out = Vec::with_capacity(message.len() + 80);
    out.extend_from_slice(
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":",
    );
    push_json_string(&mut out, message);
    out.extend_from_slice(b"}}\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseScanner;

    fn events(stream: &str) -> Vec<(ChunkKind, Option<Usage>)> {
        let mut scanner = SseScanner::new();
        let mut usage = NativeUsage::default();
        let mut out = Vec::new();
        scanner
            .feed(&Bytes::copy_from_slice(stream.as_bytes()), |e| {
                usage.event(&e);
                out.push((classify(&e), usage.usage()));
            })
            .unwrap();
        out
    }

    #[test]
    fn a_documented_stream_commits_at_its_first_delta_and_counts_its_usage() {
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Hm\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let seen = events(stream);
        let kinds: Vec<&ChunkKind> = seen.iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds,
            [
                &ChunkKind::Empty,
                &ChunkKind::Empty,
                &ChunkKind::Empty,
                &ChunkKind::Content,
                &ChunkKind::Content,
                &ChunkKind::Done
            ]
        );
        let last = seen.last().and_then(|(_, u)| *u).expect("usage");
        assert_eq!(
            (
                last.prompt_tokens,
                last.completion_tokens,
                last.total_tokens
            ),
            (35, 15, 50)
        );
    }

    #[test]
    fn an_error_event_is_an_error_by_name_or_by_type() {
        let named = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(events(named)[0].0, ChunkKind::Error);
        let unnamed =
            "data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}\n\n";
        assert_eq!(events(unnamed)[0].0, ChunkKind::Error);
        assert_eq!(events(": keep-alive\n\n")[0].0, ChunkKind::Comment);
        assert_eq!(events("data: not json\n\n")[0].0, ChunkKind::Other);
    }

    #[test]
    fn the_cut_error_event_is_anthropic_framed_json() {
        let event = error_event("the upstream \"x\" broke off");
        let text = std::str::from_utf8(&event).unwrap();
        let data = text
            .strip_prefix("event: error\ndata: ")
            .and_then(|d| d.strip_suffix("\n\n"))
            .expect("one event");
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "api_error");
        assert_eq!(v["error"]["message"], "the upstream \"x\" broke off");
    }

    #[test]
    fn a_message_body_reads_its_usage() {
        let usage = usage_of_message(br#"{"type":"message","usage":{"input_tokens":3,"cache_creation_input_tokens":2,"output_tokens":4}}"#)
            .expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 4));
    }
}
