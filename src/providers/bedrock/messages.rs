//! The `messages` of an OpenAI request → Converse's `system` blocks and
//! `messages`.
//!
//! | OpenAI message | Converse |
//! |---|---|
//! | `system`, `developer` (a string or text parts) | one `system` block `{"text"}` per text, in order |
//! | `user` text part / string | `{"text"}` in a `user` message |
//! | `user` `image_url` with a `data:image/{png,jpeg,gif,webp};base64,` URI | `{"image":{"format","source":{"bytes": <the base64 as sent>}}}` |
//! | `assistant` text or `refusal` part | `{"text"}` in an `assistant` message |
//! | `assistant` `tool_calls[]` | `{"toolUse":{"toolUseId","name","input": <arguments, a JSON object>}}` |
//! | `tool` (`tool_call_id`) | `{"toolResult":{"toolUseId","content":[…]}}` in a `user` message: a content that is one JSON object → `[{"json": <it, as written>}]`, other text → `[{"text"}]` per text |
//!
//! Converse requires roles to alternate, so consecutive messages of one
//! role (after mapping: `tool` messages and a following `user` message)
//! merge into one message, in a user message tool results first (parallel
//! tool results become one message). Empty texts are dropped (Converse
//! refuses blank text blocks), and so is a message left with no content.
//! Texts, ids and image data are borrowed from the request body.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::providers::chat::{Content, InMessage, InToolCall};
use crate::providers::RequestError;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
}

/// The converted `messages`, and what the tools need to know about them.
pub(super) struct Converted<'a> {
    /// The `system` texts, in order.
    pub(super) system: Vec<SystemBlock<'a>>,
    pub(super) messages: Vec<OutMessage<'a>>,
    /// The history holds `toolUse` or `toolResult` blocks (Converse then
    /// requires `toolConfig`).
    pub(super) has_tool_blocks: bool,
    /// The names of the tools the history's calls used, first use first,
    /// each once.
    pub(super) called: Vec<&'a str>,
}

/// System blocks and messages, merged by role.
pub(super) fn convert_messages<'a>(
    messages: &'a [InMessage<'a>],
) -> Result<Converted<'a>, RequestError> {
    let mut system = Vec::new();
    let mut out: Vec<OutMessage<'a>> = Vec::with_capacity(messages.len());
    let mut has_tool_blocks = false;
    let mut called: Vec<&'a str> = Vec::new();
    for message in messages {
        let (role, blocks) = match &*message.role {
            "system" | "developer" => {
                system_texts(&message.content, &mut system)?;
                continue;
            }
            "user" => (Role::User, content_blocks(&message.content, Role::User)?),
            "assistant" => {
                if message.function_call.is_some() {
                    return Err(RequestError::unsupported(
                        "messages",
                        "with an assistant `function_call` (deprecated; use `tool_calls`)",
                        "Bedrock",
                    ));
                }
                let mut blocks = content_blocks(&message.content, Role::Assistant)?;
                for call in message.tool_calls.iter().flatten() {
                    let (block, name) = tool_use(call)?;
                    blocks.push(block);
                    has_tool_blocks = true;
                    if !called.contains(&name) {
                        called.push(name);
                    }
                }
                (Role::Assistant, blocks)
            }
            "tool" => {
                let Some(id) = message.tool_call_id.as_deref() else {
                    return Err(RequestError::new(
                        "A `tool` message needs its `tool_call_id`.",
                        "messages",
                    ));
                };
                has_tool_blocks = true;
                let block = Block::ToolResult(ToolResult {
                    tool_use_id: tool_use_id(id),
                    content: tool_result_content(&message.content)?,
                });
                (Role::User, vec![block])
            }
            "function" => {
                return Err(RequestError::unsupported(
                    "messages",
                    "with the `function` role (deprecated; use `tool`)",
                    "Bedrock",
                ))
            }
            other => {
                return Err(RequestError::new(
                    format!("Unknown message role `{other}`; expected system, developer, user, assistant or tool."),
                    "messages",
                ))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => out.push(OutMessage {
                role,
                content: blocks,
            }),
        }
    }
    for message in &mut out {
        if message.role == Role::User {
            // Tool results answer the previous assistant message: first.
            message
                .content
                .sort_by_key(|b| !matches!(b, Block::ToolResult(_)));
        }
    }
    Ok(Converted {
        system,
        messages: out,
        has_tool_blocks,
        called,
    })
}

