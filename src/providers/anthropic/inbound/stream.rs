//! OpenAI `chat.completion.chunk` SSE events → Anthropic's SSE events, one
//! upstream event at a time. The event table is in the module docs of
//! `inbound`.
//!
//! Nothing is buffered: each delta becomes its Anthropic event at once. The
//! state kept is the open block (its index and kind, and a tool call's id,
//! at most [`MAX_ID_BYTES`]), the stop reason and the usage.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{error_envelope, type_of_stream_error, StreamError};
use super::response::{
    generated_id, message_id, stop_reason, AnthropicUsage, Count, OpenAiUsage, StopString,
    MAX_ID_BYTES, MAX_STOP_BYTES,
};
use crate::json::push_json_string;
use crate::sse::Event;
use crate::text::prefix_within;

/// Turns an OpenAI chat-completions SSE stream into Anthropic's Messages
/// SSE events, one upstream event at a time.
#[derive(Debug)]
pub struct MessageStream {
    /// The model the client asked for, as a JSON string.
    model: Vec<u8>,
    /// `message_start` (and `ping`) were sent.
    started: bool,
    /// The open content block.
    open: Option<Open>,
    /// The next block's `index`.
    next_index: u32,
    /// The highest OpenAI tool-call index opened so far, if any.
    last_tool: Option<u64>,
    /// OpenAI's `finish_reason`, as it came (one of a few known words).
    finish: Option<Finish>,
    /// vLLM's `stop_reason` string: the stop sequence that ended the answer.
    stop_sequence: Option<String>,
    /// A tool call was streamed.
    tools: bool,
    /// A `refusal` delta was streamed.
    refused: bool,
    usage: Option<AnthropicUsage>,
    finished: bool,
}

/// A content block being streamed.
#[derive(Debug)]
struct Open {
    index: u32,
    kind: OpenKind,
}

#[derive(Debug, PartialEq, Eq)]
enum OpenKind {
    Text,
    Thinking,
    /// A tool call: its OpenAI index and id.
    Tool {
        index: u64,
        id: String,
    },
}

/// The finish reasons told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Other,
}

impl Finish {
    fn of(reason: &str) -> Finish {
        match reason {
            "stop" => Finish::Stop,
            "length" => Finish::Length,
            "tool_calls" | "function_call" => Finish::ToolCalls,
            "content_filter" => Finish::ContentFilter,
            _ => Finish::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::ContentFilter => "content_filter",
            Finish::Other => "other",
        }
    }
}

impl MessageStream {
    /// `model`: the model name the client asked for (every Anthropic
    /// answer echoes it).
    pub fn new(model: &str) -> MessageStream {
        let mut encoded = Vec::with_capacity(model.len() + 2);
        push_json_string(&mut encoded, model);
        MessageStream {
            model: encoded,
            started: false,
            open: None,
            next_index: 0,
            last_tool: None,
            finish: None,
            stop_sequence: None,
            tools: false,
            refused: false,
            usage: None,
            finished: false,
        }
    }

