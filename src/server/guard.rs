//! Per-connection deadlines, kept by the socket wrapper itself.
//!
//! hyper times out nothing while it works out whether a connection speaks
//! HTTP/1.1 or h2, never closes an idle h2 connection, and has no send
//! timeout; a client that connects and says nothing would hold its socket
//! forever. [`Guarded`] wraps the accepted socket and enforces, like nginx's
//! `client_header_timeout`, `keepalive_timeout` and `send_timeout`:
//!
//! - **header**: a request head must be complete `header_timeout` after the
//!   connection opened or after its first byte arrived on a kept-alive
//!   HTTP/1.1 connection; a late HTTP/1.1 head gets `408 Request Timeout`;
//! - **keep-alive**: a connection with no request in flight closes after
//!   `keepalive_timeout` without a new request;
//! - **send**: a write the client does not accept for `send_timeout` ends
//!   the connection (a client that stopped reading).
//!
//! Requests in flight are counted by [`Activity`]: [`Activity::begin`] when
//! hyper hands over a request head, and the returned [`InFlight`] is dropped
//! with the response body. While any is in flight no read deadline applies;
//! request bodies have their own `body_timeout` in the gateway.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::ConnectionLimits;
use crate::telemetry::metrics::ConnectionMetrics;

/// The protocol a connection speaks (chosen before serving it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proto {
    Http1,
    Http2,
}

/// Requests in flight on one connection, and when it last became idle.
pub(super) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Requests begun so far.
    begun: AtomicU64,
    /// Milliseconds after `opened` when `in_flight` last fell to zero, + 1
    /// (0: never): a new value starts a new idle period.
    idle_since: AtomicU64,
    /// The connection's reader, parked: woken when the last request in
    /// flight ends (the keep-alive deadline starts) or the server drains.
    reader: Mutex<Option<Waker>>,
    /// The server is shutting down: an idle connection closes at once.
    draining: std::sync::atomic::AtomicBool,
}

impl Activity {
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            reader: Mutex::new(None),
            draining: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The server is shutting down: close the connection as soon as no
    /// request is in flight (a half-sent head does not hold the drain).
    pub(super) fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.wake_reader();
    }

    fn wake_reader(&self) {
        if let Some(reader) = self.reader.lock().ok().and_then(|mut r| r.take()) {
            reader.wake();
        }
    }

    /// A request head arrived; the request is in flight until the returned
    /// guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.begun.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// One request in flight; dropping it ends the request (see [`Activity`]).
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ms = activity.opened.elapsed().as_millis() as u64;
            activity.idle_since.store(ms + 1, Ordering::Release);
            activity.wake_reader();
        }
    }
}

