//! Anthropic's SSE stream → OpenAI `chat.completion.chunk` events
//! (PROTOCOLS.md 7.4), one upstream event at a time.
//!
//! | Anthropic event | OpenAI events |
//! |---|---|
//! | `message_start` | the first chunk, `delta: {"role":"assistant","content":""}` |
//! | `content_block_start` `text` | `delta.content` if it carries text (usually none) |
//! | `content_block_start` `tool_use` | `delta.tool_calls[{index: k, id, type: "function", function: {name, arguments: ""}}]`, k counting tool blocks from 0 |
//! | `content_block_delta` `text_delta` | `delta.content` (empty text: nothing) |
//! | `content_block_delta` `input_json_delta` | `delta.tool_calls[{index: k, function: {arguments}}]` (empty: nothing) |
//! | `tool_use` of the answer tool (structured.rs) and its `input_json_delta` | nothing, then `delta.content` = the JSON pieces; `finish_reason` `stop` for its `tool_use` stop |
//! | `message_delta` with `stop_reason` | `delta: {}` with `finish_reason` (7.3), once |
//! | `message_stop` | a `stop` finish chunk if none was sent, the usage chunk (`choices: []`) if asked for, `[DONE]` |
//! | `error` | one `data: {"error":{…}}` event (type `upstream_error`, code = Anthropic's error type); the end |
//! | `ping`, thinking and signature deltas, `content_block_stop`, other blocks, unknown types, comments, data that is not JSON | nothing |
//!
//! Every chunk has `id`, `created` and `model` from `message_start` (the
//! same on every chunk) and, when the client asked for usage, `"usage":
//! null`, as OpenAI sends them. The chunk's fixed head is encoded once per
//! stream; per event only the delta is written.
//!
//! A stream that ends without `message_stop` or `error` was cut:
//! [`StreamTranslator::finished`] stays false and the caller reports it.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;

use super::error::ErrorDetail;
use super::response::AnthropicUsage;
use super::structured::{finish_reason, ANSWER_TOOL};
use crate::json::push_json_string;
use crate::openai::ErrorBody;
use crate::providers::completion::unix_now;
use crate::sse::Event;

