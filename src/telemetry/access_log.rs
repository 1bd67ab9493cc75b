//! One record per request, finished when the response body ends (or is
//! dropped because the client left), so its duration covers the whole
//! stream. Finishing it writes the access-log event and updates the metrics.
//!
//! Never logs a credential or a body: only names, counts and times.

use std::sync::Arc;
use std::time::Instant;

use super::log_line::LogLine;
use super::metrics::{ModelMetrics, TargetMetrics};
use super::request_log::{Entry, RequestLog};
use crate::openai::Usage;

/// What the request holds until its answer ends (a key's parallel slot and
/// token reservation): settled once with the usage and cost observed, then
/// dropped, when the record finishes (the body ended or was dropped).
/// Defined here so the layers below `gateway` carry it without knowing it.
pub trait Settle: Send + Sync {
    /// The answer ended with `usage` (when known) costing `cost_usd` (when
    /// the model has pricing).
    fn settle(&mut self, usage: Option<Usage>, cost_usd: Option<f64>);
}

/// One request being served: its [`Entry`] (what the access-log line and
/// the request-log record say) and what only the access log and the
/// metrics need.
#[derive(Default)]
pub struct AccessRecord {
    /// What is known about the request, for the access log and the request log.
    pub entry: Entry,
    /// When the request arrived.
    pub started: Option<Instant>,
    /// Switchyard's own time, in microseconds.
    pub overhead_us: Option<u64>,
    /// Where the request-log record goes, when the log is on.
    pub sink: Option<Arc<RequestLog>>,
    /// Settled when the record finishes (see [`Settle`]): the key's permit,
    /// the served target's token reservation.
    pub settle: Vec<Box<dyn Settle>>,
    model_metrics: Option<Arc<ModelMetrics>>,
    target_metrics: Option<Arc<TargetMetrics>>,
    finished: bool,
}

impl std::fmt::Debug for AccessRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessRecord")
            .field("request_id", &self.entry.request_id)
            .field("model", &self.entry.model)
            .field("target", &self.entry.target)
            .field("status", &self.entry.status)
            .finish_non_exhaustive()
    }
}

impl AccessRecord {
    /// A record for a request that arrived at `started`.
    pub fn new(
        request_id: String,
        method: http::Method,
        path: String,
        started: Instant,
    ) -> AccessRecord {
        let mut record = AccessRecord::default();
        record.entry = Entry {
            at: Some(std::time::SystemTime::now()),
            request_id,
            method,
            path,
            ..Entry::default()
        };
        record.started = Some(started);
        record
    }

    fn elapsed_ms(&self) -> f64 {
        self.started
            .map_or(0.0, |s| s.elapsed().as_secs_f64() * 1000.0)
    }

    /// Attaches the metrics of the model asked for; counts the request in flight.
    pub fn set_model_metrics(&mut self, metrics: Arc<ModelMetrics>) {
        metrics.in_flight.inc();
        if let Some(previous) = self.model_metrics.replace(metrics) {
            previous.in_flight.dec();
        }
    }

    /// The metrics of the model asked for, once it is known.
    pub fn model_metrics(&self) -> Option<&Arc<ModelMetrics>> {
        self.model_metrics.as_ref()
    }

    /// Attaches the metrics of the target that answered.
    pub fn set_target_metrics(&mut self, metrics: Arc<TargetMetrics>) {
        self.target_metrics = Some(metrics);
    }

    /// Counts body bytes as they pass to the client.
    pub fn observe_bytes(&mut self, n: usize) {
        self.entry.bytes += n as u64;
    }

    /// Finishes the record: updates metrics, writes the access-log event and
    /// hands the entry to the request log. `outcome` is `completed`,
    /// `client_cancelled` or `upstream_error`. Only the first call counts.
    pub fn finish(&mut self, outcome: &'static str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let duration_ms = self.elapsed_ms();
        let entry = &mut self.entry;
        if entry.status == 0 {
            // No response was sent: the client left while we were still
            // working. 499 is the customary "client closed request".
            entry.status = 499;
        }
        entry.outcome = outcome;
        entry.duration_ms = duration_ms;
        if let Some(target) = &self.target_metrics {
            target.requests.count(entry.status, outcome);
            target.duration.observe(duration_ms / 1000.0);
            if let Some(ttft_ms) = entry.ttft_ms {
                target.ttft.observe(ttft_ms / 1000.0);
            }
            if let Some(usage) = entry.usage {
                entry.cost_usd = target.usage(usage.prompt_tokens, usage.completion_tokens);
            }
        }
        if let Some(model) = &self.model_metrics {
            if entry.cache == Some("hit") {
                model.cached.count(entry.status, outcome);
            } else if self.target_metrics.is_none() {
                model.unserved.count(entry.status, outcome);
            }
            if let (Some(asked), Some(served)) = (&entry.model, &entry.served_model) {
                if asked != served {
                    model.fallback(served);
                }
            }
            if let Some(us) = self.overhead_us {
                model.overhead.observe(us as f64);
            }
            model.in_flight.dec();
        }
        for mut hold in std::mem::take(&mut self.settle) {
            hold.settle(entry.usage, entry.cost_usd);
        }
        self.write_access_line(outcome, duration_ms);
        if let Some(sink) = self.sink.take() {
            // Moved, not copied: the record is finished.
            sink.submit(std::mem::take(&mut self.entry));
        }
    }

