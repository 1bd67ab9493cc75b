//! `tools` and `tool_choice` → Gemini's `tools` (one `functionDeclarations`
//! tool) and `toolConfig.functionCallingConfig`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::providers::RequestError;

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

/// Gemini's `tools` (empty, or one tool declaring every function) and
/// `toolConfig` for `tool_choice`.
pub(super) fn tools_and_config<'a>(
    tools: &'a [InTool<'a>],
    choice: Option<&'a Value>,
) -> Result<(Vec<OutTool<'a>>, Option<ToolConfig<'a>>), RequestError> {
    let declarations = tools
        .iter()
        .map(Declaration::of)
        .collect::<Result<Vec<_>, _>>()?;
    let (mode, name) = match choice {
        None | Some(Value::Null) => return Ok((wrap(declarations), None)),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => ("AUTO", None),
            "required" => ("ANY", None),
            "none" => ("NONE", None),
            _ => return Err(bad_tool_choice()),
        },
        Some(value) => match (
            value.get("type").and_then(Value::as_str),
            value.pointer("/function/name").and_then(Value::as_str),
        ) {
            (Some("function"), Some(name)) => ("ANY", Some(name)),
            _ => return Err(bad_tool_choice()),
        },
    };
    if declarations.is_empty() {
        return match mode {
            // Nothing to call either way.
            "AUTO" | "NONE" => Ok((Vec::new(), None)),
            _ => Err(RequestError::new(
                "`tool_choice` requires `tools`.",
                "tool_choice",
            )),
        };
    }
    if let Some(name) = name {
        if !declarations.iter().any(|d| d.name == name) {
            return Err(RequestError::new(
                format!(
                    "`tool_choice` names the function `{}`, which is not among `tools`.",
                    crate::text::prefix_within(name, 64)
                ),
                "tool_choice",
            ));
        }
    }
    let config = ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names: name.map(|name| [name]),
        },
    };
    Ok((wrap(declarations), Some(config)))
}

fn wrap(declarations: Vec<Declaration<'_>>) -> Vec<OutTool<'_>> {
    if declarations.is_empty() {
        Vec::new()
    } else {
        vec![OutTool {
            function_declarations: declarations,
        }]
    }
}

fn bad_tool_choice() -> RequestError {
    RequestError::new(
        "`tool_choice` must be `auto`, `required`, `none` or `{\"type\":\"function\",\"function\":{\"name\":…}}` for a Gemini upstream.",
        "tool_choice",
    )
}

/// One of Gemini's `tools`: the client's functions.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutTool<'a> {
    function_declarations: Vec<Declaration<'a>>,
}

/// A `FunctionDeclaration`. `parametersJsonSchema` takes full JSON Schema
/// (`parameters` takes Google's OpenAPI subset), so the client's schema
/// goes there as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Declaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a RawValue>,
}

impl<'a> Declaration<'a> {
    fn of(tool: &'a InTool<'a>) -> Result<Declaration<'a>, RequestError> {
        match (&*tool.kind, &tool.function) {
            ("function", Some(function)) => {
                let schema = function.parameters.filter(|s| s.get() != "null");
                if schema.is_some_and(|s| !s.get().starts_with('{')) {
                    return Err(RequestError::new(
                        format!(
                            "The `parameters` of tool `{}` must be a JSON Schema object.",
                            crate::text::prefix_within(&function.name, 64)
                        ),
                        "tools",
                    ));
                }
                Ok(Declaration {
                    name: &function.name,
                    description: function.description.as_deref(),
                    parameters_json_schema: schema,
                })
            }
            (kind, _) => Err(RequestError::new(
                format!(
                    "Tools of type `{}` are not supported for Gemini upstreams; only `function` tools (with a `function` object) are.",
                    crate::text::prefix_within(kind, 64)
                ),
                "tools",
            )),
        }
    }
}

/// `toolConfig`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}
