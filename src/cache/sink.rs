//! Collects an answer as it goes to the client, and stores it when it
//! ended complete.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Cache, Entry, Key};
use crate::openai::{self, ChunkKind};
use crate::sse::SseScanner;

/// The form of the answer being collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A JSON answer.
    Json,
    /// An SSE stream; `with_usage` when the client asked for usage.
    Sse {
        /// The stream carries a usage chunk.
        with_usage: bool,
    },
}

/// An answer on its way to the client, kept (refcounted, not copied) up
/// to `max` bytes.
pub struct Sink {
    cache: Arc<Cache>,
    key: Key,
    ttl: Duration,
    form: Form,
    chunks: Vec<Bytes>,
    len: usize,
    max: usize,
    /// Told of the entry once kept (the shared tier copies it to Redis).
    shared: Option<Shared>,
}

/// What a kept entry is also handed to: `(key, entry, ttl)`.
pub type Shared = Box<dyn FnOnce(Key, Entry, Duration) + Send + Sync>;

impl Sink {
    /// Collects an answer for `key`, to keep for `ttl` if it is at most
    /// `max` bytes.
    pub fn new(cache: Arc<Cache>, key: Key, ttl: Duration, form: Form, max: usize) -> Sink {
        Sink {
            cache,
            key,
            ttl,
            form,
            chunks: Vec::new(),
            len: 0,
            max,
            shared: None,
        }
    }

    /// Also hands the kept entry to `shared`.
    pub fn share(mut self, shared: Shared) -> Sink {
        self.shared = Some(shared);
        self
    }

    /// One more piece of the answer.
    pub fn push(&mut self, data: &Bytes) {
        if self.len > self.max {
            return;
        }
        self.len += data.len();
        if self.len > self.max {
            self.chunks = Vec::new();
        } else {
            self.chunks.push(data.clone());
        }
    }

    /// The answer ended (the client got all of it): stored if it is whole
    /// — a JSON answer with no `error`, a stream that ends with `[DONE]` and
    /// has no error event.
    pub fn finish(self) {
        if self.len > self.max || self.chunks.is_empty() {
            return;
        }
        let bytes = match self.chunks.as_slice() {
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        };
        let whole = match self.form {
            Form::Json => whole_json(&bytes),
            Form::Sse { .. } => whole_stream(&bytes),
        };
        if !whole {
            return;
        }
        let form = self.form;
        let kept = self.cache.put(self.key, self.ttl, |entry| match form {
            Form::Json => entry.json = Some(bytes),
            Form::Sse { with_usage } => entry.sse = Some((bytes, with_usage)),
        });
        if let (Some(entry), Some(shared)) = (kept, self.shared) {
            shared(self.key, entry, self.ttl);
        }
    }
}

fn whole_json(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(answer)) => {
            !answer.contains_key("error")
                && (answer.contains_key("choices") || answer.contains_key("data"))
        }
        _ => false,
    }
}

fn whole_stream(bytes: &Bytes) -> bool {
    let mut scanner = SseScanner::new();
    let mut done = false;
    let mut error = false;
    let fed = scanner.feed(bytes, |event| match openai::classify(&event) {
        ChunkKind::Done => done = true,
        ChunkKind::Error => error = true,
        _ => {}
    });
    fed.is_ok() && scanner.pending() == 0 && done && !error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(cache: &Arc<Cache>, form: Form) -> Sink {
        Sink::new(cache.clone(), [7; 32], Duration::from_secs(60), form, 1024)
    }

    #[test]
    fn only_whole_answers_are_kept() {
        let cache = Arc::new(Cache::new(1 << 20));
        let mut s = sink(&cache, Form::Sse { with_usage: false });
        s.push(&Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
        ));
        s.finish();
        assert!(cache.get(&[7; 32]).is_none(), "no [DONE]: cut short");

        let mut s = sink(&cache, Form::Sse { with_usage: false });
        s.push(&Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
        ));
        s.push(&Bytes::from_static(
            b"data: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]\n\n",
        ));
        s.finish();
        assert!(cache.get(&[7; 32]).is_none(), "an error event");

        let mut s = sink(&cache, Form::Json);
        s.push(&Bytes::from_static(b"{\"error\":{\"message\":\"x\"}}"));
        s.finish();
        assert!(cache.get(&[7; 32]).is_none());

        let mut s = sink(&cache, Form::Sse { with_usage: true });
        s.push(&Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
        ));
        s.push(&Bytes::from_static(b"data: [DONE]\n\n"));
        s.finish();
        let entry = cache.get(&[7; 32]).expect("kept");
        assert_eq!(entry.sse.map(|(_, usage)| usage), Some(true));
    }

    #[test]
    fn answers_over_the_entry_limit_are_not_kept() {
        let cache = Arc::new(Cache::new(1 << 20));
        let mut s = sink(&cache, Form::Json);
        s.push(&Bytes::from(format!(
            "{{\"choices\":[],\"pad\":\"{}\"}}",
            "x".repeat(2000)
        )));
        s.finish();
        assert!(cache.get(&[7; 32]).is_none());
    }
}
