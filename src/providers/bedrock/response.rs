//! Converse answer → OpenAI `chat.completion`, and the pieces the stream
//! shares with it: `finish_reason`, usage, the id and the clock.
//!
//! | Converse | OpenAI |
//! |---|---|
//! | (no id) | `id`: `chatcmpl-` and 24 hex digits, unique per process and random across processes ([`completion_id`]) |
//! | (no model) | `model`: the model the caller names (the target's) |
//! | `output.message.content[].text` | `message.content`, concatenated (`null` when there are only tool calls) |
//! | `content[].toolUse` `{toolUseId, name, input}` | `message.tool_calls[{id, type: "function", function: {name, arguments: <input as written>}}]` |
//! | `content[].toolUse` of the answer tool (structured.rs) | `message.content` = its input, `finish_reason` `stop` |
//! | `reasoningContent`, `citationsContent`, `image`, other blocks | dropped |
//! | `stopReason` | `finish_reason` ([`finish_reason`]) |
//! | `usage` | `usage` ([`BedrockUsage::to_openai`]) |

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::structured::{self, ANSWER_TOOL};
use crate::providers::completion::{
    unix_now, Choice, Completion, FunctionCall, OpenAiUsage, OutMessage, ToolCall,
};

/// Converse non-stream 2xx answer JSON -> OpenAI `chat.completion` JSON bytes.
///
/// `model` is the model named in the answer (Converse does not say). `None`
/// when the body is not a readable Converse answer (no
/// `output.message.content` array); the caller then reports an upstream
/// protocol error. The module docs give the mapping.
pub fn translate_response(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let answer: Answer<'_> = serde_json::from_slice(body).ok()?;
    let content = answer.output.message.content;

    let mut texts: Vec<&str> = Vec::new();
    let mut structured_answer: Option<&str> = None;
    let mut tool_calls = Vec::new();
    for block in &content {
        if let Some(text) = block.text.as_deref() {
            texts.push(text);
        } else if let Some(tool) = &block.tool_use {
            let arguments = tool.input.map_or("{}", RawValue::get);
            if tool.name.as_deref() == Some(ANSWER_TOOL) {
                structured_answer = Some(arguments);
            } else {
                tool_calls.push(ToolCall {
                    id: tool.tool_use_id.as_deref().unwrap_or_default(),
                    kind: "function",
                    function: FunctionCall {
                        name: tool.name.as_deref().unwrap_or_default(),
                        arguments,
                    },
                });
            }
        }
    }
    let text: Cow<'_, str> = match (structured_answer, texts.as_slice()) {
        // A structured answer is the content; text around it would break the JSON.
        (Some(json), _) => Cow::Borrowed(json),
        (None, [one]) => Cow::Borrowed(one),
        (None, several) => Cow::Owned(several.concat()),
    };
    let finish = structured::finish_reason(
        answer.stop_reason.as_deref(),
        structured_answer.is_some(),
        !tool_calls.is_empty(),
    );
    let content = if text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };
    let id = completion_id();
    let completion = Completion {
        id: &id,
        object: "chat.completion",
        created: unix_now(),
        model,
        choices: [Choice {
            index: 0,
            message: OutMessage {
                role: "assistant",
                content,
                refusal: None,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish,
        }],
        usage: answer.usage.to_openai(),
    };
    serde_json::to_vec(&completion).ok()
}

/// OpenAI's `finish_reason` for a Converse `stopReason`.
///
/// `end_turn`, `stop_sequence` → `stop`; `max_tokens`,
/// `model_context_window_exceeded` → `length`; `tool_use` → `tool_calls`;
/// `guardrail_intervened`, `content_filtered` → `content_filter`; anything
/// else (`malformed_model_output`, `malformed_tool_use`, reasons added
/// later, none) → `stop`.
pub(super) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        _ => "stop",
    }
}

/// A fresh completion id: `chatcmpl-` and 24 hex digits (33 bytes).
///
/// Converse answers carry no id (only the `x-amzn-RequestId` header, which
/// the translation does not see). The id mixes a per-process counter (never
/// the same twice in a process) with the standard library's randomly
/// keyed hasher and the clock (different across processes and restarts);
/// it is an identifier, not a secret.
pub(super) fn completion_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(nanos);
    hasher.write_u64(count);
    format!("chatcmpl-{:016x}{:08x}", hasher.finish(), count as u32)
}

/// Converse's `usage` (missing or null counts are 0).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct BedrockUsage {
    pub(super) input_tokens: Option<u64>,
    pub(super) output_tokens: Option<u64>,
    pub(super) cache_read_input_tokens: Option<u64>,
    pub(super) cache_write_input_tokens: Option<u64>,
}

impl BedrockUsage {
    /// OpenAI's usage object. Bedrock's `inputTokens`, like Anthropic's
    /// `input_tokens`, excludes the tokens read from and written to the
    /// prompt cache; OpenAI's `prompt_tokens` includes them, so
    /// `prompt_tokens` = `inputTokens` + `cacheReadInputTokens` +
    /// `cacheWriteInputTokens`, `cached_tokens` = `cacheReadInputTokens`,
    /// and `total_tokens` is computed (it equals Bedrock's `totalTokens`).
    pub(super) fn to_openai(self) -> OpenAiUsage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(self.cache_write_input_tokens.unwrap_or(0))
            .saturating_add(cached);
        let completion = self.output_tokens.unwrap_or(0);
        OpenAiUsage::new(prompt, cached, completion, None)
    }
}

// --- Converse's answer -----------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    #[serde(borrow)]
    output: Output<'a>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: BedrockUsage,
}

#[derive(Deserialize)]
struct Output<'a> {
    #[serde(borrow)]
    message: AnswerMessage<'a>,
}

#[derive(Deserialize)]
struct AnswerMessage<'a> {
    #[serde(borrow)]
    content: Vec<Block<'a>>,
}

/// A `ContentBlock` union: the members read; the others are skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_use: Option<ToolUse<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUse<'a> {
    #[serde(borrow, default)]
    pub(super) tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}
