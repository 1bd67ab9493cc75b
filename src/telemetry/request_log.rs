//! Request log records: one JSON line per request, appended to files in a
//! directory, written off the request path.
//!
//! The request path moves its [`Entry`] (the one the access record filled
//! in) onto a bounded channel with `try_send`; a writer thread serialises
//! and appends. When the
//! channel is full (the disk is slower than traffic), the record is dropped
//! and counted (`switchyard_request_log_dropped_total`) — traffic never
//! waits for the log. Files are `requests-YYYY-MM-DD.jsonl` (UTC); at
//! `max_file_bytes` the current file is renamed `requests-YYYY-MM-DD.N.jsonl`
//! and a new one started; a new day starts a new file. Credentials never
//! appear: records carry no headers, and prompt/completion content only
//! with `include_content: true`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prometheus::IntCounter;
use serde_json::{json, Value};

use crate::openai::Usage;

/// `request_log:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogConfig {
    /// Directory of the JSON-lines files (created if missing).
    pub dir: PathBuf,
    /// Size at which a file is rotated.
    pub max_file_bytes: u64,
    /// Include the request body and the answer's content (sensitive).
    pub include_content: bool,
    /// Records buffered between requests and the writer.
    pub queue: usize,
}

/// What is known about one request. The access record
/// ([`AccessRecord`](super::access_log::AccessRecord)) fills it in as the
/// request goes; when the request ends it is the access-log line's fields
/// and, moved whole to the writer, the request-log record. A field added
/// here is there for both.
#[derive(Debug, Default)]
pub struct Entry {
    /// When the request arrived (wall clock).
    pub at: Option<SystemTime>,
    /// `x-request-id`.
    pub request_id: String,
    /// HTTP method.
    pub method: http::Method,
    /// Request path.
    pub path: String,
    /// The model the client asked for.
    pub model: Option<String>,
    /// The logical model that answered (differs after a fallback).
    pub served_model: Option<String>,
    /// `upstream/model` that answered.
    pub target: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Response status.
    pub status: u16,
    /// `completed`, `client_cancelled` or `upstream_error`; set when the
    /// request ends.
    pub outcome: &'static str,
    /// The whole request, in milliseconds; set when the request ends.
    pub duration_ms: f64,
    /// Time to the response head, in milliseconds. The head goes out at the
    /// commit point, which for a stream is its first content event: so for
    /// streams this is the time to the first token.
    pub ttft_ms: Option<f64>,
    /// Token usage the upstream reported (or, with `usage_estimated`, the
    /// estimate of a stream that ended before it reported any).
    pub usage: Option<Usage>,
    /// `usage` is an estimate: the stream was cancelled or cut before its
    /// usage arrived, and its relayed content events were counted instead.
    pub usage_estimated: bool,
    /// Estimated cost in US dollars (when the model has `pricing`).
    pub cost_usd: Option<f64>,
    /// Why the request failed, in short (error code or kind).
    pub error: Option<String>,
    /// Body bytes sent to the client.
    pub bytes: u64,
    /// The name of the router key used (never the key).
    pub key: Option<String>,
    /// That key's `labels`.
    pub key_labels: Option<Arc<[(String, String)]>>,
    /// The request body, kept (refcounted) only for `include_content`.
    pub request_body: Option<Bytes>,
    /// The answer's content, captured only for `include_content`.
    pub response_content: Option<String>,
    /// Each time the stream broke after its first token and a continuation
    /// was looked for (`models.<name>.resume`), in order.
    pub resumes: Vec<Resumed>,
    /// The response cache's part: `hit` (answered from it), `miss` (looked
    /// up, not found; the answer may be stored) or `bypass` (the request
    /// said `Cache-Control: no-cache`/`no-store`). `None`: not cached.
    pub cache: Option<&'static str>,
}

/// One break of a committed stream, and the continuation found for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// How the stream broke: `stream_interrupted`, `idle_timeout`,
    /// `error_event` or `stream_cut` (ended without finishing).
    pub after: &'static str,
    /// `upstream/model` that continued the answer; `None` when none could.
    pub target: Option<String>,
    /// From the break to the continuation's first token (or to giving up),
    /// in milliseconds.
    pub ms: f64,
}

