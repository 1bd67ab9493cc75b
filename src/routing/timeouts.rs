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
/// commit point), when there is nowhere else to go or nothing is known of
/// the target yet. Covers a local model's load time, like `first_byte`.
/// With `first_token` unset, an attempt that has another target to fail
/// over to gets less once the target has answered before: see
/// [`Timeouts::first_token_for`].
pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(300);
/// The learned first-token limit is this many times the target's p95 time
/// to first token…
pub const AUTO_FIRST_TOKEN_FACTOR: u32 = 4;
/// …and never less than this (a local model reloading after an idle unload
/// takes seconds).
pub const AUTO_FIRST_TOKEN_FLOOR: Duration = Duration::from_secs(15);
/// Longest silence between two chunks of a stream after it started. Token
/// gaps are milliseconds on every real server; fifteen seconds of silence in
/// the middle of an answer means the upstream is stuck (a stall), which a
/// `resume` can then mend on another target.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
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
    /// `first_token` was not configured: learn a shorter one per target
    /// (see [`Timeouts::first_token_for`]).
    pub first_token_auto: bool,
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
            first_token_auto: true,
            idle: DEFAULT_IDLE_TIMEOUT,
            total: DEFAULT_TOTAL_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// The first-token limit of one attempt. A configured `first_token` is
    /// used as it is. Unset, it is [`DEFAULT_FIRST_TOKEN_TIMEOUT`] unless
    /// the attempt can fail over (`more`: another target or fallback is
    /// left in the plan) and the target has answered before (`p95`, its
    /// estimated p95 time to first token): then `AUTO_FIRST_TOKEN_FACTOR`
    /// times that, at least `AUTO_FIRST_TOKEN_FLOOR`. So a target that
    /// hangs before its first token fails over after a few of its usual
    /// waits, without the operator having to know them; and a last target,
    /// or one never heard from (a cold local model), still gets all the
    /// time it may need.
    pub fn first_token_for(&self, more: bool, p95: Option<Duration>) -> Duration {
        match (self.first_token_auto, more, p95) {
            (true, true, Some(p95)) => (p95 * AUTO_FIRST_TOKEN_FACTOR)
                .max(AUTO_FIRST_TOKEN_FLOOR)
                .min(self.first_token),
            _ => self.first_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_first_token_limit_is_learned_only_where_it_can_fail_over() {
        let auto = Timeouts::default();
        let p95 = Some(Duration::from_secs(2));
        assert_eq!(
            auto.first_token_for(true, None),
            DEFAULT_FIRST_TOKEN_TIMEOUT
        );
        assert_eq!(
            auto.first_token_for(false, p95),
            DEFAULT_FIRST_TOKEN_TIMEOUT
        );
        assert_eq!(auto.first_token_for(true, p95), AUTO_FIRST_TOKEN_FLOOR);
        let slow = Some(Duration::from_secs(20));
        assert_eq!(auto.first_token_for(true, slow), Duration::from_secs(80));
        let very_slow = Some(Duration::from_secs(200));
        assert_eq!(
            auto.first_token_for(true, very_slow),
            DEFAULT_FIRST_TOKEN_TIMEOUT
        );
        let set = Timeouts {
            first_token: Duration::from_secs(7),
            first_token_auto: false,
            ..Timeouts::default()
        };
        assert_eq!(set.first_token_for(true, p95), Duration::from_secs(7));
    }
}
