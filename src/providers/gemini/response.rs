//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`, and the
//! pieces the stream shares with it: the wire structs, `finish_reason`,
//! refusals, usage, ids, the clock.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ids::{response_tag, tool_call_id};
use crate::providers::completion::{unix_now, OpenAiUsage};
use crate::text::prefix_within;

/// Longest part of Gemini's `responseId` put in the OpenAI `id`, in bytes.
const MAX_RESPONSE_ID_BYTES: usize = 128;
/// Longest finish or block reason quoted in a refusal, in bytes.
const MAX_REASON_BYTES: usize = 64;
/// Most choices an answer may have (Gemini's `candidateCount` limit).
pub(super) const MAX_CHOICES: usize = 8;

/// Gemini non-stream 2xx `GenerateContentResponse` JSON -> OpenAI `chat.completion` JSON bytes.
///
/// `model` is the upstream model name, reported when Gemini gives no
/// `modelVersion`. `None` when the body is not a `GenerateContentResponse`
/// (not a JSON object, an `error` envelope, or neither `candidates` nor a
/// `promptFeedback`); the caller then reports an upstream protocol error.
/// The module docs give the mapping.
pub fn translate_response(body: &[u8], model: &str) -> Option<Vec<u8>> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let response: Response<'_> = serde_json::from_slice(body).ok()?;
    if response.error.is_some() {
        return None;
    }
    let candidates = response.candidates.unwrap_or_default();
    if candidates.is_empty() && response.prompt_feedback.is_none() {
        return None;
    }
    let tag = response_tag(response.response_id.as_deref().unwrap_or_default());

    let mut choices = Vec::with_capacity(candidates.len().clamp(1, MAX_CHOICES));
    for (position, candidate) in candidates.iter().enumerate().take(MAX_CHOICES) {
        choices.push(choice(candidate, position, &tag));
    }
    if choices.is_empty() {
        // No candidates: the prompt was blocked (or nothing was generated).
        let reason = response
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref());
        choices.push(Choice {
            index: 0,
            message: OutMessage {
                role: "assistant",
                content: if reason.is_some() {
                    None
                } else {
                    Some(Cow::Borrowed(""))
                },
                refusal: reason.map(prompt_refusal),
                tool_calls: Vec::new(),
            },
            logprobs: None,
            finish_reason: if reason.is_some() {
                "content_filter"
            } else {
                "stop"
            },
        });
    }

    let completion = Completion {
        id: completion_id(response.response_id.as_deref()),
        object: "chat.completion",
        created: unix_now(),
        model: model_name(response.model_version.as_deref(), model),
        choices,
        usage: response.usage_metadata.unwrap_or_default().to_openai(),
    };
    serde_json::to_vec(&completion).ok()
}

/// One candidate as a choice.
fn choice<'a>(candidate: &'a Candidate<'a>, position: usize, tag: &str) -> Choice<'a> {
    let mut texts: Vec<&str> = Vec::new();
    let mut tool_calls = Vec::new();
    for part in candidate.parts() {
        if part.thought == Some(true) {
            continue;
        }
        if let Some(call) = &part.function_call {
            let k = u32::try_from(tool_calls.len()).unwrap_or(u32::MAX);
            tool_calls.push(ToolCall {
                id: tool_call_id(
                    k,
                    tag,
                    call.id.as_deref(),
                    part.thought_signature.as_deref(),
                ),
                kind: "function",
                function: FunctionCall {
                    name: call.name.as_deref().unwrap_or_default(),
                    arguments: call.arguments(),
                },
            });
        } else if let Some(text) = part.text.as_deref() {
            texts.push(text);
        }
    }
    let text: Cow<'_, str> = match texts.as_slice() {
        [one] => Cow::Borrowed(one),
        several => Cow::Owned(several.concat()),
    };
    let reason = candidate.finish_reason.as_deref();
    let finish = finish_reason(reason, !tool_calls.is_empty());
    let refusal = (finish == "content_filter").then(|| answer_refusal(reason.unwrap_or_default()));
    let content = if text.is_empty() && (!tool_calls.is_empty() || refusal.is_some()) {
        None
    } else {
        Some(text)
    };
    Choice {
        index: candidate
            .index
            .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX)),
        message: OutMessage {
            role: "assistant",
            content,
            refusal,
            tool_calls,
        },
        logprobs: None,
        finish_reason: finish,
    }
}

