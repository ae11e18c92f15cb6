//! The roofline of a decode step (bytes against the memory bandwidth) and of a prefill (FLOPs against the compute peak), as the result file holds them. How they are computed: `inferbench_harness::roofline`.

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

/// One point's prefill against the compute limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefillRoofline {
    /// FLOPs of one prefill of the point's prompts: the matrices every
    /// prompt token passes through, the output projection once per
    /// sequence, causal attention (see the notes).
    pub flops: u64,
    /// The harness's prefill (all B prompts in one synchronized decode, on
    /// the host clock), p50.
    pub prefill_ms_p50: f64,
    pub achieved_gflop_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_gflop_s: Option<f64>,
    /// achieved / peak: 1.0 is the probe's f32 FMA rate. Quantized kernels
    /// use integer dot products, which can go faster, so above 1 is possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_of_peak: Option<f64>,
}

/// The machine's arithmetic rate as an f32 FMA probe measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputePeakProbe {
    /// What each thread ran, in words.
    pub method: String,
    pub threads: u32,
    /// The CPU features the probe was compiled with, e.g. "avx512f,avx2,fma".
    pub target_features: String,
    /// FLOPs of one repetition, all threads (a multiply-add counts 2).
    pub flops_per_repetition: u64,
    pub repetitions: u32,
    /// The fastest repetition (GFLOP = 1e9 FLOPs).
    pub best_gflop_s: f64,
    pub median_gflop_s: f64,
    /// The same kernel on one thread, best repetition (absent when the
    /// probe ran one thread, and in older files): the threads should reach
    /// about `threads` times this; far less means a core was busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_thread_gflop_s: Option<f64>,
}
