//! JSON without a DOM: the one place that looks inside a client's body, and
//! the structural reads other layers need.
//!
//! - [`inspect`] scans a fully buffered request body once, checks that it is
//!   one well-formed JSON value (RFC 8259), and picks out what routing needs
//!   from the top-level object: the `"model"` string, the `"stream"` flag,
//!   where the `"stream_options"` value sits, and where the object closes.
//! - [`splice_model`] rewrites the model name surgically, as up to three
//!   zero-copy [`bytes::Bytes`] parts.
//! - [`member`] finds where a top-level member's value starts, by a
//!   structural scan that jumps strings with `memchr` (usage reading).
//! - [`push_json_string`] writes a string literal as `serde_json` spells it.
//!
//! What it must never do:
//!
//! * **Never build a DOM.** Bodies can be several MiB of chat history; turning
//!   them into a `serde_json::Value` costs an allocation per node and throws
//!   away the client's formatting. The scanner keeps only a small container
//!   stack and a few offsets, and runs in linear time with bounded (explicit,
//!   non-recursive) depth.
//! * **Never change a byte outside the model value.** Key order, whitespace,
//!   number spellings such as `0.2` or `1e3`, and fields we do not know about
//!   are the client's business and must reach the upstream exactly as sent
//!   (ARCHITECTURE.md, "Bytes pass through").
//!
//! A leaf: it imports nothing of the crate.

mod edit;
mod error;
mod inspect;
mod member;
mod scan;
mod splice;
mod string;

pub use edit::{Edits, Members};
pub use error::InspectError;
pub use inspect::{inspect, Inspected, MAX_DEPTH};
pub use member::{member, skip_ws};
pub use splice::{splice_model, Spliced};
pub use string::push_json_string;

#[cfg(test)]
mod tests;
