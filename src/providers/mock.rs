//! `provider: mock` — a built-in model that answers without any network.
//!
//! It exists so a newcomer sees a streamed completion a minute after cloning,
//! and so demos and tests need no LLM. Answers are deterministic: the reply
//! (by default a sentence quoting the last user message) is split into word
//! tokens, streamed as OpenAI chunks, and counted in a real `usage` object.
//! It serves chat completions, legacy completions and embeddings.
//!
//! Knobs (`upstreams.<name>.mock`): `reply`, `first_token_delay`, `token_delay`.
//! This is not the proxy path: parsing the body into a DOM here is fine.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body::Frame;
use serde_json::{json, Value};

use super::Endpoint;
use crate::openai::ErrorBody;
use crate::openai::Usage;
use crate::text::capitalize;

/// Embedding length when the request does not ask for `dimensions`.
const DEFAULT_EMBEDDING_DIMENSIONS: usize = 16;
/// Upper bound on `dimensions`, so a request cannot make the mock allocate wildly.
const MAX_EMBEDDING_DIMENSIONS: usize = 4096;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What the mock answers with, and the usage it counted.
pub struct MockBody {
    /// The bytes.
    pub content: MockContent,
    /// Token usage, known up front.
    pub usage: Option<Usage>,
}

/// A whole body, or a paced stream.
pub enum MockContent {
    /// A JSON body.
    Full(Bytes),
    /// An SSE stream, each event after its delay.
    Stream(MockStream),
}

impl MockBody {
    fn new(content: MockContent) -> MockBody {
        MockBody {
            content,
            usage: None,
        }
    }

    fn with_usage(mut self, usage: Usage) -> MockBody {
        self.usage = Some(usage);
        self
    }
}

/// Why the mock refused a request (answered as a 400, see [`MockError::answer`]).
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// `/v1/responses` and the like.
    #[error("the built-in mock provider answers chat completions, completions and embeddings; `{0}` needs a real upstream")]
    Unsupported(&'static str),
    /// A field the mock needs has the wrong shape.
    #[error("{0}")]
    BadRequest(String),
}

impl MockError {
    /// The 400 the client gets, in OpenAI's error format.
    pub fn answer(&self) -> Response<MockBody> {
        let message = format!("{}.", capitalize(&self.to_string()));
        let body = ErrorBody {
            message: &message,
            kind: "invalid_request_error",
            param: None,
            code: "unsupported_by_mock",
        };
        let mut response = Response::new(MockBody::new(MockContent::Full(Bytes::from(
            body.to_json(),
        ))));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Answers one request as the mock model `model`.
///
/// # Errors
/// [`MockError`] for endpoints the mock does not serve and bodies it cannot read.
pub async fn respond(
    config: &MockConfig,
    endpoint: Endpoint,
    model: &str,
    body: &[u8],
) -> Result<Response<MockBody>, MockError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| MockError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Completions => {
            let chat = endpoint == Endpoint::ChatCompletions;
            let prompt = if chat {
                last_user_text(&request)?
            } else {
                prompt_text(&request)?
            };
            let reply = config
                .reply
                .clone()
                .unwrap_or_else(|| default_reply(model, &prompt));
            let mut tokens = tokenize(&reply);
            let limit = ["max_completion_tokens", "max_tokens"]
                .iter()
                .find_map(|k| request.get(*k).and_then(Value::as_u64));
            let finish = match limit {
                Some(n) if (n as usize) < tokens.len() => {
                    tokens.truncate(n as usize);
                    "length"
                }
                _ => "stop",
            };
            let usage = json!({
                "prompt_tokens": estimate_tokens(&prompt_for_usage(&request, chat)),
                "completion_tokens": tokens.len(),
                "total_tokens": estimate_tokens(&prompt_for_usage(&request, chat)) + tokens.len(),
            });
            let counted = Usage {
                prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
                completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
                total_tokens: usage["total_tokens"].as_u64().unwrap_or(0),
            };
            let answer = Answer {
                chat,
                model,
                tokens: &tokens,
                finish,
                usage,
            };
            let response = if stream {
                sse(answer.chunks(include_usage), config)
            } else {
                let generation = config.first_token_delay
                    + config.token_delay * (tokens.len().saturating_sub(1) as u32);
                pause(generation).await;
                json_response(answer.whole())
            };
            Ok(response.map(|body| body.with_usage(counted)))
        }
        Endpoint::Embeddings => {
            let inputs = embedding_inputs(&request)?;
            let dimensions = request
                .get("dimensions")
                .and_then(Value::as_u64)
                .map(|d| d as usize)
                .unwrap_or(DEFAULT_EMBEDDING_DIMENSIONS)
                .clamp(1, MAX_EMBEDDING_DIMENSIONS);
            let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
            let prompt_tokens: usize = inputs.iter().map(|s| estimate_tokens(s)).sum();
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    let vector = embed(text, dimensions);
                    let embedding = if base64 {
                        Value::String(base64_f32(&vector))
                    } else {
                        json!(vector)
                    };
                    json!({"object": "embedding", "index": index, "embedding": embedding})
                })
                .collect();
            pause(config.first_token_delay).await;
            let counted = Usage {
                prompt_tokens: prompt_tokens as u64,
                completion_tokens: 0,
                total_tokens: prompt_tokens as u64,
            };
            Ok(json_response(json!({
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            }))
            .map(|body| body.with_usage(counted)))
        }
        Endpoint::Responses => Err(MockError::Unsupported("/v1/responses")),
        Endpoint::CountTokens => Err(MockError::Unsupported("/v1/messages/count_tokens")),
    }
}

