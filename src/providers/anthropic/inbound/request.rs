//! Anthropic Messages request → OpenAI chat-completions request.
//!
//! Read like the outbound request (`../request.rs`): the top level into one
//! borrowed [`RawValue`] per known field (everything else skipped unread),
//! then each field on its own, so an error names the field. Texts, ids,
//! tool schemas, tool inputs, `temperature` and `top_p` are borrowed and
//! written as they came (schemas keep their key order). The mapping is in
//! the module docs of `inbound`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::providers::request_error::{parse, without_position};
use crate::providers::RequestError;

/// The separator put between the text blocks of one system prompt, user
/// turn, assistant turn or tool result when they become one string.
pub(super) const JOIN: &str = "\n\n";

/// What a tool result's content says when its images were moved to the
/// user message that follows (OpenAI tool messages hold text only).
pub(super) const IMAGE_MOVED: &str = "[image: see the next user message]";

/// The prefix of a tool result's text when Anthropic's `is_error` is true.
pub(super) const ERROR_PREFIX: &str = "Error: ";

/// Anthropic Messages request -> OpenAI chat-completions request body.
///
/// `model` is left as the client wrote it (the router splices the
/// upstream's). `stream` is kept; when streaming, adds
/// `"stream_options":{"include_usage":true}` so the usage can be reported
/// in `message_delta`. The module docs give the mapping.
///
/// # Errors
///
/// [`RequestError`] when the body is not a Messages request or asks for
/// something an OpenAI-compatible target cannot do.
pub fn request_to_openai(body: &[u8]) -> Result<Vec<u8>, RequestError> {
    let fields = read(body, "translated")?;
    let messages = messages(&fields)?;
    let out = translate(&fields, &messages)?;
    serde_json::to_vec(&out).map_err(|e| {
        RequestError::whole(format!(
            "The request could not be written for an OpenAI-compatible target: {e}."
        ))
    })
}

/// The top level of a Messages request; `what` the caller does with it.
pub(super) fn read<'a>(body: &'a [u8], what: &str) -> Result<Fields<'a>, RequestError> {
    let whole = |why: String| {
        RequestError::whole(format!(
            "The request body cannot be {what} for an OpenAI-compatible target: {why}. Send a Messages request: a JSON object with `model`, `max_tokens` and `messages`."
        ))
    };
    if !super::is_object(body) {
        return Err(whole("it is not a JSON object".to_owned()));
    }
    serde_json::from_slice(body).map_err(|e| whole(without_position(&e)))
}

/// The request's `messages`, parsed (the translation borrows from them).
pub(super) fn messages<'a>(fields: &Fields<'a>) -> Result<Vec<InMessage<'a>>, RequestError> {
    parse(fields.messages, "messages")?
        .ok_or_else(|| RequestError::new("`messages` is required.", "messages"))
}

/// The translation, parsed but not yet written (the token estimate walks it).
pub(super) fn translate<'a>(
    fields: &'a Fields<'a>,
    messages: &'a [InMessage<'a>],
) -> Result<OutRequest<'a>, RequestError> {
    refuse_unsupported(fields)?;
    let Some(model) = parse::<Cow<'_, str>>(fields.model, "model")? else {
        return Err(RequestError::new("`model` is required.", "model"));
    };
    let system = match parse::<Content<'_>>(fields.system, "system")? {
        None => None,
        Some(content) => system_text(content)?,
    };
    let mut out_messages = Vec::new();
    if let Some(text) = system {
        out_messages.push(OutMessage::text("system", text));
    }
    convert_messages(messages, &mut out_messages)?;

    let max_tokens = match parse::<u64>(fields.max_tokens, "max_tokens")? {
        Some(0) => {
            return Err(RequestError::new(
                "`max_tokens` must be at least 1.",
                "max_tokens",
            ))
        }
        n => n,
    };
    let temperature = unit_interval(fields.temperature, "temperature")?;
    let top_p = unit_interval(fields.top_p, "top_p")?;
    let stop: Vec<Cow<'_, str>> =
        parse(fields.stop_sequences, "stop_sequences")?.unwrap_or_default();
    let stream = parse::<bool>(fields.stream, "stream")?.unwrap_or(false);
    let user = parse::<Metadata<'_>>(fields.metadata, "metadata")?.and_then(|m| m.user_id);

    let tools: Vec<InTool<'_>> = parse(fields.tools, "tools")?.unwrap_or_default();
    let tools = tools
        .into_iter()
        .map(OutTool::of)
        .collect::<Result<Vec<_>, _>>()?;
    let (tool_choice, parallel_tool_calls) = tool_choice(
        parse::<InToolChoice<'_>>(fields.tool_choice, "tool_choice")?,
        !tools.is_empty(),
    )?;
    let response_format = response_format(fields)?;

    Ok(OutRequest {
        model,
        messages: out_messages,
        max_tokens,
        temperature,
        top_p,
        stop,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        tools,
        tool_choice,
        parallel_tool_calls,
        user,
        response_format,
    })
}

