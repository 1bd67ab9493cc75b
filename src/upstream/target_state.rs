//! Runtime state of one target (an upstream serving one model): its circuit
//! breaker, latency estimate and in-flight count.
//!
//! Keyed by [`TargetId`] in the registry and shared by every table that has
//! the target, so a reload does not forget that a target is failing
//! (ARCHITECTURE.md, invariant 4). Everything is an atomic: the request path takes no lock.
//!
//! The breaker: `failure_threshold` consecutive failures open the circuit
//! for `cooldown`; after it, exactly one request is let through as a probe
//! (half-open). The probe's success closes the circuit; its failure opens it
//! again for twice as long as the last time, up to `max_cooldown` (as
//! Envoy's outlier detection grows its ejection time): a target that was
//! down for a moment gets its traffic back within one short cooldown, and
//! one that stays down is probed less and less often. The planner skips open targets, but when every
//! target of a request is open it still tries them, soonest-to-reopen first,
//! rather than fail without trying.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::openai::Usage;
use crate::quota::{RateState, Rates};
use crate::telemetry::access_log::Settle;

/// The token reservation a served target holds against its `tpm`,
/// replaced by the answer's usage when it ends.
#[derive(Debug, Clone)]
pub struct TargetHold {
    /// The target's state.
    pub state: Arc<TargetState>,
    /// Its limits.
    pub rates: Rates,
    /// Tokens reserved when the attempt was sent.
    pub reserved: u64,
}

impl Settle for TargetHold {
    fn settle(&mut self, usage: Option<Usage>, _cost_usd: Option<f64>) {
        if let Some(u) = usage {
            let used = u.total_tokens.max(u.prompt_tokens + u.completion_tokens);
            self.state.rate.reconcile(self.rates, self.reserved, used);
        }
    }
}

/// Who a target is: upstream name + address + the model name sent upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetId {
    /// Upstream name.
    pub upstream: String,
    /// Upstream base URL.
    pub base_url: String,
    /// Model name sent upstream.
    pub model: String,
}

/// Breaker settings (`upstreams.<name>.circuit_breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the circuit; 0 disables the breaker.
    pub failure_threshold: u32,
    /// How long the circuit stays open the first time before a probe.
    pub cooldown: Duration,
    /// The longest it stays open after consecutive failed probes.
    pub max_cooldown: Duration,
}

impl BreakerPolicy {
    /// How long the circuit stays open at its `n`th consecutive opening
    /// (0 = the first since it was last closed).
    pub fn cooldown_for(&self, n: u32) -> Duration {
        self.cooldown
            .saturating_mul(1u32 << n.min(16))
            .min(self.max_cooldown.max(self.cooldown))
    }
}

/// The circuit's state, as shown in `/status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Requests flow.
    Closed,
    /// Skipped until the cooldown ends.
    Open,
    /// Cooldown over; one probe request decides.
    HalfOpen,
}

impl Circuit {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::Open => "open",
            Circuit::HalfOpen => "half_open",
        }
    }

    /// Gauge value: 0 closed, 1 half-open, 2 open.
    pub fn as_gauge(self) -> i64 {
        match self {
            Circuit::Closed => 0,
            Circuit::HalfOpen => 1,
            Circuit::Open => 2,
        }
    }
}

/// Weight of the newest sample in the latency EWMA: 0.2 follows a shift in a
/// few requests without jumping on a single outlier.
const EWMA_ALPHA: f64 = 0.2;

/// Runtime state of one target.
#[derive(Debug)]
pub struct TargetState {
    origin: Instant,
    consecutive_failures: AtomicU32,
    /// Milliseconds since `origin` at which the circuit may half-open; 0 = closed.
    open_until_ms: AtomicU64,
    /// Openings since the circuit was last closed (sets the next cooldown).
    openings: AtomicU32,
    /// A half-open probe is in flight.
    probing: AtomicBool,
    in_flight: AtomicU32,
    /// EWMA of time to first token, seconds, as f64 bits; 0 = no sample yet.
    ttft_mean: AtomicU64,
    /// EWMA of the squared deviation, for a p95 estimate.
    ttft_var: AtomicU64,
    /// The upstream answered 401/403/404: misconfigured, said loudly in status.
    misconfigured: AtomicBool,
    /// The target's own `rpm`/`tpm` buckets (the upstream's quota).
    pub rate: RateState,
}

impl Default for TargetState {
    fn default() -> Self {
        TargetState {
            origin: Instant::now(),
            consecutive_failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            openings: AtomicU32::new(0),
            probing: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            ttft_mean: AtomicU64::new(0),
            ttft_var: AtomicU64::new(0),
            misconfigured: AtomicBool::new(false),
            rate: RateState::default(),
        }
    }
}

