//! OpenAI chat-completions request → Gemini `GenerateContentRequest`.
//!
//! The body is read in two steps: the top level into one borrowed
//! [`RawValue`] per known field (everything else is skipped), then each field
//! on its own, so a malformed field is reported with its name as `param`.
//! Texts, tool schemas and tool arguments are borrowed from the body where
//! serde can and written out as they came (schemas keep their key order).
//! The messages are `contents.rs`'s, the tools `tools.rs`'s; this file is
//! the top level and `generationConfig`.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::contents::{convert_messages, OutContent, SystemInstruction};
use super::tools::{tools_and_config, InTool, OutTool, ToolConfig};
use crate::providers::chat::InMessage;
use crate::providers::request_error::{parse, positive, stop_sequences, without_position};
use crate::providers::RequestError;

/// Most candidates Gemini generates for one request (`candidateCount`).
pub(super) const MAX_CANDIDATES: u64 = 8;

/// OpenAI chat-completions request body -> Gemini `GenerateContentRequest` body (JSON bytes).
///
/// The model is in the URL, not the body; `stream` picks the URL and
/// `stream_options` the stream translation, so neither is sent. The module
/// docs list what each field becomes.
///
/// # Errors
///
/// [`RequestError`] when the body is not a chat-completions object or asks
/// for something a Gemini upstream cannot do.
pub fn translate_request(body: &[u8]) -> Result<Vec<u8>, RequestError> {
    let fields: Fields<'_> = serde_json::from_slice(body).map_err(|e| {
        RequestError::whole(format!(
            "The request body cannot be translated for a Gemini upstream: {}.",
            without_position(&e)
        ))
    })?;
    refuse_unsupported(&fields)?;

    let Some(messages) = parse::<Vec<InMessage<'_>>>(fields.messages, "messages")? else {
        return Err(RequestError::new("`messages` is required.", "messages"));
    };
    let (system_instruction, contents) = convert_messages(&messages)?;

    let tools: Vec<InTool<'_>> = parse(fields.tools, "tools")?.unwrap_or_default();
    let choice = parse::<Value>(fields.tool_choice, "tool_choice")?;
    // Checked for its type only: Gemini decides on parallel calls itself.
    parse::<bool>(fields.parallel_tool_calls, "parallel_tool_calls")?;
    let (tools, tool_config) = tools_and_config(&tools, choice.as_ref())?;

    let generation_config = generation_config(&fields)?;

    let out = OutRequest {
        system_instruction,
        contents,
        tools,
        tool_config,
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
    };
    serde_json::to_vec(&out).map_err(|e| {
        RequestError::whole(format!(
            "The request could not be written for a Gemini upstream: {e}."
        ))
    })
}

/// The top-level fields read; every other member is skipped unread.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(borrow)]
    stop: Option<&'a RawValue>,
    #[serde(borrow)]
    n: Option<&'a RawValue>,
    #[serde(borrow)]
    presence_penalty: Option<&'a RawValue>,
    #[serde(borrow)]
    frequency_penalty: Option<&'a RawValue>,
    #[serde(borrow)]
    seed: Option<&'a RawValue>,
    #[serde(borrow)]
    response_format: Option<&'a RawValue>,
    #[serde(borrow)]
    reasoning_effort: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow)]
    parallel_tool_calls: Option<&'a RawValue>,
    #[serde(borrow)]
    logprobs: Option<&'a RawValue>,
    #[serde(borrow)]
    top_logprobs: Option<&'a RawValue>,
    #[serde(borrow)]
    modalities: Option<&'a RawValue>,
    audio: Option<IgnoredAny>,
    web_search_options: Option<IgnoredAny>,
    functions: Option<IgnoredAny>,
    function_call: Option<IgnoredAny>,
}

/// Refuses the fields whose meaning a Gemini upstream cannot honour.
fn refuse_unsupported(fields: &Fields<'_>) -> Result<(), RequestError> {
    if parse::<bool>(fields.logprobs, "logprobs")? == Some(true) {
        return Err(RequestError::unsupported(
            "logprobs",
            "(token log probabilities)",
            "Gemini",
        ));
    }
    if parse::<u64>(fields.top_logprobs, "top_logprobs")?.is_some_and(|n| n > 0) {
        return Err(RequestError::unsupported(
            "top_logprobs",
            "(token log probabilities)",
            "Gemini",
        ));
    }
    let modalities = parse::<Vec<Cow<'_, str>>>(fields.modalities, "modalities")?;
    if modalities
        .iter()
        .flatten()
        .any(|modality| modality != "text")
    {
        return Err(RequestError::unsupported(
            "modalities",
            "other than `text` (audio output)",
            "Gemini",
        ));
    }
    if fields.audio.is_some() {
        return Err(RequestError::unsupported(
            "audio",
            "(audio output)",
            "Gemini",
        ));
    }
    if fields.web_search_options.is_some() {
        return Err(RequestError::unsupported(
            "web_search_options",
            "(web search)",
            "Gemini",
        ));
    }
    if fields.functions.is_some() {
        return Err(RequestError::unsupported(
            "functions",
            "(deprecated; use `tools`)",
            "Gemini",
        ));
    }
    if fields.function_call.is_some() {
        return Err(RequestError::unsupported(
            "function_call",
            "(deprecated; use `tool_choice`)",
            "Gemini",
        ));
    }
    Ok(())
}