/// A response body that keeps its request counted as in flight until it
/// is finished or dropped.
pub(super) struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub(super) fn new(body: B, in_flight: InFlight) -> Self {
        Tracked {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The answer written to an HTTP/1.1 client whose request head did not
/// arrive in time (then the connection closes).
const REQUEST_TIMEOUT: &[u8] = concat!(
    "HTTP/1.1 408 Request Timeout\r\n",
    "content-type: application/json\r\n",
    "connection: close\r\n",
    "content-length: 194\r\n",
    "\r\n",
    r#"{"error":{"message":"The request head did not arrive in time (server.header_timeout). Send the whole request head at once.","type":"invalid_request_error","param":null,"code":"request_timeout"}}"#,
)
.as_bytes();

/// Which deadline a connection is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The first request's head, or a head that has begun to arrive.
    Head,
    /// A new request on an idle connection.
    KeepAlive,
    /// Nothing: the server is shutting down.
    Drain,
}

/// The accepted socket, with the deadlines of the module doc.
pub(super) struct Guarded<S> {
    inner: S,
    proto: Proto,
    activity: Arc<Activity>,
    limits: Arc<ConnectionLimits>,
    metrics: Arc<ConnectionMetrics>,
    /// The idle period (`Activity::idle_since`) last seen by a read.
    idle_period: u64,
    /// HTTP/1.1: when the first byte of a head arrived in this idle period.
    head_started: Option<Instant>,
    read_timer: Option<Pin<Box<Sleep>>>,
    /// When the current blocked write started waiting.
    write_blocked: Option<Instant>,
    write_timer: Option<Pin<Box<Sleep>>>,
    /// The 408 was tried (or the deadline passed): reads end.
    expired: bool,
}

impl<S> Guarded<S> {
    pub(super) fn new(
        inner: S,
        proto: Proto,
        activity: Arc<Activity>,
        limits: Arc<ConnectionLimits>,
        metrics: Arc<ConnectionMetrics>,
    ) -> Self {
        Guarded {
            inner,
            proto,
            activity,
            limits,
            metrics,
            idle_period: 0,
            head_started: None,
            read_timer: None,
            write_blocked: None,
            write_timer: None,
            expired: false,
        }
    }

    /// The read deadline now in force, if any, and what it waits for.
    fn read_deadline(&mut self) -> Option<(Instant, Wait)> {
        let activity = &self.activity;
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if activity.draining.load(Ordering::Acquire) {
            return Some((Instant::now(), Wait::Drain));
        }
        let period = activity.idle_since.load(Ordering::Acquire);
        if period != self.idle_period {
            self.idle_period = period;
            self.head_started = None;
        }
        if activity.begun.load(Ordering::Relaxed) == 0 {
            return Some((activity.opened + self.limits.header_timeout, Wait::Head));
        }
        if let Some(started) = self.head_started {
            return Some((started + self.limits.header_timeout, Wait::Head));
        }
        let idle = activity.opened + Duration::from_millis(period.saturating_sub(1));
        Some((idle + self.limits.keepalive_timeout, Wait::KeepAlive))
    }
}

/// Polls a lazily made timer set to `deadline`: ready once it has passed.
fn poll_timer(
    timer: &mut Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> bool {
    match timer {
        Some(sleep) => {
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
        }
        None => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
    }
    timer
        .as_mut()
        .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.expired {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before
                    && self.proto == Proto::Http1
                    && self.head_started.is_none()
                    && self.read_deadline().is_some()
                {
                    // The first bytes of a new head on an idle connection.
                    self.head_started = Some(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let Some((deadline, wait)) = self.read_deadline() else {
                    self.park_reader(cx, true);
                    return Poll::Pending;
                };
                let this = &mut *self;
                if wait != Wait::Drain && !poll_timer(&mut this.read_timer, deadline, cx) {
                    // Also for a drain, which moves the deadline to now.
                    this.park_reader(cx, false);
                    return Poll::Pending;
                }
                this.expired = true;
                let late_head = wait != Wait::Drain
                    && this.proto == Proto::Http1
                    && this.head_started.is_some();
                if late_head {
                    this.metrics.closed_header_timeout.inc();
                    // Best effort: the socket's send buffer is empty while a
                    // head is being read, so this write does not block.
                    let _ = Pin::new(&mut this.inner).poll_write(cx, REQUEST_TIMEOUT);
                    let _ = Pin::new(&mut this.inner).poll_flush(cx);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not received within server.header_timeout",
                    )));
                }
                match wait {
                    Wait::Head => this.metrics.closed_header_timeout.inc(),
                    Wait::KeepAlive => this.metrics.closed_keepalive_timeout.inc(),
                    Wait::Drain => {}
                }
                // End of input: hyper closes an idle connection quietly.
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Guarded<S> {
    /// Leaves the reader's waker for the end of the last request in flight
    /// or a drain (checking again after, in case either came meanwhile).
    /// `in_flight`: parked because requests are in flight (else: idle,
    /// waiting on the read deadline).
    fn park_reader(&mut self, cx: &mut Context<'_>, in_flight: bool) {
        if let Ok(mut reader) = self.activity.reader.lock() {
            match reader.as_ref() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *reader = Some(cx.waker().clone()),
            }
        }
        let idle_now = self.activity.in_flight.load(Ordering::Acquire) == 0;
        let draining = self.activity.draining.load(Ordering::Acquire);
        if idle_now && (in_flight || draining) {
            cx.waker().wake_by_ref();
        }
    }

    /// Tracks a write's readiness against `send_timeout`.
    fn check_write<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => {
                let blocked = *self.write_blocked.get_or_insert_with(Instant::now);
                if poll_timer(
                    &mut self.write_timer,
                    blocked + self.limits.send_timeout,
                    cx,
                ) {
                    self.metrics.closed_send_timeout.inc();
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client accepted no data within server.send_timeout",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.write_blocked = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check_write(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check_write(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check_write(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_408_answer_declares_its_own_length() {
        let text = std::str::from_utf8(REQUEST_TIMEOUT).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.ends_with(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "request_timeout");
    }
}
