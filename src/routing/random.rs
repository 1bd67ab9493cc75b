//! A thread-local random source for balancing and backoff jitter.

use std::cell::Cell;

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

/// A uniform number in `0..n` (n > 0) from a thread-local xorshift
/// generator: no lock, no syscall; balancing needs spread, not secrecy.
pub(crate) fn random_below(n: u64) -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x % n.max(1)
    })
}

/// A uniform number in `[0, 1)`, for backoff jitter.
pub(crate) fn random_unit() -> f64 {
    (random_below(1 << 53) as f64) / ((1u64 << 53) as f64)
}
