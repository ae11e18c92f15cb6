//! Whether a point's figures can be trusted: the percentiles' sample sizes
//! by MLPerf LoadGen's early-stopping rule ([`crate::early_stopping`]), and
//! the reasons a point is not valid.

use serde::{Deserialize, Serialize};

use crate::early_stopping::{estimate_rank, judge_bound, min_count, BoundVerdict, CONFIDENCE};
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

/// A point that can say whether it is valid, and name itself.
pub trait JudgedPoint {
    /// How tables name the point: `c=4`, `P=128 B=8`.
    fn point_label(&self) -> String;
    /// Its validity as recorded, or judged now for a file written before
    /// validity was kept.
    fn judged(&self) -> Validity;
}

/// A whole run's verdict: valid when it ended complete and every point is
/// valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunValidity {
    /// "valid" or "not valid".
    pub verdict: String,
    /// Points in the run.
    pub points: u64,
    /// Those that are valid.
    pub points_valid: u64,
    /// Why the run is not valid: how it ended, then each reason with the
    /// points it holds for (`c=1, c=2: ...`).
    pub reasons: Vec<String>,
}

impl RunValidity {
    /// The verdict of a run that ended as `ended` ("complete", ...) with
    /// `partial` and `points`.
    pub fn of<P: JudgedPoint>(points: &[P], ended: &str, partial: bool) -> RunValidity {
        let mut reasons = Vec::new();
        if ended != "complete" {
            reasons.push(format!("the run is {ended}"));
        } else if partial {
            reasons.push("not every planned point was measured completely".into());
        }
        // Each reason once, with every point it holds for, in first-seen order.
        let mut by_reason: Vec<(String, Vec<String>)> = Vec::new();
        let mut valid = 0;
        for p in points {
            let v = p.judged();
            if v.reasons.is_empty() {
                valid += 1;
            }
            for r in v.reasons {
                match by_reason.iter_mut().find(|(seen, _)| *seen == r) {
                    Some((_, labels)) => labels.push(p.point_label()),
                    None => by_reason.push((r, vec![p.point_label()])),
                }
            }
        }
        reasons.extend(
            by_reason
                .into_iter()
                .map(|(r, labels)| format!("{}: {r}", labels.join(", "))),
        );
        RunValidity {
            verdict: if reasons.is_empty() {
                "valid"
            } else {
                "not valid"
            }
            .into(),
            points: points.len() as u64,
            points_valid: valid,
            reasons,
        }
    }

    /// "valid (4 of 4 points)", or "not valid (1 of 4 points valid): " and
    /// the reasons.
    pub fn line(&self) -> String {
        if self.reasons.is_empty() {
            format!(
                "{} ({} of {} points)",
                self.verdict, self.points_valid, self.points
            )
        } else {
            format!(
                "{} ({} of {} points valid): {}",
                self.verdict,
                self.points_valid,
                self.points,
                self.reasons.join("; ")
            )
        }
    }
}

/// The percentile every `--slo` objective is held to.
pub const SLO_PERCENTILE: f64 = 0.99;

/// Where a point stands against its SLO at the early-stopping rule's
/// confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SloDecision {
    /// Every objective's p99 is within its limit at the confidence.
    Pass,
    /// Some objective's p99 is over its limit at the confidence.
    Fail,
    /// Neither yet: more requests would tell.
    Undecided,
}

/// A point judged against `--slo` by MLPerf LoadGen's early-stopping rule
/// instead of by its point estimate: a p99 from 100 requests that happens
/// to be under the limit is not yet a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SloVerdict {
    /// Pass only when every objective passes; fail when any fails.
    pub decision: SloDecision,
    /// The percentile the objectives are held to (0.99).
    pub percentile: f64,
    /// The confidence of a pass or a fail (MLPerf LoadGen's 0.99).
    pub confidence: f64,
    /// Requests judged: every one that ended, failed ones included (a
    /// failed request misses every objective).
    pub requests: u64,
    /// Undecided: how many more requests, each within every objective,
    /// would make it a pass.
    pub more_needed: Option<u64>,
    /// Each objective with its count.
    pub objectives: Vec<ObjectiveCheck>,
}