struct Answer<'a> {
    chat: bool,
    model: &'a str,
    tokens: &'a [String],
    finish: &'static str,
    usage: Value,
}

impl Answer<'_> {
    fn whole(&self) -> Value {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let text: String = self.tokens.concat();
        if self.chat {
            json!({
                "id": format!("chatcmpl-mock-{id}"),
                "object": "chat.completion",
                "created": now(),
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": null},
                    "logprobs": null,
                    "finish_reason": self.finish,
                }],
                "usage": self.usage,
                "system_fingerprint": "switchyard-mock",
            })
        } else {
            json!({
                "id": format!("cmpl-mock-{id}"),
                "object": "text_completion",
                "created": now(),
                "model": self.model,
                "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": self.finish}],
                "usage": self.usage,
            })
        }
    }

    /// `(is_content_token, event)` pairs, ending with `[DONE]`.
    fn chunks(&self, include_usage: bool) -> Vec<(bool, Bytes)> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let created = now();
        let (id, object) = if self.chat {
            (format!("chatcmpl-mock-{id}"), "chat.completion.chunk")
        } else {
            (format!("cmpl-mock-{id}"), "text_completion")
        };
        let usage_field = if include_usage {
            Value::Null
        } else {
            Value::Bool(false)
        };
        let chunk = |choice: Value| {
            let mut c = json!({
                "id": id, "object": object, "created": created, "model": self.model,
                "choices": [choice],
            });
            if !usage_field.is_boolean() {
                c["usage"] = Value::Null;
            }
            c
        };
        let mut events = Vec::with_capacity(self.tokens.len() + 4);
        if self.chat {
            events.push((false, chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}))));
        }
        for token in self.tokens {
            let choice = if self.chat {
                json!({"index": 0, "delta": {"content": token}, "logprobs": null, "finish_reason": null})
            } else {
                json!({"index": 0, "text": token, "logprobs": null, "finish_reason": null})
            };
            events.push((true, chunk(choice)));
        }
        let last = if self.chat {
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": self.finish})
        } else {
            json!({"index": 0, "text": "", "logprobs": null, "finish_reason": self.finish})
        };
        events.push((false, chunk(last)));
        if include_usage {
            events.push((
                false,
                json!({
                    "id": id, "object": object, "created": created, "model": self.model,
                    "choices": [], "usage": self.usage,
                }),
            ));
        }
        let mut out: Vec<(bool, Bytes)> = events
            .into_iter()
            .map(|(content, v)| (content, Bytes::from(format!("data: {v}\n\n"))))
            .collect();
        out.push((false, Bytes::from_static(b"data: [DONE]\n\n")));
        out
    }
}

