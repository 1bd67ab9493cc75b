//! A scripted, in-process mock of an OpenAI-compatible upstream.
//!
//! Modelled on linkerd2-proxy's integration-test `server.rs`: one tokio task
//! accepts connections on `127.0.0.1:0`, each connection is served by
//! `hyper::server::conn::http1` (keep-alive on), and every request is recorded
//! before the scripted [`Behaviour`] is produced.
//!
//! Streamed bodies are fed by a bounded `tokio::sync::mpsc` channel from a
//! producer task. The body type ([`ChannelBody`]) knows whether it reached its
//! end; if hyper drops it before that (the peer went away, the connection was
//! closed, a write failed) the mock counts a *cancelled stream* and wakes
//! [`MockUpstream::wait_for_cancelled_stream`].

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// `created` timestamp used by every generated payload.
pub const MOCK_CREATED: u64 = 1_700_000_000;
/// `id` used by every generated payload.
pub const MOCK_ID: &str = "chatcmpl-mock123";
/// `system_fingerprint` used by every generated payload.
pub const MOCK_FINGERPRINT: &str = "fp_mock";

type RespBody = BoxBody<Bytes, io::Error>;
type Chooser = dyn Fn(&Recorded) -> Behaviour + Send + Sync + 'static;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    /// Path and query exactly as received (origin-form for HTTP/1).
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The whole request body.
    pub body: Bytes,
}

impl Recorded {
    /// The body parsed as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "recorded request body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first value of header `name` (case-insensitive), lossily as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The path part of the URI.
    pub fn path(&self) -> &str {
        self.uri.path()
    }
}

/// What the mock does with a request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 application/json with this exact body.
    Json(String),
    /// status + exact body (content-type application/json unless `headers`
    /// sets one) + extra headers.
    Status {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// 200 text/event-stream; each chunk is its own body frame, with `delay`
    /// before every chunk (including the first); then the body ends cleanly.
    Sse {
        chunks: Vec<String>,
        delay: Duration,
    },
    /// 200 text/event-stream: `chunk` sent `times` times as fast as the
    /// reader takes it (one buffer shared by every request), then the body
    /// ends cleanly.
    SseRepeat { chunk: Bytes, times: usize },
    /// 200 text/event-stream; `chunks[0]` is sent at once, every later chunk
    /// waits for one [`Gate::release`]; after the last chunk the body ends
    /// cleanly.
    SseGated { chunks: Vec<String>, gate: Gate },
    /// 200 text/event-stream; sends `chunks`, then aborts the connection
    /// mid-body (no terminating 0-chunk), so the reader sees an error.
    SseCut { chunks: Vec<String> },
    /// 200 with `content_type` (e.g. Bedrock's
    /// `application/vnd.amazon.eventstream`): each chunk its own body frame;
    /// then the body ends cleanly, or is aborted mid-body when `cut`.
    Binary {
        content_type: &'static str,
        chunks: Vec<Bytes>,
        cut: bool,
    },
    /// Like `Binary`, but every chunk after the first waits for one
    /// [`Gate::release`]; the body then ends cleanly.
    BinaryGated {
        content_type: &'static str,
        chunks: Vec<Bytes>,
        gate: Gate,
    },
    /// Never answer (no response head) until the mock is dropped or the
    /// peer goes away.
    Hang,
    /// Read the request, then close the connection without writing any
    /// response bytes.
    Reset,
    /// Wait, then behave as the inner behaviour.
    Delayed(Duration, Box<Behaviour>),
}

impl Behaviour {
    /// `Sse` with no delay.
    pub fn sse(chunks: Vec<String>) -> Behaviour {
        Behaviour::Sse {
            chunks,
            delay: Duration::ZERO,
        }
    }

    /// `Delayed(delay, Box::new(self))`.
    pub fn delayed(self, delay: Duration) -> Behaviour {
        Behaviour::Delayed(delay, Box::new(self))
    }
}

/// A gate for [`Behaviour::SseGated`]: lets the test release chunks one at a
/// time. Clones share the same gate.
#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(0)),
        }
    }

    /// Releases one pending chunk (or the next one to become pending).
    pub fn release(&self) {
        self.permits.add_permits(1);
    }

    /// Releases `n` chunks.
    pub fn release_n(&self, n: usize) {
        self.permits.add_permits(n);
    }

    async fn wait(&self) {
        // The semaphore is never closed, so acquire cannot fail.
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
    }
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new()
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("released", &self.permits.available_permits())
            .finish()
    }
}

