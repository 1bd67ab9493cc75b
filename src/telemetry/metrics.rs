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
/// Label used when a request named no model this router serves.
pub const UNKNOWN_MODEL: &str = "(unknown)";
/// Label used for the target of a request that no target answered.
pub const NO_TARGET: &str = "(none)";

/// The process's metrics. One per server; shared by every table.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    attempts: IntCounterVec,
    fallbacks: IntCounterVec,
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
    series: Vec<(Family, &'static str, Vec<String>)>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Ok(mut book) = self.book.lock() else {
            return;
        };
        for (family, id, labels) in self.series.drain(..) {
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

/// Makes handles while holding the book, so a series is never removed
/// between its lookup and its registration.
struct Leasing<'a> {
    book: std::sync::MutexGuard<'a, HashMap<SeriesKey, usize>>,
    lease: Lease,
}

impl Leasing<'_> {
    fn note(&mut self, family: Family, id: &'static str, labels: &[&str]) {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        *self.book.entry((id, labels.clone())).or_insert(0) += 1;
        self.lease.series.push((family, id, labels));
    }

    fn counter(&mut self, vec: &IntCounterVec, id: &'static str, labels: &[&str]) -> IntCounter {
        self.note(Family::Counter(vec.clone()), id, labels);
        vec.with_label_values(labels)
    }

    fn float(&mut self, vec: &CounterVec, id: &'static str, labels: &[&str]) -> Counter {
        self.note(Family::Float(vec.clone()), id, labels);
        vec.with_label_values(labels)
    }

    fn histogram(&mut self, vec: &HistogramVec, id: &'static str, labels: &[&str]) -> Histogram {
        self.note(Family::Histogram(vec.clone()), id, labels);
        vec.with_label_values(labels)
    }

    fn gauge(&mut self, vec: &IntGaugeVec, id: &'static str, labels: &[&str]) -> IntGauge {
        self.note(Family::Gauge(vec.clone()), id, labels);
        vec.with_label_values(labels)
    }

    fn requests(&mut self, vec: &IntCounterVec, model: &str, target: &str) -> RequestCounters {
        RequestCounters(STATUS_CLASSES.map(|class| {
            OUTCOMES.map(|outcome| self.counter(vec, "requests", &[model, target, class, outcome]))
        }))
    }

    fn done(self) -> Lease {
        self.lease
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
        let metrics = Metrics {
            requests: counter_vec(&r, "switchyard_requests_total", "Requests by model, serving target, status class and outcome.", &["model", "target", "status_class", "outcome"]),
            attempts: counter_vec(&r, "switchyard_attempts_total", "Upstream attempts by model, target and result (ok or an error kind).", &["model", "target", "result"]),
            fallbacks: counter_vec(&r, "switchyard_fallbacks_total", "Requests answered by a fallback model instead of the model asked for.", &["model", "served_by"]),
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
        // Both results exist from the start, so `increase()` sees the first failure.
        for result in ["success", "failure"] {
            metrics.config_reloads.with_label_values(&[result]);
        }
        metrics
    }

    fn leasing(&self) -> Leasing<'_> {
        Leasing {
            book: self
                .book
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            lease: Lease {
                book: self.book.clone(),
                series: Vec::new(),
            },
        }
    }

    /// Handles for one model, which may be answered by `fallbacks`.
    pub fn model(&self, model: &str, fallbacks: &[&str]) -> Arc<ModelMetrics> {
        let mut l = self.leasing();
        let in_flight = l.gauge(&self.in_flight, "in_flight", &[model]);
        let overhead = l.histogram(&self.overhead, "overhead", &[model]);
        let unserved = l.requests(&self.requests, model, NO_TARGET);
        let fallbacks = fallbacks
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    l.counter(&self.fallbacks, "fallbacks", &[model, f]),
                )
            })
            .collect();
        Arc::new(ModelMetrics {
            in_flight,
            overhead,
            unserved,
            fallbacks,
            _lease: l.done(),
        })
    }

    /// Handles for requests that named no model this router serves.
    pub fn unknown_model(&self) -> Arc<ModelMetrics> {
        self.model(UNKNOWN_MODEL, &[])
    }

    /// Sets every target's circuit gauge from its runtime state (at scrape time).
    pub fn set_circuits(&self, table: &crate::routing::Table) {
        // Rebuilt from the current table each scrape, so a target removed
        // by a reload stops being reported.
        self.circuit.reset();
        for model in &table.models {
            for target in &model.targets {
                self.circuit
                    .with_label_values(&[&model.name, &target.label])
                    .set(target.state.circuit().as_gauge());
            }
        }
    }

    /// Handles for one target of `model`.
    pub fn target(
        &self,
        model: &str,
        target: &str,
        pricing: Option<Pricing>,
    ) -> Arc<TargetMetrics> {
        let mut l = self.leasing();
        let requests = l.requests(&self.requests, model, target);
        let attempts_ok = l.counter(&self.attempts, "attempts", &[model, target, "ok"]);
        let attempt_errors =
            ERROR_KINDS.map(|kind| l.counter(&self.attempts, "attempts", &[model, target, kind]));
        let duration = l.histogram(&self.duration, "duration", &[model, target]);
        let ttft = l.histogram(&self.ttft, "ttft", &[model, target]);
        let prompt_tokens = l.counter(&self.tokens, "tokens", &[model, target, "prompt"]);
        let completion_tokens = l.counter(&self.tokens, "tokens", &[model, target, "completion"]);
        let cost = l.float(&self.cost, "cost", &[model, target]);
        Arc::new(TargetMetrics {
            requests,
            attempts_ok,
            attempt_errors,
            duration,
            ttft,
            prompt_tokens,
            completion_tokens,
            cost,
            pricing,
            _lease: l.done(),
        })
    }

    /// Handles for one upstream.
    pub fn upstream(&self, upstream: &str) -> Arc<UpstreamMetrics> {
        let mut l = self.leasing();
        let errors = ERROR_KINDS
            .map(|kind| l.counter(&self.upstream_errors, "upstream_errors", &[upstream, kind]));
        Arc::new(UpstreamMetrics {
            errors,
            _lease: l.done(),
        })
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

/// `switchyard_requests_total` for one (model, target), every class × outcome.
pub struct RequestCounters([[IntCounter; 3]; 5]);

impl RequestCounters {
    /// Counts one request.
    pub fn count(&self, status: u16, outcome: &str) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        let outcome = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.0[class][outcome].inc();
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
    _lease: Lease,
}

impl ModelMetrics {
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
    attempt_errors: [IntCounter; ERROR_KINDS.len()],
    /// Request duration.
    pub duration: Histogram,
    /// Time to first token (response headers).
    pub ttft: Histogram,

    prompt_tokens: IntCounter,
    completion_tokens: IntCounter,
    cost: Counter,
    pricing: Option<Pricing>,
    _lease: Lease,
}

impl TargetMetrics {
    /// Counts an attempt: `None` for success, else the error kind.
    pub fn attempt(&self, error: Option<&str>) {
        match error.and_then(|kind| ERROR_KINDS.iter().position(|k| *k == kind)) {
            Some(i) => self.attempt_errors[i].inc(),
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
    errors: [IntCounter; ERROR_KINDS.len()],
    _lease: Lease,
}

impl UpstreamMetrics {
    /// Counts an error of `kind` (one of [`ERROR_KINDS`]; others are ignored).
    pub fn error(&self, kind: &str) {
        if let Some(i) = ERROR_KINDS.iter().position(|k| *k == kind) {
            self.errors[i].inc();
        }
    }
}