/// Permission to send one attempt; reports its result to the breaker.
#[derive(Debug)]
pub struct Admission {
    state: std::sync::Arc<TargetState>,
    probe: bool,
}

impl Admission {
    /// The attempt succeeded.
    pub fn success(mut self) {
        self.probe = false;
        self.state.record_success();
    }

    /// The attempt failed in a way that counts against the target.
    pub fn failure(mut self, policy: &BreakerPolicy) {
        self.probe = false;
        self.state.record_failure(policy);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.probe {
            // Neither success nor failure (cancelled, or a client error):
            // let the next request probe instead.
            self.state.probing.store(false, Ordering::Release);
        }
    }
}

/// Decrements the in-flight count when dropped (when the response ends).
#[derive(Debug)]
pub struct InFlight(std::sync::Arc<TargetState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TargetState {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64 + 1
    }

    /// The circuit as of now.
    pub fn circuit(&self) -> Circuit {
        match self.open_until_ms.load(Ordering::Relaxed) {
            0 => Circuit::Closed,
            until if self.now_ms() < until => Circuit::Open,
            _ => Circuit::HalfOpen,
        }
    }

    /// Milliseconds until an open circuit half-opens (0 when not open).
    pub fn reopens_in_ms(&self) -> u64 {
        self.open_until_ms
            .load(Ordering::Relaxed)
            .saturating_sub(self.now_ms())
    }

    /// May a request go to this target now? Closed: yes. Open: no.
    /// Half-open: yes for exactly one caller (the probe) until it reports or
    /// is dropped (a probe cancelled by its client frees the slot again).
    pub fn admit(self: &std::sync::Arc<Self>) -> Option<Admission> {
        let probe = match self.circuit() {
            Circuit::Closed => false,
            Circuit::Open => return None,
            Circuit::HalfOpen => {
                if self.probing.swap(true, Ordering::AcqRel) {
                    return None;
                }
                true
            }
        };
        Some(Admission {
            state: self.clone(),
            probe,
        })
    }

    /// Permission for a last-resort attempt at a target whose circuit is
    /// open: every target ahead of it in the plan has already failed.
    pub fn force_admit(self: &std::sync::Arc<Self>) -> Admission {
        Admission {
            state: self.clone(),
            probe: false,
        }
    }

    /// Records a success: closes the circuit.
    fn record_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.open_until_ms.store(0, Ordering::Relaxed);
        self.openings.store(0, Ordering::Relaxed);
        self.probing.store(false, Ordering::Release);
        self.misconfigured.store(false, Ordering::Relaxed);
    }

    /// Records a failure; opens the circuit at the threshold (or at once
    /// when this was the half-open probe).
    fn record_failure(&self, policy: &BreakerPolicy) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let was_probe = self.probing.swap(false, Ordering::AcqRel);
        if policy.failure_threshold > 0 && (was_probe || failures >= policy.failure_threshold) {
            let n = self.openings.fetch_add(1, Ordering::Relaxed);
            let until = self.now_ms() + policy.cooldown_for(n).as_millis() as u64;
            self.open_until_ms.store(until, Ordering::Relaxed);
        }
    }

    /// Marks the target misconfigured (an upstream 401/403/404).
    pub fn mark_misconfigured(&self) {
        self.misconfigured.store(true, Ordering::Relaxed);
    }

    /// True after a 401/403/404 until the next success.
    pub fn is_misconfigured(&self) -> bool {
        self.misconfigured.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard drops.
    pub fn enter(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Adds a time-to-first-token sample.
    pub fn observe_ttft(&self, ttft: Duration) {
        let x = ttft.as_secs_f64();
        let mean = f64::from_bits(self.ttft_mean.load(Ordering::Relaxed));
        if mean == 0.0 {
            self.ttft_mean.store(x.to_bits(), Ordering::Relaxed);
            return;
        }
        // Racing writers may lose a sample; the estimate stays sound.
        let var = f64::from_bits(self.ttft_var.load(Ordering::Relaxed));
        let diff = x - mean;
        let new_mean = mean + EWMA_ALPHA * diff;
        let new_var = (1.0 - EWMA_ALPHA) * (var + EWMA_ALPHA * diff * diff);
        self.ttft_mean.store(new_mean.to_bits(), Ordering::Relaxed);
        self.ttft_var.store(new_var.to_bits(), Ordering::Relaxed);
    }

    /// EWMA time to first token, if any sample was seen.
    pub fn ttft(&self) -> Option<Duration> {
        let mean = f64::from_bits(self.ttft_mean.load(Ordering::Relaxed));
        (mean > 0.0).then(|| Duration::from_secs_f64(mean))
    }

    /// A p95 estimate of time to first token: mean + 1.645 standard deviations.
    pub fn ttft_p95(&self) -> Option<Duration> {
        let mean = f64::from_bits(self.ttft_mean.load(Ordering::Relaxed));
        let var = f64::from_bits(self.ttft_var.load(Ordering::Relaxed));
        (mean > 0.0).then(|| Duration::from_secs_f64(mean + 1.645 * var.max(0.0).sqrt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy {
        failure_threshold: 3,
        cooldown: Duration::from_millis(50),
        max_cooldown: Duration::from_millis(50),
    };

    #[test]
    fn opens_after_consecutive_failures_and_probes_once() {
        let state = std::sync::Arc::new(TargetState::default());
        for _ in 0..2 {
            state.admit().unwrap().failure(&POLICY);
            assert_eq!(state.circuit(), Circuit::Closed);
        }
        state.admit().unwrap().failure(&POLICY);
        assert_eq!(state.circuit(), Circuit::Open);
        assert!(state.admit().is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(state.circuit(), Circuit::HalfOpen);
        let probe = state.admit().expect("the first caller is the probe");
        assert!(state.admit().is_none(), "only one probe at a time");
        probe.success();
        assert_eq!(state.circuit(), Circuit::Closed);
        assert!(state.admit().is_some());
    }

    #[test]
    fn a_failed_probe_opens_the_circuit_again() {
        let state = std::sync::Arc::new(TargetState::default());
        for _ in 0..3 {
            state.record_failure(&POLICY);
        }
        std::thread::sleep(Duration::from_millis(60));
        state.admit().unwrap().failure(&POLICY);
        assert_eq!(state.circuit(), Circuit::Open);
    }

    #[test]
    fn a_cancelled_probe_frees_the_slot() {
        let state = std::sync::Arc::new(TargetState::default());
        for _ in 0..3 {
            state.record_failure(&POLICY);
        }
        std::thread::sleep(Duration::from_millis(60));
        drop(state.admit().unwrap());
        assert!(state.admit().is_some());
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let state = TargetState::default();
        state.record_failure(&POLICY);
        state.record_failure(&POLICY);
        state.record_success();
        state.record_failure(&POLICY);
        state.record_failure(&POLICY);
        assert_eq!(state.circuit(), Circuit::Closed);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let state = TargetState::default();
        let off = BreakerPolicy {
            failure_threshold: 0,
            cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(1),
        };
        for _ in 0..100 {
            state.record_failure(&off);
        }
        assert_eq!(state.circuit(), Circuit::Closed);
    }

    #[test]
    fn tracks_in_flight_requests() {
        let state = std::sync::Arc::new(TargetState::default());
        let a = state.enter();
        let b = state.enter();
        assert_eq!(state.in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(state.in_flight(), 0);
    }

    #[test]
    fn ttft_estimate_follows_samples() {
        let state = TargetState::default();
        assert_eq!(state.ttft(), None);
        for _ in 0..50 {
            state.observe_ttft(Duration::from_millis(100));
        }
        let ttft = state.ttft().unwrap().as_secs_f64();
        assert!((ttft - 0.1).abs() < 1e-6);
        assert!(state.ttft_p95().unwrap() >= state.ttft().unwrap());
    }

    #[test]
    fn each_failed_probe_doubles_the_cooldown_up_to_the_ceiling() {
        let policy = BreakerPolicy {
            failure_threshold: 1,
            cooldown: Duration::from_secs(3),
            max_cooldown: Duration::from_secs(20),
        };
        let secs: Vec<u64> = (0..5).map(|n| policy.cooldown_for(n).as_secs()).collect();
        assert_eq!(secs, [3, 6, 12, 20, 20]);
        // A ceiling below the first cooldown does not shorten it.
        let odd = BreakerPolicy {
            max_cooldown: Duration::from_secs(1),
            ..policy
        };
        assert_eq!(odd.cooldown_for(3), Duration::from_secs(3));
    }

    #[test]
    fn a_success_starts_the_next_opening_from_the_short_cooldown() {
        let policy = BreakerPolicy {
            failure_threshold: 1,
            cooldown: Duration::from_millis(40),
            max_cooldown: Duration::from_secs(10),
        };
        let state = std::sync::Arc::new(TargetState::default());
        state.record_failure(&policy); // open for 40 ms
        std::thread::sleep(Duration::from_millis(50));
        state.admit().unwrap().failure(&policy); // failed probe: 80 ms
        let second = state.reopens_in_ms();
        assert!((41..=80).contains(&second), "{second} ms");
        std::thread::sleep(Duration::from_millis(90));
        state.admit().unwrap().success();
        state.record_failure(&policy); // a new outage: 40 ms again
        assert!(state.reopens_in_ms() <= 40, "{} ms", state.reopens_in_ms());
    }
}
