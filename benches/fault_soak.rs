//! Fault soak: does every request get exactly one answer, and do memory and
//! descriptors stay flat, while upstreams fail at random and the config is
//! rewritten every few seconds?
//!
//! `cargo bench --bench fault_soak -- [SECONDS]` (default 600, at most
//! 3600; not part of CI). It starts two in-process upstreams that answer
//! streamed chat completions and, per request at random, reset the
//! connection before answering, answer 503 or 429, cut the stream after a
//! few tokens, or stall it past the router's idle timeout; the release
//! `switchyard` binary (built by `cargo bench`) routes model `m` over both,
//! with a fallback model; 64 clients send streamed requests back to back,
//! each with its own `x-request-id`; a writer rewrites `router.yaml`
//! (alternating weights) every 3 s. Every second the router's VmRSS and
//! open descriptors are sampled.
//!
//! Reported: requests sent, answered complete, answered with a clean error
//! (an HTTP error or one SSE error event), *lost* (a transport error or no
//! answer within 30 s: must be 0), *duplicated* (an answer whose tokens
//! came from two upstream generations: must be 0), reloads, and RSS / fds
//! at 10 s, at the end, and their peaks. Everything stays on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const CLIENTS: usize = 64;
const MAX_SECONDS: u64 = 3600;
const TOKENS: usize = 20;
const TOKEN_GAP: Duration = Duration::from_millis(10);
/// Longer than the router's `timeouts.idle` (1 s): a stall.
const STALL: Duration = Duration::from_secs(3);

/// What an upstream does with one request, drawn at random.
#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    ResetBeforeHead,
    Status503,
    Status429,
    CutAfter(usize),
    StallAfter(usize),
}

fn draw(rng: &mut u64) -> Fault {
    // xorshift: no dependency, reproducible per upstream.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    match *rng % 100 {
        0..=69 => Fault::None,
        70..=77 => Fault::ResetBeforeHead,
        78..=84 => Fault::Status503,
        85..=87 => Fault::Status429,
        88..=94 => Fault::CutAfter(1 + (*rng >> 8) as usize % (TOKENS - 2)),
        _ => Fault::StallAfter(1 + (*rng >> 8) as usize % (TOKENS - 2)),
    }
}

/// Per upstream: how many generations were sent in full for each request id.
type Served = Arc<Mutex<HashMap<String, u32>>>;

async fn upstream(name: &'static str, seed: u64, served: Served) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rng = Arc::new(Mutex::new(seed));
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (rng, served) = (rng.clone(), served.clone());
            tokio::spawn(async move {
                let _ = serve(conn, name, rng, served).await;
            });
        }
    });
    addr
}

async fn serve(
    mut conn: TcpStream,
    name: &str,
    rng: Arc<Mutex<u64>>,
    served: Served,
) -> std::io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::new();
    let mut read = [0u8; 8192];
    loop {
        // One request: head, then content-length bytes.
        let (head_end, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, length);
            }
            let n = conn.read(&mut read).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&read[..n]);
        };
        while buf.len() < head_end + length {
            let n = conn.read(&mut read).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&read[..n]);
        }
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let id = head
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id:"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        buf.drain(..head_end + length);
        let fault = draw(&mut rng.lock().unwrap());
        match fault {
            Fault::ResetBeforeHead => {
                conn.set_zero_linger()?;
                return Ok(());
            }
            Fault::Status503 | Fault::Status429 => {
                let (code, text) = if matches!(fault, Fault::Status503) {
                    (503, "Service Unavailable")
                } else {
                    (429, "Too Many Requests")
                };
                let body = format!(
                    r#"{{"error":{{"message":"{name} says {code}","type":"server_error","code":null}}}}"#
                );
                let answer = format!(
                    "HTTP/1.1 {code} {text}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).await?;
                continue;
            }
            _ => {}
        }
        conn.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await?;
        for i in 0..TOKENS {
            if matches!(fault, Fault::CutAfter(n) if n == i) {
                conn.set_zero_linger()?;
                return Ok(());
            }
            if matches!(fault, Fault::StallAfter(n) if n == i) {
                tokio::time::sleep(STALL).await;
                return Ok(());
            }
            let event = format!(
                "data: {{\"id\":\"{name}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{name}:{i} \"}},\"finish_reason\":null}}]}}\n\n"
            );
            conn.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())
                .await?;
            tokio::time::sleep(TOKEN_GAP).await;
        }
        let last = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        conn.write_all(format!("{:x}\r\n{last}\r\n0\r\n\r\n", last.len()).as_bytes())
            .await?;
        *served.lock().unwrap().entry(id).or_default() += 1;
    }
}

fn config(listen: SocketAddr, a: SocketAddr, b: SocketAddr, generation: u64) -> String {
    let (wa, wb) = if generation.is_multiple_of(2) {
        (3, 1)
    } else {
        (1, 3)
    };
    format!(
        "server:\n  listen: {listen}\n\
         upstreams:\n\
         \x20 a: {{ provider: openai-compatible, base_url: \"http://{a}/v1\", health_check: false, timeouts: {{ first_byte: 2s, first_token: 2s, idle: 1s, total: 20s }} }}\n\
         \x20 b: {{ provider: openai-compatible, base_url: \"http://{b}/v1\", health_check: false, timeouts: {{ first_byte: 2s, first_token: 2s, idle: 1s, total: 20s }} }}\n\
         models:\n\
         \x20 m:\n    targets: [{{ upstream: a, model: x, weight: {wa} }}, {{ upstream: b, model: x, weight: {wb} }}]\n    fallbacks: [backup]\n\
         \x20 backup:\n    targets: [{{ upstream: b, model: y }}, {{ upstream: a, model: y }}]\n\
         # generation {generation}\n"
    )
}

