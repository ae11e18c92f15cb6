//! MLPerf LoadGen's early-stopping rule (mlcommons/inference,
//! `loadgen/early_stopping.cc`): how many observations a percentile needs
//! before a run may report it, and the upper bound it then reports.
//!
//! With confidence c and percentile p, for t observations above the bound,
//! h(t) is the smallest h with P[Binomial(h + t, 1 − p) ≤ t] ≤ 1 − c: among
//! h + t independent observations, seeing only t above the true p-quantile
//! is then unlikely enough. So
//! - with a latency bound (an SLO), a run of n observations, t of them over
//!   the bound, passes when n ≥ h(t) + t, and otherwise needs
//!   h(t) + t − n more, all under the bound;
//! - without one, n must be at least h(1) + 1, and the sorted value at index
//!   n − t (0-based; the t-th largest) for the largest t with h(t) + t ≤ n
//!   is an upper bound of the p-quantile at confidence c.
//!
//! At p = 0.99 and c = 0.99 the counts h(t) + t are 459, 662, 838, 1001,
//! 1157, 1307 for t = 0..5; at p = 0.90, 44, 64, 81, 97, 113, 127.

use statrs::distribution::{Binomial, DiscreteCDF};

/// The confidence MLPerf LoadGen uses, and inferbench with it.
pub const CONFIDENCE: f64 = 0.99;

/// P[Binomial(n, 1 − p) ≤ t]: the chance of at most t of n observations
/// above the p-quantile.
fn at_most_above(n: u64, p: f64, t: u64) -> f64 {
    if t >= n {
        return 1.0;
    }
    Binomial::new(1.0 - p, n).map_or(1.0, |b| b.cdf(t))
}

