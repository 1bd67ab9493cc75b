//! What an OpenAI-style stream event says, for the commit point and error
//! detection.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::lenient::{drain_map, drain_seq, ignore_values, Obj, Shape};
use crate::sse::Event;

/// What an OpenAI-style event (`chat.completion.chunk`, `text_completion`, or a
/// Responses API event) says, for routing decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkKind {
    /// The data starts with `[DONE]` (openai-python's own test).
    Done,
    /// An error frame: a JSON object with a truthy top-level `"error"` (as
    /// openai-python decides), `event: error`, or a `type` of `"error"` or
    /// `"response.failed"`.
    Error,
    /// Carries content, so the stream can commit: any choice with a non-empty
    /// `delta.content`, `delta.tool_calls`, `delta.refusal`,
    /// `delta.reasoning_content` or `delta.reasoning`, a non-null
    /// `delta.function_call` or `finish_reason`, or a non-empty `text` (legacy
    /// completions). Responses API: `response.output_item.added`,
    /// `response.output_text.delta`, `response.function_call_arguments.delta`,
    /// `response.refusal.delta`, `response.completed` and
    /// `response.incomplete`.
    Content,
    /// Valid JSON without content: the role-only first chunk, an empty-choices
    /// chunk (Azure's prompt filter results, the usage chunk), Responses
    /// `response.created` / `response.in_progress`, non-object JSON.
    Empty,
    /// No data: comments, keep-alives, a bare `event:` line.
    Comment,
    /// Data that is not JSON (the client's SDK would fail to parse it).
    Other,
}

/// Classifies one event for the commit point and error detection.
pub fn classify(event: &Event<'_>) -> ChunkKind {
    if event.event == Some("error") {
        return ChunkKind::Error;
    }
    if !event.has_data {
        return ChunkKind::Comment;
    }
    let data: &[u8] = &event.data;
    if data.starts_with(b"[DONE]") {
        return ChunkKind::Done;
    }
    match serde_json::from_slice::<Obj<Frame>>(data) {
        Ok(Obj(Some(frame))) => frame.kind(event.event),
        Ok(Obj(None)) => ChunkKind::Empty,
        // Valid JSON our structs refuse (a duplicated key) carries nothing we
        // can rely on; only bytes that are not JSON at all are `Other`.
        Err(_) if serde_json::from_slice::<IgnoredAny>(data).is_ok() => ChunkKind::Empty,
        Err(_) => ChunkKind::Other,
    }
}

/// The top-level fields of a stream chunk that classification needs.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Frame {
    error: Shape,
    #[serde(rename = "type")]
    kind: TypeTag,
    choices: Choices,
}

impl Frame {
    fn kind(&self, event_name: Option<&str>) -> ChunkKind {
        if self.error.truthy {
            return ChunkKind::Error;
        }
        // Responses API events name their type in the data; fall back to the
        // `event:` line for servers that only put it there.
        let tag = match (&self.kind, event_name) {
            (TypeTag::Absent, Some(name)) => TypeTag::of(name),
            (tag, _) => *tag,
        };
        match tag {
            TypeTag::Error => ChunkKind::Error,
            TypeTag::ResponseContent => ChunkKind::Content,
            TypeTag::ResponseQuiet => ChunkKind::Empty,
            TypeTag::Absent | TypeTag::Other if self.choices.content => ChunkKind::Content,
            TypeTag::Absent | TypeTag::Other => ChunkKind::Empty,
        }
    }
}

/// What a `type` string means.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum TypeTag {
    #[default]
    Absent,
    Error,
    ResponseContent,
    ResponseQuiet,
    /// Not a Responses API type (e.g. Anthropic's `message_start`), or not a string.
    Other,
}

impl TypeTag {
    fn of(kind: &str) -> TypeTag {
        match kind {
            "error" | "response.failed" => TypeTag::Error,
            // `response.output_item.added` announces every output item before
            // its deltas; `response.incomplete` is a final answer cut by
            // `max_output_tokens` or the content filter, like a chat chunk's
            // `finish_reason`.
            "response.output_item.added"
            | "response.output_text.delta"
            | "response.function_call_arguments.delta"
            | "response.refusal.delta"
            | "response.completed"
            | "response.incomplete" => TypeTag::ResponseContent,
            kind if kind.starts_with("response.") => TypeTag::ResponseQuiet,
            _ => TypeTag::Other,
        }
    }
}

impl<'de> Deserialize<'de> for TypeTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TypeTag, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeTag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TypeTag, E> {
                Ok(TypeTag::of(v))
            }
            ignore_values!(TypeTag::Other; bool, number, null, seq, map);
        }
        d.deserialize_any(V)
    }
}

/// Whether any element of `choices` carries content; anything but an array
/// carries none. Reads the array without collecting it.
#[derive(Default)]
struct Choices {
    content: bool,
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Choices, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices, A::Error> {
                let mut content = false;
                while let Some(Obj(choice)) = seq.next_element::<Obj<Choice>>()? {
                    content |= choice.is_some_and(|c| c.carries_content());
                }
                Ok(Choices { content })
            }
            ignore_values!(Choices::default(); bool, number, string, null, map);
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Choice {
    delta: Obj<Delta>,
    /// Legacy completions stream their tokens here.
    text: Shape,
    finish_reason: Shape,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Delta {
    content: Shape,
    tool_calls: Shape,
    refusal: Shape,
    function_call: Shape,
    /// Reasoning tokens from vLLM, llama.cpp (`reasoning_content`) and Ollama
    /// (`reasoning`): the client sees them, so the answer has started.
    reasoning_content: Shape,
    reasoning: Shape,
}

impl Choice {
    fn carries_content(&self) -> bool {
        let delta = self.delta.0.as_ref().is_some_and(|d| {
            d.content.truthy
                || d.tool_calls.truthy
                || d.refusal.truthy
                || d.function_call.non_null
                || d.reasoning_content.truthy
                || d.reasoning.truthy
        });
        delta || self.text.truthy || self.finish_reason.non_null
    }
}

// --- usage -------------------------------------------------------------------