/// One `--slo` objective's count against the early-stopping rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObjectiveCheck {
    /// The metric judged, e.g. "ttft_from_scheduled_ms" under an open loop
    /// (from each request's intended send time), "ttft_ms" otherwise.
    pub metric: String,
    /// The objective's limit, ms.
    pub limit_ms: f64,
    /// Requests surely over the limit, failed ones included.
    pub over: u64,
    /// Requests possibly over it: `over` and those in the histogram bucket
    /// that straddles the limit (within 0.1% of it). A pass counts these as
    /// over, a fail does not.
    pub over_possibly: u64,
    /// This objective's own decision.
    pub decision: SloDecision,
    /// Requests a pass needs with `over_possibly` of them over the limit:
    /// h(t) + t (459 with none over, 662 with one).
    pub needed: u64,
}

impl SloVerdict {
    /// Judges `requests` ended requests, `failed` of them failed, against
    /// each objective: (metric, limit, the metric's stats over the
    /// successful requests). A successful request missing from a metric
    /// (a one-token request has no TPOT) is within it.
    pub fn judge(
        requests: u64,
        failed: u64,
        objectives: &[(&str, f64, Option<&Stats>)],
    ) -> SloVerdict {
        let checks: Vec<ObjectiveCheck> = objectives
            .iter()
            .map(|&(metric, limit_ms, stats)| {
                let (surely, possibly) = stats
                    .and_then(|s| Distribution::from_stats(s).ok())
                    .map_or_else(
                        // Older stats without a histogram: their max says it.
                        || match stats {
                            Some(s) if s.max > limit_ms => (0, s.count),
                            _ => (0, 0),
                        },
                        |d| d.count_above(limit_ms),
                    );
                let (over, over_possibly) = (surely + failed, possibly + failed);
                let decision = match (
                    judge_bound(requests, over_possibly, SLO_PERCENTILE, CONFIDENCE),
                    judge_bound(requests, over, SLO_PERCENTILE, CONFIDENCE),
                ) {
                    (BoundVerdict::Pass, _) => SloDecision::Pass,
                    (_, BoundVerdict::Fail) => SloDecision::Fail,
                    _ => SloDecision::Undecided,
                };
                ObjectiveCheck {
                    metric: metric.into(),
                    limit_ms,
                    over,
                    over_possibly,
                    decision,
                    needed: min_count(over_possibly, SLO_PERCENTILE, CONFIDENCE),
                }
            })
            .collect();
        let decision = if checks.iter().any(|c| c.decision == SloDecision::Fail) {
            SloDecision::Fail
        } else if checks.iter().all(|c| c.decision == SloDecision::Pass) {
            SloDecision::Pass
        } else {
            SloDecision::Undecided
        };
        let more_needed = (decision == SloDecision::Undecided).then(|| {
            checks
                .iter()
                .map(|c| c.needed.saturating_sub(requests))
                .max()
                .unwrap_or(0)
        });
        SloVerdict {
            decision,
            percentile: SLO_PERCENTILE,
            confidence: CONFIDENCE,
            requests,
            more_needed,
            objectives: checks,
        }
    }

    /// The terminal's line: "SLO p99 at 99% confidence: pass (662 requests,
    /// ttft_ms 1 over)".
    pub fn line(&self) -> String {
        let decision = match self.decision {
            SloDecision::Pass => "pass".to_string(),
            SloDecision::Fail => "fail".to_string(),
            SloDecision::Undecided => format!(
                "undecided: {} more requests within every objective would pass it",
                self.more_needed.unwrap_or(0)
            ),
        };
        let counts: Vec<String> = self
            .objectives
            .iter()
            .map(|c| {
                if c.over_possibly > c.over {
                    format!("{} {}-{} over", c.metric, c.over, c.over_possibly)
                } else {
                    format!("{} {} over", c.metric, c.over)
                }
            })
            .collect();
        format!(
            "SLO p{:.0} at {:.0}% confidence: {decision} ({} requests; {})",
            self.percentile * 100.0,
            self.confidence * 100.0,
            self.requests,
            counts.join(", ")
        )
    }
}

/// How precise a point became under `--until-precise`: each named
/// statistic with its 95% bootstrap interval, and why the point stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Precision {
    /// Whether every target was reached.
    pub reached: bool,
    /// Why the point stopped adding requests: "precise", "max_requests",
    /// "max_duration" or "interrupted".
    pub stopped_by: String,
    /// Requests the point took to get there, failed ones included
    /// (in-process: measured runs).
    pub requests: u64,
    /// The cap on requests (`--max-requests`, else 20 times the first
    /// count; in-process: runs, `--max-runs`).
    pub max_requests: u64,
    /// The cap on time, seconds (`--max-duration`).
    pub max_duration_s: Option<f64>,
    /// Each target as reached.
    pub targets: Vec<PrecisionCheck>,
}

