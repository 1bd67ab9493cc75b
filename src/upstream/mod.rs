//! Runtime state that outlives a config table: each upstream's health and
//! client (its connection pool, from `h1`), each target's circuit breaker,
//! latency, requests in flight and `rpm`/`tpm` buckets, all kept by identity in the [`Registry`].
//!
//! A reload that keeps an upstream keeps its pool and its last known health
//! (ARCHITECTURE.md, invariant 4). Everything is an atomic or a short lock
//! off the request path. Next: `routing` plans with this state; `forward`
//! sends attempts through the clients.

mod registry;
mod state;
mod target_state;

pub use registry::Registry;
pub use state::{Health, StateView, UpstreamState};
pub use target_state::{
    Admission, BreakerPolicy, Circuit, InFlight, TargetHold, TargetId, TargetState,
};
