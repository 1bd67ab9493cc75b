//! Opening upstream connections: DNS, TCP (with `TCP_NODELAY`), and TLS by
//! rustls with the bundled web PKI roots, offering only HTTP/1.1 by ALPN.
//! `SSL_CERT_FILE` (a PEM file, the OpenSSL convention) adds roots, for
//! upstreams behind a private CA.
//!
//! `TCP_NODELAY` is set: without it a request written in two segments can
//! wait ~40 ms for a delayed ACK (a trap other gateways fell into).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Where connections go: scheme, host and port of an upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `https`.
    pub tls: bool,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port, the scheme's default when the URL has none.
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http`/`https` URI.
    pub fn of(uri: &http::Uri) -> Option<Origin> {
        origin_parts(uri).map(|(tls, host, port)| Origin {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

fn origin_parts(uri: &http::Uri) -> Option<(bool, &str, u16)> {
    let tls = match uri.scheme_str()? {
        "http" => false,
        "https" => true,
        _ => return None,
    };
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Some((tls, host, port))
}

/// An open connection to an upstream.
pub enum Conn {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// The TCP socket under the connection.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Tcp(tcp) => tcp,
            Conn::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Whether an idle connection still looks usable: the peer has not
    /// closed it and sent nothing unasked. Costs no system call while the
    /// socket has no pending readiness. Over TLS, what rustls has already
    /// taken off the socket counts too: buffered records (unasked data, or
    /// a close_notify) are invisible to a probe of the raw socket.
    pub fn is_reusable(&mut self) -> bool {
        if let Conn::Tls(tls) = self {
            let (_, session) = tls.get_mut();
            match session.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {}
                _ => return false,
            }
        }
        let tcp = self.tcp();
        let mut probe = [0u8; 1];
        matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Tcp(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The TLS settings every upstream connection shares.
fn tls_connector() -> TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
            let shown = std::path::Path::new(&path).display().to_string();
            match add_roots(&mut roots, &path) {
                Ok(n) => tracing::info!(
                    "trusting {n} certificate(s) from SSL_CERT_FILE={shown} besides the bundled web PKI roots"
                ),
                Err(e) => tracing::warn!(
                    "SSL_CERT_FILE={shown}: {e}; upstream TLS uses the bundled web PKI roots only"
                ),
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                // The ring provider supports the default versions; this
                // branch exists only so a future rustls cannot panic here.
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    });
    TlsConnector::from(Arc::clone(config))
}

/// Adds every certificate of the PEM file at `path` to `roots`.
fn add_roots(roots: &mut rustls::RootCertStore, path: &std::ffi::OsStr) -> Result<usize, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate file: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a certificate in it is not usable as a root: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err("it holds no PEM certificate".into());
    }
    Ok(added)
}

/// Opens a connection to `origin` within `timeout` (DNS, TCP and TLS).
pub async fn connect(origin: &Origin, timeout: Duration) -> io::Result<Conn> {
    match tokio::time::timeout(timeout, open(origin)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "connection timed out after {} (`timeouts.connect`)",
                crate::units::format_duration(timeout)
            ),
        )),
    }
}

async fn open(origin: &Origin) -> io::Result<Conn> {
    let tcp = tcp(origin).await?;
    if !origin.tls {
        return Ok(Conn::Tcp(tcp));
    }
    let name = ServerName::try_from(origin.host.clone()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a valid TLS server name", origin.host),
        )
    })?;
    let tls = tls_connector().connect(name, tcp).await.map_err(|e| {
        let hint = if e.to_string().contains("UnknownIssuer") {
            " (the certificate is not signed by a bundled web PKI root: for a private CA, \
                 set SSL_CERT_FILE to its PEM file)"
        } else {
            ""
        };
        io::Error::new(e.kind(), format!("TLS handshake failed: {e}{hint}"))
    })?;
    Ok(Conn::Tls(Box::new(tls)))
}

/// Connects to the first address of `origin` that accepts.
async fn tcp(origin: &Origin) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match origin.host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, origin.port)],
        Err(_) => tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot resolve `{}`: {e}", origin.host))
            })?
            .collect(),
    };
    happy_eyeballs(interleave(addrs), &origin.host).await
}

/// How long an attempt has before the next address is tried beside it
/// (RFC 8305's "Connection Attempt Delay").
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Addresses in resolver order, alternating between IPv6 and IPv4 from the
/// family of the first (RFC 8305 §4).
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut v6, mut v4): (std::collections::VecDeque<_>, std::collections::VecDeque<_>) =
        addrs.into_iter().partition(SocketAddr::is_ipv6);
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let mut six = first_v6;
    loop {
        let next = if six {
            v6.pop_front().or_else(|| v4.pop_front())
        } else {
            v4.pop_front().or_else(|| v6.pop_front())
        };
        let Some(addr) = next else { return out };
        out.push(addr);
        six = !six;
    }
}

/// Connects to the first of `addrs` that answers: a new attempt starts
/// every [`ATTEMPT_DELAY`] (or at once when one fails) while earlier ones
/// go on, so one black-holed address does not use the whole connect
/// timeout. The losers are dropped (closed) when one wins.
async fn happy_eyeballs(addrs: Vec<SocketAddr>, host: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("`{host}` resolved to no address"),
    );
    let mut attempts = tokio::task::JoinSet::new();
    let mut next = addrs.into_iter().peekable();
    let start = |attempts: &mut tokio::task::JoinSet<io::Result<TcpStream>>, addr: SocketAddr| {
        attempts.spawn(async move {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_keepalive(true)?;
            let stream = socket.connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        });
    };
    loop {
        if attempts.is_empty() {
            match next.next() {
                Some(addr) => start(&mut attempts, addr),
                None => return Err(last),
            }
        }
        let more = next.peek().is_some();
        tokio::select! {
            done = attempts.join_next() => match done {
                Some(Ok(Ok(stream))) => return Ok(stream),
                Some(Ok(Err(err))) => last = err,
                Some(Err(join)) => last = io::Error::other(join.to_string()),
                None => {}
            },
            _ = tokio::time::sleep(ATTEMPT_DELAY), if more => {
                if let Some(addr) = next.next() {
                    start(&mut attempts, addr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn v6(port: u16) -> SocketAddr {
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))
    }

    #[test]
    fn families_alternate_from_the_first_address() {
        assert_eq!(
            interleave(vec![v6(1), v6(2), v6(3), v4(4), v4(5)]),
            [v6(1), v4(4), v6(2), v4(5), v6(3)]
        );
        assert_eq!(interleave(vec![v4(1), v6(2), v4(3)]), [v4(1), v6(2), v4(3)]);
    }

    #[tokio::test]
    async fn a_black_holed_address_does_not_hold_the_connection() {
        // A listener whose backlog is full and never accepted: further SYNs
        // are dropped, so a connect to it hangs.
        let hole = TcpSocket::new_v4().unwrap();
        hole.bind(v4(0)).unwrap();
        let hole = hole.listen(1).unwrap();
        let hole_addr = hole.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            if let Ok(Ok(conn)) =
                tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(hole_addr))
                    .await
            {
                fillers.push(conn);
            }
        }
        let good = tokio::net::TcpListener::bind(v4(0)).await.unwrap();
        let good_addr = good.local_addr().unwrap();

        let started = std::time::Instant::now();
        let stream = tokio::time::timeout(
            Duration::from_secs(3),
            happy_eyeballs(vec![hole_addr, good_addr], "test"),
        )
        .await
        .expect("connected within 3 s")
        .expect("the second address answers");
        assert_eq!(stream.peer_addr().unwrap(), good_addr);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        drop(fillers);
    }

    #[tokio::test]
    async fn a_refused_address_moves_on_at_once_and_all_refused_is_the_last_error() {
        let closed = tokio::net::TcpListener::bind(v4(0)).await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let good = tokio::net::TcpListener::bind(v4(0)).await.unwrap();
        let started = std::time::Instant::now();
        let stream = happy_eyeballs(vec![closed_addr, good.local_addr().unwrap()], "test")
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good.local_addr().unwrap());
        assert!(started.elapsed() < ATTEMPT_DELAY, "{:?}", started.elapsed());
        let err = happy_eyeballs(vec![closed_addr], "test").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