/// The top-level fields read; every other member is skipped unread.
#[derive(Deserialize)]
pub(super) struct Fields<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(borrow)]
    stop_sequences: Option<&'a RawValue>,
    #[serde(borrow)]
    stream: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow)]
    output_format: Option<&'a RawValue>,
    #[serde(borrow)]
    output_config: Option<&'a RawValue>,
    #[serde(borrow)]
    container: Option<&'a RawValue>,
    #[serde(borrow)]
    mcp_servers: Option<&'a RawValue>,
}

/// Refuses the fields whose meaning only Anthropic can honour.
fn refuse_unsupported(fields: &Fields<'_>) -> Result<(), RequestError> {
    if fields.container.is_some() {
        return Err(RequestError::new(
            "`container` (a code-execution container) exists only on Anthropic's side and cannot be used with an OpenAI-compatible target; remove it or route the request to an Anthropic model.",
            "container",
        ));
    }
    if parse::<Vec<IgnoredAny>>(fields.mcp_servers, "mcp_servers")?.is_some_and(|s| !s.is_empty()) {
        return Err(RequestError::new(
            "`mcp_servers` (Anthropic's MCP connector) runs on Anthropic's side and cannot be used with an OpenAI-compatible target; call the MCP tools yourself as client tools, or route the request to an Anthropic model.",
            "mcp_servers",
        ));
    }
    Ok(())
}

/// A number from 0 to 1 (Anthropic's range for `temperature` and
/// `top_p`), written as the client wrote it.
fn unit_interval<'a>(
    raw: Option<&'a RawValue>,
    param: &'static str,
) -> Result<Option<&'a RawValue>, RequestError> {
    match parse::<f64>(raw, param)? {
        None => Ok(None),
        Some(v) if (0.0..=1.0).contains(&v) => Ok(raw),
        Some(_) => Err(RequestError::new(
            format!("`{param}` must be between 0 and 1."),
            param,
        )),
    }
}

// --- content -------------------------------------------------------------------

/// A `content` (or `system`): a string, or an array of blocks.
pub(super) enum Content<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Content<'a>, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Content<'a>, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Content<'a>, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Content<'a>, E> {
                Ok(Content::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(64));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One content block; the fields of every kind read, the rest skipped.
#[derive(Deserialize)]
pub(super) struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
}

/// One message of the request.
#[derive(Deserialize)]
pub(super) struct InMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: Content<'a>,
}

/// The system prompt as one string (`None` when empty).
fn system_text(content: Content<'_>) -> Result<Option<Cow<'_, str>>, RequestError> {
    let text = match content {
        Content::Text(text) => text,
        Content::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for block in blocks {
                match (&*block.kind, block.text) {
                    ("text", Some(text)) => texts.push(text),
                    (kind, _) => {
                        return Err(RequestError::new(
                            format!("`system` can only hold `text` blocks (with their `text`) for an OpenAI-compatible target, not `{kind}`."),
                            "system",
                        ))
                    }
                }
            }
            join(texts)
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

/// Texts joined by [`JOIN`], empty ones left out; borrowed when there is one.
fn join<'a>(texts: Vec<Cow<'a, str>>) -> Cow<'a, str> {
    let mut texts: Vec<Cow<'a, str>> = texts.into_iter().filter(|t| !t.is_empty()).collect();
    match texts.len() {
        0 => Cow::Borrowed(""),
        1 => texts.pop().unwrap_or_default(),
        _ => Cow::Owned(texts.join(JOIN)),
    }
}

/// The OpenAI messages for Anthropic's turns, appended to `out`.
fn convert_messages<'a>(
    messages: &'a [InMessage<'a>],
    out: &mut Vec<OutMessage<'a>>,
) -> Result<(), RequestError> {
    for message in messages {
        match (&*message.role, &message.content) {
            ("user", Content::Text(text)) => out.push(OutMessage::text("user", text.clone())),
            ("assistant", Content::Text(text)) => {
                if !text.is_empty() {
                    out.push(OutMessage::text("assistant", text.clone()));
                }
            }
            ("user", Content::Blocks(blocks)) => user_turn(blocks, out)?,
            ("assistant", Content::Blocks(blocks)) => assistant_turn(blocks, out)?,
            (role, _) => {
                return Err(RequestError::new(
                    format!("Unknown message role `{role}`; a Messages request has only `user` and `assistant` turns (the system prompt is the top-level `system`)."),
                    "messages",
                ))
            }
        }
    }
    Ok(())
}

