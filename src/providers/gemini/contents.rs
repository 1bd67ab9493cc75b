//! The `messages` of an OpenAI request → Gemini's `systemInstruction` and
//! `contents`.
//!
//! The rules are in the module docs of `providers::gemini` ("Messages").
//! Texts, image data and tool arguments are borrowed from the request body
//! where serde could borrow them; tool-call arguments and tool results are
//! checked to be JSON and written out as sent.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::value::RawValue;

use super::ids::{carried, FOREIGN_CALL_SIGNATURE};
use crate::providers::chat::{Content, InFile, InMessage, InToolCall, InputAudio};
use crate::providers::RequestError;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Model,
}

/// The system instruction and the contents of `messages`, merged by role.
pub(super) fn convert_messages<'a>(
    messages: &'a [InMessage<'a>],
) -> Result<(Option<SystemInstruction<'a>>, Vec<OutContent<'a>>), RequestError> {
    let mut system: Vec<&'a str> = Vec::new();
    let mut contents: Vec<OutContent<'a>> = Vec::with_capacity(messages.len());
    // Each tool call's id → its function name and Gemini id, the latest
    // assistant message's winning when a client reuses ids.
    let mut calls: HashMap<&'a str, (&'a str, Option<&'a str>)> = HashMap::new();
    for message in messages {
        let (role, parts) = match &*message.role {
            "system" | "developer" => {
                system_texts(&message.content, &mut system)?;
                continue;
            }
            "user" => (Role::User, user_parts(&message.content)?),
            "assistant" => {
                if message.function_call.is_some() {
                    return Err(RequestError::unsupported(
                        "messages",
                        "with an assistant `function_call` (deprecated; use `tool_calls`)",
                        "Gemini",
                    ));
                }
                let mut parts = assistant_parts(&message.content)?;
                let first_call = parts.len();
                for call in message.tool_calls.iter().flatten() {
                    let (name, part) = function_call(call)?;
                    calls.insert(&call.id, (name, carried(&call.id).gemini_id));
                    parts.push(part);
                }
                // Gemini 3 checks the signature of the first call of each
                // step. A turn whose calls carry none (made on another
                // provider, by a model that signs nothing, or written by the
                // client) gets the stand-in Google documents on that first
                // call, so the conversation can go on on Gemini 3.
                let signed = parts[first_call..]
                    .iter()
                    .any(|p| p.thought_signature.is_some());
                if let Some(first) = parts.get_mut(first_call).filter(|_| !signed) {
                    first.thought_signature = Some(FOREIGN_CALL_SIGNATURE.to_owned());
                }
                (Role::Model, parts)
            }
            "tool" => {
                let Some(id) = message.tool_call_id.as_deref() else {
                    return Err(RequestError::new(
                        "A `tool` message needs its `tool_call_id`.",
                        "messages",
                    ));
                };
                let Some(&(name, gemini_id)) = calls.get(id) else {
                    return Err(RequestError::new(
                        format!(
                            "The `tool` message for `{}` answers no earlier assistant tool call; Gemini needs the function's name, so the assistant message with that call must come first.",
                            crate::text::prefix_within(id, 128)
                        ),
                        "messages",
                    ));
                };
                let part = OutPart {
                    function_response: Some(FunctionResponse {
                        id: gemini_id,
                        name,
                        response: tool_response(&message.content)?,
                    }),
                    ..OutPart::default()
                };
                (Role::User, vec![part])
            }
            "function" => {
                return Err(RequestError::unsupported(
                    "messages",
                    "with the `function` role (deprecated; use `tool`)",
                    "Gemini",
                ))
            }
            other => {
                return Err(RequestError::new(
                    format!(
                        "Unknown message role `{}`; expected system, developer, user, assistant or tool.",
                        crate::text::prefix_within(other, 64)
                    ),
                    "messages",
                ))
            }
        };
        if parts.is_empty() {
            continue;
        }
        let role = match role {
            Role::User => "user",
            Role::Model => "model",
        };
        match contents.last_mut() {
            Some(last) if last.role == role => last.parts.extend(parts),
            _ => contents.push(OutContent { role, parts }),
        }
    }
    if contents.is_empty() {
        return Err(RequestError::new(
            "`messages` needs at least one user, assistant or tool message with content for a Gemini upstream.",
            "messages",
        ));
    }

    let system = match system.as_slice() {
        [] => None,
        [one] => Some(Cow::Borrowed(*one)),
        several => Some(Cow::Owned(several.join("\n\n"))),
    };
    let system = system.map(|text| SystemInstruction {
        parts: [SystemPart { text }],
    });
    Ok((system, contents))
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
                            format!(
                                "A system or developer message can only hold text parts for a Gemini upstream, not `{}`.",
                                crate::text::prefix_within(&part.kind, 64)
                            ),
                            "messages",
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

/// The parts of a user message; empty texts are left out.
fn user_parts<'a>(content: &'a Content<'a>) -> Result<Vec<OutPart<'a>>, RequestError> {
    let parts = match content {
        Content::Absent => return Ok(Vec::new()),
        Content::Text(text) if text.is_empty() => return Ok(Vec::new()),
        Content::Text(text) => return Ok(vec![OutPart::text(text)]),
        Content::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match &*part.kind {
            "text" => match part.text.as_deref() {
                Some("") => {}
                Some(text) => out.push(OutPart::text(text)),
                None => return Err(missing("text")),
            },
            "image_url" => match &part.image_url {
                Some(image) => out.push(OutPart::inline(image_data(&image.url)?)),
                None => return Err(missing("image_url")),
            },
            "input_audio" => match &part.input_audio {
                Some(audio) => out.push(OutPart::inline(audio_data(audio)?)),
                None => return Err(missing("input_audio")),
            },
            "file" => match &part.file {
                Some(file) => out.push(OutPart::inline(file_data(file)?)),
                None => return Err(missing("file")),
            },
            kind => {
                return Err(RequestError::new(
                    format!(
                        "Content parts of type `{}` are not supported in user messages for Gemini upstreams.",
                        crate::text::prefix_within(kind, 64)
                    ),
                    "messages",
                ))
            }
        }
    }
    Ok(out)
}

/// The text parts of an assistant message (`refusal` parts as text).
fn assistant_parts<'a>(content: &'a Content<'a>) -> Result<Vec<OutPart<'a>>, RequestError> {
    let parts = match content {
        Content::Absent => return Ok(Vec::new()),
        Content::Text(text) if text.is_empty() => return Ok(Vec::new()),
        Content::Text(text) => return Ok(vec![OutPart::text(text)]),
        Content::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let text = match &*part.kind {
            "text" => part.text.as_deref().ok_or_else(|| missing("text"))?,
            "refusal" => part.refusal.as_deref().ok_or_else(|| missing("refusal"))?,
            kind => {
                return Err(RequestError::new(
                    format!(
                        "Content parts of type `{}` are not supported in assistant messages for Gemini upstreams.",
                        crate::text::prefix_within(kind, 64)
                    ),
                    "messages",
                ))
            }
        };
        if !text.is_empty() {
            out.push(OutPart::text(text));
        }
    }
    Ok(out)
}

fn missing(kind: &'static str) -> RequestError {
    RequestError::new(
        format!("A `{kind}` part needs its `{kind}` field."),
        "messages",
    )
}

/// `inlineData` for a `data:<type>;base64,<data>` URI (any other image URL,
/// http(s) included, is refused: Gemini's `fileData` takes only File API
/// and Cloud Storage URIs).
fn image_data(url: &str) -> Result<Blob<'_>, RequestError> {
    let is_http = ["https://", "http://"].iter().any(|scheme| {
        url.len() >= scheme.len()
            && url.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
    });
    let why = if is_http {
        "Image URLs cannot be fetched by a Gemini upstream; send the image as a base64 `data:` URI (`data:image/png;base64,…`)."
    } else {
        "An image URL must be a base64 `data:` URI (`data:image/png;base64,…`) for a Gemini upstream."
    };
    data_uri(url).ok_or_else(|| RequestError::new(why, "messages"))
}

