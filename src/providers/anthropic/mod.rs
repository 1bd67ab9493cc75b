//! Translation between OpenAI Chat Completions and Anthropic's Messages API:
//! bytes in, bytes out, no network and no runtime.
//!
//! `forward` calls these per attempt for an Anthropic upstream:
//!
//! - [`translate_request`]: the client's chat-completions body → a Messages
//!   body (`request.rs`; `messages` in `messages.rs`, tools in `tools.rs`,
//!   `response_format` in `structured.rs`). A request that cannot be expressed is a
//!   [`RequestError`], answered to the client as a 400.
//! - [`translate_response`]: a 2xx Messages answer → a `chat.completion`
//!   body (`response.rs`).
//! - [`StreamTranslator`]: Anthropic's SSE events → `chat.completion.chunk`
//!   events, one event at a time (`stream.rs`).
//! - [`translate_error`]: an Anthropic error answer → the OpenAI error body
//!   (`error.rs`).
//!
//! Only the body changes here. The URL (`/v1/messages`), the `x-api-key` and
//! `anthropic-version` headers, and the status of an error answer (e.g. 529
//! `overloaded_error` → 503) are the caller's.
//!
//! # Request mapping
//!
//! Every field of OpenAI's chat-completions request, and what the Anthropic
//! body gets for it. "Dropped" means it has no Anthropic meaning and is left
//! out without changing what the model is asked; "400" means the request
//! asks for something an Anthropic upstream cannot do, so it is refused with
//! a [`RequestError`] naming the field (`param`) rather than answered
//! differently than asked. A `null` value is the same as an absent field.
//!
//! | OpenAI field | Anthropic body |
//! |---|---|
//! | `model` | `model` = the upstream model name the caller passes |
//! | `messages` | `system` and `messages`, below |
//! | `max_completion_tokens`, else `max_tokens` | `max_tokens` (required there); neither → [`Options::default_max_tokens`]; 0 or not an integer → 400 |
//! | `temperature` | `temperature`; 0–1 as is, above 1 (OpenAI allows up to 2) → `1.0`, outside 0–2 → 400 |
//! | `top_p` | `top_p` |
//! | `stop` (string or array) | `stop_sequences` (array) |
//! | `stream` | `stream` (only when `true`) |
//! | `stream_options` | dropped (`include_usage` goes to [`StreamTranslator::new`]) |
//! | `tools[]` (`type: "function"`) | `tools[]`: `{name, description, input_schema}`; `input_schema` = `parameters` as written, or `{"type":"object","properties":{}}`; `strict` dropped; another tool type, or the reserved name `switchyard_json_answer` → 400 |
//! | `tool_choice` | `auto` → `{"type":"auto"}`, `required` → `{"type":"any"}`, `none` → `{"type":"none"}`, `{"type":"function","function":{"name":N}}` → `{"type":"tool","name":N}`; `allowed_tools`/`custom` → 400; without `tools`, `auto`/`none` are dropped and the others → 400 |
//! | `parallel_tool_calls: false` | `disable_parallel_tool_use: true` in `tool_choice` (`{"type":"auto"}` when none was given; not with `none`) |
//! | `user`, else `safety_identifier` | `metadata.user_id` |
//! | `response_format` | `text` dropped; `json_schema` and `json_object` → a forced answer tool (see below); a schema whose root `type` is not `object` → 400 |
//! | `n` | 1 dropped; anything else → 400 |
//! | `logprobs`, `top_logprobs` | `false` / 0 dropped; asking for them → 400 |
//! | `audio` | 400 (no audio output) |
//! | `web_search_options` | 400 (no search without Anthropic's server tools) |
//! | `functions`, `function_call` | 400 (deprecated; use `tools`) |
//! | `reasoning_effort` | dropped (see below) |
//! | `presence_penalty`, `frequency_penalty`, `logit_bias`, `seed`, `service_tier`, `store`, `metadata`, `modalities`, `prediction`, `verbosity`, `prompt_cache_key`, `prompt_cache_retention` | dropped |
//! | any other field | dropped |
//!
//! Messages:
//!
//! - `system` and `developer` messages, wherever they stand, become the
//!   top-level `system` string: their texts (a string, or each text part) in
//!   order, joined with `"\n\n"`. Another part type there → 400.
//! - `user` → a user turn: `text` parts → text blocks; `image_url` parts →
//!   image blocks, `{"type":"base64","media_type","data"}` for a
//!   `data:<type>;base64,` URI and `{"type":"url","url"}` for an http(s) URL
//!   (`detail` dropped; any other URL → 400); `input_audio`, `file` and other
//!   parts → 400.
//! - `assistant` → an assistant turn: `text` and `refusal` parts → text
//!   blocks; `tool_calls` → `tool_use` blocks with `input` = the parsed
//!   `arguments` (`""` reads as `{}`; not JSON, or not a JSON object → 400);
//!   a `function_call` → 400.
//! - `tool` → a `tool_result` block in a user turn (`tool_use_id` =
//!   `tool_call_id`, required; `content` a string or text/image blocks).
//! - `function` (deprecated) and unknown roles → 400. `name` is dropped.
//! - Empty texts are dropped (Anthropic refuses empty text blocks), and a
//!   message left with no content is dropped.
//! - Consecutive turns of the same role (after mapping, so `tool` messages
//!   and a following `user` message) merge into one turn whose blocks are
//!   concatenated; in a user turn the `tool_result` blocks are moved first,
//!   in order, as Anthropic requires.
//! - A turn that is a single text block is sent as a string, else as blocks.
//!
//! # Decisions
//!
//! - **Temperature.** Anthropic's range is 0–1, OpenAI's 0–2. Values up to 1
//!   pass unchanged, so a client tuned on either API gets what it asked;
//!   values above 1 (already "very random" on OpenAI) are clamped to 1.0, the
//!   most random Anthropic allows, rather than refused, so a fallback from an
//!   OpenAI model keeps working. Scaling (`t / 2`) would change every common
//!   value and is not done.
//! - **Thinking.** `reasoning_effort` is dropped: enabling Anthropic's
//!   extended thinking is not a simple mapping (its budget must stay below
//!   `max_tokens`, it forbids `temperature`/`top_p` changes and forced tool
//!   choice, and tool loops must send the signed thinking blocks back, which
//!   OpenAI clients never do). Since it is never enabled, `thinking` and
//!   `redacted_thinking` blocks and `thinking_delta`/`signature_delta` events
//!   are dropped if an upstream sends them anyway.
//! - **Structured output.** Anthropic has no JSON mode without a beta
//!   header, so `response_format` `json_schema` (and `json_object`, as the
//!   schema `{"type":"object"}`) becomes one more tool, named
//!   `switchyard_json_answer`, whose `input_schema` is the client's schema
//!   as written and which `tool_choice` forces (or, next to client tools,
//!   `{"type":"any"}`: call a tool or answer). The answer translators turn a
//!   call of that tool back into the message's `content` (the JSON text,
//!   streamed as `delta.content`) with `finish_reason` `stop`, knowing it by
//!   its name alone, so the API stays stateless; a client tool of that name
//!   is refused. `structured.rs` has the details. The model is asked to
//!   follow the schema, but unlike OpenAI's `strict` mode nothing
//!   guarantees that it does.
//!
//! # Response mapping
//!
//! `id` and `model` are Anthropic's (`msg_…`), `created` is now. One choice:
//! `content` is the text blocks concatenated (`null` when the answer is only
//! tool calls), `tool_calls` come from `tool_use` blocks (`arguments` = the
//! `input` JSON as sent), other blocks are dropped. `finish_reason` per
//! PROTOCOLS.md 7.3: `end_turn`, `stop_sequence`, `pause_turn` → `stop`;
//! `max_tokens`, `model_context_window_exceeded` → `length`; `tool_use` →
//! `tool_calls`; `refusal` → `content_filter`; anything else → `stop`.
//! `usage`: `prompt_tokens` is the sum of `input_tokens`,
//! `cache_creation_input_tokens` and `cache_read_input_tokens` (Anthropic's
//! `input_tokens` excludes both), `completion_tokens` = `output_tokens`,
//! `prompt_tokens_details.cached_tokens` = `cache_read_input_tokens`. The
//! stream ([`StreamTranslator`]) follows the same rules event by event.

mod address;
mod error;
mod messages;
mod request;
mod response;
mod stream;
mod structured;
mod tools;

pub use address::Anthropic;
pub use error::translate_error;
pub use request::{translate_request, RequestError};
pub use response::translate_response;
pub use stream::StreamTranslator;

/// `max_tokens` sent when the client gives neither `max_tokens` nor
/// `max_completion_tokens` (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Per-upstream settings the translation needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `max_tokens` sent when the client gives neither `max_tokens` nor `max_completion_tokens`.
    pub default_max_tokens: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

#[cfg(test)]
mod tests;
