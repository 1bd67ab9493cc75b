//! OpenAI `chat.completion` → Anthropic `message`, and what the stream
//! shares with it: `stop_reason`, lenient usage counts, generated ids.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::openai::MAX_TOKEN_COUNT;
use crate::text::prefix_within;

/// Longest id taken from an upstream (a chunk's `id`, a tool call's), in bytes.
pub(super) const MAX_ID_BYTES: usize = 256;

/// Longest stop sequence reported back (vLLM's `stop_reason`), in bytes.
pub(super) const MAX_STOP_BYTES: usize = 1024;

/// OpenAI chat.completion JSON -> Anthropic `message` JSON.
///
/// `model`: the model name the client asked for (Anthropic answers echo
/// it). `None` when the body is not a readable chat completion (not a JSON
/// object with a `choices` array); the caller then reports an upstream
/// protocol error. Only choice 0 is read. The module docs give the mapping.
pub fn response_from_openai(body: &[u8], model: &str) -> Option<Vec<u8>> {
    if !super::is_object(body) {
        return None;
    }
    let completion: Completion<'_> = serde_json::from_slice(body).ok()?;
    let choice = completion
        .choices
        .iter()
        .find(|c| c.index.0.unwrap_or(0) == 0);
    let mut content = Vec::new();
    let mut finish = None;
    let mut stop_sequence = None;
    let mut refused = false;
    if let Some(choice) = choice {
        finish = choice.finish_reason.as_deref();
        stop_sequence = choice.stop_reason.as_deref();
        if let Some(message) = &choice.message {
            let reasoning = message
                .reasoning_content
                .as_deref()
                .or(message.reasoning.as_deref())
                .filter(|r| !r.is_empty());
            if let Some(thinking) = reasoning {
                content.push(OutBlock::Thinking {
                    thinking,
                    signature: "",
                });
            }
            let text = message.content.as_ref().map(Text::text).unwrap_or_default();
            let text = match (&*text, message.refusal.as_deref()) {
                ("", Some(refusal)) if !refusal.is_empty() => {
                    refused = true;
                    Cow::Borrowed(refusal)
                }
                _ => text,
            };
            if !text.is_empty() {
                content.push(OutBlock::Text { text });
            }
            for call in message.tool_calls.iter().flatten() {
                let Some(function) = &call.function else {
                    continue;
                };
                content.push(OutBlock::ToolUse {
                    id: match call.id.as_deref().filter(|id| !id.is_empty()) {
                        Some(id) => Cow::Borrowed(prefix_within(id, MAX_ID_BYTES)),
                        None => Cow::Owned(generated_id("toolu_")),
                    },
                    name: function.name.as_deref().unwrap_or_default(),
                    input: Input::of(function.arguments.as_deref().unwrap_or_default()),
                });
            }
        }
    }
    let tools = content
        .iter()
        .any(|b| matches!(b, OutBlock::ToolUse { .. }));
    let (stop_reason, stop_sequence) = stop_reason(finish, stop_sequence, tools, refused);
    let message = OutMessage {
        id: message_id(completion.id.as_deref()),
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason,
        stop_sequence,
        usage: completion.usage.unwrap_or_default().to_anthropic(),
    };
    serde_json::to_vec(&message).ok()
}

/// Anthropic's `stop_reason` (and `stop_sequence`) for OpenAI's
/// `finish_reason`; `stop_sequence` is vLLM's `stop_reason` string, which
/// names the stop sequence that ended the answer; `tools`: tool calls were
/// made; `refused`: the answer was a `refusal`.
pub(super) fn stop_reason<'a>(
    finish: Option<&str>,
    stop_sequence: Option<&'a str>,
    tools: bool,
    refused: bool,
) -> (&'static str, Option<&'a str>) {
    match finish {
        Some("length") => ("max_tokens", None),
        Some("tool_calls" | "function_call") => ("tool_use", None),
        Some("content_filter") => ("refusal", None),
        _ if tools => ("tool_use", None),
        _ if refused => ("refusal", None),
        Some("stop") => match stop_sequence {
            Some(seq) => ("stop_sequence", Some(prefix_within(seq, MAX_STOP_BYTES))),
            None => ("end_turn", None),
        },
        _ => ("end_turn", None),
    }
}

/// `msg_` and the upstream's id, or a generated one.
pub(super) fn message_id(id: Option<&str>) -> String {
    match id.filter(|id| !id.is_empty()) {
        Some(id) => format!("msg_{}", prefix_within(id, MAX_ID_BYTES)),
        None => generated_id("msg_"),
    }
}

