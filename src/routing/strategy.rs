//! Balancing strategies: the order in which one model's targets are tried.
//!
//! | strategy | first choice | the rest |
//! |---|---|---|
//! | `weighted` (default) | smooth weighted round robin: with weights 3:1 the first choices go A A B A, A A B A, … | by weight, heaviest first |
//! | `priority` | the first target in the file | file order |
//! | `least_busy` | power of two choices on requests in flight | fewest in flight first |
//! | `latency` | power of two choices on the time-to-first-token EWMA (a target with no sample yet is tried first) | fastest first |
//! | `race` | the first `fanout` targets (by latency) are sent the request at once | by latency |
//! | `hedge` | the fastest target; a second copy after the hedge delay | by latency |
//!
//! The smooth weighted sequence is computed once per table (nginx's
//! algorithm, run for one full cycle), so picking is one atomic increment:
//! no lock, and an exact, testable distribution. Never decides *whether* a
//! target may be used (that is the breaker, in `plan`).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::policy::Strategy;
use super::random::random_below;
use super::table::Target;

/// Longest precomputed weighted cycle; weights are scaled down (keeping
/// their ratio as closely as whole numbers allow) to fit.
const MAX_CYCLE: u64 = 1000;

/// The smooth weighted round-robin cycle for `weights`: target indices in
/// pick order, one full period long. Empty when every weight is 0.
pub fn weighted_cycle(weights: &[u32]) -> Vec<u16> {
    let g = weights.iter().fold(0u64, |g, w| gcd(g, u64::from(*w)));
    if g == 0 {
        return Vec::new();
    }
    let mut scaled: Vec<i64> = weights.iter().map(|w| (u64::from(*w) / g) as i64).collect();
    let total: i64 = scaled.iter().sum();
    if total as u64 > MAX_CYCLE {
        let factor = MAX_CYCLE as f64 / total as f64;
        for (w, original) in scaled.iter_mut().zip(weights) {
            *w = if *original == 0 {
                0
            } else {
                ((*w as f64 * factor).round() as i64).max(1)
            };
        }
    }
    let total: i64 = scaled.iter().sum();
    let mut current = vec![0i64; scaled.len()];
    let mut cycle = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&scaled) {
            *c += w;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))
            .expect("at least one target");
        current[best] -= total;
        cycle.push(best as u16);
    }
    cycle
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Orders `targets` (all of one model) by `strategy`. `cycle` and `cursor`
/// belong to the model (see [`weighted_cycle`]); `advance` moves the
/// weighted cursor — only for the model asked for, so a fallback model's
/// own traffic keeps its exact shares whatever other models plan.
/// Targets with weight 0 are standbys: after all the others, in file order.
pub fn order<'t>(
    strategy: &Strategy,
    targets: &'t [Target],
    cycle: &[u16],
    cursor: &AtomicUsize,
    advance: bool,
) -> Vec<&'t Target> {
    let mut out: Vec<&Target> = targets.iter().filter(|t| t.weight > 0).collect();
    rank(strategy, targets, cycle, cursor, advance, &mut out);
    out.extend(targets.iter().filter(|t| t.weight == 0));
    out
}

fn rank<'t>(
    strategy: &Strategy,
    targets: &'t [Target],
    cycle: &[u16],
    cursor: &AtomicUsize,
    advance: bool,
    out: &mut Vec<&'t Target>,
) {
    if out.len() < 2 {
        return;
    }
    match strategy {
        Strategy::Priority => {}
        Strategy::Weighted => {
            // The rest by weight (stable, so ties keep file order).
            out.sort_by_key(|t| std::cmp::Reverse(t.weight));
            if !cycle.is_empty() {
                let at = if advance {
                    cursor.fetch_add(1, Ordering::Relaxed)
                } else {
                    cursor.load(Ordering::Relaxed)
                };
                let pick = cycle[at % cycle.len()] as usize;
                let chosen = &targets[pick] as *const Target;
                if let Some(at) = out.iter().position(|t| std::ptr::eq(*t, chosen)) {
                    let first = out.remove(at);
                    out.insert(0, first);
                }
            }
        }
        Strategy::LeastBusy => {
            out.sort_by_key(|t| t.state.in_flight());
            two_choices(out, |t| t.state.in_flight() as f64);
        }
        Strategy::Latency | Strategy::Race { .. } | Strategy::Hedge { .. } => {
            let score = |t: &Target| t.state.ttft().map_or(0.0, |d| d.as_secs_f64());
            out.sort_by(|a, b| score(a).total_cmp(&score(b)));
            if matches!(strategy, Strategy::Latency) {
                two_choices(out, score);
            }
        }
    }
}

/// Power of two choices: of two distinct random candidates, the lower score
/// goes first. `out` is already sorted by score; this only replaces the
/// strict best with a random-pair winner, which spreads load when scores tie
/// and keeps a herd from piling onto one target between updates.
fn two_choices(out: &mut Vec<&Target>, score: impl Fn(&Target) -> f64) {
    let n = out.len() as u64;
    let a = random_below(n) as usize;
    let mut b = random_below(n - 1) as usize;
    if b >= a {
        b += 1;
    }
    let winner = if score(out[b]) < score(out[a]) { b } else { a };
    let first = out.remove(winner);
    out.insert(0, first);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(cycle: &[u16], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for i in cycle {
            c[*i as usize] += 1;
        }
        c
    }

    #[test]
    fn weighted_cycle_is_smooth_and_exact() {
        let cycle = weighted_cycle(&[3, 1]);
        assert_eq!(cycle, vec![0, 0, 1, 0]);
        assert_eq!(counts(&weighted_cycle(&[5, 1, 1]), 3), vec![5, 1, 1]);
        // nginx's example: a a b a c a a (never three of the same in a row here)
        assert_eq!(weighted_cycle(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn weighted_cycle_reduces_by_the_common_divisor() {
        assert_eq!(weighted_cycle(&[300, 100]), vec![0, 0, 1, 0]);
    }

    #[test]
    fn weighted_cycle_skips_zero_weights_and_bounds_its_length() {
        assert_eq!(counts(&weighted_cycle(&[2, 0, 1]), 3), vec![2, 0, 1]);
        assert!(weighted_cycle(&[0, 0]).is_empty());
        let long = weighted_cycle(&[999_983, 1]);
        assert!(long.len() as u64 <= MAX_CYCLE + 1);
        assert!(long.contains(&1));
    }
}
