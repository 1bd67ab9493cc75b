//! `tools` and `tool_choice` → Converse's `toolConfig`, with the answer
//! tool of a `response_format` (structured.rs) when there is one.
//!
//! | OpenAI | Converse |
//! |---|---|
//! | `tools[]` of type `function` | `toolConfig.tools[{"toolSpec":{name, description, "inputSchema":{"json": parameters as written}}}]` (no `parameters` → `{"type":"object","properties":{}}`; `strict` dropped) |
//! | `tool_choice` absent | no `toolChoice` (the model's default, auto) |
//! | `"auto"` / `"required"` | `{"auto":{}}` / `{"any":{}}` |
//! | `{"type":"function","function":{"name"}}` | `{"tool":{"name"}}` |
//! | `"none"` | no `toolConfig` at all: the model is offered no tool |
//!
//! Converse refuses a request whose messages hold `toolUse` or `toolResult`
//! blocks without a `toolConfig`. So when the history has tool calls and
//! no tool would be offered (`"none"`, or no `tools` sent), the client's
//! tools are sent anyway without a `toolChoice` — or, when it sent none,
//! one spec per tool the history called (schema `{"type":"object"}`) —
//! which keeps the conversation valid; the model may then still call a
//! tool, answering `finish_reason: "tool_calls"`. `parallel_tool_calls`
//! has no counterpart and is dropped.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::structured::{AnswerTool, ANSWER_TOOL};
use crate::providers::RequestError;

/// The schema of a tool without `parameters`.
const EMPTY_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
/// The schema of a tool known only from the history.
const ANY_OBJECT: &str = r#"{"type":"object"}"#;
/// What the model reads about a tool known only from the history.
const HISTORY_TOOL: &str = "A tool called earlier in this conversation.";

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

/// What `tool_choice` asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Choice<'a> {
    Unspecified,
    Auto,
    Any,
    None,
    Tool(&'a str),
}

/// Converse's `toolConfig` (`None`: leave it out).
pub(super) fn tool_config<'a>(
    tools: &'a [InTool<'a>],
    choice: Option<&'a Value>,
    answer: Option<&'a AnswerTool<'a>>,
    has_tool_blocks: bool,
    called: &[&'a str],
) -> Result<Option<ToolConfig<'a>>, RequestError> {
    let mut specs = tools.iter().map(Tool::of).collect::<Result<Vec<_>, _>>()?;
    let choice = parse_choice(choice)?;
    let has_tools = !specs.is_empty();
    if !has_tools && matches!(choice, Choice::Any | Choice::Tool(_)) {
        return Err(RequestError::new(
            "`tool_choice` requires `tools`.",
            "tool_choice",
        ));
    }
    let choice = match (answer, choice) {
        (None, choice) => choice,
        (Some(_), Choice::Tool(name)) => Choice::Tool(name),
        (Some(_), Choice::Unspecified | Choice::Auto | Choice::Any) if has_tools => Choice::Any,
        (Some(_), _) => Choice::Tool(ANSWER_TOOL),
    };
    if let Some(answer) = answer {
        specs.push(Tool {
            tool_spec: ToolSpec {
                name: ANSWER_TOOL,
                description: Some(&answer.description),
                input_schema: InputSchema {
                    json: answer.schema,
                },
            },
        });
    }
    let tool_choice = match choice {
        Choice::Unspecified => None,
        Choice::Auto => Some(ToolChoice::Auto(Empty {})),
        Choice::Any => Some(ToolChoice::Any(Empty {})),
        Choice::Tool(name) => Some(ToolChoice::Tool(Named { name })),
        Choice::None => {
            if !has_tool_blocks {
                return Ok(None);
            }
            None
        }
    };
    if specs.is_empty() {
        if !has_tool_blocks || called.is_empty() {
            return Ok(None);
        }
        specs = called
            .iter()
            .map(|name| Tool {
                tool_spec: ToolSpec {
                    name,
                    description: Some(HISTORY_TOOL),
                    input_schema: InputSchema {
                        json: raw(ANY_OBJECT),
                    },
                },
            })
            .collect();
    }
    Ok(Some(ToolConfig {
        tools: specs,
        tool_choice,
    }))
}

fn parse_choice(choice: Option<&Value>) -> Result<Choice<'_>, RequestError> {
    Ok(match choice {
        None | Some(Value::Null) => Choice::Unspecified,
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => Choice::Auto,
            "required" => Choice::Any,
            "none" => Choice::None,
            _ => return Err(bad_tool_choice()),
        },
        Some(value) => match (
            value.get("type").and_then(Value::as_str),
            value.pointer("/function/name").and_then(Value::as_str),
        ) {
            (Some("function"), Some(name)) => Choice::Tool(name),
            _ => return Err(bad_tool_choice()),
        },
    })
}

fn bad_tool_choice() -> RequestError {
    RequestError::new(
        "`tool_choice` must be `auto`, `required`, `none` or `{\"type\":\"function\",\"function\":{\"name\":…}}` for a Bedrock upstream.",
        "tool_choice",
    )
}

fn raw(json: &'static str) -> &'static RawValue {
    match serde_json::from_str::<&RawValue>(json) {
        Ok(raw) => raw,
        Err(_) => unreachable!("the constant schemas are JSON"),
    }
}

/// `toolConfig`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolConfig<'a> {
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoice<'a>>,
}

/// A `Tool` union with its one member, `toolSpec`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    tool_spec: ToolSpec<'a>,
}

impl<'a> Tool<'a> {
    fn of(tool: &'a InTool<'a>) -> Result<Tool<'a>, RequestError> {
        match (&*tool.kind, &tool.function) {
            ("function", Some(function)) if function.name == ANSWER_TOOL => Err(RequestError::new(
                format!("The tool name `{ANSWER_TOOL}` is reserved by Switchyard for `response_format`; rename the tool."),
                "tools",
            )),
            ("function", Some(function)) => Ok(Tool {
                tool_spec: ToolSpec {
                    name: &function.name,
                    description: function.description.as_deref().filter(|d| !d.is_empty()),
                    input_schema: InputSchema {
                        json: function.parameters.unwrap_or_else(|| raw(EMPTY_SCHEMA)),
                    },
                },
            }),
            (kind, _) => Err(RequestError::new(
                format!("Tools of type `{kind}` are not supported for Bedrock upstreams; only `function` tools (with a `function` object) are."),
                "tools",
            )),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: InputSchema<'a>,
}

#[derive(Serialize)]
struct InputSchema<'a> {
    json: &'a RawValue,
}

/// `toolChoice`: a union.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolChoice<'a> {
    Auto(Empty),
    Any(Empty),
    Tool(Named<'a>),
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}
