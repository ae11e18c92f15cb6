//! `--find-max-rate` and `--find-max-concurrency`: the searches' probes.

use super::*;

/// Probes that bracket the highest rate meeting the SLO at p99
/// ([`search_max`]). Every probe uses the same seed, so the search repeats
/// exactly against a server that behaves the same.
pub(super) fn search_max_rate(
    session: &mut Session,
    start_rate: f64,
    arrival: Arrival,
    max_inflight: u32,
) -> Result<MaxRateSearch> {
    let found = search_max(start_rate, false, |rate| {
        let load = Load::Open {
            rate,
            arrival,
            max_inflight,
        };
        session.probe(load)
    })?;
    terminal::print_search(
        "highest rate",
        found.best.map(|r| format!("{r} req/s")),
        found.failing.map(|r| format!("{r} req/s")),
        found.probes,
        session.called_by_estimate,
    );
    Ok(MaxRateSearch {
        max_rate: found.best,
        lowest_failing_rate: found.failing,
        probes: found.probes,
        calls: session.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

/// Probes that bracket the highest concurrency meeting the SLO at p99, as
/// [`search_max_rate`] does for rates, on whole numbers of requests in flight.
pub(super) fn search_max_concurrency(
    session: &mut Session,
    start: u32,
) -> Result<MaxConcurrencySearch> {
    // Whole-number searches probe whole numbers from 1 up.
    let whole = |load: f64| load as u32;
    let found = search_max(f64::from(start), true, |concurrency| {
        session.probe(Load::Closed {
            concurrency: whole(concurrency),
        })
    })?;
    terminal::print_search(
        "highest concurrency",
        found.best.map(|c| format!("c={}", whole(c))),
        found.failing.map(|c| format!("c={}", whole(c))),
        found.probes,
        session.called_by_estimate,
    );
    Ok(MaxConcurrencySearch {
        max_concurrency: found.best.map(whole),
        lowest_failing_concurrency: found.failing.map(whole),
        probes: found.probes,
        calls: session.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

pub(super) const SEARCH_CRITERION: &str = "p99 of every --slo objective within its limit at 99% confidence by MLPerf LoadGen's early-stopping rule, a failed request over every limit; a probe the rule leaves undecided (after any extension up to --max-requests-per-probe) is called by its point estimate: p99 within every limit and no failed request";
