//! A raw TCP upstream that answers with scripted bytes, so a test controls
//! the framing exactly (split writes, pauses, closes, broken heads and
//! chunks) and sees how many connections it accepted and every request it
//! read. Everything runs on 127.0.0.1 and every wait has a deadline.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Deadline for anything a test waits for besides the support client's own.
pub const WITHIN: Duration = Duration::from_secs(5);

/// What the raw upstream does to answer one request.
#[derive(Clone, Debug)]
pub enum Step {
    /// Writes these bytes (in one write).
    Write(Vec<u8>),
    /// Sleeps.
    Pause(Duration),
    /// Shuts the connection down (FIN) and ends it.
    Close,
    /// Waits (at most [`WITHIN`]) until the upstream has read this many
    /// requests in all, over all connections.
    AwaitRequests(usize),
    /// Reads (and discards) until the peer closes the connection, at most
    /// [`WITHIN`], then ends it; a close seen is counted in `peer_closes`.
    AwaitPeerClose,
}

/// One request the raw upstream read.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Index of the connection it came on (in accept order, from 0).
    pub conn: usize,
    /// Request line and header lines, without the blank line.
    pub head: String,
    /// The `content-length` bytes after the head.
    pub body: Vec<u8>,
}

impl Seen {
    /// Values of header `name` (case-insensitive), in order.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

#[derive(Default)]
struct Log {
    connections: AtomicUsize,
    server_closes: AtomicUsize,
    peer_closes: AtomicUsize,
    /// Requests whose script ran to its end.
    answered: AtomicUsize,
    requests: Mutex<Vec<Seen>>,
    /// First bytes of connections that did not start with an HTTP request.
    not_http: Mutex<Vec<Vec<u8>>>,
}

type Script = Arc<dyn Fn(usize) -> Vec<Step> + Send + Sync>;

/// A TCP server on `127.0.0.1:0` that answers request number `i` (counted
/// over all its connections, from 0) with `script(i)`, then reads the next
/// request on the same connection unless the script closed it. A
/// connection that does not start like an HTTP request (a TLS hello) gets a
/// plain `400` and is closed.
pub struct RawUpstream {
    pub addr: SocketAddr,
    log: Arc<Log>,
    task: JoinHandle<()>,
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        // Dropping the accept task drops its `JoinSet`, which aborts every
        // connection task.
        self.task.abort();
    }
}

impl RawUpstream {
    pub async fn start(script: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static) -> RawUpstream {
        let script: Script = Arc::new(script);
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the raw upstream");
        let addr = listener.local_addr().expect("local_addr");
        let log = Arc::new(Log::default());
        let task = tokio::spawn({
            let log = Arc::clone(&log);
            async move {
                let mut conns = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let conn = log.connections.fetch_add(1, Ordering::SeqCst);
                    conns.spawn(serve(stream, conn, Arc::clone(&log), Arc::clone(&script)));
                }
            }
        });
        RawUpstream { addr, log, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.log.connections.load(Ordering::SeqCst)
    }

    pub fn server_closes(&self) -> usize {
        self.log.server_closes.load(Ordering::SeqCst)
    }

    pub fn peer_closes(&self) -> usize {
        self.log.peer_closes.load(Ordering::SeqCst)
    }

    pub fn answered(&self) -> usize {
        self.log.answered.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.log.requests.lock().unwrap().clone()
    }

    /// The connection index of every request, in order.
    pub fn request_conns(&self) -> Vec<usize> {
        self.requests().iter().map(|s| s.conn).collect()
    }

    pub fn not_http(&self) -> Vec<Vec<u8>> {
        self.log.not_http.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, conn: usize, log: Arc<Log>, script: Script) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut read = [0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            if buf.first().is_some_and(|b| !b.is_ascii_uppercase()) {
                log.not_http.lock().unwrap().push(buf.clone());
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = stream.shutdown().await;
                log.server_closes.fetch_add(1, Ordering::SeqCst);
                return;
            }
            match stream.read(&mut read).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&read[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let length = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < length {
            match stream.read(&mut read).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&read[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        let index = {
            let mut requests = log.requests.lock().unwrap();
            requests.push(Seen { conn, head, body });
            requests.len() - 1
        };
        for step in script(index) {
            match step {
                Step::Write(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::Pause(d) => tokio::time::sleep(d).await,
                Step::Close => {
                    let _ = stream.shutdown().await;
                    drop(stream);
                    log.server_closes.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Step::AwaitRequests(n) => {
                    let deadline = tokio::time::Instant::now() + WITHIN;
                    while log.requests.lock().unwrap().len() < n
                        && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                Step::AwaitPeerClose => {
                    let drain = async {
                        loop {
                            match stream.read(&mut read).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                        }
                    };
                    if tokio::time::timeout(WITHIN, drain).await.is_ok() {
                        log.peer_closes.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
            }
        }
        log.answered.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
