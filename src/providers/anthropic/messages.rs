//! The `messages` of an OpenAI request → Anthropic's `system` and turns.
//!
//! The rules are in the module docs of `providers::anthropic` ("Messages").
//! Texts, ids and image data are borrowed from the request body; tool-call
//! arguments are checked to be a JSON object and written out as sent.

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

/// One Anthropic turn being built.
struct Turn<'a> {
    role: Role,
    blocks: Vec<Block<'a>>,
}

/// System text and the turns of `messages`, merged by role.
pub(super) fn convert_messages<'a>(
    messages: &'a [InMessage<'a>],
) -> Result<(Option<Cow<'a, str>>, Vec<OutMessage<'a>>), RequestError> {
    let mut system: Vec<&'a str> = Vec::new();
    let mut turns: Vec<Turn<'a>> = Vec::with_capacity(messages.len());
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
                        "with an assistant `function_call` (deprecated; use `tool_calls`)", "Anthropic"));
                }
                let mut blocks = content_blocks(&message.content, Role::Assistant)?;
                for call in message.tool_calls.iter().flatten() {
                    blocks.push(tool_use(call)?);
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
                let content = content_blocks(&message.content, Role::User)?;
                let content = match content.as_slice() {
                    [] => None,
                    [Block::Text { text }] => Some(ToolResultContent::Text(text)),
                    _ => Some(ToolResultContent::Blocks(content)),
                };
                let block = Block::ToolResult {
                    tool_use_id: id,
                    content,
                };
                (Role::User, vec![block])
            }
            "function" => {
                return Err(RequestError::unsupported(
                    "messages",
                    "with the `function` role (deprecated; use `tool`)", "Anthropic"))
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
        match turns.last_mut() {
            Some(last) if last.role == role => last.blocks.extend(blocks),
            _ => turns.push(Turn { role, blocks }),
        }
    }

    let system = match system.as_slice() {
        [] => None,
        [one] => Some(Cow::Borrowed(*one)),
        several => Some(Cow::Owned(several.join("\n\n"))),
    };
    let messages = turns.into_iter().map(OutMessage::of).collect();
    Ok((system, messages))
}

/// The texts of a system or developer message.
fn system_texts<'a>(content: &'a Content<'a>, out: &mut Vec<&'a str>) -> Result<(), RequestError> {
    match content {
        Content::Absent => {}
        Content::Text(text) if text.is_empty() => {}
        Content::Text(text) => out.push(text),
        Content::Parts(parts) => {
            for part in parts {
                match (&*part.kind, &part.text) {
                    ("text", Some(text)) if text.is_empty() => {}
                    ("text", Some(text)) => out.push(text),
                    _ => {
                        return Err(RequestError::new(
                            format!("A system or developer message can only hold text parts for an Anthropic upstream, not `{}`.", part.kind),
                            "messages",
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

/// The blocks of a user, assistant or tool message's content; empty texts
/// are left out.
fn content_blocks<'a>(
    content: &'a Content<'a>,
    role: Role,
) -> Result<Vec<Block<'a>>, RequestError> {
    let parts = match content {
        Content::Absent => return Ok(Vec::new()),
        Content::Text(text) if text.is_empty() => return Ok(Vec::new()),
        Content::Text(text) => return Ok(vec![Block::Text { text }]),
        Content::Parts(parts) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        let block = match (&*part.kind, role) {
            ("text", _) => part.text.as_deref().map(|text| Block::Text { text }),
            ("refusal", Role::Assistant) => {
                part.refusal.as_deref().map(|text| Block::Text { text })
            }
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
                    Role::User => "user and tool",
                    Role::Assistant => "assistant",
                };
                return Err(RequestError::new(
                    format!("Content parts of type `{kind}` are not supported in {role} messages for Anthropic upstreams."),
                    "messages",
                ));
            }
        };
        match block {
            Some(Block::Text { text: "" }) => {}
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

/// An image block for a `data:<type>;base64,` URI or an http(s) URL.
fn image_block(url: &str) -> Result<Block<'_>, RequestError> {
    let bad = || {
        RequestError::new(
            "An image URL must be http(s) or a base64 `data:` URI (`data:image/png;base64,…`) for an Anthropic upstream.",
            "messages",
        )
    };
    let scheme = |prefix: &str| {
        url.len() >= prefix.len()
            && url.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    if scheme("https://") || scheme("http://") {
        return Ok(Block::Image {
            source: ImageSource::Url { url },
        });
    }
    if !scheme("data:") {
        return Err(bad());
    }
    let (header, data) = url[5..].split_once(',').ok_or_else(bad)?;
    let (media_type, encoding) = header.split_once(';').ok_or_else(bad)?;
    if media_type.is_empty() || !encoding.eq_ignore_ascii_case("base64") || data.is_empty() {
        return Err(bad());
    }
    Ok(Block::Image {
        source: ImageSource::Base64 { media_type, data },
    })
}

/// A `tool_use` block for an assistant's tool call.
fn tool_use<'a>(call: &'a InToolCall<'a>) -> Result<Block<'a>, RequestError> {
    let function = match (call.kind.as_deref(), &call.function) {
        (None | Some("function"), Some(function)) => function,
        (kind, _) => {
            return Err(RequestError::new(
                format!("Tool call `{}` must be of type `function` with a `function` object for an Anthropic upstream (got {}).", call.id, kind.unwrap_or("none")),
                "messages",
            ))
        }
    };
    let arguments = function.arguments.trim();
    let input: &'a RawValue = if arguments.is_empty() {
        empty_object()
    } else {
        serde_json::from_str(&function.arguments).map_err(|_| not_an_object(call))?
    };
    if !input.get().starts_with('{') {
        return Err(not_an_object(call));
    }
    Ok(Block::ToolUse {
        id: &call.id,
        name: &function.name,
        input,
    })
}

fn empty_object() -> &'static RawValue {
    match serde_json::from_str::<&RawValue>("{}") {
        Ok(raw) => raw,
        Err(_) => unreachable!("`{{}}` is JSON"),
    }
}

fn not_an_object(call: &InToolCall<'_>) -> RequestError {
    RequestError::new(
        format!(
            "The `arguments` of tool call `{}` must be a JSON object for an Anthropic upstream.",
            call.id
        ),
        "messages",
    )
}

// --- Anthropic turns ----------------------------------------------------------

/// One Anthropic turn.
#[derive(Serialize)]
pub(super) struct OutMessage<'a> {
    role: &'static str,
    content: OutContent<'a>,
}

impl<'a> OutMessage<'a> {
    fn of(mut turn: Turn<'a>) -> OutMessage<'a> {
        let role = match turn.role {
            Role::User => {
                // Anthropic wants a user turn's tool results before anything else.
                turn.blocks
                    .sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
                "user"
            }
            Role::Assistant => "assistant",
        };
        let content = match turn.blocks.as_slice() {
            [Block::Text { text }] => OutContent::Text(text),
            _ => OutContent::Blocks(turn.blocks),
        };
        OutMessage { role, content }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent<'a>>,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}
