//! Prometheus metrics: the registry, `/metrics`, and handles resolved once
//! per table.
//!
//! Label values come from the config (model, target, upstream names) and
//! from small fixed sets (status class, outcome, error kind, token type), so
//! cardinality is bounded by the config, never by requests: a model name a
//! client made up is counted under `model="(unknown)"`. Handles
//! (`with_label_values`) are resolved when a table compiles; the request
//! path only increments atomics. Every metric is documented in
//! `docs/metrics.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{
    Counter, CounterVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets for request duration and time to first token, in seconds: from
/// 5 ms (a cached or mock answer) to over ten minutes (a long local generation).
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0,
    640.0,
];
/// Buckets for Switchyard's own overhead, in microseconds: tens of µs is the
/// expected range; milliseconds would mean something is wrong.
pub const OVERHEAD_BUCKETS: [f64; 13] = [
    10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0, 25_000.0, 50_000.0,
    100_000.0,
];

/// How a request ended, as counted.
pub const OUTCOMES: [&str; 3] = ["completed", "client_cancelled", "upstream_error"];
/// Status classes, indexed by `status / 100 - 1`.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Kinds of upstream error (attempt failures before commit, stream failures after).
pub const ERROR_KINDS: [&str; 11] = [
    "connect",
    "first_byte_timeout",
    "first_token_timeout",
    "transport",
    "error_event",
    "empty_stream",
    "status",
    "not_configured",
    "stream_interrupted",
    "idle_timeout",
    "total_timeout",
];
/// Results of `switchyard_key_requests_total`.
pub const KEY_RESULTS: [&str; 5] = [
    "admitted",
    "rate_limited",
    "quota_exceeded",
    "model_not_allowed",
    "expired",
];
/// Label used when a request named no model this router serves.
pub const UNKNOWN_MODEL: &str = "(unknown)";
/// Label used for the target of a request that no target answered.
pub const NO_TARGET: &str = "(none)";
/// The `target` label of answers replayed from the response cache.
pub const CACHE_TARGET: &str = "(cache)";

/// The process's metrics. One per server; shared by every table.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    attempts: IntCounterVec,
    fallbacks: IntCounterVec,
    resumes: IntCounterVec,
    cache_lookups: IntCounterVec,
    /// Redis (`state.redis`) answered its last operation: 1, else 0.
    pub redis_up: IntGauge,
    /// Redis operations that failed, by operation.
    pub redis_errors: IntCounterVec,
    /// Entries in the response cache.
    pub cache_entries: IntGauge,
    /// Bytes the response cache holds.
    pub cache_bytes: IntGauge,
    duration: HistogramVec,
    ttft: HistogramVec,
    overhead: HistogramVec,
    in_flight: IntGaugeVec,
    upstream_errors: IntCounterVec,
    circuit: IntGaugeVec,
    tokens: IntCounterVec,
    cost: CounterVec,
    /// Generation of the table being served.
    pub config_generation: IntGauge,
    /// Reloads by result (`success`, `failure`).
    pub config_reloads: IntCounterVec,
    /// Request log records written.
    pub request_log_written: IntCounter,
    /// Request log records dropped because the writer fell behind.
    pub request_log_dropped: IntCounter,
    /// Model requests through OpenAI's door (`/v1/chat/completions`, …).
    pub door_openai: IntCounter,
    /// Model requests through Anthropic's door (`/v1/messages…`).
    pub door_anthropic: IntCounter,
    /// Model requests by router key name and result (`KEY_RESULTS`).
    pub key_requests: IntCounterVec,
    /// Client connections.
    pub connections: Arc<ConnectionMetrics>,
    /// How many live handles use each labelled series (see [`Lease`]).
    book: Arc<Mutex<HashMap<SeriesKey, usize>>>,
}

