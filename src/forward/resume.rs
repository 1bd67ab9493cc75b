//! Resuming a committed stream that broke (`models.<name>.resume`).
//!
//! Up to the first token a failure moves on invisibly (the attempt loop).
//! After it the client holds part of the answer, so the break used to end
//! the stream with one error event. With `resume` on, the relay asks this
//! module for a *continuation* instead: the client's request again, plus the
//! text relayed so far as a trailing assistant message (a prefill) and
//! `max_tokens` lowered by what was already generated, sent to the next
//! target of the plan that can continue a prefill (`upstreams.<name>.prefill`).
//! Its first content event commits it, like any attempt; its events are then
//! *spliced* into the client's stream: its role chunk dropped, its chunks
//! rewritten to the original's `id`, `model`, `created` and choice index,
//! its usage (always asked for) added to what came before and passed on only
//! when the client asked for usage. The client sees one stream, with one
//! `finish_reason` and one `[DONE]`.
//!
//! Not resumed, and ended with the error event as before: a stream that was
//! producing tool calls (their partial arguments can't be continued), a
//! refusal, several choices, a stream that already finished, text over
//! `resume.max_text`, `max_tokens` used up, and a stream past
//! `timeouts.total`. When no target can continue, the client gets the
//! *original* failure's error event — never a continuation's own refusal.
//!
//! Everything here runs only for models with `resume` on; the relay of
//! every other stream is unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::time::Instant;

use super::commit::{self, Committed};
use super::{attempt, Outbound};
use crate::json::{inspect, push_json_string, Edits, Members};
use crate::openai::Usage;
use crate::providers::Endpoint;
use crate::routing::{self, Model, Prefill, ResumePolicy};
use crate::telemetry::metrics::UpstreamMetrics;
use crate::telemetry::request_log::Resumed;
use crate::upstream::InFlight;

/// What a committed stream keeps so it can be resumed.
pub(crate) struct Resume {
    model: Arc<Model>,
    /// Targets that may continue, in plan order: `routing::locate` places.
    candidates: Vec<(usize, usize)>,
    /// The client's request (OpenAI-shaped).
    body: Bytes,
    headers: Arc<HeaderMap>,
    request_id: Arc<str>,
    /// The client asked for a usage chunk (`stream_options.include_usage`).
    client_usage: bool,
    policy: ResumePolicy,
    resumes: u32,
    pub(super) transcript: Transcript,
    /// Rewrites the events of the continuation in progress.
    pub(super) splice: Option<Splice>,
    /// Every break and what became of it, for the access and request logs.
    pub(super) log: Vec<Resumed>,
    /// The search for a continuation, after a break.
    pub(super) continuing: Option<Continuing>,
    /// The break being resumed.
    pub(super) broken: Option<Broken>,
    /// An upstream error event at this stream offset ends the answer: held
    /// back while a resume is possible.
    pub(super) error_at: Option<(u64, Bytes)>,
    /// Relaying a continuation: events are rewritten (`Splice`).
    pub(super) splicing: bool,
}

/// A break after the commit that a resume is trying to mend.
pub(super) struct Broken {
    pub kind: &'static str,
    pub at: Instant,
    /// What the client gets if nothing continues the stream.
    pub event: Bytes,
}

/// A continuation being looked for.
pub(super) type Continuing = Pin<Box<dyn Future<Output = Found> + Send>>;

/// What the search for a continuation found.
pub(super) struct Found {
    /// The continuation, if a target committed one.
    pub continuation: Option<Continuation>,
    /// Targets not tried yet (for a later break).
    pub candidates: Vec<(usize, usize)>,
}

/// A continuation that committed: its first content event has arrived.
pub(super) struct Continuation {
    pub committed: Committed,
    pub in_flight: InFlight,
    /// `upstream/model`.
    pub label: String,
    /// Its upstream's name, for error events.
    pub upstream: String,
    /// Its `timeouts.idle`.
    pub idle: Duration,
    pub metrics: Arc<UpstreamMetrics>,
}

