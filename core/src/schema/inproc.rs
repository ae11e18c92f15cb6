//! The in-process mode's points and settings.

use serde::{Deserialize, Serialize};

use super::{CounterComparison, DeviceComparison, ResultFile, TokenTotals};
use crate::stats::Stats;

/// One in-process measurement point. Metric definitions: see `inferbench_harness::inproc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InprocPoint {
    /// Prompt length of every sequence, in tokens (BOS included).
    pub prompt_tokens: u32,
    /// Tokens generated per sequence (end-of-sequence ignored).
    pub gen_tokens: u32,
    /// Sequences decoded together.
    pub batch: u32,
    /// Tokens already in each sequence's KV cache before its prompt
    /// (`--depth`; 0 in older files).
    #[serde(default)]
    pub depth: u32,
    /// Filling every sequence's cache with `depth` tokens, one run's
    /// batch per value, ms: in no other metric (absent at depth 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_fill_ms: Option<Stats>,
    /// False when the run was interrupted during this point.
    pub complete: bool,
    /// Measured runs (warm-up excluded).
    pub runs: u32,
    /// Warm-up runs before the measured ones, in no statistic.
    pub warmup_runs: u32,
    /// Prompt and generated tokens over the measured runs.
    pub tokens: TokenTotals,
    /// Time to first token: prefill + first sample, ms, one value per
    /// sequence (`batch` per run).
    pub ttft_ms: Option<Stats>,
    /// Inter-token latency: a decode step + its sample, ms, one value per
    /// sequence and step (null with one generated token).
    pub itl_ms: Option<Stats>,
    /// Time per output token: (E2E − TTFT) / (`gen_tokens` − 1), ms, one
    /// value per sequence (null with one generated token).
    pub tpot_ms: Option<Stats>,
    /// TTFT + Σ ITL: start of prefill to the last token, ms, one value per
    /// sequence.
    pub e2e_ms: Option<Stats>,
    /// The prefill of all `batch` prompts, synchronized, ms, one value per
    /// run.
    pub prefill_ms: Option<Stats>,
    /// One decode step of `batch` tokens (one per sequence), synchronized,
    /// sampling excluded, ms, one value per step.
    pub decode_step_ms: Option<Stats>,
    /// Sampling one token for every sequence, ms, one value per sample call
    /// (`gen_tokens` per run).
    pub sample_ms: Option<Stats>,
    /// `batch` × `prompt_tokens` / prefill, in tokens/s, one value per run.
    pub prefill_tok_s: Option<Stats>,
    /// `batch` × (`gen_tokens` − 1) / Σ ITL, the aggregate generation rate
    /// in tokens/s, one value per run (null with one generated token).
    pub decode_tok_s: Option<Stats>,
    /// `batch` × `gen_tokens` / E2E: all output tokens over the whole run,
    /// in tokens/s, one value per run.
    pub throughput_tok_s: Option<Stats>,
    /// llama.cpp's own perf counters beside the harness's clock (null when
    /// the engine reported none).
    pub engine_counters: Option<CounterComparison>,
    /// CUDA events around the same calls beside the host clock (null when
    /// no events timed the steps, as in CPU runs).
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
    /// The point's load, for comparison with served points: its batch size.
    pub fn level(&self) -> super::http::LoadLevel {
        super::http::LoadLevel::Batch(self.batch)
    }
}

/// What `inproc` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InprocSettings {
    /// Path of the GGUF file measured, as given (the tiny model's cache
    /// path without `--model`).
    pub model: String,
    /// Prompt lengths swept, in tokens (BOS included).
    pub prompt_tokens: Vec<u32>,
    /// Tokens generated per sequence: the first from the prefill, the rest
    /// from decode steps.
    pub gen_tokens: u32,
    /// Batch sizes swept: sequences decoded together.
    pub batch: Vec<u32>,
    /// Warm-up runs per point, whose timings are discarded.
    pub warmup: u32,
    /// Measured runs per point.
    pub runs: u32,
    /// Seed of the synthetic prompts.
    pub seed: u64,
    /// Threads for single-token graphs (llama.cpp's n_threads).
    pub threads: u32,
    /// Threads for graphs of more than one token: prefill, and decode steps
    /// of several sequences (llama.cpp's n_threads_batch).
    pub threads_batch: u32,
    /// Layers asked to be offloaded to a GPU (`--n-gpu-layers`; -1: all).
    /// What llama.cpp did is `provenance.engine.gpu_layers_offloaded`.
    pub n_gpu_layers: i32,
    /// Tokens per compute graph during prefill (llama.cpp's n_ubatch).
    pub ubatch: u32,
    /// One KV-cache pool shared by all sequences instead of one per sequence.
    pub kv_unified: bool,
    /// How tokens are chosen: "greedy" (the argmax read in place) or
    /// "llama-greedy" (llama.cpp's own greedy sampler), as `--sampler` said.
    pub sampler: String,
    /// False: end-of-sequence tokens are ignored, every sequence generates
    /// exactly `gen_tokens`.
    pub stop_at_eos: bool,
    /// Context depths (`--depth`): tokens in each sequence's cache before
    /// its prompt ([0] in older files).
    #[serde(default = "no_depth")]
    pub depth: Vec<u32>,
    /// The spec this run ran (absent in files written before specs):
    /// `inferbench rerun` runs it again, `inferbench spec` prints it as TOML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<crate::spec::Spec>,
}

fn no_depth() -> Vec<u32> {
    vec![0]
}

/// A result file of `inferbench inproc`.
pub type InprocResult = ResultFile<InprocSettings, InprocPoint>;
