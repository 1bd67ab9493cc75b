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

use super::messages::{convert_messages, InMessage, OutMessage};
use super::Options;

/// Why an OpenAI request cannot be expressed for Anthropic: answered to the client as a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// A sentence for the client: what cannot be translated and what to do.
    pub message: String,
    /// The request field at fault, if one is (OpenAI's `param`).
    pub param: Option<&'static str>,
}

impl RequestError {
    pub(super) fn new(message: impl Into<String>, param: &'static str) -> RequestError {
        RequestError {
            message: message.into(),
            param: Some(param),
        }
    }

    /// A field the Anthropic Messages API has no counterpart for.
    pub(super) fn unsupported(param: &'static str, what: &str) -> RequestError {
        RequestError::new(
            format!("`{param}` {what} is not supported for Anthropic upstreams; remove it or route the request to an OpenAI-compatible model."),
            param,
        )
    }
}

/// The body's value for `{"type":"object","properties":{}}`, the schema of a
/// tool without `parameters`.
const EMPTY_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

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
    let fields: Fields<'_> = serde_json::from_slice(body).map_err(|e| RequestError {
        message: format!(
            "The request body cannot be translated for an Anthropic upstream: {}.",
            without_position(&e)
        ),
        param: None,
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
    let out_tools = tools
        .iter()
        .map(OutTool::of)
        .collect::<Result<Vec<_>, _>>()?;
    let tool_choice_value = parse::<Value>(fields.tool_choice, "tool_choice")?;
    let parallel = parse::<bool>(fields.parallel_tool_calls, "parallel_tool_calls")?;
    let tool_choice = tool_choice(tool_choice_value.as_ref(), parallel, !out_tools.is_empty())?;

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
    serde_json::to_vec(&out).map_err(|e| RequestError {
        message: format!("The request could not be written for an Anthropic upstream: {e}."),
        param: None,
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
        ));
    }
    if parse::<u64>(fields.top_logprobs, "top_logprobs")?.is_some_and(|n| n > 0) {
        return Err(RequestError::unsupported(
            "top_logprobs",
            "(token log probabilities)",
        ));
    }
    if fields.audio.is_some() {
        return Err(RequestError::unsupported("audio", "(audio output)"));
    }
    if fields.web_search_options.is_some() {
        return Err(RequestError::unsupported(
            "web_search_options",
            "(web search)",
        ));
    }
    if fields.functions.is_some() {
        return Err(RequestError::unsupported(
            "functions",
            "(deprecated; use `tools`)",
        ));
    }
    if fields.function_call.is_some() {
        return Err(RequestError::unsupported(
            "function_call",
            "(deprecated; use `tool_choice`)",
        ));
    }
    if let Some(format) = parse::<Value>(fields.response_format, "response_format")? {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some(kind @ ("json_object" | "json_schema")) => {
                return Err(RequestError::new(
                    format!("`response_format` {kind} is not supported for Anthropic upstreams yet; describe the JSON you want in the prompt, or route the request to an OpenAI-compatible model."),
                    "response_format",
                ))
            }
            _ => {
                return Err(RequestError::new(
                    "`response_format` must be an object whose `type` is `text`, `json_object` or `json_schema`.",
                    "response_format",
                ))
            }
        }
    }
    Ok(())
}

/// One field, read on its own so that an error names it.
fn parse<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    param: &'static str,
) -> Result<Option<T>, RequestError> {
    raw.map(|raw| {
        serde_json::from_str(raw.get()).map_err(|e| {
            RequestError::new(
                format!("`{param}` is malformed: {}.", without_position(&e)),
                param,
            )
        })
    })
    .transpose()
}

/// serde_json's message without " at line 1 column 42", which would point
/// into the field rather than the body.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn positive(param: &'static str) -> RequestError {
    RequestError::new(format!("`{param}` must be at least 1."), param)
}

// --- tools ---------------------------------------------------------------------

#[derive(Deserialize)]
struct InTool<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    function: Option<InFunction<'a>>,
}

#[derive(Deserialize)]
struct InFunction<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parameters: Option<&'a RawValue>,
}

/// `tool_choice` (and `parallel_tool_calls`) for Anthropic; `has_tools`
/// says whether any tool is sent.
fn tool_choice<'a>(
    choice: Option<&'a Value>,
    parallel: Option<bool>,
    has_tools: bool,
) -> Result<Option<OutToolChoice<'a>>, RequestError> {
    let (kind, name) = match choice {
        None => ("auto", None),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => ("auto", None),
            "required" => ("any", None),
            "none" => ("none", None),
            _ => return Err(bad_tool_choice()),
        },
        Some(value) => match (
            value.get("type").and_then(Value::as_str),
            value.pointer("/function/name").and_then(Value::as_str),
        ) {
            (Some("function"), Some(name)) => ("tool", Some(name)),
            _ => return Err(bad_tool_choice()),
        },
    };
    if !has_tools {
        return match kind {
            "auto" | "none" => Ok(None),
            _ => Err(RequestError::new(
                "`tool_choice` requires `tools`.",
                "tool_choice",
            )),
        };
    }
    let disable_parallel_tool_use = parallel == Some(false) && kind != "none";
    if choice.is_none() && !disable_parallel_tool_use {
        return Ok(None);
    }
    Ok(Some(OutToolChoice {
        kind,
        name,
        disable_parallel_tool_use,
    }))
}

fn bad_tool_choice() -> RequestError {
    RequestError::new(
        "`tool_choice` must be `auto`, `required`, `none` or `{\"type\":\"function\",\"function\":{\"name\":…}}` for an Anthropic upstream.",
        "tool_choice",
    )
}

/// `stop` as an array of sequences.
fn stop_sequences(stop: Option<&Value>) -> Result<Vec<&str>, RequestError> {
    let bad = || RequestError::new("`stop` must be a string or an array of strings.", "stop");
    match stop {
        None => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.as_str()]),
        Some(Value::Array(many)) => many.iter().map(|s| s.as_str().ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
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

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct OutTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a RawValue,
}

impl<'a> OutTool<'a> {
    fn of(tool: &'a InTool<'a>) -> Result<OutTool<'a>, RequestError> {
        match (&*tool.kind, &tool.function) {
            ("function", Some(function)) => Ok(OutTool {
                name: &function.name,
                description: function.description.as_deref(),
                input_schema: match function.parameters {
                    Some(schema) => schema,
                    None => empty_schema(),
                },
            }),
            (kind, _) => Err(RequestError::new(
                format!("Tools of type `{kind}` are not supported for Anthropic upstreams; only `function` tools (with a `function` object) are."),
                "tools",
            )),
        }
    }
}

fn empty_schema() -> &'static RawValue {
    match serde_json::from_str::<&RawValue>(EMPTY_SCHEMA) {
        Ok(raw) => raw,
        Err(_) => unreachable!("EMPTY_SCHEMA is JSON"),
    }
}

#[derive(Serialize)]
struct OutToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    disable_parallel_tool_use: bool,
}
