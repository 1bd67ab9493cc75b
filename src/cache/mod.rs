//! The response cache: whole answers kept by a hash of the request that
//! asked for them, replayed to the next identical request without an
//! upstream call.
//!
//! - `key`: the canonical request hash (model, messages, tools, sampling
//!   parameters; not `stream`, `stream_options`, `user` or other ids).
//! - `store`: the bounded in-memory LRU, with a TTL per entry.
//! - `sink`: collects an answer as it goes to the client, and stores it when
//!   it ended complete.
//! - `replay`: an entry as the answer to a request, streamed or not.
//!
//! It knows nothing of routing: `gateway` decides when to look up and
//! store (`models.<name>.cache`), `forward::body` feeds the sink.

mod key;
mod replay;
mod sink;
mod store;

pub use key::{key, Key};
pub use replay::{replay, Replay};
pub use sink::{Form, Shared, Sink};
pub use store::{Cache, Entry, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRY_BYTES};