/// One `--until-precise` target, as reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrecisionCheck {
    /// The statistic as the flag names it: "ttft.p50".
    pub statistic: String,
    /// The point's metric it was read from: "ttft_from_scheduled_ms" under
    /// an open loop, "ttft_ms" otherwise, ...
    pub metric: String,
    /// The statistic, in the metric's unit (null: the metric has no value,
    /// as TPOT of one-token requests).
    pub value: Option<f64>,
    /// Its 95% bootstrap interval (one draw per request).
    pub interval: Option<super::difference::Interval>,
    /// The interval's half-width, percent of the statistic.
    pub half_width_percent: Option<f64>,
    /// The half-width asked for, percent.
    pub target_percent: f64,
    /// The observations the percentile needs before its interval counts:
    /// MLPerf LoadGen's early-stopping count h(1) + 1 (11 for a p50, 662
    /// for a p99). Below it a bootstrap of a tail percentile resamples the
    /// few largest values and looks precise when it is not (absent in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observations_needed: Option<u64>,
    /// Whether it was reached: the half-width within the target, from at
    /// least `observations_needed`.
    pub met: bool,
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
    fn an_slo_passes_fails_or_waits_by_the_count_over_its_limit() {
        let judge = |values: &Stats, failed: u64, limit: f64| {
            SloVerdict::judge(
                values.count + failed,
                failed,
                &[("ttft_ms", limit, Some(values))],
            )
        };
        // 100 requests, all under: the point estimate passes, the rule waits.
        let hundred = stats_of((1..=100).map(f64::from));
        let v = judge(&hundred, 0, 200.0);
        assert_eq!(v.decision, SloDecision::Undecided);
        assert_eq!(v.more_needed, Some(359));
        assert!(
            v.line().contains("undecided: 359 more requests"),
            "{}",
            v.line()
        );
        // 5 of 100 over: a p99 under the limit would rarely show that.
        let v = judge(&hundred, 0, 95.5);
        assert_eq!((v.decision, v.objectives[0].over), (SloDecision::Fail, 5));
        // 459 under: a pass; one failure makes it wait for 662.
        let enough = stats_of((1..=459).map(f64::from));
        assert_eq!(judge(&enough, 0, 500.0).decision, SloDecision::Pass);
        let v = judge(&enough, 1, 500.0);
        assert_eq!(v.decision, SloDecision::Undecided);
        assert_eq!(v.more_needed, Some(662 - 460));
        // Several objectives: any fail fails, all must pass.
        let v = SloVerdict::judge(
            459,
            0,
            &[
                ("ttft_ms", 500.0, Some(&enough)),
                ("e2e_ms", 10.0, Some(&enough)),
            ],
        );
        assert_eq!(v.decision, SloDecision::Fail);
        assert_eq!(v.objectives[0].decision, SloDecision::Pass);
    }

    struct Point(&'static str, Vec<&'static str>);

    impl JudgedPoint for Point {
        fn point_label(&self) -> String {
            self.0.into()
        }
        fn judged(&self) -> Validity {
            Validity::new(
                &[],
                1,
                "request",
                &[],
                self.1.iter().map(|r| r.to_string()).collect(),
            )
        }
    }

    #[test]
    fn a_run_is_valid_only_complete_with_every_point_valid() {
        let points = [
            Point("c=1", vec!["cut short", "client saturated"]),
            Point("c=2", vec![]),
            Point("c=4", vec!["client saturated"]),
        ];
        let run = RunValidity::of(&points, "complete", false);
        assert_eq!((run.points, run.points_valid), (3, 1));
        assert_eq!(
            run.line(),
            "not valid (1 of 3 points valid): c=1: cut short; c=1, c=4: client saturated"
        );
        let fine = RunValidity::of(&points[1..2], "complete", false);
        assert_eq!(fine.line(), "valid (1 of 1 points)");
        let interrupted = RunValidity::of(&points[1..2], "interrupted", true);
        assert_eq!(interrupted.reasons, ["the run is interrupted"]);
        let partial = RunValidity::of(&points[1..2], "complete", true);
        assert_eq!(partial.verdict, "not valid");
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
