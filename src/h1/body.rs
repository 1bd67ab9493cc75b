//! The body of an upstream response, read straight from its connection.
//!
//! Each poll decodes everything already in the read buffer and otherwise
//! reads once from the socket, so whatever arrived together leaves
//! together. At the end of a keep-alive response the connection goes back
//! to the pool; dropping the body early closes it (which is how the
//! upstream learns that the client left).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use super::codec::Framing;
use super::connect::Conn;
use super::pool::Pool;
use super::ClientError;

/// First read buffer of a response.
pub const INITIAL_READ: usize = 8 * 1024;
/// Largest read buffer (grown while reads fill it).
const MAX_READ: usize = 256 * 1024;

/// A response body from an upstream.
pub struct UpstreamBody {
    /// Closes the connection at a deadline even if nobody polls the body.
    /// First, so it is dropped (and disarmed) before `conn` closes.
    deadline: Option<Deadline>,
    /// `None` once the body ended (the connection was pooled or closed).
    conn: Option<Conn>,
    buf: BytesMut,
    framing: Framing,
    keep_alive: bool,
    pool: Arc<Pool>,
    slot: usize,
    read_size: usize,
}

/// Shuts the connection down at a deadline from a task of its own: a body
/// is only read while the client takes data, so a client that stopped
/// reading (an h2 stream with no window) would otherwise keep the upstream
/// request open forever. The task knows the socket's descriptor only
/// through a slot that [`Drop`] empties under the lock before the body
/// closes or pools the connection, so it can shut down only this body's
/// live socket, never a reused descriptor or a pooled connection.
#[cfg(unix)]
struct Deadline {
    socket: Arc<std::sync::Mutex<Option<std::os::fd::RawFd>>>,
    task: tokio::task::JoinHandle<()>,
}

#[cfg(not(unix))]
struct Deadline;

#[cfg(not(unix))]
impl Deadline {
    fn start(_: &Conn, _: tokio::time::Instant) -> Option<Deadline> {
        None
    }
}

#[cfg(unix)]
impl Deadline {
    fn start(conn: &Conn, at: tokio::time::Instant) -> Option<Deadline> {
        use std::os::fd::AsRawFd;
        let socket = Arc::new(std::sync::Mutex::new(Some(conn.tcp().as_raw_fd())));
        let armed = Arc::clone(&socket);
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            if let Ok(mut socket) = armed.lock() {
                if let Some(fd) = socket.take() {
                    // SAFETY: the slot is emptied (under this lock) before the
                    // body lets go of the connection, so `fd` is still its
                    // open socket; shutdown does not close the descriptor.
                    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                    tracing::debug!("upstream connection closed at its total deadline; the client was not reading");
                }
            }
        });
        Some(Deadline { socket, task })
    }
}

#[cfg(unix)]
impl Drop for Deadline {
    fn drop(&mut self) {
        if let Ok(mut socket) = self.socket.lock() {
            socket.take();
        }
        self.task.abort();
    }
}

impl UpstreamBody {
    pub(super) fn new(
        conn: Conn,
        buf: BytesMut,
        framing: Framing,
        keep_alive: bool,
        pool: Arc<Pool>,
        slot: usize,
    ) -> UpstreamBody {
        let mut body = UpstreamBody {
            deadline: None,
            conn: Some(conn),
            buf,
            framing,
            keep_alive,
            pool,
            slot,
            read_size: INITIAL_READ,
        };
        if body.framing.is_done() {
            body.release();
        }
        body
    }

    /// Closes the connection at `at` whether or not the body is being read
    /// (see `Deadline`). No-op once the body has ended.
    pub fn close_at(&mut self, at: tokio::time::Instant) {
        if let Some(conn) = &self.conn {
            self.deadline = Deadline::start(conn, at);
        }
    }

    /// The body ended: pool the connection if it can carry another request.
    fn release(&mut self) {
        // First, so the deadline task can no longer reach the connection.
        self.deadline = None;
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && self.buf.is_empty() {
                self.pool.checkin(self.slot, conn);
            }
        }
    }

    /// Closes the connection; the deadline task first loses its way to it.
    fn close(&mut self) {
        self.deadline = None;
        self.conn = None;
    }

    fn fail(&mut self, err: ClientError) -> Poll<Option<Result<Frame<Bytes>, ClientError>>> {
        self.close();
        Poll::Ready(Some(Err(err)))
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = ClientError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientError>>> {
        let this = self.get_mut();
        loop {
            if this.conn.is_none() {
                return Poll::Ready(None);
            }
            let data = match this.framing.decode(&mut this.buf) {
                Ok(data) => data,
                Err(e) => return this.fail(ClientError::protocol(e.0)),
            };
            if this.framing.is_done() {
                this.release();
            }
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let spare = this.buf.capacity() - this.buf.len();
            if spare < 1024 {
                this.buf.reserve(this.read_size);
            }
            let spare = this.buf.capacity() - this.buf.len();
            match tokio_util::io::poll_read_buf(Pin::new(conn), cx, &mut this.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    if this.framing == Framing::Eof {
                        this.close();
                        return Poll::Ready(None);
                    }
                    return this.fail(ClientError::receive(
                        "the upstream closed the connection before the body was complete",
                    ));
                }
                Poll::Ready(Ok(n)) => {
                    if n == spare {
                        this.read_size = (this.read_size * 2).min(MAX_READ);
                    }
                }
                Poll::Ready(Err(e)) => return this.fail(ClientError::receive(e.to_string())),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.remaining() {
            _ if self.conn.is_none() => SizeHint::with_exact(0),
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
