//! How sure a difference is: bootstrap confidence intervals of the difference
//! of two medians, drawn from the histograms result files keep (or from raw
//! values), seeded so that the same files give the same intervals.
//!
//! A sample states how many of its values are independent. An in-process
//! batch of B sequences records each run's TTFT B times, identical: those
//! are one observation, not B, and resampling them as B would make an
//! interval B^½ times too narrow. [`Sample::from_distribution`] takes the
//! number of independent draws a resample makes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::quantile::{interval_end, nearest_rank};
use crate::stats::Distribution;

pub use crate::schema::difference::{Interval, MedianDifference};

/// Resamples per interval: enough for the 2.5% and 97.5% points to move
/// by well under the histogram's 0.1% precision between seeds.
pub const DEFAULT_RESAMPLES: u32 = 2000;

/// One side of a comparison, as bootstrap draws from it: values in
/// increasing order with their weights, and how many independent values a
/// resample draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    values: Vec<f64>,
    cumulative: Vec<u64>,
    draws: u64,
}

impl Sample {
    /// From raw values, each independent.
    pub fn from_values(values: &[f64]) -> Option<Sample> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as u64;
        Self::from_weighted(sorted.into_iter().map(|v| (v, 1)), n)
    }

    /// From a distribution's histogram buckets; a resample draws
    /// `independent` values (at most the count; at least 1).
    pub fn from_distribution(distribution: &Distribution, independent: u64) -> Option<Sample> {
        let draws = independent.clamp(1, distribution.count().max(1));
        Self::from_weighted(distribution.buckets(), draws)
    }

    /// From (value, count) buckets, every value independent.
    pub fn from_buckets(buckets: Vec<(f64, u64)>, draws: u64) -> Option<Sample> {
        Self::from_weighted(buckets, draws)
    }

    fn from_weighted(values: impl IntoIterator<Item = (f64, u64)>, draws: u64) -> Option<Sample> {
        let mut sample = Sample {
            values: Vec::new(),
            cumulative: Vec::new(),
            draws,
        };
        let mut total = 0;
        for (value, weight) in values.into_iter().filter(|(_, w)| *w > 0) {
            total += weight;
            sample.values.push(value);
            sample.cumulative.push(total);
        }
        (total > 0 && draws > 0).then_some(sample)
    }

    /// Independent values a resample draws.
    pub fn draws(&self) -> u64 {
        self.draws
    }

    fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The value of rank `rank` (0-based) in weight order.
    fn at_rank(&self, rank: u64) -> f64 {
        let i = self.cumulative.partition_point(|&c| c <= rank);
        self.values[i.min(self.values.len() - 1)]
    }

    /// The nearest-rank median of the whole sample (as the result files'
    /// p50: the smallest value with at least half the weight at or below).
    pub fn median(&self) -> f64 {
        let total = self.total();
        self.at_rank(total.div_ceil(2).saturating_sub(1))
    }

    /// The nearest-rank `q` quantile (0.5: [`Sample::median`], 0.99: p99).
    pub fn quantile(&self, q: f64) -> f64 {
        self.at_rank(nearest_rank(q, self.total()).saturating_sub(1))
    }

    /// The `q` quantile of one resample of `draws` values with replacement.
    fn resampled_quantile(&self, rng: &mut ChaCha8Rng, counts: &mut [u64], q: f64) -> f64 {
        counts.iter_mut().for_each(|c| *c = 0);
        let total = self.total();
        for _ in 0..self.draws {
            let r = rng.random_range(0..total);
            counts[self.cumulative.partition_point(|&c| c <= r)] += 1;
        }
        let target = nearest_rank(q, self.draws);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return self.values[i];
            }
        }
        self.values[self.values.len() - 1]
    }
}

