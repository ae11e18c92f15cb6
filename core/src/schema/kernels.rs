//! What the device executed per step, as the result file holds it. How it
//! is measured: [`crate::kernels`] and `inferbench_ffi::cupti`.

use serde::{Deserialize, Serialize};

use crate::stats::Stats;

/// A point's kernel timing: the device's own activity records, per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KernelTiming {
    /// What recorded the activity, e.g. "cupti activity records (concurrent
    /// kernels, copies, memsets), device timestamps".
    pub source: String,
    /// The prefills, one value per run (absent when no prefill had records).
    pub prefill: Option<KernelPhase>,
    /// The decode steps, one value per step (absent when no step had
    /// records, as with one generated token).
    pub decode_step: Option<KernelPhase>,
}

/// One phase's steps (each prefill, or each decode step) as the device saw
/// them. Per-step values, one per step; `host` is the harness's synchronized
/// host time of the same step (`prefill_ms` / `decode_step_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KernelPhase {
    /// Steps with activity records.
    pub steps: u64,
    /// The union of kernel intervals: time at least one kernel ran.
    pub busy_ms: Option<Stats>,
    /// busy / host, per step.
    pub busy_fraction: Option<Stats>,
    /// host − busy, per step: what the step cost beyond the kernels (graph
    /// building, launches, gaps, synchronization, the logits copy).
    pub overhead_ms: Option<Stats>,
    /// Kernels the records show in each step (a count).
    pub kernels_per_step: Option<Stats>,
    /// From the call into the engine to the first kernel's start.
    pub first_kernel_delay_ms: Option<Stats>,
    /// Between the first kernel and the last, the time no kernel ran.
    pub idle_gap_ms: Option<Stats>,
    /// From the last kernel's end to the call's return.
    pub tail_ms: Option<Stats>,
    /// The union of copy and memset intervals.
    pub copy_ms: Option<Stats>,
    /// The call's window on the records' clock: a check of both clocks, as
    /// it should match the host time.
    pub window_ms: Option<Stats>,
    /// Σ busy / Σ host over the phase.
    pub busy_over_host: Option<f64>,
}

/// Whether kernel timing was used in a run, and why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KernelTimingStatus {
    /// True when the device's activity records timed this run's kernels.
    pub available: bool,
    /// What records the kernels when available ("cupti ..."); why not
    /// otherwise ("no layers on a GPU", "libcupti not found: ...").
    pub detail: String,
}
