//! Anthropic's Messages API as a front door: an Anthropic request
//! (`POST /v1/messages`) for a target that speaks OpenAI's chat
//! completions, and the OpenAI answer back as an Anthropic message or
//! Anthropic's SSE events. Bytes in, bytes out, no network and no runtime.
//! The opposite of the rest of `providers::anthropic`, whose conventions it
//! keeps (borrowed parsing, schemas and tool inputs as written, no panics,
//! nothing unbounded).
//!
//! - [`peek`]: the client's `model` and `stream`, read once.
//! - [`request_to_openai`]: Messages request → chat-completions body
//!   (`request.rs`); what cannot be expressed is a
//!   [`RequestError`](crate::providers::RequestError) (400).
//! - [`response_from_openai`]: `chat.completion` → `message` (`response.rs`).
//! - [`MessageStream`]: `chat.completion.chunk` events → Anthropic events,
//!   one upstream event at a time (`stream.rs`).
//! - [`error_from_openai`], [`error_body`], [`error_type`]: Anthropic's
//!   error envelope (`error.rs`).
//! - [`estimate_input_tokens`]: `count_tokens` for a target that cannot
//!   count, a labelled heuristic (`count.rs`).
//!
//! # Request: Anthropic → OpenAI
//!
//! | Anthropic field | OpenAI body |
//! |---|---|
//! | `model` | `model`, as written (the router splices the upstream's) |
//! | `system` (string, or `text` blocks) | a leading `system` message: the texts joined with `"\n\n"`; `cache_control` dropped; another block type → 400 |
//! | `messages` | the messages below |
//! | `max_tokens` | `max_tokens` (accepted by OpenAI's non-reasoning models, vLLM, Ollama, llama.cpp, LM Studio; `max_completion_tokens` is not); 0 → 400; absent → absent |
//! | `temperature`, `top_p` | the same, as written; outside 0–1 → 400 |
//! | `top_k` | dropped (OpenAI refuses unknown sampling fields) |
//! | `stop_sequences` | `stop` (array; absent when empty) |
//! | `stream` | `stream`, and `stream_options: {"include_usage": true}` when true |
//! | `metadata.user_id` | `user` |
//! | `tools[]` (client tools: no `type`, or `custom`) | `{"type":"function","function":{name, description, parameters: input_schema as written, strict: true if given}}`; no `input_schema` → `{"type":"object","properties":{}}`; `cache_control` dropped |
//! | `tools[]` server tools (`web_search_…`, `bash_…`, `text_editor_…`, `computer_…`, …) | 400 naming `tools` |
//! | `tool_choice` | `auto` → `"auto"`, `any` → `"required"`, `none` → `"none"`, `tool` → `{"type":"function","function":{"name"}}`; without `tools`: `auto`/`none` dropped, others 400 |
//! | `tool_choice.disable_parallel_tool_use: true` | `parallel_tool_calls: false` (with tools) |
//! | `output_format`, `output_config.format` (`json_schema`) | `response_format: {"type":"json_schema","json_schema":{"name":"output","schema":…,"strict":true}}` |
//! | `thinking`, `output_config.effort` | dropped: see "Decisions" |
//! | `service_tier`, `context_management`, `inference_geo`, any other field | dropped |
//! | `container`; non-empty `mcp_servers` | 400 (they exist only on Anthropic's side) |
//!
//! Messages (only `user` and `assistant`; another role → 400):
//!
//! - A string `content` stays a string.
//! - user `text` blocks → text; a turn of text only → one string (texts
//!   joined with `"\n\n"`), else content parts; `image` →
//!   `{"type":"image_url","image_url":{"url"}}` with a
//!   `data:{media_type};base64,{data}` URI or the `url` (a `file` source →
//!   400); `document` with a `text` source → its text (title, context,
//!   citations dropped); other documents → 400.
//! - user `tool_result` → a `tool` message each (`tool_call_id` =
//!   `tool_use_id`; content: the string, or the text blocks joined with
//!   `"\n\n"`), placed before the rest of that turn, which follows as one
//!   user message. `is_error: true` → the text is prefixed with `Error: `.
//!   Images in a tool result (tool messages hold text only) are moved to the
//!   start of that following user message, and the tool's text says
//!   `[image: see the next user message]`.
//! - assistant `text` → `content` (joined with `"\n\n"`; `null` when the
//!   turn is only tool calls); `tool_use` → `tool_calls[{id, type:
//!   "function", function: {name, arguments: input as written}}]`;
//!   `thinking` and `redacted_thinking` → dropped (Anthropic's signed
//!   reasoning means nothing to another model); an assistant turn left empty
//!   is dropped.
//! - Any other block (`server_tool_use`, `web_search_tool_result`,
//!   `search_result`, `container_upload`, …) → 400 naming `messages`.
//!
//! # Answer: OpenAI → Anthropic
//!
//! `id` = `msg_` + OpenAI's id (or a generated one), `type: "message"`,
//! `role: "assistant"`, `model` = what the client asked. `content`: a
//! `thinking` block (`signature: ""`) for `reasoning_content` or `reasoning`,
//! then a `text` block when the text is not empty (a `refusal` when there is
//! no text), then a `tool_use` block per tool call (`input` = `arguments`
//! as written when it is a JSON object, `{}` when empty, else
//! `{"_raw": "<arguments>"}`). Only choice 0 is read.
//!
//! | OpenAI `finish_reason` | Anthropic `stop_reason` |
//! |---|---|
//! | `stop` | `end_turn`; `stop_sequence` (with `stop_sequence` set) when vLLM's `stop_reason` names the stop string |
//! | `length` | `max_tokens` |
//! | `tool_calls` (or `function_call`) | `tool_use` |
//! | `content_filter` | `refusal` |
//! | `stop`, null or other with tool calls | `tool_use` (Ollama and others say `stop`) |
//! | `stop`, null or other with a refusal | `refusal` |
//! | null or other | `end_turn` |
//!
//! `usage`: `input_tokens` = `prompt_tokens` − `cached_tokens`,
//! `cache_creation_input_tokens` = 0, `cache_read_input_tokens` =
//! `prompt_tokens_details.cached_tokens`, `output_tokens` =
//! `completion_tokens` (missing counts are 0).
//!
//! # Stream: event by event
//!
//! | OpenAI event | Anthropic events |
//! |---|---|
//! | the first chunk | `message_start` (empty `content`; usage 0 unless the chunk carries it), `ping` |
//! | `delta.reasoning_content` / `delta.reasoning` | a `thinking` block (`content_block_start` with `signature: ""`) and `thinking_delta`s |
//! | `delta.content` (and `delta.refusal`) | a `text` block and `text_delta`s |
//! | `delta.tool_calls[k]`, first piece | `content_block_start` `tool_use` `{id, name, input: {}}` |
//! | `delta.tool_calls[k].function.arguments` | `input_json_delta` `partial_json` |
//! | `finish_reason` | remembered (the table above) |
//! | the usage chunk (`choices: []`) | remembered |
//! | `[DONE]`, or [`MessageStream::end`] | `content_block_stop`, `message_delta` `{stop_reason, stop_sequence}` with the usage, `message_stop` |
//! | `data: {"error": …}` (or `event: error`) | `event: error` with Anthropic's envelope; the end |
//! | empty deltas, other choices, comments, data that is not JSON | nothing |
//!
//! A block of another kind (or a new tool call) first closes the open one
//! with `content_block_stop`; block `index` counts from 0. A delta for a
//! tool call whose block was already closed is dropped (Anthropic blocks
//! cannot reopen; no known server interleaves calls). A new `id` starts a
//! new call when the `index` is left out or repeated.
//!
//! # Decisions where the protocols differ
//!
//! - **Thinking.** `thinking` is dropped rather than sent as
//!   `reasoning_effort`, which OpenAI refuses for non-reasoning models; a
//!   reasoning model thinks as it is configured. Reasoning the target
//!   streams anyway becomes `thinking` blocks with an empty `signature`
//!   (Anthropic would refuse to verify one; this door drops thinking blocks
//!   sent back).
//! - **`max_tokens`** becomes `max_tokens`, which every OpenAI-compatible
//!   server reads; OpenAI's reasoning models want `max_completion_tokens`
//!   and refuse it.
//! - **`top_k`** is dropped: OpenAI has none and refuses unknown fields.
//! - **Stop sequences.** OpenAI does not say which one stopped the answer;
//!   vLLM does (`stop_reason`), and only then is `stop_sequence` reported.

