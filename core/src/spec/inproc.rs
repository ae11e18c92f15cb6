//! `inferbench inproc`'s spec.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::engine::{CacheType, EngineSettings, FlashAttn};
use super::text::{check_count_list, check_positive_list};
use super::SpecError;

/// How each sequence's next token is chosen in-process (`--sampler`); both
/// are greedy and pick the same tokens.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// The argmax of each logits row, read in place, rows over threads.
    #[default]
    Greedy,
    /// llama.cpp's own greedy sampler, which copies the vocabulary into a
    /// candidate array per sequence, as llama-server does.
    LlamaGreedy,
}

impl Sampler {
    /// The name flags and results use: `greedy` or `llama-greedy`.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::Greedy => "greedy",
            Sampler::LlamaGreedy => "llama-greedy",
        }
    }
}

/// Most threads a run may ask for.
pub const MAX_THREADS: u32 = 1024;

/// Everything `inproc` measures: the engine grid (every list of engine
/// settings expanded, as llama-bench does) and, in each of its cells, the
/// sweep (prompt lengths × depths × batch sizes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct InprocSpec {
    /// GGUF models (`--model`), each a cell of the grid; empty: the tiny
    /// generated model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model: Vec<PathBuf>,
    /// Threads for decode and batch evaluation (`--threads`); empty: the
    /// physical cores of the machine that runs it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<u32>,
    /// Layers offloaded to a GPU, -1 for all (`--n-gpu-layers`).
    pub n_gpu_layers: Vec<i32>,
    /// Prompt lengths in tokens, BOS included (`--prompt-tokens`).
    pub prompt_tokens: Vec<u32>,
    /// Tokens generated per sequence (`--gen-tokens`).
    pub gen_tokens: u32,
    /// Sequences decoded together, one point each (`--batch`).
    pub batch: Vec<u32>,
    /// Context depths, one point each (`--depth`): tokens of each
    /// sequence's own already in its KV cache before its prompt, refilled
    /// every run.
    pub depth: Vec<u32>,
    /// Warm-up runs per point, never counted (`--warmup`).
    pub warmup: u32,
    /// Measured runs per point (`--runs`).
    pub runs: u32,
    /// Keep adding runs to each point until every named statistic's 95%
    /// bootstrap interval is this precise (`--until-precise`), or a cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_precise: Option<Vec<super::PrecisionTarget>>,
    /// `--until-precise`'s cap on each point's runs (`--max-runs`);
    /// absent: 20 times `runs`, or the early-stopping count of the highest
    /// percentile named (662 for a p99) if more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<u32>,
    /// `--until-precise`'s cap on each point's time (`--max-duration`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "super::text::optional_duration",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub max_duration: Option<std::time::Duration>,
    /// Seed of the synthetic prompts (`--seed`).
    pub seed: u64,
    /// Tokens per compute graph, llama.cpp's n_ubatch (`--ubatch`).
    pub ubatch: Vec<u32>,
    /// Tokens per llama_decode call, llama.cpp's n_batch (`--n-batch`);
    /// empty: each point's whole prefill, so that it is one call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub n_batch: Vec<u32>,
    /// Flash attention (`--flash-attn`).
    pub flash_attn: Vec<FlashAttn>,
    /// The K cache's element type (`--cache-type-k`).
    pub cache_type_k: Vec<CacheType>,
    /// The V cache's element type (`--cache-type-v`).
    pub cache_type_v: Vec<CacheType>,
    /// Map the model file (`--mmap`).
    pub mmap: Vec<bool>,
    /// Keep the KV cache on the GPU with offloaded layers (off: `--no-kv-offload`).
    pub kv_offload: Vec<bool>,
    /// One KV-cache pool shared by all sequences (`--kv-unified`).
    pub kv_unified: bool,
    /// Sliding-window layers keep a cache of the whole context instead of
    /// one of their window (`--swa-full`). Off, as llama-bench and
    /// llama-server run; absent when off, so that a campaign cell's id does
    /// not change with this key's arrival. Specs recorded before it ran with
    /// llama.cpp's library default, on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub swa_full: bool,
    /// How the next token is chosen (`--sampler`).
    pub sampler: Sampler,
    /// Sample host, process and GPU telemetry during points (off: `--no-telemetry`).
    pub telemetry: bool,
    /// Trace GPU kernels with CUPTI when layers are on a GPU (off: `--no-kernel-timing`).
    pub kernel_timing: bool,
}

