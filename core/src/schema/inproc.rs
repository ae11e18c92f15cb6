//! The in-process mode's points and settings.

use serde::{Deserialize, Serialize};

use super::{CounterComparison, DeviceComparison, ResultFile, TokenTotals};
use crate::stats::Stats;

/// One in-process measurement point. Metric definitions: see `inferbench_harness::inproc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Everything llama.cpp was given for this point: the model and every
    /// context parameter (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<EngineConfig>,
    /// What the configuration holds in memory (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PointMemory>,
    /// Why llama.cpp could not measure this cell of the grid: the point then
    /// holds no statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    /// Each measured run's prefill and decode time, for exports that keep
    /// every sample (llama-bench's `samples_ns`); absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_samples: Option<RunSamples>,
    /// Whether the point can be trusted, and why not (absent in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<super::validity::Validity>,
    /// `--until-precise`: the statistics' intervals as reached (one draw
    /// per run; `requests` and `max_requests` count runs), and why the
    /// point stopped (absent without it, and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<super::validity::Precision>,
    /// What the point's output tokens cost in energy (absent in older
    /// files, and where neither a GPU nor RAPL reported energy: see the
    /// result's notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<super::telemetry::PointEnergy>,
}

/// Each measured run's engine time, in run order, ns: what a point's
/// distributions summarize, kept whole where a format wants every sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunSamples {
    /// The prefill of all `batch` prompts, one value per run.
    pub prefill_ns: Vec<u64>,
    /// The sum of the run's decode steps, sampling excluded, one value per
    /// run (empty with one generated token).
    pub decode_ns: Vec<u64>,
    /// Decode steps per run: `gen_tokens` − 1, the first token coming from
    /// the prefill.
    pub decode_steps: u32,
}

impl super::validity::JudgedPoint for InprocPoint {
    fn point_label(&self) -> String {
        let depth = if self.depth > 0 {
            format!(" d={}", self.depth)
        } else {
            String::new()
        };
        format!("P={} B={}{depth}", self.prompt_tokens, self.batch)
    }

    fn judged(&self) -> super::validity::Validity {
        self.validity.clone().unwrap_or_else(|| self.assess())
    }
}

impl InprocPoint {
    /// The point's validity: its percentiles' counts (one observation per
    /// measured run), a failure, a point cut short.
    pub fn assess(&self) -> super::validity::Validity {
        let mut reasons = Vec::new();
        if let Some(error) = &self.error {
            reasons.push(format!("llama.cpp failed: {error}"));
        } else if !self.complete {
            reasons.push("cut short".to_string());
        }
        super::validity::Validity::new(
            &[
                ("ttft_ms", self.ttft_ms.as_ref()),
                ("itl_ms", self.itl_ms.as_ref()),
                ("tpot_ms", self.tpot_ms.as_ref()),
                ("e2e_ms", self.e2e_ms.as_ref()),
            ],
            u64::from(self.runs),
            "run",
            &["p99"],
            reasons,
        )
    }

    /// The point's load, for comparison with served points: its batch size.
    pub fn level(&self) -> super::http::LoadLevel {
        super::http::LoadLevel::Batch(self.batch)
    }
}

/// What `inproc` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::spec::lenient"
    )]
    pub spec: Option<crate::spec::Spec>,
}

/// The model and context parameters llama.cpp was given for a point, in
/// llama.cpp's own names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EngineConfig {
    /// The GGUF file.
    pub model: String,
    /// Layers asked to be offloaded to a GPU (-1: all).
    pub n_gpu_layers: i32,
    /// The model file mapped rather than read.
    pub use_mmap: bool,
    /// Threads for single-token graphs.
    pub n_threads: u32,
    /// Threads for graphs of several tokens.
    pub n_threads_batch: u32,
    /// KV cells of the context, all sequences together.
    pub n_ctx: u32,
    /// Tokens per llama_decode call.
    pub n_batch: u32,
    /// Tokens per compute graph.
    pub n_ubatch: u32,
    /// Sequences.
    pub n_seq_max: u32,
    /// Flash attention: off, on or auto.
    pub flash_attn: String,
    /// The K cache's element type (ggml's name).
    pub type_k: String,
    /// The V cache's element type.
    pub type_v: String,
    /// The KV cache kept with offloaded layers on the GPU.
    pub offload_kqv: bool,
    /// One KV pool shared by all sequences.
    pub kv_unified: bool,
    /// Sliding-window layers kept a cache of the whole context (llama.cpp's
    /// swa_full). Absent in files written before it was recorded, whose
    /// runs had it on (llama.cpp's library default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_full: Option<bool>,
    /// The model as llama.cpp describes it (`llama_model_desc`, e.g.
    /// "gemma3 270M Q4_K - Medium"; absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Bytes of the model's tensors (`llama_model_size`; absent in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_size: Option<u64>,
    /// The model's parameters (`llama_model_n_params`; absent in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_n_params: Option<u64>,
}

