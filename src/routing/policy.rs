//! How hard a request for one model tries: retries, backoff, attempts,
//! deadline, and which statuses retry or fail over.

use std::time::Duration;

/// How hard a request for one model tries.
#[derive(Debug, Clone)]
pub struct AttemptPolicy {
    /// Which statuses retry the same target / move to the next.
    pub statuses: StatusPolicy,
    /// Same-target retries after a retryable status.
    pub retries: u32,
    /// Backoff base.
    pub backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// Attempts per request, retries included.
    pub max_attempts: u32,
    /// Time allowed to find an attempt that commits.
    pub deadline: Duration,
    /// Continue a committed stream on the next target when it breaks.
    pub resume: Option<super::ResumePolicy>,
}

/// Status sets that decide the verdicts (per model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPolicy {
    /// Retried on the same target.
    pub retry_on: Vec<u16>,
    /// Moved past to the next target.
    pub fail_over_on: Vec<u16>,
}

impl Default for StatusPolicy {
    fn default() -> Self {
        StatusPolicy {
            retry_on: vec![408, 409, 429, 500, 502, 503, 504, 529],
            fail_over_on: vec![401, 403, 404, 501, 505, 506, 507, 508, 510, 511],
        }
    }
}

/// A model's balancing strategy (`models.<name>.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Smooth weighted round robin.
    Weighted,
    /// File order.
    Priority,
    /// Fewest requests in flight (power of two choices).
    LeastBusy,
    /// Lowest time to first token (power of two choices).
    Latency,
    /// Send to `fanout` targets at once; the first to commit wins.
    Race {
        /// How many targets get the request at once (≥ 2).
        fanout: usize,
    },
    /// Send to the best target; a second copy after `delay` without a commit.
    Hedge {
        /// When to send the second copy.
        delay: HedgeDelay,
    },
}

/// When `hedge` sends its second copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeDelay {
    /// After a fixed time.
    Fixed(Duration),
    /// After the first target's estimated p95 time to first token, or
    /// `fallback` while it has no samples.
    P95 {
        /// Used until the target has latency samples.
        fallback: Duration,
    },
}

impl Strategy {
    /// The spelling in `router.yaml`.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Weighted => "weighted",
            Strategy::Priority => "priority",
            Strategy::LeastBusy => "least_busy",
            Strategy::Latency => "latency",
            Strategy::Race { .. } => "race",
            Strategy::Hedge { .. } => "hedge",
        }
    }
}
