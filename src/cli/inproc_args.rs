//! `inproc`'s flags, and the lists its grid takes.

use super::*;

/// A comma-separated list of distinct positive integers, e.g. `1,2,4,8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositiveList(pub Vec<u32>);

/// A comma-separated list of distinct GPU layer counts, -1 for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerList(pub Vec<i32>);

pub(super) fn layer_list(s: &str) -> Result<LayerList, String> {
    let values = s
        .split(',')
        .map(|item| {
            let item = item.trim();
            item.parse::<i32>()
                .ok()
                .filter(|v| *v >= -1)
                .ok_or_else(|| format!("'{item}' is not a layer count (-1 for all)"))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(format!("the list repeats {v}"));
        }
    }
    Ok(LayerList(values))
}

/// A comma-separated list of distinct values of an engine setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingList<T>(pub Vec<T>);

pub(super) fn setting_list<T>(
    what: &'static str,
) -> impl Fn(&str) -> Result<SettingList<T>, String> + Clone
where
    T: std::str::FromStr<Err = String> + PartialEq + std::fmt::Debug,
{
    move |s: &str| {
        let values = s
            .split(',')
            .map(str::parse::<T>)
            .collect::<Result<Vec<T>, String>>()?;
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(format!("the {what} list repeats {v:?}"));
            }
        }
        Ok(SettingList(values))
    }
}

/// `1`, `0` or `0,1`.
pub(super) fn flag_list(s: &str) -> Result<SettingList<bool>, String> {
    let values = s
        .split(',')
        .map(|item| match item.trim() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            other => Err(format!("'{other}' is not 0 or 1")),
        })
        .collect::<Result<Vec<bool>, String>>()?;
    if values.len() == 2 && values[0] == values[1] || values.len() > 2 {
        return Err(format!("'{s}': give 0, 1 or 0,1"));
    }
    Ok(SettingList(values))
}

/// A comma-separated list of distinct counts, 0 allowed, e.g. `0,4096`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountList(pub Vec<u32>);

pub(super) fn count_list(what: &'static str) -> impl Fn(&str) -> Result<CountList, String> + Clone {
    move |s: &str| text::count_list(what, s).map(CountList)
}

pub(super) fn positive_list(
    what: &'static str,
) -> impl Fn(&str) -> Result<PositiveList, String> + Clone {
    move |s: &str| text::positive_list(what, s).map(PositiveList)
}

#[derive(Debug, Args)]
pub struct InprocArgs {
    /// GGUF models to measure, comma separated or repeated: each a cell of the grid. Default: the
    /// tiny generated model (written to the cache on first use).
    #[arg(long, short = 'm', value_delimiter = ',', action = clap::ArgAction::Append)]
    pub model: Vec<PathBuf>,

    /// Threads for decode and for batch (prompt) evaluation, comma separated for a grid. Default:
    /// physical cores. llama.cpp's kernels are memory-bound during decode; SMT siblings rarely
    /// help and often hurt.
    #[arg(long, short = 't', value_parser = positive_list("threads"))]
    pub threads: Option<PositiveList>,

