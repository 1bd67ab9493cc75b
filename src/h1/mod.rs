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
mod request_body;

pub use request_body::RequestBody;

pub(crate) use codec::Framing;

/// The head parser, for `crate::fuzzing`: the framing of the body and, for a
/// `Content-Length` body, its length.
pub(crate) fn parse_head_for_fuzzing(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<(Framing, Option<u64>)>, codec::ProtocolError> {
    Ok(codec::parse_head(buf, method)?.map(|head| {
        let limit = match head.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        (head.framing, limit)
    }))
}

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

/// Request bodies up to this size are written with the head in one write.
const INLINE_BODY: usize = 64 * 1024;

/// One pooled client. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct UpstreamClient {
    pool: Arc<Pool>,
    connect_timeout: Duration,
}

/// How often idle pooled connections are checked (see [`Pool::sweep`]).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClient")
    }
}

/// What went wrong with an upstream request, so callers classify it
/// without reading text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientErrorKind {
    /// The connection could not be opened (DNS, refused, TLS, timeout):
    /// the upstream never saw the request.
    Connect,
    /// The upstream closed the connection before any byte of an answer.
    /// `reused`: it was a pooled connection (a stale keep-alive race).
    ClosedBeforeAnswer {
        /// The connection had served an earlier request.
        reused: bool,
    },
    /// The answer broke off: closed or reset in the middle of it.
    Broken,
    /// The bytes were not valid HTTP/1.1 (head, framing, coding).
    Protocol,
}

/// Why a request got no (complete) response.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct ClientError {
    kind: ClientErrorKind,
    detail: String,
}

impl ClientError {
    fn new(kind: ClientErrorKind, detail: impl Into<String>) -> ClientError {
        ClientError {
            kind,
            detail: detail.into(),
        }
    }

    fn connect(err: std::io::Error) -> ClientError {
        ClientError::new(ClientErrorKind::Connect, err.to_string())
    }

    pub(crate) fn receive(detail: impl Into<String>) -> ClientError {
        ClientError::new(ClientErrorKind::Broken, detail)
    }

    pub(crate) fn protocol(detail: &str) -> ClientError {
        ClientError::new(
            ClientErrorKind::Protocol,
            format!("invalid HTTP/1.1 response: {detail}"),
        )
    }

    /// What kind of failure this was.
    pub fn kind(&self) -> ClientErrorKind {
        self.kind
    }

    /// The connection could not be opened: the upstream never saw the request.
    pub fn is_connect(&self) -> bool {
        self.kind == ClientErrorKind::Connect
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
        if !self
            .pool
            .sweeping
            .load(std::sync::atomic::Ordering::Relaxed)
            && !self
                .pool
                .sweeping
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            // Ends when the client (and so the pool) is gone.
            let pool = Arc::downgrade(&self.pool);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SWEEP_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(pool) = pool.upgrade() else { return };
                    pool.sweep(std::time::Instant::now(), pool::IDLE_TIMEOUT);
                }
            });
        }
        let slot = self.pool.slot(uri).ok_or_else(|| {
            ClientError::new(
                ClientErrorKind::Connect,
                format!("`{uri}` is not an http:// or https:// URL"),
            )
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
        let (conn, buf, head) = match pooled {
            Some(conn) => match read_head(conn, method, true).await {
                // The upstream closed the idle connection just as it was
                // reused, before answering a byte: the race every keep-alive
                // client meets. Send it once more on a new connection (as
                // pingora and hyper do); it does not count against the target.
                Err(err) if err.kind == (ClientErrorKind::ClosedBeforeAnswer { reused: true }) => {
                    tracing::debug!(%uri, "pooled connection closed before answering; sending again on a new one");
                    self.fresh(slot, method, &message, &rest).await?
                }
                result => result?,
            },
            None => self.fresh(slot, method, &message, &rest).await?,
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

impl UpstreamClient {
    /// Opens a new connection, writes the request and reads the answer's head.
    async fn fresh(
        &self,
        slot: usize,
        method: &Method,
        message: &[u8],
        rest: &VecDeque<Bytes>,
    ) -> Result<(Conn, BytesMut, codec::Head), ClientError> {
        let origin = self
            .pool
            .origin(slot)
            .ok_or_else(|| ClientError::new(ClientErrorKind::Connect, "no such origin"))?;
        let mut conn = connect::connect(&origin, self.connect_timeout)
            .await
            .map_err(ClientError::connect)?;
        write(&mut conn, message, rest)
            .await
            .map_err(|e| ClientError::receive(e.to_string()))?;
        read_head(conn, method, false).await
    }
}

/// Reads a response head from `conn` (which has just been sent a request).
async fn read_head(
    mut conn: Conn,
    method: &Method,
    reused: bool,
) -> Result<(Conn, BytesMut, codec::Head), ClientError> {
    let mut buf = BytesMut::with_capacity(body::INITIAL_READ);
    loop {
        match codec::parse_head(&mut buf, method) {
            Ok(Some(head)) => return Ok((conn, buf, head)),
            Ok(None) => {}
            Err(e) => return Err(ClientError::protocol(e.0)),
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(body::INITIAL_READ);
        }
        match conn.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => {
                return Err(ClientError::new(
                    ClientErrorKind::ClosedBeforeAnswer { reused },
                    "the upstream closed the connection before answering",
                ))
            }
            Ok(0) => {
                return Err(ClientError::receive(
                    "the upstream closed the connection in the middle of the response head",
                ))
            }
            Ok(_) => {}
            Err(e) if buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(ClientError::new(
                    ClientErrorKind::ClosedBeforeAnswer { reused },
                    format!("the upstream reset the connection before answering: {e}"),
                ))
            }
            Err(e) => return Err(ClientError::receive(e.to_string())),
        }
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
