//! A model's request policies (`system_prompt`, `defaults`, `clamp`) applied
//! to the client's body before it is routed, and its `on_exhausted` answer.
//!
//! Each edit is surgical (`json::Edits`): a member added at the end of the
//! object, a value replaced, or a system message inserted at the head of
//! `messages`; every other byte the client sent goes up as it was
//! (ARCHITECTURE.md, invariant 2). A model without policies costs nothing.

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::GatewayError;
use crate::forward::body::ResponseBody;
use crate::json::{inspect, push_json_string, Edits, Inspected, Members};
use crate::routing::{RequestPolicy, SystemPromptMode};

/// Marks an answer that is the model's `on_exhausted` message.
pub(super) const X_EXHAUSTED: http::HeaderName =
    http::HeaderName::from_static("x-switchyard-exhausted");

/// The shape of a request body, for where a system prompt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `/v1/chat/completions`: a system message in `messages`.
    Chat,
    /// Anthropic's `/v1/messages`: the `system` member.
    Messages,
    /// `/v1/responses`: the `instructions` member.
    Responses,
    /// Anything else (legacy completions, embeddings): no system prompt.
    Other,
}

/// Aliases of `max_tokens` a clamp or default on it also covers.
const MAX_TOKENS_ALIASES: [&str; 3] = ["max_tokens", "max_completion_tokens", "max_output_tokens"];

/// The body with `policy` applied, or `None` when nothing changes.
pub(super) fn apply(policy: &RequestPolicy, shape: Shape, body: &Bytes) -> Option<Bytes> {
    if !policy.edits_requests() {
        return None;
    }
    let members = Members::read(body)?;
    let mut edits = Edits::new();
    if let Some(prompt) = &policy.system_prompt {
        system_prompt(&members, shape, &prompt.text, prompt.mode, &mut edits);
    }
    for (key, value) in &policy.defaults {
        let present = if key == "max_tokens" {
            MAX_TOKENS_ALIASES.iter().any(|k| members.get(k).is_some())
        } else {
            members.get(key).is_some()
        };
        if !present {
            edits.add_member(&members, key, value);
        }
    }
    for clamp in &policy.clamps {
        let own = [clamp.key.as_str()];
        let keys: &[&str] = if clamp.key == "max_tokens" {
            &MAX_TOKENS_ALIASES
        } else {
            &own
        };
        for key in keys {
            let (Some(span), Some(raw)) = (members.span(key), members.get(key)) else {
                continue;
            };
            let Ok(value) = serde_json::from_slice::<f64>(raw) else {
                continue;
            };
            let bounded = match (clamp.min, clamp.max) {
                (Some(min), _) if value < min => min,
                (_, Some(max)) if value > max => max,
                _ => continue,
            };
            edits.replace(span, number(bounded).into_bytes());
        }
    }
    (!edits.is_empty()).then(|| edits.apply(body))
}

/// [`apply`], and the edited body inspected again (its model and stream
/// spans moved); `None` when nothing changes.
///
/// # Errors
/// Only if the edit made the body unreadable, which the tests rule out.
pub(super) fn apply_inspected(
    policy: &RequestPolicy,
    shape: Shape,
    body: &Bytes,
) -> Result<Option<(Bytes, Inspected)>, GatewayError> {
    let Some(edited) = apply(policy, shape, body) else {
        return Ok(None);
    };
    let inspected = inspect(&edited)?;
    Ok(Some((edited, inspected)))
}

/// A whole number without a fraction (a token count stays an integer).
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[derive(Deserialize)]
struct RoleOnly<'a> {
    #[serde(borrow, default)]
    role: Option<std::borrow::Cow<'a, str>>,
}

