//! OpenAI chat-completions request → Converse request.
//!
//! | OpenAI field | Converse body |
//! |---|---|
//! | `model` | nothing: the model id is in the URL (address.rs) |
//! | `messages` | `system` and `messages` (messages.rs) |
//! | `max_completion_tokens`, else `max_tokens`, else `Options::default_max_tokens` | `inferenceConfig.maxTokens` (none: left out); 0 → 400 |
//! | `temperature` | `inferenceConfig.temperature`; above 1 → 1.0 (Converse's range is 0–1); outside 0–2 → 400 |
//! | `top_p` | `inferenceConfig.topP` |
//! | `stop` (string or array) | `inferenceConfig.stopSequences` |
//! | `tools`, `tool_choice` | `toolConfig` (tools.rs) |
//! | `response_format` | a forced answer tool (structured.rs) |
//! | `n` > 1, `logprobs`, `top_logprobs` > 0, `audio`, `web_search_options`, `functions`, `function_call` | 400 |
//! | `stream`, `stream_options` | dropped: a stream is asked by the URL (`/converse-stream`) |
//! | `user`, `safety_identifier`, `metadata` | dropped (`requestMetadata` only tags invocation logs and restricts its characters) |
//! | `parallel_tool_calls`, `reasoning_effort`, `presence_penalty`, `frequency_penalty`, `logit_bias`, `seed`, `service_tier`, `store`, `modalities`, `prediction`, `verbosity`, `prompt_cache_key`, any other | dropped |
//!
//! The body is read in two steps, as for Anthropic: the top level into one
//! borrowed [`RawValue`] per known field (everything else skipped), then
//! each field on its own, so a malformed field is reported with its name as
//! `param`. Strings, tool schemas and tool arguments are borrowed from the
//! body and written out as they came (schemas keep their key order).

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::messages::{convert_messages, OutMessage, SystemBlock};
use super::structured::answer_tool;
use super::tools::{tool_config, InTool, ToolConfig};
use super::Options;
use crate::providers::chat::InMessage;
use crate::providers::request_error::{parse, positive, without_position};
use crate::providers::RequestError;