mod count;
mod error;
mod request;
mod response;
mod stream;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use count::{
    estimate_input_tokens, CHARS_PER_TOKEN, REPLY_PRIMING_TOKENS, TOKENS_PER_IMAGE,
    TOKENS_PER_MESSAGE,
};
pub use error::{error_body, error_from_openai, error_type, MAX_MESSAGE_BYTES};
pub use request::request_to_openai;
pub use response::response_from_openai;
pub use stream::MessageStream;

/// What the client asked, read once (for the wiring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// The request's `model`.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
}

/// The client's `model` and `stream` flag; `None` if the body is not a JSON
/// object with a string `model`. Every other member is skipped unread.
pub fn peek(body: &[u8]) -> Option<Peek> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        model: Option<Cow<'a, str>>,
        #[serde(borrow)]
        stream: Option<&'a RawValue>,
    }
    if !is_object(body) {
        return None;
    }
    let head: Head<'_> = serde_json::from_slice(body).ok()?;
    Some(Peek {
        model: head.model?.into_owned(),
        stream: head.stream.is_some_and(|s| s.get() == "true"),
    })
}

/// Whether `json` starts (after whitespace) as an object: serde reads a
/// struct from an array too, and every body and event here is an object.
fn is_object(json: &[u8]) -> bool {
    crate::json::skip_ws(json).first() == Some(&b'{')
}

#[cfg(test)]
mod tests;
