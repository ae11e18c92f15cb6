//! Every quantile rule of the project, each named for what it is for. They
//! differ on purpose: each answers its own question, and a reader of a
//! number should know which rule made it.

use hdrhistogram::Histogram;

/// The reported percentiles of every stats object (p50 .. p99.9): the HDR
/// histogram's value at the quantile (the smallest recorded value with at
/// least `q` of the values at or below it, to the histogram's 3 significant
/// figures), divided by `scale` (histogram units per unit), and clamped to
/// the exact `min` and `max` so that rounding into a bucket never reports a
/// value outside what was measured.
pub fn reported(histogram: &Histogram<u64>, q: f64, scale: f64, min: f64, max: f64) -> f64 {
    (histogram.value_at_quantile(q) as f64 / scale).clamp(min, max)
}

/// The 1-based nearest rank of the `q` quantile among `n` values, ⌈q·n⌉:
/// the rule the reported percentiles follow, used for the quantiles of a
/// sample and of its bootstrap resamples so that a resampled median is
/// the statistic the report prints, recomputed.
pub fn nearest_rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n.max(1))
}

/// An end of a bootstrap (percentile-method) interval: the value at rank
/// round((n−1)·q) of the sorted resampled statistics. Many resamples (2000)
/// make the choice among neighbouring ranks immaterial; this one is
/// symmetric for the two ends.
pub fn interval_end(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * (sorted.len().saturating_sub(1)) as f64).round() as usize;
    sorted[rank.min(sorted.len().saturating_sub(1))]
}

/// The `q` quantile of a Prometheus histogram's cumulative buckets
/// (upper bound, count), as Prometheus's `histogram_quantile` estimates it:
/// linear within the bucket it falls in (from 0 for the first bucket), the
/// highest finite bound when it falls in `+Inf`. Only the buckets are
/// known, so this is an estimate, as the server's own dashboards show it.
pub fn prometheus_bucket(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = bound;
        lower_count = count;
    }
    Some(lower_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_on_a_small_sample() {
        // Nearest rank: ⌈q·n⌉, within 1..=n.
        assert_eq!(nearest_rank(0.5, 4), 2);
        assert_eq!(nearest_rank(0.5, 5), 3);
        assert_eq!(nearest_rank(0.99, 100), 99);
        assert_eq!(nearest_rank(0.0, 10), 1);
        assert_eq!(nearest_rank(1.0, 10), 10);
        // Interval ends: round((n−1)·q).
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(interval_end(&sorted, 0.025), 1.0);
        assert_eq!(interval_end(&sorted, 0.5), 3.0);
        assert_eq!(interval_end(&sorted, 0.975), 5.0);
        // Reported: clamped to the exact extremes.
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for v in [1_000u64, 2_000, 3_000] {
            h.record(v).expect("record");
        }
        assert_eq!(reported(&h, 0.5, 1000.0, 1.0, 3.0), 2.0);
        assert_eq!(reported(&h, 1.0, 1000.0, 1.0, 2.5), 2.5);
        // Prometheus: linear within the bucket.
        let buckets = [(1.0, 2.0), (2.0, 4.0), (f64::INFINITY, 4.0)];
        assert_eq!(prometheus_bucket(&buckets, 0.5), Some(1.0));
        assert_eq!(prometheus_bucket(&buckets, 0.75), Some(1.5));
    }
}