/// h(t): the observations at or under the bound that `t` above it need,
/// at percentile `p` (0 < p < 1) and `confidence`.
pub fn h(t: u64, p: f64, confidence: f64) -> u64 {
    let enough = |h: u64| at_most_above(h + t, p, t) <= 1.0 - confidence;
    if enough(0) {
        return 0;
    }
    // The tail shrinks as h grows: double to an h that is enough, then
    // halve the gap to the smallest.
    let (mut low, mut high) = (0u64, 1u64);
    while !enough(high) {
        low = high;
        high = high.saturating_mul(2);
        if high == u64::MAX {
            return high;
        }
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if enough(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    high
}

/// The observations a run needs when `t` of them are above the bound:
/// h(t) + t.
pub fn min_count(t: u64, p: f64, confidence: f64) -> u64 {
    h(t, p, confidence).saturating_add(t)
}

/// Without a bound: the largest t with h(t) + t ≤ `n`, or `None` when `n`
/// is below h(1) + 1 and no upper bound can be given.
pub fn estimate_rank(n: u64, p: f64, confidence: f64) -> Option<u64> {
    if n < min_count(1, p, confidence) {
        return None;
    }
    // h(t) + t grows with t: search the last t that fits.
    let (mut low, mut high) = (1u64, n);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if min_count(mid, p, confidence) <= n {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    Some(low)
}

/// The verdict on a latency bound from `n` observations, `over` of them
/// above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundVerdict {
    /// Enough observations: the p-quantile is under the bound at the
    /// confidence.
    Pass,
    /// Too many above it: were the p-quantile under the bound, `over` or
    /// more of `n` would be above it with a chance under 1 − confidence.
    Fail,
    /// Neither yet: `more` observations, all under the bound, would pass it.
    Undecided {
        /// How many more.
        more: u64,
    },
}

/// P[Binomial(n, 1 − p) ≥ t]: the chance of t or more of n observations
/// above the p-quantile.
fn at_least_above(n: u64, p: f64, t: u64) -> f64 {
    match t {
        0 => 1.0,
        _ if t > n => 0.0,
        _ => 1.0 - at_most_above(n, p, t - 1),
    }
}

/// Whether `n` observations with `over` above a bound show the p-quantile
/// under it at `confidence` (LoadGen's rule: pass when n ≥ h(over) + over),
/// or above it at the same confidence (fail: so many above it are unlikely
/// enough were it under), or neither.
pub fn judge_bound(n: u64, over: u64, p: f64, confidence: f64) -> BoundVerdict {
    let needed = min_count(over, p, confidence);
    if n >= needed {
        BoundVerdict::Pass
    } else if at_least_above(n, p, over) <= 1.0 - confidence {
        BoundVerdict::Fail
    } else {
        BoundVerdict::Undecided { more: needed - n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_counts_are_loadgens() {
        let counts = |p| {
            (0..6)
                .map(|t| min_count(t, p, CONFIDENCE))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(0.99), [459, 662, 838, 1001, 1157, 1307]);
        assert_eq!(counts(0.90), [44, 64, 81, 97, 113, 127]);
        // h(0) = ⌈ln(1 − c) / ln p⌉.
        for p in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let closed = ((1.0 - CONFIDENCE).ln() / f64::ln(p)).ceil() as u64;
            assert_eq!(h(0, p, CONFIDENCE), closed, "p = {p}");
        }
    }

    #[test]
    fn a_bound_passes_fails_or_waits() {
        let judge = |n, over| judge_bound(n, over, 0.99, CONFIDENCE);
        assert_eq!(judge(459, 0), BoundVerdict::Pass);
        assert_eq!(judge(662, 1), BoundVerdict::Pass);
        assert_eq!(judge(100, 0), BoundVerdict::Undecided { more: 359 });
        assert_eq!(judge(661, 1), BoundVerdict::Undecided { more: 1 });
        // 1 over in 100 is what a p99 under the bound gives; 2 is not rare
        // (P[Bin(100, 0.01) ≥ 2] = 0.26); 5 is (0.0034).
        assert_eq!(judge(100, 2), BoundVerdict::Undecided { more: 838 - 100 });
        assert_eq!(judge(100, 5), BoundVerdict::Fail);
        assert_eq!(judge(3, 3), BoundVerdict::Fail);
        assert_eq!(judge(2, 1), BoundVerdict::Undecided { more: 660 });
        // The fail side against the brute-force tail.
        for (n, t) in [(100u64, 4u64), (100, 5), (1000, 18), (1000, 20)] {
            let tail = 1.0 - brute_force_tail(n, 0.01, t - 1);
            assert_eq!(
                judge(n, t) == BoundVerdict::Fail,
                tail <= 1.0 - CONFIDENCE,
                "n = {n}, t = {t}, tail = {tail}"
            );
        }
    }

    /// P[Binomial(n, q) ≤ t] by summing the terms in logs.
    fn brute_force_tail(n: u64, q: f64, t: u64) -> f64 {
        let ln_choose = |n: u64, k: u64| -> f64 {
            (1..=k)
                .map(|i| ((n - k + i) as f64).ln() - (i as f64).ln())
                .sum()
        };
        (0..=t.min(n))
            .map(|k| (ln_choose(n, k) + k as f64 * q.ln() + (n - k) as f64 * (1.0 - q).ln()).exp())
            .sum()
    }

    /// h(t) is the smallest h whose tail is within 1 − c: checked on both
    /// sides against a binomial summed term by term, on varied inputs.
    #[test]
    fn h_is_the_smallest_enough_against_a_brute_force_binomial() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..60 {
            let p = [0.5, 0.9, 0.95, 0.99][(next() % 4) as usize];
            let c = [0.9, 0.95, 0.99][(next() % 3) as usize];
            let t = next() % 8;
            let h = h(t, p, c);
            assert!(
                brute_force_tail(h + t, 1.0 - p, t) <= 1.0 - c + 1e-12,
                "p {p} c {c} t {t}"
            );
            if h > 0 {
                assert!(
                    brute_force_tail(h - 1 + t, 1.0 - p, t) > 1.0 - c - 1e-12,
                    "p {p} c {c} t {t}"
                );
            }
        }
    }

    #[test]
    fn the_estimate_and_the_verdict_follow_the_counts() {
        assert_eq!(estimate_rank(661, 0.99, CONFIDENCE), None);
        assert_eq!(estimate_rank(662, 0.99, CONFIDENCE), Some(1));
        assert_eq!(estimate_rank(837, 0.99, CONFIDENCE), Some(1));
        assert_eq!(estimate_rank(838, 0.99, CONFIDENCE), Some(2));
        assert_eq!(estimate_rank(1307, 0.99, CONFIDENCE), Some(5));
        assert_eq!(judge_bound(459, 0, 0.99, CONFIDENCE), BoundVerdict::Pass);
        assert_eq!(
            judge_bound(50, 0, 0.99, CONFIDENCE),
            BoundVerdict::Undecided { more: 409 }
        );
        assert_eq!(
            judge_bound(700, 2, 0.99, CONFIDENCE),
            BoundVerdict::Undecided { more: 138 }
        );
    }
}
