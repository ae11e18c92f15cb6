//! The in-process mode's points and settings.

use serde::{Deserialize, Serialize};

use super::{CounterComparison, DeviceComparison, ResultFile, TokenTotals};
use crate::stats::Stats;

/// One in-process measurement point. Metric definitions: see `inferbench_harness::inproc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InprocPoint {
    pub prompt_tokens: u32,
    pub gen_tokens: u32,
    /// Sequences decoded together.
    pub batch: u32,
    /// False when the run was interrupted during this point.
    pub complete: bool,
    /// Measured runs (warm-up excluded).
    pub runs: u32,
    pub warmup_runs: u32,
    pub tokens: TokenTotals,
    pub ttft_ms: Option<Stats>,
    pub itl_ms: Option<Stats>,
    pub tpot_ms: Option<Stats>,
    pub e2e_ms: Option<Stats>,
    pub prefill_ms: Option<Stats>,
    pub decode_step_ms: Option<Stats>,
    pub sample_ms: Option<Stats>,
    pub prefill_tok_s: Option<Stats>,
    pub decode_tok_s: Option<Stats>,
    pub throughput_tok_s: Option<Stats>,
    pub engine_counters: Option<CounterComparison>,
    pub device_timing: Option<DeviceComparison>,
    /// Host, process and GPU readings while the point's measured runs ran.
    pub telemetry: Option<super::telemetry::TelemetrySummary>,
    /// The decode step's bytes over its time, against the memory bandwidth
    /// (absent in older files and without a GGUF to count bytes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roofline: Option<super::roofline::Roofline>,
    /// The prefill's FLOPs over its time, against the compute peak (absent
    /// in older files and without a GGUF to count FLOPs from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_roofline: Option<super::roofline::PrefillRoofline>,
    /// What the device executed in each step, from its own activity
    /// records (absent without them: CPU runs, older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_timing: Option<super::kernels::KernelTiming>,
}

impl InprocPoint {
    pub fn level(&self) -> super::http::LoadLevel {
        super::http::LoadLevel::Batch(self.batch)
    }
}

/// What `inproc` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InprocSettings {
    pub model: String,
    pub prompt_tokens: Vec<u32>,
    pub gen_tokens: u32,
    pub batch: Vec<u32>,
    pub warmup: u32,
    pub runs: u32,
    pub seed: u64,
    pub threads: u32,
    pub threads_batch: u32,
    pub n_gpu_layers: i32,
    pub ubatch: u32,
    pub kv_unified: bool,
    /// How tokens are chosen: "greedy".
    pub sampler: String,
    /// False: end-of-sequence tokens are ignored, every sequence generates
    /// exactly `gen_tokens`.
    pub stop_at_eos: bool,
}

pub type InprocResult = ResultFile<InprocSettings, InprocPoint>;
