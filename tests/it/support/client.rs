//! A tiny raw HTTP/1 client for tests (hyper-util's legacy client over a plain
//! `HttpConnector`), so tests see exactly the bytes the server sent.
//!
//! Every wait has a deadline ([`DEADLINE`], 10 s) so a broken server fails the
//! test instead of hanging it. Each call uses a fresh client (and so a fresh
//! connection): no pooled connection is shared between calls.

use std::error::Error as StdError;
use std::str::FromStr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::{timeout, timeout_at, Instant};

/// Deadline for every wait in these helpers.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A whole response.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body parsed as JSON; panics with status and body text if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (case-insensitive), lossily as text.
    pub fn header(&self, name: &str) -> Option<String> {
        header_text(&self.headers, name)
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Formats an error with its whole `source()` chain.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn build_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, String> {
    let method = Method::from_str(method).map_err(|e| format!("bad method {method:?}: {e}"))?;
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body))
        .map_err(|e| format!("bad request to {url:?}: {e}"))?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("bad header name {name:?}: {e}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|e| format!("bad header value {value:?}: {e}"))?;
        req.headers_mut().append(name, value);
    }
    Ok(req)
}

async fn start_request(
    req: Request<Full<Bytes>>,
    deadline: Instant,
) -> Result<http::Response<Incoming>, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let what = format!("{} {}", req.method(), req.uri());
    match timeout_at(deadline, client.request(req)).await {
        Err(_) => Err(format!("{what}: timed out waiting for the response head")),
        Ok(Err(e)) => Err(format!("{what}: transport error: {}", error_chain(&e))),
        Ok(Ok(resp)) => Ok(resp),
    }
}

/// Sends a request and collects the whole body. Transport errors (connection
/// refused or reset, body cut mid-stream, deadline passed) come back as `Err`.
pub async fn try_send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Reply, String> {
    let deadline = Instant::now() + DEADLINE;
    let req = build_request(method, url, headers, body.into())?;
    let resp = start_request(req, deadline).await?;
    let (parts, body) = resp.into_parts();
    let body = match timeout_at(deadline, body.collect()).await {
        Err(_) => {
            return Err(format!(
                "{method} {url}: timed out reading the body (status {})",
                parts.status
            ))
        }
        Ok(Err(e)) => {
            return Err(format!(
                "{method} {url}: body error after status {}: {}",
                parts.status,
                error_chain(&e)
            ))
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Like [`try_send`], but panics with a clear message on a transport error.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    match try_send(method, url, headers, body).await {
        Ok(reply) => reply,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// `GET url` with no body.
pub async fn get(url: &str) -> Reply {
    send("GET", url, &[], Bytes::new()).await
}

/// `POST url` with `content-type: application/json`.
pub async fn post_json(url: &str, body: &str) -> Reply {
    send(
        "POST",
        url,
        &[("content-type", "application/json")],
        Bytes::copy_from_slice(body.as_bytes()),
    )
    .await
}

/// A response whose body is read frame by frame.
#[derive(Debug)]
pub struct StreamReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
}

/// Starts a `POST` (with `content-type: application/json` unless `headers`
/// has one) and returns the response head plus a body reader; panics on a
/// transport error.
pub async fn open_stream(url: &str, headers: &[(&str, &str)], body: &str) -> StreamReply {
    match try_open_stream(url, headers, body).await {
        Ok(reply) => reply,
        Err(e) => panic!("opening stream failed: {e}"),
    }
}

/// Like [`open_stream`], with transport errors as `Err`.
pub async fn try_open_stream(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<StreamReply, String> {
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        all.push(("content-type", "application/json"));
    }
    all.extend_from_slice(headers);
    let req = build_request("POST", url, &all, Bytes::copy_from_slice(body.as_bytes()))?;
    let resp = start_request(req, Instant::now() + DEADLINE).await?;
    let (parts, body) = resp.into_parts();
    Ok(StreamReply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

impl StreamReply {
    /// The first value of header `name` (case-insensitive), lossily as text.
    pub fn header(&self, name: &str) -> Option<String> {
        header_text(&self.headers, name)
    }

    /// The next data frame: `None` at a clean end, `Some(Err)` on a body
    /// error or when [`DEADLINE`] passes.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, String>> {
        match self.chunk_within(DEADLINE).await {
            Some(next) => next,
            None => Some(Err(format!(
                "timed out after {DEADLINE:?} waiting for a body frame"
            ))),
        }
    }

    /// The next data frame, or `None` if none arrived `within` (the outer
    /// option). Use it to check that nothing arrives yet; nothing is lost
    /// when it times out.
    pub async fn chunk_within(
        &mut self,
        within: Duration,
    ) -> Option<Option<Result<Bytes, String>>> {
        let deadline = Instant::now() + within;
        loop {
            match timeout_at(deadline, self.body.frame()).await {
                Err(_) => return None,
                Ok(None) => return Some(None),
                Ok(Some(Err(e))) => return Some(Some(Err(error_chain(&e)))),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Some(Ok(data)));
                    }
                    // Trailers and unknown frames are skipped.
                }
            }
        }
    }

    /// Reads frames until the text read by this call contains `needle` and
    /// returns that text (which may run past the needle to the end of the
    /// frame). Panics, with what it got, at the end of the body, on a body
    /// error, or after [`DEADLINE`].
    pub async fn read_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut got = BytesMut::new();
        loop {
            let text = String::from_utf8_lossy(&got);
            if text.contains(needle) {
                return text.into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunk_within(left).await {
                None => {
                    panic!("read_until({needle:?}): timed out after {DEADLINE:?}; got {text:?}")
                }
                Some(None) => panic!("read_until({needle:?}): body ended; got {text:?}"),
                Some(Some(Err(e))) => {
                    panic!("read_until({needle:?}): body error {e}; got {text:?}")
                }
                Some(Some(Ok(data))) => got.extend_from_slice(&data),
            }
        }
    }

    /// Collects the rest of the body; `Err` on a body error or after
    /// [`DEADLINE`].
    pub async fn rest(self) -> Result<Bytes, String> {
        match timeout(DEADLINE, self.body.collect()).await {
            Err(_) => Err(format!("timed out after {DEADLINE:?} collecting the body")),
            Ok(Err(e)) => Err(error_chain(&e)),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }
}
