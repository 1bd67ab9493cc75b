//! Clients that try to hold the router's connections: silent sockets,
//! slow heads and bodies (slowloris), idle keep-alive connections, floods
//! past `server.max_connections`, clients that stop reading. Each test
//! checks the documented limit and that a normal request is still served.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::support::*;

/// The mock model on the built-in `mock` provider, with short connection
/// limits; `server` adds keys under `server:` (indent by two spaces).
fn config(server: &str) -> String {
    format!(
        "server:\n  header_timeout: 300ms\n  body_timeout: 300ms\n  keepalive_timeout: 400ms\n{server}upstreams:\n  local: {{ provider: mock }}\nmodels:\n  demo:\n    targets: [local]\n"
    )
}

async fn connect(router: &Router) -> TcpStream {
    TcpStream::connect(router.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Everything the router writes until it closes the connection; fails if
/// it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let read = timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {within:?}"
    );
    String::from_utf8_lossy(&out).into_owned()
}

async fn assert_serves(router: &Router) {
    let reply = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let started = Instant::now();
    let mut silent = connect(&router).await;
    let said = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert_eq!(said, "", "nothing was asked, nothing is answered");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_serves(&router).await;
}

#[tokio::test]
async fn a_request_head_that_stalls_gets_408_and_the_connection_closes() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let mut slow = connect(&router).await;
    slow.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n",
    )
    .await
    .unwrap();
    let said = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(said.starts_with("HTTP/1.1 408 "), "{said:?}");
    assert!(said.contains("\"code\":\"request_timeout\""), "{said:?}");
    assert!(said.contains("server.header_timeout"), "{said:?}");
    assert_serves(&router).await;
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_cannot_outlive_the_header_timeout() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let mut slow = connect(&router).await;
    let started = Instant::now();
    let head =
        b"GET /health HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for byte in head {
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let said = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(said.starts_with("HTTP/1.1 408 "), "{said:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_request_body_that_stalls_gets_408() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let mut slow = connect(&router).await;
    slow.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":",
    )
    .await
    .unwrap();
    let said = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(said.starts_with("HTTP/1.1 408 "), "{said:?}");
    assert!(said.contains("server.body_timeout"), "{said:?}");
    assert_serves(&router).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_at_the_keepalive_timeout() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let mut conn = connect(&router).await;
    conn.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
    let idle = Instant::now();
    let said = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert_eq!(said, "", "an idle connection closes without an answer");
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_flood_of_idle_connections_past_the_cap_does_not_lock_out_real_clients() {
    init_tracing();
    let router = Router::start(&config("  max_connections: 8\n")).await;
    // 40 silent sockets: 8 are served (and time out), the rest wait in the
    // listen backlog and are then served and time out in turn.
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(connect(&router).await);
    }
    let started = Instant::now();
    assert_serves(&router).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a real client waited {:?}",
        started.elapsed()
    );
    let metrics = client::get(&router.url("/metrics")).await.text();
    let at_limit = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchyard_connections_at_limit_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("switchyard_connections_at_limit_total exposed");
    assert!(at_limit >= 1.0, "the cap was reached: {at_limit}");
    let closed = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("switchyard_connections_closed_total{reason=\"header_timeout\"} ")
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(closed >= 8.0, "silent connections were closed: {closed}");
    drop(silent);
}