impl Resume {
    /// Kept for a streamed chat completion of a model with `resume` on.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        model: Arc<Model>,
        policy: ResumePolicy,
        candidates: Vec<(usize, usize)>,
        body: Bytes,
        headers: &HeaderMap,
        anthropic_door: bool,
        request_id: &str,
        client_usage: bool,
    ) -> Resume {
        let mut headers = headers.clone();
        if anthropic_door {
            // The continuation is OpenAI-shaped, never the client's own bytes.
            headers.remove("anthropic-version");
            headers.remove("anthropic-beta");
        }
        Resume {
            model,
            candidates,
            body,
            headers: Arc::new(headers),
            request_id: Arc::from(request_id),
            client_usage,
            policy,
            resumes: 0,
            transcript: Transcript::default(),
            splice: None,
            log: Vec::new(),
            continuing: None,
            broken: None,
            error_at: None,
            splicing: false,
        }
    }

    /// Whether a break now could still be resumed (so an upstream's error
    /// event is held back rather than relayed).
    pub(super) fn possible(&self) -> bool {
        self.resumes < self.policy.max_resumes
            && self.transcript.blocked.is_none()
            && !self.transcript.finished
    }

    /// Starts looking for a continuation after a break; `generated` is the
    /// completion tokens relayed so far (one per content event). `None`
    /// when this stream can't be resumed (the reason is logged).
    pub(super) fn start(
        &mut self,
        generated: u64,
        deadline: Option<Instant>,
    ) -> Option<Continuing> {
        if let Some(reason) = self.transcript.blocked {
            tracing::info!(request_id = %self.request_id, reason, "the stream broke and can't be resumed");
            return None;
        }
        if !self.possible() {
            return None;
        }
        self.resumes += 1;
        let text = &self.transcript.text;
        let prefix = text.trim_end().to_owned();
        let whitespace_cut = prefix.len() < text.len();
        let echo = prefix.clone();
        let request = ContinuationRequest {
            body: self.body.clone(),
            prefix,
            generated,
        };
        // Whitespace the client already has is not sent again.
        self.splice = Some(Splice {
            id: self.transcript.id.clone(),
            model: self.transcript.model.clone(),
            created: self.transcript.created,
            index: self.transcript.index.unwrap_or(0),
            strip_leading: whitespace_cut,
            echo,
            swallowed: String::new(),
            client_usage: self.client_usage,
            earlier: generated,
        });
        let search = search(
            self.model.clone(),
            std::mem::take(&mut self.candidates),
            request,
            self.headers.clone(),
            self.request_id.clone(),
        );
        Some(Box::pin(async move {
            match deadline {
                Some(at) => match tokio::time::timeout_at(at, search).await {
                    Ok(found) => found,
                    Err(_) => Found {
                        continuation: None,
                        candidates: Vec::new(),
                    },
                },
                None => search.await,
            }
        }))
    }

    /// The search ended: keeps the targets left for a later break.
    pub(super) fn searched(&mut self, candidates: Vec<(usize, usize)>) {
        self.candidates = candidates;
    }

    /// Counts a break: resumed or not.
    pub(super) fn count(&self, resumed: bool) {
        self.model.metrics.resume(resumed);
    }

    /// The request id, for log lines.
    pub(super) fn request_id(&self) -> &str {
        &self.request_id
    }
}

/// The continuation's request, before it is fitted to a target.
struct ContinuationRequest {
    body: Bytes,
    /// The answer so far, trailing whitespace cut (an Anthropic prefill may
    /// not end in whitespace, and a token boundary there reads badly).
    prefix: String,
    generated: u64,
}

