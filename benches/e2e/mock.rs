//! The mock upstream: a minimal OpenAI-compatible chat server, run as its
//! own process (`e2e --mock-upstream …`) so that its CPU is never counted
//! as the proxy's.
//!
//! `POST /v1/chat/completions` answers by the body's `model`:
//! - `"stream": false` (or absent): one JSON completion of N tokens with `usage`;
//! - `"stream": true`: a role chunk, N content chunks, a finish chunk, a usage
//!   chunk and `data: [DONE]`, each chunk its own body frame. Model `paced`
//!   waits `--first-token-ms` before the first content chunk and
//!   `--token-ms` between content chunks (on a fixed schedule from the
//!   start of the answer, so timer slop does not accumulate); any other
//!   model (`fast`) sends every chunk at once.
//!
//! `GET /health` answers 200. TCP_NODELAY on every connection, HTTP/1.1
//! keep-alive, a tokio runtime with ONE worker thread. The process prints
//! its port on the first line of stdout and exits when stdin closes (the
//! bench holds the other end), so it never outlives the bench.

use std::convert::Infallible;
use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, Sleep};

struct Answers {
    completion: Bytes,
    chunks: Arc<[Bytes]>,
    first_token: Duration,
    token_gap: Duration,
}

/// `e2e --mock-upstream [--tokens N] [--first-token-ms MS] [--token-ms MS]`
pub fn main(args: &[String]) {
    let mut tokens = 50usize;
    let mut first_ms = 5u64;
    let mut gap_ms = 5u64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--tokens", Some(v)) => tokens = v as usize,
            ("--first-token-ms", Some(v)) => first_ms = v,
            ("--token-ms", Some(v)) => gap_ms = v,
            _ => {
                eprintln!("mock upstream: bad argument {arg:?}");
                std::process::exit(2);
            }
        }
    }
    // Exit when the bench goes away (its end of our stdin closes).
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let answers = Arc::new(Answers {
        completion: completion(tokens),
        chunks: stream_chunks(tokens).into(),
        first_token: Duration::from_millis(first_ms),
        token_gap: Duration::from_millis(gap_ms),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{port}");
            let _ = out.flush();
        }
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let answers = answers.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| serve(req, answers.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

type MockBody = Either<Full<Bytes>, SseBody>;

async fn serve(
    req: Request<Incoming>,
    answers: Arc<Answers>,
) -> Result<Response<MockBody>, Infallible> {
    let plain = |status: StatusCode, body: &'static str| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Either::Left(Full::new(Bytes::from_static(body.as_bytes()))))
            .expect("response")
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/health") => return Ok(plain(StatusCode::OK, r#"{"status":"ok"}"#)),
        (&Method::POST, "/v1/chat/completions") => {}
        _ => {
            return Ok(plain(
                StatusCode::NOT_FOUND,
                r#"{"error":{"message":"not found"}}"#,
            ))
        }
    }
    let Ok(body) = req.into_body().collect().await else {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"bad body"}}"#,
        ));
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) else {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"bad json"}}"#,
        ));
    };
    let stream = json
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    if !stream {
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Either::Left(Full::new(answers.completion.clone())))
            .expect("response"));
    }
    let paced = json.get("model").and_then(|m| m.as_str()) == Some("paced");
    let (first_token, token_gap) = if paced {
        (answers.first_token, answers.token_gap)
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    Ok(Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Either::Right(SseBody {
            chunks: answers.chunks.clone(),
            next: 0,
            start: Instant::now(),
            first_token,
            token_gap,
            sleep: None,
        }))
        .expect("response"))
}

fn completion(tokens: usize) -> Bytes {
    let content = (0..tokens)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    Bytes::from(format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"fast","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"logprobs":null,"finish_reason":"stop"}}],"usage":{{"prompt_tokens":24,"completion_tokens":{tokens},"total_tokens":{}}}}}"#,
        24 + tokens
    ))
}

/// role chunk, `tokens` content chunks, finish chunk, usage chunk, [DONE].
fn stream_chunks(tokens: usize) -> Vec<Bytes> {
    const HEAD: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench""#;
    let mut chunks = vec![Bytes::from(format!(
        "data: {HEAD},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    ))];
    for i in 0..tokens {
        let sep = if i == 0 { "" } else { " " };
        chunks.push(Bytes::from(format!(
            "data: {HEAD},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{sep}w{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        )));
    }
    chunks.push(Bytes::from(format!(
        "data: {HEAD},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
    )));
    chunks.push(Bytes::from(format!(
        "data: {HEAD},\"choices\":[],\"usage\":{{\"prompt_tokens\":24,\"completion_tokens\":{tokens},\"total_tokens\":{}}}}}\n\n",
        24 + tokens
    )));
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}

/// A streamed answer: each chunk its own frame, content chunk `k` (chunk
/// index `k + 1`) due at `first_token + k * token_gap` after the start.
pub struct SseBody {
    chunks: Arc<[Bytes]>,
    next: usize,
    start: Instant,
    first_token: Duration,
    token_gap: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl SseBody {
    fn due(&self, index: usize) -> Option<Instant> {
        if self.first_token.is_zero() && self.token_gap.is_zero() {
            return None;
        }
        let tokens = self.chunks.len().saturating_sub(4); // role, finish, usage, done
        if index == 0 || index > tokens {
            return None; // the role chunk goes at once; the tail right after the last token
        }
        let k = (index - 1) as u32;
        Some(self.start + self.first_token + self.token_gap * k)
    }
}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.next >= this.chunks.len() {
            return Poll::Ready(None);
        }
        if let Some(due) = this.due(this.next) {
            if Instant::now() < due {
                let sleep = match &mut this.sleep {
                    Some(sleep) => {
                        if sleep.deadline() != due {
                            sleep.as_mut().reset(due);
                        }
                        sleep
                    }
                    None => this.sleep.insert(Box::pin(tokio::time::sleep_until(due))),
                };
                ready!(sleep.as_mut().poll(cx));
            }
        }
        let chunk = this.chunks[this.next].clone();
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks.len()
    }
}
