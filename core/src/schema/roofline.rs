//! The roofline of a decode step, as the result file holds it. How it is computed: `inferbench_harness::roofline`.

use serde::{Deserialize, Serialize};

/// One point's decode step against the bandwidth limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// Weights read by every step (the model's tensors; see the notes).
    pub weight_bytes: u64,
    /// K and V read at the mean context of the decode steps, all sequences.
    pub kv_bytes: u64,
    pub bytes_per_step: u64,
    /// The harness's decode step (synchronized, sampling excluded), p50.
    pub step_ms_p50: f64,
    pub achieved_gb_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gb_s: Option<f64>,
    /// achieved / bandwidth: 1.0 is the memory limit. Above 1 when the
    /// model fits in the caches (the tiny model does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_of_bandwidth: Option<f64>,
}

/// The machine's memory bandwidth as a STREAM-triad-like probe measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandwidthProbe {
    /// "stream-triad: a[i] = b[i] + s·c[i] over f64, 24 bytes per element".
    pub method: String,
    pub threads: u32,
    /// Each of the three arrays, far larger than any cache here.
    pub array_bytes: u64,
    pub repetitions: u32,
    /// The fastest repetition, as STREAM reports (GB = 1e9 bytes).
    pub best_gb_s: f64,
    pub median_gb_s: f64,
}
