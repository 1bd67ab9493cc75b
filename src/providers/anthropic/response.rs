//! Anthropic Messages answer → OpenAI `chat.completion`, and the pieces the
//! stream shares with it: `finish_reason`, usage, the clock.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::structured::{self, ANSWER_TOOL};
use crate::providers::completion::{
    unix_now, Choice, Completion, FunctionCall, OpenAiUsage, OutMessage, ToolCall,
};

/// Anthropic non-stream 2xx message JSON -> OpenAI `chat.completion` JSON bytes.
///
/// `None` when the body is not a readable Anthropic message (not a JSON
/// object, a `type` other than `message`, or no `content` array); the caller
/// then reports an upstream protocol error. The module docs give the mapping.
pub fn translate_response(body: &[u8]) -> Option<Vec<u8>> {
    let message: Message<'_> = serde_json::from_slice(body).ok()?;
    if message
        .kind
        .as_deref()
        .is_some_and(|kind| kind != "message")
    {
        return None;
    }

    let mut texts: Vec<&str> = Vec::new();
    let mut answer: Option<&str> = None;
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match &*block.kind {
            "text" => texts.extend(block.text.as_deref()),
            "tool_use" if block.name.as_deref() == Some(ANSWER_TOOL) => {
                answer = Some(block.input.map_or("{}", RawValue::get));
            }
            "tool_use" => tool_calls.push(ToolCall {
                id: block.id.as_deref().unwrap_or_default(),
                kind: "function",
                function: FunctionCall {
                    name: block.name.as_deref().unwrap_or_default(),
                    arguments: block.input.map_or("{}", RawValue::get),
                },
            }),
            // thinking, redacted_thinking, server tool blocks, new kinds.
            _ => {}
        }
    }
    let text: Cow<'_, str> = match (answer, texts.as_slice()) {
        // A structured answer is the content; text around it would break the JSON.
        (Some(json), _) => Cow::Borrowed(json),
        (None, [one]) => Cow::Borrowed(one),
        (None, several) => Cow::Owned(several.concat()),
    };
    let finish = structured::finish_reason(
        message.stop_reason.as_deref(),
        answer.is_some(),
        !tool_calls.is_empty(),
    );
    let content = if text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };

    let completion = Completion {
        id: &message.id,
        object: "chat.completion",
        created: unix_now(),
        model: &message.model,
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
        usage: message.usage.to_openai(),
    };
    serde_json::to_vec(&completion).ok()
}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason` (PROTOCOLS.md 7.3).
pub(super) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn (no equivalent), and new ones.
        _ => "stop",
    }
}

/// Anthropic's `usage` (missing or null counts are 0).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(super) struct AnthropicUsage {
    pub(super) input_tokens: Option<u64>,
    pub(super) output_tokens: Option<u64>,
    pub(super) cache_creation_input_tokens: Option<u64>,
    pub(super) cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Takes every count `later` reports (a stream's `message_delta` counts
    /// are cumulative).
    pub(super) fn update(&mut self, later: AnthropicUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }

    /// OpenAI's usage object: Anthropic's `input_tokens` excludes cache reads
    /// and writes, OpenAI's `prompt_tokens` includes them.
    pub(super) fn to_openai(self) -> OpenAiUsage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(cached);
        let completion = self.output_tokens.unwrap_or(0);
        OpenAiUsage::new(prompt, cached, completion, None)
    }
}

// --- Anthropic's message -------------------------------------------------------

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    content: Vec<Block<'a>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}
