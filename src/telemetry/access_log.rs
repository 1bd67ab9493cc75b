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

/// What is known about one request.
#[derive(Default)]
pub struct AccessRecord {
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
    /// When the request arrived.
    pub started: Option<Instant>,
    /// Time to the response headers, in milliseconds.
    pub header_ms: Option<f64>,
    /// Time to the first body byte, in milliseconds.
    pub first_byte_ms: Option<f64>,
    /// Body bytes sent to the client.
    pub bytes: u64,
    /// Token usage the upstream reported.
    pub usage: Option<Usage>,
    /// Estimated cost in US dollars (when the model has `pricing`).
    pub cost: Option<f64>,
    /// Switchyard's own time, in microseconds.
    pub overhead_us: Option<u64>,
    /// Why the request failed, in short (error code or kind).
    pub error: Option<String>,
    /// Where the request-log record goes, when the log is on.
    pub sink: Option<Arc<RequestLog>>,
    /// The request body, kept (refcounted) only for `include_content`.
    pub request_body: Option<bytes::Bytes>,
    /// The answer's content, captured only for `include_content`.
    pub response_content: Option<String>,
    /// Wall-clock arrival time, for the request log.
    pub arrived: Option<std::time::SystemTime>,
    model_metrics: Option<Arc<ModelMetrics>>,
    target_metrics: Option<Arc<TargetMetrics>>,
    finished: bool,
}

impl std::fmt::Debug for AccessRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessRecord")
            .field("request_id", &self.request_id)
            .field("model", &self.model)
            .field("target", &self.target)
            .field("status", &self.status)
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
        record.request_id = request_id;
        record.method = method;
        record.path = path;
        record.started = Some(started);
        record.arrived = Some(std::time::SystemTime::now());
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

    /// Attaches the metrics of the target that answered.
    pub fn set_target_metrics(&mut self, metrics: Arc<TargetMetrics>) {
        self.target_metrics = Some(metrics);
    }

    /// Counts body bytes as they pass to the client.
    pub fn observe_bytes(&mut self, n: usize) {
        if self.first_byte_ms.is_none() {
            self.first_byte_ms = Some(self.elapsed_ms());
        }
        self.bytes += n as u64;
    }

    /// Finishes the record: updates metrics and writes the access-log event.
    /// `outcome` is `completed`, `client_cancelled` or `upstream_error`.
    /// Only the first call counts.
    pub fn finish(&mut self, outcome: &'static str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        if self.status == 0 {
            // No response was sent: the client left while we were still
            // working. 499 is the customary "client closed request".
            self.status = 499;
        }
        let duration_ms = self.elapsed_ms();
        if let Some(target) = &self.target_metrics {
            target.requests.count(self.status, outcome);
            target.duration.observe(duration_ms / 1000.0);
            if let Some(header_ms) = self.header_ms {
                target.ttft.observe(header_ms / 1000.0);
            }
            if let Some(usage) = self.usage {
                self.cost = target.usage(usage.prompt_tokens, usage.completion_tokens);
            }
        }
        if let Some(model) = &self.model_metrics {
            if self.target_metrics.is_none() {
                model.unserved.count(self.status, outcome);
            }
            if let (Some(asked), Some(served)) = (&self.model, &self.served_model) {
                if asked != served {
                    model.fallback(served);
                }
            }
            if let Some(us) = self.overhead_us {
                model.overhead.observe(us as f64);
            }
            model.in_flight.dec();
        }
        if let Some(sink) = self.sink.take() {
            sink.submit(Entry {
                at: self.arrived,
                request_id: self.request_id.clone(),
                method: self.method.to_string(),
                path: self.path.clone(),
                model: self.model.clone(),
                served_model: self.served_model.clone(),
                target: self.target.clone(),
                attempts: self.attempts,
                status: self.status,
                outcome,
                duration_ms,
                ttft_ms: self.header_ms,
                usage: self.usage,
                cost_usd: self.cost,
                error: self.error.clone(),
                bytes: self.bytes,
                request_body: self.request_body.take(),
                response_content: self.response_content.take(),
            });
        }
        if !tracing::enabled!(target: "switchyard::access", tracing::Level::INFO) {
            return;
        }
        let usage = self.usage.unwrap_or_default();
        if let Some(json) = super::logging::direct() {
            self.log_line(outcome, duration_ms, usage, json).write();
            return;
        }
        tracing::info!(
            target: "switchyard::access",
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            model = self.model.as_deref().unwrap_or("-"),
            target = self.target.as_deref().unwrap_or("-"),
            attempts = self.attempts,
            status = self.status,
            outcome,
            duration_ms = format_args!("{duration_ms:.2}"),
            ttft_ms = format_args!("{:.2}", self.header_ms.unwrap_or(duration_ms)),
            bytes = self.bytes,
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            cost_usd = self.cost.unwrap_or(0.0),
            "request"
        );
    }
}

impl AccessRecord {
    /// The access line, with the fields of the `tracing` event below.
    fn log_line(&self, outcome: &str, duration_ms: f64, usage: Usage, json: bool) -> LogLine {
        let mut line = LogLine::info("request", json);
        line.bare("request_id", &self.request_id)
            .bare("method", self.method.as_str())
            .bare("path", &self.path)
            .quoted("model", self.model.as_deref().unwrap_or("-"))
            .quoted("target", self.target.as_deref().unwrap_or("-"))
            .int("attempts", u64::from(self.attempts))
            .int("status", u64::from(self.status))
            .quoted("outcome", outcome)
            .ms("duration_ms", duration_ms)
            .ms("ttft_ms", self.header_ms.unwrap_or(duration_ms))
            .int("bytes", self.bytes)
            .int("prompt_tokens", usage.prompt_tokens)
            .int("completion_tokens", usage.completion_tokens)
            .float("cost_usd", self.cost.unwrap_or(0.0));
        line
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
        record.model = Some("gpt-4o".into());
        record.target = Some("openai/gpt-4o".into());
        record.attempts = 2;
        record.status = 200;
        record.header_ms = Some(3.456);
        record.bytes = 452;
        record.cost = Some(0.000125);
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
             cost_usd=0.000125\n"
        );
    }

    #[test]
    fn the_json_line_carries_the_fields_as_json_values() {
        let mut record = record();
        record.model = Some("bad\"model\n".into());
        let line = record.log_line("completed", 84.725, USAGE, true).finish();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["message"], "request");
        assert_eq!(v["model"], "bad\"model\n");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 84.73);
        assert_eq!(v["ttft_ms"], 3.46);
        assert_eq!(v["completion_tokens"], 50);
        assert_eq!(v["cost_usd"], 0.000125);
    }
}