/// Tries each candidate in turn until one commits.
async fn search(
    model: Arc<Model>,
    mut candidates: Vec<(usize, usize)>,
    request: ContinuationRequest,
    headers: Arc<HeaderMap>,
    request_id: Arc<str>,
) -> Found {
    let mut tried = 0;
    while tried < candidates.len() {
        let at = candidates[tried];
        tried += 1;
        let Some(target) = routing::target_at(&model, at) else {
            continue;
        };
        let upstream = &target.upstream;
        if upstream.mock.is_some() || upstream.unresolved.is_some() || upstream.client.is_none() {
            continue;
        }
        if !request.prefix.is_empty() && upstream.prefill == Prefill::None {
            continue;
        }
        let body = match continuation_body(
            &request.body,
            &request.prefix,
            upstream.prefill,
            request.generated,
        ) {
            Ok(body) => body,
            Err(reason) => {
                tracing::info!(request_id = %request_id, reason, "the stream can't be resumed");
                return Found {
                    continuation: None,
                    candidates: Vec::new(),
                };
            }
        };
        let Ok(inspected) = inspect(&body) else {
            continue;
        };
        // An open circuit is skipped: a resume is never a last resort.
        let Some(admission) = target.state.admit() else {
            continue;
        };
        let out = Outbound {
            model: &model,
            endpoint: Endpoint::ChatCompletions,
            body: &body,
            inspected: &inspected,
            headers: &headers,
            request_id: &request_id,
            native: None,
        };
        let in_flight = target.state.enter();
        let sent_at = Instant::now();
        let response = match attempt::send(&out, target).await {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!(request_id = %request_id, target = %target.label, error = %err, "the continuation failed");
                admission.failure(&target.breaker);
                upstream.metrics.error(err.kind());
                continue;
            }
        };
        let status = response.status();
        if !status.is_success() {
            if matches!(
                status,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ) {
                // It refused the prefill: the target itself is fine.
                tracing::info!(request_id = %request_id, target = %target.label, %status, "the target refused the continuation (its prefill); trying the next");
                admission.success();
            } else {
                tracing::warn!(request_id = %request_id, target = %target.label, %status, "the continuation failed");
                admission.failure(&target.breaker);
            }
            continue;
        }
        let more = tried < candidates.len();
        let first_token = target
            .timeouts
            .first_token_for(more, target.state.ttft_p95());
        match commit::await_commit(response, target, sent_at, first_token).await {
            Ok(committed) => {
                admission.success();
                tried_all(&mut candidates, tried);
                return Found {
                    continuation: Some(Continuation {
                        committed,
                        in_flight,
                        label: target.label.clone(),
                        upstream: upstream.name.clone(),
                        idle: target.timeouts.idle,
                        metrics: upstream.metrics.clone(),
                    }),
                    candidates,
                };
            }
            Err(err) => {
                tracing::warn!(request_id = %request_id, target = %target.label, error = %err, "the continuation failed before its first token");
                admission.failure(&target.breaker);
                upstream.metrics.error(err.kind());
            }
        }
    }
    Found {
        continuation: None,
        candidates: Vec::new(),
    }
}

fn tried_all(candidates: &mut Vec<(usize, usize)>, tried: usize) {
    candidates.drain(..tried);
}

/// The client's request as a continuation: `prefix` appended as the last,
/// assistant, message (none when empty: nothing was said yet), `max_tokens`
/// and `max_completion_tokens` lowered by `generated`, usage asked for.
/// Surgical, like every request edit (`json::Edits`): every other byte the
/// client sent — messages, tools, schemas, key order — stays as it was.
///
/// # Errors
/// Why the request can't be continued.
pub(crate) fn continuation_body(
    body: &[u8],
    prefix: &str,
    prefill: Prefill,
    generated: u64,
) -> Result<Bytes, &'static str> {
    let members = Members::read(body).ok_or("the request is not a JSON object")?;
    let mut edits = Edits::new();
    if let Some(n) = members.get("n") {
        if serde_json::from_slice::<u64>(n).unwrap_or(1) != 1 {
            return Err("the request asked for several choices (`n`)");
        }
    }
    if !prefix.is_empty() {
        let (Some(span), Some(raw)) = (members.span("messages"), members.get("messages")) else {
            return Err("the request has no `messages` list");
        };
        let count = serde_json::from_slice::<Vec<IgnoredAny>>(raw)
            .map_err(|_| "the request's `messages` is not a list")?
            .len();
        let mut message = Vec::with_capacity(prefix.len() + 40);
        if count > 0 {
            message.push(b',');
        }
        message.extend_from_slice(br#"{"role":"assistant","content":"#);
        push_json_string(&mut message, prefix);
        message.push(b'}');
        // Just inside the list's closing `]`.
        edits.insert(span.end - 1, message);
        if prefill == Prefill::Vllm {
            edits.add_member(&members, "continue_final_message", "true");
            edits.add_member(&members, "add_generation_prompt", "false");
        }
    }
    for key in ["max_tokens", "max_completion_tokens"] {
        let (Some(span), Some(raw)) = (members.span(key), members.get(key)) else {
            continue;
        };
        if let Ok(limit) = serde_json::from_slice::<u64>(raw) {
            let left = limit.saturating_sub(generated);
            if left == 0 {
                return Err("the answer used up its `max_tokens`");
            }
            edits.replace(span, left.to_string().into_bytes());
        }
    }
    match (
        members.span("stream_options"),
        members.get("stream_options"),
    ) {
        (Some(span), Some(raw)) => {
            let mut options: BTreeMap<String, Box<RawValue>> =
                serde_json::from_slice(raw).unwrap_or_default();
            let on = RawValue::from_string("true".into()).map_err(|_| "unreachable")?;
            options.insert("include_usage".to_owned(), on);
            let options = serde_json::to_vec(&options).map_err(|_| "unreachable")?;
            edits.replace(span, options);
        }
        _ => edits.add_member(&members, "stream_options", r#"{"include_usage":true}"#),
    }
    Ok(edits.apply(body))
}

/// What the relayed stream has said so far, read from its chunks.
#[derive(Default)]
pub(super) struct Transcript {
    id: Option<String>,
    model: Option<String>,
    created: Option<u64>,
    /// `choices[].index` of the one choice.
    index: Option<u64>,
    /// The answer's text.
    text: String,
    /// Why the stream can't be resumed, once it can't.
    blocked: Option<&'static str>,
    /// A `finish_reason` (or `[DONE]`) was seen: the answer is complete.
    finished: bool,
}

#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceView<'a>>>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<DeltaView<'a>>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
}