impl Default for InprocSpec {
    /// The command line's defaults.
    fn default() -> InprocSpec {
        InprocSpec {
            model: Vec::new(),
            threads: Vec::new(),
            n_gpu_layers: vec![0],
            prompt_tokens: vec![128],
            gen_tokens: 64,
            batch: vec![1, 2, 4, 8, 16],
            depth: vec![0],
            warmup: 1,
            runs: 5,
            until_precise: None,
            max_runs: None,
            max_duration: None,
            seed: 0,
            ubatch: vec![512],
            n_batch: Vec::new(),
            flash_attn: vec![FlashAttn::Auto],
            cache_type_k: vec![CacheType::F16],
            cache_type_v: vec![CacheType::F16],
            mmap: vec![true],
            kv_offload: vec![true],
            kv_unified: false,
            swa_full: false,
            sampler: Sampler::Greedy,
            telemetry: true,
            kernel_timing: true,
        }
    }
}

impl InprocSpec {
    /// The checks the command line makes, for a spec from anywhere.
    pub fn validate(&self) -> Result<(), SpecError> {
        for &t in &self.threads {
            check_threads(Some(t))?;
        }
        distinct("--threads", &self.threads)?;
        if self.n_gpu_layers.is_empty() {
            return Err(SpecError::new("--n-gpu-layers", "the list is empty"));
        }
        for &layers in &self.n_gpu_layers {
            check_gpu_layers(layers)?;
        }
        distinct("--n-gpu-layers", &self.n_gpu_layers)?;
        distinct("--model", &self.model)?;
        check_positive_list("prompt tokens", &self.prompt_tokens)
            .map_err(|m| SpecError::new("--prompt-tokens", m))?;
        check_positive_list("batch", &self.batch).map_err(|m| SpecError::new("--batch", m))?;
        check_count_list("depth", &self.depth).map_err(|m| SpecError::new("--depth", m))?;
        check_positive_list("ubatch", &self.ubatch).map_err(|m| SpecError::new("--ubatch", m))?;
        if !self.n_batch.is_empty() {
            check_positive_list("n_batch", &self.n_batch)
                .map_err(|m| SpecError::new("--n-batch", m))?;
        }
        nonempty_distinct("--flash-attn", &self.flash_attn)?;
        nonempty_distinct("--cache-type-k", &self.cache_type_k)?;
        nonempty_distinct("--cache-type-v", &self.cache_type_v)?;
        nonempty_distinct("--mmap", &self.mmap)?;
        nonempty_distinct("--no-kv-offload", &self.kv_offload)?;
        if self.gen_tokens == 0 {
            return Err(SpecError::new("--gen-tokens", "must be at least 1"));
        }
        if self.runs == 0 {
            return Err(SpecError::new("--runs", "must be at least 1"));
        }
        self.validate_precision()?;
        if self.configurations().iter().all(|c| c.invalid().is_some()) {
            let reason = self.configurations()[0].invalid().unwrap_or_default();
            return Err(SpecError::new(
                "--cache-type-v",
                format!("every cell of the grid is invalid: {reason}"),
            ));
        }
        Ok(())
    }

    /// `--until-precise` and its caps.
    fn validate_precision(&self) -> Result<(), SpecError> {
        super::http::check_precision(
            self.until_precise.as_deref(),
            [
                ("--max-runs", self.max_runs.is_some()),
                ("--max-duration", self.max_duration.is_some()),
            ],
            self.max_duration,
        )?;
        let targets = self.until_precise.as_deref().unwrap_or_default();
        if targets
            .iter()
            .any(|t| t.metric == super::PreciseMetric::E2e)
        {
            return Err(SpecError::new(
                "--until-precise",
                "in-process points have no E2E: use ttft, itl or tpot",
            ));
        }
        if let Some(cap) = self.max_runs.filter(|&cap| cap < self.runs) {
            return Err(SpecError::new(
                "--max-runs",
                format!(
                    "{cap} is below the {} runs each point starts with",
                    self.runs
                ),
            ));
        }
        Ok(())
    }

