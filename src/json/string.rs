//! JSON string encoding, by `serde_json` itself, so what we write is
//! spelled exactly as `serde_json` spells it (`"`, `\` and control
//! characters escaped, everything else as is).

/// `s` as a JSON string literal, with quotes.
pub(crate) fn encode_json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// Appends `s` to `out` as a JSON string literal, with quotes (the model
/// splice and the log lines use it).
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a `str` into a `Vec` cannot fail: serde_json's only errors
    // here would be the writer's, and a `Vec` never refuses bytes.
    let _ = serde_json::to_writer(out, s);
}
