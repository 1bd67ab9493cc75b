//! Cold start (`--cold-start N`): the wall time from spawning a proxy to
//! the first answer it serves — a non-streamed `POST /v1/chat/completions`
//! that comes back 200 with its whole body, through to the mock upstream.
//!
//! For each Switchyard target (`switchyard`, `baseline`) and nginx (the
//! reference), N times: pick a free port, spawn the proxy as the cells do
//! (same config, `taskset` pinning and logging), and from the instant
//! before `spawn` try a fresh connection and the request every millisecond
//! until one answers 200; then stop the proxy. The row `spawn floor` times
//! spawn → exit of `true` through the same `taskset`: what creating a
//! process costs before the proxy runs a line of its own.
//!
//! The 1 ms pause is `std::thread::sleep`, which blocks the bench's runtime
//! on purpose: nothing else runs on it during cold starts (the mock
//! upstream is its own process), and tokio's timer would round each pause
//! up to the next whole millisecond tick where a thread sleep overshoots by
//! well under a millisecond.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::pin;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;

use super::{
    free_port, log_tail, markdown, nginx_command, percentile, pinned, switchyard_command, which,
    Bench, Target, Workload,
};
use crate::load::{RequestSpec, PATH};
use crate::procs::Proc;

/// Pause between two attempts.
const POLL: Duration = Duration::from_millis(1);
/// Longest a start may take, spawn to first answer, before it fails.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one attempt (connect, request, whole answer) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// One row of the table: a proxy's start times, and why starts failed.
struct Row {
    name: String,
    times: Vec<Duration>,
    failures: Vec<String>,
}

impl Row {
    fn new(name: &str) -> Row {
        Row {
            name: name.to_owned(),
            times: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn push(&mut self, result: Result<Duration, String>) {
        match result {
            Ok(d) => self.times.push(d),
            Err(e) => self.failures.push(e),
        }
    }
}

/// Every proxy in `--targets` (not `direct`), `--cold-start` times each,
/// and the table.
pub async fn run(bench: &Bench) -> String {
    let n = bench.opts.cold_start;
    let mut rows = Vec::new();
    if let Some(row) = floor(bench, n) {
        rows.push(row);
    }
    for target in bench.opts.targets.iter().copied() {
        if target == Target::Direct {
            continue;
        }
        let mut row = Row::new(target.name());
        for i in 0..n {
            row.push(match target {
                Target::Nginx => nginx_once(bench, i).await,
                _ => switchyard_once(bench, target, i).await,
            });
        }
        eprintln!(
            "cold start: {:<10} {} starts, p50 {}, {} failed",
            row.name,
            row.times.len(),
            p50_of(&row.times),
            row.failures.len()
        );
        rows.push(row);
    }
    table(n, &rows)
}

/// spawn → exit of `true`, pinned like the proxies; None without `true`.
fn floor(bench: &Bench, n: usize) -> Option<Row> {
    let program = which("true")?;
    let mut row = Row::new("spawn floor (`true`)");
    for _ in 0..n {
        let mut cmd = pinned(&bench.opts, &program);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t0 = Instant::now();
        row.push(
            cmd.status()
                .map_err(|e| format!("{}: {e}", program.display()))
                .and_then(|status| match status.success() {
                    true => Ok(t0.elapsed()),
                    false => Err(format!("{}: {status}", program.display())),
                }),
        );
    }
    Some(row)
}

/// One start of a Switchyard target, timed to its first answer.
async fn switchyard_once(bench: &Bench, target: Target, i: usize) -> Result<Duration, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let log_path = bench.dir.join(format!("cold-{}-{i:03}.log", target.name()));
    let mut cmd = switchyard_command(bench, target, addr, &log_path)?;
    let t0 = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", target.name()))?;
    let mut proc = Proc::new(target.name(), child);
    first_answer(addr, &mut proc, t0)
        .await
        .map_err(|e| format!("{e}; log: {}", log_tail(&log_path, 3)))
}

/// One start of nginx, timed to its first proxied answer.
async fn nginx_once(bench: &Bench, i: usize) -> Result<Duration, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let prefix = bench.dir.join(format!("cold-nginx-{i:03}"));
    let (mut cmd, error_log) = nginx_command(bench, &prefix, addr)?;
    let t0 = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("starting nginx: {e}"))?;
    let mut proc = Proc::new("nginx", child);
    first_answer(addr, &mut proc, t0)
        .await
        .map_err(|e| format!("{e}; error.log: {}", log_tail(&error_log, 1)))
}

