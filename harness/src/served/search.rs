//! The SLO searches (`--find-max-rate`, `--find-max-concurrency`): probes
//! that bracket the highest load meeting the SLO at p99.

use inferbench_core::schema::{MaxConcurrencySearch, MaxRateSearch};
use inferbench_http::arrival::Arrival;
use inferbench_http::load::Load;

use super::{SearchReport, ServedError, Sweep, SweepObserver};
use crate::plan::search_max;

/// Probes that bracket the highest rate meeting the SLO at p99
/// ([`search_max`]). Every probe uses the same seed, so the search repeats
/// exactly against a server that behaves the same.
pub(super) fn max_rate(
    sweep: &mut Sweep,
    start_rate: f64,
    arrival: Arrival,
    max_inflight: u32,
    observer: &mut dyn SweepObserver,
) -> Result<MaxRateSearch, ServedError> {
    let found = search_max(start_rate, false, |rate| {
        let load = Load::Open {
            rate,
            arrival,
            max_inflight,
        };
        sweep.probe(load, observer)
    })?;
    observer.search_ended(&SearchReport {
        what: "highest rate",
        best: found.best.map(|r| format!("{r} req/s")),
        failing: found.failing.map(|r| format!("{r} req/s")),
        probes: found.probes,
        called_by_estimate: sweep.called_by_estimate,
    });
    Ok(MaxRateSearch {
        max_rate: found.best,
        lowest_failing_rate: found.failing,
        probes: found.probes,
        calls: sweep.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

/// Probes that bracket the highest concurrency meeting the SLO at p99, as
/// [`max_rate`] does for rates, on whole numbers of requests in flight.
pub(super) fn max_concurrency(
    sweep: &mut Sweep,
    start: u32,
    observer: &mut dyn SweepObserver,
) -> Result<MaxConcurrencySearch, ServedError> {
    // Whole-number searches probe whole numbers from 1 up.
    let whole = |load: f64| load as u32;
    let found = search_max(f64::from(start), true, |concurrency| {
        sweep.probe(
            Load::Closed {
                concurrency: whole(concurrency),
            },
            observer,
        )
    })?;
    observer.search_ended(&SearchReport {
        what: "highest concurrency",
        best: found.best.map(|c| format!("c={}", whole(c))),
        failing: found.failing.map(|c| format!("c={}", whole(c))),
        probes: found.probes,
        called_by_estimate: sweep.called_by_estimate,
    });
    Ok(MaxConcurrencySearch {
        max_concurrency: found.best.map(whole),
        lowest_failing_concurrency: found.failing.map(whole),
        probes: found.probes,
        calls: sweep.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

/// How a search calls each probe, as its result records it.
pub const SEARCH_CRITERION: &str = "p99 of every --slo objective within its limit at 99% confidence by MLPerf LoadGen's early-stopping rule, a failed request over every limit; a probe the rule leaves undecided (after any extension up to --max-requests-per-probe) is called by its point estimate: p99 within every limit and no failed request";