/// One labelled series of one family.
type SeriesKey = (&'static str, Vec<String>);

/// A labelled metric family whose series can be removed.
#[derive(Clone)]
enum Family {
    Counter(IntCounterVec),
    Float(CounterVec),
    Histogram(HistogramVec),
    Gauge(IntGaugeVec),
}

impl Family {
    fn remove(&self, labels: &[&str]) {
        let _ = match self {
            Family::Counter(v) => v.remove_label_values(labels),
            Family::Float(v) => v.remove_label_values(labels),
            Family::Histogram(v) => v.remove_label_values(labels),
            Family::Gauge(v) => v.remove_label_values(labels),
        };
    }
}

/// The series a set of handles (one model's, target's or upstream's, as
/// compiled into one table) uses. Tables that keep a model share its series;
/// when the last handle using a series is dropped (the table that had it
/// was replaced and its last request ended), the series leaves `/metrics`,
/// so renamed or removed models and targets do not pile up across reloads.
pub struct Lease {
    book: Arc<Mutex<HashMap<SeriesKey, usize>>>,
    series: Mutex<Vec<(Family, &'static str, Vec<String>)>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Ok(mut book) = self.book.lock() else {
            return;
        };
        let series = std::mem::take(self.series.get_mut().unwrap_or_else(|e| e.into_inner()));
        for (family, id, labels) in series {
            let key = (id, labels);
            let Some(count) = book.get_mut(&key) else {
                continue;
            };
            *count -= 1;
            if *count == 0 {
                let labels: Vec<&str> = key.1.iter().map(String::as_str).collect();
                family.remove(&labels);
                book.remove(&key);
            }
        }
    }
}

impl Lease {
    fn new(book: &Arc<Mutex<HashMap<SeriesKey, usize>>>) -> Lease {
        Lease {
            book: book.clone(),
            series: Mutex::new(Vec::new()),
        }
    }

    /// Registers a use of one series and returns its handle. The book stays
    /// locked while the series is looked up, so a series is never removed
    /// between its lookup and its registration.
    fn take<T>(
        &self,
        family: Family,
        id: &'static str,
        labels: &[&str],
        get: impl FnOnce() -> T,
    ) -> T {
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        let owned: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        *book.entry((id, owned.clone())).or_insert(0) += 1;
        let handle = get();
        drop(book);
        self.series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((family, id, owned));
        handle
    }

    fn counter(&self, vec: &IntCounterVec, id: &'static str, labels: &[&str]) -> IntCounter {
        self.take(Family::Counter(vec.clone()), id, labels, || {
            vec.with_label_values(labels)
        })
    }

    fn float(&self, vec: &CounterVec, id: &'static str, labels: &[&str]) -> Counter {
        self.take(Family::Float(vec.clone()), id, labels, || {
            vec.with_label_values(labels)
        })
    }

    fn histogram(&self, vec: &HistogramVec, id: &'static str, labels: &[&str]) -> Histogram {
        self.take(Family::Histogram(vec.clone()), id, labels, || {
            vec.with_label_values(labels)
        })
    }

    fn gauge(&self, vec: &IntGaugeVec, id: &'static str, labels: &[&str]) -> IntGauge {
        self.take(Family::Gauge(vec.clone()), id, labels, || {
            vec.with_label_values(labels)
        })
    }
}

/// A counter of a group whose series are made on first use: most of a
/// target's status × outcome and error-kind series never happen, and each
/// one made costs about a kilobyte and a few microseconds per compile.
struct LazyCounter(std::sync::OnceLock<IntCounter>);

impl LazyCounter {
    fn new() -> Self {
        LazyCounter(std::sync::OnceLock::new())
    }

    fn get(&self, make: impl FnOnce() -> IntCounter) -> &IntCounter {
        self.0.get_or_init(make)
    }
}

