//! `inject_stream_usage`: the one deliberate edit to a stream.
//!
//! A streamed chat answer carries token usage only when the request has
//! `stream_options.include_usage: true`. For an upstream with
//! `inject_stream_usage: true`, a streamed request that did not ask for
//! usage gets it added on the way up (the only other request edit besides
//! the model name), and the extra usage-only event (`"choices": []` with
//! `usage`) is removed from the answer before the client sees it — so the
//! client gets exactly the stream it asked for, and Switchyard still counts
//! the tokens. A client that asked for usage itself gets the stream untouched.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::h1::RequestBody;
use crate::json::{splice_model, Inspected};
use crate::routing::Upstream;

/// Does this request to `upstream` get usage the client did not ask for
/// (so the relay removes the usage-only event)? For `inject_stream_usage`,
/// and always for a translated stream (Anthropic, Gemini, Bedrock), whose
/// translation ends with the usage it always carries.
pub(super) fn injects(upstream: &Upstream, body: &[u8], inspected: &Inspected) -> bool {
    (upstream.inject_stream_usage || upstream.translation.is_some())
        && inspected.stream == Some(true)
        && !client_asked(body, inspected)
}

/// Did the client set `stream_options.include_usage: true` itself?
pub(crate) fn client_asked(body: &[u8], inspected: &Inspected) -> bool {
    let Some(span) = inspected.stream_options_span.clone() else {
        return false;
    };
    body.get(span)
        .and_then(|options| serde_json::from_slice::<Value>(options).ok())
        .and_then(|options| options.get("include_usage").and_then(Value::as_bool))
        .unwrap_or(false)
}

/// The upstream body: the model spliced in and, when `inject`, usage asked for.
pub(super) fn request_body(
    body: &Bytes,
    inspected: &Inspected,
    model: &str,
    inject: bool,
) -> RequestBody {
    if !inject {
        return RequestBody::new(splice_model(body, inspected, model).parts);
    }
    let mut edits: Vec<(usize, usize, Bytes)> = Vec::with_capacity(2);
    if let Some(span) = inspected.model_span.clone() {
        let encoded = serde_json::to_vec(model).unwrap_or_default();
        edits.push((span.start, span.end, Bytes::from(encoded)));
    }
    match inspected.stream_options_span.clone() {
        Some(span) => {
            // Keep the client's other stream options (e.g. include_obfuscation).
            let mut options = body
                .get(span.clone())
                .and_then(|v| serde_json::from_slice::<Map<String, Value>>(v).ok())
                .unwrap_or_default();
            options.insert("include_usage".into(), Value::Bool(true));
            let encoded = serde_json::to_vec(&options).unwrap_or_default();
            edits.push((span.start, span.end, Bytes::from(encoded)));
        }
        None => {
            let at = inspected.object_end;
            edits.push((
                at,
                at,
                Bytes::from_static(br#","stream_options":{"include_usage":true}"#),
            ));
        }
    }
    edits.sort_by_key(|(start, _, _)| *start);
    let mut parts = Vec::with_capacity(edits.len() * 2 + 1);
    let mut at = 0;
    for (start, end, replacement) in edits {
        if start < at || end > body.len() {
            // Overlapping or out-of-range spans cannot come from `inspect`;
            // send the body with only the model changed rather than guess.
            return RequestBody::new(splice_model(body, inspected, model).parts);
        }
        parts.push(body.slice(at..start));
        parts.push(replacement);
        at = end;
    }
    parts.push(body.slice(at..));
    RequestBody::new(parts)
}

/// Is this event the usage-only event (`"choices": []` plus `usage`)?
pub(crate) fn is_usage_only(event: &crate::sse::Event<'_>) -> bool {
    crate::openai::usage_of_event(event).is_some()
        && crate::openai::classify(event) == crate::openai::ChunkKind::Empty
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::inspect;
    use http_body_util::BodyExt;

    async fn edited(body: &str, inject: bool) -> String {
        let body = Bytes::copy_from_slice(body.as_bytes());
        let inspected = inspect(&body).unwrap();
        let out = request_body(&body, &inspected, "up-model", inject);
        String::from_utf8(out.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn adds_stream_options_when_absent() {
        let out = edited(r#"{"model":"m","stream":true,"temperature":0.2}"#, true).await;
        assert_eq!(
            out,
            r#"{"model":"up-model","stream":true,"temperature":0.2,"stream_options":{"include_usage":true}}"#
        );
    }

    #[tokio::test]
    async fn keeps_the_clients_other_stream_options() {
        let out = edited(
            r#"{"stream_options": {"include_obfuscation": false}, "model": "m", "stream": true }"#,
            true,
        )
        .await;
        assert_eq!(
            out,
            r#"{"stream_options": {"include_obfuscation":false,"include_usage":true}, "model": "up-model", "stream": true }"#
        );
    }

    #[tokio::test]
    async fn without_injection_only_the_model_changes() {
        let out = edited(r#"{"model":"m","stream":true}"#, false).await;
        assert_eq!(out, r#"{"model":"up-model","stream":true}"#);
    }

    #[test]
    fn a_client_that_asked_for_usage_is_left_alone() {
        let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        let inspected = inspect(body).unwrap();
        assert!(client_asked(body, &inspected));
        let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#;
        assert!(!client_asked(body, &inspect(body).unwrap()));
    }
}