/// Turns an Anthropic SSE stream into OpenAI `chat.completion.chunk` SSE events, event by event.
#[derive(Debug)]
pub struct StreamTranslator {
    include_usage: bool,
    /// Emit the usage chunk even when the client did not ask (see
    /// [`StreamTranslator::with_usage_chunk`]).
    usage_chunk: bool,
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,`,
    /// encoded at `message_start` (or at the first chunk, if an upstream
    /// skips it).
    head: Vec<u8>,
    usage: AnthropicUsage,
    /// Tool blocks started so far: the next one's OpenAI `index`.
    tools: u32,
    /// The open tool block: Anthropic's block `index`, and what it is.
    open_tool: Option<(u64, OpenTool)>,
    /// The answer tool of a `response_format` was called (structured.rs).
    answered: bool,
    finish_sent: bool,
    finished: bool,
}

impl StreamTranslator {
    /// `include_usage`: the client asked `stream_options.include_usage` -> emit the final usage chunk (`choices: []`).
    pub fn new(include_usage: bool) -> StreamTranslator {
        StreamTranslator {
            include_usage,
            usage_chunk: include_usage,
            head: Vec::new(),
            usage: AnthropicUsage::default(),
            tools: 0,
            open_tool: None,
            answered: false,
            finish_sent: false,
            finished: false,
        }
    }

    /// One parsed SSE event of the Anthropic stream; appends zero or more
    /// complete OpenAI SSE events (`data: {...}\n\n`, and `data: [DONE]\n\n`
    /// at `message_stop`) to `out`.
    pub fn event(&mut self, event: &Event<'_>, out: &mut Vec<Bytes>) {
        if self.finished || !event.has_data {
            return;
        }
        let wire = serde_json::from_slice::<Wire<'_>>(&event.data).ok();
        // The data's `type` names the event; the `event:` line is the fallback.
        let kind = match (&wire, event.event) {
            (
                Some(Wire {
                    kind: Some(kind), ..
                }),
                _,
            ) => Kind::of(kind),
            (_, Some(name)) => Kind::of(name),
            _ => return,
        };
        if kind == Kind::Error {
            return self.error(wire.and_then(|w| w.error), out);
        }
        let Some(wire) = wire else { return };
        match kind {
            Kind::MessageStart => self.start(wire.message, out),
            Kind::BlockStart => self.block_start(wire.index, wire.content_block, out),
            Kind::BlockDelta => self.block_delta(wire.index, wire.delta, out),
            Kind::BlockStop => {
                if self
                    .open_tool
                    .is_some_and(|(index, _)| Some(index) == wire.index)
                {
                    self.open_tool = None;
                }
            }
            Kind::MessageDelta => {
                if let Some(usage) = wire.usage {
                    self.usage.update(usage);
                }
                if let Some(stop) = wire.delta.and_then(|d| d.stop_reason) {
                    self.finish(Some(&stop), out);
                }
            }
            Kind::MessageStop => self.stop(out),
            Kind::Error | Kind::Other => {}
        }
    }

    /// Also ends with the usage chunk when the client did not ask for it
    /// (the chunks then carry no `"usage": null`), so the router can count
    /// the tokens and remove that chunk before the client sees it.
    pub fn with_usage_chunk(mut self) -> StreamTranslator {
        self.usage_chunk = true;
        self
    }

    /// True once `message_stop` or an `error` event was translated (nothing more should be relayed).
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn start(&mut self, message: Option<StartMessage<'_>>, out: &mut Vec<Bytes>) {
        if !self.head.is_empty() {
            return;
        }
        let (id, model) = match &message {
            Some(m) => (&*m.id, &*m.model),
            None => ("", ""),
        };
        self.encode_head(id, model);
        if let Some(usage) = message.and_then(|m| m.usage) {
            self.usage.update(usage);
        }
        out.push(self.chunk(br#"{"role":"assistant","content":""}"#, None));
    }

    fn block_start(
        &mut self,
        index: Option<u64>,
        block: Option<StartBlock<'_>>,
        out: &mut Vec<Bytes>,
    ) {
        let Some(block) = block else { return };
        match &*block.kind {
            "text" => {
                if let Some(text) = block.text.filter(|t| !t.is_empty()) {
                    self.content(&text, out);
                }
            }
            "tool_use" if block.name.as_deref() == Some(ANSWER_TOOL) => {
                // Its input arrives as content.
                self.answered = true;
                self.open_tool = index.map(|index| (index, OpenTool::Answer));
            }
            "tool_use" => {
                let k = self.tools;
                self.tools += 1;
                self.open_tool = index.map(|index| (index, OpenTool::Call(k)));
                let mut delta = Vec::with_capacity(128);
                delta.extend_from_slice(br#"{"tool_calls":[{"index":"#);
                delta.extend_from_slice(k.to_string().as_bytes());
                delta.extend_from_slice(br#","id":"#);
                push_json_string(&mut delta, block.id.as_deref().unwrap_or_default());
                delta.extend_from_slice(br#","type":"function","function":{"name":"#);
                push_json_string(&mut delta, block.name.as_deref().unwrap_or_default());
                delta.extend_from_slice(br#","arguments":""}}]}"#);
                out.push(self.chunk(&delta, None));
            }
            // thinking, redacted_thinking, server tool blocks, new kinds.
            _ => {}
        }
    }

    fn block_delta(
        &mut self,
        index: Option<u64>,
        delta: Option<WireDelta<'_>>,
        out: &mut Vec<Bytes>,
    ) {
        let Some(delta) = delta else { return };
        match delta.kind.as_deref() {
            Some("text_delta") => {
                if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
                    self.content(&text, out);
                }
            }
            Some("input_json_delta") => {
                let Some((_, open)) = self.open_tool.filter(|(open, _)| Some(*open) == index)
                else {
                    return;
                };
                let Some(json) = delta.partial_json.filter(|j| !j.is_empty()) else {
                    return;
                };
                let OpenTool::Call(k) = open else {
                    return self.content(&json, out);
                };
                let mut bytes = Vec::with_capacity(json.len() + 64);
                bytes.extend_from_slice(br#"{"tool_calls":[{"index":"#);
                bytes.extend_from_slice(k.to_string().as_bytes());
                bytes.extend_from_slice(br#","function":{"arguments":"#);
                push_json_string(&mut bytes, &json);
                bytes.extend_from_slice(b"}}]}");
                out.push(self.chunk(&bytes, None));
            }
            // thinking_delta, signature_delta, citations_delta, new kinds.
            _ => {}
        }
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

    fn stop(&mut self, out: &mut Vec<Bytes>) {
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

    fn error(&mut self, detail: Option<ErrorDetail<'_>>, out: &mut Vec<Bytes>) {
        let kind = detail
            .as_ref()
            .and_then(|d| d.kind.as_deref())
            .filter(|k| !k.is_empty());
        let message = detail
            .as_ref()
            .and_then(|d| d.message.as_deref())
            .filter(|m| !m.is_empty());
        let generic;
        let message = match message {
            Some(message) => message,
            None => {
                generic = format!(
                    "The Anthropic upstream's stream failed ({}).",
                    kind.unwrap_or("no error type given")
                );
                &generic
            }
        };
        out.push(
            ErrorBody {
                message,
                kind: "upstream_error",
                param: None,
                code: kind.unwrap_or("api_error"),
            }
            .to_event(),
        );
        self.finished = true;
    }

    fn encode_head(&mut self, id: &str, model: &str) {
        let mut head = Vec::with_capacity(id.len() + model.len() + 80);
        head.extend_from_slice(br#"{"id":"#);
        push_json_string(&mut head, id);
        head.extend_from_slice(br#","object":"chat.completion.chunk","created":"#);
        head.extend_from_slice(unix_now().to_string().as_bytes());
        head.extend_from_slice(br#","model":"#);
        push_json_string(&mut head, model);
        head.push(b',');
        self.head = head;
    }

    /// `data: ` and the chunk's head, with room for a typical delta.
    fn begin(&mut self) -> Vec<u8> {
        if self.head.is_empty() {
            self.encode_head("", "");
        }
        let mut data = Vec::with_capacity(self.head.len() + 160);
        data.extend_from_slice(b"data: ");
        data.extend_from_slice(&self.head);
        data
    }

    /// One complete chunk event with `delta` (JSON) and `finish_reason`.
    fn chunk(&mut self, delta: &[u8], finish: Option<&str>) -> Bytes {
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

/// An open `tool_use` block: a tool call with its OpenAI `index`, or the
/// answer tool, whose input is the message's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenTool {
    Call(u32),
    Answer,
}

/// The Anthropic event types translated; `Other` is `ping` and types added later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MessageStart,
    BlockStart,
    BlockDelta,
    BlockStop,
    MessageDelta,
    MessageStop,
    Error,
    Other,
}

impl Kind {
    fn of(name: &str) -> Kind {
        match name {
            "message_start" => Kind::MessageStart,
            "content_block_start" => Kind::BlockStart,
            "content_block_delta" => Kind::BlockDelta,
            "content_block_stop" => Kind::BlockStop,
            "message_delta" => Kind::MessageDelta,
            "message_stop" => Kind::MessageStop,
            "error" => Kind::Error,
            _ => Kind::Other,
        }
    }
}

/// Every field any Anthropic stream event carries; each event uses a few.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<StartMessage<'a>>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    content_block: Option<StartBlock<'a>>,
    #[serde(borrow, default)]
    delta: Option<WireDelta<'a>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
    #[serde(borrow, default)]
    error: Option<ErrorDetail<'a>>,
}

/// `message_start.message`.
#[derive(Deserialize)]
struct StartMessage<'a> {
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// `content_block_start.content_block`.
#[derive(Deserialize)]
struct StartBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// `content_block_delta.delta` and `message_delta.delta`.
#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}
