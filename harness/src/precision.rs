//! `--until-precise`: how precise a point's statistics are (95% bootstrap
//! intervals from its histograms, one draw per request, as `compare` draws
//! them), and how many more requests would make them precise enough.

use inferbench_core::early_stopping::{min_count, CONFIDENCE};
use inferbench_core::spec::{PreciseMetric, PrecisionTarget};

use crate::schema::validity::PrecisionCheck;
use crate::schema::{HttpPoint, InprocPoint};
use crate::significance::{quantile_interval, Sample, DEFAULT_RESAMPLES};
use crate::stats::{Distribution, Stats};

/// The interval's confidence level.
pub const LEVEL: f64 = 0.95;

/// Each target on a served point (one draw per request). The bootstrap is
/// seeded, so that a point gives the same intervals every time it is
/// checked.
pub fn check(point: &HttpPoint, targets: &[PrecisionTarget]) -> Vec<PrecisionCheck> {
    check_stats(targets, point.requests.succeeded, |m| metric_of(point, m))
}

/// Each target on an in-process point: one draw per measured run (a
/// batch's sequences share their run's timings, so they are one
/// observation, as `compare` counts them). In-process points have no E2E.
pub fn check_inproc(point: &InprocPoint, targets: &[PrecisionTarget]) -> Vec<PrecisionCheck> {
    check_stats(targets, u64::from(point.runs), |m| match m {
        PreciseMetric::Ttft => ("ttft_ms", point.ttft_ms.as_ref()),
        PreciseMetric::Itl => ("itl_ms", point.itl_ms.as_ref()),
        PreciseMetric::Tpot => ("tpot_ms", point.tpot_ms.as_ref()),
        PreciseMetric::E2e => ("e2e_ms", None),
    })
}

fn check_stats<'a>(
    targets: &[PrecisionTarget],
    independent: u64,
    metric_of: impl Fn(PreciseMetric) -> (&'static str, Option<&'a Stats>),
) -> Vec<PrecisionCheck> {
    targets
        .iter()
        .map(|target| {
            let (metric, stats) = metric_of(target.metric);
            let q = target.statistic.quantile();
            let needed = min_count(1, q, CONFIDENCE);
            let sample = stats
                .and_then(|s| Distribution::from_stats(s).ok())
                .and_then(|d| Sample::from_distribution(&d, independent));
            let found = sample.map(|s| {
                let value = s.quantile(q);
                (value, quantile_interval(&s, q, LEVEL, DEFAULT_RESAMPLES, 0))
            });
            let half_width_percent = found.and_then(|(value, interval)| {
                (value > 0.0).then(|| 100.0 * (interval.high - interval.low) / 2.0 / value)
            });
            PrecisionCheck {
                statistic: target.name(),
                metric: metric.into(),
                value: found.map(|(v, _)| v),
                interval: found.map(|(_, i)| i),
                half_width_percent,
                target_percent: target.within_percent,
                observations_needed: Some(needed),
                met: independent >= needed
                    && half_width_percent.is_some_and(|h| h <= target.within_percent),
            }
        })
        .collect()
}

/// The most observations any target's percentile needs before its
/// interval counts (662 for a p99): the default caps reach at least this.
pub fn observations_needed(targets: &[PrecisionTarget]) -> u64 {
    targets
        .iter()
        .map(|t| min_count(1, t.statistic.quantile(), CONFIDENCE))
        .max()
        .unwrap_or(0)
}

/// The point's stats of `metric`, with their key: TTFT and E2E as the
/// point is judged (from the intended send time under an open loop).
fn metric_of(point: &HttpPoint, metric: PreciseMetric) -> (&'static str, Option<&Stats>) {
    match metric {
        PreciseMetric::Ttft => point.ttft_judged(),
        PreciseMetric::Itl => ("itl_ms", point.itl_ms.as_ref()),
        PreciseMetric::Tpot => ("tpot_ms", point.tpot_ms.as_ref()),
        PreciseMetric::E2e => point.e2e_judged(),
    }
}

/// The requests to add after `sent` so that every unmet check may be met:
/// an interval narrows as 1/√n, so a half-width h aiming at t needs about
/// n·(h/t)² requests in all; at least a quarter more and at most four
/// times as many, so that a noisy estimate neither crawls nor overshoots.
/// `None` when every check is met.
pub fn more_needed(checks: &[PrecisionCheck], sent: u64) -> Option<u64> {
    let n = sent.max(1) as f64;
    checks
        .iter()
        .filter(|c| !c.met)
        .map(|c| {
            let by_width = match c.half_width_percent {
                Some(h) => (n * (h / c.target_percent).powi(2) - n).ceil(),
                // No value yet (too few requests with this metric): double.
                None => n,
            };
            let to_count = c.observations_needed.map_or(0.0, |k| k as f64 - n);
            by_width.clamp(n / 4.0, 4.0 * n).max(to_count).ceil() as u64
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(half_width: Option<f64>, target: f64) -> PrecisionCheck {
        PrecisionCheck {
            statistic: "ttft.p50".into(),
            metric: "ttft_ms".into(),
            value: Some(100.0),
            interval: None,
            half_width_percent: half_width,
            target_percent: target,
            observations_needed: Some(11),
            met: half_width.is_some_and(|h| h <= target),
        }
    }

    #[test]
    fn more_requests_follow_the_square_root_law_within_bounds() {
        // 4% aiming at 2% needs 4 times the requests: 300 more after 100.
        assert_eq!(more_needed(&[check(Some(4.0), 2.0)], 100), Some(300));
        // Nearly there: a quarter more at least.
        assert_eq!(more_needed(&[check(Some(2.1), 2.0)], 100), Some(25));
        // Far off: four times as many at most.
        assert_eq!(more_needed(&[check(Some(20.0), 1.0)], 100), Some(400));
        // No value yet: double.
        assert_eq!(more_needed(&[check(None, 1.0)], 100), Some(100));
        // The widest unmet one sets the batch; met ones none.
        assert_eq!(
            more_needed(&[check(Some(1.0), 2.0), check(Some(3.0), 2.0)], 100),
            Some(125)
        );
        assert_eq!(more_needed(&[check(Some(1.0), 2.0)], 100), None);
        // A p99 goes to its early-stopping count at once, past the 4x cap.
        let p99 = PrecisionCheck {
            observations_needed: Some(662),
            met: false,
            ..check(Some(1.0), 5.0)
        };
        assert_eq!(more_needed(&[p99], 16), Some(646));
    }
}
