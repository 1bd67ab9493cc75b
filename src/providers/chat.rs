//! The OpenAI chat request's `messages`, as every translating provider
//! reads them: borrowed from the body where it can be, each part's fields
//! that some provider maps (the rest skipped unread). Anthropic, Gemini and
//! Bedrock each turn these into their own turns (`messages.rs`,
//! `contents.rs`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

/// One message of the request.
#[derive(Deserialize)]
pub(crate) struct InMessage<'a> {
    #[serde(borrow)]
    pub(crate) role: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) content: Content<'a>,
    #[serde(borrow)]
    pub(crate) tool_calls: Option<Vec<InToolCall<'a>>>,
    #[serde(borrow)]
    pub(crate) tool_call_id: Option<Cow<'a, str>>,
    pub(crate) function_call: Option<IgnoredAny>,
}

/// A message's `content`: a string, an array of parts, or null/absent.
#[derive(Default)]
pub(crate) enum Content<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Parts(Vec<InPart<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Content<'a>, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an array of content parts, or null")
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
            fn visit_unit<E: de::Error>(self) -> Result<Content<'a>, E> {
                Ok(Content::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Content<'a>, E> {
                Ok(Content::Absent)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(64));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A content part; fields of the other part types are skipped.
#[derive(Deserialize)]
pub(crate) struct InPart<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) image_url: Option<ImageUrl<'a>>,
    #[serde(borrow)]
    pub(crate) input_audio: Option<InputAudio<'a>>,
    #[serde(borrow)]
    pub(crate) file: Option<InFile<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct ImageUrl<'a> {
    #[serde(borrow)]
    pub(crate) url: Cow<'a, str>,
}

#[derive(Deserialize)]
pub(crate) struct InputAudio<'a> {
    #[serde(borrow)]
    pub(crate) data: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) format: Cow<'a, str>,
}

#[derive(Deserialize)]
pub(crate) struct InFile<'a> {
    #[serde(borrow)]
    pub(crate) file_data: Option<Cow<'a, str>>,
    pub(crate) file_id: Option<IgnoredAny>,
}

#[derive(Deserialize)]
pub(crate) struct InToolCall<'a> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) function: Option<InFunctionCall<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct InFunctionCall<'a> {
    #[serde(borrow)]
    pub(crate) name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) arguments: Cow<'a, str>,
}
