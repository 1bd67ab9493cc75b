//! OpenAI chat-completions request → Anthropic Messages request.
//!
//! The body is read in two steps: the top level into one borrowed
//! [`RawValue`] per known field (everything else is skipped), then each field
//! on its own, so a malformed field is reported with its name as `param`.
//! Strings, tool schemas and tool arguments are borrowed from the body and
//! written out as they came (schemas keep their key order). The messages
//! are `messages.rs`'s.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::messages::{convert_messages, OutMessage};
use super::structured::answer_tool;
use super::tools::{tools_and_choice, InTool, OutTool, OutToolChoice};
use super::Options;
use crate::providers::chat::InMessage;
use crate::providers::request_error::{parse, positive, stop_sequences, without_position};
use crate::providers::RequestError;

/// OpenAI chat-completions request body -> Anthropic Messages request body (JSON bytes).
///
/// `model` is the upstream model name to put in the body. The client's
/// `stream` flag is read from the body and kept. The module docs list what
/// each field becomes.
///
/// # Errors
///
/// [`RequestError`] when the body is not a chat-completions object or asks
/// for something an Anthropic upstream cannot do.
pub fn translate_request(
    body: &[u8],
    model: &str,
    options: &Options,
) -> Result<Vec<u8>, RequestError> {
    let fields: Fields<'_> = serde_json::from_slice(body).map_err(|e| {
        RequestError::whole(format!(
            "The request body cannot be translated for an Anthropic upstream: {}.",
            without_position(&e)
        ))
    })?;
    refuse_unsupported(&fields)?;

    let Some(messages) = parse::<Vec<InMessage<'_>>>(fields.messages, "messages")? else {
        return Err(RequestError::new("`messages` is required.", "messages"));
    };
    let (system, messages) = convert_messages(&messages)?;

    let max_tokens = match (
        parse::<u64>(fields.max_completion_tokens, "max_completion_tokens")?,
        parse::<u64>(fields.max_tokens, "max_tokens")?,
    ) {
        (Some(0), _) => return Err(positive("max_completion_tokens")),
        (None, Some(0)) => return Err(positive("max_tokens")),
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => u64::from(options.default_max_tokens),
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

    let tools: Vec<InTool<'_>> = parse(fields.tools, "tools")?.unwrap_or_default();
    let choice = parse::<Value>(fields.tool_choice, "tool_choice")?;
    let parallel = parse::<bool>(fields.parallel_tool_calls, "parallel_tool_calls")?;
    let answer = answer_tool(fields.response_format)?;
    let (out_tools, tool_choice) =
        tools_and_choice(&tools, choice.as_ref(), parallel, answer.as_ref())?;

    let stop_value = parse::<Value>(fields.stop, "stop")?;
    let stop_sequences = stop_sequences(stop_value.as_ref())?;

    let user = match parse::<Cow<'_, str>>(fields.user, "user")? {
        Some(user) => Some(user),
        None => parse::<Cow<'_, str>>(fields.safety_identifier, "safety_identifier")?,
    };

    let out = OutRequest {
        model,
        max_tokens,
        system,
        messages,
        tools: out_tools,
        tool_choice,
        temperature,
        top_p: parse::<f64>(fields.top_p, "top_p")?,
        stop_sequences,
        metadata: user.as_deref().map(|user_id| Metadata { user_id }),
        stream: parse::<bool>(fields.stream, "stream")?.unwrap_or(false),
    };
    serde_json::to_vec(&out).map_err(|e| {
        RequestError::whole(format!(
            "The request could not be written for an Anthropic upstream: {e}."
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
    stream: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow)]
    parallel_tool_calls: Option<&'a RawValue>,
    #[serde(borrow)]
    user: Option<&'a RawValue>,
    #[serde(borrow)]
    safety_identifier: Option<&'a RawValue>,
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

/// Refuses the fields whose meaning an Anthropic upstream cannot honour.
fn refuse_unsupported(fields: &Fields<'_>) -> Result<(), RequestError> {
    match parse::<u64>(fields.n, "n")? {
        None | Some(1) => {}
        Some(_) => {
            return Err(RequestError::new(
                "`n` must be 1 for Anthropic upstreams, which return one choice per request; send several requests instead.",
                "n",
            ))
        }
    }
    if parse::<bool>(fields.logprobs, "logprobs")? == Some(true) {
        return Err(RequestError::unsupported(
            "logprobs",
            "(token log probabilities)",
            "Anthropic",
        ));
    }
    if parse::<u64>(fields.top_logprobs, "top_logprobs")?.is_some_and(|n| n > 0) {
        return Err(RequestError::unsupported(
            "top_logprobs",
            "(token log probabilities)",
            "Anthropic",
        ));
    }
    if fields.audio.is_some() {
        return Err(RequestError::unsupported(
            "audio",
            "(audio output)",
            "Anthropic",
        ));
    }
    if fields.web_search_options.is_some() {
        return Err(RequestError::unsupported(
            "web_search_options",
            "(web search)",
            "Anthropic",
        ));
    }
    if fields.functions.is_some() {
        return Err(RequestError::unsupported(
            "functions",
            "(deprecated; use `tools`)",
            "Anthropic",
        ));
    }
    if fields.function_call.is_some() {
        return Err(RequestError::unsupported(
            "function_call",
            "(deprecated; use `tool_choice`)",
            "Anthropic",
        ));
    }
    Ok(())
}

// --- the Anthropic body --------------------------------------------------------

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<Cow<'a, str>>,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<OutToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "is_false")]
    stream: bool,
}

pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}
