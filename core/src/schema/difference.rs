//! A difference of two medians (or quantiles) with its confidence interval,
//! as `compare` and `contrast` write it. The bootstrap that computes it is
//! `inferbench_harness::significance`.

use serde::{Deserialize, Serialize};

/// A two-sided interval at `level` (0.95 for 95%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Interval {
    /// Lower bound, in the unit of the quantity bounded.
    pub low: f64,
    /// Upper bound, in the unit of the quantity bounded.
    pub high: f64,
    /// Confidence level, 0.95 for 95%.
    pub level: f64,
}

impl Interval {
    /// True when `x` lies within the interval, bounds included.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }

    /// True when zero is outside: the difference is resolved at this level.
    pub fn excludes_zero(&self) -> bool {
        !self.contains(0.0)
    }
}

/// `other`'s median minus `base`'s, absolutely and relative to `base`'s, each
/// with its percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MedianDifference {
    /// The base side's median (or the quantile compared, as p99 from
    /// `quantile_difference`), in the metric's unit.
    pub base_median: f64,
    /// `other`'s median (or the same quantile), in the metric's unit.
    pub other_median: f64,
    /// `other_median − base_median`, in the metric's unit (negative: `other` is lower).
    pub difference: f64,
    /// The percentile-bootstrap interval of `difference`.
    pub difference_ci: Interval,
    /// difference / base median, in percent (absent when the base median is 0).
    pub percent: Option<f64>,
    /// The bootstrap interval of `percent` (absent when a resample's base
    /// quantile was 0).
    pub percent_ci: Option<Interval>,
    /// Independent values each side's resamples drew.
    pub base_draws: u64,
    /// Independent values each of `other`'s resamples drew.
    pub other_draws: u64,
    /// Bootstrap resamples the intervals were drawn from (at least 1).
    pub resamples: u32,
}
