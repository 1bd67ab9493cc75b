//! Switchyard: an OpenAI-compatible reverse proxy and model router.
//!
//! The modules are layers; each imports only the layers listed before it
//! (`ARCHITECTURE.md` draws them, and `tests/it/layering.rs` fails the tests
//! on an import that points up). Lowest first:
//!
//! - Leaves, which know nothing of routing: [`text`] (cutting text at a
//!   character boundary), [`units`] (durations and sizes as written in the
//!   config), [`secret`] (a credential that never prints), [`json`] (the
//!   request inspector, the model splice, structural reads), [`sse`] (event
//!   framing), [`openai`] (chunk kinds, token usage, the error body), [`h1`]
//!   (the pooled HTTP/1.1 client), [`quota`] (router keys as digests, their
//!   limits, the in-memory limiter and the budget state file).
//! - [`telemetry`]: metrics, the access log and the request log.
//! - [`upstream`]: per-upstream runtime state that outlives a table: health,
//!   breakers, in-flight counts, and the registry of pooled clients.
//! - [`providers`]: what each upstream kind is and how it is addressed and
//!   authenticated; the mock provider.
//! - [`routing`]: the compiled, immutable [`routing::Table`] and attempt plans.
//! - [`forward`]: send an attempt, classify it, relay the answer.
//! - [`gateway`]: dispatch by path, authenticate, answer errors.
//! - [`config`]: `router.yaml`: parse, interpolate, validate, compile.
//! - [`server`]: listen, TLS, connection guards, reloads, health probes.
#![warn(missing_docs)]

pub mod cache;
pub mod config;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod h1;
pub mod json;
pub mod openai;
pub mod providers;
pub mod quota;
pub mod routing;
pub mod secret;
pub mod server;
pub mod shared;
pub mod sse;
pub mod telemetry;
pub mod text;
pub mod units;
pub mod upstream;

pub use server::{start, RunningServer, ServeOptions};
