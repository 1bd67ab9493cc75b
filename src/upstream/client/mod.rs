//! The pooled outbound HTTP/1.1 client, over plain TCP or rustls.
//!
//! Switchyard's own, rather than hyper's: the request is written and the
//! response read by the task serving the client, with no hand-off to a
//! connection task and back, and a response body is read straight from
//! its socket, so a burst of stream chunks that arrived together is
//! decoded in one pass and relayed in one write (see `body`). The parts:
//! `connect` (DNS, TCP, TLS), `codec` (HTTP/1.1 framing), `pool` (idle
//! keep-alive connections), `body` (the response body).

mod body;
mod codec;
mod connect;
mod pool;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use body::UpstreamBody;
pub use codec::HeadWriter;
use connect::Conn;
use pool::Pool;

use crate::forward::body::RequestBody;

/// Request bodies up to this size are written with the head in one write.
const INLINE_BODY: usize = 64 * 1024;

/// One pooled client. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct UpstreamClient {
    pool: Arc<Pool>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClient")
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct ClientError {
    connect: bool,
    detail: String,
}

impl ClientError {
    fn connect(err: std::io::Error) -> ClientError {
        ClientError {
            connect: true,
            detail: err.to_string(),
        }
    }

    pub(crate) fn receive(detail: impl Into<String>) -> ClientError {
        ClientError {
            connect: false,
            detail: detail.into(),
        }
    }

    pub(crate) fn protocol(detail: &str) -> ClientError {
        ClientError::receive(format!("invalid HTTP/1.1 response: {detail}"))
    }

    /// The connection could not be opened (DNS, refused, TLS, timeout):
    /// the upstream never saw the request.
    pub fn is_connect(&self) -> bool {
        self.connect
    }
}

impl UpstreamClient {
    /// A client whose connections time out after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> UpstreamClient {
        UpstreamClient {
            pool: Arc::default(),
            connect_timeout,
        }
    }

    /// Sends one request to the absolute `http`/`https` URI it carries.
    ///
    /// # Cancel safety
    /// Dropping the future closes the connection it was using.
    pub async fn request(
        &self,
        request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let (parts, body) = request.into_parts();
        let headers = parts.headers;
        self.send(
            &parts.method,
            &parts.uri,
            |head| {
                for (name, value) in &headers {
                    head.header(name, value);
                }
            },
            body,
        )
        .await
    }

    /// Sends `method` `uri` with the headers `write_headers` adds (written
    /// straight into the request head: no header map is built) and `body`.
    ///
    /// A pooled connection is used when one is idle; if writing to it fails
    /// (the upstream closed it meanwhile), the request goes once more on a
    /// new connection. Nothing is retried once it was sent.
    ///
    /// # Cancel safety
    /// Dropping the future closes the connection it was using.
    pub async fn send(
        &self,
        method: &Method,
        uri: &Uri,
        write_headers: impl FnOnce(&mut HeadWriter<'_>),
        body: RequestBody,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let slot = self.pool.slot(uri).ok_or_else(|| ClientError {
            connect: true,
            detail: format!("`{uri}` is not an http:// or https:// URL"),
        })?;
        let body = body.into_parts();
        let body_len: usize = body.iter().map(Bytes::len).sum();
        let mut message = Vec::with_capacity(512 + body_len.min(INLINE_BODY));
        let mut head = HeadWriter::new(
            &mut message,
            method,
            uri.path_and_query().map_or("/", |p| p.as_str()),
            uri.authority().map_or("", |a| a.as_str()),
        );
        write_headers(&mut head);
        head.finish(method, body_len as u64);
        let rest = if body_len <= INLINE_BODY {
            body.iter().for_each(|part| message.extend_from_slice(part));
            VecDeque::new()
        } else {
            body
        };
        let mut pooled = self.pool.checkout(slot);
        if let Some(conn) = pooled.as_mut() {
            if write(conn, &message, &rest).await.is_err() {
                pooled = None;
            }
        }
        let mut conn = match pooled {
            Some(conn) => conn,
            None => {
                let origin = self.pool.origin(slot).ok_or_else(|| ClientError {
                    connect: true,
                    detail: "no such origin".into(),
                })?;
                let mut conn = connect::connect(&origin, self.connect_timeout)
                    .await
                    .map_err(ClientError::connect)?;
                write(&mut conn, &message, &rest)
                    .await
                    .map_err(|e| ClientError::receive(e.to_string()))?;
                conn
            }
        };
        let mut buf = BytesMut::with_capacity(body::INITIAL_READ);
        let head = loop {
            match codec::parse_head(&mut buf, method) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => return Err(ClientError::protocol(e.0)),
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(body::INITIAL_READ);
            }
            match conn.read_buf(&mut buf).await {
                Ok(0) if buf.is_empty() => {
                    return Err(ClientError::receive(
                        "the upstream closed the connection before answering",
                    ))
                }
                Ok(0) => {
                    return Err(ClientError::receive(
                        "the upstream closed the connection in the middle of the response head",
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(ClientError::receive(e.to_string())),
            }
        };
        let mut response = Response::new(UpstreamBody::new(
            conn,
            buf,
            head.framing,
            head.keep_alive,
            Arc::clone(&self.pool),
            slot,
        ));
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = head.headers;
        Ok(response)
    }
}

/// Writes a request: `message` (the head, with the body when it is small),
/// then the `rest` of the body.
async fn write(conn: &mut Conn, message: &[u8], rest: &VecDeque<Bytes>) -> std::io::Result<()> {
    conn.write_all(message).await?;
    for part in rest {
        conn.write_all(part).await?;
    }
    conn.flush().await
}
