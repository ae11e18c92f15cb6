//! The one statistics implementation: every timing and throughput in every
//! result goes through [`Distribution`] and comes out as a [`Stats`] object.
//!
//! Percentiles come from an HDR histogram, which keeps them exact to a fixed
//! number of significant figures whatever the order or number of samples;
//! count, mean, standard deviation, min and max are computed exactly from the
//! raw values. Percentiles are clamped to [min, max] so that the histogram's
//! bucket rounding can never report a p99.9 above the true maximum.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant figures kept by every histogram: values are exact to 0.1%.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// How a distribution's values map to the histogram's integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Values in milliseconds, recorded in nanoseconds.
    Milliseconds,
    /// Values in tokens (or requests) per second, recorded in thousandths.
    PerSecond,
    /// Counts (tokens per request), recorded as they are.
    Count,
    /// Ratios (a fraction of a window), recorded in hundred-thousandths.
    Ratio,
}

impl Unit {
    /// Histogram units per value unit.
    fn scale(self) -> f64 {
        match self {
            Unit::Milliseconds => 1e6,
            Unit::PerSecond => 1e3,
            Unit::Count => 1.0,
            Unit::Ratio => 1e5,
        }
    }

    fn from_scale(scale: f64) -> Option<Unit> {
        [
            Unit::Milliseconds,
            Unit::PerSecond,
            Unit::Count,
            Unit::Ratio,
        ]
        .into_iter()
        .find(|u| u.scale() == scale)
    }
}

/// A distribution's HDR histogram as a result file keeps it, so that results
/// can be merged exactly, drawn as CDFs and compared statistically without
/// the raw samples: hdrhistogram's V2 format, deflate-compressed, in base64
/// (the encoding of HdrHistogram's own interval logs, readable by its Java,
/// C, Go and Python ports). Its size depends on how many distinct buckets
/// were filled, never on how many values were recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EncodedHistogram {
    /// Histogram units per unit of the stats: 1e6 for milliseconds recorded
    /// in nanoseconds, 1e3 for rates recorded in thousandths, 1 for counts,
    /// 1e5 for ratios.
    pub scale: f64,
    /// The histogram, V2-deflate serialized and base64-encoded (standard alphabet, padded).
    pub hdr_v2_deflate_base64: String,
}

/// Why a stats object's histogram cannot be turned back into a [`Distribution`],
/// or two distributions cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// The stats object has no `histogram` (a file from before histograms were kept).
    #[error("the stats object carries no histogram (written by an inferbench before histograms were kept)")]
    Missing,
    /// The histogram's `scale` matches no [`Unit`].
    #[error(
        "histogram scale {0} is none of 1e6 (ms), 1e3 (per second), 1 (counts) or 1e5 (ratios)"
    )]
    Scale(f64),
    /// The encoded histogram is not valid base64.
    #[error("histogram is not base64: {0}")]
    Base64(base64::DecodeError),
    /// The decoded bytes are not a V2-deflate HDR histogram.
    #[error("histogram does not decode: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
    /// [`Distribution::merge`] was given a distribution of another unit (the
    /// other's unit first, then this one's).
    #[error("cannot merge a histogram of {0:?} values into one of {1:?}")]
    UnitMismatch(Unit, Unit),
}

// By hand, not `#[from]`: the message already shows the cause, which as a
// `source` too would be printed twice.
impl From<base64::DecodeError> for HistogramError {
    fn from(e: base64::DecodeError) -> Self {
        HistogramError::Base64(e)
    }
}

/// The summary every metric is reported as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stats {
    /// Number of values.
    pub count: u64,
    /// Exact arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single value.
    pub std: f64,
    /// Exact smallest value.
    pub min: f64,
    /// Median (50th percentile), from the histogram.
    pub p50: f64,
    /// 90th percentile, from the histogram.
    pub p90: f64,
    /// 95th percentile, from the histogram.
    pub p95: f64,
    /// 99th percentile, from the histogram.
    pub p99: f64,
    /// 99.9th percentile, from the histogram.
    pub p999: f64,
    /// Exact largest value.
    pub max: f64,
    /// The whole distribution (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<EncodedHistogram>,
}

impl Stats {
    /// The distribution behind the summary, from its histogram.
    pub fn distribution(&self) -> Result<Distribution, HistogramError> {
        Distribution::from_stats(self)
    }
}

/// The histogram settings, recorded once in every result file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct HistogramInfo {
    /// The histogram library and its major version (`hdrhistogram 7`).
    pub implementation: String,
    /// Significant figures every histogram keeps.
    pub significant_figures: u8,
    /// The integer unit timings are recorded in (`ns`).
    pub timing_unit_recorded: String,
    /// The integer unit rates are recorded in (`milli-per-second`: thousandths per second).
    pub rate_unit_recorded: String,
}

