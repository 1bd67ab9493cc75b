//! Upstreams over TLS: the client's rustls path end to end, against a real
//! TLS server on loopback whose certificate comes from a private CA that
//! `SSL_CERT_FILE` adds to the bundled roots. The certificates are made by
//! the `openssl` command (installed by `.ci/run`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::pki::{make_pki, trust_test_ca, Pki};
use crate::support::{client, Router};

const ANSWER: &str = r#"{"id":"chatcmpl-tls","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"over TLS"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

const STREAM: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"over\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" TLS\"},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

/// A TLS upstream on 127.0.0.1 with `pki`'s server certificate, answering
/// chat completions (streamed when asked); counts the connections it
/// accepted.
struct TlsUpstream {
    port: u16,
    connections: Arc<AtomicUsize>,
}

/// A rustls server config with `pki`'s server certificate and key.
fn server_config(pki: &Pki) -> rustls::ServerConfig {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.dir.join("server.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(pki.dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap()
}

async fn start_upstream(pki: &Pki) -> TlsUpstream {
    let mut config = server_config(pki);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let stream = body.windows(13).any(|w| w == b"\"stream\":true");
                    let (kind, text) = if stream {
                        ("text/event-stream", STREAM)
                    } else {
                        ("application/json", ANSWER)
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", kind)
                            .body(Full::new(Bytes::from_static(text.as_bytes())))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsUpstream { port, connections }
}

fn config(host: &str, port: u16) -> String {
    format!(
        "upstreams:\n  tls:\n    provider: openai-compatible\n    base_url: https://{host}:{port}/v1\n    \
         health_check: false\nmodels:\n  m:\n    targets: [{{ upstream: tls, model: up }}]\n"
    )
}

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const CHAT_STREAM: &str =
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn answers_and_streams_come_over_tls_on_one_kept_alive_connection() {
    let pki = trust_test_ca();
    let upstream = start_upstream(pki).await;
    for host in ["localhost", "127.0.0.1"] {
        let before = upstream.connections.load(Ordering::SeqCst);
        let router = Router::start(&config(host, upstream.port)).await;
        for _ in 0..3 {
            let reply = client::post_json(&router.url("/v1/chat/completions"), CHAT).await;
            assert_eq!(reply.status, 200, "{host}: {}", reply.text());
            assert_eq!(reply.text(), ANSWER, "{host}");
        }
        let reply = client::post_json(&router.url("/v1/chat/completions"), CHAT_STREAM).await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text());
        assert_eq!(
            reply.text(),
            STREAM,
            "{host}: the stream arrives byte for byte"
        );
        assert_eq!(
            upstream.connections.load(Ordering::SeqCst) - before,
            1,
            "{host}: four sequential requests share one TLS connection"
        );
    }
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_a_502_that_names_ssl_cert_file() {
    trust_test_ca();
    let other = make_pki("untrusted");
    let upstream = start_upstream(&other).await;
    let router = Router::start(&config("localhost", upstream.port)).await;
    let reply = client::post_json(&router.url("/v1/chat/completions"), CHAT).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("TLS handshake failed"), "{message}");
    assert!(message.contains("SSL_CERT_FILE"), "{message}");
}

/// A TLS upstream that answers one request per connection and then sends
/// a TLS close_notify in the same flight, keeping the TCP connection open
/// (and never answering on it again): rustls takes the alert off the socket
/// with the answer, so only rustls knows the session is over.
async fn start_closing_upstream(pki: &Pki) -> TlsUpstream {
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;
    let config = server_config(pki);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let complete = |request: &[u8]| {
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return false;
                    };
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    request.len() >= end + 4 + length
                };
                while !complete(&request) {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
                    ANSWER.len()
                );
                // One flight: the answer, then the alert, queued in the
                // session and written together.
                {
                    use std::io::Write;
                    let session = tls.get_mut().1;
                    session.writer().write_all(answer.as_bytes()).unwrap();
                    session.send_close_notify();
                }
                let _ = tls.flush().await;
                // A request written into the closed session arrives here
                // (TLS lets a closed sender still receive): counted.
                let late =
                    tokio::time::timeout(std::time::Duration::from_secs(5), tls.read(&mut buf))
                        .await;
                if matches!(late, Ok(Ok(n)) if n > 0) {
                    counter.fetch_add(1000, Ordering::SeqCst);
                }
            });
        }
    });
    TlsUpstream { port, connections }
}

#[tokio::test]
async fn a_tls_session_the_upstream_closed_is_not_reused_even_with_the_socket_open() {
    let pki = trust_test_ca();
    let upstream = start_closing_upstream(pki).await;
    let router = Router::start(&config("localhost", upstream.port).replace(
        "    health_check: false\n",
        "    health_check: false\n    timeouts: { first_byte: 2s }\n",
    ))
    .await;
    for i in 0..3 {
        let reply = client::post_json(&router.url("/v1/chat/completions"), CHAT).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
        assert_eq!(reply.header("x-switchyard-attempts").as_deref(), Some("1"));
    }
    // (+1000 for each request written into a session the upstream had closed.)
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        3,
        "one TLS session each, none reused after its close_notify"
    );
}
