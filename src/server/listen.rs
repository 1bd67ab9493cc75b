//! The accept loop: HTTP/1.1 and h2c on one port, `TCP_NODELAY` on every
//! accepted socket, graceful drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway;
use crate::state::AppState;

/// After an accept error (e.g. out of file descriptors) wait this long
/// before trying again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves until `stop` turns true, then drains for at most `grace`.
pub(super) async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                // Without it, a response written as headers + body can wait
                // ~40 ms for a delayed ACK on a keep-alive connection.
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = service_fn(move |request| gateway::handle(state.clone(), request));
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                });
            }
            _ = stop.changed() => break,
        }
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
