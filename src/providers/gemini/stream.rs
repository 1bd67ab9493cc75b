//! Gemini's SSE stream (`:streamGenerateContent?alt=sse`) → OpenAI
//! `chat.completion.chunk` events, one upstream event at a time.
//!
//! Each Gemini event's `data:` is one whole `GenerateContentResponse`
//! holding what is new since the last: text pieces, whole function calls,
//! and on the last one the `finishReason`; `usageMetadata` is cumulative.
//!
//! | Gemini event | OpenAI events |
//! |---|---|
//! | the first event of candidate i | `delta: {"role":"assistant","content":""}` for choice i |
//! | a `text` part (not `thought: true`) | `delta.content` (empty text: nothing) |
//! | a `functionCall` part | `delta.tool_calls[{index: k, id, type: "function", function: {name, arguments}}]` with the whole arguments, k counting the candidate's calls from 0; the id carries the call's thought signature (`ids.rs`) |
//! | `finishReason` | `delta: {}` with `finish_reason`, once per candidate; for a filter's reason a `delta: {"refusal": …}` chunk first |
//! | `promptFeedback.blockReason` without candidates | choice 0: the role chunk, a `refusal` chunk, `finish_reason: "content_filter"` |
//! | `usageMetadata` | kept (the last wins) for the usage chunk |
//! | `{"error": {…}}` | one `data: {"error":{…}}` event (type `upstream_error`, code = Gemini's `status`); the end, no `[DONE]` |
//! | `thought` parts, other part kinds, comments, data that is not JSON | nothing |
//!
//! Gemini's stream has no terminator: the body just ends. So
//! [`StreamTranslator::end`] is told when it ended cleanly; if a
//! `finishReason` (or a blocked prompt) was seen it writes what is owed — a
//! `stop` finish chunk for each started choice without one, the usage
//! chunk (`choices: []`) when asked for, `data: [DONE]` — and the stream is
//! finished. Without one the stream was cut: nothing is written and
//! [`StreamTranslator::finished`] stays false, for the caller to report.
//!
//! Every chunk has `id` (`chatcmpl-` + `responseId`), `created` and `model`
//! (`modelVersion`, else the upstream model name) from the first event that
//! yields a chunk, and, when the client asked for usage, `"usage": null`, as
//! OpenAI sends them. The chunk's fixed head is encoded once per stream.

use bytes::Bytes;

use super::error::{Envelope, ErrorDetail};
use super::ids::{response_tag, tool_call_id};
use super::response::{
    answer_refusal, completion_id, finish_reason, model_name, prompt_refusal, GeminiUsage,
    Response, MAX_CHOICES,
};
use crate::json::push_json_string;
use crate::openai::ErrorBody;
use crate::providers::completion::unix_now;
use crate::sse::Event;
use crate::text::prefix_within;

/// Longest upstream model name kept for the chunks, in bytes.
const MAX_MODEL_BYTES: usize = 256;

