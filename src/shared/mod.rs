//! State shared by replicas through Redis (`state.redis`): key limits and
//! budgets, and the response cache's shared tier.
//!
//! - `client`: the connection (one multiplexed, reconnecting connection per
//!   process), per-operation timeouts, and a short back-off after a failure
//!   so a Redis outage costs requests no waiting.
//! - `limits`: admission and settlement of a router key's limits in one
//!   round trip each (Lua scripts over Redis's own clock).
//! - `cache`: response-cache entries with TTLs.
//!
//! Key layout: every key starts with `state.redis.prefix` (`switchyard:`);
//! the keys of one router key share the hash tag `{k:<name>}` (so one script
//! touches one Redis Cluster slot), a cache entry is `{c:<hash>}`.
//! What happens while Redis is unreachable is the caller's choice
//! (`on_error`), told by an [`Unavailable`] error, never a panic.

mod cache;
mod client;
mod limits;

pub use cache::{decode_entry, encode_entry};
pub use client::{OnError, Redis, RedisConfig, Unavailable};
pub use limits::{Admitted, LimitSpec, Refused, Settlement};
