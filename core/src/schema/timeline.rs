//! A served point over time: its steady-state window, and its time slices
//! with the drift between the first and the last.

use serde::{Deserialize, Serialize};

/// Share of the target in-flight count that makes a moment steady.
pub const STEADY_SHARE: f64 = 0.9;

/// Drift needs both a small p-value and a difference that matters: with
/// thousands of requests a slice, a 1% shift is significant and harmless.
pub const DRIFT_P_VALUE: f64 = 0.01;

/// The relative difference of medians, first slice to last, below which a
/// significant shift is not called drift.
pub const DRIFT_MIN_CHANGE: f64 = 0.05;

/// The fewest successful requests a slice needs to take part in the drift
/// test.
pub const DRIFT_MIN_REQUESTS: u64 = 10;

/// The longest span of a point during which the load was what was asked for
/// (as SGLang's benchmark reports it): the in-flight requests at or above
/// 90% of the target, the ramp-up and the drain left out; with throughputs
/// over it beside the whole window's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SteadyState {
    /// Where the in-flight target comes from: "concurrency" (closed loop:
    /// the streams) or "mean_in_flight" (open loop and trace: the mean over
    /// the point's window).
    pub target_from: String,
    /// The in-flight target.
    pub target_in_flight: f64,
    /// The in-flight count a moment needs to be steady: 90% of the target.
    pub threshold_in_flight: f64,
    /// The window's start, seconds after the point's first send.
    pub start_s: f64,
    /// The window's length, seconds (0: no moment reached the threshold).
    pub duration_s: f64,
    /// The window's share of the whole point's window.
    pub share_of_point: f64,
    /// Mean in-flight requests over the window.
    pub mean_in_flight: f64,
    /// Output tokens that arrived within the window, over its length.
    pub output_throughput_tok_s: f64,
    /// Successful requests that ended within the window, over its length.
    pub request_throughput_req_s: f64,
    /// The resolution the in-flight count was kept at, seconds.
    pub resolution_s: f64,
}

/// A point cut into consecutive slices of time, each request in the slice
/// it was sent in (its intended send time under an open loop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimeSlices {
    /// Each slice's length, seconds.
    pub slice_s: f64,
    /// "flag" (`--slice`) or "auto" (from 1 s, doubled while the point
    /// would have more than 60).
    pub chosen_by: String,
    /// The TTFT the slices hold: "ttft_from_scheduled_ms" under an open
    /// loop, "ttft_ms" otherwise.
    pub ttft_metric: String,
    /// The slices, first to last; the last may be shorter.
    pub slices: Vec<TimeSlice>,
    /// The first slices against the last, TTFT and TPOT: with `--slice`
    /// the first and the last slice holding 10 successful requests or more
    /// (as many slices as it takes); by default as many as hold a tenth of
    /// the point's (empty when the point was too small to compare: see
    /// `drift_note`).
    pub drift: Vec<DriftCheck>,
    /// Why the drift was not tested, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_note: Option<String>,
}

/// One slice of a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimeSlice {
    /// The slice's start, seconds after the point's start.
    pub start_s: f64,
    /// Its length, seconds (the last slice ends at the point's last event).
    pub duration_s: f64,
    /// Requests sent (under an open loop: due) in the slice.
    pub requests: u64,
    /// Those that failed.
    pub failed: u64,
    /// TTFT p50 of its successful requests, ms.
    pub ttft_p50_ms: Option<f64>,
    /// TTFT p99 of its successful requests, ms.
    pub ttft_p99_ms: Option<f64>,
    /// TPOT p50 of its successful requests, ms.
    pub tpot_p50_ms: Option<f64>,
    /// TPOT p99 of its successful requests, ms.
    pub tpot_p99_ms: Option<f64>,
    /// Output tokens that arrived during the slice, over its length.
    pub output_throughput_tok_s: f64,
    /// Successful requests that ended during the slice, over its length.
    pub request_throughput_req_s: f64,
}

/// One metric's first slice against its last (Mann-Whitney U).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DriftCheck {
    /// The metric compared, e.g. "ttft_ms".
    pub metric: String,
    /// The first slices compared: their length, seconds (the first slice
    /// alone, or as many as hold the requests the test needs).
    #[serde(default)]
    pub first_span_s: f64,
    /// The last slices compared, seconds.
    #[serde(default)]
    pub last_span_s: f64,
    /// The values in the first span.
    #[serde(default)]
    pub first_requests: u64,
    /// The values in the last span.
    #[serde(default)]
    pub last_requests: u64,
    /// Its median in the first slice, ms.
    pub first_p50: f64,
    /// Its median in the last slice, ms.
    pub last_p50: f64,
    /// The last slice's median over the first's, minus one.
    pub change: f64,
    /// Two-sided Mann-Whitney p-value.
    pub p_value: f64,
    /// p below 0.01 and a change of at least 5%: warm-up or drift.
    pub drifted: bool,
}

impl TimeSlices {
    /// The reasons the slices make a point not valid: drift, or (for
    /// slices asked for with `--slice`) too short a point to compare its
    /// first slice with its last.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons: Vec<String> = self
            .drift
            .iter()
            .filter(|d| d.drifted)
            .map(|d| {
                format!(
                    "{} drifted: its p50 went from {:.2} ms in the first {} s to {:.2} ms in the last {} s ({:+.0}%, Mann-Whitney p = {:.1e}): warm-up or drift, not a steady state",
                    d.metric,
                    d.first_p50,
                    d.first_span_s,
                    d.last_p50,
                    d.last_span_s,
                    d.change * 100.0,
                    d.p_value
                )
            })
            .collect();
        if self.chosen_by == "flag" {
            if let Some(note) = &self.drift_note {
                reasons.push(format!(
                    "too short for its --slice {}s: {note}",
                    self.slice_s
                ));
            }
        }
        reasons
    }
}