    /// The access-log event, when `switchyard::access` logs at INFO.
    fn write_access_line(&self, outcome: &'static str, duration_ms: f64) {
        if !tracing::enabled!(target: "switchyard::access", tracing::Level::INFO) {
            return;
        }
        let e = &self.entry;
        let usage = e.usage.unwrap_or_default();
        if let Some(json) = super::logging::direct() {
            self.log_line(outcome, duration_ms, usage, json).write();
            return;
        }
        tracing::info!(
            target: "switchyard::access",
            request_id = %e.request_id,
            method = %e.method,
            path = %e.path,
            model = e.model.as_deref().unwrap_or("-"),
            target = e.target.as_deref().unwrap_or("-"),
            attempts = e.attempts,
            status = e.status,
            outcome,
            duration_ms = format_args!("{duration_ms:.2}"),
            ttft_ms = format_args!("{:.2}", e.ttft_ms.unwrap_or(duration_ms)),
            bytes = e.bytes,
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            cost_usd = e.cost_usd.unwrap_or(0.0),
            usage_estimated = e.usage_estimated,
            resumes = e.resumes.iter().filter(|r| r.target.is_some()).count(),
            cache = e.cache.unwrap_or("-"),
            key = e.key.as_deref().unwrap_or("-"),
            key_labels = %KeyLabels(e.key_labels.as_deref().unwrap_or(&[])),
            "request"
        );
    }

    /// The access line, with the fields of the `tracing` event above.
    fn log_line(&self, outcome: &str, duration_ms: f64, usage: Usage, json: bool) -> LogLine {
        let e = &self.entry;
        let mut line = LogLine::info("request", json);
        line.bare("request_id", &e.request_id)
            .bare("method", e.method.as_str())
            .bare("path", &e.path)
            .quoted("model", e.model.as_deref().unwrap_or("-"))
            .quoted("target", e.target.as_deref().unwrap_or("-"))
            .int("attempts", u64::from(e.attempts))
            .int("status", u64::from(e.status))
            .quoted("outcome", outcome)
            .ms("duration_ms", duration_ms)
            .ms("ttft_ms", e.ttft_ms.unwrap_or(duration_ms))
            .int("bytes", e.bytes)
            .int("prompt_tokens", usage.prompt_tokens)
            .int("completion_tokens", usage.completion_tokens)
            .float("cost_usd", e.cost_usd.unwrap_or(0.0))
            .flag("usage_estimated", e.usage_estimated)
            .int(
                "resumes",
                e.resumes.iter().filter(|r| r.target.is_some()).count() as u64,
            )
            .quoted("cache", e.cache.unwrap_or("-"));
        if let Some(key) = &e.key {
            line.quoted("key", key);
            for (name, value) in e.key_labels.as_deref().unwrap_or(&[]) {
                line.quoted(&format!("key_label_{name}"), value);
            }
        }
        line
    }
}

/// A key's labels as `name=value,…` for the `tracing` event.
struct KeyLabels<'a>(&'a [(String, String)]);

impl std::fmt::Display for KeyLabels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            write!(f, "{}{name}={value}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}

impl Drop for AccessRecord {
    fn drop(&mut self) {
        // Dropped unfinished: the request's future was dropped before a
        // response existed (the client left while an attempt was running).
        self.finish("client_cancelled");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessRecord {
        let mut record = AccessRecord::new(
            "req_1".into(),
            http::Method::POST,
            "/v1/chat/completions".into(),
            Instant::now(),
        );
        record.finished = true; // no metrics, no log from Drop
        record.entry.model = Some("gpt-4o".into());
        record.entry.target = Some("openai/gpt-4o".into());
        record.entry.attempts = 2;
        record.entry.status = 200;
        record.entry.ttft_ms = Some(3.456);
        record.entry.bytes = 452;
        record.entry.cost_usd = Some(0.000125);
        record
    }

    const USAGE: Usage = Usage {
        prompt_tokens: 24,
        completion_tokens: 50,
        total_tokens: 74,
    };

    #[test]
    fn the_text_line_has_every_field_in_order() {
        let line = record()
            .log_line("completed", 84.725, USAGE, false)
            .finish();
        let line = String::from_utf8(line).unwrap();
        let (_, rest) = line.split_once("Z  INFO ").unwrap();
        assert_eq!(
            rest,
            "request request_id=req_1 method=POST path=/v1/chat/completions model=\"gpt-4o\" \
             target=\"openai/gpt-4o\" attempts=2 status=200 outcome=\"completed\" \
             duration_ms=84.73 ttft_ms=3.46 bytes=452 prompt_tokens=24 completion_tokens=50 \
             cost_usd=0.000125 usage_estimated=false resumes=0 cache=\"-\"\n"
        );
    }

    #[test]
    fn the_json_line_carries_the_fields_as_json_values() {
        let mut record = record();
        record.entry.model = Some("bad\"model\n".into());
        let line = record.log_line("completed", 84.725, USAGE, true).finish();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["message"], "request");
        assert_eq!(v["model"], "bad\"model\n");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 84.73);
        assert_eq!(v["ttft_ms"], 3.46);
        assert_eq!(v["completion_tokens"], 50);
        assert_eq!(v["cost_usd"], 0.000125);
        assert_eq!(v["usage_estimated"], false);
    }
}
