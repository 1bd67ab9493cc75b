//! The cache key: a SHA-256 of the request in canonical form.

use ring::digest;
use serde_json::Value;

/// A request's cache key.
pub type Key = [u8; 32];

/// Members that say how or for whom to answer, not what: left out, so a
/// streamed and a non-streamed request (or two users) share an entry.
const IGNORED: [&str; 7] = [
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
    "safety_identifier",
];

/// The key of `body` sent to `path` for logical model `model`: the body
/// parsed, its ignored members removed, `model` set, and written back with
/// sorted keys and no spaces (so key order and whitespace do not matter,
/// everything else does: `1` and `1.0` are different requests). `None` for
/// a body that is not a JSON object.
pub fn key(path: &str, model: &str, body: &[u8]) -> Option<Key> {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    for member in IGNORED {
        request.remove(member);
    }
    request.insert("model".into(), Value::String(model.to_owned()));
    let canonical = serde_json::to_vec(&Value::Object(request)).ok()?;
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(path.as_bytes());
    context.update(b"\n");
    context.update(&canonical);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/v1/chat/completions";

    #[test]
    fn order_whitespace_and_delivery_do_not_change_the_key() {
        let a = key(
            PATH,
            "m",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#,
        );
        let b = key(
            PATH,
            "m",
            br#"{ "temperature": 0, "stream": true, "stream_options": {"include_usage": true},
                 "user": "u1", "messages": [ {"content": "hi", "role": "user"} ], "model": "m" }"#,
        );
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn what_is_asked_changes_the_key() {
        let base = key(
            PATH,
            "m",
            br#"{"messages":[{"role":"user","content":"hi"}]}"#,
        );
        for other in [
            key(
                PATH,
                "m",
                br#"{"messages":[{"role":"user","content":"hi!"}]}"#,
            ),
            key(
                PATH,
                "m",
                br#"{"messages":[{"role":"user","content":"hi"}],"temperature":1}"#,
            ),
            key(
                PATH,
                "m",
                br#"{"messages":[{"role":"user","content":"hi"}],"tools":[]}"#,
            ),
            key(
                PATH,
                "other",
                br#"{"messages":[{"role":"user","content":"hi"}]}"#,
            ),
            key(
                "/v1/completions",
                "m",
                br#"{"messages":[{"role":"user","content":"hi"}]}"#,
            ),
        ] {
            assert_ne!(base, other);
        }
        assert_eq!(key(PATH, "m", b"[1]"), None);
    }
}