impl Transcript {
    /// Reads one relayed event's data.
    pub(super) fn observe(&mut self, data: &[u8], max_text: usize) {
        if self.blocked.is_some() || self.finished {
            return;
        }
        if data.starts_with(b"[DONE]") {
            self.finished = true;
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<ChunkView<'_>>(data) else {
            return;
        };
        if self.id.is_none() {
            self.id = chunk.id.map(Cow::into_owned);
        }
        if self.model.is_none() {
            self.model = chunk.model.map(Cow::into_owned);
        }
        if self.created.is_none() {
            self.created = chunk.created;
        }
        for choice in chunk.choices.unwrap_or_default() {
            let index = choice.index.unwrap_or(0);
            if *self.index.get_or_insert(index) != index {
                self.blocked = Some("the answer has several choices");
            }
            if let Some(delta) = choice.delta {
                if delta.tool_calls.is_some_and(|calls| !calls.is_empty())
                    || delta.function_call.is_some()
                {
                    self.blocked = Some("the answer was calling tools");
                }
                if delta.refusal.is_some_and(|r| !r.is_empty()) {
                    self.blocked = Some("the answer is a refusal");
                }
                if let Some(content) = delta.content {
                    if self.text.len() + content.len() > max_text {
                        self.blocked = Some("the answer is longer than `resume.max_text`");
                    } else {
                        self.text.push_str(&content);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
        }
    }

    /// Whether a `finish_reason` or `[DONE]` was seen.
    pub(super) fn finished(&self) -> bool {
        self.finished
    }
}

impl Resume {
    /// The most text kept.
    pub(super) fn max_text(&self) -> usize {
        self.policy.max_text
    }
}

/// Rewrites a continuation's events into the original stream.
pub(super) struct Splice {
    id: Option<String>,
    model: Option<String>,
    created: Option<u64>,
    index: u64,
    /// Cut leading whitespace off the continuation's text (the prefill's
    /// trailing whitespace was cut, and the client already has it).
    strip_leading: bool,
    /// The prefill, while the continuation may still be repeating it: some
    /// servers (llama.cpp's) answer a prefill with the prefix itself first,
    /// which the client already has.
    echo: String,
    /// Text held back while it matched the start of `echo`.
    swallowed: String,
    client_usage: bool,
    /// Completion tokens before this continuation (one per content event).
    earlier: u64,
}

/// One continuation event as the client gets it.
pub(super) struct Spliced {
    /// The bytes to relay; `None` to leave the event out.
    pub bytes: Option<Bytes>,
    /// The usage it reported, with what came before added.
    pub usage: Option<Usage>,
}

impl Splice {
    /// `text` without the part that repeats the prefill: held back while it
    /// matches the prefill's start, dropped once the whole prefill has been
    /// repeated, given back as soon as it differs (the server does not echo).
    fn unecho(&mut self, text: &str) -> String {
        if let Some(rest) = self.echo.strip_prefix(text) {
            self.swallowed.push_str(text);
            self.echo = rest.to_owned();
            return String::new();
        }
        if let Some(rest) = text.strip_prefix(self.echo.as_str()) {
            self.echo.clear();
            self.swallowed.clear();
            return rest.to_owned();
        }
        self.echo.clear();
        std::mem::take(&mut self.swallowed) + text
    }

    /// Rewrites one event of the continuation (`raw` as received, `data`
    /// its data; `has_data` false for comments).
    pub(super) fn rewrite(&mut self, raw: &Bytes, data: &[u8], has_data: bool) -> Spliced {
        let keep = |bytes: &Bytes| Spliced {
            bytes: Some(bytes.clone()),
            usage: None,
        };
        if !has_data || data.starts_with(b"[DONE]") {
            return keep(raw);
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_slice::<Value>(data) else {
            return keep(raw);
        };
        if !chunk.contains_key("choices") && !chunk.contains_key("usage") {
            // Not a chunk (an error the relay lets through, …): as it is.
            return keep(raw);
        }
        if let Some(id) = &self.id {
            chunk.insert("id".into(), Value::String(id.clone()));
        }
        if let Some(model) = &self.model {
            chunk.insert("model".into(), Value::String(model.clone()));
        }
        if let Some(created) = self.created {
            chunk.insert("created".into(), Value::from(created));
        }
        let mut says_something = false;
        let mut has_choices = false;
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            has_choices = !choices.is_empty();
            for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
                choice.insert("index".into(), Value::from(self.index));
                let finishing = choice
                    .get("finish_reason")
                    .is_some_and(|reason| !reason.is_null());
                if let Some(Value::Object(delta)) = choice.get_mut("delta") {
                    delta.remove("role");
                    if !self.echo.is_empty() {
                        let text = delta.get("content").and_then(Value::as_str).unwrap_or("");
                        let mut kept = self.unecho(text);
                        if finishing && !self.echo.is_empty() {
                            // It ended inside the prefix: it was no echo.
                            self.echo.clear();
                            kept = std::mem::take(&mut self.swallowed) + &kept;
                        }
                        if delta.contains_key("content") || !kept.is_empty() {
                            delta.insert("content".into(), Value::String(kept));
                        }
                    }
                    if self.strip_leading {
                        if let Some(Value::String(text)) = delta.get_mut("content") {
                            let trimmed = text.trim_start();
                            if !trimmed.is_empty() {
                                self.strip_leading = false;
                            }
                            *text = trimmed.to_owned();
                        }
                    }
                    says_something |= delta.iter().any(|(key, value)| match value {
                        Value::Null => false,
                        Value::String(s) => !s.is_empty() || key != "content",
                        Value::Array(a) => !a.is_empty(),
                        _ => true,
                    });
                }
                says_something |= choice
                    .get("finish_reason")
                    .is_some_and(|reason| !reason.is_null());
            }
        }
        let usage = crate::openai::usage_of_body(data).map(|mut u| {
            u.completion_tokens += self.earlier;
            u.total_tokens += self.earlier;
            u
        });
        if let Some(total) = usage {
            chunk.insert(
                "usage".into(),
                serde_json::json!({
                    "prompt_tokens": total.prompt_tokens,
                    "completion_tokens": total.completion_tokens,
                    "total_tokens": total.total_tokens,
                }),
            );
        }
        if !self.client_usage {
            chunk.remove("usage");
        }
        let drop = if usage.is_some() && !has_choices {
            // The usage-only chunk: only when the client asked for usage.
            !self.client_usage
        } else {
            // The role chunk and other empty deltas say nothing new.
            has_choices && !says_something
        };
        if drop {
            return Spliced { bytes: None, usage };
        }
        let json = serde_json::to_vec(&Value::Object(chunk)).unwrap_or_default();
        let mut out = BytesMut::with_capacity(json.len() + 8);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"\n\n");
        Spliced {
            bytes: Some(out.freeze()),
            usage,
        }
    }
}

#[cfg(test)]
mod tests;
