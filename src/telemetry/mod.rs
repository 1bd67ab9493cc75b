//! Observing requests: Prometheus metrics, logging setup, the access log
//! and the request log.
//!
//! Never on the byte path: the access record only counts bytes as they pass.
//! Metric handles are resolved when a table compiles, so a request only
//! increments them. Below it: only the leaves (`openai` for usage, `json`
//! for log lines).

pub mod access_log;
mod log_line;
mod logging;
pub mod metrics;
pub mod request_log;

pub use logging::{init_logging, LogFormat};
