//! The accept loop: HTTP/1.1 and h2c on one port, at most
//! `server.max_connections` at once, `TCP_NODELAY` on every accepted
//! socket, per-connection deadlines ([`super::guard`]), graceful drain on
//! shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use super::guard::{Activity, Guarded, Proto, Tracked};
use super::tls::Tls;
use crate::config::ConnectionLimits;
use crate::gateway;
use crate::gateway::AppState;
use crate::telemetry::metrics::ConnectionMetrics;

/// The first wait after an accept error (e.g. out of file descriptors);
/// doubled on each error in a row, up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this long about accept errors or the
/// connection limit; the lines say how many they stand for.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Per stream, what an h2 connection buffers for a client that does not
/// read: with [`ConnectionLimits::http2_max_streams`] streams, the bound per
/// connection (128 × 16 KiB = 2 MiB by default). hyper's default is 400 KiB.
const H2_SEND_BUFFER: usize = 16 << 10;
/// Flow-control windows Switchyard grants clients for request bodies.
const H2_STREAM_WINDOW: u32 = 256 << 10;
const H2_CONNECTION_WINDOW: u32 = 1 << 20;
/// The HTTP/2 connection preface a prior-knowledge (h2c) client starts with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A log line that repeats at most once per [`LOG_EVERY`].
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn new() -> Self {
        Throttled {
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line is due: it stands for `n` events.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed) + 1)
    }
}

/// What to listen with.
pub(super) struct Listener {
    pub(super) listener: TcpListener,
    pub(super) limits: ConnectionLimits,
    pub(super) max_connections: usize,
    /// Inbound TLS, when `server.tls` is set.
    pub(super) tls: Option<Arc<Tls>>,
}