/// The MIME type and base64 data of a `data:<type>[;…];base64,<data>` URI.
fn data_uri(url: &str) -> Option<Blob<'_>> {
    let prefix = "data:";
    if url.len() < prefix.len()
        || !url.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        return None;
    }
    let (header, data) = url[prefix.len()..].split_once(',')?;
    let (mime_type, encoding) = header.rsplit_once(';')?;
    let mime_type = mime_type.split(';').next().unwrap_or_default();
    if mime_type.is_empty() || !encoding.eq_ignore_ascii_case("base64") || data.is_empty() {
        return None;
    }
    Some(Blob { mime_type, data })
}

/// `inlineData` for an `input_audio` part.
fn audio_data<'a>(audio: &'a InputAudio<'a>) -> Result<Blob<'a>, RequestError> {
    let mime_type = match &*audio.format {
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "aiff" => "audio/aiff",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        other => {
            return Err(RequestError::new(
                format!(
                    "`input_audio.format` `{}` is not supported for Gemini upstreams; use wav, mp3, aiff, aac, ogg or flac.",
                    crate::text::prefix_within(other, 32)
                ),
                "messages",
            ))
        }
    };
    if audio.data.is_empty() {
        return Err(missing("input_audio"));
    }
    Ok(Blob {
        mime_type,
        data: &audio.data,
    })
}