/// A running mock upstream. Dropping it stops the server and every
/// connection it holds.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

struct Shared {
    choose: Box<Chooser>,
    requests: Mutex<Vec<Recorded>>,
    request_notify: Notify,
    cancelled: AtomicUsize,
    cancel_notify: Notify,
}

impl MockUpstream {
    /// Starts a mock that answers every request with `behaviour`.
    pub async fn start(behaviour: Behaviour) -> MockUpstream {
        MockUpstream::start_with(move |_: &Recorded| behaviour.clone()).await
    }

    /// Starts a mock that picks a behaviour per request.
    pub async fn start_with(
        f: impl Fn(&Recorded) -> Behaviour + Send + Sync + 'static,
    ) -> MockUpstream {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("mock upstream: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("mock upstream: local_addr");
        let shared = Arc::new(Shared {
            choose: Box::new(f),
            requests: Mutex::new(Vec::new()),
            request_notify: Notify::new(),
            cancelled: AtomicUsize::new(0),
            cancel_notify: Notify::new(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::debug!(%addr, "mock upstream listening");
        MockUpstream {
            addr,
            shared,
            accept_task,
        }
    }

    /// Starts a mock that answers the n-th request with `behaviours[n]`, and
    /// every request past the end with the last one (e.g. fail, then succeed).
    pub async fn start_sequence(behaviours: Vec<Behaviour>) -> MockUpstream {
        assert!(!behaviours.is_empty(), "start_sequence needs a behaviour");
        let next = AtomicUsize::new(0);
        MockUpstream::start_with(move |_: &Recorded| {
            let n = next.fetch_add(1, Ordering::SeqCst);
            behaviours[n.min(behaviours.len() - 1)].clone()
        })
        .await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"http://127.0.0.1:PORT"`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// The last request received, if any.
    pub fn last_request(&self) -> Option<Recorded> {
        self.shared.requests.lock().unwrap().last().cloned()
    }

    /// Waits until at least `n` requests were received; false if `within`
    /// passed first.
    pub async fn wait_for_requests(&self, n: usize, within: Duration) -> bool {
        let shared = &self.shared;
        wait_until(&shared.request_notify, within, || {
            shared.requests.lock().unwrap().len() >= n
        })
        .await
    }

    /// Resolves (true) once a streamed response body has been dropped before
    /// it finished because the peer went away; false if `within` passed
    /// first. Counts streams cancelled before the call too.
    pub async fn wait_for_cancelled_stream(&self, within: Duration) -> bool {
        self.wait_for_cancelled_streams(1, within).await
    }

    /// Like [`Self::wait_for_cancelled_stream`], for at least `n` streams.
    pub async fn wait_for_cancelled_streams(&self, n: usize, within: Duration) -> bool {
        let shared = &self.shared;
        wait_until(&shared.cancel_notify, within, || {
            shared.cancelled.load(Ordering::SeqCst) >= n
        })
        .await
    }

    /// How many streamed bodies were dropped before they finished.
    pub fn cancelled_streams(&self) -> usize {
        self.shared.cancelled.load(Ordering::SeqCst)
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every
        // connection task (and with it every pending service future and
        // streamed body; producers notice the closed channel and stop).
        self.accept_task.abort();
    }
}

impl fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .field("cancelled_streams", &self.cancelled_streams())
            .finish()
    }
}

async fn wait_until(notify: &Notify, within: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Register before checking, so a notification in between is not lost.
        notified.as_mut().enable();
        if cond() {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return cond();
        }
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here so that aborting this task aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        // Reap finished connection tasks so the set does not grow.
        while conns.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "mock upstream: accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        conns.spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let result = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "mock upstream: connection ended with error");
            }
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| io::Error::other(format!("mock upstream: reading request body: {e}")))?
        .to_bytes();
    let recorded = Recorded {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let mut behaviour = (shared.choose)(&recorded);
    tracing::debug!(method = %recorded.method, uri = %recorded.uri, ?behaviour, "mock upstream: request");
    shared.requests.lock().unwrap().push(recorded);
    shared.request_notify.notify_waiters();

    loop {
        match behaviour {
            Behaviour::Delayed(delay, inner) => {
                tokio::time::sleep(delay).await;
                behaviour = *inner;
            }
            Behaviour::Json(body) => return Ok(full_response(200, body, &[])),
            Behaviour::Status {
                status,
                body,
                headers,
            } => return Ok(full_response(status, body, &headers)),
            Behaviour::Sse { chunks, delay } => {
                let (tx, body) = channel_body(&shared);
                tokio::spawn(async move {
                    for chunk in chunks {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = tx.closed() => return,
                        }
                        if tx.send(Ok(Frame::data(Bytes::from(chunk)))).await.is_err() {
                            return;
                        }
                    }
                });
                return Ok(sse_response(body));
            }
            Behaviour::SseRepeat { chunk, times } => {
                let (tx, body) = channel_body(&shared);
                tokio::spawn(async move {
                    for _ in 0..times {
                        if tx.send(Ok(Frame::data(chunk.clone()))).await.is_err() {
                            return;
                        }
                    }
                });
                return Ok(sse_response(body));
            }
            Behaviour::SseGated { chunks, gate } => {
                let (tx, body) = channel_body(&shared);
                tokio::spawn(async move {
                    for (i, chunk) in chunks.into_iter().enumerate() {
                        if i > 0 {
                            tokio::select! {
                                _ = gate.wait() => {}
                                _ = tx.closed() => return,
                            }
                        }
                        if tx.send(Ok(Frame::data(Bytes::from(chunk)))).await.is_err() {
                            return;
                        }
                    }
                });
                return Ok(sse_response(body));
            }
            Behaviour::SseCut { chunks } => {
                let (tx, body) = channel_body(&shared);
                tokio::spawn(async move {
                    for chunk in chunks {
                        if tx.send(Ok(Frame::data(Bytes::from(chunk)))).await.is_err() {
                            return;
                        }
                    }
                    let cut =
                        io::Error::new(io::ErrorKind::ConnectionAborted, "mock upstream: SseCut");
                    let _ = tx.send(Err(cut)).await;
                });
                return Ok(sse_response(body));
            }
            Behaviour::Binary {
                content_type,
                chunks,
                cut,
            } => {
                let (tx, body) = channel_body(&shared);
                tokio::spawn(async move {
                    for chunk in chunks {
                        if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                            return;
                        }
                    }
                    if cut {
                        let cut = io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "mock upstream: Binary cut",
                        );
                        let _ = tx.send(Err(cut)).await;
                    }
                });
                let mut resp = Response::new(body.boxed());
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                );
                return Ok(resp);
            }
            Behaviour::BinaryGated {
                content_type,
                chunks,
                gate,
            } => {
                let (tx, body) = channel_body(&shared);
                tokio::spawn(async move {
                    for (i, chunk) in chunks.into_iter().enumerate() {
                        if i > 0 {
                            tokio::select! {
                                _ = gate.wait() => {}
                                _ = tx.closed() => return,
                            }
                        }
                        if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                            return;
                        }
                    }
                });
                let mut resp = Response::new(body.boxed());
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                );
                return Ok(resp);
            }
            Behaviour::Hang => {
                // Dropped with the connection task (mock dropped or peer gone).
                return std::future::pending().await;
            }
            Behaviour::Reset => {
                // A service error makes hyper close the connection without
                // writing a response.
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "mock upstream: Reset behaviour",
                ));
            }
        }
    }
}

fn full_response(status: u16, body: String, headers: &[(String, String)]) -> Response<RespBody> {
    let status = StatusCode::from_u16(status)
        .unwrap_or_else(|e| panic!("mock upstream: invalid status {status}: {e}"));
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    let sets_content_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !sets_content_type {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("mock upstream: invalid header name {name:?}: {e}"));
        let value = HeaderValue::from_str(value)
            .unwrap_or_else(|e| panic!("mock upstream: invalid header value {value:?}: {e}"));
        resp.headers_mut().append(name, value);
    }
    resp
}

fn sse_response(body: ChannelBody) -> Response<RespBody> {
    let mut resp = Response::new(body.boxed());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    resp
}

// ---------------------------------------------------------------------------
// Streamed body
// ---------------------------------------------------------------------------

type FrameResult = Result<Frame<Bytes>, io::Error>;

fn channel_body(shared: &Arc<Shared>) -> (mpsc::Sender<FrameResult>, ChannelBody) {
    let (tx, rx) = mpsc::channel(1);
    let body = ChannelBody {
        rx,
        pending_error: None,
        finished: false,
        shared: shared.clone(),
    };
    (tx, body)
}

/// A response body fed by a channel, one frame per message. Counts itself as
/// a cancelled stream if it is dropped before its end.
struct ChannelBody {
    rx: mpsc::Receiver<FrameResult>,
    /// An error (SseCut) held back for one poll so hyper flushes the data
    /// already buffered before it aborts the connection.
    pending_error: Option<io::Error>,
    finished: bool,
    shared: Arc<Shared>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FrameResult>> {
        let this = &mut *self;
        if let Some(e) = this.pending_error.take() {
            this.finished = true;
            return Poll::Ready(Some(Err(e)));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Err(e))) => {
                this.pending_error = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for ChannelBody {
    fn drop(&mut self) {
        if !self.finished {
            let n = self.shared.cancelled.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::debug!(
                cancelled_streams = n,
                "mock upstream: streamed body dropped before its end"
            );
            self.shared.cancel_notify.notify_waiters();
        }
    }
}

// ---------------------------------------------------------------------------
// OpenAI payload helpers
// ---------------------------------------------------------------------------

fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A full non-stream `chat.completion` body with usage
/// `{prompt_tokens: 11, completion_tokens: 7, total_tokens: 18}`.
pub fn chat_completion_json(model: &str, content: &str) -> String {
    format!(
        concat!(
            r#"{{"id":"{id}","object":"chat.completion","created":{created},"model":{model},"#,
            r#""choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null}},"#,
            r#""logprobs":null,"finish_reason":"stop"}}],"#,
            r#""usage":{{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}},"#,
            r#""system_fingerprint":"{fp}"}}"#
        ),
        id = MOCK_ID,
        created = MOCK_CREATED,
        model = js(model),
        content = js(content),
        fp = MOCK_FINGERPRINT,
    )
}

/// OpenAI-style SSE frames, each a complete `data: {...}\n\n` string: a
/// role-only chunk, one chunk per piece, a finish chunk
/// (`finish_reason: "stop"`), then (if `include_usage`) a usage chunk with
/// `"choices":[]` (usage 11/7/18; the other chunks then carry
/// `"usage":null`, as OpenAI sends them), and finally `data: [DONE]\n\n`.
pub fn chat_chunks(model: &str, pieces: &[&str], include_usage: bool) -> Vec<String> {
    let model = js(model);
    let usage_null = if include_usage {
        r#","usage":null"#
    } else {
        ""
    };
    let chunk = |choices: String, usage: &str| {
        format!(
            concat!(
                r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":{created},"#,
                r#""model":{model},"system_fingerprint":"{fp}","choices":{choices}{usage}}}"#,
                "\n\n"
            ),
            id = MOCK_ID,
            created = MOCK_CREATED,
            model = model,
            fp = MOCK_FINGERPRINT,
            choices = choices,
            usage = usage,
        )
    };
    let choice = |delta: String, finish: &str| {
        format!(r#"[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]"#)
    };

    let mut out = Vec::with_capacity(pieces.len() + 4);
    out.push(chunk(
        choice(
            r#"{"role":"assistant","content":"","refusal":null}"#.to_string(),
            "null",
        ),
        usage_null,
    ));
    for piece in pieces {
        out.push(chunk(
            choice(format!(r#"{{"content":{}}}"#, js(piece)), "null"),
            usage_null,
        ));
    }
    out.push(chunk(choice("{}".to_string(), r#""stop""#), usage_null));
    if include_usage {
        out.push(chunk(
            "[]".to_string(),
            r#","usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}"#,
        ));
    }
    out.push("data: [DONE]\n\n".to_string());
    out
}

/// A `Status` behaviour with an OpenAI error body:
/// `{"error":{"message":…,"type":kind,"param":null,"code":code}}`
/// (an empty `code` is written as `null`).
pub fn openai_error(status: u16, message: &str, kind: &str, code: &str) -> Behaviour {
    let code = if code.is_empty() {
        "null".to_string()
    } else {
        js(code)
    };
    Behaviour::Status {
        status,
        body: format!(
            r#"{{"error":{{"message":{},"type":{},"param":null,"code":{}}}}}"#,
            js(message),
            js(kind),
            code
        ),
        headers: Vec::new(),
    }
}
