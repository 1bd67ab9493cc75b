//! Observing requests: logging setup and the access log.
//!
//! Never on the byte path: the access record only counts bytes as they pass.

pub mod access_log;
mod log_line;
mod logging;
pub mod metrics;
pub mod request_log;

pub use logging::{init_logging, LogFormat};