/// A user turn: its `tool_result` blocks as `tool` messages, then the
/// rest (images moved out of tool results first) as one user message.
fn user_turn<'a>(
    blocks: &'a [Block<'a>],
    out: &mut Vec<OutMessage<'a>>,
) -> Result<(), RequestError> {
    let mut moved: Vec<Part<'a>> = Vec::new();
    let mut parts: Vec<Part<'a>> = Vec::with_capacity(blocks.len());
    for block in blocks {
        match &*block.kind {
            "text" => match &block.text {
                Some(text) => parts.push(Part::Text { text: text.clone() }),
                None => return Err(needs(&block.kind, "text")),
            },
            "image" => parts.push(image(block)?),
            "document" => parts.push(Part::Text {
                text: document_text(block)?,
            }),
            "tool_result" => out.push(tool_result(block, &mut moved)?),
            kind => return Err(unsupported_block(kind, "user")),
        }
    }
    moved.append(&mut parts);
    let parts = moved;
    if parts.is_empty() {
        return Ok(());
    }
    if parts.iter().all(|p| matches!(p, Part::Text { .. })) {
        let texts = parts
            .into_iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text),
                Part::Image { .. } => None,
            })
            .collect();
        out.push(OutMessage::text("user", join(texts)));
    } else {
        out.push(OutMessage {
            role: "user",
            content: OutContent::Parts(parts),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    Ok(())
}

/// An assistant turn: its texts as `content`, its `tool_use` blocks as
/// `tool_calls`; thinking blocks are dropped.
fn assistant_turn<'a>(
    blocks: &'a [Block<'a>],
    out: &mut Vec<OutMessage<'a>>,
) -> Result<(), RequestError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for block in blocks {
        match &*block.kind {
            "text" => match &block.text {
                Some(text) => texts.push(text.clone()),
                None => return Err(needs(&block.kind, "text")),
            },
            "tool_use" => {
                let (Some(id), Some(name)) = (&block.id, &block.name) else {
                    return Err(RequestError::new(
                        "A `tool_use` block needs its `id` and `name`.",
                        "messages",
                    ));
                };
                calls.push(ToolCall {
                    id,
                    kind: "function",
                    function: FunctionCall {
                        name,
                        arguments: block.input.map_or("{}", RawValue::get),
                    },
                });
            }
            // Signed reasoning of an Anthropic model: no OpenAI target can
            // read it, and the answer does not depend on it.
            "thinking" | "redacted_thinking" => {}
            kind => return Err(unsupported_block(kind, "assistant")),
        }
    }
    let text = join(texts);
    let content = match (text.is_empty(), calls.is_empty()) {
        (true, true) => return Ok(()),
        (true, false) => OutContent::Null,
        (false, _) => OutContent::Text(text),
    };
    out.push(OutMessage {
        role: "assistant",
        content,
        tool_calls: calls,
        tool_call_id: None,
    });
    Ok(())
}

/// A `tool` message for a `tool_result` block; its images go to `moved`.
fn tool_result<'a>(
    block: &'a Block<'a>,
    moved: &mut Vec<Part<'a>>,
) -> Result<OutMessage<'a>, RequestError> {
    let Some(id) = &block.tool_use_id else {
        return Err(needs("tool_result", "tool_use_id"));
    };
    let mut texts: Vec<Cow<'a, str>> = Vec::new();
    let mut images = 0usize;
    match parse::<Content<'a>>(block.content, "messages")? {
        None => {}
        Some(Content::Text(text)) => texts.push(text),
        Some(Content::Blocks(inner)) => {
            for inner in inner {
                match &*inner.kind {
                    "text" => match inner.text {
                        Some(text) => texts.push(text),
                        None => return Err(needs("text", "text")),
                    },
                    "image" => {
                        moved.push(image(&inner)?);
                        images += 1;
                    }
                    "document" => texts.push(document_text(&inner)?),
                    kind => {
                        return Err(RequestError::new(
                            format!("A `tool_result` can only hold `text`, `image` and text `document` blocks for an OpenAI-compatible target, not `{kind}`."),
                            "messages",
                        ))
                    }
                }
            }
        }
    }
    if images > 0 {
        texts.push(Cow::Borrowed(IMAGE_MOVED));
    }
    let mut text = join(texts);
    if block.is_error == Some(true) {
        text = Cow::Owned(format!("{ERROR_PREFIX}{text}"));
    }
    Ok(OutMessage {
        role: "tool",
        content: OutContent::Text(text),
        tool_calls: Vec::new(),
        tool_call_id: Some(id),
    })
}

