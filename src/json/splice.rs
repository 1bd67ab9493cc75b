//! The model splice: a new model name in place of the old, as zero-copy parts.

use bytes::Bytes;

use super::inspect::Inspected;
use super::string::encode_json_string;

/// Return the body with the model value (`inspected.model_span`) replaced by
/// `new_model` encoded as a JSON string, escaped the way `serde_json` does it.
///
/// Zero-copy: the result is the untouched prefix and suffix of `body` (shared, not
/// copied) around a freshly encoded value. When there is no model span, or the
/// encoded value is byte-for-byte what is already there, the result is the single
/// original `body`. `inspected` must come from `inspect(body)`; a span that does
/// not fit `body` is a caller bug and also yields the body unchanged rather than a
/// panic.
pub fn splice_model(body: &Bytes, inspected: &Inspected, new_model: &str) -> Spliced {
    let unchanged = || Spliced {
        parts: vec![body.clone()],
    };
    let Some(span) = inspected.model_span.clone() else {
        return unchanged();
    };
    if span.start > span.end || span.end > body.len() {
        return unchanged();
    }
    let encoded = encode_json_string(new_model);
    if body[span.clone()] == encoded[..] {
        return unchanged();
    }
    let mut parts = Vec::with_capacity(3);
    if span.start > 0 {
        parts.push(body.slice(..span.start));
    }
    parts.push(Bytes::from(encoded));
    if span.end < body.len() {
        parts.push(body.slice(span.end..));
    }
    Spliced { parts }
}

/// The parts of a rewritten body; concatenated in order they are the new body.
///
/// There are one to three parts: the original body alone, or prefix / new model
/// value / suffix (an empty prefix or suffix is left out). Hand them to the HTTP
/// body as a stream of chunks to avoid copying a large body.
#[derive(Debug, Clone)]
pub struct Spliced {
    /// The chunks of the new body, in order.
    pub parts: Vec<Bytes>,
}

impl Spliced {
    /// Total length in bytes of the new body (use it for `Content-Length`).
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Whether the new body is empty (never true for a body [`inspect`](super::inspect()) accepted).
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Bytes::is_empty)
    }

    /// The new body as one buffer. Free for a single part; otherwise it copies, so
    /// prefer streaming [`Spliced::parts`] for large bodies.
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [] => Bytes::new(),
            [only] => only.clone(),
            parts => {
                let mut out = Vec::with_capacity(self.len());
                for p in parts {
                    out.extend_from_slice(p);
                }
                Bytes::from(out)
            }
        }
    }
}
