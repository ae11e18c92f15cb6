//! The roofline of a decode step (bytes against the memory bandwidth) and of a prefill (FLOPs against the compute peak), as the result file holds them. How they are computed: `inferbench_harness::roofline`.

use serde::{Deserialize, Serialize};

/// One point's decode step against the bandwidth limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Roofline {
    /// Weights read by every step (the model's tensors; see the notes).
    pub weight_bytes: u64,
    /// K and V read at the mean context of the decode steps, all sequences.
    pub kv_bytes: u64,
    /// Bytes one decode step reads: `weight_bytes` + `kv_bytes`.
    pub bytes_per_step: u64,
    /// The harness's decode step (synchronized, sampling excluded), p50.
    pub step_ms_p50: f64,
    /// `bytes_per_step` over `step_ms_p50`, in GB/s (GB = 1e9 bytes).
    pub achieved_gb_s: f64,
    /// The ceiling the step is judged against, in GB/s (absent when no
    /// probe gave one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gb_s: Option<f64>,
    /// Which ceiling `bandwidth_gb_s` is: "stream-triad" (the CPU probe),
    /// "device copy" (the GPU probe's best), "nominal" (the GPU memory's
    /// clock and width, when the copy could not run). Absent in older
    /// files, whose ceiling was the CPU probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_source: Option<String>,
    /// achieved / bandwidth: 1.0 is the memory limit. Above 1 when the
    /// model fits in the caches (the tiny model does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_of_bandwidth: Option<f64>,
}

/// The machine's memory bandwidth as a STREAM-triad-like probe measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BandwidthProbe {
    /// How it was measured, e.g. `stream-triad: a[i] = b[i] + s·c[i] over f64, 24 bytes per element`.
    pub method: String,
    /// Threads the arrays were split over (the engine's threads).
    pub threads: u32,
    /// Each of the three arrays, far larger than any cache here.
    pub array_bytes: u64,
    /// Repetitions timed.
    pub repetitions: u32,
    /// The fastest repetition, as STREAM reports (GB = 1e9 bytes).
    pub best_gb_s: f64,
    /// The median repetition, in GB/s.
    pub median_gb_s: f64,
}

/// One point's prefill against the compute limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrefillRoofline {
    /// FLOPs of one prefill of the point's prompts: the matrices every
    /// prompt token passes through, the output projection once per
    /// sequence, causal attention (see the notes).
    pub flops: u64,
    /// The harness's prefill (all B prompts in one synchronized decode, on
    /// the host clock), p50.
    pub prefill_ms_p50: f64,
    /// `flops` over `prefill_ms_p50`, in GFLOP/s (GFLOP = 1e9 FLOPs).
    pub achieved_gflop_s: f64,
    /// The ceiling: the CPU compute probe's best (`provenance.host.compute_peak`),
    /// in GFLOP/s. Absent with layers on a GPU, where that probe does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_gflop_s: Option<f64>,
    /// achieved / peak: 1.0 is the probe's f32 FMA rate. Quantized kernels
    /// use integer dot products, which can go faster, so above 1 is possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_of_peak: Option<f64>,
}

/// The machine's arithmetic rate as an f32 FMA probe measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComputePeakProbe {
    /// What each thread ran, in words.
    pub method: String,
    /// Threads the FMA chains ran on (the engine's threads).
    pub threads: u32,
    /// The CPU features the probe was compiled with, e.g. "avx512f,avx2,fma".
    pub target_features: String,
    /// FLOPs of one repetition, all threads (a multiply-add counts 2).
    pub flops_per_repetition: u64,
    /// Repetitions timed.
    pub repetitions: u32,
    /// The fastest repetition (GFLOP = 1e9 FLOPs).
    pub best_gflop_s: f64,
    /// The median repetition, in GFLOP/s.
    pub median_gflop_s: f64,
    /// The same kernel on one thread, best repetition (absent when the
    /// probe ran one thread, and in older files): the threads should reach
    /// about `threads` times this; far less means a core was busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_thread_gflop_s: Option<f64>,
}

/// The GPU's memory bandwidth, measured and nominal, the ceiling of a
/// decode step whose layers are on that GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceBandwidth {
    /// e.g. "CUDA0 (NVIDIA H200)".
    pub device: String,
    /// A device-to-device copy timed on the GPU's clock, when it could run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<DeviceCopyProbe>,
    /// What the memory's clock and bus width allow, when they could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nominal: Option<NominalBandwidth>,
    /// Why a part is missing, or what to know about it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A device-to-device copy probe: the same buffer copied `repetitions`
/// times, each copy between two CUDA events on the copying stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceCopyProbe {
    /// What was timed, in words.
    pub method: String,
    /// The size of the source (and of the destination) buffer.
    pub buffer_bytes: u64,
    /// Timed copies with a usable time (the warm-up copy excluded).
    pub repetitions: u32,
    /// The fastest copy, counting each byte read and each byte written
    /// (2 × buffer_bytes per copy; GB = 1e9 bytes).
    pub best_gb_s: f64,
    /// The median copy, counted as `best_gb_s` is, in GB/s.
    pub median_gb_s: f64,
}

/// The memory's nominal bandwidth: clock × 2 transfers per clock (double
/// data rate, as HBM and GDDR count) × bus width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NominalBandwidth {
    /// Where the clock and width came from: "nvml" (the maximum memory
    /// clock) or "cuda device attributes" (the peak memory clock).
    pub source: String,
    /// The memory clock, in MHz.
    pub memory_clock_mhz: u32,
    /// The memory bus width, in bits.
    pub bus_width_bits: u32,
    /// The nominal bandwidth, in GB/s (GB = 1e9 bytes): the ceiling when the
    /// copy probe could not run.
    pub gb_s: f64,
}