/// An `image_url` part for an image block.
fn image<'a>(block: &Block<'a>) -> Result<Part<'a>, RequestError> {
    let source =
        parse::<Source<'a>>(block.source, "messages")?.ok_or_else(|| needs("image", "source"))?;
    image_part(source)
}

fn image_part(source: Source<'_>) -> Result<Part<'_>, RequestError> {
    match (&*source.kind, source.media_type, source.data, source.url) {
        ("base64", Some(media_type), Some(data), _) => Ok(Part::Image {
            image_url: ImageUrl {
                url: Cow::Owned(format!("data:{media_type};base64,{data}")),
            },
        }),
        ("url", _, _, Some(url)) => Ok(Part::Image {
            image_url: ImageUrl { url },
        }),
        (kind, ..) => Err(RequestError::new(
            format!("An image `source` must be `base64` (with `media_type` and `data`) or `url` (with `url`) for an OpenAI-compatible target, not `{kind}`; send the image itself rather than a Files API id."),
            "messages",
        )),
    }
}

/// The text of a `document` block whose source is plain text.
fn document_text<'a>(block: &Block<'a>) -> Result<Cow<'a, str>, RequestError> {
    let source = parse::<Source<'a>>(block.source, "messages")?
        .ok_or_else(|| needs("document", "source"))?;
    match (&*source.kind, source.data) {
        ("text", Some(data)) => Ok(data),
        (kind, _) => Err(RequestError::new(
            format!("A `document` block with a `{kind}` source cannot be sent to an OpenAI-compatible target; only plain-text documents (`source.type: \"text\"`) can. Extract the document's text and send it as a `text` block, or route the request to an Anthropic model."),
            "messages",
        )),
    }
}

fn needs(kind: &str, field: &str) -> RequestError {
    RequestError::new(format!("A `{kind}` block needs its `{field}`."), "messages")
}

fn unsupported_block(kind: &str, role: &str) -> RequestError {
    RequestError::new(
        format!("Content blocks of type `{kind}` in {role} turns cannot be sent to an OpenAI-compatible target; remove them or route the request to an Anthropic model."),
        "messages",
    )
}

// --- tools -------------------------------------------------------------------

#[derive(Deserialize)]
struct InTool<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input_schema: Option<&'a RawValue>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct InToolChoice<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

/// The schema of a tool without `input_schema`.
const EMPTY_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

impl<'a> OutTool<'a> {
    fn of(tool: InTool<'a>) -> Result<OutTool<'a>, RequestError> {
        match tool.kind.as_deref() {
            None | Some("custom") => {}
            Some(kind) => {
                return Err(RequestError::new(
                    format!("Tool `{}` is Anthropic's server tool `{kind}`, which runs on Anthropic's side and has no counterpart for an OpenAI-compatible target; remove it (or define it as a client tool with an `input_schema`) or route the request to an Anthropic model.", tool.name.as_deref().unwrap_or("")),
                    "tools",
                ))
            }
        }
        let Some(name) = tool.name else {
            return Err(RequestError::new("Every tool needs its `name`.", "tools"));
        };
        Ok(OutTool {
            kind: "function",
            function: OutFunction {
                name,
                description: tool.description,
                parameters: match tool.input_schema {
                    Some(schema) => schema,
                    None => empty_schema(),
                },
                strict: tool.strict.filter(|s| *s),
            },
        })
    }
}

fn empty_schema() -> &'static RawValue {
    match serde_json::from_str::<&RawValue>(EMPTY_SCHEMA) {
        Ok(raw) => raw,
        Err(_) => unreachable!("EMPTY_SCHEMA is JSON"),
    }
}

