//! From one replica's sweep to a replica count: the highest load that met
//! every objective at p99, the replicas a target rate needs with headroom,
//! and what each replica should then see. The searches for that load
//! (`--find-max-rate`, `--find-max-concurrency`) are [`search_max`], which
//! steps with [`next_probe`].

use crate::schema::validity::SloDecision;
use crate::schema::{HttpPoint, LoadKind, Slo};
use crate::stats::Stats;

/// Whether a point's p99 meets every objective, with no failed request, by
/// its point estimate. Under an open loop TTFT and E2E count from the
/// intended send time.
pub fn meets_slo(point: &HttpPoint, slo: &Slo) -> bool {
    let within = |limit: Option<f64>, stats: Option<&Stats>| match limit {
        None => true,
        Some(limit) => stats.is_some_and(|s| s.p99 <= limit),
    };
    let ttft = point.ttft_judged_ms();
    point.requests.failed == 0
        && point.requests.succeeded > 0
        && within(slo.ttft_ms, ttft)
        && within(slo.tpot_ms, point.tpot_ms.as_ref())
        && within(slo.e2e_ms, point.e2e_judged().1)
}

/// A point called against the SLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SloCall {
    /// Whether it met every objective.
    pub met: bool,
    /// Whether the call fell back to the point estimate ([`meets_slo`])
    /// because the early-stopping rule left it undecided.
    pub by_estimate: bool,
}

impl SloCall {
    /// How the call was made, as the result files say it.
    pub fn decided_by(self) -> &'static str {
        if self.by_estimate {
            "point_estimate"
        } else {
            "early_stopping"
        }
    }
}

/// Calls a point against the SLO by MLPerf LoadGen's early-stopping rule at
/// 99% confidence ([`HttpPoint::judge_slo`]), and by its point estimate
/// where the rule cannot decide yet.
pub fn call_slo(point: &HttpPoint, slo: &Slo) -> SloCall {
    match point.judge_slo(slo).map(|v| v.decision) {
        Some(SloDecision::Pass) => SloCall {
            met: true,
            by_estimate: false,
        },
        Some(SloDecision::Fail) => SloCall {
            met: false,
            by_estimate: false,
        },
        Some(SloDecision::Undecided) | None => SloCall {
            met: meets_slo(point, slo),
            by_estimate: true,
        },
    }
}

/// The next load a search probes: doubling from the start until a probe
/// fails, halving until one passes, then bisecting until the bracket is
/// within 10% (and, for whole loads such as concurrency, until it is one
/// apart). `None`: the search is done.
pub fn next_probe(best: Option<f64>, failing: Option<f64>, whole: bool) -> Option<f64> {
    let step = |x: f64| if whole { x.round().max(1.0) } else { x };
    match (best, failing) {
        (Some(lo), None) => Some(step(lo * 2.0)),
        (None, Some(hi)) => {
            let next = step(hi / 2.0);
            (!whole || next < hi).then_some(next)
        }
        (Some(lo), Some(hi)) => {
            let close = (hi - lo) / hi <= 0.1 || (whole && hi - lo <= 1.0);
            (!close).then(|| {
                if whole {
                    ((lo + hi) / 2.0).floor()
                } else {
                    (lo + hi) / 2.0
                }
            })
        }
        (None, None) => None,
    }
}

/// What one probe of a search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// The load met the objective.
    Met,
    /// The load missed the objective.
    Missed,
    /// The probe did not finish (interrupted): the search stops, and the
    /// probe counts neither way.
    Incomplete,
}

/// Where a search ended: the highest load that met the objective and the
/// lowest that missed it, of `probes` probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOutcome {
    /// The highest load probed that met the objective, in the search's unit
    /// (req/s or concurrency); `None`: no probe met it.
    pub best: Option<f64>,
    /// The lowest load probed that missed it; `None`: no probe missed.
    pub failing: Option<f64>,
    /// Probes measured (at most 12), an incomplete last one included.
    pub probes: u32,
}