/// Client connections: open now, and why the router closed some.
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: IntGauge,
    /// Times the accept loop waited because `server.max_connections` were open.
    pub at_limit: IntCounter,
    /// Closed: no complete request head within `server.header_timeout`.
    pub closed_header_timeout: IntCounter,
    /// Closed: idle for `server.keepalive_timeout`.
    pub closed_keepalive_timeout: IntCounter,
    /// Closed: the client accepted no data for `server.send_timeout`.
    pub closed_send_timeout: IntCounter,
    /// Closed: the TLS handshake failed (`server.tls`).
    pub closed_tls_handshake: IntCounter,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: T,
) -> T {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique and valid");
    collector
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(
        registry,
        HistogramVec::new(opts, labels).expect("valid metric"),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let build = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "switchyard_build_info",
                    "Always 1; labels say which build is running.",
                ),
                &["version", "git_sha"],
            )
            .expect("valid metric"),
        );
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("SWITCHYARD_GIT_SHA")])
            .set(1);
        let doors = counter_vec(
            &r,
            "switchyard_door_requests_total",
            "Model requests by the API they came in through (openai, anthropic).",
            &["door"],
        );
        let metrics = Metrics {
            requests: counter_vec(&r, "switchyard_requests_total", "Requests by model, serving target, status class and outcome.", &["model", "target", "status_class", "outcome"]),
            attempts: counter_vec(&r, "switchyard_attempts_total", "Upstream attempts by model, target and result (ok or an error kind).", &["model", "target", "result"]),
            fallbacks: counter_vec(&r, "switchyard_fallbacks_total", "Requests answered by a fallback model instead of the model asked for.", &["model", "served_by"]),
            cache_lookups: counter_vec(&r, "switchyard_cache_lookups_total", "Response-cache lookups of models with `cache` on, by model and result (hit, miss; requests that said Cache-Control: no-cache or no-store count as bypass).", &["model", "result"]),
            redis_up: register(&r, IntGauge::new("switchyard_redis_up", "1 while Redis (state.redis) answers, 0 after an operation failed until one succeeds again; 1 when no Redis is configured.").expect("valid metric")),
            redis_errors: counter_vec(&r, "switchyard_redis_errors_total", "Redis operations that failed or timed out, by operation (admit, settle, spend, cache_get, cache_put).", &["op"]),
            cache_entries: register(&r, IntGauge::new("switchyard_cache_entries", "Answers held in the response cache now.").expect("valid metric")),
            cache_bytes: register(&r, IntGauge::new("switchyard_cache_bytes", "Bytes of answers held in the response cache now (bounded by cache.max_bytes).").expect("valid metric")),
            resumes: counter_vec(&r, "switchyard_stream_resumes_total", "Streams that broke after their first token and were continued on another target (resumed), or could not be (failed), by model asked for.", &["model", "outcome"]),
            duration: histogram_vec(&r, "switchyard_request_duration_seconds", "Time from request arrival to the last byte of the answer.", &["model", "target"], &LATENCY_BUCKETS),
            ttft: histogram_vec(&r, "switchyard_time_to_first_token_seconds", "Time from request arrival to the response headers, sent at the commit point (first token of a stream; whole answer otherwise).", &["model", "target"], &LATENCY_BUCKETS),
            overhead: histogram_vec(&r, "switchyard_overhead_microseconds", "Time Switchyard itself spent on a request outside upstream waits: before the first upstream send, and from the commit to the response headers.", &["model"], &OVERHEAD_BUCKETS),
            in_flight: register(&r, IntGaugeVec::new(Opts::new("switchyard_in_flight_requests", "Requests being served now, by model asked for."), &["model"]).expect("valid metric")),
            upstream_errors: counter_vec(&r, "switchyard_upstream_errors_total", "Upstream failures by upstream and kind.", &["upstream", "kind"]),
            circuit: register(&r, IntGaugeVec::new(Opts::new("switchyard_circuit_state", "Circuit breaker per target: 0 closed, 1 half-open, 2 open."), &["model", "target"]).expect("valid metric")),
            tokens: counter_vec(&r, "switchyard_tokens_total", "Tokens reported by upstreams in `usage`, by type (prompt, completion).", &["model", "target", "type"]),
            cost: register(&r, CounterVec::new(Opts::new("switchyard_cost_usd_total", "Estimated cost in US dollars from `models.<name>.pricing` and reported usage."), &["model", "target"]).expect("valid metric")),
            config_generation: register(&r, IntGauge::new("switchyard_config_generation", "Generation of the config being served (1 at start, +1 per successful reload).").expect("valid metric")),
            config_reloads: counter_vec(&r, "switchyard_config_reloads_total", "Config reloads by result (success, failure).", &["result"]),
            request_log_written: register(&r, IntCounter::new("switchyard_request_log_written_total", "Request log records written to disk.").expect("valid metric")),
            request_log_dropped: register(&r, IntCounter::new("switchyard_request_log_dropped_total", "Request log records dropped because the writer fell behind (traffic never waits for the log).").expect("valid metric")),
            door_openai: doors.with_label_values(&["openai"]),
            door_anthropic: doors.with_label_values(&["anthropic"]),
            key_requests: counter_vec(&r, "switchyard_key_requests_total", "Model requests by router key (its name in `keys:`, never the key; labels are not metric labels) and result (admitted, rate_limited, quota_exceeded, model_not_allowed, expired).", &["key", "result"]),
            connections: {
                let closed = counter_vec(&r, "switchyard_connections_closed_total", "Client connections the router closed, by reason (header_timeout, keepalive_timeout, send_timeout, tls_handshake).", &["reason"]);
                Arc::new(ConnectionMetrics {
                    open: register(&r, IntGauge::new("switchyard_connections_open", "Client connections open now.").expect("valid metric")),
                    at_limit: register(&r, IntCounter::new("switchyard_connections_at_limit_total", "Times a new connection waited in the listen backlog because server.max_connections were open.").expect("valid metric")),
                    closed_header_timeout: closed.with_label_values(&["header_timeout"]),
                    closed_keepalive_timeout: closed.with_label_values(&["keepalive_timeout"]),
                    closed_send_timeout: closed.with_label_values(&["send_timeout"]),
                    closed_tls_handshake: closed.with_label_values(&["tls_handshake"]),
                })
            },
            book: Arc::default(),
            registry: r,
        };
        metrics.redis_up.set(1);
        for op in ["admit", "settle", "spend", "cache_get", "cache_put"] {
            metrics.redis_errors.with_label_values(&[op]);
        }
        // Both results exist from the start, so `increase()` sees the first failure.
        for result in ["success", "failure"] {
            metrics.config_reloads.with_label_values(&[result]);
        }
        metrics
    }

    /// `switchyard_key_requests_total` of key `name`, one per result of
    /// [`KEY_RESULTS`], in that order.
    pub fn key_counters(&self, name: &str) -> Arc<[IntCounter]> {
        KEY_RESULTS
            .iter()
            .map(|result| self.key_requests.with_label_values(&[name, result]))
            .collect()
    }

    /// Handles for one model, which may be answered by `fallbacks`.
    pub fn model(&self, model: &str, fallbacks: &[&str]) -> Arc<ModelMetrics> {
        let lease = Lease::new(&self.book);
        let in_flight = lease.gauge(&self.in_flight, "in_flight", &[model]);
        let overhead = lease.histogram(&self.overhead, "overhead", &[model]);
        let fallbacks = fallbacks
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    lease.counter(&self.fallbacks, "fallbacks", &[model, f]),
                )
            })
            .collect();
        let resumed = lease.counter(&self.resumes, "resumes", &[model, "resumed"]);
        let resume_failed = lease.counter(&self.resumes, "resumes", &[model, "failed"]);
        Arc::new(ModelMetrics {
            in_flight,
            overhead,
            resumed,
            resume_failed,
            cached: RequestCounters::new(self, model, CACHE_TARGET),
            cache_lookups: std::array::from_fn(|_| LazyCounter::new()),
            cache_vec: self.cache_lookups.clone(),
            name: model.to_owned(),
            unserved: RequestCounters::new(self, model, NO_TARGET),
            fallbacks,
            _lease: lease,
        })
    }

    /// Handles for requests that named no model this router serves.
    pub fn unknown_model(&self) -> Arc<ModelMetrics> {
        self.model(UNKNOWN_MODEL, &[])
    }

    /// Sets every target's circuit gauge (at scrape time) from `(model,
    /// target, gauge value)` triples: those of the current table.
    pub fn set_circuits<'a>(&self, circuits: impl IntoIterator<Item = (&'a str, &'a str, i64)>) {
        // Rebuilt from the current table each scrape, so a target removed
        // by a reload stops being reported.
        self.circuit.reset();
        for (model, target, value) in circuits {
            self.circuit.with_label_values(&[model, target]).set(value);
        }
    }

    /// Handles for one target of `model`.
    pub fn target(
        &self,
        model: &str,
        target: &str,
        pricing: Option<Pricing>,
    ) -> Arc<TargetMetrics> {
        let lease = Lease::new(&self.book);
        let attempts_ok = lease.counter(&self.attempts, "attempts", &[model, target, "ok"]);
        let duration = lease.histogram(&self.duration, "duration", &[model, target]);
        let ttft = lease.histogram(&self.ttft, "ttft", &[model, target]);
        let prompt_tokens = lease.counter(&self.tokens, "tokens", &[model, target, "prompt"]);
        let completion_tokens =
            lease.counter(&self.tokens, "tokens", &[model, target, "completion"]);
        let cost = lease.float(&self.cost, "cost", &[model, target]);
        Arc::new(TargetMetrics {
            requests: RequestCounters::new(self, model, target),
            attempts_ok,
            attempt_errors: ErrorCounters::new(&self.attempts, "attempts", &[model, target], lease),
            duration,
            ttft,
            prompt_tokens,
            completion_tokens,
            cost,
            pricing,
        })
    }

    /// Handles for one upstream.
    pub fn upstream(&self, upstream: &str) -> Arc<UpstreamMetrics> {
        let errors = ErrorCounters::new(
            &self.upstream_errors,
            "upstream_errors",
            &[upstream],
            Lease::new(&self.book),
        );
        // One series from the start, so the family is exported before any error.
        errors.get(0);
        Arc::new(UpstreamMetrics { errors })
    }

    /// Every metric family, for summaries such as `/stats`.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|err| format!("# error encoding metrics: {err}\n"))
    }
}