#[tokio::test]
async fn connections_answer_normally_under_the_limits() {
    init_tracing();
    let router = Router::start(&config("")).await;
    // Keep-alive reuse within the timeout works: three requests, one connection.
    let mut conn = connect(&router).await;
    for _ in 0..3 {
        conn.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200 "),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // A streamed answer slower than every connection timeout is not cut:
    // no read deadline applies while a request is in flight.
    let slow = MockUpstream::start(Behaviour::Sse {
        chunks: chat_chunks("upstream-model", &["a", "b", "c"], false),
        delay: Duration::from_millis(250),
    })
    .await;
    let router = Router::start(&format!(
        "server:\n  header_timeout: 300ms\n  keepalive_timeout: 300ms\n{}",
        one_model("openai-compatible", &format!("{}/v1", slow.base_url()), "")
    ))
    .await;
    let reply = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().ends_with("data: [DONE]\n\n"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_cannot_keep_its_upstream_request_open_past_total() {
    init_tracing();
    // An endless fast stream; the client reads the head and then nothing.
    let chunk = bytes::Bytes::from(format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "y".repeat(8 << 10)
    ));
    let mock = MockUpstream::start(Behaviour::SseRepeat {
        chunk,
        times: 1 << 20,
    })
    .await;
    let router = Router::start(&format!(
        "server:\n  send_timeout: 60s\n{}",
        one_model(
            "openai-compatible",
            &format!("{}/v1", mock.base_url()),
            "    timeouts: { first_byte: 1s, first_token: 1s, idle: 1s, total: 1s }\n",
        )
    ))
    .await;
    let mut conn = connect(&router).await;
    let body = r#"{"model":"m","stream":true,"messages":[]}"#;
    conn.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 64];
    let n = conn.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 "));
    // Now the client reads nothing: the router's writes back up. The
    // upstream request must still end at `timeouts.total`.
    assert!(
        mock.wait_for_cancelled_stream(Duration::from_secs(4)).await,
        "the upstream stream was still open 4 s after a 1 s total timeout"
    );
    drop(conn);
}

/// Sends `request` on a new connection and returns what came back before
/// the router closed the connection (or 2 s passed).
async fn exchange(router: &Router, request: &[u8]) -> String {
    let mut conn = connect(router).await;
    conn.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = timeout(Duration::from_secs(2), async {
        let mut buf = [0u8; 8192];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_http_1_1_request_without_exactly_one_host_is_refused() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let none = exchange(
        &router,
        b"GET /health HTTP/1.1\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(none.starts_with("HTTP/1.1 400 "), "{none:?}");
    assert!(none.contains("\"code\":\"invalid_host\""), "{none:?}");
    let two = exchange(
        &router,
        b"GET /health HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(two.starts_with("HTTP/1.1 400 "), "{two:?}");
    assert!(two.contains("2 Host headers"), "{two:?}");
    // HTTP/1.0 needs none.
    let old = exchange(&router, b"GET /health HTTP/1.0\r\n\r\n").await;
    assert!(
        old.starts_with("HTTP/1.0 200 ") || old.starts_with("HTTP/1.1 200 "),
        "{old:?}"
    );
    assert_serves(&router).await;
}

#[tokio::test]
async fn huge_heads_and_uris_are_refused_and_the_router_keeps_serving() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "a".repeat(128 << 10)
    );
    let said = exchange(&router, long_uri.as_bytes()).await;
    assert!(
        said.starts_with("HTTP/1.1 414 ") || said.starts_with("HTTP/1.1 431 ") || said.is_empty(),
        "{:?}",
        &said[..said.len().min(200)]
    );
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n",
        "b".repeat(1 << 20)
    );
    let said = exchange(&router, huge_header.as_bytes()).await;
    assert!(
        said.starts_with("HTTP/1.1 431 ") || said.is_empty(),
        "{:?}",
        &said[..said.len().min(200)]
    );
    let many_headers: String = (0..500).map(|i| format!("x-h{i}: v\r\n")).collect();
    let said = exchange(
        &router,
        format!("GET /health HTTP/1.1\r\nhost: x\r\n{many_headers}connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        said.starts_with("HTTP/1.1 431 ") || said.is_empty(),
        "{:?}",
        &said[..said.len().min(200)]
    );
    let big_body = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        64u64 << 20
    );
    let said = exchange(&router, big_body.as_bytes()).await;
    assert!(said.starts_with("HTTP/1.1 413 "), "{said:?}");
    assert_serves(&router).await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    init_tracing();
    let router = Router::start(&config("")).await;
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"one"}]}"#;
    let chat = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let pipelined = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\n\r\n{chat}GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    );
    let said = exchange(&router, pipelined.as_bytes()).await;
    let statuses: Vec<&str> = said
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &said[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "200"], "{said}");
    let chat_at = said.find("chat.completion").expect("the chat answer");
    let models_at = said.find("\"object\":\"list\"").expect("the model list");
    assert!(chat_at < models_at, "answers in request order");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections_or_half_sent_heads() {
    init_tracing();
    let router = Router::start(
        "server:\n  header_timeout: 30s\n  keepalive_timeout: 60s\n  shutdown_grace: 30s\nupstreams:\n  local: { provider: mock }\nmodels:\n  demo:\n    targets: [local]\n",
    )
    .await;
    let mut half = connect(&router).await;
    half.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut idle = connect(&router).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).await.unwrap() > 0);
    let _silent = connect(&router).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    router.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} for connections with nothing in flight",
        started.elapsed()
    );
}