/// Serves until `stop` turns true, then drains for at most `grace`.
pub(super) async fn serve(
    listener: Listener,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let Listener {
        listener,
        limits,
        max_connections,
        tls,
    } = listener;
    let limits = Arc::new(limits);
    let metrics = state.registry.metrics().connections.clone();
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut accept_errors = Throttled::new();
    let mut at_limit = Throttled::new();
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics.at_limit.inc();
                if let Some(n) = at_limit.due() {
                    tracing::warn!(
                        max_connections,
                        times = n,
                        "connection limit reached (server.max_connections): new connections wait in the listen backlog until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    _ = stop.changed() => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    stream
                }
                Err(err) => {
                    if let Some(n) = accept_errors.due() {
                        tracing::warn!(error = %err, times = n, "accept failed; backing off");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // Without it, a response written as headers + body can wait
        // ~40 ms for a delayed ACK on a keep-alive connection.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let limits = limits.clone();
        let metrics = metrics.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let draining = stop.clone();
        tokio::spawn(async move {
            metrics.open.inc();
            let conn = Conn {
                state,
                limits,
                metrics: metrics.clone(),
                watcher,
                draining,
            };
            serve_connection(stream, tls, conn).await;
            metrics.open.dec();
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(
        "shutting down: no new connections; waiting up to {}s for requests in flight",
        grace.as_secs()
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing the remaining connections"),
    }
}

/// What serving one connection needs.
struct Conn {
    state: Arc<AppState>,
    limits: Arc<ConnectionLimits>,
    metrics: Arc<ConnectionMetrics>,
    watcher: Watcher,
    /// Turns true when the server starts draining.
    draining: watch::Receiver<bool>,
}

/// Serves one accepted connection until it ends.
async fn serve_connection(stream: TcpStream, tls: Option<Arc<Tls>>, conn: Conn) {
    // Until its first request, a connection holds nothing a drain must wait for.
    let mut draining = conn.draining.clone();
    let opened = tokio::select! {
        _ = async move { drop(draining.wait_for(|stop| *stop).await) } => return,
        opened = open(stream, tls, &conn.limits, &conn.metrics) => opened,
    };
    match opened {
        Some(Opened::Plain(stream, proto)) => serve_http(stream, proto, conn).await,
        Some(Opened::Tls(stream)) => {
            let proto = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => Proto::Http2,
                _ => Proto::Http1,
            };
            serve_http(*stream, proto, conn).await
        }
        None => {}
    }
}

/// A connection ready for HTTP.
enum Opened {
    Plain(TcpStream, Proto),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Detects the protocol, or completes the TLS handshake, within the head's
/// deadline; `None` when the connection closed or timed out first.
async fn open(
    stream: TcpStream,
    tls: Option<Arc<Tls>>,
    limits: &ConnectionLimits,
    metrics: &ConnectionMetrics,
) -> Option<Opened> {
    let deadline = Instant::now() + limits.header_timeout;
    let Some(tls) = tls else {
        return match detect(&stream, deadline).await {
            Detected::Proto(proto) => Some(Opened::Plain(stream, proto)),
            Detected::Closed => None,
            Detected::TimedOut => {
                metrics.closed_header_timeout.inc();
                None
            }
        };
    };
    match tokio::time::timeout_at(deadline, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(Opened::Tls(Box::new(stream))),
        Ok(Err(err)) => {
            metrics.closed_tls_handshake.inc();
            tracing::debug!(error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            metrics.closed_header_timeout.inc();
            None
        }
    }
}

/// Serves HTTP on a connection whose protocol is known.
async fn serve_http<S>(stream: S, proto: Proto, conn: Conn)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Conn {
        state,
        limits,
        metrics,
        watcher,
        mut draining,
    } = conn;
    let activity = Activity::new();
    let counting = activity.clone();
    let service = service_fn(move |request| {
        let in_flight = counting.begin();
        let state = state.clone();
        async move {
            let response = gateway::handle(state, request).await?;
            Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
        }
    });
    let io = TokioIo::new(Guarded::new(
        stream,
        proto,
        activity.clone(),
        limits.clone(),
        metrics,
    ));
    let served = async {
        match proto {
            Proto::Http1 => {
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    // Guarded keeps the head deadline (hyper's would also
                    // close idle keep-alive connections at the same time).
                    .header_read_timeout(None)
                    .serve_connection(io, service);
                watcher.watch(connection).await
            }
            Proto::Http2 => {
                let connection = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(limits.http2_max_streams)
                    .max_send_buf_size(H2_SEND_BUFFER)
                    .initial_stream_window_size(H2_STREAM_WINDOW)
                    .initial_connection_window_size(H2_CONNECTION_WINDOW)
                    .serve_connection(io, service);
                watcher.watch(connection).await
            }
        }
    };
    tokio::pin!(served);
    let result = tokio::select! {
        result = &mut served => result,
        _ = async { drop(draining.wait_for(|stop| *stop).await) } => {
            // A connection between requests (or mid-head) closes now; one
            // with a request in flight finishes it first.
            activity.drain();
            served.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

enum Detected {
    Proto(Proto),
    /// The client closed before sending anything.
    Closed,
    /// Nothing decisive arrived before the deadline.
    TimedOut,
}

/// HTTP/1.1 or h2c (prior knowledge), from the first bytes, without
/// consuming them. A connection that sends nothing by `deadline` is closed.
async fn detect(stream: &TcpStream, deadline: Instant) -> Detected {
    let mut seen = [0u8; 24];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut seen)).await {
            Err(_) => return Detected::TimedOut,
            Ok(Err(_)) | Ok(Ok(0)) => return Detected::Closed,
            Ok(Ok(n)) => n,
        };
        if seen[..n] != H2_PREFACE[..n] {
            return Detected::Proto(Proto::Http1);
        }
        if n == H2_PREFACE.len() {
            return Detected::Proto(Proto::Http2);
        }
        // A part of the preface: the rest is on its way. (Peeking again at
        // once would find the same bytes.)
        if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(5)))
            .await
            .is_err()
        {
            return Detected::TimedOut;
        }
    }
}
