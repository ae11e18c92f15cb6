//! Alternating rounds: several servers measured in turns, A B A B ..., each
//! round on fresh prompts and the same prompts for every target. A shared
//! machine drifts by several percent over minutes; measured in turns, the
//! drift falls on every side alike, and differences paired by round cancel
//! it. The file keeps every round's result and summarizes per load: pooled
//! statistics (the rounds merged exactly), the per-round medians with their
//! spread and a t-interval over rounds, and each target against the first.

use crate::merge::merge_http_points;
use crate::schema::HttpPoint;
use crate::significance::{median_difference, Interval, Sample, DEFAULT_RESAMPLES};
use crate::stats::Stats;

pub use crate::schema::rounds::{
    LoadSummary, OverRounds, PairedDifference, RoundEntry, RoundsResult, RoundsSettings,
    TargetRuns, TargetSummary, ROUNDS_SCHEMA_VERSION, ROUND_METRICS,
};

fn metric_value(p: &HttpPoint, metric: &str) -> Option<f64> {
    let p50 = |s: &Option<Stats>| s.as_ref().map(|s| s.p50);
    match metric {
        "ttft_ms" => p.ttft_judged_ms().map(|s| s.p50),
        "tpot_ms" => p50(&p.tpot_ms),
        "e2e_ms" => p50(&p.e2e_ms),
        "output_tok_s" => (p.requests.succeeded > 0).then_some(p.output_throughput_tok_s),
        _ => None,
    }
}

fn pooled_stats<'a>(p: &'a HttpPoint, metric: &str) -> Option<&'a Stats> {
    match metric {
        "ttft_ms" => p.ttft_judged_ms(),
        "tpot_ms" => p.tpot_ms.as_ref(),
        "e2e_ms" => p.e2e_ms.as_ref(),
        _ => None,
    }
}

fn sample(stats: Option<&Stats>, independent: u64) -> Option<Sample> {
    Sample::from_distribution(&stats?.distribution().ok()?, independent)
}

/// Mean, and the Student-t interval of the mean at `level` (2+ values).
pub fn t_interval(values: &[f64], level: f64) -> (f64, Option<f64>, Option<Interval>) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, None, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None, None);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let cv = (mean != 0.0).then(|| sd / mean.abs());
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .map(|d| d.inverse_cdf(1.0 - (1.0 - level) / 2.0))
        .unwrap_or(f64::NAN);
    let half = t * sd / (n as f64).sqrt();
    (
        mean,
        cv,
        half.is_finite().then_some(Interval {
            low: mean - half,
            high: mean + half,
            level,
        }),
    )
}

/// The bootstrap interval of one sample's median.
#[expect(
    clippy::expect_used,
    reason = "a sample of one finite value always exists"
)]
fn median_ci(s: &Sample, level: f64, seed: u64) -> Interval {
    // The difference from a sample of one zero is the median itself.
    let zero = Sample::from_values(&[0.0]).expect("one value");
    median_difference(&zero, s, level, DEFAULT_RESAMPLES, seed).difference_ci
}

/// A target against the first on one metric, from their values round by
/// round (`None` where a round did not measure it): the paired differences'
/// mean and t interval, the ratio of the means, the difference of the
/// pooled medians (`pooled`: the first's sample and this one's) and the
/// verdict. `None` when no round pairs up.
fn paired_difference(
    metric: &str,
    (base_rounds, per_round): (&[Option<f64>], &[Option<f64>]),
    pooled: Option<(Sample, Sample)>,
    level: f64,
    seed: u64,
) -> Option<PairedDifference> {
    let paired: Vec<f64> = per_round
        .iter()
        .zip(base_rounds)
        .filter_map(|(a, b)| Some((*a)? - (*b)?))
        .collect();
    if paired.is_empty() {
        return None;
    }
    let (mean, _, t) = t_interval(&paired, level);
    let base_values: Vec<f64> = base_rounds.iter().flatten().copied().collect();
    let values: Vec<f64> = per_round.iter().flatten().copied().collect();
    let (base_mean, _, _) = t_interval(&base_values, level);
    let (this_mean, _, _) = t_interval(&values, level);
    let ratio = (base_mean.is_finite() && base_mean != 0.0 && this_mean.is_finite())
        .then(|| this_mean / base_mean);
    let pooled = pooled.map(|(b, o)| median_difference(&b, &o, level, DEFAULT_RESAMPLES, seed));
    let lower_better = metric != "output_tok_s";
    let verdict = match t {
        Some(i) if i.excludes_zero() => {
            if (mean < 0.0) == lower_better {
                "better"
            } else {
                "worse"
            }
        }
        _ => "no significant difference",
    };
    Some(PairedDifference {
        per_round: paired,
        mean,
        ratio,
        t_interval: t,
        pooled,
        verdict: verdict.into(),
    })
}