impl HistogramInfo {
    /// The settings this build records with.
    pub fn current() -> Self {
        HistogramInfo {
            implementation: "hdrhistogram 7".into(),
            significant_figures: SIGNIFICANT_FIGURES,
            timing_unit_recorded: "ns".into(),
            rate_unit_recorded: "milli-per-second".into(),
        }
    }
}

/// Accumulates values of one metric.
#[derive(Debug, Clone)]
pub struct Distribution {
    unit: Unit,
    histogram: Histogram<u64>,
    count: u64,
    // Welford's running mean and sum of squared deviations: stable for long
    // runs, where a naive sum of squares loses precision.
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Distribution {
    /// An empty distribution of values in `unit`.
    #[expect(
        clippy::expect_used,
        reason = "3 significant figures is a valid hdrhistogram setting"
    )]
    pub fn new(unit: Unit) -> Self {
        // Auto-resizing keeps any value recordable (a stalled request of an
        // hour, or a rate of millions), at no cost in precision.
        let mut histogram =
            Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures is a valid setting");
        histogram.auto(true);
        Distribution {
            unit,
            histogram,
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// An empty distribution of timings in milliseconds.
    pub fn milliseconds() -> Self {
        Self::new(Unit::Milliseconds)
    }

    /// An empty distribution of rates, per second.
    pub fn per_second() -> Self {
        Self::new(Unit::PerSecond)
    }

    /// An empty distribution of counts.
    pub fn counts() -> Self {
        Self::new(Unit::Count)
    }

    /// An empty distribution of ratios.
    pub fn ratios() -> Self {
        Self::new(Unit::Ratio)
    }

    /// Records one value in the distribution's unit. Negative and non-finite
    /// values are measurement bugs, not data: they are refused.
    pub fn record(&mut self, value: f64) {
        self.record_n(value, 1);
    }

    /// Records the same value `n` times (one per sequence of a batch step).
    #[expect(
        clippy::expect_used,
        reason = "an auto-resizing histogram records any u64"
    )]
    pub fn record_n(&mut self, value: f64, n: u64) {
        assert!(
            value.is_finite() && value >= 0.0,
            "a measured value must be finite and non-negative, got {value}"
        );
        if n == 0 {
            return;
        }
        let scaled = (value * self.unit.scale()).round() as u64;
        self.histogram
            .record_n(scaled, n)
            .expect("auto-resizing histogram accepts any u64");
        // Welford's update for n equal values at once.
        let total = self.count + n;
        let delta = value - self.mean;
        self.mean += delta * n as f64 / total as f64;
        self.m2 += delta * delta * (self.count as f64) * (n as f64) / total as f64;
        self.count = total;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the recorded values (mean × count), in the distribution's unit; 0 when empty.
    pub fn sum(&self) -> f64 {
        self.mean * self.count as f64
    }

    /// Exact mean of the recorded values, or `None` when nothing was recorded.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// The unit the values are recorded in.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// Adds every value of `other` (same unit): counts, mean, standard
    /// deviation, min and max exactly, percentiles within the histogram's
    /// precision, as if both had been recorded into one.
    #[expect(
        clippy::expect_used,
        reason = "auto-resizing histograms of one precision always add"
    )]
    pub fn merge(&mut self, other: &Distribution) -> Result<(), HistogramError> {
        if self.unit != other.unit {
            return Err(HistogramError::UnitMismatch(other.unit, self.unit));
        }
        if other.count == 0 {
            return Ok(());
        }
        self.histogram
            .add(&other.histogram)
            .expect("auto-resizing histograms of one precision always add");
        // Chan et al.'s pairwise update of mean and squared deviations.
        let total = self.count + other.count;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / total as f64;
        self.m2 +=
            other.m2 + delta * delta * (self.count as f64) * (other.count as f64) / total as f64;
        self.count = total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// The recorded values as (value, count) pairs, one per filled
    /// histogram bucket, each value the middle of its bucket clamped to the
    /// exact min and max: what bootstrap resampling and rank tests draw
    /// from when the raw samples are gone.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let scale = self.unit.scale();
        self.histogram
            .iter_recorded()
            .map(|v| {
                let mid = self.histogram.median_equivalent(v.value_iterated_to());
                (
                    (mid as f64 / scale).clamp(self.min, self.max),
                    v.count_at_value(),
                )
            })
            .collect()
    }

    #[expect(clippy::expect_used, reason = "serializing into memory cannot fail")]
    fn encode(&self) -> EncodedHistogram {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.histogram, &mut bytes)
            .expect("serializing into memory cannot fail");
        EncodedHistogram {
            scale: self.unit.scale(),
            hdr_v2_deflate_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// Rebuilds a distribution from a result file's stats object: the
    /// histogram from its encoding, count, mean, standard deviation, min and
    /// max from the summary (so they stay exact).
    pub fn from_stats(stats: &Stats) -> Result<Distribution, HistogramError> {
        let encoded = stats.histogram.as_ref().ok_or(HistogramError::Missing)?;
        let unit = Unit::from_scale(encoded.scale).ok_or(HistogramError::Scale(encoded.scale))?;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(&encoded.hdr_v2_deflate_base64)?;
        let mut histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(HistogramError::Decode)?;
        histogram.auto(true);
        let m2 = if stats.count > 1 {
            stats.std * stats.std * (stats.count - 1) as f64
        } else {
            0.0
        };
        Ok(Distribution {
            unit,
            histogram,
            count: stats.count,
            mean: stats.mean,
            m2,
            min: stats.min,
            max: stats.max,
        })
    }

    /// How many recorded values lie above `limit`: `(surely, possibly)`.
    /// A histogram bucket that straddles the limit (values within 0.1% of
    /// it, at 3 significant figures) counts in `possibly` only; the exact
    /// min and max settle the ends.
    pub fn count_above(&self, limit: f64) -> (u64, u64) {
        if self.count == 0 || limit >= self.max {
            return (0, 0);
        }
        if limit < self.min {
            return (self.count, self.count);
        }
        let scaled = limit * self.unit.scale();
        let (mut surely, mut possibly) = (0, 0);
        for v in self.histogram.iter_recorded() {
            let highest = self.histogram.highest_equivalent(v.value_iterated_to()) as f64;
            let lowest = self.histogram.lowest_equivalent(v.value_iterated_to()) as f64;
            if lowest > scaled {
                surely += v.count_at_value();
            }
            if highest > scaled {
                possibly += v.count_at_value();
            }
        }
        (surely, possibly)
    }

    /// The value at quantile `q` by the rule of the reported percentiles
    /// ([`crate::quantile::reported`]); `min` when nothing was recorded.
    pub fn value_at_quantile(&self, q: f64) -> f64 {
        crate::quantile::reported(&self.histogram, q, self.unit.scale(), self.min, self.max)
    }

    /// The summary, or `None` when nothing was recorded.
    pub fn stats(&self) -> Option<Stats> {
        if self.count == 0 {
            return None;
        }
        let scale = self.unit.scale();
        let at = |q: f64| crate::quantile::reported(&self.histogram, q, scale, self.min, self.max);
        let std = if self.count > 1 {
            (self.m2 / (self.count - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stats {
            count: self.count,
            mean: self.mean,
            std,
            min: self.min,
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
            max: self.max,
            histogram: Some(self.encode()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }

    #[test]
    fn one_to_hundred_hand_computed() {
        let mut d = Distribution::milliseconds();
        for v in 1..=100 {
            d.record(v as f64);
        }
        let s = d.stats().unwrap();
        assert_eq!(s.count, 100);
        assert!(close(s.mean, 50.5, 1e-12));
        // Sample std of 1..=100: sqrt(100*101/12) = 29.011491975882016.
        assert!(close(s.std, 29.011_491_975_882_016, 1e-12));
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 100.0);
        // Nearest-rank percentiles: the smallest value with at least q of
        // the samples at or below it; within the histogram's 0.1%.
        for (got, want) in [
            (s.p50, 50.0),
            (s.p90, 90.0),
            (s.p95, 95.0),
            (s.p99, 99.0),
            (s.p999, 100.0),
        ] {
            assert!(close(got, want, 1e-3), "got {got}, want {want}");
        }
    }

    #[test]
    fn order_does_not_matter() {
        let values = [7.25, 0.5, 3.0, 12.0, 3.0, 9.5, 0.75];
        let mut a = Distribution::milliseconds();
        let mut b = Distribution::milliseconds();
        values.iter().for_each(|v| a.record(*v));
        values.iter().rev().for_each(|v| b.record(*v));
        assert_eq!(a.stats(), b.stats());
    }

    #[test]
    fn record_n_equals_repeated_record() {
        let mut a = Distribution::milliseconds();
        let mut b = Distribution::milliseconds();
        a.record_n(2.0, 3);
        a.record_n(5.0, 2);
        for v in [2.0, 2.0, 2.0, 5.0, 5.0] {
            b.record(v);
        }
        let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
        assert_eq!(sa.count, sb.count);
        assert!(close(sa.mean, 3.2, 1e-12) && close(sb.mean, 3.2, 1e-12));
        // Sample variance of {2,2,2,5,5}: (3*1.44 + 2*3.24)/4 = 2.7.
        assert!(close(sa.std, 2.7f64.sqrt(), 1e-12));
        assert!(close(sb.std, 2.7f64.sqrt(), 1e-12));
        assert_eq!(sa.p50, sb.p50);
    }

    #[test]
    fn single_value_and_empty() {
        assert!(Distribution::milliseconds().stats().is_none());
        let mut d = Distribution::per_second();
        d.record(1234.5);
        let s = d.stats().unwrap();
        assert_eq!((s.count, s.std, s.min, s.max), (1, 0.0, 1234.5, 1234.5));
        // Clamped to the exact min/max despite bucket rounding.
        assert_eq!(s.p50, 1234.5);
        assert_eq!(s.p999, 1234.5);
    }

    #[test]
    fn sub_microsecond_and_hour_long_values_keep_precision() {
        let mut d = Distribution::milliseconds();
        d.record(0.000_5); // 500 ns
        d.record(3_600_000.0); // one hour
        let s = d.stats().unwrap();
        assert_eq!(s.min, 0.000_5);
        assert!(close(s.p50, 0.000_5, 1e-3));
        assert!(close(s.p99, 3_600_000.0, 1e-3));
    }

    #[test]
    fn histogram_round_trip_keeps_every_statistic() {
        let mut d = Distribution::milliseconds();
        for v in 0..5000 {
            d.record(0.25 + (v % 97) as f64 * 1.37);
        }
        let s = d.stats().unwrap();
        let back = s.distribution().unwrap();
        assert_eq!(back.stats().unwrap(), s);
        assert_eq!(back.buckets(), d.buckets());
    }

    #[test]
    fn merge_equals_the_distribution_of_the_union() {
        let (mut a, mut b, mut union) = (
            Distribution::milliseconds(),
            Distribution::milliseconds(),
            Distribution::milliseconds(),
        );
        for i in 0..3000u32 {
            let v = f64::from(i % 211) * 0.731 + f64::from(i % 7);
            if i % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            union.record(v);
        }
        // Merged through the result file's encoding, as a merge of two files would.
        let mut merged = a.stats().unwrap().distribution().unwrap();
        merged
            .merge(&b.stats().unwrap().distribution().unwrap())
            .unwrap();
        let (m, u) = (merged.stats().unwrap(), union.stats().unwrap());
        assert_eq!(m.count, u.count);
        assert_eq!((m.min, m.max), (u.min, u.max));
        assert!(close(m.mean, u.mean, 1e-12) && close(m.std, u.std, 1e-9));
        assert_eq!((m.p50, m.p90, m.p99, m.p999), (u.p50, u.p90, u.p99, u.p999));
        assert_eq!(m.histogram, u.histogram);
        let mut rates = Distribution::per_second();
        rates.record(1.0);
        assert!(merged.merge(&rates).is_err(), "units must match");
    }

    #[test]
    fn encoded_size_does_not_grow_with_the_count() {
        let size = |n: u32| {
            let mut d = Distribution::milliseconds();
            for i in 0..n {
                d.record(10.0 + f64::from(i % 500) * 0.1);
            }
            d.stats()
                .unwrap()
                .histogram
                .unwrap()
                .hdr_v2_deflate_base64
                .len()
        };
        let (small, large) = (size(10_000), size(1_000_000));
        assert!(
            large < small + small / 2,
            "{small} bytes at 10k, {large} at 1M"
        );
        assert!(large < 4096, "{large} bytes");
    }

    #[test]
    fn old_stats_without_histogram_say_so() {
        let mut d = Distribution::milliseconds();
        d.record(1.0);
        let mut s = d.stats().unwrap();
        s.histogram = None;
        assert!(matches!(s.distribution(), Err(HistogramError::Missing)));
    }

    #[test]
    fn values_above_a_limit_are_counted_to_the_bucket() {
        let mut d = Distribution::milliseconds();
        for v in 1..=1000 {
            d.record(v as f64);
        }
        // Near 1 s a bucket is 0.52 ms wide: 990.5 ms shares one with no
        // recorded value, so the count is exact.
        assert_eq!(d.count_above(990.5), (10, 10));
        assert_eq!(d.count_above(0.5), (1000, 1000));
        assert_eq!(d.count_above(1000.0), (0, 0));
        // 400.0004 ms lies inside 400 ms's bucket: possibly above, not surely.
        let (surely, possibly) = d.count_above(400.0004);
        assert_eq!(surely, 600);
        assert_eq!(possibly, 601);
        let round_trip = Distribution::from_stats(&d.stats().unwrap()).unwrap();
        assert_eq!(round_trip.count_above(990.5), (10, 10));
    }

    #[test]
    #[should_panic(expected = "finite and non-negative")]
    fn negative_values_are_refused() {
        Distribution::milliseconds().record(-1.0);
    }
}