/// `models.<name>.pricing`: US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    /// Per million prompt (input) tokens.
    pub input_per_million: f64,
    /// Per million completion (output) tokens.
    pub output_per_million: f64,
}

impl Pricing {
    /// The cost of `prompt` + `completion` tokens.
    pub fn cost(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.input_per_million + completion as f64 * self.output_per_million) / 1e6
    }
}

/// `switchyard_requests_total` for one (model, target): a series per status
/// class × outcome, made on first use (`2xx`/`completed` from the start, so
/// the family is exported before any traffic).
pub struct RequestCounters {
    vec: IntCounterVec,
    labels: [String; 2],
    cells: [[LazyCounter; 3]; 5],
    lease: Lease,
}

impl RequestCounters {
    fn new(metrics: &Metrics, model: &str, target: &str) -> RequestCounters {
        let counters = RequestCounters {
            vec: metrics.requests.clone(),
            labels: [model.to_owned(), target.to_owned()],
            cells: std::array::from_fn(|_| std::array::from_fn(|_| LazyCounter::new())),
            lease: Lease::new(&metrics.book),
        };
        if target != NO_TARGET && target != CACHE_TARGET {
            counters.cell(1, 0);
        }
        counters
    }

    fn cell(&self, class: usize, outcome: usize) -> &IntCounter {
        self.cells[class][outcome].get(|| {
            let [model, target] = &self.labels;
            self.lease.counter(
                &self.vec,
                "requests",
                &[model, target, STATUS_CLASSES[class], OUTCOMES[outcome]],
            )
        })
    }