fn system_prompt(
    members: &Members<'_>,
    shape: Shape,
    text: &str,
    mode: SystemPromptMode,
    edits: &mut Edits,
) {
    let always = mode == SystemPromptMode::Always;
    match shape {
        Shape::Chat => {
            let (Some(span), Some(raw)) = (members.span("messages"), members.get("messages"))
            else {
                return;
            };
            let Ok(messages) = serde_json::from_slice::<Vec<RoleOnly<'_>>>(raw) else {
                return;
            };
            let has_system = messages
                .iter()
                .any(|m| matches!(m.role.as_deref(), Some("system" | "developer")));
            if has_system && !always {
                return;
            }
            let mut message = br#"{"role":"system","content":"#.to_vec();
            push_json_string(&mut message, text);
            message.push(b'}');
            if !messages.is_empty() {
                message.push(b',');
            }
            // Just inside the array's `[`.
            edits.insert(span.start + 1, message);
        }
        Shape::Messages | Shape::Responses => {
            let key = if shape == Shape::Messages {
                "system"
            } else {
                "instructions"
            };
            let existing = members.get(key).filter(|raw| raw != b"null");
            let mut value = Vec::new();
            match existing {
                None => {
                    push_json_string(&mut value, text);
                    match members.span(key) {
                        Some(span) => edits.replace(span, value),
                        None => edits.add_member(members, key, &String::from_utf8_lossy(&value)),
                    }
                }
                Some(_) if !always => {}
                Some(raw) => {
                    let Some(span) = members.span(key) else {
                        return;
                    };
                    if let Ok(old) = serde_json::from_slice::<String>(raw) {
                        push_json_string(&mut value, &format!("{text}\n\n{old}"));
                        edits.replace(span, value);
                    } else if raw.first() == Some(&b'[') {
                        // Anthropic's list of text blocks: ours first.
                        value.extend_from_slice(br#"{"type":"text","text":"#);
                        push_json_string(&mut value, text);
                        value.extend_from_slice(b"}");
                        if serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(raw)
                            .is_ok_and(|v| !v.is_empty())
                        {
                            value.push(b',');
                        }
                        edits.insert(span.start + 1, value);
                    }
                }
            }
        }
        Shape::Other => {}
    }
}

