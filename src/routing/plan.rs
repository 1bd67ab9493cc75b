//! Attempt plans: a model's targets in the order they will be tried.
//!
//! The order is the model's own targets, weighted-shuffled, then each
//! fallback model's targets the same way. Upstreams with an unset `${VAR}`
//! are left out (they cannot work); if nothing else is left they stay, so the
//! answer can say which variable to set.

use std::cell::Cell;

use super::table::{Model, Target};

/// Targets in the order they will be tried.
pub struct Plan<'t> {
    /// The ordered targets; never empty for a compiled model.
    pub targets: Vec<&'t Target>,
}

/// Orders `model`'s targets, then its fallbacks' targets.
pub fn plan(model: &Model) -> Plan<'_> {
    let mut targets = Vec::with_capacity(model.targets.len());
    push_weighted(&mut targets, model);
    for fallback in &model.fallbacks {
        push_weighted(&mut targets, fallback);
    }
    if targets.is_empty() {
        // Every target is disabled: keep them so the error can name the cause.
        targets.extend(model.targets.iter());
    }
    Plan { targets }
}

/// Appends `model`'s usable targets in weighted random order: each pick takes
/// a remaining target with probability weight / remaining weight.
fn push_weighted<'t>(out: &mut Vec<&'t Target>, model: &'t Model) {
    let start = out.len();
    out.extend(
        model
            .targets
            .iter()
            .filter(|t| t.upstream.unresolved.is_none() && t.weight > 0),
    );
    let mut remaining: u64 = out[start..].iter().map(|t| u64::from(t.weight)).sum();
    for i in start..out.len() {
        if remaining == 0 {
            break;
        }
        let mut pick = random_below(remaining);
        let mut chosen = i;
        for (j, target) in out.iter().enumerate().skip(i) {
            let w = u64::from(target.weight);
            if pick < w {
                chosen = j;
                break;
            }
            pick -= w;
        }
        out.swap(i, chosen);
        remaining -= u64::from(out[i].weight);
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    // Different threads started in the same nanosecond still differ.
    let local = &nanos as *const u64 as u64;
    (nanos ^ local.rotate_left(32)) | 1
}

/// A uniform number in `0..n` from a thread-local xorshift generator: no lock,
/// no syscall; balancing needs spread, not cryptographic quality.
fn random_below(n: u64) -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x % n
    })
}
