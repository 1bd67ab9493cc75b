//! How long each phase of an attempt may take, and the defaults.

use std::time::Duration;

/// Connect timeout; the same 5 s the OpenAI Python SDK uses. A local upstream
/// that is down refuses at once; this only bites on black-holed addresses.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for the upstream's response headers. A non-streamed answer
/// sends its headers only when generation is finished, and a local model may
/// first need to load, so this is long: 300 s, as the reference Ollama setup used.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(300);
/// Time from sending a streamed request to its first content event (the
/// commit point). Covers a local model's load time, like `first_byte`.
pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest silence between two chunks of a stream after it started. Token
/// gaps are milliseconds; a minute of silence means the upstream is stuck.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a whole request may take, stream included: 15 minutes fits a
/// long local generation (4,000 tokens at 5 tokens/s is ~13 minutes).
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(900);

/// `upstreams.<name>.timeouts` (and `models.<name>.timeouts`, which
/// override all but `connect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect: Duration,
    /// From sending the request to the response headers.
    pub first_byte: Duration,
    /// From sending a streamed request to its first content event.
    pub first_token: Duration,
    /// Longest gap between chunks after the answer started.
    pub idle: Duration,
    /// Longest a whole request may take, streaming included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            first_byte: DEFAULT_FIRST_BYTE_TIMEOUT,
            first_token: DEFAULT_FIRST_TOKEN_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
            total: DEFAULT_TOTAL_TIMEOUT,
        }
    }
}