/// The summary of every load the first target's first round measured.
pub fn summarize(targets: &[TargetRuns], level: f64) -> Vec<LoadSummary> {
    let Some(first) = targets.first().and_then(|t| t.rounds.first()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (li, load) in first.points.iter().enumerate() {
        let mut summaries = Vec::new();
        let mut first_pooled: Option<HttpPoint> = None;
        for (ti, target) in targets.iter().enumerate() {
            let points: Vec<(String, &HttpPoint)> = target
                .rounds
                .iter()
                .enumerate()
                .filter_map(|(r, res)| {
                    let p = res.points.iter().find(|p| p.load == load.load)?;
                    Some((format!("round {r}"), p))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let parts: Vec<(&str, &HttpPoint)> =
                points.iter().map(|(n, p)| (n.as_str(), *p)).collect();
            let Ok(pooled) = merge_http_points(&parts, &mut Vec::new()) else {
                continue;
            };
            let mut metrics = std::collections::BTreeMap::new();
            let mut versus = std::collections::BTreeMap::new();
            for (mi, metric) in ROUND_METRICS.iter().enumerate() {
                let per_round: Vec<Option<f64>> = points
                    .iter()
                    .map(|(_, p)| metric_value(p, metric))
                    .collect();
                let values: Vec<f64> = per_round.iter().flatten().copied().collect();
                // No round measured it (every request failed): a NaN mean
                // would be written as null and not read back.
                if values.is_empty() {
                    continue;
                }
                let (mean, cv, t) = t_interval(&values, level);
                let seed = (li as u64) << 16 | (ti as u64) << 8 | mi as u64;
                let pooled_sample =
                    sample(pooled_stats(&pooled, metric), pooled.requests.succeeded);
                metrics.insert(
                    metric.to_string(),
                    OverRounds {
                        per_round: values.clone(),
                        mean,
                        cv,
                        t_interval: t,
                        pooled_median: pooled_sample.as_ref().map(Sample::median),
                        pooled_median_ci: pooled_sample.as_ref().map(|s| median_ci(s, level, seed)),
                    },
                );
                if ti == 0 {
                    continue;
                }
                let base_rounds: Vec<Option<f64>> = targets[0]
                    .rounds
                    .iter()
                    .map(|res| {
                        res.points
                            .iter()
                            .find(|p| p.load == load.load)
                            .and_then(|p| metric_value(p, metric))
                    })
                    .collect();
                let base_sample = first_pooled
                    .as_ref()
                    .and_then(|b| sample(pooled_stats(b, metric), b.requests.succeeded));
                let difference = paired_difference(
                    metric,
                    (&base_rounds, &per_round),
                    base_sample.zip(pooled_sample),
                    level,
                    seed,
                );
                if let Some(difference) = difference {
                    versus.insert(metric.to_string(), difference);
                }
            }
            if ti == 0 {
                first_pooled = Some(pooled.clone());
            }
            summaries.push(TargetSummary {
                url: target.url.clone(),
                pooled,
                metrics,
                versus_first: (ti > 0).then_some(versus),
            });
        }
        out.push(LoadSummary {
            load: load.load.label(),
            targets: summaries,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_of_known_values() {
        // n = 4, mean 2.5, sd 1.291, t(3, 0.975) = 3.182: half-width 2.054.
        let (mean, cv, i) = t_interval(&[1.0, 2.0, 3.0, 4.0], 0.95);
        assert_eq!(mean, 2.5);
        assert!((cv.unwrap() - 1.290_994 / 2.5).abs() < 1e-6);
        let i = i.unwrap();
        assert!((i.high - 2.5 - 2.054_3).abs() < 1e-3, "{i:?}");
        let (_, cv, i) = t_interval(&[7.0], 0.95);
        assert!(cv.is_none() && i.is_none());
    }
}
