//! Small helpers shared by several integration-test files: OpenAI error-shape
//! checks, an address nobody listens on, a raw HTTP/1 exchange (for request
//! framings the hyper client cannot produce, such as a chunked body), and
//! polling with a deadline.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::{Reply, DEADLINE};

/// Checks that `reply` is a router-produced OpenAI error: `status`,
/// `content-type: application/json`, and a body of exactly
/// `{"error":{"message","type","param","code"}}` with a non-empty message,
/// a string `type` and the given `code`. Returns the inner `error` object.
pub fn assert_openai_error(reply: &Reply, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "expected status {status}; got {} with body {:?}",
        reply.status,
        reply.text()
    );
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "an error must be JSON; content-type was {content_type:?}"
    );
    let body = reply.json();
    let top = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert_eq!(
        top.keys().collect::<Vec<_>>(),
        ["error"],
        "error body must have exactly one key `error`: {body}"
    );
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("`error` is not an object: {body}"));
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["code", "message", "param", "type"],
        "error object keys: {body}"
    );
    let message = error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("`message` is not a string: {body}"));
    assert!(!message.trim().is_empty(), "empty error message: {body}");
    assert!(error["type"].is_string(), "`type` is not a string: {body}");
    assert!(
        error["param"].is_null() || error["param"].is_string(),
        "`param` must be null or a string: {body}"
    );
    assert_eq!(error["code"], code, "error code: {body}");
    body["error"].clone()
}

/// A `127.0.0.1:PORT` that was bound a moment ago and then released, so a
/// connection to it is refused.
pub async fn dead_addr() -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind a port to release");
    let addr = listener.local_addr().expect("local_addr");
    drop(listener);
    addr.to_string()
}

/// Writes `request` (a complete raw HTTP/1.1 request) to `base`
/// (`http://127.0.0.1:PORT`) and reads one response: head, then a body of
/// `content-length` bytes, or up to the end of the connection without one.
/// A chunked response body is returned still chunk-encoded.
pub async fn raw_exchange(base: &str, request: &[u8]) -> Reply {
    let addr = base.strip_prefix("http://").unwrap_or(base);
    let work = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect to router");
        stream.write_all(request).await.expect("write raw request");
        stream.flush().await.expect("flush raw request");
        let mut got: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = find(&got, b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut buf).await.expect("read response head");
            assert!(
                n > 0,
                "connection closed before a response head; got {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let code: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                headers.append(
                    HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
                    HeaderValue::from_str(value.trim()).expect("header value"),
                );
            }
        }
        let mut body = got[head_end + 4..].to_vec();
        let length = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        loop {
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
        Reply {
            status: StatusCode::from_u16(code).expect("status code"),
            headers,
            body: Bytes::from(body),
        }
    };
    tokio::time::timeout(DEADLINE, work)
        .await
        .expect("raw exchange timed out")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Calls `check` until it returns `Some`, pausing `every` between calls;
/// panics with `what` once `within` has passed. The pause is only a polling
/// interval, never a measurement.
pub async fn poll_until<T, F, Fut>(what: &str, within: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("gave up after {within:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// An HTTP/2 (h2c, prior knowledge) exchange kept open: the client (and so
/// its connection) lives as long as this value, so dropping only the
/// response body resets just that stream, not the connection.
pub struct H2Stream {
    /// The response status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body, read frame by frame.
    pub body: Option<hyper::body::Incoming>,
    /// Never read: held so the pooled connection lives as long as this
    /// value (see the type's docs).
    _client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
}

impl H2Stream {
    /// Sends a JSON `POST` over h2c and returns once the response head arrived.
    pub async fn post(url: &str, body: &str) -> H2Stream {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http::<http_body_util::Full<Bytes>>();
        let request = http::Request::post(url)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::copy_from_slice(
                body.as_bytes(),
            )))
            .expect("a valid request");
        let response = tokio::time::timeout(DEADLINE, client.request(request))
            .await
            .expect("h2 response head within the deadline")
            .unwrap_or_else(|e| panic!("h2 request failed: {}", super::client::error_chain(&e)));
        assert_eq!(response.version(), http::Version::HTTP_2, "h2c was used");
        let (parts, body) = response.into_parts();
        H2Stream {
            status: parts.status,
            headers: parts.headers,
            body: Some(body),
            _client: client,
        }
    }

    /// Reads data frames until the text read contains `needle`.
    pub async fn read_until(&mut self, needle: &str) -> String {
        use http_body_util::BodyExt;
        let body = self.body.as_mut().expect("the body was not dropped");
        let mut got = Vec::new();
        let work = async {
            loop {
                let text = String::from_utf8_lossy(&got).into_owned();
                if text.contains(needle) {
                    return text;
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            got.extend_from_slice(&data);
                        }
                    }
                    other => panic!("h2 read_until({needle:?}): {other:?}; got {text:?}"),
                }
            }
        };
        tokio::time::timeout(DEADLINE, work)
            .await
            .expect("h2 read_until timed out")
    }

    /// Collects the rest of the body.
    pub async fn rest(&mut self) -> Bytes {
        use http_body_util::BodyExt;
        let body = self.body.take().expect("the body was not dropped");
        tokio::time::timeout(DEADLINE, body.collect())
            .await
            .expect("h2 body within the deadline")
            .expect("h2 body ends cleanly")
            .to_bytes()
    }
}
