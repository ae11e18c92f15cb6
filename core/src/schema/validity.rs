//! Whether a point's figures can be trusted: the percentiles' sample sizes
//! by MLPerf LoadGen's early-stopping rule ([`crate::early_stopping`]), and
//! the reasons a point is not valid.

use serde::{Deserialize, Serialize};

use crate::early_stopping::{estimate_rank, min_count, CONFIDENCE};
use crate::stats::{Distribution, Stats};

/// The percentiles every stats object reports, by name and quantile.
pub const PERCENTILES: [(&str, f64); 4] =
    [("p90", 0.90), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)];

/// A point's validity: the verdict, its reasons, and what they rest on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Validity {
    /// "valid", or "not valid" when any reason stands.
    pub verdict: String,
    /// Why the point is not valid, each said plainly; empty when valid.
    pub reasons: Vec<String>,
    /// The early-stopping rule's confidence (MLPerf LoadGen's 0.99).
    pub confidence: f64,
    /// Independent observations behind the percentiles: requests that
    /// succeeded (served) or measured runs (in-process).
    pub observations: u64,
    /// What one observation is: "request" or "run".
    pub observation: String,
    /// Every reported latency percentile with the count it needs.
    pub percentiles: Vec<PercentileCheck>,
}

/// One percentile of one metric against the early-stopping rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PercentileCheck {
    /// The metric's key, e.g. "ttft_ms".
    pub metric: String,
    /// The percentile's key, e.g. "p99".
    pub percentile: String,
    /// The observations it needs for an upper bound at the confidence:
    /// h(1) + 1 (662 for a p99).
    pub needed: u64,
    /// Whether the point has them.
    pub met: bool,
    /// With them: the upper bound of the percentile at the confidence (the
    /// value at rank n − t + 1 of n, for the largest t with h(t) + t ≤ n,
    /// read from the metric's histogram), in the metric's unit.
    pub upper_bound: Option<f64>,
}

impl Validity {
    /// The checks of `metrics` (key, stats) from `observations` of kind
    /// `observation`, with `reasons` the caller found; the percentiles
    /// without their count add one reason for the percentiles the tables
    /// print (`shown`, e.g. ["p99"]).
    pub fn new(
        metrics: &[(&str, Option<&Stats>)],
        observations: u64,
        observation: &str,
        shown: &[&str],
        mut reasons: Vec<String>,
    ) -> Validity {
        let mut percentiles = Vec::new();
        for &(metric, stats) in metrics {
            let Some(stats) = stats else { continue };
            let distribution = Distribution::from_stats(stats).ok();
            for (name, p) in PERCENTILES {
                let needed = min_count(1, p, CONFIDENCE);
                let upper_bound = estimate_rank(observations, p, CONFIDENCE).and_then(|t| {
                    let q = (observations - t + 1) as f64 / observations as f64;
                    distribution.as_ref().map(|d| d.value_at_quantile(q))
                });
                percentiles.push(PercentileCheck {
                    metric: metric.into(),
                    percentile: name.into(),
                    needed,
                    met: observations >= needed,
                    upper_bound,
                });
            }
        }
        let short: Vec<String> = PERCENTILES
            .iter()
            .filter(|(name, _)| shown.contains(name))
            .filter_map(|&(name, p)| {
                let needed = min_count(1, p, CONFIDENCE);
                (observations < needed && !percentiles.is_empty())
                    .then(|| format!("{name} needs {needed} {observation}s"))
            })
            .collect();
        if !short.is_empty() {
            reasons.insert(
                0,
                format!(
                    "{} from {observations} {observation}s (MLPerf LoadGen's early-stopping rule at {:.0}% confidence)",
                    short.join(", "),
                    CONFIDENCE * 100.0
                ),
            );
        }
        Validity {
            verdict: if reasons.is_empty() {
                "valid"
            } else {
                "not valid"
            }
            .into(),
            reasons,
            confidence: CONFIDENCE,
            observations,
            observation: observation.into(),
            percentiles,
        }
    }

    /// Whether `percentile` of `metric` lacks its count.
    pub fn lacks(&self, metric: &str, percentile: &str) -> bool {
        self.percentiles
            .iter()
            .any(|c| c.metric == metric && c.percentile == percentile && !c.met)
    }

    /// The terminal's line: "valid", or "not valid: " and the reasons.
    pub fn line(&self) -> String {
        if self.reasons.is_empty() {
            self.verdict.clone()
        } else {
            format!("{}: {}", self.verdict, self.reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_of(values: impl Iterator<Item = f64>) -> Stats {
        let mut d = Distribution::milliseconds();
        for v in values {
            d.record(v);
        }
        d.stats().expect("values")
    }

    #[test]
    fn sixteen_requests_lack_a_p99_and_a_thousand_give_its_bound() {
        let few = stats_of((1..=16).map(f64::from));
        let v = Validity::new(
            &[("ttft_ms", Some(&few))],
            16,
            "request",
            &["p99"],
            Vec::new(),
        );
        assert_eq!(v.verdict, "not valid");
        assert!(
            v.reasons[0].starts_with("p99 needs 662 requests from 16 requests"),
            "{:?}",
            v.reasons
        );
        assert!(v.lacks("ttft_ms", "p99") && v.lacks("ttft_ms", "p90"));
        assert!(v.percentiles.iter().all(|c| c.upper_bound.is_none()));

        // 1..=1001 ms: n = 1001 gives t = 3 at p99 (h(3) + 3 = 1001), so
        // the bound is the value at rank 1001 − 3 + 1 = 999.
        let many = stats_of((1..=1001).map(f64::from));
        let v = Validity::new(
            &[("ttft_ms", Some(&many))],
            1001,
            "request",
            &["p99"],
            Vec::new(),
        );
        assert_eq!(v.line(), "valid");
        let p99 = v
            .percentiles
            .iter()
            .find(|c| c.percentile == "p99")
            .unwrap();
        assert!(p99.met);
        let bound = p99.upper_bound.unwrap();
        assert!((bound - 999.0).abs() <= 1.0, "{bound}");
        assert!(
            bound >= many.p99,
            "an upper bound of the p99: {bound} vs {}",
            many.p99
        );
        // p99.9 needs 6,636: 1001 requests lack it, without a reason (not shown).
        assert!(v.lacks("ttft_ms", "p999"));
    }

    #[test]
    fn reasons_from_the_caller_make_the_point_not_valid() {
        let s = stats_of((1..=1001).map(f64::from));
        let v = Validity::new(
            &[("ttft_ms", Some(&s))],
            1001,
            "request",
            &["p99"],
            vec!["client saturated".into()],
        );
        assert_eq!(v.line(), "not valid: client saturated");
    }
}
