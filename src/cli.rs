//! Command-line flags. Everything is validated here, at parse time, so that a
//! typo fails before a model is loaded, never halfway through a sweep.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "inferbench",
    version,
    args_override_self = true,
    about = "Measure LLM inference honestly: llama.cpp in-process, and served endpoints",
    long_about = "Measure LLM inference honestly.\n\n\
        `inproc` links llama.cpp into this process and times prefill, every decode step and \
        sampling separately, sweeping how many sequences decode together. Every command works \
        without a model argument: it then uses a tiny generated model."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Time llama.cpp in this process: prefill, each decode step, sampling; batch-size sweeps.
    Inproc(InprocArgs),
    /// Inspect GGUF files, or write the tiny test model.
    #[command(subcommand)]
    Model(ModelCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Write the deterministic tiny llama-architecture model (byte-identical on every run).
    Tiny {
        /// Where to write the GGUF file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a GGUF file's architecture, size, quantization and tensor types.
    Inspect {
        /// The GGUF file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A comma-separated list of distinct positive integers, e.g. `1,2,4,8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositiveList(pub Vec<u32>);

fn positive_list(what: &'static str) -> impl Fn(&str) -> Result<PositiveList, String> + Clone {
    move |s: &str| {
        if s.trim().is_empty() {
            return Err(format!("the {what} list is empty; give e.g. 1,2,4"));
        }
        let mut values = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            let v: u32 = item
                .parse()
                .map_err(|_| format!("'{item}' in the {what} list is not a positive integer"))?;
            if v == 0 {
                return Err(format!(
                    "the {what} list contains 0; every value must be at least 1"
                ));
            }
            if values.contains(&v) {
                return Err(format!("the {what} list repeats {v}"));
            }
            values.push(v);
        }
        Ok(PositiveList(values))
    }
}

#[derive(Debug, Args)]
pub struct InprocArgs {
    /// GGUF model to measure. Default: the tiny generated model (written to the cache on first use).
    #[arg(long, short = 'm')]
    pub model: Option<PathBuf>,

    /// Threads for decode and for batch (prompt) evaluation. Default: physical cores. llama.cpp's
    /// kernels are memory-bound during decode; SMT siblings rarely help and often hurt.
    #[arg(long, short = 't', value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Layers to offload to a GPU (-1: all). Needs a GPU build (`--features cuda`).
    #[arg(long, short = 'g', default_value_t = 0, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-1..))]
    pub n_gpu_layers: i32,

    /// Prompt lengths in tokens, comma separated. Prompts are exact token counts (BOS included).
    #[arg(long, short = 'p', default_value = "128", value_parser = positive_list("prompt tokens"))]
    pub prompt_tokens: PositiveList,

    /// Tokens generated per sequence (the first comes from prefill, the rest from decode steps).
    #[arg(long, short = 'n', default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub gen_tokens: u32,

    /// Sequences decoded together, comma separated: the throughput/latency curve. Larger batches
    /// move decode from memory-bound towards compute-bound: more tokens/s, slower steps.
    #[arg(long, short = 'b', default_value = "1,2,4,8,16", value_parser = positive_list("batch"))]
    pub batch: PositiveList,

    /// Warm-up runs per point, measured but never counted.
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,

    /// Measured runs per point.
    #[arg(long, short = 'r', default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// Seed of the synthetic prompts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Tokens per compute graph during prefill (llama.cpp's n_ubatch).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub ubatch: u32,

    /// One KV-cache pool shared by all sequences instead of one per sequence.
    #[arg(long)]
    pub kv_unified: bool,

    /// Result file (JSON), written after every point. Default: results/inproc-<time>.json.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,

    /// Also write one CSV row per point.
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// Show llama.cpp's own log.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}