    /// The engine grid: the cartesian product of every engine list, in
    /// llama-bench's order (model outermost, then what a model is loaded
    /// with, then the context's settings), before the shapes.
    pub fn configurations(&self) -> Vec<EngineSettings> {
        let models: Vec<Option<PathBuf>> = if self.model.is_empty() {
            vec![None]
        } else {
            self.model.iter().cloned().map(Some).collect()
        };
        let threads: Vec<Option<u32>> = if self.threads.is_empty() {
            vec![None]
        } else {
            self.threads.iter().copied().map(Some).collect()
        };
        let n_batch: Vec<Option<u32>> = if self.n_batch.is_empty() {
            vec![None]
        } else {
            self.n_batch.iter().copied().map(Some).collect()
        };
        let mut cells = Vec::new();
        for model in &models {
            for &n_gpu_layers in &self.n_gpu_layers {
                for &mmap in &self.mmap {
                    for &threads in &threads {
                        for &ubatch in &self.ubatch {
                            for &n_batch in &n_batch {
                                for &flash_attn in &self.flash_attn {
                                    for &cache_type_k in &self.cache_type_k {
                                        for &cache_type_v in &self.cache_type_v {
                                            for &kv_offload in &self.kv_offload {
                                                cells.push(EngineSettings {
                                                    model: model.clone(),
                                                    n_gpu_layers,
                                                    mmap,
                                                    threads,
                                                    ubatch,
                                                    n_batch,
                                                    flash_attn,
                                                    cache_type_k,
                                                    cache_type_v,
                                                    kv_offload,
                                                });
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        cells
    }

    /// The engine settings given more than one value, by spec key: the
    /// columns a table of the grid needs.
    pub fn varying(&self) -> Vec<&'static str> {
        [
            ("model", self.model.len()),
            ("n_gpu_layers", self.n_gpu_layers.len()),
            ("mmap", self.mmap.len()),
            ("threads", self.threads.len()),
            ("ubatch", self.ubatch.len()),
            ("n_batch", self.n_batch.len()),
            ("flash_attn", self.flash_attn.len()),
            ("cache_type_k", self.cache_type_k.len()),
            ("cache_type_v", self.cache_type_v.len()),
            ("kv_offload", self.kv_offload.len()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name)
        .collect()
    }
}

/// A list that repeats a value would measure a cell twice under one name.
fn distinct<T: PartialEq + std::fmt::Debug>(flag: &str, values: &[T]) -> Result<(), SpecError> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(SpecError::new(flag, format!("the list repeats {v:?}")));
        }
    }
    Ok(())
}

fn nonempty_distinct<T: PartialEq + std::fmt::Debug>(
    flag: &str,
    values: &[T],
) -> Result<(), SpecError> {
    if values.is_empty() {
        return Err(SpecError::new(flag, "the list is empty"));
    }
    distinct(flag, values)
}

/// `--threads`: 1 to [`MAX_THREADS`] when given.
pub(super) fn check_threads(threads: Option<u32>) -> Result<(), SpecError> {
    match threads {
        Some(t) if t == 0 || t > MAX_THREADS => Err(SpecError::new(
            "--threads",
            format!("{t} is not in 1..={MAX_THREADS}"),
        )),
        _ => Ok(()),
    }
}

/// `--n-gpu-layers`: -1 (all) or a count.
pub(super) fn check_gpu_layers(layers: i32) -> Result<(), SpecError> {
    if layers < -1 {
        return Err(SpecError::new(
            "--n-gpu-layers",
            format!("{layers}: give a layer count, or -1 for all"),
        ));
    }
    Ok(())
}