/// `generationConfig` from the sampling, length, format and thinking fields.
fn generation_config<'a>(fields: &Fields<'a>) -> Result<GenerationConfig<'a>, RequestError> {
    let max_output_tokens = match (
        parse::<u64>(fields.max_completion_tokens, "max_completion_tokens")?,
        parse::<u64>(fields.max_tokens, "max_tokens")?,
    ) {
        (Some(0), _) => return Err(positive("max_completion_tokens")),
        (None, Some(0)) => return Err(positive("max_tokens")),
        (Some(n), _) | (None, Some(n)) => Some(n),
        (None, None) => None,
    };

    let temperature = match parse::<f64>(fields.temperature, "temperature")? {
        Some(t) if !(0.0..=2.0).contains(&t) => {
            return Err(RequestError::new(
                "`temperature` must be between 0 and 2.",
                "temperature",
            ))
        }
        t => t,
    };

    let candidate_count = match parse::<u64>(fields.n, "n")? {
        None | Some(1) => None,
        Some(n) if (2..=MAX_CANDIDATES).contains(&n) => Some(n),
        Some(_) => {
            return Err(RequestError::new(
                format!("`n` must be between 1 and {MAX_CANDIDATES} for Gemini upstreams."),
                "n",
            ))
        }
    };

    let stop_value = parse::<Value>(fields.stop, "stop")?;
    let stop_sequences = stop_sequences(stop_value.as_ref())?
        .into_iter()
        .map(|s| Cow::Owned(s.to_owned()))
        .collect();

    // Gemini's seed is 32 bits: a wider one keeps its low 32 bits, so the
    // same seed still gives the same value.
    let seed = parse::<i64>(fields.seed, "seed")?.map(|seed| seed as i32);

    let (response_mime_type, response_json_schema) = response_format(fields.response_format)?;

    let thinking_config = match parse::<Cow<'_, str>>(fields.reasoning_effort, "reasoning_effort")?
    {
        None => None,
        Some(effort) => Some(ThinkingConfig {
            thinking_budget: thinking_budget(&effort)?,
        }),
    };

    Ok(GenerationConfig {
        max_output_tokens,
        temperature,
        top_p: parse::<f64>(fields.top_p, "top_p")?,
        stop_sequences,
        candidate_count,
        presence_penalty: parse::<f64>(fields.presence_penalty, "presence_penalty")?,
        frequency_penalty: parse::<f64>(fields.frequency_penalty, "frequency_penalty")?,
        seed,
        response_mime_type,
        response_json_schema,
        thinking_config,
    })
}

/// `thinkingBudget` for a `reasoning_effort`: the budgets Google's own
/// OpenAI-compatible endpoint uses, which every Gemini 2.5 and 3 model
/// accepts (`thinkingLevel` exists only on Gemini 3, and the model is not
/// known here).
pub(super) fn thinking_budget(effort: &str) -> Result<u32, RequestError> {
    Ok(match effort {
        "none" => 0,
        "minimal" => 512,
        "low" => 1024,
        "medium" => 8192,
        // The largest budget every 2.5 model accepts.
        "high" | "xhigh" => 24576,
        other => {
            return Err(RequestError::new(
                format!(
                "`reasoning_effort` `{}` is not one of none, minimal, low, medium, high or xhigh.",
                crate::text::prefix_within(other, 64)
            ),
                "reasoning_effort",
            ))
        }
    })
}

#[derive(Deserialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    json_schema: Option<JsonSchema<'a>>,
}

#[derive(Deserialize)]
struct JsonSchema<'a> {
    #[serde(borrow)]
    schema: Option<&'a RawValue>,
}

/// `responseMimeType` and `responseJsonSchema` for `response_format`.
fn response_format(
    raw: Option<&RawValue>,
) -> Result<(Option<&'static str>, Option<&RawValue>), RequestError> {
    let bad = || {
        RequestError::new(
            "`response_format` must be an object whose `type` is `text`, `json_object` or `json_schema`.",
            "response_format",
        )
    };
    let Some(raw) = raw else {
        return Ok((None, None));
    };
    if raw.get() == "null" {
        return Ok((None, None));
    }
    let format: ResponseFormat<'_> = serde_json::from_str(raw.get()).map_err(|_| bad())?;
    match &*format.kind {
        "text" => Ok((None, None)),
        "json_object" => Ok((Some(JSON), None)),
        "json_schema" => {
            let Some(spec) = format.json_schema else {
                return Err(RequestError::new(
                    "`response_format` `json_schema` needs its `json_schema` object.",
                    "response_format",
                ));
            };
            let schema = spec.schema.filter(|s| s.get() != "null");
            if schema.is_some_and(|s| !s.get().starts_with('{')) {
                return Err(RequestError::new(
                    "`response_format.json_schema.schema` must be a JSON Schema object.",
                    "response_format",
                ));
            }
            Ok((Some(JSON), schema))
        }
        _ => Err(bad()),
    }
}

const JSON: &str = "application/json";

// --- the Gemini body ----------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    contents: Vec<OutContent<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
            && self.candidate_count.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.seed.is_none()
            && self.response_mime_type.is_none()
            && self.response_json_schema.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u32,
}