/// OpenAI's `tool_choice` and `parallel_tool_calls`.
fn tool_choice<'a>(
    choice: Option<InToolChoice<'a>>,
    has_tools: bool,
) -> Result<(Option<OutToolChoice<'a>>, Option<bool>), RequestError> {
    let Some(choice) = choice else {
        return Ok((None, None));
    };
    let out = match &*choice.kind {
        "auto" => OutToolChoice::Mode("auto"),
        "any" => OutToolChoice::Mode("required"),
        "none" => OutToolChoice::Mode("none"),
        "tool" => match choice.name {
            Some(name) => OutToolChoice::Function {
                kind: "function",
                function: Named { name },
            },
            None => {
                return Err(RequestError::new(
                    "`tool_choice` of type `tool` needs the tool's `name`.",
                    "tool_choice",
                ))
            }
        },
        other => {
            return Err(RequestError::new(
                format!(
                    "`tool_choice` must be of type `auto`, `any`, `tool` or `none`, not `{other}`."
                ),
                "tool_choice",
            ))
        }
    };
    if !has_tools {
        // OpenAI refuses a `tool_choice` without `tools`.
        return match out {
            OutToolChoice::Mode("auto" | "none") => Ok((None, None)),
            _ => Err(RequestError::new(
                "`tool_choice` of type `any` or `tool` requires `tools`.",
                "tool_choice",
            )),
        };
    }
    let parallel = (choice.disable_parallel_tool_use == Some(true)).then_some(false);
    Ok((Some(out), parallel))
}

// --- structured output -----------------------------------------------------------

#[derive(Deserialize)]
struct OutputFormat<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct OutputConfig<'a> {
    #[serde(borrow, default)]
    format: Option<OutputFormat<'a>>,
}

/// `output_format` (or `output_config.format`) `json_schema` → a strict
/// `response_format`; `output_config.effort` is dropped.
fn response_format<'a>(fields: &'a Fields<'a>) -> Result<Option<ResponseFormat<'a>>, RequestError> {
    let (format, param) = match parse::<OutputFormat<'a>>(fields.output_format, "output_format")? {
        Some(format) => (Some(format), "output_format"),
        None => (
            parse::<OutputConfig<'a>>(fields.output_config, "output_config")?
                .and_then(|c| c.format),
            "output_config",
        ),
    };
    let Some(format) = format else {
        return Ok(None);
    };
    match (&*format.kind, format.schema) {
        ("json_schema", Some(schema)) => Ok(Some(ResponseFormat {
            kind: "json_schema",
            json_schema: JsonSchema {
                name: "output",
                schema,
                strict: true,
            },
        })),
        _ => Err(RequestError::new(
            format!("`{param}` must be `{{\"type\":\"json_schema\",\"schema\":{{…}}}}` for an OpenAI-compatible target."),
            param,
        )),
    }
}

// --- the OpenAI body ---------------------------------------------------------------

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
pub(super) struct OutRequest<'a> {
    model: Cow<'a, str>,
    pub(super) messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "is_false")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<OutToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
pub(super) struct OutMessage<'a> {
    pub(super) role: &'static str,
    pub(super) content: OutContent<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

impl<'a> OutMessage<'a> {
    fn text(role: &'static str, text: Cow<'a, str>) -> OutMessage<'a> {
        OutMessage {
            role,
            content: OutContent::Text(text),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum OutContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
    Null,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Part<'a> {
    Text {
        text: Cow<'a, str>,
    },
    #[serde(rename = "image_url")]
    Image {
        image_url: ImageUrl<'a>,
    },
}

#[derive(Serialize)]
pub(super) struct ImageUrl<'a> {
    url: Cow<'a, str>,
}

#[derive(Serialize)]
pub(super) struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    pub(super) function: FunctionCall<'a>,
}

#[derive(Serialize)]
pub(super) struct FunctionCall<'a> {
    pub(super) name: &'a str,
    pub(super) arguments: &'a str,
}

#[derive(Serialize)]
pub(super) struct OutTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    pub(super) function: OutFunction<'a>,
}

#[derive(Serialize)]
pub(super) struct OutFunction<'a> {
    pub(super) name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<Cow<'a, str>>,
    pub(super) parameters: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Serialize)]
struct Named<'a> {
    name: Cow<'a, str>,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchema<'a>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'static str,
    schema: &'a RawValue,
    strict: bool,
}
