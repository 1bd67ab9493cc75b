//! The load generator: hyper's HTTP/1.1 client over keep-alive connections
//! with TCP_NODELAY, on the bench's own single-threaded runtime.
//!
//! - closed loop: N connections, each sending its next request as soon as
//!   the previous answer's last byte arrived, until the stop instant;
//! - open loop: requests started on a fixed schedule (`rate` per second)
//!   whatever the answers do, over a pool of keep-alive connections.
//!
//! Each request gives one [`Sample`]: when it completed, total time (send
//! to last body byte), and for streams the time to the first body frame
//! that carries a token (`"content":"` followed by a non-empty string).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub done: Instant,
    pub total: Duration,
    pub ttft: Option<Duration>,
    /// body frames (reads that yielded data) of the answer
    pub frames: u32,
    pub ok: bool,
}

impl Sample {
    fn error(start: Instant) -> Sample {
        let done = Instant::now();
        Sample {
            done,
            total: done - start,
            ttft: None,
            frames: 0,
            ok: false,
        }
    }
}

/// What every request of a cell sends.
pub struct RequestSpec {
    pub body: Bytes,
    pub stream: bool,
    pub host: String,
}

impl RequestSpec {
    /// A POST of the body to `uri` (a path, or an absolute URI for the pool).
    pub fn request(&self, uri: &str) -> Request<Full<Bytes>> {
        Request::post(uri)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header(
                "accept",
                if self.stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .header("authorization", "Bearer sk-bench")
            .body(Full::new(self.body.clone()))
            .expect("request")
    }
}

pub const PATH: &str = "/v1/chat/completions";

/// Closed loop: `conns` connections busy until `stop`.
pub async fn closed(
    addr: SocketAddr,
    spec: Arc<RequestSpec>,
    conns: usize,
    stop: Instant,
) -> Vec<Sample> {
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(connection_loop(addr, spec.clone(), stop)))
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        if let Ok(mut s) = task.await {
            samples.append(&mut s);
        }
    }
    samples
}

async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, ()> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|_| ())?;
    tcp.set_nodelay(true).map_err(|_| ())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|_| ())?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn connection_loop(addr: SocketAddr, spec: Arc<RequestSpec>, stop: Instant) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(4096);
    let mut sender = None;
    while Instant::now() < stop {
        let start = Instant::now();
        if sender.is_none() {
            match connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(()) => {
                    samples.push(Sample::error(start));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = sender.as_mut().expect("connected");
        if s.ready().await.is_err() {
            sender = None; // the server closed the keep-alive connection: reconnect
            continue;
        }
        let start = Instant::now();
        let exchange = exchange(s.send_request(spec.request(PATH)), spec.stream, start);
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(sample)) => samples.push(sample),
            _ => {
                samples.push(Sample::error(start));
                sender = None;
            }
        }
    }
    samples
}

/// Open loop: one request every `1/rate` s from `start` until `stop`.
pub async fn open(
    addr: SocketAddr,
    spec: Arc<RequestSpec>,
    rate: f64,
    start: Instant,
    stop: Instant,
) -> Vec<Sample> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector);
    let uri: Arc<str> = format!("http://{addr}{PATH}").into();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::new();
    for i in 0u32.. {
        let at = start + period * i;
        if at >= stop {
            break;
        }
        tokio::time::sleep_until(at).await;
        let (client, spec, uri) = (client.clone(), spec.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            // timed from the actual send, not from the schedule: at this
            // light load the generator is on time, and timer slop (~1 ms)
            // would otherwise be added to every latency
            let start = Instant::now();
            let exchange = exchange(client.request(spec.request(&uri)), spec.stream, start);
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
                Ok(Ok(sample)) => sample,
                _ => Sample::error(start),
            }
        }));
    }
    let mut samples = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(s) = task.await {
            samples.push(s);
        }
    }
    samples
}

async fn exchange<E>(
    response: impl Future<Output = Result<Response<Incoming>, E>>,
    stream: bool,
    start: Instant,
) -> Result<Sample, ()> {
    let response = response.await.map_err(|_| ())?;
    let status_ok = response.status() == StatusCode::OK;
    let mut body = response.into_body();
    let mut ttft = None;
    let mut len = 0usize;
    let mut frames = 0u32;
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| ())?.into_data() else {
            continue;
        };
        if stream && ttft.is_none() && has_token(&data) {
            ttft = Some(start.elapsed());
        }
        len += data.len();
        frames += 1;
        tail.extend_from_slice(&data[data.len().saturating_sub(DONE.len())..]);
        if tail.len() > DONE.len() {
            tail.drain(..tail.len() - DONE.len());
        }
    }
    let done = Instant::now();
    let complete = if stream {
        tail == DONE && ttft.is_some()
    } else {
        len > 0
    };
    Ok(Sample {
        done,
        total: done - start,
        ttft,
        frames,
        ok: status_ok && complete,
    })
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Whether a body frame carries a token: `"content":"` then a non-empty string.
fn has_token(data: &[u8]) -> bool {
    const PAT: &[u8] = b"\"content\":\"";
    data.windows(PAT.len() + 1)
        .any(|w| w.starts_with(PAT) && w[PAT.len()] != b'"')
}
