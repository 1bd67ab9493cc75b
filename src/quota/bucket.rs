//! The rate limiter's arithmetic: a leaky bucket per minute.
//!
//! A bucket of `capacity` units (requests, or tokens) drains continuously at
//! `capacity / 60` units per second. Taking `cost` units succeeds when the
//! level plus `cost` fits in the capacity. This is GCRA written as a level
//! instead of a "theoretical arrival time": the emission interval is
//! `60 s / capacity` and the burst tolerance is a whole minute's capacity,
//! so a fresh key may spend its `rpm` at once and then one request per
//! interval. Both forms admit exactly the same sequences; the level form
//! also reconciles (a token estimate corrected by the usage observed) by
//! adding the difference.
//!
//! Times are seconds on any monotonic clock, passed in by the caller, so the
//! arithmetic is tested without sleeping.

/// One leaky bucket. Small and `Copy`: it lives inside the key's lock.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    level: f64,
    at: f64,
}

/// A request for `cost` units that does not fit: the seconds until it would.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wait(pub f64);

impl Bucket {
    fn rate(capacity: u64) -> f64 {
        capacity as f64 / 60.0
    }

    /// Drains what has leaked out since the last call.
    fn drain(&mut self, capacity: u64, now: f64) {
        let elapsed = (now - self.at).max(0.0);
        self.level = (self.level - elapsed * Bucket::rate(capacity)).max(0.0);
        self.at = self.at.max(now);
    }

    /// Takes `cost` units when they fit; else says how long until they would.
    /// A cost over the capacity is charged as the capacity (a single request
    /// larger than a minute's allowance is admitted into an empty bucket
    /// rather than never).
    pub fn take(&mut self, capacity: u64, cost: f64, now: f64) -> Result<(), Wait> {
        self.drain(capacity, now);
        let cost = cost.min(capacity as f64);
        let over = self.level + cost - capacity as f64;
        // A hair of slack for float error: `capacity` takes of 1 must all fit.
        if over <= 1e-9 {
            self.level += cost;
            Ok(())
        } else {
            Err(Wait(over / Bucket::rate(capacity)))
        }
    }

    /// Adds `delta` units (negative gives back): the correction of an
    /// estimate once the real figure is known. The level may go over the
    /// capacity (the answer used more than reserved); later takes then wait
    /// until it has drained.
    pub fn adjust(&mut self, capacity: u64, delta: f64, now: f64) {
        self.drain(capacity, now);
        self.level = (self.level + delta).max(0.0);
    }

    /// Units that fit now (`x-ratelimit-remaining-*`).
    pub fn remaining(&mut self, capacity: u64, now: f64) -> u64 {
        self.drain(capacity, now);
        (capacity as f64 - self.level).max(0.0).floor() as u64
    }

    /// Seconds until the bucket is empty again (`x-ratelimit-reset-*`).
    pub fn reset_in(&mut self, capacity: u64, now: f64) -> f64 {
        self.drain(capacity, now);
        self.level / Bucket::rate(capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_bucket_admits_exactly_its_capacity_at_once() {
        let mut b = Bucket::default();
        let admitted = (0..30).filter(|_| b.take(10, 1.0, 0.0).is_ok()).count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn then_one_per_emission_interval() {
        let mut b = Bucket::default();
        for _ in 0..10 {
            b.take(10, 1.0, 0.0).unwrap();
        }
        // 10 per minute: one every 6 s.
        let Err(Wait(wait)) = b.take(10, 1.0, 0.0) else {
            panic!("the 11th must wait")
        };
        assert!((wait - 6.0).abs() < 1e-6, "{wait}");
        assert!(b.take(10, 1.0, 5.9).is_err());
        assert!(b.take(10, 1.0, 6.0).is_ok());
        assert!(b.take(10, 1.0, 6.1).is_err());
        assert_eq!(b.remaining(10, 6.1), 0);
    }

    #[test]
    fn it_drains_completely_in_a_minute() {
        let mut b = Bucket::default();
        b.take(100, 100.0, 0.0).unwrap();
        assert!((b.reset_in(100, 0.0) - 60.0).abs() < 1e-6);
        assert!((b.reset_in(100, 30.0) - 30.0).abs() < 1e-6);
        assert_eq!(b.remaining(100, 60.0), 100);
    }

    #[test]
    fn a_reservation_is_reconciled_by_the_difference() {
        let mut b = Bucket::default();
        b.take(1000, 500.0, 0.0).unwrap();
        // The answer used 120 tokens, not 500.
        b.adjust(1000, 120.0 - 500.0, 0.0);
        assert_eq!(b.remaining(1000, 0.0), 880);
        // Or 1500: over the capacity, so the next take waits it out.
        b.adjust(1000, 1380.0, 0.0);
        assert_eq!(b.remaining(1000, 0.0), 0);
        let Err(Wait(wait)) = b.take(1000, 1.0, 0.0) else {
            panic!("over the capacity")
        };
        // 501 over at 1000/60 per second.
        assert!((wait - 501.0 * 0.06).abs() < 1e-6, "{wait}");
    }

    #[test]
    fn a_cost_over_the_capacity_is_admitted_into_an_empty_bucket() {
        let mut b = Bucket::default();
        assert!(b.take(100, 5000.0, 0.0).is_ok());
        assert!(b.take(100, 1.0, 0.0).is_err());
    }

    #[test]
    fn time_going_backwards_is_ignored() {
        let mut b = Bucket::default();
        b.take(60, 60.0, 10.0).unwrap();
        assert_eq!(b.remaining(60, 5.0), 0);
        assert_eq!(b.remaining(60, 11.0), 1);
    }
}
