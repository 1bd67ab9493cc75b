//! ConverseStream's messages → OpenAI `chat.completion.chunk` events, one
//! message at a time (decoded by eventstream.rs).
//!
//! | Converse message (`:event-type`) | OpenAI events |
//! |---|---|
//! | `messageStart` | the first chunk, `delta: {"role":"assistant","content":""}` |
//! | `contentBlockDelta` `delta.text` | `delta.content` (empty text: nothing) |
//! | `contentBlockStart` `start.toolUse` `{toolUseId, name}` | `delta.tool_calls[{index: k, id, type: "function", function: {name, arguments: ""}}]`, k counting tool blocks from 0 |
//! | `contentBlockDelta` `delta.toolUse.input` | `delta.tool_calls[{index: k, function: {arguments}}]` (empty: nothing) |
//! | the answer tool (structured.rs) and its input | nothing, then `delta.content` = the JSON pieces; `finish_reason` `stop` for its `tool_use` stop |
//! | `contentBlockStop` | nothing (closes the tool block) |
//! | `messageStop` `stopReason` | `delta: {}` with `finish_reason` (response.rs), once |
//! | `metadata` `usage` | a `stop` finish chunk if none was sent, the usage chunk (`choices: []`) if asked for, `[DONE]` |
//! | `:message-type` `exception` (`throttlingException`, `modelStreamErrorException`, `validationException`, `internalServerException`, `serviceUnavailableException`, `modelTimeoutException`, …) or `error` | one `data: {"error":{…}}` event (type `upstream_error`, code = the exception name); the end, no `[DONE]` |
//! | `delta.reasoningContent`, `delta.citation`, other blocks, unknown events, payloads that are not JSON | nothing |
//!
//! `metadata` follows `messageStop` in ConverseStream and carries the
//! usage, so the stream ends there. Every chunk has the same `id` (made
//! here: Converse sends none), `created` and `model` (the caller's) and,
//! when the client asked for usage, `"usage": null`, as OpenAI sends them.
//! The chunk's fixed head is encoded once per stream; per message only the
//! delta is written.
//!
//! A stream that ends before `metadata` or an exception was cut:
//! [`StreamTranslator::finished`] stays false and the caller reports it.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;

use super::error::WireError;
use super::eventstream::StreamMessage;
use super::response::{completion_id, BedrockUsage};
use super::structured::{finish_reason, ANSWER_TOOL};
use crate::json::push_json_string;
use crate::openai::ErrorBody;
use crate::providers::completion::unix_now;
use crate::text::{lossy_prefix, prefix_within};

/// Longest exception message relayed, in bytes.
const MAX_ERROR_MESSAGE_BYTES: usize = 4096;
/// Longest exception name relayed as the `code`, in bytes.
const MAX_CODE_BYTES: usize = 64;