/// An id unique within this process: `prefix`, the clock and a counter.
pub(super) fn generated_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}switchyard{nanos:x}{n:x}")
}

/// A tool call's `arguments` as the `input` object: the JSON as the
/// upstream wrote it when it is an object, `{}` when empty, otherwise
/// `{"_raw": "<arguments>"}` so nothing the model wrote is lost.
pub(super) enum Input<'a> {
    Raw(&'a RawValue),
    Unparsed(&'a str),
}

impl<'a> Input<'a> {
    pub(super) fn of(arguments: &'a str) -> Input<'a> {
        if arguments.trim().is_empty() {
            return Input::Raw(empty_object());
        }
        match serde_json::from_str::<&RawValue>(arguments) {
            Ok(raw) if raw.get().starts_with('{') => Input::Raw(raw),
            _ => Input::Unparsed(arguments),
        }
    }
}

impl Serialize for Input<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Raw(raw) => raw.serialize(s),
            Input::Unparsed(text) => {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("_raw", text)?;
                map.end()
            }
        }
    }
}

fn empty_object() -> &'static RawValue {
    match serde_json::from_str::<&RawValue>("{}") {
        Ok(raw) => raw,
        Err(_) => unreachable!("`{{}}` is JSON"),
    }
}

// --- usage ---------------------------------------------------------------------

/// OpenAI's `usage` (missing, null or absurd counts are absent).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(super) struct OpenAiUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    prompt_tokens_details: Option<Details>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
struct Details {
    cached_tokens: Count,
}

impl OpenAiUsage {
    /// Anthropic's usage: OpenAI's `prompt_tokens` includes the cached
    /// tokens, Anthropic's `input_tokens` does not.
    pub(super) fn to_anthropic(self) -> AnthropicUsage {
        let prompt = self.prompt_tokens.0.unwrap_or(0);
        let cached = self
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens.0)
            .unwrap_or(0)
            .min(prompt);
        AnthropicUsage {
            input_tokens: prompt - cached,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: cached,
            output_tokens: self.completion_tokens.0.unwrap_or(0),
        }
    }
}

/// Anthropic's `usage` object, in Anthropic's key order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct AnthropicUsage {
    pub(super) input_tokens: u64,
    pub(super) cache_creation_input_tokens: u64,
    pub(super) cache_read_input_tokens: u64,
    pub(super) output_tokens: u64,
}

/// A token count: a non-negative integer (or an integral float) up to
/// [`MAX_TOKEN_COUNT`]; any other value counts as absent.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Count(pub(super) Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count((v <= MAX_TOKEN_COUNT).then_some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                Ok(Count(
                    u64::try_from(v).ok().filter(|v| *v <= MAX_TOKEN_COUNT),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                // The range check keeps the `as` conversion exact.
                let integral = v.fract() == 0.0 && (0.0..=MAX_TOKEN_COUNT as f64).contains(&v);
                Ok(Count(integral.then_some(v as u64)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Count(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Count(None))
            }
        }
        d.deserialize_any(V)
    }
}

// --- OpenAI's chat.completion --------------------------------------------------------

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Count,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    /// vLLM: the stop string that ended the answer (or a token id).
    #[serde(borrow, default)]
    stop_reason: StopString<'a>,
}

/// vLLM's `stop_reason` when it is a string; a token id or null is `None`.
#[derive(Default)]
pub(super) struct StopString<'a>(Option<Cow<'a, str>>);

impl StopString<'_> {
    pub(super) fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for StopString<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StopString<'a>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<'a> {
            Text(#[serde(borrow)] Cow<'a, str>),
            Other(IgnoredAny),
        }
        Ok(match Either::deserialize(d)? {
            Either::Text(text) => StopString(Some(text)),
            Either::Other(_) => StopString(None),
        })
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

/// A message's `content`: a string, or (some servers) an array of text parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<TextPart<'a>>),
}

#[derive(Deserialize)]
struct TextPart<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

impl<'a> Text<'a> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Text::One(text) => Cow::Borrowed(text),
            Text::Parts(parts) => {
                Cow::Owned(parts.iter().filter_map(|p| p.text.as_deref()).collect())
            }
        }
    }
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

// --- Anthropic's message ----------------------------------------------------------

#[derive(Serialize)]
struct OutMessage<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<OutBlock<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
    usage: AnthropicUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutBlock<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'static str,
    },
    Text {
        text: Cow<'a, str>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Input<'a>,
    },
}
