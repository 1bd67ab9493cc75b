//! Translation between OpenAI Chat Completions and Google's Gemini API
//! (`generateContent`): bytes in, bytes out, no network and no runtime.
//!
//! `forward` calls these per attempt for a Gemini upstream:
//!
//! - [`translate_request`]: the client's chat-completions body → a
//!   `GenerateContentRequest` (`request.rs`; `messages` in `contents.rs`,
//!   tools in `tools.rs`). A request that cannot be expressed is a
//!   [`RequestError`](crate::providers::RequestError), answered to the
//!   client as a 400.
//! - [`translate_response`]: a 2xx `GenerateContentResponse` → a
//!   `chat.completion` body (`response.rs`).
//! - [`StreamTranslator`]: the events of `:streamGenerateContent?alt=sse`
//!   → `chat.completion.chunk` events, one at a time (`stream.rs`).
//! - [`translate_error`]: a Gemini error answer → the OpenAI error body
//!   (`error.rs`).
//!
//! Only the body changes here. The URL (the model is in the path, streams
//! go to another method), the `x-goog-api-key` header and the status of an
//! error answer are the caller's ([`Gemini`], `address.rs`).
//!
//! # Request
//!
//! | OpenAI field | Gemini body |
//! |---|---|
//! | `model` | not sent (in the URL) |
//! | `messages` | `systemInstruction` and `contents`, below |
//! | `max_completion_tokens`, else `max_tokens` | `generationConfig.maxOutputTokens`; 0 or not an integer → 400 |
//! | `temperature` | `generationConfig.temperature` (same 0–2 range; outside → 400) |
//! | `top_p` | `generationConfig.topP` |
//! | `stop` (string or array) | `generationConfig.stopSequences` |
//! | `n` | `generationConfig.candidateCount` (1 is left out; above 8 → 400) |
//! | `presence_penalty`, `frequency_penalty` | `generationConfig.presencePenalty`, `frequencyPenalty` |
//! | `seed` | `generationConfig.seed` (32 bits: a wider seed keeps its low 32 bits) |
//! | `response_format` | `text` dropped; `json_object` → `responseMimeType: "application/json"`; `json_schema` → that and `responseJsonSchema` = the schema as written |
//! | `reasoning_effort` | `generationConfig.thinkingConfig.thinkingBudget`: none 0, minimal 512, low 1024, medium 8192, high and xhigh 24576; another value → 400 |
//! | `tools[]` (`type: "function"`) | `tools: [{functionDeclarations: [{name, description, parametersJsonSchema}]}]`, the schema as written (no `parameters`: left out); `strict` dropped; another tool type → 400 |
//! | `tool_choice` | `toolConfig.functionCallingConfig.mode`: `auto` → `AUTO`, `none` → `NONE`, `required` → `ANY`, a named function → `ANY` with `allowedFunctionNames: [name]` (a name not in `tools` → 400); without `tools`, `auto`/`none` are dropped and the others → 400 |
//! | `parallel_tool_calls` | dropped (Gemini decides) |
//! | `stream`, `stream_options` | not sent (the URL, and the stream translation) |
//! | `logprobs: true`, `top_logprobs` > 0 | 400 |
//! | `audio`, `modalities` other than `["text"]` | 400 (no audio output) |
//! | `web_search_options` | 400 |
//! | `functions`, `function_call` | 400 (deprecated; use `tools`) |
//! | `user`, `safety_identifier`, `metadata`, `store`, `service_tier`, `logit_bias`, `prediction`, `verbosity`, `prompt_cache_key`, `prompt_cache_retention`, any other field | dropped |
//!
//! Messages:
//!
//! - `system` and `developer` messages, wherever they stand →
//!   `systemInstruction: {parts: [{text}]}`, their texts in order joined
//!   with `"\n\n"`; another part type there → 400.
//! - `user` → a `user` content: `text` parts → `{text}`; `image_url` with a
//!   `data:<type>;base64,<data>` URI → `{inlineData: {mimeType, data}}`
//!   (the base64 as it is; `detail` dropped); an http(s) URL → 400 (Gemini
//!   does not fetch URLs: `fileData` takes only File API and Cloud Storage
//!   URIs); `input_audio` → `inlineData` with `audio/<format>` (wav, mp3,
//!   aiff, aac, ogg, flac; another → 400); `file` with `file_data` (a data
//!   URI) → `inlineData` (`filename` dropped), with `file_id` → 400.
//! - `assistant` → a `model` content: `text` and `refusal` parts → `{text}`;
//!   `tool_calls` → `{functionCall: {id?, name, args}, thoughtSignature?}`,
//!   `args` = the parsed `arguments` (`""` reads as `{}`; not a JSON object
//!   → 400); `id` and the signature are restored from the tool call's id
//!   (`ids.rs`); a `function_call` → 400.
//! - `tool` → a `user` content with `{functionResponse: {id?, name,
//!   response}}`: `name` is the function of the earlier assistant tool call
//!   with that `tool_call_id` (none → 400 naming `messages`), `response` the
//!   content if it is a JSON object, else `{"content": <text>}`.
//! - `function` and unknown roles → 400; `name` dropped; empty texts and
//!   messages left empty are dropped; no content at all → 400.
//! - Consecutive contents of the same role merge (so parallel tool results,
//!   and a user message after them, share one `user` content).
//!
//! # Answer
//!
//! Each candidate → a choice (`index` = the candidate's). `content` = its
//! text parts concatenated, `thought: true` parts skipped (`null` when the
//! candidate has only tool calls or was filtered); `functionCall` parts →
//! `tool_calls` with `arguments` = `args` as written and an id per
//! `ids.rs`; other parts (generated images, code execution) dropped.
//! `finish_reason`: `STOP` → `stop` (`tool_calls` when the candidate called
//! functions); `MAX_TOKENS` → `length`; `SAFETY`, `RECITATION`,
//! `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY` and the other
//! filter reasons → `content_filter` with `refusal` naming the reason;
//! anything else (`OTHER`, `LANGUAGE`, `MALFORMED_FUNCTION_CALL`, …, none)
//! → `stop`. No candidates and `promptFeedback.blockReason` → one choice,
//! `content_filter`, `refusal` naming the block reason. `usage`:
//! `prompt_tokens` = `promptTokenCount` (cached tokens included),
//! `completion_tokens` = `candidatesTokenCount + thoughtsTokenCount`,
//! `completion_tokens_details.reasoning_tokens` = `thoughtsTokenCount`,
//! `prompt_tokens_details.cached_tokens` = `cachedContentTokenCount`.
//! `id` = `chatcmpl-` + `responseId`, `model` = `modelVersion` (else the
//! upstream model name), `created` = now.
//!
//! The stream follows the same rules event by event (`stream.rs`).

mod address;
mod contents;
mod error;
mod ids;
mod request;
mod response;
mod stream;
mod tools;

pub use address::Gemini;
pub use error::translate_error;
pub use request::translate_request;
pub use response::translate_response;
pub use stream::StreamTranslator;

#[cfg(test)]
mod tests;
