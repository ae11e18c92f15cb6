//! `inferbench inproc`'s spec.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

/// Everything `inproc` measures: the model, the engine's settings and the
/// sweep (prompt lengths × batch sizes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct InprocSpec {
    /// GGUF model (`--model`); absent: the tiny generated model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// Threads for decode and batch evaluation (`--threads`); absent: the
    /// physical cores of the machine that runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Layers offloaded to a GPU, -1 for all (`--n-gpu-layers`).
    pub n_gpu_layers: i32,
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
    /// Seed of the synthetic prompts (`--seed`).
    pub seed: u64,
    /// Tokens per compute graph during prefill, llama.cpp's n_ubatch (`--ubatch`).
    pub ubatch: u32,
    /// One KV-cache pool shared by all sequences (`--kv-unified`).
    pub kv_unified: bool,
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
            model: None,
            threads: None,
            n_gpu_layers: 0,
            prompt_tokens: vec![128],
            gen_tokens: 64,
            batch: vec![1, 2, 4, 8, 16],
            depth: vec![0],
            warmup: 1,
            runs: 5,
            seed: 0,
            ubatch: 512,
            kv_unified: false,
            sampler: Sampler::Greedy,
            telemetry: true,
            kernel_timing: true,
        }
    }
}

impl InprocSpec {
    /// The checks the command line makes, for a spec from anywhere.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_threads(self.threads)?;
        check_gpu_layers(self.n_gpu_layers)?;
        check_positive_list("prompt tokens", &self.prompt_tokens)
            .map_err(|m| SpecError::new("--prompt-tokens", m))?;
        check_positive_list("batch", &self.batch).map_err(|m| SpecError::new("--batch", m))?;
        check_count_list("depth", &self.depth).map_err(|m| SpecError::new("--depth", m))?;
        if self.gen_tokens == 0 {
            return Err(SpecError::new("--gen-tokens", "must be at least 1"));
        }
        if self.runs == 0 {
            return Err(SpecError::new("--runs", "must be at least 1"));
        }
        if self.ubatch == 0 {
            return Err(SpecError::new("--ubatch", "must be at least 1"));
        }
        Ok(())
    }
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
