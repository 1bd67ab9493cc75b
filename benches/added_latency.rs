//! Added latency: the same requests sent straight to a mock upstream and
//! through Switchyard, interleaved in one run so machine noise hits both.
//!
//! ```sh
//! cargo bench --bench added_latency            # 2000 requests per series
//! ROUNDS=5000 cargo bench --bench added_latency
//! ```
//!
//! Prints p50/p99 of time to response headers and to the last body byte for
//! a non-stream chat completion and a 50-chunk SSE stream, direct and via
//! the router, and the difference of the medians. One keep-alive
//! connection per series, one request at a time (light load). The router
//! runs in-process with its access log off (RUST_LOG unset) but otherwise
//! exactly as served. The full benchmark against nginx is a separate issue.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

const CHAT_BODY: &str = r#"{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something about proxies in one sentence, please."}],"temperature":0.2,"max_tokens":64}"#;

fn completion() -> String {
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"bench","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":20,"completion_tokens":50,"total_tokens":70}}}}"#,
        "word ".repeat(50).trim_end()
    )
}

fn stream_chunks() -> Vec<Bytes> {
    let mut chunks = vec![Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n")];
    for i in 0..50 {
        chunks.push(Bytes::from(format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" w{i}\"}},\"finish_reason\":null}}]}}\n\n")));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}

async fn mock_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let completion = Bytes::from(completion());
    let chunks = stream_chunks();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let completion = completion.clone();
            let chunks = chunks.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let completion = completion.clone();
                    let chunks = chunks.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let stream = body.windows(13).any(|w| w == b"\"stream\":true");
                        let response = if stream {
                            let body = Chunks(chunks.into_iter().collect());
                            Response::builder()
                                .header("content-type", "text/event-stream")
                                .body(http_body_util::Either::Right(body))
                                .unwrap()
                        } else {
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(http_body_util::Either::Left(Full::new(completion)))
                                .unwrap()
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A body that yields each chunk as its own frame, like a streaming server.
struct Chunks(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(hyper::body::Frame::data(c))))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let upstream = mock_upstream().await;
        let config = std::env::temp_dir().join(format!("switchyard-bench-{}.yaml", std::process::id()));
        std::fs::write(
            &config,
            format!(
                "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: http://{upstream}/v1\n    health_check: false\nmodels:\n  bench:\n    targets: [{{ upstream: up, model: bench-upstream }}]\n"
            ),
        )
        .unwrap();
        let server = switchyard::start(switchyard::ServeOptions {
            config_path: config.clone(),
            listen: Some("127.0.0.1:0".parse().unwrap()),
        })
        .await
        .unwrap();
        let router = server.local_addr();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();

        println!("rounds per series: {rounds}; one keep-alive connection, one request at a time\n");
        println!("{:<28} {:>10} {:>10} {:>10} {:>10}", "series", "hdr p50", "hdr p99", "end p50", "end p99");
        for (label, body) in [
            ("non-stream chat", CHAT_BODY.to_owned()),
            ("stream, 50 chunks", CHAT_BODY.replacen('{', "{\"stream\":true,", 1)),
        ] {
            let mut samples: [(Vec<Duration>, Vec<Duration>); 2] = Default::default();
            for round in 0..rounds + 100 {
                for (i, addr) in [upstream, router].iter().enumerate() {
                    let request = Request::post(format!("http://{addr}/v1/chat/completions"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body.clone())))
                        .unwrap();
                    let start = Instant::now();
                    let response = client.request(request).await.unwrap();
                    let header = start.elapsed();
                    let bytes = response.into_body().collect().await.unwrap().to_bytes();
                    let end = start.elapsed();
                    assert!(!bytes.is_empty());
                    if round >= 100 {
                        // the first 100 rounds warm pools and caches
                        samples[i].0.push(header);
                        samples[i].1.push(end);
                    }
                }
            }
            let mut p50 = [Duration::ZERO; 2];
            for (i, who) in ["direct", "via switchyard"].iter().enumerate() {
                let (h, e) = &mut samples[i];
                h.sort();
                e.sort();
                p50[i] = percentile(h, 0.5);
                println!(
                    "{:<28} {:>10.3?} {:>10.3?} {:>10.3?} {:>10.3?}",
                    format!("{label}, {who}"),
                    percentile(h, 0.5),
                    percentile(h, 0.99),
                    percentile(e, 0.5),
                    percentile(e, 0.99)
                );
            }
            println!("{:<28} {:>10.3?}\n", format!("{label}, added p50 (headers)"), p50[1].saturating_sub(p50[0]));
        }
        server.shutdown().await;
        let _ = std::fs::remove_file(config);
    });
}