    /// Counts one request.
    pub fn count(&self, status: u16, outcome: &str) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        let outcome = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.cell(class, outcome).inc();
    }
}

/// A counter per error kind ([`ERROR_KINDS`]) under fixed leading labels,
/// each made on first use.
struct ErrorCounters {
    vec: IntCounterVec,
    id: &'static str,
    labels: Vec<String>,
    cells: [LazyCounter; ERROR_KINDS.len()],
    lease: Lease,
}

impl ErrorCounters {
    fn new(vec: &IntCounterVec, id: &'static str, labels: &[&str], lease: Lease) -> ErrorCounters {
        ErrorCounters {
            vec: vec.clone(),
            id,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            cells: std::array::from_fn(|_| LazyCounter::new()),
            lease,
        }
    }

    fn get(&self, kind: usize) -> &IntCounter {
        self.cells[kind].get(|| {
            let mut labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            labels.push(ERROR_KINDS[kind]);
            self.lease.counter(&self.vec, self.id, &labels)
        })
    }
}

/// Per-model handles.
pub struct ModelMetrics {
    /// Requests in flight.
    pub in_flight: IntGauge,
    /// Switchyard's own time per request.
    pub overhead: Histogram,
    /// Requests that no target answered (router errors).
    pub unserved: RequestCounters,
    fallbacks: Vec<(String, IntCounter)>,
    resumed: IntCounter,
    resume_failed: IntCounter,
    /// Requests answered from the response cache (`target="(cache)"`).
    pub cached: RequestCounters,
    cache_lookups: [LazyCounter; 3],
    cache_vec: IntCounterVec,
    name: String,
    _lease: Lease,
}