/// The `level` bootstrap interval of one sample's `q` quantile, from
/// `resamples` resamples, seeded.
pub fn quantile_interval(
    sample: &Sample,
    q: f64,
    level: f64,
    resamples: u32,
    seed: u64,
) -> Interval {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = vec![0; sample.values.len()];
    let mut values: Vec<f64> = (0..resamples.max(1))
        .map(|_| sample.resampled_quantile(&mut rng, &mut counts, q))
        .collect();
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Interval {
        low: interval_end(&values, tail),
        high: interval_end(&values, 1.0 - tail),
        level,
    }
}

/// The difference of medians `other − base` with a `level` interval from
/// `resamples` paired resamples (each side resampled on its own), seeded.
pub fn median_difference(
    base: &Sample,
    other: &Sample,
    level: f64,
    resamples: u32,
    seed: u64,
) -> MedianDifference {
    quantile_difference(base, other, 0.5, level, resamples, seed)
}

/// The difference of the `q` quantiles `other − base` (p99: q = 0.99), as
/// [`median_difference`] does for the median. A tail quantile rests on few
/// values: its interval is wide unless the samples are large.
pub fn quantile_difference(
    base: &Sample,
    other: &Sample,
    q: f64,
    level: f64,
    resamples: u32,
    seed: u64,
) -> MedianDifference {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut base_counts, mut other_counts) =
        (vec![0; base.values.len()], vec![0; other.values.len()]);
    let mut differences = Vec::with_capacity(resamples as usize);
    let mut percents = Vec::with_capacity(resamples as usize);
    for _ in 0..resamples.max(1) {
        let b = base.resampled_quantile(&mut rng, &mut base_counts, q);
        let o = other.resampled_quantile(&mut rng, &mut other_counts, q);
        differences.push(o - b);
        if b != 0.0 {
            percents.push(100.0 * (o - b) / b);
        }
    }
    let interval = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        let tail = (1.0 - level) / 2.0;
        Interval {
            low: interval_end(values, tail),
            high: interval_end(values, 1.0 - tail),
            level,
        }
    };
    let (base_value, other_value) = (base.quantile(q), other.quantile(q));
    let difference = other_value - base_value;
    MedianDifference {
        base_median: base_value,
        other_median: other_value,
        difference,
        difference_ci: interval(&mut differences),
        percent: (base_value != 0.0).then(|| 100.0 * difference / base_value),
        percent_ci: (percents.len() == differences.len()).then(|| interval(&mut percents)),
        base_draws: base.draws,
        other_draws: other.draws,
        resamples: resamples.max(1),
    }
}

/// The Mann-Whitney U test of two samples, two-sided, by the normal
/// approximation with the tie correction: histogram buckets are ties, each
/// bucket's weight scaled so that a side counts as many values as it has
/// independent draws. Returns the p-value (1.0 when every value ties).
pub fn mann_whitney_p(base: &Sample, other: &Sample) -> f64 {
    let (n1, n2) = (base.draws as f64, other.draws as f64);
    let (s1, s2) = (n1 / base.total() as f64, n2 / other.total() as f64);
    let weights = |s: &Sample, scale: f64| -> Vec<(f64, f64)> {
        let mut previous = 0;
        s.values
            .iter()
            .zip(&s.cumulative)
            .map(|(&v, &c)| {
                let w = (c - previous) as f64 * scale;
                previous = c;
                (v, w)
            })
            .collect()
    };
    let (a, b) = (weights(base, s1), weights(other, s2));
    // Walk both in value order: U of `other` counts, for each of its
    // values, the base values below it plus half of those tied with it.
    let (mut i, mut j) = (0, 0);
    let (mut base_below, mut u, mut ties) = (0.0, 0.0, 0.0);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => break,
        };
        let (mut wa, mut wb) = (0.0, 0.0);
        while i < a.len() && a[i].0 == v {
            wa += a[i].1;
            i += 1;
        }
        while j < b.len() && b[j].0 == v {
            wb += b[j].1;
            j += 1;
        }
        u += wb * (base_below + wa / 2.0);
        base_below += wa;
        let t = wa + wb;
        ties += t * t * t - t;
    }
    let n = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    if variance <= 0.0 || !variance.is_finite() {
        return 1.0;
    }
    let z = ((u - n1 * n2 / 2.0).abs() - 0.5).max(0.0) / variance.sqrt();
    (2.0 * standard_normal_upper_tail(z)).min(1.0)
}