/// How one request ended.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    complete: AtomicU64,
    clean_error: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
}

async fn client(base: String, until: Instant, tally: Arc<Tally>, worker: usize) {
    let mut n = 0u64;
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"go"}]}"#;
    let mut conn: Option<TcpStream> = None;
    while Instant::now() < until {
        n += 1;
        let id = format!("soak-{worker}-{n}");
        tally.sent.fetch_add(1, Ordering::Relaxed);
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: soak\r\ncontent-type: application/json\r\nx-request-id: {id}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let outcome = tokio::time::timeout(Duration::from_secs(30), async {
            let stream = match conn.take() {
                Some(stream) => stream,
                None => TcpStream::connect(&base).await.map_err(|e| e.to_string())?,
            };
            exchange(stream, request.as_bytes()).await
        })
        .await;
        match outcome {
            Ok(Ok((answer, stream))) => {
                conn = stream;
                let tokens_from: std::collections::HashSet<&str> = answer
                    .split("\"content\":\"")
                    .skip(1)
                    .filter_map(|rest| rest.split(':').next())
                    .collect();
                if tokens_from.len() > 1 {
                    tally.duplicated.fetch_add(1, Ordering::Relaxed);
                }
                if answer.starts_with("HTTP/1.1 200") && answer.contains("data: [DONE]") {
                    tally.complete.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.clean_error.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                tally.lost.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
        }
    }
}

/// Sends one request and reads its whole answer (chunked or with a
/// length); returns the stream when it can carry another request.
async fn exchange(
    mut stream: TcpStream,
    request: &[u8],
) -> Result<(String, Option<TcpStream>), String> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut read = [0u8; 16384];
    loop {
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let body = &buf[end + 4..];
            let done = if head.contains("transfer-encoding: chunked") {
                body.ends_with(b"0\r\n\r\n")
            } else {
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                body.len() >= length
            };
            if done {
                let again = !head.contains("connection: close");
                return Ok((text.into_owned(), again.then_some(stream)));
            }
        }
        let n = stream.read(&mut read).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed mid-answer".into());
        }
        buf.extend_from_slice(&read[..n]);
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(600)
        .min(MAX_SECONDS);
    let binary = std::env::var_os("SWITCHYARD_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_switchyard")),
        PathBuf::from,
    );
    let served_a: Served = Arc::default();
    let served_b: Served = Arc::default();
    let a = upstream("a", 0x9e37_79b9_7f4a_7c15, served_a.clone()).await;
    let b = upstream("b", 0xd1b5_4a32_d192_ed03, served_b.clone()).await;
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let dir = std::env::temp_dir().join(format!("switchyard-fault-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("router.yaml");
    std::fs::write(&path, config(listen, a, b, 0)).unwrap();
    let child = Command::new(&binary)
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("switchyard.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let router = Kill(child);
    let pid = router.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(listen).await.is_err() {
        assert!(Instant::now() < deadline, "the router did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    eprintln!("fault soak: {seconds} s, {CLIENTS} streaming clients, router pid {pid}");
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for worker in 0..CLIENTS {
        clients.push(tokio::spawn(client(
            listen.to_string(),
            until,
            tally.clone(),
            worker,
        )));
    }
    let writer = {
        let path = path.clone();
        tokio::spawn(async move {
            let mut generation = 0;
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(3)).await;
                generation += 1;
                let tmp = path.with_extension("yaml.tmp");
                std::fs::write(&tmp, config(listen, a, b, generation)).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
            generation
        })
    };
    let mut samples: Vec<(f64, u64, usize)> = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = started.elapsed().as_secs_f64();
        samples.push((t, status_kib(pid, "VmRSS:"), fds(pid)));
        if samples.len().is_multiple_of(60) {
            eprintln!(
                "  {t:.0} s: {} sent, {} lost, RSS {} KiB, {} fds",
                tally.sent.load(Ordering::Relaxed),
                tally.lost.load(Ordering::Relaxed),
                samples.last().unwrap().1,
                samples.last().unwrap().2
            );
        }
    }
    for c in clients {
        let _ = c.await;
    }
    let reloads = writer.await.unwrap_or(0);
    let peak_rss = status_kib(pid, "VmHWM:");
    let early = samples
        .iter()
        .find(|s| s.0 >= 10.0)
        .copied()
        .unwrap_or_default();
    let last = samples.last().copied().unwrap_or_default();
    let max_fds = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let completed_twice: usize = [&served_a, &served_b]
        .iter()
        .flat_map(|s| s.lock().unwrap().values().copied().collect::<Vec<_>>())
        .filter(|&n| n > 1)
        .count();
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!("| measure | value |\n|---|---:|");
    println!("| duration | {seconds} s |");
    println!("| streaming clients | {CLIENTS} |");
    println!("| requests sent | {} |", t(&tally.sent));
    println!("| answered complete | {} |", t(&tally.complete));
    println!(
        "| answered with a clean error | {} |",
        t(&tally.clean_error)
    );
    println!(
        "| lost (no answer or a broken connection) | {} |",
        t(&tally.lost)
    );
    println!(
        "| duplicated (tokens from two generations in one answer) | {} |",
        t(&tally.duplicated)
    );
    println!("| request ids an upstream generated in full twice | {completed_twice} |");
    println!("| config rewrites | {reloads} |");
    println!(
        "| RSS at 10 s / end / peak | {} / {} / {} KiB |",
        early.1, last.1, peak_rss
    );
    println!(
        "| open fds at 10 s / end / max | {} / {} / {max_fds} |",
        early.2, last.2
    );
    let _ = std::fs::remove_dir_all(&dir);
}
