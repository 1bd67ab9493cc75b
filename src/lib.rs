//! Switchyard: an OpenAI-compatible reverse proxy and model router.
//!
//! The modules follow the request path, in order:
//!
//! - [`server`]: accept connections (HTTP/1.1 and h2c), graceful shutdown.
//! - [`gateway`]: dispatch by path, inspect the body, authenticate, answer errors.
//! - [`routing`]: the compiled, immutable [`routing::Table`] and attempt plans.
//! - [`providers`]: how each upstream kind is addressed and authenticated.
//! - [`upstream`]: the pooled outbound client and per-upstream runtime state.
//! - [`forward`]: send an attempt, classify it, stream the answer through.
//! - [`sse`]: a zero-copy SSE scanner that observes streams as they pass.
//! - [`config`]: `router.yaml`: parse, interpolate, validate, compile.
//! - [`telemetry`]: logging setup.
//! - [`text`]: cutting text to a byte budget without splitting a character.
#![warn(missing_docs)]

pub mod config;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod providers;
pub mod routing;
pub mod server;
pub mod sse;
pub mod telemetry;
pub mod text;
pub mod upstream;

mod state;

pub use server::{start, RunningServer, ServeOptions};
