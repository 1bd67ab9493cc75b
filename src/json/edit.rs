//! Surgical edits of a JSON object's top-level members: values replaced or
//! members added, every other byte of the body left as it was.

use std::collections::HashMap;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde_json::value::RawValue;

/// A JSON object's top-level members, found without building a DOM.
pub struct Members<'a> {
    body: &'a [u8],
    /// Where each member's value lies in `body` (the last one of a
    /// repeated key, as JSON parsers read it).
    spans: HashMap<&'a str, Range<usize>>,
    /// Where the object's closing `}` is.
    close: usize,
}

impl<'a> Members<'a> {
    /// Reads `body`; `None` when it is not a JSON object (or its keys use
    /// escapes, which no request member needs).
    pub fn read(body: &'a [u8]) -> Option<Members<'a>> {
        let raw: HashMap<&'a str, &'a RawValue> = serde_json::from_slice(body).ok()?;
        let base = body.as_ptr() as usize;
        let spans = raw
            .into_iter()
            .map(|(key, value)| {
                let start = value.get().as_ptr() as usize - base;
                (key, start..start + value.get().len())
            })
            .collect();
        let close = body.iter().rposition(|&b| b == b'}')?;
        Some(Members { body, spans, close })
    }

    /// The value of `key`, as written.
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.spans.get(key).map(|span| &self.body[span.clone()])
    }

    /// Where the value of `key` lies.
    pub fn span(&self, key: &str) -> Option<Range<usize>> {
        self.spans.get(key).cloned()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Edits to apply to a body in one pass.
#[derive(Default)]
pub struct Edits {
    /// Byte ranges replaced by new bytes (insertions are empty ranges).
    changes: Vec<(Range<usize>, Vec<u8>)>,
}

impl Edits {
    /// No edits yet.
    pub fn new() -> Edits {
        Edits::default()
    }

    /// Replaces the bytes in `span`.
    pub fn replace(&mut self, span: Range<usize>, with: Vec<u8>) {
        self.changes.push((span, with));
    }

    /// Inserts `bytes` at `at`.
    pub fn insert(&mut self, at: usize, bytes: Vec<u8>) {
        self.changes.push((at..at, bytes));
    }

    /// Adds member `key` with `value` (JSON text) at the end of the object.
    pub fn add_member(&mut self, members: &Members<'_>, key: &str, value: &str) {
        let mut bytes = Vec::with_capacity(key.len() + value.len() + 4);
        if !members.is_empty() {
            bytes.push(b',');
        }
        super::push_json_string(&mut bytes, key);
        bytes.push(b':');
        bytes.extend_from_slice(value.as_bytes());
        self.insert(members.close, bytes);
    }

    /// Whether there is anything to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The edited body. Edits must not overlap (insertions at one place
    /// are applied in the order they were made).
    pub fn apply(mut self, body: &[u8]) -> Bytes {
        self.changes.sort_by_key(|(span, _)| (span.start, span.end));
        let added: usize = self.changes.iter().map(|(_, b)| b.len()).sum();
        let mut out = BytesMut::with_capacity(body.len() + added);
        let mut at = 0;
        for (span, bytes) in &self.changes {
            if span.start < at || span.end > body.len() {
                continue;
            }
            out.extend_from_slice(&body[at..span.start]);
            out.extend_from_slice(bytes);
            at = span.end;
        }
        out.extend_from_slice(&body[at..]);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_where_they_are_written() {
        let body = br#" { "model" : "m", "n":2, "messages":[{"a":1}] , "x": {"y": [1, 2]} } "#;
        let m = Members::read(body).expect("an object");
        assert_eq!(m.get("model"), Some(&br#""m""#[..]));
        assert_eq!(m.get("messages"), Some(&br#"[{"a":1}]"#[..]));
        assert_eq!(m.get("x"), Some(&br#"{"y": [1, 2]}"#[..]));
        assert!(m.get("y").is_none());
        assert!(Members::read(b"[1]").is_none());
    }

    #[test]
    fn edits_keep_every_other_byte() {
        let body = br#"{"model":"m",  "temperature": 1.5,"messages":[]}"#;
        let m = Members::read(body).expect("an object");
        let mut edits = Edits::new();
        edits.replace(m.span("temperature").unwrap(), b"1".to_vec());
        edits.add_member(&m, "max_tokens", "100");
        let out = edits.apply(body);
        assert_eq!(
            &out[..],
            br#"{"model":"m",  "temperature": 1,"messages":[],"max_tokens":100}"#
        );
        let empty = Members::read(b"{ }").expect("an object");
        let mut edits = Edits::new();
        edits.add_member(&empty, "a", "1");
        assert_eq!(&edits.apply(b"{ }")[..], br#"{ "a":1}"#);
    }
}