/// OpenAI's `finish_reason` for a Gemini `finishReason`; `tool_calls`
/// when the candidate called functions and was not cut or filtered.
pub(super) fn finish_reason(reason: Option<&str>, tool_calls: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(reason) if is_filtered(reason) => "content_filter",
        _ if tool_calls => "tool_calls",
        // STOP, FINISH_REASON_UNSPECIFIED, OTHER, LANGUAGE,
        // MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS,
        // NO_IMAGE, and reasons added later.
        _ => "stop",
    }
}

/// The finish reasons that mean a filter stopped the answer: SAFETY,
/// RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY,
/// IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION, and later ones named alike.
fn is_filtered(reason: &str) -> bool {
    matches!(reason, "BLOCKLIST" | "SPII")
        || reason.contains("SAFETY")
        || reason.contains("RECITATION")
        || reason.contains("PROHIBITED")
}

/// The `refusal` of an answer a filter stopped.
pub(super) fn answer_refusal(reason: &str) -> String {
    format!(
        "The Gemini upstream stopped the answer: finishReason {}.",
        prefix_within(reason, MAX_REASON_BYTES)
    )
}

/// The `refusal` of a prompt Gemini blocked.
pub(super) fn prompt_refusal(reason: &str) -> String {
    format!(
        "The Gemini upstream blocked the prompt: blockReason {}.",
        prefix_within(reason, MAX_REASON_BYTES)
    )
}

/// `chatcmpl-` and Gemini's `responseId` (bounded).
pub(super) fn completion_id(response_id: Option<&str>) -> String {
    match response_id.filter(|id| !id.is_empty()) {
        Some(id) => format!("chatcmpl-{}", prefix_within(id, MAX_RESPONSE_ID_BYTES)),
        None => "chatcmpl-gemini".to_owned(),
    }
}

/// `modelVersion` (bounded), else the upstream model name.
pub(super) fn model_name<'a>(version: Option<&'a str>, model: &'a str) -> &'a str {
    match version.filter(|v| !v.is_empty()) {
        Some(version) => prefix_within(version, MAX_RESPONSE_ID_BYTES),
        None => model,
    }
}

/// Gemini's `usageMetadata` (missing counts are 0).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct GeminiUsage {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

impl GeminiUsage {
    /// OpenAI's usage object: Gemini's `promptTokenCount` already includes
    /// cached tokens; its thinking tokens are billed as output, so they are
    /// part of `completion_tokens` as OpenAI's reasoning tokens are.
    pub(super) fn to_openai(self) -> OpenAiUsage {
        let prompt = self.prompt_token_count.unwrap_or(0);
        let reasoning = self.thoughts_token_count.unwrap_or(0);
        let completion = self
            .candidates_token_count
            .unwrap_or(0)
            .saturating_add(reasoning);
        OpenAiUsage::new(
            prompt,
            self.cached_content_token_count.unwrap_or(0),
            completion,
            Some(reasoning),
        )
    }
}

// --- Gemini's GenerateContentResponse ----------------------------------------------

/// A `GenerateContentResponse` (also one stream event's data), or the
/// `error` envelope in its place.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Response<'a> {
    #[serde(borrow, default)]
    pub(super) candidates: Option<Vec<Candidate<'a>>>,
    #[serde(borrow, default)]
    pub(super) prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    pub(super) usage_metadata: Option<GeminiUsage>,
    #[serde(borrow, default)]
    pub(super) model_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) response_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback<'a> {
    #[serde(borrow, default)]
    pub(super) block_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    pub(super) finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) index: Option<u32>,
}

impl<'a> Candidate<'a> {
    /// Its content's parts (none when it has no content).
    pub(super) fn parts(&self) -> &[Part<'a>] {
        self.content
            .as_ref()
            .and_then(|c| c.parts.as_deref())
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Option<Vec<Part<'a>>>,
}

/// A part; `inlineData` (generated images), `executableCode` and other
/// kinds are skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Part<'a> {
    #[serde(borrow, default)]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) thought: Option<bool>,
    #[serde(borrow, default)]
    pub(super) thought_signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) function_call: Option<WireFunctionCall<'a>>,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionCall<'a> {
    #[serde(borrow, default)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

impl WireFunctionCall<'_> {
    /// `args` as written; `{}` when absent or null.
    pub(super) fn arguments(&self) -> &str {
        self.args
            .map(RawValue::get)
            .filter(|args| *args != "null")
            .unwrap_or("{}")
    }
}

// --- OpenAI's chat.completion ----------------------------------------------------

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    usage: OpenAiUsage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: OutMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Option<Cow<'a, str>>,
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}
