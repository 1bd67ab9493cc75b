//! Router keys with limits: who may call, which models, how much.
//!
//! - [`key`]: keys as compiled (SHA-256 digests, model globs, limits,
//!   expiry, labels), the key set and its one lookup, new keys.
//! - [`bucket`]: the rate arithmetic (GCRA as a leaky bucket per minute).
//! - [`store`]: per-key runtime state in memory, admission and settlement,
//!   the state file that keeps budgets across restarts.
//! - [`calendar`]: UTC days and months for budgets.
//! - [`estimate`]: the tokens a request reserves against a `tpm`.
//!
//! `gateway` authenticates with the key set and admits through the store;
//! `telemetry`'s access record settles the permit when the answer ends.

pub mod bucket;
pub mod calendar;
pub mod estimate;
pub mod key;
pub mod store;

pub use estimate::estimate_tokens;
pub use key::{Budget, Glob, KeySet, KeySpec, Limits, Rates};
pub use store::{Denied, KeyState, Period, Permit, RateHeaders, RateState, Reason, Store};