/// `inlineData` for a `file` part with `file_data` (a base64 data URI).
fn file_data<'a>(file: &'a InFile<'a>) -> Result<Blob<'a>, RequestError> {
    match (&file.file_data, &file.file_id) {
        (Some(data), _) => data_uri(data).ok_or_else(|| {
            RequestError::new(
                "`file.file_data` must be a base64 `data:` URI (`data:application/pdf;base64,…`) for a Gemini upstream.",
                "messages",
            )
        }),
        (None, Some(_)) => Err(RequestError::new(
            "`file.file_id` (an OpenAI file) cannot be read by a Gemini upstream; send the file inline as `file_data`.",
            "messages",
        )),
        (None, None) => Err(missing("file")),
    }
}

/// A `functionCall` part (with its thought signature) for an assistant's
/// tool call, and the function's name.
fn function_call<'a>(call: &'a InToolCall<'a>) -> Result<(&'a str, OutPart<'a>), RequestError> {
    let function = match (call.kind.as_deref(), &call.function) {
        (None | Some("function"), Some(function)) => function,
        (kind, _) => {
            return Err(RequestError::new(
                format!(
                    "Tool call `{}` must be of type `function` with a `function` object for a Gemini upstream (got {}).",
                    crate::text::prefix_within(&call.id, 128),
                    crate::text::prefix_within(kind.unwrap_or("none"), 64)
                ),
                "messages",
            ))
        }
    };
    let arguments = function.arguments.trim();
    let args: &'a RawValue = if arguments.is_empty() {
        empty_object()
    } else {
        serde_json::from_str(arguments).map_err(|_| not_an_object(call))?
    };
    if !args.get().starts_with('{') {
        return Err(not_an_object(call));
    }
    let carried = carried(&call.id);
    let signature = carried.signature;
    Ok((
        &function.name,
        OutPart {
            function_call: Some(FunctionCall {
                id: carried.gemini_id,
                name: &function.name,
                args,
            }),
            thought_signature: signature,
            ..OutPart::default()
        },
    ))
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
            "The `arguments` of tool call `{}` must be a JSON object for a Gemini upstream.",
            crate::text::prefix_within(&call.id, 128)
        ),
        "messages",
    )
}

/// A tool message's content as a `functionResponse.response`: the text if
/// it is a JSON object, else `{"content": text}`.
fn tool_response<'a>(content: &'a Content<'a>) -> Result<ToolResponse<'a>, RequestError> {
    let text: Cow<'a, str> = match content {
        Content::Absent => Cow::Borrowed(""),
        Content::Text(text) => Cow::Borrowed(text),
        Content::Parts(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for part in parts {
                match (&*part.kind, &part.text) {
                    ("text", Some(text)) => texts.push(&**text),
                    (kind, _) => {
                        return Err(RequestError::new(
                            format!(
                                "A `tool` message can only hold text parts for a Gemini upstream, not `{}`.",
                                crate::text::prefix_within(kind, 64)
                            ),
                            "messages",
                        ))
                    }
                }
            }
            match texts.as_slice() {
                [one] => Cow::Borrowed(*one),
                several => Cow::Owned(several.concat()),
            }
        }
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        match text {
            Cow::Borrowed(text) => {
                if let Ok(raw) = serde_json::from_str::<&'a RawValue>(text) {
                    return Ok(ToolResponse::Object(raw));
                }
            }
            Cow::Owned(ref joined) => {
                if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(joined) {
                    return Ok(ToolResponse::Joined(raw));
                }
            }
        }
    }
    Ok(ToolResponse::Text { content: text })
}

// --- Gemini contents ------------------------------------------------------------

/// `systemInstruction`.
#[derive(Serialize)]
pub(super) struct SystemInstruction<'a> {
    parts: [SystemPart<'a>; 1],
}

#[derive(Serialize)]
struct SystemPart<'a> {
    text: Cow<'a, str>,
}

/// One of Gemini's `contents`.
#[derive(Serialize)]
pub(super) struct OutContent<'a> {
    role: &'static str,
    parts: Vec<OutPart<'a>>,
}

/// A part: exactly one of the data fields is set, `thoughtSignature` only
/// beside a `functionCall`.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct OutPart<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_data: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<String>,
}

impl<'a> OutPart<'a> {
    fn text(text: &'a str) -> OutPart<'a> {
        OutPart {
            text: Some(text),
            ..OutPart::default()
        }
    }

    fn inline(blob: Blob<'a>) -> OutPart<'a> {
        OutPart {
            inline_data: Some(blob),
            ..OutPart::default()
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    name: &'a str,
    args: &'a RawValue,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    name: &'a str,
    response: ToolResponse<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolResponse<'a> {
    /// The tool's text, a JSON object, as written.
    Object(&'a RawValue),
    /// The tool's text parts, joined into a JSON object.
    Joined(Box<RawValue>),
    /// Any other text.
    Text { content: Cow<'a, str> },
}