impl ModelMetrics {
    /// Counts a response-cache lookup: `hit`, `miss` or `bypass`.
    pub fn cache_lookup(&self, result: &'static str) {
        let i = match result {
            "hit" => 0,
            "miss" => 1,
            _ => 2,
        };
        self.cache_lookups[i]
            .get(|| {
                self._lease
                    .counter(&self.cache_vec, "cache_lookups", &[&self.name, result])
            })
            .inc();
    }

    /// Counts a stream that broke after its first token: `true` when it
    /// was continued on another target.
    pub fn resume(&self, resumed: bool) {
        if resumed {
            self.resumed.inc();
        } else {
            self.resume_failed.inc();
        }
    }

    /// Counts an answer from fallback model `served_by`.
    pub fn fallback(&self, served_by: &str) {
        if let Some((_, counter)) = self.fallbacks.iter().find(|(name, _)| name == served_by) {
            counter.inc();
        }
    }
}

/// Per-target handles.
pub struct TargetMetrics {
    /// Requests this target answered.
    pub requests: RequestCounters,
    attempts_ok: IntCounter,
    /// Holds the lease of the target's eager series too.
    attempt_errors: ErrorCounters,
    /// Request duration.
    pub duration: Histogram,
    /// Time to first token (response headers).
    pub ttft: Histogram,

    prompt_tokens: IntCounter,
    completion_tokens: IntCounter,
    cost: Counter,
    pricing: Option<Pricing>,
}

impl TargetMetrics {
    /// Counts an attempt: `None` for success, else the error kind.
    pub fn attempt(&self, error: Option<&str>) {
        match error.and_then(|kind| ERROR_KINDS.iter().position(|k| *k == kind)) {
            Some(i) => self.attempt_errors.get(i).inc(),
            None if error.is_none() => self.attempts_ok.inc(),
            None => {}
        }
    }

    /// Adds reported usage and its cost; returns the cost when priced.
    pub fn usage(&self, prompt: u64, completion: u64) -> Option<f64> {
        self.prompt_tokens.inc_by(prompt);
        self.completion_tokens.inc_by(completion);
        let cost = self.pricing.map(|p| p.cost(prompt, completion))?;
        self.cost.inc_by(cost);
        Some(cost)
    }
}

/// Per-upstream handles.
pub struct UpstreamMetrics {
    errors: ErrorCounters,
}

impl UpstreamMetrics {
    /// Counts an error of `kind` (one of [`ERROR_KINDS`]; others are ignored).
    pub fn error(&self, kind: &str) {
        if let Some(i) = ERROR_KINDS.iter().position(|k| *k == kind) {
            self.errors.get(i).inc();
        }
    }
}
