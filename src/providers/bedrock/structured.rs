//! `response_format` `json_schema` / `json_object` by a forced tool.
//!
//! Converse has a native structured output (`outputConfig.textFormat`),
//! but only some models accept it (Bedrock refuses the request for the
//! others) and a new schema is first compiled, which AWS says can take
//! minutes. A tool's input, on the other hand, is JSON that follows the
//! tool's schema on every Converse model with tool use. So, as for
//! Anthropic, the request gets one more tool, [`ANSWER_TOOL`], whose
//! `inputSchema.json` is the client's schema, and `toolChoice` makes the
//! model call it; the answer translators turn that call back into the
//! message's `content` (the JSON text) with `finish_reason` `stop`.
//!
//! The translators know the call by its name alone, so nothing has to pass
//! from the request to the answer; a client tool of that name is refused.
//! `toolChoice` with the answer tool (tools.rs): none given, `auto` or
//! `required` with client tools → `{"any":{}}` (call a tool or answer);
//! without client tools, or `none` → `{"tool":{"name":"switchyard_json_answer"}}`;
//! a named function stays forced (then no JSON answer comes). `any` and
//! `tool` are supported by Anthropic, Mistral Large and Amazon Nova models;
//! others answer a Bedrock `ValidationException`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::providers::RequestError;

/// The name of the tool that carries a structured answer.
pub(super) const ANSWER_TOOL: &str = "switchyard_json_answer";

/// The schema of a `json_object` answer: any object.
const ANY_OBJECT: &str = r#"{"type":"object"}"#;

/// The answer tool a `response_format` asks for.
pub(super) struct AnswerTool<'a> {
    /// What the model reads about the tool.
    pub(super) description: String,
    /// Its `inputSchema.json`: the client's schema as written.
    pub(super) schema: &'a RawValue,
}

#[derive(Deserialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    json_schema: Option<JsonSchema<'a>>,
}

#[derive(Deserialize)]
struct JsonSchema<'a> {
    name: Option<Cow<'a, str>>,
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    schema: Option<&'a RawValue>,
}

/// The schema's root `type`, if it names one.
#[derive(Deserialize)]
struct Root {
    #[serde(rename = "type")]
    kind: Option<Value>,
}

/// The answer tool for the request's `response_format` (`None` for `text`
/// or no format).
pub(super) fn answer_tool(raw: Option<&RawValue>) -> Result<Option<AnswerTool<'_>>, RequestError> {
    let bad = |why: &str| RequestError::new(format!("`response_format` {why}."), "response_format");
    let Some(raw) = raw else { return Ok(None) };
    if raw.get() == "null" {
        return Ok(None);
    }
    let format: ResponseFormat<'_> = serde_json::from_str(raw.get()).map_err(|_| {
        bad("must be an object whose `type` is `text`, `json_object` or `json_schema`")
    })?;
    let lead = "Give your final answer by calling this tool: its input is the answer";
    match &*format.kind {
        "text" => Ok(None),
        "json_object" => Ok(Some(AnswerTool {
            description: format!("{lead}, a JSON object."),
            schema: any_object(),
        })),
        "json_schema" => {
            let Some(spec) = format.json_schema else {
                return Err(bad("`json_schema` needs its `json_schema` object"));
            };
            let schema = match spec.schema {
                Some(schema) => schema,
                None => any_object(),
            };
            match serde_json::from_str::<Root>(schema.get()) {
                Ok(Root { kind: None }) => {}
                Ok(Root { kind: Some(kind) }) if kind == "object" => {}
                _ => {
                    return Err(bad(
                        "`json_schema.schema` must describe a JSON object for Bedrock upstreams (the answer is a tool input)",
                    ))
                }
            }
            let mut description = String::from(lead);
            if let Some(name) = spec.name.filter(|n| !n.is_empty()) {
                description.push_str(&format!(" (`{name}`)"));
            }
            description.push('.');
            if let Some(about) = spec.description.filter(|d| !d.is_empty()) {
                description.push(' ');
                description.push_str(&about);
            }
            Ok(Some(AnswerTool {
                description,
                schema,
            }))
        }
        _ => Err(bad(
            "must be an object whose `type` is `text`, `json_object` or `json_schema`",
        )),
    }
}

fn any_object() -> &'static RawValue {
    match serde_json::from_str::<&RawValue>(ANY_OBJECT) {
        Ok(raw) => raw,
        Err(_) => unreachable!("ANY_OBJECT is JSON"),
    }
}

/// `finish_reason` for an answer: a `tool_use` stop that only called the
/// answer tool is a finished answer, `stop`.
pub(super) fn finish_reason(
    stop_reason: Option<&str>,
    answered: bool,
    tool_calls: bool,
) -> &'static str {
    match super::response::finish_reason(stop_reason) {
        "tool_calls" if answered && !tool_calls => "stop",
        reason => reason,
    }
}