/// Tries the request every [`POLL`] until it is answered 200, the proxy
/// exits, or [`START_TIMEOUT`] has passed since `t0`; the time from `t0`.
async fn first_answer(addr: SocketAddr, proc: &mut Proc, t0: Instant) -> Result<Duration, String> {
    let spec = RequestSpec {
        body: Workload::NonStream.body(),
        stream: false,
        host: addr.to_string(),
    };
    let mut last = String::from("no attempt");
    while t0.elapsed() < START_TIMEOUT {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(addr, &spec)).await {
            Ok(Ok(())) => return Ok(t0.elapsed()),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        }
        if let Some(status) = proc.exited() {
            return Err(format!("{} exited ({status}) before answering", proc.name));
        }
        std::thread::sleep(POLL); // see the module comment
    }
    Err(format!(
        "no 200 within {} s of the spawn; last attempt: {last}",
        START_TIMEOUT.as_secs()
    ))
}

/// One attempt on a fresh connection: Ok when the answer is 200 with a
/// non-empty body. The connection is closed on return (its future is
/// dropped here, not left to a task), so it cannot delay the proxy's
/// shutdown.
async fn attempt(addr: SocketAddr, spec: &RequestSpec) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut exchange = pin!(async move {
        let response = sender
            .send_request(spec.request(PATH))
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        match (status, body.is_empty()) {
            (StatusCode::OK, false) => Ok(()),
            (StatusCode::OK, true) => Err("200 with an empty body".to_owned()),
            (status, _) => Err(format!("answered {status}")),
        }
    });
    let mut conn = pin!(conn);
    tokio::select! {
        biased;
        result = &mut exchange => result,
        // the server closed the connection: what it sent before is still
        // in the body channel, or the exchange fails
        closed = &mut conn => {
            closed.map_err(|e| format!("connection: {e}"))?;
            exchange.await
        }
    }
}

fn p50_of(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    super::ms(percentile(&sorted, 0.5))
}

fn table(n: usize, rows: &[Row]) -> String {
    let head = ["proxy", "starts", "min ms", "p50 ms", "max ms", "failed"];
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut sorted = row.times.clone();
            sorted.sort_unstable();
            vec![
                row.name.clone(),
                row.times.len().to_string(),
                super::ms(sorted.first().copied()),
                super::ms(percentile(&sorted, 0.5)),
                super::ms(sorted.last().copied()),
                row.failures.len().to_string(),
            ]
        })
        .collect();
    let mut out = format!(
        "Cold start: spawn → first 200 answer to a non-streamed POST {PATH} (through to the mock upstream), \
         {n} starts per proxy, a fresh connection tried every {} ms; same config, pinning and logging as the cells.\n\n",
        POLL.as_millis()
    );
    out.push_str(&markdown(&head, &lines, 1));
    out.push_str(
        "\nspawn floor = spawn → exit of `true`, pinned like the proxies (through the same taskset): \
         process creation alone.",
    );
    if rows.iter().any(|r| r.name == Target::Nginx.name()) {
        out.push_str(" nginx: master and worker started, its upstream connection opened by the first request.");
    }
    out.push('\n');
    for row in rows {
        if let Some(first) = row.failures.first() {
            let _ = writeln!(
                out,
                "{}: {} of {n} starts failed; first: {first}",
                row.name,
                row.failures.len()
            );
        }
    }
    out
}
