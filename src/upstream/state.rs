//! What Switchyard last saw of an upstream: up, down (and why), or unknown.
//!
//! Written by health probes and by every attempt; read by the status view.
//! Lock-free except the last error text, which is written only on failure
//! and read only by the status view.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Last known state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Nothing observed yet.
    Unknown,
    /// The last probe or request succeeded.
    Up,
    /// The last probe or request failed to reach it.
    Down,
}

impl Health {
    /// Lowercase name for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// Runtime state of one upstream.
#[derive(Debug, Default)]
pub struct UpstreamState {
    health: AtomicU8,
    /// Unix milliseconds of the last observation.
    observed_at_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The last health probe failed (see [`UpstreamState::is_down`]).
    probed_down: std::sync::atomic::AtomicBool,
}

/// A copy of the state for display.
#[derive(Debug, Clone)]
pub struct StateView {
    /// Up, down or unknown.
    pub health: Health,
    /// Unix milliseconds of the last observation (0 = never).
    pub observed_at_ms: u64,
    /// Why it was last seen down.
    pub last_error: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl UpstreamState {
    /// Records a success (of a probe or a request).
    pub fn mark_up(&self) {
        self.probed_down.store(false, Ordering::Relaxed);
        self.health.store(1, Ordering::Relaxed);
        self.observed_at_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Records a failure to reach the upstream.
    pub fn mark_down(&self, reason: String) {
        self.health.store(2, Ordering::Relaxed);
        self.observed_at_ms.store(now_ms(), Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason);
        }
    }

    /// True when the last active health probe failed and nothing has
    /// reached the upstream since (one atomic load: cheap for planning).
    /// A failed request alone does not count: that is the circuit
    /// breaker's business, and with probes off nothing would clear it.
    pub fn is_down(&self) -> bool {
        self.probed_down.load(Ordering::Relaxed)
    }

    /// Records a failed health probe.
    pub fn mark_probe_down(&self, reason: String) {
        self.probed_down.store(true, Ordering::Relaxed);
        self.mark_down(reason);
    }

    /// Current state.
    pub fn view(&self) -> StateView {
        StateView {
            health: match self.health.load(Ordering::Relaxed) {
                1 => Health::Up,
                2 => Health::Down,
                _ => Health::Unknown,
            },
            observed_at_ms: self.observed_at_ms.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}
