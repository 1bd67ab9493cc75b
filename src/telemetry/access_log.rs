//! One access-log event per request, written when the response body ends
//! (or is dropped because the client left), so its duration covers the
//! whole stream.
//!
//! Never logs a credential or a body: only names, counts and times.

use std::time::Instant;

/// What the access log says about one request.
#[derive(Debug)]
pub struct AccessRecord {
    /// `x-request-id`.
    pub request_id: String,
    /// HTTP method.
    pub method: http::Method,
    /// Request path.
    pub path: String,
    /// The model the client asked for.
    pub model: Option<String>,
    /// `upstream/model` that answered.
    pub target: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Response status.
    pub status: u16,
    /// When the request arrived.
    pub started: Instant,
    /// Time to the response headers, in milliseconds.
    pub header_ms: Option<f64>,
    /// Time to the first body byte, in milliseconds.
    pub first_byte_ms: Option<f64>,
    /// Body bytes sent to the client.
    pub bytes: u64,
}

impl AccessRecord {
    /// A record for a request that arrived at `started`.
    pub fn new(
        request_id: String,
        method: http::Method,
        path: String,
        started: Instant,
    ) -> AccessRecord {
        AccessRecord {
            request_id,
            method,
            path,
            model: None,
            target: None,
            attempts: 0,
            status: 0,
            started,
            header_ms: None,
            first_byte_ms: None,
            bytes: 0,
        }
    }

    /// Counts body bytes as they pass to the client.
    pub fn observe_bytes(&mut self, n: usize) {
        if self.first_byte_ms.is_none() {
            self.first_byte_ms = Some(self.started.elapsed().as_secs_f64() * 1000.0);
        }
        self.bytes += n as u64;
    }

    /// Writes the event. `outcome` is `completed`, `client_cancelled` or `upstream_error`.
    pub fn emit(&self, outcome: &'static str) {
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
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
            first_byte_ms = format_args!("{:.2}", self.first_byte_ms.unwrap_or(duration_ms)),
            bytes = self.bytes,
            "request"
        );
    }
}