fn json_response(body: Value) -> Response<MockBody> {
    let mut response = Response::new(MockBody::new(MockContent::Full(Bytes::from(
        body.to_string(),
    ))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn sse(chunks: Vec<(bool, Bytes)>, config: &MockConfig) -> Response<MockBody> {
    let mut first = true;
    let events = chunks
        .into_iter()
        .map(|(content, bytes)| {
            let delay = if !content {
                Duration::ZERO
            } else if first {
                first = false;
                config.first_token_delay
            } else {
                config.token_delay
            };
            (delay, bytes)
        })
        .collect();
    let mut response = Response::new(MockBody::new(MockContent::Stream(MockStream {
        events,
        sleep: None,
    })));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    *response.status_mut() = StatusCode::OK;
    response
}

/// `upstreams.<name>.mock` — knobs of the built-in mock provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// Fixed answer; by default the mock answers with a sentence that quotes
    /// the last user message.
    pub reply: Option<String>,
    /// Delay before the first token.
    pub first_token_delay: Duration,
    /// Delay between tokens of a stream.
    pub token_delay: Duration,
}

/// The mock's SSE body: each event after its delay, one frame per event.
pub struct MockStream {
    events: VecDeque<(Duration, Bytes)>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl MockStream {
    /// Polls the next event (a mock stream never fails).
    pub fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Frame<Bytes>>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
                let (_, bytes) = self.events.pop_front().expect("a delayed event is queued");
                return Poll::Ready(Some(Frame::data(bytes)));
            }
            match self.events.front() {
                None => return Poll::Ready(None),
                Some((delay, _)) if delay.is_zero() => {
                    let (_, bytes) = self.events.pop_front().expect("front exists");
                    return Poll::Ready(Some(Frame::data(bytes)));
                }
                Some((delay, _)) => {
                    let delay = *delay;
                    self.sleep = Some(Box::pin(tokio::time::sleep(delay)));
                }
            }
        }
    }

    /// True when every event was sent.
    pub fn is_end_stream(&self) -> bool {
        self.events.is_empty()
    }
}

/// Sleeps for `delay`, or not at all when it is zero (a zero-length tokio
/// sleep still waits for the next timer tick, about a millisecond).
async fn pause(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn default_reply(model: &str, prompt: &str) -> String {
    let prompt: String = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    let quoted = if prompt.chars().count() > 200 {
        format!("{}…", prompt.chars().take(200).collect::<String>())
    } else {
        prompt
    };
    format!(
        "Hello from Switchyard! I am `{model}`, the built-in mock model, so no LLM is running behind me. You said: \"{quoted}\""
    )
}

/// Text of a message's `content` (a string or an array of text parts).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn last_user_text(request: &Value) -> Result<String, MockError> {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| MockError::BadRequest("`messages` must be a list of messages".into()))?;
    Ok(messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default())
}

fn prompt_text(request: &Value) -> Result<String, MockError> {
    match request.get("prompt") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")),
        _ => Err(MockError::BadRequest("`prompt` must be a string".into())),
    }
}

/// All prompt text the usage counts: every message for chat, the prompt otherwise.
fn prompt_for_usage(request: &Value, chat: bool) -> String {
    if chat {
        request
            .get("messages")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m.get("content"))
                    .map(content_text)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    } else {
        prompt_text(request).unwrap_or_default()
    }
}

fn embedding_inputs(request: &Value) -> Result<Vec<String>, MockError> {
    match request.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => Ok(items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()),
        _ => Err(MockError::BadRequest(
            "`input` must be a string or a non-empty list".into(),
        )),
    }
}

/// Splits text into word tokens that keep their leading space, so the
/// concatenated stream equals the reply exactly.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_whitespace() && !current.trim().is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Token estimate for prompts: about four characters a token, at least one
/// per non-empty text (the usual rule of thumb for English with BPE vocabularies).
fn estimate_tokens(text: &str) -> usize {
    let chars = text.chars().count();
    if chars == 0 {
        0
    } else {
        chars.div_ceil(4)
    }
}

/// A deterministic unit vector derived from the text (FNV-1a seeded per dimension).
fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector: Vec<f32> = (0..dimensions)
        .map(|d| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ (d as u64).wrapping_mul(0x9E37_79B9);
            for b in text.bytes() {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            (hash % 20_001) as f32 / 10_000.0 - 1.0
        })
        .collect();
    let norm = vector
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

/// Little-endian f32s in standard base64, as OpenAI sends for `encoding_format: base64`.
fn base64_f32(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_to_the_reply() {
        let text = "Hello  there, world!\nBye";
        assert_eq!(tokenize(text).concat(), text);
        assert_eq!(tokenize("a b c").len(), 3);
    }

    #[test]
    fn base64_matches_a_known_encoding() {
        // 1.0f32 = 00 00 80 3f
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 8);
        assert_eq!(a, embed("hello", 8));
        assert_ne!(a, embed("hellp", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
