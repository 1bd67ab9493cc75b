//! `tools`, `tool_choice` and `parallel_tool_calls` → Anthropic's `tools`
//! and `tool_choice`, with the answer tool of a `response_format`
//! (structured.rs) when there is one.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::request::is_false;
use super::structured::{AnswerTool, ANSWER_TOOL};
use crate::providers::RequestError;

/// The body's value for `{"type":"object","properties":{}}`, the schema of a
/// tool without `parameters`.
const EMPTY_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

/// Anthropic's `tools` (the client's, then the answer tool) and
/// `tool_choice`.
pub(super) fn tools_and_choice<'a>(
    tools: &'a [InTool<'a>],
    choice: Option<&'a Value>,
    parallel: Option<bool>,
    answer: Option<&'a AnswerTool<'a>>,
) -> Result<(Vec<OutTool<'a>>, Option<OutToolChoice<'a>>), RequestError> {
    let mut out = tools
        .iter()
        .map(OutTool::of)
        .collect::<Result<Vec<_>, _>>()?;
    let choice = tool_choice(choice, parallel, !out.is_empty(), answer.is_some())?;
    if let Some(answer) = answer {
        out.push(OutTool {
            name: ANSWER_TOOL,
            description: Some(&answer.description),
            input_schema: answer.schema,
        });
    }
    Ok((out, choice))
}

/// One of the request's `tools`.
#[derive(Deserialize)]
pub(super) struct InTool<'a> {
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
/// says whether the client sent tools, `answer` whether the answer tool of
/// a `response_format` is added (structured.rs).
fn tool_choice<'a>(
    choice: Option<&'a Value>,
    parallel: Option<bool>,
    has_tools: bool,
    answer: bool,
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
    if !has_tools && !matches!(kind, "auto" | "none") {
        return Err(RequestError::new(
            "`tool_choice` requires `tools`.",
            "tool_choice",
        ));
    }
    let (kind, name) = match (answer, kind) {
        (false, _) | (true, "tool") => (kind, name),
        (true, "auto" | "any") if has_tools => ("any", None),
        (true, _) => ("tool", Some(ANSWER_TOOL)),
    };
    if !has_tools && !answer {
        return Ok(None);
    }
    let forced_answer = name == Some(ANSWER_TOOL);
    let disable_parallel_tool_use = (parallel == Some(false) || forced_answer) && kind != "none";
    if choice.is_none() && !answer && !disable_parallel_tool_use {
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

/// One of Anthropic's `tools`.
#[derive(Serialize)]
pub(super) struct OutTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a RawValue,
}

impl<'a> OutTool<'a> {
    fn of(tool: &'a InTool<'a>) -> Result<OutTool<'a>, RequestError> {
        match (&*tool.kind, &tool.function) {
            ("function", Some(function)) if function.name == ANSWER_TOOL => Err(RequestError::new(
                format!("The tool name `{ANSWER_TOOL}` is reserved by Switchyard for `response_format`; rename the tool."),
                "tools",
            )),
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

/// Anthropic's `tool_choice`.
#[derive(Serialize)]
pub(super) struct OutToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    disable_parallel_tool_use: bool,
}