/// The texts of a system or developer message.
fn system_texts<'a>(
    content: &'a Content<'a>,
    out: &mut Vec<SystemBlock<'a>>,
) -> Result<(), RequestError> {
    match content {
        Content::Absent => {}
        Content::Text(text) if text.is_empty() => {}
        Content::Text(text) => out.push(SystemBlock { text }),
        Content::Parts(parts) => {
            for part in parts {
                match (&*part.kind, &part.text) {
                    ("text", Some(text)) if text.is_empty() => {}
                    ("text", Some(text)) => out.push(SystemBlock { text }),
                    _ => {
                        return Err(RequestError::new(
                            format!("A system or developer message can only hold text parts for a Bedrock upstream, not `{}`.", part.kind),
                            "messages",
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

/// The blocks of a user or assistant message's content; empty texts are
/// left out.
fn content_blocks<'a>(
    content: &'a Content<'a>,
    role: Role,
) -> Result<Vec<Block<'a>>, RequestError> {
    let parts = match content {
        Content::Absent => return Ok(Vec::new()),
        Content::Text(text) if text.is_empty() => return Ok(Vec::new()),
        Content::Text(text) => return Ok(vec![Block::Text(text)]),
        Content::Parts(parts) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        let block = match (&*part.kind, role) {
            ("text", _) => part.text.as_deref().map(Block::Text),
            ("refusal", Role::Assistant) => part.refusal.as_deref().map(Block::Text),
            ("image_url", Role::User) => match &part.image_url {
                Some(image) => Some(image_block(&image.url)?),
                None => {
                    return Err(RequestError::new(
                        "An `image_url` part needs its `image_url.url`.",
                        "messages",
                    ))
                }
            },
            (kind, role) => {
                let role = match role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                return Err(RequestError::new(
                    format!("Content parts of type `{kind}` are not supported in {role} messages for Bedrock upstreams."),
                    "messages",
                ));
            }
        };
        match block {
            Some(Block::Text("")) => {}
            Some(block) => blocks.push(block),
            None => {
                return Err(RequestError::new(
                    format!("A `{}` part needs its `{}` field.", part.kind, part.kind),
                    "messages",
                ))
            }
        }
    }
    Ok(blocks)
}

/// An image block for a `data:image/<format>;base64,` URI.
fn image_block(url: &str) -> Result<Block<'_>, RequestError> {
    let bad = || {
        RequestError::new(
            "An image must be sent as a base64 `data:` URI (`data:image/png;base64,…`) of a PNG, JPEG, GIF or WebP image for a Bedrock upstream, which does not fetch URLs; download the image and send its bytes.",
            "messages",
        )
    };
    let has_scheme = url
        .get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"));
    if !has_scheme {
        return Err(bad());
    }
    let (header, data) = url[5..].split_once(',').ok_or_else(bad)?;
    let (media_type, encoding) = header.split_once(';').ok_or_else(bad)?;
    if !encoding.eq_ignore_ascii_case("base64") || data.is_empty() {
        return Err(bad());
    }
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return Err(bad()),
    };
    Ok(Block::Image(Image {
        format,
        source: ImageSource { bytes: data },
    }))
}

/// A `toolUse` block for an assistant's tool call, and the tool's name.
fn tool_use<'a>(call: &'a InToolCall<'a>) -> Result<(Block<'a>, &'a str), RequestError> {
    let function = match (call.kind.as_deref(), &call.function) {
        (None | Some("function"), Some(function)) => function,
        (kind, _) => {
            return Err(RequestError::new(
                format!("Tool call `{}` must be of type `function` with a `function` object for a Bedrock upstream (got {}).", call.id, kind.unwrap_or("none")),
                "messages",
            ))
        }
    };
    let input = if function.arguments.trim().is_empty() {
        empty_object()
    } else {
        json_object(&function.arguments).ok_or_else(|| {
            RequestError::new(
                format!(
                    "The `arguments` of tool call `{}` must be a JSON object for a Bedrock upstream.",
                    call.id
                ),
                "messages",
            )
        })?
    };
    let block = Block::ToolUse(ToolUse {
        tool_use_id: tool_use_id(&call.id),
        name: &function.name,
        input,
    });
    Ok((block, &function.name))
}

/// `text` as a JSON object, as written; `None` if it is not one.
fn json_object(text: &str) -> Option<&RawValue> {
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

/// The `content` of a tool's result: a JSON object as `json`, else texts.
fn tool_result_content<'a>(
    content: &'a Content<'a>,
) -> Result<Vec<ToolResultBlock<'a>>, RequestError> {
    let texts: Vec<&'a str> = match content {
        Content::Absent => Vec::new(),
        Content::Text(text) => vec![text],
        Content::Parts(parts) => parts
            .iter()
            .map(|part| match (&*part.kind, part.text.as_deref()) {
                ("text", Some(text)) => Ok(text),
                _ => Err(RequestError::new(
                    format!("A `tool` message can only hold text parts for a Bedrock upstream, not `{}`.", part.kind),
                    "messages",
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    let texts: Vec<&'a str> = texts.into_iter().filter(|t| !t.is_empty()).collect();
    if let [one] = texts.as_slice() {
        if let Some(json) = json_object(one.trim()) {
            return Ok(vec![ToolResultBlock::Json(json)]);
        }
    }
    Ok(texts.into_iter().map(ToolResultBlock::Text).collect())
}

fn empty_object() -> &'static RawValue {
    match serde_json::from_str::<&RawValue>("{}") {
        Ok(raw) => raw,
        Err(_) => unreachable!("`{{}}` is JSON"),
    }
}

// --- Converse messages ----------------------------------------------------------

/// One `system` block.
#[derive(Serialize)]
pub(super) struct SystemBlock<'a> {
    text: &'a str,
}

/// One Converse message.
#[derive(Serialize)]
pub(super) struct OutMessage<'a> {
    #[serde(serialize_with = "role_name")]
    role: Role,
    content: Vec<Block<'a>>,
}

fn role_name<S: serde::Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    })
}

