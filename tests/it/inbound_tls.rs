//! Inbound TLS (`server.tls`): clients reach the router over HTTPS with a
//! private CA, HTTP/2 or HTTP/1.1 by ALPN; a renewed certificate is picked
//! up without a restart; a client that does not speak TLS is turned away.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;
use crate::support::pki::{make_pki, Pki};
use crate::support::{init_tracing, Router};

const CHAT: &str = r#"{"model":"demo","messages":[{"role":"user","content":"over tls"}]}"#;

fn config(pki: &Pki) -> String {
    format!(
        "server:\n  tls:\n    cert: {}\n    key: {}\nupstreams:\n  local: {{ provider: mock }}\nmodels:\n  demo:\n    targets: [local]\n",
        pki.dir.join("server.pem").display(),
        pki.dir.join("server.key").display()
    )
}

fn connector(pki: &Pki, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.ca()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    router: &Router,
    pki: &Pki,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(router.base.trim_start_matches("http://"))
        .await
        .unwrap();
    connector(pki, alpn)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the router")
}

fn chat_request() -> Request<Full<Bytes>> {
    Request::post("https://localhost/v1/chat/completions")
        .header("content-type", "application/json")
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(CHAT.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn clients_get_http2_or_http1_by_alpn_over_tls() {
    init_tracing();
    let pki = make_pki("inbound-alpn");
    let router = Router::start(&config(&pki)).await;

    let tls = tls_connect(&router, &pki, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let reply = h2.send_request(chat_request()).await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.version(), hyper::Version::HTTP_2);
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("over tls"),
        "{body:?}"
    );

    let tls = tls_connect(&router, &pki, &[b"http/1.1"]).await;
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let reply = h1.send_request(chat_request()).await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.version(), hyper::Version::HTTP_11);
}

#[tokio::test]
async fn a_plain_http_client_on_the_tls_port_is_turned_away() {
    init_tracing();
    let pki = make_pki("inbound-plain");
    let router = Router::start(&config(&pki)).await;
    let mut plain = TcpStream::connect(router.base.trim_start_matches("http://"))
        .await
        .unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(!out.starts_with(b"HTTP/1.1 200"), "no plain-text answer");
    // TLS clients are still served.
    let tls = tls_connect(&router, &pki, &[b"http/1.1"]).await;
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(h1.send_request(chat_request()).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    init_tracing();
    let pki = make_pki("inbound-renew");
    let router = Router::start(&config(&pki)).await;
    let served = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    let first = served(&tls_connect(&router, &pki, &[b"http/1.1"]).await);

    // A new certificate from the same CA, written over the old files.
    let again = support::pki::reissue(&pki);
    std::fs::rename(again.join("server.pem"), pki.dir.join("server.pem")).unwrap();
    std::fs::rename(again.join("server.key"), pki.dir.join("server.key")).unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    loop {
        let now = served(&tls_connect(&router, &pki, &[b"http/1.1"]).await);
        if now != first {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still the old certificate 12 s after the files changed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