    /// Layers to offload to a GPU (-1: all), comma separated for a grid. Needs a GPU build
    /// (`--features cuda`).
    #[arg(long, short = 'g', default_value = "0", allow_negative_numbers = true,
          value_parser = layer_list)]
    pub n_gpu_layers: LayerList,

    /// Flash attention: off, on or auto (llama.cpp's default), comma separated for a grid.
    #[arg(long, visible_alias = "fa", default_value = "auto", value_parser = setting_list::<FlashAttn>("flash attention"))]
    pub flash_attn: SettingList<FlashAttn>,

    /// The K cache's element type: f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1; comma
    /// separated for a grid. A quantized cache is smaller and reads fewer bytes per decode step.
    #[arg(long, visible_alias = "ctk", default_value = "f16", value_parser = setting_list::<CacheType>("cache type"))]
    pub cache_type_k: SettingList<CacheType>,

    /// The V cache's element type (as --cache-type-k). llama.cpp needs flash attention for a
    /// quantized V cache: a cell with it off is skipped, with the reason.
    #[arg(long, visible_alias = "ctv", default_value = "f16", value_parser = setting_list::<CacheType>("cache type"))]
    pub cache_type_v: SettingList<CacheType>,

    /// Tokens per llama_decode call (llama.cpp's n_batch), comma separated for a grid. Default:
    /// each point's whole prefill, which inferbench always gives to llama.cpp in one call.
    #[arg(long, value_parser = positive_list("n_batch"))]
    pub n_batch: Option<PositiveList>,

    /// Map the model file (1, llama.cpp's default) or read it into memory (0); 0,1 for both.
    #[arg(long, default_value = "1", value_parser = flag_list)]
    pub mmap: SettingList<bool>,

    /// Keep the KV cache (and attention) off the GPU with offloaded layers; `--no-kv-offload 0,1`
    /// measures both.
    #[arg(long, value_name = "0|1", num_args = 0..=1, default_missing_value = "1", value_parser = flag_list)]
    pub no_kv_offload: Option<SettingList<bool>>,

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

    /// Context depths, comma separated (llama-bench's -d): before each run, every sequence's KV
    /// cache is filled with this many tokens of its own (timed apart, as depth_fill_ms), so that
    /// prefill and decode run at context D + P + i. Decode at an empty cache is the cheapest it
    /// will ever be; users compare engines at depth.
    #[arg(long, short = 'd', default_value = "0", value_parser = count_list("depth"))]
    pub depth: CountList,

    /// Warm-up runs per point, measured but never counted.
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,

    /// Measured runs per point.
    #[arg(long, short = 'r', default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// Keep adding runs to each point until the 95% bootstrap interval of every named statistic
    /// (one draw per run) is within PCT of it, e.g. ttft.p50=2%,itl.p50=1% (metrics ttft, itl,
    /// tpot; statistics p50, p90, p95, p99), or until --max-runs or --max-duration, which the
    /// point then says. Every run decodes prompts of its own.
    #[arg(long, value_name = "METRIC.STAT=PCT%,...", value_parser = precision_list)]
    pub until_precise: Option<PrecisionList>,

    /// --until-precise: most runs per point (default: 20 times --runs, or the count the highest
    /// percentile named needs, 662 for a p99, if more).
    #[arg(long, value_name = "N", requires = "until_precise",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_runs: Option<u32>,

    /// --until-precise: most time per point's measured runs (e.g. 10m).
    #[arg(long, value_name = "DURATION", requires = "until_precise", value_parser = duration)]
    pub max_duration: Option<Duration>,

    /// Seed of the synthetic prompts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Tokens per compute graph (llama.cpp's n_ubatch), comma separated for a grid.
    #[arg(long, default_value = "512", value_parser = positive_list("ubatch"))]
    pub ubatch: PositiveList,

    /// One KV-cache pool shared by all sequences instead of one per sequence.
    #[arg(long)]
    pub kv_unified: bool,

    /// Sliding-window layers (Gemma 3's) keep a KV cache of the whole context
    /// instead of one of their window. Off by default, as llama-bench and
    /// llama-server run; llama.cpp's library default is on.
    #[arg(long)]
    pub swa_full: bool,

    /// How each sequence's next token is chosen; both are greedy and give the same tokens.
    /// `greedy`: the argmax of the logits row, read in place, rows over threads. `llama-greedy`:
    /// llama.cpp's own greedy sampler, which copies the whole vocabulary into a candidate array
    /// per sequence as llama.cpp's programs (llama-server) do: about 1 ms per sequence per token
    /// with a 262k vocabulary; use it to set the engine beside a server built on llama.cpp.
    #[arg(long, value_enum, default_value_t = SamplerArg::Greedy)]
    pub sampler: SamplerArg,

    /// Result file (JSON), written after every point. Default: results/inproc-<time>.json.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,

    /// Also write one CSV row per point.
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// Also write the batch-1 points as llama.cpp's `llama-bench` rows (FILE.json, .jsonl, .csv
    /// or .sql: its -o formats, its field names and units; a pp row per prefill, a tg row per
    /// run's decode steps at depth D+P), which llama.cpp's scripts/compare-llama-bench.py reads.
    #[arg(long, value_name = "FILE", value_parser = llama_bench_path)]
    pub llama_bench_out: Option<PathBuf>,

    /// The `build_commit` of those rows, which compare-llama-bench.py compares by. Default:
    /// "ib" and inferbench's commit, 7 characters (the script cuts every commit to the
    /// shortest in its input).
    #[arg(long, value_name = "NAME", requires = "llama_bench_out")]
    pub llama_bench_commit: Option<String>,

    /// Show llama.cpp's own log.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Do not sample host, process and GPU telemetry during points (a sampler thread wakes 10
    /// times a second to read /proc and NVML).
    #[arg(long)]
    pub no_telemetry: bool,

    /// With layers on a GPU, do not trace its kernels with CUPTI (kernel_timing: busy time,
    /// kernel count, gaps, launch delay per step). Tracing adds CUPTI's cost per kernel launch
    /// to the host time; this measures without it.
    #[arg(long)]
    pub no_kernel_timing: bool,
}