/// A running request log.
pub struct RequestLog {
    tx: SyncSender<Entry>,
    /// Its settings (a reload with other settings starts a new log).
    pub config: RequestLogConfig,
    dropped: IntCounter,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("config", &self.config)
            .finish()
    }
}

impl RequestLog {
    /// Creates the directory and starts the writer thread. The thread ends
    /// (after flushing) when the log is dropped.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn start(
        config: RequestLogConfig,
        written: IntCounter,
        dropped: IntCounter,
    ) -> std::io::Result<RequestLog> {
        std::fs::create_dir_all(&config.dir)?;
        let (tx, rx) = sync_channel(config.queue.max(1));
        let writer = Writer {
            dir: config.dir.clone(),
            max: config.max_file_bytes,
            file: None,
            day: String::new(),
            size: 0,
        };
        std::thread::Builder::new()
            .name("switchyard-request-log".into())
            .spawn(move || writer.run(rx, written))?;
        Ok(RequestLog {
            tx,
            config,
            dropped,
        })
    }

    /// Queues a record; drops (and counts) it when the queue is full.
    pub fn submit(&self, entry: Entry) {
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

struct Writer {
    dir: PathBuf,
    max: u64,
    file: Option<BufWriter<File>>,
    day: String,
    size: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<Entry>, written: IntCounter) {
        while let Ok(entry) = rx.recv() {
            self.write(&entry, &written);
            // Write what else is queued, then flush once: one syscall per burst.
            while let Ok(entry) = rx.try_recv() {
                self.write(&entry, &written);
            }
            if let Some(file) = self.file.as_mut() {
                if let Err(err) = file.flush() {
                    tracing::warn!(error = %err, "request log: flush failed");
                }
            }
        }
        if let Some(mut file) = self.file.take() {
            let _ = file.flush();
        }
    }

    fn write(&mut self, entry: &Entry, written: &IntCounter) {
        let (day, ts) = utc(entry.at.unwrap_or_else(SystemTime::now));
        let mut line = render(entry, ts).to_string();
        line.push('\n');
        if let Err(err) = self.ensure_file(&day, line.len() as u64) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "request log: cannot open the log file; record lost");
            return;
        }
        if let Some(file) = self.file.as_mut() {
            match file.write_all(line.as_bytes()) {
                Ok(()) => {
                    self.size += line.len() as u64;
                    written.inc();
                }
                Err(err) => tracing::warn!(error = %err, "request log: write failed"),
            }
        }
    }

    fn current(&self, day: &str) -> PathBuf {
        self.dir.join(format!("requests-{day}.jsonl"))
    }

    /// Opens today's file, rotating it first when `extra` bytes would pass the limit.
    fn ensure_file(&mut self, day: &str, extra: u64) -> std::io::Result<()> {
        if self.file.is_some() && self.day == day && self.size + extra <= self.max {
            return Ok(());
        }
        if let Some(mut file) = self.file.take() {
            file.flush()?;
        }
        let path = self.current(day);
        let existing = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if existing > 0 && existing + extra > self.max {
            rotate(&self.dir, day, &path)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(BufWriter::new(file));
        self.day = day.to_owned();
        Ok(())
    }
}

/// Renames a full file to the next free `requests-DAY.N.jsonl`.
fn rotate(dir: &Path, day: &str, path: &Path) -> std::io::Result<()> {
    let mut n = 1;
    loop {
        let target = dir.join(format!("requests-{day}.{n}.jsonl"));
        if !target.exists() {
            return std::fs::rename(path, target);
        }
        n += 1;
    }
}