/// Turns ConverseStream messages into OpenAI `chat.completion.chunk` SSE
/// events, message by message.
#[derive(Debug)]
pub struct StreamTranslator {
    include_usage: bool,
    /// Emit the usage chunk even when the client did not ask (see
    /// [`StreamTranslator::with_usage_chunk`]).
    usage_chunk: bool,
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,`.
    head: Vec<u8>,
    usage: BedrockUsage,
    /// Tool blocks started so far: the next one's OpenAI `index`.
    tools: u32,
    /// The open tool block: Converse's `contentBlockIndex`, and what it is.
    open_tool: Option<(u64, OpenTool)>,
    /// The answer tool of a `response_format` was called (structured.rs).
    answered: bool,
    started: bool,
    finish_sent: bool,
    finished: bool,
}

impl StreamTranslator {
    /// `include_usage`: the client asked `stream_options.include_usage` ->
    /// emit the final usage chunk (`choices: []`). `model`: the model the
    /// chunks name.
    pub fn new(include_usage: bool, model: &str) -> StreamTranslator {
        let id = completion_id();
        let mut head = Vec::with_capacity(id.len() + model.len() + 80);
        head.extend_from_slice(br#"{"id":"#);
        push_json_string(&mut head, &id);
        head.extend_from_slice(br#","object":"chat.completion.chunk","created":"#);
        head.extend_from_slice(unix_now().to_string().as_bytes());
        head.extend_from_slice(br#","model":"#);
        push_json_string(&mut head, model);
        head.push(b',');
        StreamTranslator {
            include_usage,
            usage_chunk: include_usage,
            head,
            usage: BedrockUsage::default(),
            tools: 0,
            open_tool: None,
            answered: false,
            started: false,
            finish_sent: false,
            finished: false,
        }
    }

    /// Also ends with the usage chunk when the client did not ask for it
    /// (the chunks then carry no `"usage": null`), so the router can count
    /// the tokens and remove that chunk before the client sees it.
    pub fn with_usage_chunk(mut self) -> StreamTranslator {
        self.usage_chunk = true;
        self
    }

    /// True once `metadata` or an exception was translated (nothing more
    /// should be relayed).
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// One decoded message of the ConverseStream; appends zero or more
    /// complete OpenAI SSE events (`data: {...}\n\n`, and `data: [DONE]\n\n`
    /// at `metadata`) to `out`.
    pub fn message(&mut self, m: &StreamMessage<'_>, out: &mut Vec<Bytes>) {
        if self.finished {
            return;
        }
        match m.message_type {
            "event" => {}
            "exception" | "error" => return self.error(m, out),
            _ => return,
        }
        let Ok(wire) = serde_json::from_slice::<Wire<'_>>(m.payload) else {
            return;
        };
        match m.event_type {
            "messageStart" => self.start(out),
            "contentBlockStart" => self.block_start(wire, out),
            "contentBlockDelta" => self.block_delta(wire, out),
            "contentBlockStop"
                if self
                    .open_tool
                    .is_some_and(|(index, _)| Some(index) == wire.content_block_index) =>
            {
                self.open_tool = None;
            }
            "messageStop" => self.finish(wire.stop_reason.as_deref(), out),
            "metadata" => {
                if let Some(usage) = wire.usage {
                    self.usage = usage;
                }
                self.end(out);
            }
            _ => {}
        }
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(self.chunk(br#"{"role":"assistant","content":""}"#, None));
    }

    fn block_start(&mut self, wire: Wire<'_>, out: &mut Vec<Bytes>) {
        let Some(tool) = wire.start.and_then(|s| s.tool_use) else {
            return;
        };
        let index = wire.content_block_index.unwrap_or(0);
        if tool.name.as_deref() == Some(ANSWER_TOOL) {
            // Its input arrives as content.
            self.answered = true;
            self.open_tool = Some((index, OpenTool::Answer));
            return;
        }
        let k = self.tools;
        self.tools = self.tools.saturating_add(1);
        self.open_tool = Some((index, OpenTool::Call(k)));
        let id = tool.tool_use_id.as_deref().unwrap_or_default();
        let name = tool.name.as_deref().unwrap_or_default();
        let mut delta = Vec::with_capacity(id.len() + name.len() + 96);
        delta.extend_from_slice(br#"{"tool_calls":[{"index":"#);
        delta.extend_from_slice(k.to_string().as_bytes());
        delta.extend_from_slice(br#","id":"#);
        push_json_string(&mut delta, id);
        delta.extend_from_slice(br#","type":"function","function":{"name":"#);
        push_json_string(&mut delta, name);
        delta.extend_from_slice(br#","arguments":""}}]}"#);
        out.push(self.chunk(&delta, None));
    }

    fn block_delta(&mut self, wire: Wire<'_>, out: &mut Vec<Bytes>) {
        let Some(delta) = wire.delta else { return };
        if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
            return self.content(&text, out);
        }
        let Some(input) = delta
            .tool_use
            .and_then(|t| t.input)
            .filter(|i| !i.is_empty())
        else {
            // reasoningContent, citation, new kinds.
            return;
        };
        let index = wire.content_block_index.unwrap_or(0);
        let Some((_, open)) = self.open_tool.filter(|(open, _)| *open == index) else {
            return;
        };
        let OpenTool::Call(k) = open else {
            return self.content(&input, out);
        };
        let mut bytes = Vec::with_capacity(input.len() + 64);
        bytes.extend_from_slice(br#"{"tool_calls":[{"index":"#);
        bytes.extend_from_slice(k.to_string().as_bytes());
        bytes.extend_from_slice(br#","function":{"arguments":"#);
        push_json_string(&mut bytes, &input);
        bytes.extend_from_slice(b"}}]}");
        out.push(self.chunk(&bytes, None));
    }

    fn content(&mut self, text: &str, out: &mut Vec<Bytes>) {
        let mut delta = Vec::with_capacity(text.len() + 16);
        delta.extend_from_slice(br#"{"content":"#);
        push_json_string(&mut delta, text);
        delta.push(b'}');
        out.push(self.chunk(&delta, None));
    }

    fn finish(&mut self, stop_reason: Option<&str>, out: &mut Vec<Bytes>) {
        if self.finish_sent {
            return;
        }
        self.finish_sent = true;
        let reason = finish_reason(stop_reason, self.answered, self.tools > 0);
        out.push(self.chunk(b"{}", Some(reason)));
    }

    fn end(&mut self, out: &mut Vec<Bytes>) {
        // A stream that never said why it stopped still ends like one.
        self.finish(None, out);
        if self.usage_chunk {
            let mut data = self.begin();
            data.extend_from_slice(br#""choices":[],"usage":"#);
            let _ = serde_json::to_writer(&mut data, &self.usage.to_openai());
            data.extend_from_slice(b"}\n\n");
            out.push(Bytes::from(data));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        self.finished = true;
    }

    fn error(&mut self, m: &StreamMessage<'_>, out: &mut Vec<Bytes>) {
        let code = prefix_within(m.event_type.trim(), MAX_CODE_BYTES);
        let code = if code.is_empty() {
            "internalServerException"
        } else {
            code
        };
        let parsed = serde_json::from_slice::<WireError<'_>>(m.payload).ok();
        let text;
        let message = match parsed.as_ref().and_then(WireError::message) {
            Some(message) => prefix_within(message, MAX_ERROR_MESSAGE_BYTES),
            None if parsed.is_none() && !m.payload.is_empty() => {
                text = lossy_prefix(m.payload, MAX_ERROR_MESSAGE_BYTES);
                &*text
            }
            None => {
                text = Cow::Owned(format!("The Bedrock upstream's stream failed ({code})."));
                &*text
            }
        };
        out.push(
            ErrorBody {
                message,
                kind: "upstream_error",
                param: None,
                code,
            }
            .to_event(),
        );
        self.finished = true;
    }

    /// `data: ` and the chunk's head, with room for a typical delta.
    fn begin(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.head.len() + 160);
        data.extend_from_slice(b"data: ");
        data.extend_from_slice(&self.head);
        data
    }

    /// One complete chunk event with `delta` (JSON) and `finish_reason`.
    fn chunk(&self, delta: &[u8], finish: Option<&str>) -> Bytes {
        let mut data = self.begin();
        data.extend_from_slice(br#""choices":[{"index":0,"delta":"#);
        data.extend_from_slice(delta);
        data.extend_from_slice(br#","logprobs":null,"finish_reason":"#);
        match finish {
            Some(reason) => push_json_string(&mut data, reason),
            None => data.extend_from_slice(b"null"),
        }
        data.extend_from_slice(b"}]");
        if self.include_usage {
            data.extend_from_slice(br#","usage":null"#);
        }
        data.extend_from_slice(b"}\n\n");
        Bytes::from(data)
    }
}

/// An open `toolUse` block: a tool call with its OpenAI `index`, or the
/// answer tool, whose input is the message's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenTool {
    Call(u32),
    Answer,
}

/// Every field any ConverseStream event payload carries; each uses a few.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(default)]
    content_block_index: Option<u64>,
    #[serde(borrow, default)]
    start: Option<Start<'a>>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<BedrockUsage>,
}

/// `contentBlockStart.start` (a union; only `toolUse` is translated).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start<'a> {
    #[serde(borrow, default)]
    tool_use: Option<ToolUseStart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart<'a> {
    #[serde(borrow, default)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

/// `contentBlockDelta.delta` (a union).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_use: Option<ToolUseDelta<'a>>,
}

#[derive(Deserialize)]
struct ToolUseDelta<'a> {
    #[serde(borrow, default)]
    input: Option<Cow<'a, str>>,
}