/// A `ContentBlock`: a union, one member per block.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Block<'a> {
    Text(&'a str),
    Image(Image<'a>),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
}

#[derive(Serialize)]
struct Image<'a> {
    format: &'static str,
    source: ImageSource<'a>,
}

/// Longest `toolUseId` Bedrock accepts.
const MAX_TOOL_USE_ID: usize = 64;

/// The `toolUseId` for an OpenAI tool-call id: as it is when Bedrock accepts
/// it (1 to 64 of `[A-Za-z0-9_-]`), else a stable stand-in made from a hash
/// of it — the same on the call and on its result, in this request and the
/// next — so a history made on another provider (Gemini's ids carry a
/// thought signature and run long) can continue on Bedrock.
fn tool_use_id(id: &str) -> Cow<'_, str> {
    let fits = !id.is_empty()
        && id.len() <= MAX_TOOL_USE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if fits {
        return Cow::Borrowed(id);
    }
    // SipHash with fixed keys: the same id gives the same stand-in in every
    // process of one build.
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    let high = hasher.finish();
    id.len().hash(&mut hasher);
    Cow::Owned(format!("tooluse_sy{high:016x}{:016x}", hasher.finish()))
}

#[derive(Serialize)]
struct ImageSource<'a> {
    bytes: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    tool_use_id: Cow<'a, str>,
    name: &'a str,
    input: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult<'a> {
    tool_use_id: Cow<'a, str>,
    content: Vec<ToolResultBlock<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolResultBlock<'a> {
    Text(&'a str),
    Json(&'a RawValue),
}
