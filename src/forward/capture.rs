//! The answer's text, captured for the request log's `include_content`.

use crate::text;

/// Most answer text captured for one request-log record.
pub(super) const MAX_CAPTURE: usize = 1 << 20;

/// The text an answer event carries: chat deltas, legacy completion text,
/// or a Responses-API text delta.
pub(super) fn event_text(data: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    if let Some(delta) = v.get("delta").and_then(|d| d.as_str()) {
        return Some(delta.to_owned());
    }
    let choices = v.get("choices")?.as_array()?;
    let text: String = choices
        .iter()
        .filter_map(|c| {
            c.pointer("/delta/content")
                .or_else(|| c.get("text"))
                .and_then(|t| t.as_str())
        })
        .collect();
    (!text.is_empty()).then_some(text)
}

pub(super) fn push_capped(into: &mut String, text: &str) {
    let room = MAX_CAPTURE.saturating_sub(into.len());
    into.push_str(text::prefix_within(text, room));
}
