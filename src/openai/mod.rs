//! What OpenAI-shaped JSON means: stream chunk kinds, token usage, and the
//! one error body every answer of ours uses.
//!
//! - [`classify`] says what a stream event means for the commit point:
//!   `[DONE]`, an error frame, content, or nothing yet ([`ChunkKind`]).
//! - [`usage_of_event`] and [`usage_of_body`] read token [`Usage`].
//!
//! It only reads: nothing here produces or edits what the client receives
//! except [`ErrorBody`], which spells our own errors. Classification and
//! usage use minimal serde structs and `IgnoredAny` for everything else, so
//! no chunk is ever turned into a DOM.
//!
//! Below it: `json` (structural member lookup) and `sse` (the events).

mod chunk;
mod error;
mod lenient;
mod usage;

pub use chunk::{classify, ChunkKind};
pub use error::ErrorBody;
pub use usage::{counts_as_token, usage_of_body, usage_of_event, Usage, MAX_TOKEN_COUNT};

#[cfg(test)]
mod tests;
