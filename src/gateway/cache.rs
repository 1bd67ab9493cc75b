//! The response cache on the request path (`models.<name>.cache`): a hit
//! is answered here without an upstream call; a miss is forwarded and its
//! answer kept when it ends complete.
//!
//! `Cache-Control: no-cache` on the request skips the lookup (the fresh
//! answer is still kept); `no-store` skips the cache altogether. Hits say
//! `x-switchyard-cache: hit`; looked-up misses `miss`.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Response};

use crate::cache::{self, Cache, Form, Key, Replay, Sink};
use crate::forward::body::ResponseBody;
use crate::json::Inspected;
use crate::providers::Endpoint;
use crate::routing::{Model, Table};
use crate::shared::Redis;
use crate::telemetry::access_log::AccessRecord;

/// `x-switchyard-cache`.
pub(super) const X_CACHE: http::HeaderName = http::HeaderName::from_static("x-switchyard-cache");

/// A request the cache takes part in.
pub(super) struct Lookup {
    cache: Arc<Cache>,
    key: Key,
    ttl: Duration,
    /// Look it up (not with `no-cache`).
    read: bool,
    stream: bool,
    include_usage: bool,
    max_entry_bytes: usize,
    /// `cache.shared`: the Redis tier.
    shared: Option<Arc<Redis>>,
}

/// The cache's part in this request: `None` when the model is not cached,
/// the endpoint has no cacheable answers, or the request said `no-store`.
pub(super) fn lookup(
    table: &Table,
    model: &Model,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
    inspected: &Inspected,
    include_usage: impl FnOnce() -> bool,
) -> Option<Lookup> {
    let ttl = model.cache_ttl?;
    let cache = table.cache.clone()?;
    if !matches!(
        endpoint,
        Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings
    ) {
        return None;
    }
    let directives = |d: &str| {
        headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(d))
    };
    if directives("no-store") {
        return None;
    }
    let path = format!("/v1{}", endpoint.suffix());
    let key = cache::key(&path, &model.name, body)?;
    Some(Lookup {
        cache,
        key,
        ttl,
        read: !directives("no-cache"),
        stream: inspected.stream == Some(true),
        include_usage: include_usage(),
        max_entry_bytes: table.cache_max_entry_bytes,
        shared: table.redis.clone().filter(|_| table.cache_shared),
    })
}

impl Lookup {
    /// The cached answer, if there is one for this request: this replica's,
    /// or (with `cache.shared`) one another replica kept in Redis.
    pub(super) async fn hit(&self, record: &mut AccessRecord) -> Option<Response<ResponseBody>> {
        let metrics = record.model_metrics().cloned();
        if !self.read {
            record.entry.cache = Some("bypass");
            if let Some(m) = &metrics {
                m.cache_lookup("bypass");
            }
            return None;
        }
        let mut found = self
            .cache
            .get(&self.key)
            .and_then(|entry| cache::replay(&entry, self.stream, self.include_usage));
        if let (None, Some(redis)) = (&found, &self.shared) {
            // A Redis that is away is a miss, never an error.
            if let Ok(Some(entry)) = redis.cache_get(&self.key).await {
                found = cache::replay(&entry, self.stream, self.include_usage);
                if found.is_some() {
                    let copy = entry.clone();
                    self.cache.put(self.key, self.ttl, move |e| *e = copy);
                }
            }
        }
        let result = if found.is_some() { "hit" } else { "miss" };
        record.entry.cache = Some(result);
        if let Some(m) = &metrics {
            m.cache_lookup(result);
        }
        let (content_type, bytes) = match found? {
            Replay::Json(bytes) => ("application/json", bytes),
            Replay::Sse(bytes) => ("text/event-stream", bytes),
        };
        let mut response = Response::new(ResponseBody::full(bytes));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(X_CACHE, HeaderValue::from_static("hit"));
        if self.stream {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        record.entry.attempts = 0;
        Some(response)
    }

    /// Keeps `response` (a `200` in the form asked for) when it ends
    /// complete, and marks it `x-switchyard-cache: miss`.
    pub(super) fn store(self, response: &mut Response<ResponseBody>) {
        let sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let value = if self.read { "miss" } else { "bypass" };
        response
            .headers_mut()
            .insert(X_CACHE, HeaderValue::from_static(value));
        if response.status() != http::StatusCode::OK || sse != self.stream {
            return;
        }
        let form = if sse {
            Form::Sse {
                with_usage: self.include_usage,
            }
        } else {
            Form::Json
        };
        let mut sink = Sink::new(self.cache, self.key, self.ttl, form, self.max_entry_bytes);
        if let Some(redis) = self.shared {
            sink = sink.share(Box::new(move |key, entry, ttl| {
                // The client has its answer; the copy goes to Redis after.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = redis.cache_put(&key, &entry, ttl).await;
                    });
                }
            }));
        }
        response.body_mut().cache_into(sink);
    }
}