/// Probes at most 12 loads, from `start`, stepping with [`next_probe`]
/// (`whole`: loads are whole numbers, such as concurrency), to bracket the
/// highest load that meets the objective. `probe` measures one load; `None`
/// stops the search before it (an interrupt).
pub fn search_max<E>(
    start: f64,
    whole: bool,
    mut probe: impl FnMut(f64) -> Result<Option<ProbeVerdict>, E>,
) -> Result<SearchOutcome, E> {
    const MAX_PROBES: u32 = 12;
    let mut outcome = SearchOutcome {
        best: None,
        failing: None,
        probes: 0,
    };
    let mut load = start;
    while outcome.probes < MAX_PROBES {
        let Some(verdict) = probe(load)? else { break };
        outcome.probes += 1;
        match verdict {
            ProbeVerdict::Incomplete => break,
            ProbeVerdict::Met => outcome.best = Some(load),
            ProbeVerdict::Missed => outcome.failing = Some(load),
        }
        match next_probe(outcome.best, outcome.failing, whole) {
            Some(next) => load = next,
            None => break,
        }
    }
    Ok(outcome)
}

pub use crate::schema::plan::{Expected, Plan};

fn interpolate(points: &[(f64, Expected)], x: f64) -> Option<Expected> {
    let first = points.first()?;
    if x <= first.0 {
        return Some(first.1);
    }
    for w in points.windows(2) {
        let ((x0, a), (x1, b)) = (w[0], w[1]);
        if x <= x1 {
            let t = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.0 };
            return Some(Expected {
                p50: a.p50 + t * (b.p50 - a.p50),
                p99: a.p99 + t * (b.p99 - a.p99),
            });
        }
    }
    points.last().map(|p| p.1)
}