/// The `on_exhausted` answer to a chat completion: `text` as the
/// assistant's message, in OpenAI's shape — a JSON answer, or a stream
/// (with a usage chunk when `include_usage`) — marked by its `id`
/// (`chatcmpl-switchyard-…`), its `system_fingerprint`
/// (`switchyard-on-exhausted`) and the `x-switchyard-exhausted: true`
/// header. Usage is zero: no model generated it.
pub(super) fn exhausted_answer(
    text: &str,
    model: &str,
    request_id: &str,
    stream: bool,
    include_usage: bool,
) -> Response<ResponseBody> {
    let id = format!("chatcmpl-switchyard-{request_id}");
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let usage = json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0});
    let fingerprint = "switchyard-on-exhausted";
    let (content_type, body) = if stream {
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            let mut c = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": fingerprint,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            });
            if include_usage {
                c["usage"] = serde_json::Value::Null;
            }
            format!("data: {c}\n\n")
        };
        let mut out = chunk(json!({"role": "assistant", "content": ""}), None);
        out.push_str(&chunk(json!({"content": text}), None));
        out.push_str(&chunk(json!({}), Some("stop")));
        if include_usage {
            let c = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": fingerprint, "choices": [], "usage": usage,
            });
            out.push_str(&format!("data: {c}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        ("text/event-stream", out)
    } else {
        let answer = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": usage,
        });
        ("application/json", answer.to_string())
    };
    let mut response = Response::new(ResponseBody::full(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(X_EXHAUSTED, HeaderValue::from_static("true"));
    if stream {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{Clamp, SystemPrompt};

    fn with_prompt(mode: SystemPromptMode) -> RequestPolicy {
        RequestPolicy {
            system_prompt: Some(SystemPrompt {
                text: "Be brief.".into(),
                mode,
            }),
            ..RequestPolicy::default()
        }
    }

    fn edited(policy: &RequestPolicy, shape: Shape, body: &str) -> Option<String> {
        apply(policy, shape, &Bytes::from(body.to_owned()))
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn a_system_prompt_goes_first_when_the_request_has_none() {
        let policy = with_prompt(SystemPromptMode::IfMissing);
        let body = r#"{"model":"m", "messages": [ {"role":"user","content":"hi"}]}"#;
        assert_eq!(
            edited(&policy, Shape::Chat, body).as_deref(),
            Some(
                r#"{"model":"m", "messages": [{"role":"system","content":"Be brief."}, {"role":"user","content":"hi"}]}"#
            )
        );
        let has = r#"{"model":"m","messages":[{"role":"developer","content":"x"}]}"#;
        assert_eq!(edited(&policy, Shape::Chat, has), None);
        let always = with_prompt(SystemPromptMode::Always);
        let out = edited(&always, Shape::Chat, has).unwrap();
        assert!(
            out.contains(r#"[{"role":"system","content":"Be brief."},{"role":"developer""#),
            "{out}"
        );
        let empty = r#"{"model":"m","messages":[]}"#;
        assert_eq!(
            edited(&policy, Shape::Chat, empty).as_deref(),
            Some(r#"{"model":"m","messages":[{"role":"system","content":"Be brief."}]}"#)
        );
    }

    #[test]
    fn anthropic_and_responses_requests_get_it_in_their_own_member() {
        let policy = with_prompt(SystemPromptMode::IfMissing);
        let out = edited(&policy, Shape::Messages, r#"{"model":"m","messages":[]}"#).unwrap();
        assert_eq!(out, r#"{"model":"m","messages":[],"system":"Be brief."}"#);
        let always = with_prompt(SystemPromptMode::Always);
        let out = edited(
            &always,
            Shape::Messages,
            r#"{"system":"Old.","messages":[]}"#,
        )
        .unwrap();
        assert_eq!(out, r#"{"system":"Be brief.\n\nOld.","messages":[]}"#);
        let blocks = r#"{"system":[{"type":"text","text":"Old."}],"messages":[]}"#;
        let out = edited(&always, Shape::Messages, blocks).unwrap();
        assert_eq!(
            out,
            r#"{"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Old."}],"messages":[]}"#
        );
        let out = edited(&policy, Shape::Responses, r#"{"input":"hi"}"#).unwrap();
        assert_eq!(out, r#"{"input":"hi","instructions":"Be brief."}"#);
        assert_eq!(edited(&policy, Shape::Other, r#"{"prompt":"x"}"#), None);
    }

    #[test]
    fn defaults_fill_gaps_and_clamps_cap_what_is_there() {
        let policy = RequestPolicy {
            defaults: vec![
                ("temperature".into(), "0.2".into()),
                ("max_tokens".into(), "256".into()),
            ],
            clamps: vec![
                Clamp {
                    key: "max_tokens".into(),
                    min: None,
                    max: Some(1000.0),
                },
                Clamp {
                    key: "temperature".into(),
                    min: Some(0.1),
                    max: Some(1.0),
                },
            ],
            ..RequestPolicy::default()
        };
        let out = edited(&policy, Shape::Chat, r#"{"model":"m","messages":[]}"#).unwrap();
        assert_eq!(
            out,
            r#"{"model":"m","messages":[],"temperature":0.2,"max_tokens":256}"#
        );
        let out = edited(
            &policy,
            Shape::Chat,
            r#"{"max_completion_tokens":5000,"temperature":1.7}"#,
        )
        .unwrap();
        assert_eq!(out, r#"{"max_completion_tokens":1000,"temperature":1}"#);
        let out = edited(&policy, Shape::Chat, r#"{"max_tokens":10,"temperature":0}"#).unwrap();
        assert_eq!(out, r#"{"max_tokens":10,"temperature":0.1}"#);
        assert_eq!(
            edited(
                &policy,
                Shape::Chat,
                r#"{"max_tokens":10,"temperature":0.5}"#
            ),
            None
        );
        assert_eq!(edited(&RequestPolicy::default(), Shape::Chat, "{}"), None);
    }

    #[test]
    fn the_exhausted_answer_is_a_valid_chat_completion_or_stream() {
        let json = exhausted_answer("Try later.", "m", "req_1", false, false);
        assert_eq!(json.headers()[X_EXHAUSTED], "true");
        let stream = exhausted_answer("Try later.", "m", "req_1", true, true);
        assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    }
}
