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
