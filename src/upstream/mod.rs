//! The outbound side: pooled clients and per-upstream runtime state.
//!
//! Everything here outlives a config table: a reload that keeps an upstream
//! keeps its connection pool and its last known health (ARCHITECTURE.md, invariant 4).
//! Next: `forward` sends attempts through these clients.

mod registry;
mod state;
mod target_state;

pub use registry::Registry;
pub use state::{Health, StateView, UpstreamState};
pub use target_state::{Admission, BreakerPolicy, Circuit, InFlight, TargetId, TargetState};
