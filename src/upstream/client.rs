//! The pooled outbound HTTP client: hyper-util's client over rustls, HTTP/2
//! when the upstream offers it by ALPN, HTTP/1.1 otherwise.
//!
//! `TCP_NODELAY` is set: without it a request written in two segments can
//! wait ~40 ms for a delayed ACK (a trap other gateways fell into).

use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::forward::body::RequestBody;

/// Idle pooled connections are closed after this long; shorter than the
/// usual 120 s server keep-alive so we rarely reuse a connection the server
/// is about to close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per host: enough for bursts of concurrent streams.
const POOL_MAX_IDLE_PER_HOST: usize = 256;

/// One pooled client. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Client<HttpsConnector<HttpConnector>, RequestBody>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClient")
    }
}

impl UpstreamClient {
    /// A client whose connections time out after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> UpstreamClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        UpstreamClient { inner }
    }

    /// Sends one request.
    pub fn request(&self, request: http::Request<RequestBody>) -> ResponseFuture {
        self.inner.request(request)
    }
}
