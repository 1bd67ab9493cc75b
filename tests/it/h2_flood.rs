//! An HTTP/2 client that grants huge flow-control windows, opens many fast
//! streams and never reads a byte: the router must bound what it buffers
//! per connection (`server.http2_max_streams` × a 16 KiB send buffer), so
//! its memory stays flat, and keep serving other clients meanwhile.
//!
//! The router runs as its own process (the `switchyard` binary) so that its
//! resident memory can be read from `/proc` apart from the test's.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK "literal header field without indexing, new name" (lengths < 127).
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// An HPACK block for `POST /v1/chat/completions` (JSON).
fn chat_headers() -> Vec<u8> {
    let mut headers = Vec::new();
    literal(&mut headers, ":method", "POST");
    literal(&mut headers, ":scheme", "http");
    literal(&mut headers, ":path", "/v1/chat/completions");
    literal(&mut headers, ":authority", "127.0.0.1");
    literal(&mut headers, "content-type", "application/json");
    headers
}

/// Opens one h2c connection that asks for `streams` streamed completions
/// and then never reads.
async fn flood(addr: &str, streams: u32) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // SETTINGS: INITIAL_WINDOW_SIZE = 2^31-1; then the connection window too.
    out.extend(frame(4, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]));
    out.extend(frame(8, 0, 0, &(0x7fff_ffffu32 - 65_535).to_be_bytes()));
    let body = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"go"}]}"#;
    for i in 0..streams {
        let id = 2 * i + 1;
        out.extend(frame(1, 0x4, id, &chat_headers())); // HEADERS, END_HEADERS
        out.extend(frame(0, 0x1, id, body)); // DATA, END_STREAM
    }
    conn.write_all(&out).await.expect("send the flood");
    conn
}

/// The `switchyard` binary on a free loopback port, routing model `m` to
/// `mock`; its address and the directory of its config.
async fn start_router(mock: &MockUpstream, tag: &str) -> (Process, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("switchyard-h2-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("router.yaml");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        "server:\n  listen: 127.0.0.1:{port}\n{}",
        one_model("openai-compatible", &format!("{}/v1", mock.base_url()), "")
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchyard");
    let router = Process(child);
    let addr = format!("127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the router did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (router, addr, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reading_h2_client_with_huge_windows_cannot_grow_the_router() {
    init_tracing();
    // Each stream could carry 64 MiB; only flow control and the router's
    // bounds stop it.
    let chunk = Bytes::from(format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
        "x".repeat(16 << 10)
    ));
    let mock = MockUpstream::start(Behaviour::SseRepeat { chunk, times: 4096 }).await;
    let (router, addr, dir) = start_router(&mock, "flood").await;
    let base = format!("http://{addr}");
    let chat = format!("{base}/v1/chat/completions");
    let ok = client::post_json(&format!("{base}/v1/models"), "").await;
    assert!(ok.status == 200 || ok.status == 405, "{}", ok.status);
    let before = rss_kib(router.0.id());

    let mut floods = Vec::new();
    for _ in 0..3 {
        floods.push(flood(&addr, 200).await);
    }
    // Let the router fill whatever it will buffer.
    let mut peak = before;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(router.0.id()));
    }
    // Another client is still served during the flood.
    let served = client::open_stream(
        &chat,
        &[("content-type", "application/json")],
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(served.status, 200);
    drop(served);
    peak = peak.max(rss_kib(router.0.id()));
    let grown_mib = (peak.saturating_sub(before)) as f64 / 1024.0;
    eprintln!(
        "router RSS: {before} KiB before, {peak} KiB peak under the flood (+{grown_mib:.1} MiB)"
    );
    // Measured: +45..51 MiB with the bounds (debug build), +327 MiB with
    // hyper's defaults (200 streams x 400 KiB send buffer per connection).
    assert!(
        grown_mib < 128.0,
        "three non-reading h2 connections grew the router by {grown_mib:.1} MiB"
    );
    drop(floods);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_rapid_reset_flood_is_cut_off_and_others_are_served() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json(
        "upstream-model",
        "ok",
    )))
    .await;
    let (router, addr, dir) = start_router(&mock, "reset").await;
    let before = rss_kib(router.0.id());

    // CVE-2023-44487: open a stream and cancel it at once, thousands of times.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    let body = br#"{"model":"m","messages":[]}"#;
    for i in 0..5000u32 {
        let id = 2 * i + 1;
        out.extend(frame(1, 0x4, id, &chat_headers()));
        out.extend(frame(0, 0x1, id, body));
        out.extend(frame(3, 0, id, &8u32.to_be_bytes())); // RST_STREAM CANCEL
    }
    let _ = conn.write_all(&out).await;
    // The router ends the connection (GOAWAY, then close) instead of
    // serving the flood.
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 8192];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => sink.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the flooding connection was still open after 10 s"
    );
    let answer = client::post_json(
        &format!("http://{addr}/v1/chat/completions"),
        r#"{"model":"m","messages":[]}"#,
    )
    .await;
    assert_eq!(answer.status, 200);
    let grown_mib = rss_kib(router.0.id()).saturating_sub(before) as f64 / 1024.0;
    eprintln!(
        "rapid reset: router RSS +{grown_mib:.1} MiB; {} upstream requests",
        mock.request_count()
    );
    assert!(grown_mib < 64.0, "+{grown_mib:.1} MiB");
    let _ = std::fs::remove_dir_all(&dir);
}