/// Plans from `points` (one replica's sweep, closed or open loop) for
/// `target_rate` requests per second, keeping `headroom` (0.3: plan each
/// replica at 70% of its capacity).
pub fn plan(points: &[HttpPoint], slo: Slo, target_rate: f64, headroom: f64) -> Plan {
    let mut advice = Vec::new();
    // One curve: a sweep of both kinds is planned from its open-loop
    // points, whose rates are the traffic a replica is offered.
    let mixed = points.iter().any(|p| p.load.kind == LoadKind::Open)
        && points.iter().any(|p| p.load.kind != LoadKind::Open);
    if mixed {
        advice.push(
            "the file has closed- and open-loop points: planned from the open-loop ones".into(),
        );
    }
    let mut measured: Vec<&HttpPoint> = points
        .iter()
        .filter(|p| !mixed || p.load.kind == LoadKind::Open)
        .filter(|p| p.requests.succeeded > 0 && p.request_throughput_req_s > 0.0)
        .collect();
    measured.sort_by(|a, b| {
        a.request_throughput_req_s
            .total_cmp(&b.request_throughput_req_s)
    });
    let passing_prefix = measured
        .iter()
        .take_while(|p| call_slo(p, &slo).met)
        .count();
    let capacity = passing_prefix.checked_sub(1).map(|i| measured[i]);
    let failing = measured.get(passing_prefix).copied();
    let rate = |p: &HttpPoint| p.request_throughput_req_s;
    match (capacity, failing) {
        (Some(c), Some(f)) => advice.push(format!(
            "the sweep brackets the SLO boundary: {} ({:.3} req/s) met it, {} ({:.3} req/s) did not; measure between them to narrow it",
            c.load.label(),
            rate(c),
            f.load.label(),
            rate(f)
        )),
        (Some(c), None) => advice.push(format!(
            "every point met the SLO: one replica may take more than {:.3} req/s; extend the sweep above {} (or use --find-max-rate / --find-max-concurrency)",
            rate(c),
            c.load.label()
        )),
        (None, Some(f)) => advice.push(format!(
            "no point met the SLO, not even the lightest ({}, {:.3} req/s): sweep lower loads, or the objectives cannot be met on this setup",
            f.load.label(),
            rate(f)
        )),
        (None, None) => advice.push("the file has no point with a successful request".into()),
    }
    let capacity_call = capacity.map(|c| call_slo(c, &slo));
    if let (Some(c), Some(call)) = (capacity, capacity_call) {
        if call.by_estimate {
            let needed = c
                .judge_slo(&slo)
                .and_then(|v| v.more_needed)
                .map_or(0, |more| more + c.requests.succeeded + c.requests.failed);
            advice.push(format!(
                "{} met the SLO by its point estimate only: {} requests, where a p99 at 99% confidence needs {needed} (MLPerf LoadGen's early stopping); measure it with more requests before trusting the capacity",
                c.load.label(),
                c.requests.succeeded + c.requests.failed
            ));
        }
    }
    if measured[passing_prefix..]
        .iter()
        .any(|p| call_slo(p, &slo).met)
    {
        advice.push("a load above a failing one passed again: the sweep is noisy near the boundary; repeat it (--rounds) before trusting the capacity".into());
    }
    let capacity_req_s = capacity.map(rate);
    let replicas = capacity_req_s
        .filter(|c| *c > 0.0 && target_rate > 0.0)
        .map(|c| (target_rate / (c * (1.0 - headroom))).ceil().max(1.0) as u64);
    let per_replica = replicas.map(|n| target_rate / n as f64);
    let curve = |get: fn(&HttpPoint) -> Option<&Stats>| {
        let pts: Vec<(f64, Expected)> = measured
            .iter()
            .filter_map(|p| {
                let s = get(p)?;
                Some((
                    rate(p),
                    Expected {
                        p50: s.p50,
                        p99: s.p99,
                    },
                ))
            })
            .collect();
        per_replica.and_then(|x| interpolate(&pts, x))
    };
    if let (Some(x), Some(low)) = (per_replica, measured.first()) {
        if x < rate(low) {
            advice.push(format!(
                "each replica would see {x:.3} req/s, below the lightest point measured ({:.3} req/s): the expected latencies are that point's",
                rate(low)
            ));
        }
    }
    Plan {
        target_rate,
        headroom,
        slo,
        capacity_req_s,
        capacity_point: capacity.map(|c| c.load.label()),
        capacity_decided_by: capacity_call.map(|c| c.decided_by().to_string()),
        first_failing_req_s: failing.map(rate),
        replicas,
        per_replica_req_s: per_replica,
        expected_ttft_ms: curve(HttpPoint::ttft_judged_ms),
        expected_tpot_ms: curve(|p| p.tpot_ms.as_ref()),
        expected_e2e_ms: curve(|p| p.e2e_ms.as_ref()),
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ArrivalKind, ClientCost, LoadDescription, RequestCounts};
    use crate::stats::Distribution;

    fn stats(p50: f64, p99: f64) -> Option<Stats> {
        let mut d = Distribution::milliseconds();
        for i in 0..100 {
            d.record(if i < 98 { p50 } else { p99 });
        }
        d.stats()
    }

    /// A synthetic point at `rate` req/s whose TTFT p99 grows with load.
    fn point(rate: f64, ttft_p99: f64) -> HttpPoint {
        HttpPoint {
            load: LoadDescription {
                kind: LoadKind::Open,
                concurrency: None,
                rate: Some(rate),
                arrival: Some(ArrivalKind::Poisson),
                burstiness: None,
                max_inflight: None,
                trace_speed: None,
            },
            complete: true,
            requests: RequestCounts {
                total: 100,
                succeeded: 100,
                ..RequestCounts::default()
            },
            late_requests: 0,
            schedule_lag_ms: None,
            ttft_ms: stats(ttft_p99 / 2.0, ttft_p99),
            ttft_from_scheduled_ms: None,
            e2e_from_scheduled_ms: None,
            itl_ms: None,
            tpot_ms: stats(20.0, 30.0),
            e2e_ms: None,
            input_tokens: None,
            output_tokens: None,
            output_tokens_source: Default::default(),
            token_count_discrepancy: None,
            empty_chunks: 0,
            duration_s: 100.0 / rate,
            first_send_unix_s: None,
            output_throughput_tok_s: 0.0,
            request_throughput_req_s: rate,
            input_throughput_tok_s: 0.0,
            per_request_output_tok_s: None,
            goodput_req_s: None,
            slo_met: None,
            server_prompt_ms: None,
            server_predicted_per_token_ms: None,
            prompt_cache: None,
            prompt_token_check: None,
            client: ClientCost::default(),
            telemetry: None,
            server_metrics: None,
            num_requests_planned: None,
            duration_planned_s: None,
            prompt_stream: None,
            turns: None,
            conversations: None,
            prefix_groups: None,
            validity: None,
            slo_verdict: None,
            precision: None,
            energy: None,
            steady_state: None,
            slices: None,
            start: None,
        }
    }

    fn slo() -> Slo {
        Slo {
            ttft_ms: Some(500.0),
            ..Slo::default()
        }
    }

    #[test]
    fn capacity_is_the_last_passing_point_and_replicas_keep_the_headroom() {
        // The boundary (TTFT p99 = 500 ms) lies between 4 and 8 req/s.
        let sweep = [
            point(1.0, 100.0),
            point(2.0, 200.0),
            point(4.0, 400.0),
            point(8.0, 900.0),
        ];
        let p = plan(&sweep, slo(), 20.0, 0.3);
        assert_eq!(p.capacity_req_s, Some(4.0));
        assert_eq!(p.first_failing_req_s, Some(8.0));
        // 20 / (4 × 0.7) = 7.14: 8 replicas at 2.5 req/s each.
        assert_eq!(p.replicas, Some(8));
        assert_eq!(p.per_replica_req_s, Some(2.5));
        // Between 2 (p99 200) and 4 (p99 400) req/s: 250 at 2.5.
        let e = p.expected_ttft_ms.unwrap();
        assert!((e.p99 - 250.0).abs() < 1.0, "{e:?}");
        assert!(
            p.advice[0].contains("brackets the SLO boundary"),
            "{:?}",
            p.advice
        );
    }

    #[test]
    fn a_sweep_that_does_not_bracket_the_boundary_says_so() {
        let all_pass = [point(1.0, 100.0), point(2.0, 150.0)];
        let p = plan(&all_pass, slo(), 10.0, 0.0);
        assert_eq!(p.capacity_req_s, Some(2.0));
        assert_eq!(p.replicas, Some(5));
        assert!(
            p.advice[0].contains("extend the sweep above"),
            "{:?}",
            p.advice
        );

        let all_fail = [point(1.0, 700.0), point(2.0, 900.0)];
        let p = plan(&all_fail, slo(), 10.0, 0.3);
        assert_eq!(p.capacity_req_s, None);
        assert_eq!(p.replicas, None);
        assert!(
            p.advice[0].contains("no point met the SLO"),
            "{:?}",
            p.advice
        );
    }

    #[test]
    fn a_pass_above_a_failure_is_flagged_and_not_counted() {
        let noisy = [point(1.0, 100.0), point(2.0, 600.0), point(4.0, 300.0)];
        let p = plan(&noisy, slo(), 3.0, 0.0);
        assert_eq!(p.capacity_req_s, Some(1.0));
        assert!(
            p.advice.iter().any(|a| a.contains("noisy")),
            "{:?}",
            p.advice
        );
    }

    #[test]
    fn a_mixed_sweep_is_planned_from_its_open_loop_points() {
        let mut closed = point(50.0, 100.0);
        closed.load.kind = LoadKind::Closed;
        closed.load.concurrency = Some(8);
        let sweep = [closed, point(1.0, 100.0), point(2.0, 900.0)];
        let p = plan(&sweep, slo(), 5.0, 0.0);
        assert_eq!(p.capacity_req_s, Some(1.0));
        assert!(p.advice[0].contains("open-loop ones"), "{:?}", p.advice);
    }

    #[test]
    fn searches_double_then_bisect() {
        assert_eq!(next_probe(Some(1.0), None, false), Some(2.0));
        assert_eq!(next_probe(None, Some(1.0), false), Some(0.5));
        assert_eq!(next_probe(Some(2.0), Some(4.0), false), Some(3.0));
        assert_eq!(next_probe(Some(3.8), Some(4.0), false), None);
        // Whole loads: 8 passes, 16 fails → 12, then 8..12 → 10, ...
        assert_eq!(next_probe(Some(8.0), Some(16.0), true), Some(12.0));
        assert_eq!(next_probe(Some(10.0), Some(11.0), true), None);
        assert_eq!(
            next_probe(None, Some(1.0), true),
            None,
            "no concurrency below 1"
        );
    }

    /// A search against a server that meets the objective up to `limit`.
    fn search_until(limit: f64, start: f64, whole: bool) -> (SearchOutcome, Vec<f64>) {
        let mut probed = Vec::new();
        let outcome = search_max::<()>(start, whole, |load| {
            probed.push(load);
            Ok(Some(if load <= limit {
                ProbeVerdict::Met
            } else {
                ProbeVerdict::Missed
            }))
        })
        .unwrap();
        (outcome, probed)
    }

    #[test]
    fn a_rate_search_brackets_the_limit_within_ten_percent() {
        let (o, probed) = search_until(7.3, 1.0, false);
        let (best, failing) = (o.best.unwrap(), o.failing.unwrap());
        assert!(best <= 7.3 && failing > 7.3, "{best} {failing}");
        assert!((failing - best) / failing <= 0.1, "{best} {failing}");
        assert_eq!(&probed[..4], &[1.0, 2.0, 4.0, 8.0], "doubles until a miss");
        assert_eq!(o.probes as usize, probed.len());
    }

    #[test]
    fn a_concurrency_search_ends_on_neighbouring_whole_numbers() {
        let (o, probed) = search_until(11.0, 1.0, true);
        assert_eq!((o.best, o.failing), (Some(11.0), Some(12.0)));
        assert!(probed.iter().all(|c| c.fract() == 0.0), "{probed:?}");
    }

    #[test]
    fn a_search_whose_start_misses_halves_down() {
        let (o, probed) = search_until(3.0, 16.0, true);
        assert_eq!(&probed[..3], &[16.0, 8.0, 4.0]);
        assert_eq!((o.best, o.failing), (Some(3.0), Some(4.0)));
        // Nothing meets it: halving stops at 1 with no answer.
        let (o, _) = search_until(0.5, 4.0, true);
        assert_eq!((o.best, o.failing), (None, Some(1.0)));
    }

    #[test]
    fn a_search_stops_at_twelve_probes_an_interrupt_or_an_incomplete_probe() {
        // Always met: doubling forever, cut at the cap.
        let (o, _) = search_until(f64::INFINITY, 1.0, false);
        assert_eq!((o.probes, o.best), (12, Some(2048.0)));
        let mut calls = 0;
        let o = search_max::<()>(1.0, false, |_| {
            calls += 1;
            Ok((calls < 3).then_some(ProbeVerdict::Met))
        })
        .unwrap();
        assert_eq!(
            (o.probes, o.best),
            (2, Some(2.0)),
            "interrupted before the third"
        );
        let o = search_max::<()>(1.0, false, |load| {
            Ok(Some(if load < 4.0 {
                ProbeVerdict::Met
            } else {
                ProbeVerdict::Incomplete
            }))
        })
        .unwrap();
        assert_eq!((o.probes, o.best, o.failing), (3, Some(2.0), None));
        let err = search_max(1.0, false, |_| Err::<Option<ProbeVerdict>, _>("boom"));
        assert_eq!(err, Err("boom"));
    }
}