fn standard_normal_upper_tail(z: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().sf(z)
}

/// Holm's step-down adjustment of p-values tested together: the same
/// order, each at most 1, controlling the chance of any false finding.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&x, &y| p[x].total_cmp(&p[y]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (k, &i) in order.iter().enumerate() {
        running = running.max(((m - k) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution as _, LogNormal};

    #[test]
    fn mann_whitney_false_positives_near_the_level_and_shifts_detected() {
        let d = LogNormal::new(1.0f64, 0.35).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let repeats = 400;
        let (mut false_positives, mut detected) = (0, 0);
        for _ in 0..repeats {
            let a: Vec<f64> = (0..60).map(|_| d.sample(&mut rng)).collect();
            let b: Vec<f64> = (0..60).map(|_| d.sample(&mut rng)).collect();
            let shifted: Vec<f64> = (0..60).map(|_| d.sample(&mut rng) * 1.25).collect();
            let (a, b, shifted) = (
                Sample::from_values(&a).unwrap(),
                Sample::from_values(&b).unwrap(),
                Sample::from_values(&shifted).unwrap(),
            );
            if mann_whitney_p(&a, &b) < 0.05 {
                false_positives += 1;
            }
            if mann_whitney_p(&a, &shifted) < 0.05 {
                detected += 1;
            }
        }
        let rate = f64::from(false_positives) / f64::from(repeats);
        assert!((0.02..=0.08).contains(&rate), "false positives {rate}");
        assert!(detected > repeats * 9 / 10, "detected {detected}/{repeats}");
    }

    #[test]
    fn mann_whitney_handles_ties_and_matches_a_known_value() {
        let same = Sample::from_values(&[3.0; 20]).unwrap();
        assert_eq!(mann_whitney_p(&same, &same), 1.0);
        // No overlap at n = 5 + 5: U = 0, mean 12.5, sd (25 · 11 / 12)^½,
        // continuity-corrected z = 12 / 4.787 = 2.507, p = erfc(z / √2).
        let a = Sample::from_values(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let b = Sample::from_values(&[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        let p = mann_whitney_p(&a, &b);
        assert!((p - 0.012186).abs() < 1e-5, "{p}");
        // Weights from a histogram count as the independent draws say.
        let mut wide = Distribution::milliseconds();
        let mut narrow = Distribution::milliseconds();
        for i in 0..100 {
            wide.record(10.0 + f64::from(i % 10));
            narrow.record(11.0 + f64::from(i % 10));
        }
        let many = mann_whitney_p(
            &Sample::from_distribution(&wide, 100).unwrap(),
            &Sample::from_distribution(&narrow, 100).unwrap(),
        );
        let few = mann_whitney_p(
            &Sample::from_distribution(&wide, 10).unwrap(),
            &Sample::from_distribution(&narrow, 10).unwrap(),
        );
        assert!(many < few, "{many} {few}");
    }

    #[test]
    fn holm_adjusts_step_down() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.5]);
        let expected = [0.04, 0.09, 0.09, 0.5];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
    }

    #[test]
    fn a_quantile_interval_holds_the_estimate_and_narrows_as_one_over_root_n() {
        // Values 1..=n: the median's interval contains it and its width
        // relative to n falls as 1/√n (n × 4: half as wide).
        let width = |n: u32| {
            let values: Vec<f64> = (1..=n).map(f64::from).collect();
            let s = Sample::from_values(&values).unwrap();
            let i = quantile_interval(&s, 0.5, 0.95, DEFAULT_RESAMPLES, 7);
            assert!(i.contains(s.median()), "{i:?} {}", s.median());
            assert!(i.low < i.high);
            (i.high - i.low) / f64::from(n)
        };
        let ratio = width(400) / width(1600);
        assert!((1.6..2.5).contains(&ratio), "{ratio}");
        // Seeded: the same sample gives the same interval.
        let s = Sample::from_values(&[1.0, 2.0, 3.0, 10.0]).unwrap();
        assert_eq!(
            quantile_interval(&s, 0.5, 0.95, 500, 1),
            quantile_interval(&s, 0.5, 0.95, 500, 1)
        );
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Sample::from_values(&values).unwrap();
        assert_eq!(s.quantile(0.99), 99.0);
        assert_eq!(s.quantile(0.5), 50.0);
        assert_eq!(s.quantile(1.0), 100.0);
    }

    #[test]
    fn median_is_nearest_rank() {
        let s = Sample::from_values(&[5.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median(), 2.0);
        let s = Sample::from_values(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(s.median(), 3.0);
        assert!(Sample::from_values(&[]).is_none());
    }

    #[test]
    fn interval_covers_the_true_difference_about_95_percent_of_the_time() {
        // Latency-like skewed data; the other side is the base shifted by a
        // known amount, so the true difference of medians is that shift.
        let shift = 0.4;
        let d = LogNormal::new(1.0f64, 0.35).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let repeats: u32 = 300;
        let mut covered = 0;
        for r in 0..repeats {
            let base: Vec<f64> = (0..80).map(|_| d.sample(&mut rng)).collect();
            let other: Vec<f64> = (0..120).map(|_| d.sample(&mut rng) + shift).collect();
            let diff = median_difference(
                &Sample::from_values(&base).unwrap(),
                &Sample::from_values(&other).unwrap(),
                0.95,
                1000,
                u64::from(r),
            );
            if diff.difference_ci.contains(shift) {
                covered += 1;
            }
        }
        let coverage = f64::from(covered) / f64::from(repeats);
        assert!(
            (0.90..=0.99).contains(&coverage),
            "95% intervals covered the truth in {:.1}% of repeats",
            100.0 * coverage
        );
    }

    #[test]
    fn seeded_and_drawn_from_histograms_with_fewer_independent_values() {
        let mut a = Distribution::milliseconds();
        let mut b = Distribution::milliseconds();
        for i in 0..50 {
            // Eight identical values per "run", as an in-process batch of 8.
            a.record_n(10.0 + f64::from(i % 10) * 0.1, 8);
            b.record(10.5 + f64::from(i % 10) * 0.1);
        }
        let sa = Sample::from_distribution(&a, a.count() / 8).unwrap();
        let sb = Sample::from_distribution(&b, b.count()).unwrap();
        assert_eq!((sa.draws(), sb.draws()), (50, 50));
        let one = median_difference(&sa, &sb, 0.95, 500, 3);
        assert_eq!(one, median_difference(&sa, &sb, 0.95, 500, 3));
        assert!((one.difference - 0.5).abs() < 0.02, "{one:?}");
        assert!(one.difference_ci.excludes_zero());
        // Treating the 400 repeated values as independent narrows the interval.
        let naive = median_difference(
            &Sample::from_distribution(&a, a.count()).unwrap(),
            &sb,
            0.95,
            500,
            3,
        );
        let width = |d: &MedianDifference| d.difference_ci.high - d.difference_ci.low;
        assert!(width(&naive) <= width(&one));
    }

    #[test]
    fn identical_samples_give_an_interval_around_zero() {
        let values: Vec<f64> = (0..200).map(|i| f64::from(i % 37)).collect();
        let s = Sample::from_values(&values).unwrap();
        let d = median_difference(&s, &s, 0.95, 1000, 1);
        assert_eq!(d.difference, 0.0);
        assert!(d.difference_ci.contains(0.0));
    }
}