fn render(e: &Entry, ts: String) -> Value {
    let mut v = json!({
        "ts": ts,
        "request_id": e.request_id,
        "method": e.method.as_str(),
        "path": e.path,
        "model": e.model,
        "served_model": e.served_model,
        "target": e.target,
        "attempts": e.attempts,
        "status": e.status,
        "outcome": e.outcome,
        "duration_ms": round2(e.duration_ms),
        "ttft_ms": e.ttft_ms.map(round2),
        "usage": e.usage.map(|u| {
            let mut usage = json!({
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "total_tokens": u.total_tokens,
            });
            if e.usage_estimated {
                usage["estimated"] = json!(true);
            }
            usage
        }),
        "cost_usd": e.cost_usd,
        "error": e.error,
        "bytes": e.bytes,
    });
    if let Some(cache) = e.cache {
        v["cache"] = json!(cache);
    }
    if !e.resumes.is_empty() {
        v["resumes"] = e
            .resumes
            .iter()
            .map(|r| json!({"after": r.after, "target": r.target, "ms": round2(r.ms)}))
            .collect();
    }
    if let Some(key) = &e.key {
        v["key"] = json!(key);
        if let Some(labels) = e.key_labels.as_deref().filter(|l| !l.is_empty()) {
            let labels: serde_json::Map<String, Value> = labels
                .iter()
                .map(|(name, value)| (name.clone(), json!(value)))
                .collect();
            v["key_labels"] = Value::Object(labels);
        }
    }
    if let Some(body) = &e.request_body {
        // Re-serialised compactly so a pretty-printed body stays on one line.
        v["request"] = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    }
    if let Some(content) = &e.response_content {
        // A JSON answer is embedded as JSON; streamed text as a string.
        v["response"] = serde_json::from_str::<Value>(content)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::String(content.clone()));
    }
    v
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The last instant `humantime` formats: 9999-12-31T23:59:59.999999999Z.
const LAST_FORMATTABLE_SECS: u64 = 253_402_300_799;

/// `at`, brought within the years an RFC 3339 timestamp can show (1970 to
/// 9999; `humantime` panics before the epoch and fails after 9999). A clock
/// set before the epoch reads as the epoch, one past 9999 as its last instant.
pub(crate) fn rfc3339_range(at: SystemTime) -> SystemTime {
    let last = SystemTime::UNIX_EPOCH + Duration::new(LAST_FORMATTABLE_SECS, 999_999_999);
    at.clamp(SystemTime::UNIX_EPOCH, last)
}

/// `(YYYY-MM-DD, RFC 3339 timestamp with milliseconds)` in UTC.
pub fn utc(at: SystemTime) -> (String, String) {
    let ts = humantime::format_rfc3339_millis(rfc3339_range(at)).to_string();
    (ts[..10].to_owned(), ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_dates() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_392_067_123);
        assert_eq!(
            utc(at),
            (
                "2026-11-23".to_owned(),
                "2026-11-23T00:01:07.123Z".to_owned()
            )
        );
        assert_eq!(utc(SystemTime::UNIX_EPOCH).1, "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc(leap).0, "2000-02-29");
    }

    fn counter() -> IntCounter {
        IntCounter::new("x", "x").unwrap()
    }

    fn entry(i: usize) -> Entry {
        Entry {
            at: Some(SystemTime::now()),
            request_id: format!("req_{i}"),
            method: http::Method::POST,
            path: "/v1/chat/completions".into(),
            model: Some("demo".into()),
            status: 200,
            outcome: "completed",
            usage: Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7,
            }),
            ..Entry::default()
        }
    }

    #[test]
    fn writes_one_json_line_per_record_and_rotates_by_size() {
        let dir = std::env::temp_dir().join(format!("switchyard-reqlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let written = counter();
        let log = RequestLog::start(
            RequestLogConfig {
                dir: dir.clone(),
                max_file_bytes: 2000,
                include_content: false,
                queue: 1000,
            },
            written.clone(),
            counter(),
        )
        .unwrap();
        for i in 0..40 {
            log.submit(entry(i));
        }
        drop(log);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while written.get() < 40 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 3, "rotated into several files: {files:?}");
        let mut ids = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(
                text.len() as u64 <= 2000,
                "{} is over the limit",
                file.display()
            );
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["usage"]["total_tokens"], 7);
                ids.push(v["request_id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ids.len(), 40);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let dir =
            std::env::temp_dir().join(format!("switchyard-reqlog-full-{}", std::process::id()));
        let dropped = counter();
        let log = RequestLog::start(
            RequestLogConfig {
                dir: dir.clone(),
                max_file_bytes: 1 << 20,
                include_content: false,
                queue: 1,
            },
            counter(),
            dropped.clone(),
        )
        .unwrap();
        for i in 0..10_000 {
            log.submit(entry(i));
        }
        assert!(dropped.get() > 0);
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