/// OpenAI chat-completions request body -> Converse request body (JSON bytes).
///
/// The model id is not in the body (it is in the URL), nor is the stream
/// flag (a stream goes to `/converse-stream`). The module docs list what
/// each field becomes.
///
/// # Errors
///
/// [`RequestError`] when the body is not a chat-completions object or asks
/// for something a Bedrock upstream cannot do.
pub fn translate_request(body: &[u8], options: &Options) -> Result<Vec<u8>, RequestError> {
    let fields: Fields<'_> = serde_json::from_slice(body).map_err(|e| {
        RequestError::whole(format!(
            "The request body cannot be translated for a Bedrock upstream: {}.",
            without_position(&e)
        ))
    })?;
    refuse_unsupported(&fields)?;

    let Some(messages) = parse::<Vec<InMessage<'_>>>(fields.messages, "messages")? else {
        return Err(RequestError::new("`messages` is required.", "messages"));
    };
    let converted = convert_messages(&messages)?;
    if converted.messages.is_empty() {
        return Err(RequestError::new(
            "`messages` must hold at least one user or assistant message with content for a Bedrock upstream.",
            "messages",
        ));
    }

    let max_tokens = match (
        parse::<u64>(fields.max_completion_tokens, "max_completion_tokens")?,
        parse::<u64>(fields.max_tokens, "max_tokens")?,
    ) {
        (Some(0), _) => return Err(positive("max_completion_tokens")),
        (None, Some(0)) => return Err(positive("max_tokens")),
        (Some(n), _) | (None, Some(n)) => Some(n.min(u64::from(u32::MAX))),
        (None, None) => options.default_max_tokens.map(u64::from),
    };

    let temperature = match parse::<f64>(fields.temperature, "temperature")? {
        Some(t) if !(0.0..=2.0).contains(&t) => {
            return Err(RequestError::new(
                "`temperature` must be between 0 and 2.",
                "temperature",
            ))
        }
        Some(t) => Some(t.min(1.0)),
        None => None,
    };
    let top_p = match parse::<f64>(fields.top_p, "top_p")? {
        Some(p) if !(0.0..=1.0).contains(&p) => {
            return Err(RequestError::new(
                "`top_p` must be between 0 and 1.",
                "top_p",
            ))
        }
        p => p,
    };
    let stop_value = parse::<Value>(fields.stop, "stop")?;
    let stop_sequences = stop_sequences(stop_value.as_ref())?;

    let tools: Vec<InTool<'_>> = parse(fields.tools, "tools")?.unwrap_or_default();
    let choice = parse::<Value>(fields.tool_choice, "tool_choice")?;
    let answer = answer_tool(fields.response_format)?;
    let tool_config = tool_config(
        &tools,
        choice.as_ref(),
        answer.as_ref(),
        converted.has_tool_blocks,
        &converted.called,
    )?;

    let inference = InferenceConfig {
        max_tokens,
        temperature,
        top_p,
        stop_sequences,
    };
    let out = OutRequest {
        messages: converted.messages,
        system: converted.system,
        inference_config: (!inference.is_empty()).then_some(inference),
        tool_config,
    };
    serde_json::to_vec(&out).map_err(|e| {
        RequestError::whole(format!(
            "The request could not be written for a Bedrock upstream: {e}."
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
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow)]
    response_format: Option<&'a RawValue>,
    #[serde(borrow)]
    n: Option<&'a RawValue>,
    #[serde(borrow)]
    logprobs: Option<&'a RawValue>,
    #[serde(borrow)]
    top_logprobs: Option<&'a RawValue>,
    audio: Option<IgnoredAny>,
    web_search_options: Option<IgnoredAny>,
    functions: Option<IgnoredAny>,
    function_call: Option<IgnoredAny>,
}

/// Refuses the fields whose meaning a Bedrock upstream cannot honour.
fn refuse_unsupported(fields: &Fields<'_>) -> Result<(), RequestError> {
    match parse::<u64>(fields.n, "n")? {
        None | Some(1) => {}
        Some(_) => {
            return Err(RequestError::new(
                "`n` must be 1 for Bedrock upstreams, which return one choice per request; send several requests instead.",
                "n",
            ))
        }
    }
    if parse::<bool>(fields.logprobs, "logprobs")? == Some(true) {
        return Err(RequestError::unsupported(
            "logprobs",
            "(token log probabilities)",
            "Bedrock",
        ));
    }
    if parse::<u64>(fields.top_logprobs, "top_logprobs")?.is_some_and(|n| n > 0) {
        return Err(RequestError::unsupported(
            "top_logprobs",
            "(token log probabilities)",
            "Bedrock",
        ));
    }
    let refused = [
        (fields.audio.is_some(), "audio", "(audio output)"),
        (
            fields.web_search_options.is_some(),
            "web_search_options",
            "(web search)",
        ),
        (
            fields.functions.is_some(),
            "functions",
            "(deprecated; use `tools`)",
        ),
        (
            fields.function_call.is_some(),
            "function_call",
            "(deprecated; use `tool_choice`)",
        ),
    ];
    match refused.into_iter().find(|(present, _, _)| *present) {
        Some((_, param, what)) => Err(RequestError::unsupported(param, what, "Bedrock")),
        None => Ok(()),
    }
}

/// `stop` as an array of sequences; empty strings are left out (Converse
/// refuses them).
fn stop_sequences(stop: Option<&Value>) -> Result<Vec<&str>, RequestError> {
    let bad = || RequestError::new("`stop` must be a string or an array of strings.", "stop");
    let all: Vec<&str> = match stop {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many
            .iter()
            .map(|s| s.as_str().ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    Ok(all.into_iter().filter(|s| !s.is_empty()).collect())
}

// --- the Converse body ---------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutRequest<'a> {
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<SystemBlock<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_config: Option<InferenceConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}