/// Turns a Gemini SSE stream into OpenAI `chat.completion.chunk` SSE events, event by event.
#[derive(Debug)]
pub struct StreamTranslator {
    include_usage: bool,
    /// Emit the usage chunk even when the client did not ask (see
    /// [`StreamTranslator::with_usage_chunk`]).
    usage_chunk: bool,
    /// The upstream model name, for chunks when Gemini sends no `modelVersion`.
    model: String,
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,`,
    /// encoded at the first chunk.
    head: Vec<u8>,
    /// The tool-call id tag of this answer (`ids.rs`), from the first event.
    tag: Option<String>,
    usage: GeminiUsage,
    /// Per candidate index: what was sent for its choice.
    choices: [ChoiceState; MAX_CHOICES],
    /// A `finishReason` or a blocked prompt was seen: the answer is whole.
    finish_seen: bool,
    finished: bool,
}

/// What was sent for one choice.
#[derive(Debug, Clone, Copy, Default)]
struct ChoiceState {
    started: bool,
    /// Function calls so far: the next one's OpenAI `index`.
    tools: u32,
    finish_sent: bool,
}

impl StreamTranslator {
    /// `include_usage`: the client asked `stream_options.include_usage` -> emit the final usage chunk (`choices: []`).
    /// `model`: the upstream model name, reported when Gemini gives no `modelVersion`.
    pub fn new(include_usage: bool, model: &str) -> StreamTranslator {
        StreamTranslator {
            include_usage,
            usage_chunk: include_usage,
            model: prefix_within(model, MAX_MODEL_BYTES).to_owned(),
            head: Vec::new(),
            tag: None,
            usage: GeminiUsage::default(),
            choices: [ChoiceState::default(); MAX_CHOICES],
            finish_seen: false,
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

    /// True once the stream ended cleanly ([`StreamTranslator::end`] after a
    /// `finishReason`) or an error event was translated (nothing more
    /// should be relayed).
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// One parsed SSE event of the Gemini stream; appends zero or more
    /// complete OpenAI SSE events (`data: {...}\n\n`) to `out`.
    pub fn event(&mut self, event: &Event<'_>, out: &mut Vec<Bytes>) {
        if self.finished || !event.has_data {
            return;
        }
        let data: &[u8] = &event.data;
        if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return;
        }
        let Ok(response) = serde_json::from_slice::<Response<'_>>(data) else {
            return;
        };
        if response.error.is_some() {
            let detail = serde_json::from_slice::<Envelope<'_>>(data)
                .ok()
                .and_then(|e| e.error);
            return self.error(detail, out);
        }
        if let Some(usage) = response.usage_metadata {
            self.usage = usage;
        }
        if self.tag.is_none() {
            self.tag = Some(response_tag(
                response.response_id.as_deref().unwrap_or_default(),
            ));
        }
        let candidates = response.candidates.as_deref().unwrap_or_default();
        for (position, candidate) in candidates.iter().enumerate() {
            let index = candidate.index.map_or(position, |i| i as usize);
            if index >= MAX_CHOICES || self.choices[index].finish_sent {
                continue;
            }
            self.start(index, &response, out);
            for part in candidate.parts() {
                if part.thought == Some(true) {
                    continue;
                }
                if let Some(call) = &part.function_call {
                    let k = self.choices[index].tools;
                    self.choices[index].tools = k.saturating_add(1);
                    let id = tool_call_id(
                        k,
                        self.tag.as_deref().unwrap_or_default(),
                        call.id.as_deref(),
                        part.thought_signature.as_deref(),
                    );
                    let arguments = call.arguments();
                    let mut delta = Vec::with_capacity(id.len() + arguments.len() + 128);
                    delta.extend_from_slice(br#"{"tool_calls":[{"index":"#);
                    delta.extend_from_slice(k.to_string().as_bytes());
                    delta.extend_from_slice(br#","id":"#);
                    push_json_string(&mut delta, &id);
                    delta.extend_from_slice(br#","type":"function","function":{"name":"#);
                    push_json_string(&mut delta, call.name.as_deref().unwrap_or_default());
                    delta.extend_from_slice(br#","arguments":"#);
                    push_json_string(&mut delta, arguments);
                    delta.extend_from_slice(b"}}]}");
                    out.push(self.chunk(index, &delta, None));
                } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    let mut delta = Vec::with_capacity(text.len() + 16);
                    delta.extend_from_slice(br#"{"content":"#);
                    push_json_string(&mut delta, text);
                    delta.push(b'}');
                    out.push(self.chunk(index, &delta, None));
                }
            }
            if let Some(reason) = candidate.finish_reason.as_deref() {
                self.finish_seen = true;
                let finish = finish_reason(Some(reason), self.choices[index].tools > 0);
                if finish == "content_filter" {
                    self.refusal(index, &answer_refusal(reason), out);
                }
                self.finish(index, finish, out);
            }
        }
        if candidates.is_empty() {
            if let Some(reason) = response
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_deref())
            {
                if !self.choices[0].finish_sent {
                    self.finish_seen = true;
                    self.start(0, &response, out);
                    self.refusal(0, &prompt_refusal(reason), out);
                    self.finish(0, "content_filter", out);
                }
            }
        }
    }

    /// The upstream body ended cleanly. After a `finishReason`: the finish
    /// chunks still owed, the usage chunk if asked for, `[DONE]`, and the
    /// stream is finished. Without one: nothing (the stream was cut).
    pub fn end(&mut self, out: &mut Vec<Bytes>) {
        if self.finished || !self.finish_seen {
            return;
        }
        for index in 0..MAX_CHOICES {
            let state = self.choices[index];
            if state.started && !state.finish_sent {
                let finish = if state.tools > 0 {
                    "tool_calls"
                } else {
                    "stop"
                };
                self.finish(index, finish, out);
            }
        }
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

    /// The role chunk of choice `index`, the first time it appears.
    fn start(&mut self, index: usize, response: &Response<'_>, out: &mut Vec<Bytes>) {
        if self.head.is_empty() {
            self.encode_head(
                response.response_id.as_deref(),
                response.model_version.as_deref(),
            );
        }
        if self.choices[index].started {
            return;
        }
        self.choices[index].started = true;
        out.push(self.chunk(index, br#"{"role":"assistant","content":""}"#, None));
    }

    fn refusal(&mut self, index: usize, refusal: &str, out: &mut Vec<Bytes>) {
        let mut delta = Vec::with_capacity(refusal.len() + 16);
        delta.extend_from_slice(br#"{"refusal":"#);
        push_json_string(&mut delta, refusal);
        delta.push(b'}');
        out.push(self.chunk(index, &delta, None));
    }

    fn finish(&mut self, index: usize, reason: &str, out: &mut Vec<Bytes>) {
        if self.choices[index].finish_sent {
            return;
        }
        self.choices[index].finish_sent = true;
        out.push(self.chunk(index, b"{}", Some(reason)));
    }

    fn error(&mut self, detail: Option<ErrorDetail<'_>>, out: &mut Vec<Bytes>) {
        let code = detail.as_ref().and_then(ErrorDetail::code);
        let message = detail
            .as_ref()
            .and_then(|d| d.message.as_deref())
            .filter(|m| !m.is_empty());
        let generic;
        let message = match message {
            Some(message) => message,
            None => {
                generic = format!(
                    "The Gemini upstream's stream failed ({}).",
                    code.unwrap_or("no error status given")
                );
                &generic
            }
        };
        out.push(
            ErrorBody {
                message,
                kind: "upstream_error",
                param: None,
                code: code.unwrap_or("INTERNAL"),
            }
            .to_event(),
        );
        self.finished = true;
    }

    fn encode_head(&mut self, response_id: Option<&str>, model_version: Option<&str>) {
        let id = completion_id(response_id);
        let model = model_name(model_version, &self.model);
        let mut head = Vec::with_capacity(id.len() + model.len() + 80);
        head.extend_from_slice(br#"{"id":"#);
        push_json_string(&mut head, &id);
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
            self.encode_head(None, None);
        }
        let mut data = Vec::with_capacity(self.head.len() + 160);
        data.extend_from_slice(b"data: ");
        data.extend_from_slice(&self.head);
        data
    }

    /// One complete chunk event for choice `index` with `delta` (JSON) and `finish_reason`.
    fn chunk(&mut self, index: usize, delta: &[u8], finish: Option<&str>) -> Bytes {
        let mut data = self.begin();
        data.extend_from_slice(br#""choices":[{"index":"#);
        data.extend_from_slice(index.to_string().as_bytes());
        data.extend_from_slice(br#","delta":"#);
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