/// The settings a grid varies, by their spec keys, in the order tables
/// show them.
pub const GRID_SETTINGS: [&str; 10] = [
    "model",
    "n_gpu_layers",
    "mmap",
    "threads",
    "ubatch",
    "n_batch",
    "flash_attn",
    "cache_type_k",
    "cache_type_v",
    "kv_offload",
];

/// The grid settings whose values differ between points of the same shape
/// (those with a configuration): the columns their table needs. Sizes that
/// follow the shape (n_batch, n_ubatch clamped to it) do not count.
pub fn varying_settings(points: &[InprocPoint]) -> Vec<&'static str> {
    let shape = |p: &InprocPoint| (p.prompt_tokens, p.gen_tokens, p.batch, p.depth);
    GRID_SETTINGS
        .into_iter()
        .filter(|name| {
            points.iter().any(|p| {
                let value = p.config.as_ref().map(|c| c.value(name));
                points.iter().any(|q| {
                    shape(q) == shape(p) && q.config.as_ref().map(|c| c.value(name)) != value
                })
            })
        })
        .collect()
}

impl EngineConfig {
    /// One grid setting's value as text, by its spec key (see
    /// [`GRID_SETTINGS`]); the model by its file name.
    pub fn value(&self, name: &str) -> String {
        match name {
            "model" => std::path::Path::new(&self.model)
                .file_name()
                .map_or(self.model.clone(), |f| f.to_string_lossy().into_owned()),
            "n_gpu_layers" => self.n_gpu_layers.to_string(),
            "mmap" => u8::from(self.use_mmap).to_string(),
            "threads" => self.n_threads.to_string(),
            "ubatch" => self.n_ubatch.to_string(),
            "n_batch" => self.n_batch.to_string(),
            "flash_attn" => self.flash_attn.clone(),
            "cache_type_k" => self.type_k.clone(),
            "cache_type_v" => self.type_v.clone(),
            "kv_offload" => u8::from(self.offload_kqv).to_string(),
            _ => String::new(),
        }
    }

    /// Everything but the per-shape sizes (n_ctx, n_batch, n_seq_max): what
    /// tells one cell of a grid from another.
    pub fn cell_key(&self) -> String {
        format!(
            "{} ngl={} mmap={} t={}/{} ub={} fa={} ctk={} ctv={} kvo={} unified={} swa_full={}",
            self.model,
            self.n_gpu_layers,
            self.use_mmap,
            self.n_threads,
            self.n_threads_batch,
            self.n_ubatch,
            self.flash_attn,
            self.type_k,
            self.type_v,
            self.offload_kqv,
            self.kv_unified,
            self.swa_full.unwrap_or(true)
        )
    }
}

/// What a point's configuration holds in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PointMemory {
    /// The model's weights as llama.cpp loaded them (llama_model_size).
    pub model_bytes: u64,
    /// The KV cache: n_ctx cells × layers × (K row + V row) at the cache
    /// types, computed from the GGUF's attention shape (llama.cpp does not
    /// report it); sliding-window layers counted as full, an overestimate
    /// for them unless `swa_full` (`llama_buffers` has llama.cpp's figure).
    pub kv_cache_bytes: Option<u64>,
    /// How `kv_cache_bytes` was obtained.
    pub kv_cache_source: String,
    /// The process's peak resident memory during the point (VmHWM, reset
    /// before the point where the kernel allows it; else the peak since
    /// the process started, as `peak_rss_source` says).
    pub peak_rss_bytes: Option<u64>,
    /// How `peak_rss_bytes` was read.
    pub peak_rss_source: String,
    /// The context's buffers as llama.cpp reported them when it made the
    /// context (absent in older files, and where it reported none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_buffers: Option<LlamaBuffers>,
}

/// A context's buffers in llama.cpp's words, summed over its devices.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct LlamaBuffers {
    /// The KV cache's buffers ("KV buffer size"), every cache of the
    /// context (a sliding-window model has two).
    pub kv_bytes: Option<u64>,
    /// The scheduler's compute buffers ("compute buffer size"): the
    /// intermediate tensors of the largest graph.
    pub compute_bytes: Option<u64>,
    /// The output buffer ("output buffer size"): logits and embeddings.
    pub output_bytes: Option<u64>,
}

fn no_depth() -> Vec<u32> {
    vec![0]
}

/// A result file of `inferbench inproc`.
pub type InprocResult = ResultFile<InprocSettings, InprocPoint>;