    /// One parsed SSE event of the OpenAI stream; appends zero or more
    /// complete Anthropic events (`event: <type>\ndata: <json>\n\n`) to
    /// `out`. `data: [DONE]` ends the message ([`MessageStream::end`]); an
    /// error frame becomes an `error` event and the end.
    pub fn event(&mut self, event: &Event<'_>, out: &mut Vec<Bytes>) {
        if self.finished || !event.has_data {
            return;
        }
        let data: &[u8] = &event.data;
        if data.starts_with(b"[DONE]") {
            return self.end(out);
        }
        let chunk = super::is_object(data)
            .then(|| serde_json::from_slice::<Chunk<'_>>(data).ok())
            .flatten();
        let Some(chunk) = chunk else {
            if event.event == Some("error") {
                self.error(None, out);
            }
            return;
        };
        if let Some(error) = chunk.error.filter(|e| e.get() != "null") {
            return self.error(
                serde_json::from_str::<StreamError<'_>>(error.get()).ok(),
                out,
            );
        }
        if event.event == Some("error") {
            return self.error(None, out);
        }
        let usage = chunk.usage.map(OpenAiUsage::to_anthropic);
        if !self.started {
            self.start(chunk.id.as_deref(), usage, out);
        }
        if usage.is_some() {
            self.usage = usage;
        }
        for choice in chunk.choices.iter().flatten() {
            if choice.index.0.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = &choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason.as_deref() {
                self.finish = Some(Finish::of(reason));
                if let Some(seq) = choice.stop_reason.as_deref() {
                    self.stop_sequence = Some(prefix_within(seq, MAX_STOP_BYTES).to_owned());
                }
            }
        }
    }

    /// The OpenAI stream ended cleanly (after `[DONE]` or without it):
    /// closes the open block and sends `message_delta` (stop reason and
    /// usage) and `message_stop`, then is finished. When nothing at all
    /// arrived it sends nothing and stays unfinished, so the caller can
    /// tell an empty answer from a message.
    pub fn end(&mut self, out: &mut Vec<Bytes>) {
        if self.finished || !self.started {
            return;
        }
        self.close(out);
        let (reason, sequence) = stop_reason(
            self.finish.map(Finish::as_str),
            self.stop_sequence.as_deref(),
            self.tools,
            self.refused,
        );
        let mut data = Vec::with_capacity(200);
        data.extend_from_slice(br#"{"type":"message_delta","delta":{"stop_reason":"#);
        push_json_string(&mut data, reason);
        data.extend_from_slice(br#","stop_sequence":"#);
        match sequence {
            Some(seq) => push_json_string(&mut data, seq),
            None => data.extend_from_slice(b"null"),
        }
        data.extend_from_slice(br#"},"usage":"#);
        match self.usage {
            Some(usage) => push_usage(&mut data, usage),
            None => data.extend_from_slice(br#"{"output_tokens":0}"#),
        }
        data.push(b'}');
        out.push(frame("message_delta", &data));
        out.push(Bytes::from_static(
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ));
        self.finished = true;
    }

    /// True once the message was ended (`message_stop`) or an error event sent.
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn start(&mut self, id: Option<&str>, usage: Option<AnthropicUsage>, out: &mut Vec<Bytes>) {
        self.started = true;
        let id = message_id(id);
        let mut data = Vec::with_capacity(320 + id.len() + self.model.len());
        data.extend_from_slice(br#"{"type":"message_start","message":{"id":"#);
        push_json_string(&mut data, &id);
        data.extend_from_slice(br#","type":"message","role":"assistant","content":[],"model":"#);
        data.extend_from_slice(&self.model);
        data.extend_from_slice(br#","stop_reason":null,"stop_sequence":null,"usage":"#);
        push_usage(&mut data, usage.unwrap_or_default());
        data.extend_from_slice(b"}}");
        out.push(frame("message_start", &data));
        out.push(Bytes::from_static(
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n",
        ));
    }

    fn delta(&mut self, delta: &Delta<'_>, out: &mut Vec<Bytes>) {
        let reasoning = delta
            .reasoning_content
            .as_deref()
            .or(delta.reasoning.as_deref());
        if let Some(thinking) = reasoning.filter(|t| !t.is_empty()) {
            self.ensure(OpenKind::Thinking, out);
            self.block_delta(br#""thinking_delta","thinking":"#, thinking, out);
        }
        if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
            self.text(text, out);
        }
        if let Some(refusal) = delta.refusal.as_deref().filter(|t| !t.is_empty()) {
            self.refused = true;
            self.text(refusal, out);
        }
        for call in delta.tool_calls.iter().flatten() {
            self.tool_call(call, out);
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<Bytes>) {
        self.ensure(OpenKind::Text, out);
        self.block_delta(br#""text_delta","text":"#, text, out);
    }

    fn tool_call(&mut self, call: &ToolDelta<'_>, out: &mut Vec<Bytes>) {
        let id = call.id.as_deref().filter(|id| !id.is_empty());
        let open_tool = match &self.open {
            Some(Open {
                kind: OpenKind::Tool { index, id },
                ..
            }) => Some((*index, id.as_str())),
            _ => None,
        };
        // OpenAI numbers tool calls with `index`. A new id starts a new call
        // when the index is left out or repeated (servers that send each
        // call whole, all at index 0).
        let new_id = id.is_some_and(|id| {
            open_tool.is_none_or(|(_, open_id)| prefix_within(id, MAX_ID_BYTES) != open_id)
        });
        let next = self.last_tool.map_or(0, |last| last.saturating_add(1));
        let index = match (call.index.0, open_tool) {
            (Some(index), Some((open, _))) if index == open && new_id => next,
            (Some(index), _) => index,
            (None, Some((open, _))) if !new_id => open,
            (None, _) => next,
        };
        let function = call.function.as_ref();
        if open_tool.map(|(open, _)| open) != Some(index) {
            if self.last_tool.is_some_and(|last| index <= last) {
                // A call whose block was already closed: Anthropic blocks
                // cannot reopen, and no known server interleaves calls.
                return;
            }
            self.close(out);
            self.tools = true;
            self.last_tool = Some(index);
            let id = match id {
                Some(id) => prefix_within(id, MAX_ID_BYTES).to_owned(),
                None => generated_id("toolu_"),
            };
            let name = function.and_then(|f| f.name.as_deref()).unwrap_or_default();
            let block = self.next_index;
            self.next_index += 1;
            let mut data = Vec::with_capacity(128 + id.len() + name.len());
            data.extend_from_slice(br#"{"type":"content_block_start","index":"#);
            data.extend_from_slice(block.to_string().as_bytes());
            data.extend_from_slice(br#","content_block":{"type":"tool_use","id":"#);
            push_json_string(&mut data, &id);
            data.extend_from_slice(br#","name":"#);
            push_json_string(&mut data, name);
            data.extend_from_slice(br#","input":{}}}"#);
            out.push(frame("content_block_start", &data));
            self.open = Some(Open {
                index: block,
                kind: OpenKind::Tool { index, id },
            });
        }
        if let Some(arguments) = function
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        {
            self.block_delta(br#""input_json_delta","partial_json":"#, arguments, out);
        }
    }

    /// Opens a text or thinking block unless one of that kind is open.
    fn ensure(&mut self, kind: OpenKind, out: &mut Vec<Bytes>) {
        if self.open.as_ref().is_some_and(|open| open.kind == kind) {
            return;
        }
        self.close(out);
        let block = self.next_index;
        self.next_index += 1;
        let content_block: &[u8] = match kind {
            OpenKind::Thinking => br#"{"type":"thinking","thinking":"","signature":""}"#,
            _ => br#"{"type":"text","text":""}"#,
        };
        let mut data = Vec::with_capacity(96);
        data.extend_from_slice(br#"{"type":"content_block_start","index":"#);
        data.extend_from_slice(block.to_string().as_bytes());
        data.extend_from_slice(br#","content_block":"#);
        data.extend_from_slice(content_block);
        data.push(b'}');
        out.push(frame("content_block_start", &data));
        self.open = Some(Open { index: block, kind });
    }

    /// A `content_block_delta` of the open block: `head` is the delta's
    /// `type` value and the name of its text field, `text` that field.
    fn block_delta(&mut self, head: &[u8], text: &str, out: &mut Vec<Bytes>) {
        let Some(open) = &self.open else { return };
        let mut data = Vec::with_capacity(80 + text.len());
        data.extend_from_slice(br#"{"type":"content_block_delta","index":"#);
        data.extend_from_slice(open.index.to_string().as_bytes());
        data.extend_from_slice(br#","delta":{"type":"#);
        data.extend_from_slice(head);
        push_json_string(&mut data, text);
        data.extend_from_slice(b"}}");
        out.push(frame("content_block_delta", &data));
    }

    /// `content_block_stop` for the open block, if any.
    fn close(&mut self, out: &mut Vec<Bytes>) {
        if let Some(open) = self.open.take() {
            let mut data = Vec::with_capacity(48);
            data.extend_from_slice(br#"{"type":"content_block_stop","index":"#);
            data.extend_from_slice(open.index.to_string().as_bytes());
            data.push(b'}');
            out.push(frame("content_block_stop", &data));
        }
    }

    fn error(&mut self, error: Option<StreamError<'_>>, out: &mut Vec<Bytes>) {
        let kind = type_of_stream_error(error.as_ref());
        let message = error
            .as_ref()
            .and_then(StreamError::message)
            .filter(|m| !m.is_empty())
            .unwrap_or("The OpenAI-compatible upstream's stream failed.");
        out.push(frame("error", &error_envelope(kind, message)));
        self.finished = true;
    }
}

/// Anthropic's usage object, in its key order.
fn push_usage(data: &mut Vec<u8>, usage: AnthropicUsage) {
    let _ = serde_json::to_writer(&mut *data, &usage);
}

/// One complete Anthropic SSE event.
fn frame(kind: &str, data: &[u8]) -> Bytes {
    let mut event = Vec::with_capacity(16 + kind.len() + data.len());
    event.extend_from_slice(b"event: ");
    event.extend_from_slice(kind.as_bytes());
    event.extend_from_slice(b"\ndata: ");
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

// --- the OpenAI chunk -------------------------------------------------------------

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChunkChoice<'a>>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: Count,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: StopString<'a>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolDelta<'a> {
    #[serde(default)]
    index: Count,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}