/// Runs the `switchyard` binary with an open-file limit of 64 (soft and
/// hard) and `server` keys; returns the process, its address and its log.
fn start_limited(server: &str, tag: &str) -> (std::process::Child, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("switchyard-fdlimit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("router.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  listen: 127.0.0.1:{port}\n  header_timeout: 2s\n{server}upstreams:\n  local: {{ provider: mock }}\nmodels:\n  demo:\n    targets: [local]\n"
        ),
    )
    .unwrap();
    let log = dir.join("stderr.log");
    let child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} --config {}",
            env!("CARGO_BIN_EXE_switchyard"),
            config.display()
        ))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, format!("127.0.0.1:{port}"), log)
}

async fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "the router did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn out_of_descriptors_the_accept_loop_backs_off_and_logs_sparingly() {
    init_tracing();
    // A cap above what 64 descriptors allow, so accept itself fails.
    let (mut child, addr, log) = start_limited("  max_connections: 500\n", "emfile");
    wait_listening(&addr).await;
    let mut held = Vec::new();
    for _ in 0..150 {
        if let Ok(Ok(conn)) = timeout(Duration::from_millis(500), TcpStream::connect(&addr)).await {
            held.push(conn);
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.lines().filter(|l| l.contains("accept failed")).count();
    assert!(lines >= 1, "the failure is logged:\n{text}");
    assert!(lines <= 2, "{lines} accept-failure lines in 3 s:\n{text}");
    assert!(
        text.contains("max_connections is over half the open-file limit"),
        "{text}"
    );
    drop(held);
    // The held connections time out or close; then the router serves again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = timeout(Duration::from_secs(2), async {
            client::try_send("GET", &format!("http://{addr}/health"), &[], "").await
        })
        .await;
        if matches!(ok, Ok(Ok(ref reply)) if reply.status == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not serving 15 s after the flood"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn with_the_default_cap_a_flood_never_exhausts_descriptors() {
    init_tracing();
    // 64 descriptors: the default cap is 1 connection, so new ones wait in
    // the backlog instead of failing accept.
    let (mut child, addr, log) = start_limited("", "cap");
    wait_listening(&addr).await;
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(Ok(conn)) = timeout(Duration::from_millis(500), TcpStream::connect(&addr)).await {
            held.push(conn);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("accept failed"), "{text}");
    assert!(text.contains("connection limit reached"), "{text}");
    drop(held);
    let reply = timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(reply) =
                client::try_send("GET", &format!("http://{addr}/health"), &[], "").await
            {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("served within 20 s");
    assert_eq!(reply.status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn an_answer_given_before_the_body_was_read_says_connection_close() {
    init_tracing();
    let mock = MockUpstream::start(Behaviour::Json(chat_completion_json("m", "unused"))).await;
    let router = Router::start(&format!(
        "server:\n  auth:\n    keys: [sk-right]\n{}",
        crate::support::router::one_model(
            "openai-compatible",
            &format!("{}/v1", mock.base_url()),
            ""
        )
    ))
    .await;
    let mut stream = connect(&router).await;
    // A wrong key and a body still on its way: the 401 comes before the body
    // is read, so this connection cannot serve another request, and the
    // answer must say so (a client reusing it would lose its next request).
    stream
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-wrong\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"model\":",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    assert_eq!(mock.request_count(), 0);
}
