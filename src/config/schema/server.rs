//! `server:` — where and how Switchyard listens.

use std::net::SocketAddr;
use std::time::Duration;

use serde_yaml::Value;

use crate::config::keypath::KeyPath;
use crate::config::walk::Walk;
use crate::secret::Secret;

/// Where Switchyard listens unless `server.listen` or `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8000";

/// Largest request body accepted. Chat requests with a few base64 images run
/// to single-digit MiB; 16 MiB leaves room while bounding memory per request.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 << 20;

/// How long shutdown waits for in-flight requests (streams can be long; the
/// usual Kubernetes grace period is 30 s).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Browser origins allowed by default: a React dev server and Streamlit, on
/// both spellings of loopback.
pub const DEFAULT_CORS_ORIGINS: [&str; 4] = [
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:8501",
    "http://127.0.0.1:8501",
];

/// How long a client has to send a request head (`server.header_timeout`).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest silence while a request body arrives (`server.body_timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle client connection stays open (`server.keepalive_timeout`).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);

/// Longest wait for a client to accept written data (`server.send_timeout`).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Concurrent HTTP/2 streams per connection (`server.http2_max_streams`).
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 128;

/// Most `server.max_connections` defaults to, whatever the file limit.
pub const DEFAULT_MAX_CONNECTIONS_CAP: u32 = 10_000;

/// What the listener allows each client connection (applies at start only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `server.max_connections`; `None`: half the open-file limit, at most
    /// [`DEFAULT_MAX_CONNECTIONS_CAP`].
    pub max_connections: Option<u32>,
    /// `server.header_timeout`
    pub header_timeout: Duration,
    /// `server.keepalive_timeout`
    pub keepalive_timeout: Duration,
    /// `server.send_timeout`
    pub send_timeout: Duration,
    /// `server.http2_max_streams`
    pub http2_max_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
        }
    }
}

/// `server.tls`: PEM files for inbound HTTPS (applies at start; the files
/// themselves are re-read when they change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `server.tls.cert`: the certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// `server.tls.key`: its private key.
    pub key: std::path::PathBuf,
}

/// `server:` — the listener and request limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `server.listen`
    pub listen: SocketAddr,
    /// `server.max_body_bytes`
    pub max_body_bytes: u64,
    /// `server.auth.keys`; empty means open.
    pub auth_keys: Vec<Secret>,
    /// `server.cors.allow_origins`; `*` allows any; empty disables CORS.
    pub cors_origins: Vec<String>,
    /// `server.shutdown_grace`
    pub shutdown_grace: Duration,
    /// `server.body_timeout`
    pub body_timeout: Duration,
    /// Per-connection limits.
    pub connections: ConnectionLimits,
    /// `server.tls`
    pub tls: Option<TlsFiles>,
}

const SERVER_KEYS: &[&str] = &[
    "listen",
    "max_body_bytes",
    "auth",
    "cors",
    "shutdown_grace",
    "max_connections",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
    "send_timeout",
    "http2_max_streams",
    "tls",
];

pub(super) fn read_server(walk: &mut Walk<'_>, node: Option<(&Value, KeyPath)>) -> ServerConfig {
    let mut server = ServerConfig {
        listen: DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses"),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        auth_keys: Vec::new(),
        cors_origins: DEFAULT_CORS_ORIGINS.iter().map(|s| s.to_string()).collect(),
        shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        body_timeout: DEFAULT_BODY_TIMEOUT,
        connections: ConnectionLimits::default(),
        tls: None,
    };
    let Some((value, path)) = node else {
        return server;
    };
    let Some(fields) = walk.fields(value, &path, SERVER_KEYS) else {
        return server;
    };
    if let Some((v, p)) = fields.get("listen") {
        if let Some(text) = walk.strict_text(v, &p) {
            match text.parse() {
                Ok(addr) => server.listen = addr,
                Err(_) => walk.error(
                    &p,
                    format!("{text:?} is not an address (write e.g. 0.0.0.0:8000)"),
                ),
            }
        }
    }
    if let Some((v, p)) = fields.get("max_body_bytes") {
        if let Some(n) = walk.bytes(v, &p) {
            if n < 1024 {
                walk.error(&p, "must be at least 1KiB");
            } else {
                server.max_body_bytes = n;
            }
        }
    }
    if let Some((v, p)) = fields.get("shutdown_grace") {
        if let Some(d) = walk.duration(v, &p) {
            server.shutdown_grace = d;
        }
    }
    if let Some((v, p)) = fields.get("max_connections") {
        if let Some(n) = walk.number(v, &p, 1..=1_000_000) {
            server.connections.max_connections = Some(n as u32);
        }
    }
    if let Some((v, p)) = fields.get("tls") {
        if let Some(tls) = walk.fields(v, &p, &["cert", "key"]) {
            let mut file = |key: &str| match tls.get(key) {
                Some((v, p)) => walk.strict_text(v, &p).filter(|path| {
                    let empty = path.trim().is_empty();
                    if empty {
                        walk.error(&p, "is empty: write the path of a PEM file");
                    }
                    !empty
                }),
                None => {
                    walk.error(
                        &p.key(key),
                        format!("missing: server.tls needs `{key}` (a PEM file)"),
                    );
                    None
                }
            };
            if let (Some(cert), Some(key)) = (file("cert"), file("key")) {
                server.tls = Some(TlsFiles {
                    cert: cert.into(),
                    key: key.into(),
                });
            }
        }
    }
    if let Some((v, p)) = fields.get("http2_max_streams") {
        if let Some(n) = walk.number(v, &p, 1..=10_000) {
            server.connections.http2_max_streams = n as u32;
        }
    }
    let limits = &mut server.connections;
    for (key, slot) in [
        ("header_timeout", &mut limits.header_timeout),
        ("keepalive_timeout", &mut limits.keepalive_timeout),
        ("send_timeout", &mut limits.send_timeout),
        ("body_timeout", &mut server.body_timeout),
    ] {
        if let Some((v, p)) = fields.get(key) {
            if let Some(d) = walk.duration_at_least(v, &p, Duration::from_millis(100)) {
                *slot = d;
            }
        }
    }
    if let Some((v, p)) = fields.get("auth") {
        if let Some(auth) = walk.fields(v, &p, &["keys"]) {
            if let Some((v, p)) = auth.get("keys") {
                for (key, p) in walk.strings(v, &p) {
                    if key.trim().is_empty() {
                        walk.error(&p, "router key is empty");
                    } else {
                        server.auth_keys.push(Secret::new(key));
                    }
                }
            }
        }
    }
    if let Some((v, p)) = fields.get("cors") {
        if let Some(cors) = walk.fields(v, &p, &["allow_origins"]) {
            if let Some((v, p)) = cors.get("allow_origins") {
                server.cors_origins = walk
                    .strings(v, &p)
                    .into_iter()
                    .map(|(origin, _)| origin.trim_end_matches('/').to_owned())
                    .collect();
            } else {
                server.cors_origins.clear();
            }
        }
    }
    server
}
