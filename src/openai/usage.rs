//! Token usage as upstreams report it, read without a DOM.

use serde::Deserialize;

use super::lenient::Count;
pub use super::lenient::MAX_TOKEN_COUNT;
use crate::json::{member, skip_ws};
use crate::sse::Event;

/// Token usage as reported in a chunk's or body's `usage` object.
///
/// Chat and legacy completions report `prompt_tokens` / `completion_tokens` /
/// `total_tokens`; the Responses API reports `input_tokens` / `output_tokens` /
/// `total_tokens`, which map to the same fields. A missing count is 0; a
/// missing total is the sum of the other two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens in the prompt (`prompt_tokens` or `input_tokens`).
    pub prompt_tokens: u64,
    /// Tokens generated (`completion_tokens` or `output_tokens`), reasoning included.
    pub completion_tokens: u64,
    /// `total_tokens`, or the sum of the two above when absent.
    pub total_tokens: u64,
}

/// Usage from one event's data, if it carries a non-null `usage` object at the
/// top level or under `response` (Responses API `response.completed`).
///
/// Chat chunks with `include_usage` say `"usage":null` on every chunk but the
/// last, so a byte search skips those (and all chunks without `"usage"`)
/// before any parsing. A key spelled with `\u` escapes is not found.
///
/// Anthropic streams are not OpenAI-style: their `message_delta` usage reads
/// as output tokens only, and their input tokens (under `message`) are not
/// read; counting those is the translator's job.
pub fn usage_of_event(event: &Event<'_>) -> Option<Usage> {
    if !event.has_data {
        return None;
    }
    usage_in_json(&event.data)
}

/// Whether a relayed stream event counts as one generated token when a
/// stream ends without reported usage (the client cancelled it, or it broke):
/// an event with data that is not `[DONE]`. Content-less chunks (the role
/// chunk, Azure's filter results) come before the first token, where the
/// commit point classifies every event exactly and counts only content; after
/// it a cheap test is enough — it runs on every event of every stream, and
/// the count it feeds is documented as an estimate (most servers send one
/// token per chunk; a finish chunk counts as one).
pub fn counts_as_token(event: &Event<'_>) -> bool {
    event.has_data && !event.data.starts_with(b"[DONE]")
}

/// Usage from a whole non-stream JSON response body: the top-level `usage`, or
/// `response.usage`.
///
/// Parses only those objects; everything else is skipped with `IgnoredAny`, so
/// no DOM is built however large the body is.
pub fn usage_of_body(body: &[u8]) -> Option<Usage> {
    usage_in_json(body)
}

/// The top-level `usage` object, else `response.usage`. Only those two
/// objects are parsed; the rest of the body is skipped by a structural scan
/// (strings jumped with `memchr`), which costs a fraction of walking every
/// value with serde — this runs on every non-streamed answer.
fn usage_in_json(json: &[u8]) -> Option<Usage> {
    if !mentions_non_null_usage(json) {
        return None;
    }
    let top = skip_ws(json);
    if let Some(usage) = member(top, b"usage").and_then(|at| usage_object(&top[at..])) {
        return Some(usage);
    }
    let response = &top[member(top, b"response")?..];
    usage_object(&response[member(response, b"usage")?..])
}

/// The usage object at the start of `value`, if it is one.
fn usage_object(value: &[u8]) -> Option<Usage> {
    if value.first() != Some(&b'{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(value);
    WireUsage::deserialize(&mut de)
        .ok()
        .map(WireUsage::into_usage)
}

const USAGE_KEY: &[u8] = b"\"usage\"";

/// True when some `"usage"` key is followed by anything but `null`.
fn mentions_non_null_usage(json: &[u8]) -> bool {
    let mut from = 0;
    while let Some(at) = find_usage_key(&json[from..]) {
        from += at + USAGE_KEY.len();
        let after = skip_ws(&json[from..]);
        let Some(value) = after.strip_prefix(b":") else {
            continue; // a string value "usage", not a key
        };
        if !skip_ws(value).starts_with(b"null") {
            return true;
        }
    }
    false
}

/// Where `"usage"` first occurs in `haystack`. The searcher is built once:
/// this runs on every streamed event, where building it per call (as
/// `memmem::find` does) was most of the cost.
fn find_usage_key(haystack: &[u8]) -> Option<usize> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| memchr::memmem::Finder::new(USAGE_KEY))
        .find(haystack)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WireUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    total_tokens: Count,
    input_tokens: Count,
    output_tokens: Count,
}

impl WireUsage {
    pub(super) fn into_usage(self) -> Usage {
        let prompt = self.prompt_tokens.0.or(self.input_tokens.0).unwrap_or(0);
        let completion = self
            .completion_tokens
            .0
            .or(self.output_tokens.0)
            .unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self
                .total_tokens
                .0
                .unwrap_or(prompt.saturating_add(completion)),
        }
    }
}
