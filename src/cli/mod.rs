//! Command-line flags. Everything is validated here, at parse time, so that a
//! typo fails before a model is loaded, never halfway through a sweep.

use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use inferbench_core::spec::text;
pub use inferbench_core::spec::PerLoad;
use inferbench_core::spec::{CacheType, FlashAttn, ServerLaunch, BURSTINESS};

mod spec;
pub use spec::Outputs;

/// A combination of flags that clap's own rules cannot express: reported
/// and exited on (2) like clap's errors, where other errors exit 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`, for `return Err(usage(...))`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

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
#[expect(
    clippy::large_enum_variant,
    reason = "one command is parsed once per process: its size costs nothing"
)]
pub enum Command {
    /// Time llama.cpp in this process: prefill, each decode step, sampling; batch-size sweeps.
    Inproc(InprocArgs),
    /// Load an OpenAI-compatible server over streaming HTTP: TTFT, ITL, TPOT, E2E, throughput, goodput.
    Http(Box<HttpArgs>),
    /// Put result files side by side: in-process against served, server against server.
    Compare(CompareArgs),
    /// One model, the same token ids, in-process and served: each layer's cost with its interval.
    Contrast(ContrastArgs),
    /// From one replica's sweep: the load that met every SLO at p99, and the replicas a target rate needs.
    Plan(PlanArgs),
    /// Merge result files of the same settings exactly: several client instances, or repeated runs.
    Merge(MergeArgs),
    /// Write in-process results as llama.cpp's llama-bench rows, for its compare-llama-bench.py.
    Export(ExportArgs),
    /// Draw result files: batch curve with its knee, load curves, Pareto, CDFs, the contrast; one HTML page.
    Report(ReportArgs),
    /// Inspect GGUF files, or write the tiny test model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run a spec file (TOML or JSON) of any measuring command: `inferbench spec` prints one.
    Run(RunArgs),
    /// Run again, on this machine, the spec a result file recorded.
    Rerun(RerunArgs),
    /// Print the spec a result file recorded, as TOML to edit and `run`.
    Spec(SpecArgs),
    /// Print the JSON Schema of a file inferbench reads or writes (no name: list them).
    Schema(SchemaArgs),
    /// A grid of runs in one TOML file: list its cells, run the missing ones, their status, collect.
    #[command(subcommand)]
    Campaign(CampaignCommand),
}

/// `inferbench campaign`: every cell a spec, its result `<results>/<id>.json`.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Print each cell: its id, command and what sets it apart.
    List {
        /// The campaign file (TOML).
        file: PathBuf,
    },
    /// Run one cell (`--cell ID`, what a Slurm array task or a Ray task calls), or every cell
    /// whose result is missing or failed, in order.
    Run {
        /// The campaign file (TOML).
        file: PathBuf,
        /// The cell's id (or a prefix naming one cell).
        #[arg(long)]
        cell: Option<String>,
    },
    /// Each cell's state from the results directory: done, failed, interrupted, running or missing.
    Status {
        /// The campaign file (TOML).
        file: PathBuf,
        /// Print only the ids of cells to run (missing, failed or interrupted), one per line.
        #[arg(long)]
        todo: bool,
        /// With --todo: each id followed by the GPUs its cell asks for (`ID GPUS`), what the
        /// Slurm and Ray scripts submit by.
        #[arg(long, requires = "todo")]
        gpus: bool,
    },
    /// Gather the done cells: a summary table per metric across the grid, `compare` across the
    /// cells, one `report` page and a SQLite database of every point (campaign.sqlite), into the
    /// results directory.
    Collect {
        /// The campaign file (TOML).
        file: PathBuf,
    },
}

/// Where `run` and `rerun` write.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Result file (JSON). Default: results/<command>-<time>.json (never the file rerun).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,

    /// Also write one CSV row per point (inproc and http specs).
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// One JSON line per request (http specs).
    #[arg(long)]
    pub requests_log: Option<PathBuf>,

    /// llama-bench rows of the batch-1 points (inproc specs): see `inproc --llama-bench-out`.
    #[arg(long, value_name = "FILE", value_parser = llama_bench_path)]
    pub llama_bench_out: Option<PathBuf>,

    /// The `build_commit` of those rows: see `inproc --llama-bench-commit`.
    #[arg(long, value_name = "NAME", requires = "llama_bench_out")]
    pub llama_bench_commit: Option<String>,

    /// Show llama.cpp's own log (inproc and contrast specs).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl OutputArgs {
    fn outputs(&self) -> Outputs {
        Outputs {
            out: self.out.clone(),
            csv: self.csv.clone(),
            requests_log: self.requests_log.clone(),
            verbose: self.verbose,
            llama_bench_out: self.llama_bench_out.clone(),
            llama_bench_commit: self.llama_bench_commit.clone(),
            ..Outputs::default()
        }
    }
}

#[derive(Debug, Args)]
#[command(long_about = "Run a spec file.\n\n\
        A spec is what a measuring command (inproc, http, contrast, or http over several \
        servers in rounds) was asked to do, as TOML or JSON: `inferbench spec RESULT.json` \
        prints the one a result recorded, `inferbench schema spec` describes every key. Keys \
        left out take the command line's defaults; an unknown key is refused by name.")]
pub struct RunArgs {
    /// The spec file (TOML, or JSON).
    #[arg(value_name = "SPEC.toml")]
    pub spec: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,
}

impl RunArgs {
    /// Where this run writes.
    pub fn outputs(&self) -> Outputs {
        self.output.outputs()
    }
}

#[derive(Debug, Args)]
#[command(
    long_about = "Run again the spec a result file recorded (settings.spec), on this \
        machine, into a new result file. A served run whose spec gave no --prompt-seed draws \
        new prompts, so that the rerun does not meet the first run's in the server's cache. \
        Files written before specs existed record none and are refused."
)]
pub struct RerunArgs {
    /// A result file written by inproc, http (rounds too) or contrast.
    #[arg(value_name = "RESULT.json")]
    pub result: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,
}

impl RerunArgs {
    /// Where this run writes.
    pub fn outputs(&self) -> Outputs {
        self.output.outputs()
    }
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// A result file written by inproc, http (rounds too) or contrast.
    #[arg(value_name = "RESULT.json")]
    pub result: PathBuf,

    /// Print JSON instead of TOML.
    #[arg(long)]
    pub json: bool,
}

/// The files whose schema `inferbench schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaName {
    /// Spec files (`run`) and results' settings.spec.
    Spec,
    /// inproc and http result files.
    Result,
    /// compare's output.
    Compare,
    /// contrast's result file.
    Contrast,
    /// Rounds' result file (http with several --url or --rounds).
    Rounds,
    /// plan's --out file.
    Plan,
    /// One line of http's --requests-log (JSON Lines).
    RequestsLog,
}

impl SchemaName {
    /// The schema, generated from the types.
    pub fn generate(self) -> serde_json::Value {
        use inferbench_harness::schema::files::SchemaFile;
        let file = match self {
            SchemaName::Spec => SchemaFile::Spec,
            SchemaName::Result => SchemaFile::Result,
            SchemaName::Compare => SchemaFile::Compare,
            SchemaName::Contrast => SchemaFile::Contrast,
            SchemaName::Rounds => SchemaFile::Rounds,
            SchemaName::Plan => SchemaFile::Plan,
            SchemaName::RequestsLog => {
                return inferbench_harness::http::point::requests_log_schema()
            }
        };
        file.generate()
    }
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema; none: list them.
    #[arg(value_enum)]
    pub name: Option<SchemaName>,
}

#[derive(Debug, Args)]
#[command(long_about = "Put result files side by side.\n\n\
        Points of different files that share a shape (the same prompt and output lengths, the \
        same number of sequences in flight: in-process batch B matches concurrency B, an open \
        loop matches the same rate) are printed together, each with its difference and ratio \
        to the first file that has that shape. In-process against served, this is what the \
        server, its HTTP stack and the network cost.")]
pub struct CompareArgs {
    /// Result files written by `inproc` or `http`; the first one is the reference.
    #[arg(required = true, num_args = 2.., value_name = "RESULT.json")]
    pub files: Vec<PathBuf>,

    /// Write the comparison as JSON.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,

    /// Write one row per compared point as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// A `--llama-bench-out` path: its extension names one of llama-bench's formats.
fn llama_bench_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    inferbench_harness::llama_bench_export::Format::of_path(&path)
        .map(|_| path)
        .map_err(|e| e.to_string())
}

fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is not in [0, 1): the share of capacity kept free"
        ))
    }
}

fn positive_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 1e9 {
        Ok(v)
    } else {
        Err(format!(
            "{v}: a rate must be positive (requests per second)"
        ))
    }
}

#[derive(Debug, Args)]
#[command(long_about = "Plan replicas from one replica's sweep.\n\n\
        Reads an http result (a rate or concurrency sweep of one server, --find-max-rate and \
        --find-max-concurrency probes included). Its capacity is the highest achieved request \
        rate of a point whose p99 met every objective, every lighter point passing too: never \
        beyond a measured passing point. The replicas for --target-rate keep --headroom free \
        (0.3: each runs at most at 70% of its capacity); each replica's expected p50 and p99 at \
        its share of the load are interpolated between the measured points around it. Says \
        when the sweep does not bracket the SLO boundary, and what to measure next.")]
pub struct PlanArgs {
    /// An http result file: one replica's sweep.
    #[arg(value_name = "RESULT.json")]
    pub file: PathBuf,

    /// The traffic to serve, requests per second.
    #[arg(long, value_parser = positive_rate)]
    pub target_rate: f64,

    /// Objectives, e.g. ttft=500ms,tpot=50ms; default: the file's own --slo.
    #[arg(long, value_parser = slo)]
    pub slo: Option<SloSpec>,

    /// Share of each replica's capacity kept free, in [0, 1).
    #[arg(long, default_value_t = 0.3, value_parser = fraction)]
    pub headroom: f64,

    /// Write the plan as JSON.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(long_about = "Merge result files of the same settings exactly.\n\n\
        For several client instances that loaded one server at once, or one benchmark run \
        several times: points are matched by their load (served) or by prompt length, output \
        length and batch (in-process); request counts are added, histograms merged (the \
        percentiles of the merge are those of all the requests together, to the histogram's \
        3 significant figures), and throughputs taken over the union of the points' windows: \
        windows that overlapped count once, windows one after another add up. Files whose \
        settings (other than the per-run prompt seed) or model files differ are refused, the \
        field named; so are files without histograms.")]
pub struct MergeArgs {
    /// Result files of one mode (inproc or http) and the same settings.
    #[arg(required = true, num_args = 2.., value_name = "RESULT.json")]
    pub files: Vec<PathBuf>,

    /// Where to write the merged result.
    #[arg(long, short = 'o', value_name = "MERGED.json")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Write in-process results as llama.cpp's llama-bench rows.\n\n\
        What `inproc --llama-bench-out` writes while it runs, from result files written \
        before: one row per batch-1 point and test (pp: the prefill; tg: each run's decode \
        steps, at depth D+P), with llama-bench's field names, units and statistics, in its \
        JSON, JSONL, CSV or SQL output format, so that llama.cpp's own \
        scripts/compare-llama-bench.py compares them with llama-bench's rows or with each \
        other. Points of a larger batch, failed points, and points of files written before \
        per-run samples were kept have no row, each said on stderr."
)]
pub struct ExportArgs {
    /// In-process result files; their rows are written one file after the other.
    #[arg(required = true, value_name = "RESULT.json")]
    pub files: Vec<PathBuf>,

    /// Where to write the rows: FILE.json, .jsonl, .csv or .sql (llama-bench's -o formats).
    #[arg(long, value_name = "FILE", value_parser = llama_bench_path)]
    pub llama_bench_out: PathBuf,

    /// The rows' `build_commit`, which compare-llama-bench.py compares by. Default: "ib" and
    /// the commit of the inferbench that measured each file, 7 characters.
    #[arg(long, value_name = "NAME")]
    pub llama_bench_commit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlotFormat {
    Svg,
    Png,
}

#[derive(Debug, Args)]
#[command(long_about = "Draw result files, offline.\n\n\
        Reads result files of any kind (inproc, http, compare, contrast) and draws: the batch \
        curve (aggregate decode tok/s against inter-token latency, one point per batch size, the \
        knee marked), served load curves (TTFT and TPOT p50/p99 against concurrency or achieved \
        rate, SLO lines, goodput, the --find-max-rate answer), the Pareto view (tok/s per user \
        against total tok/s, in-process and served on one figure), CDFs of TTFT, ITL and E2E \
        from the histograms kept in the files, the contrast's layers with their intervals, \
        telemetry, and a request timeline from a --requests-log file. Several files: curves \
        overlaid and labelled by file. Nothing is fetched from anywhere: the HTML page holds its \
        figures as inline SVG.\n\n\
        With neither --html nor --plots, the page is written beside the first file (FIRST.html).")]
pub struct ReportArgs {
    /// Result files written by inproc, http, compare or contrast.
    #[arg(required = true, value_name = "RESULT.json")]
    pub files: Vec<PathBuf>,

    /// Write one self-contained HTML page: provenance, tables, every figure, notes and warnings.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,

    /// Write every figure as a file into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,

    /// Format of the files written by --plots.
    #[arg(long, value_enum, default_value = "svg")]
    pub format: PlotFormat,

    /// A per-request log written by `http --requests-log`: drawn as a request timeline.
    #[arg(long, value_name = "FILE.jsonl")]
    pub requests_log: Vec<PathBuf>,
}

fn server_spec(s: &str) -> Result<ServerLaunch, String> {
    s.parse()
}

#[derive(Debug, Args)]
#[command(
    long_about = "One model, the same token ids, in-process and served, in one table.\n\n\
        For each concurrency c, the in-process engine decodes batches of c sequences, then the \
        server is loaded with c requests in flight whose prompts are the very token ids the \
        in-process runs decoded (EOS ignored, warm-up excluded). Rows: the engine in-process \
        (TTFT = prefill + first sample; per token = TPOT), inside the server (llama-server's own \
        per-request timings: prompt_ms, predicted_per_token_ms), at the client over HTTP (TTFT, \
        TPOT); then each layer's overhead over the one below, the difference of medians with its \
        95% bootstrap interval. With --server llama-server inferbench starts llama.cpp's server \
        itself on the same model and threads, and stops it at the end, on error and on Ctrl-C."
)]
pub struct ContrastArgs {
    /// GGUF model: measured in-process, served, and the vocabulary every prompt's token ids come
    /// from. Default: the tiny generated model.
    #[arg(long, short = 'm')]
    pub model: Option<PathBuf>,

    /// Start llama.cpp's server on the model: `llama-server` (from PATH, or what
    /// scripts/servers/install-llama-server built) or `llama-server=PATH`. It gets the same
    /// threads, as many slots as the largest concurrency, a context that fits, 127.0.0.1 and a
    /// free port.
    #[arg(long, value_name = "llama-server[=PATH]", value_parser = server_spec,
          conflicts_with = "url", required_unless_present = "url")]
    pub server: Option<ServerLaunch>,

    /// A server already running on the same model (vLLM, llama-server, ...), checked through
    /// /v1/models. It must accept token-id prompts on /v1/completions.
    #[arg(long)]
    pub url: Option<String>,

    /// The model id to request (default: the first the server lists).
    #[arg(long = "served-model")]
    pub served_model: Option<String>,

    /// Prompt tokens per request (BOS included).
    #[arg(long, short = 'p', default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt_tokens: u32,

    /// Tokens generated per request.
    #[arg(long, short = 'n', default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..))]
    pub gen_tokens: u32,

    /// Concurrencies (served) and batch sizes (in-process), comma separated.
    #[arg(long, short = 'c', default_value = "1,4,8", value_parser = positive_list("concurrency"))]
    pub concurrency: PositiveList,

    /// Measured requests per served point; in-process decodes as many prompts (at least 3 runs).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,

    /// Warm-up runs in-process and warm-up requests served, per point.
    #[arg(long, default_value_t = 2)]
    pub warmup: u32,

    /// Threads, in-process and for the server. Default: physical cores.
    #[arg(long, short = 't', value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Seed of the prompts, the same on both sides.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Layers on a GPU (-1: all), in-process and in the started server (`-ngl`), so that both
    /// sides run the same device. Needs GPU builds of both (`--features cuda`).
    #[arg(long, short = 'g', default_value_t = 0, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-1..))]
    pub n_gpu_layers: i32,

    /// In-process sampler. Default llama-greedy, llama.cpp's own greedy sampler, as llama-server
    /// samples: the engine row then differs from the server's by the server alone.
    #[arg(long, value_enum, default_value_t = SamplerArg::LlamaGreedy)]
    pub sampler: SamplerArg,

    /// Longest wait for a response's headers or next chunk, and for the server to start.
    #[arg(long, default_value = "300s", value_parser = duration)]
    pub timeout: Duration,

    /// Result file (JSON). Default: results/contrast-<time>.json. Both runs also go to
    /// FILE.inproc-cN.json and FILE.http.json beside it, written as they run; the started server's
    /// log to FILE.server.log.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,

    /// Show llama.cpp's own log.
    #[arg(long, short = 'v')]
    pub verbose: bool,
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

/// A comma-separated list of distinct GPU layer counts, -1 for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerList(pub Vec<i32>);

fn layer_list(s: &str) -> Result<LayerList, String> {
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

fn setting_list<T>(what: &'static str) -> impl Fn(&str) -> Result<SettingList<T>, String> + Clone
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
fn flag_list(s: &str) -> Result<SettingList<bool>, String> {
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

fn count_list(what: &'static str) -> impl Fn(&str) -> Result<CountList, String> + Clone {
    move |s: &str| text::count_list(what, s).map(CountList)
}

fn positive_list(what: &'static str) -> impl Fn(&str) -> Result<PositiveList, String> + Clone {
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

/// A comma-separated list of distinct positive rates, e.g. `0.5,1,2`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateList(pub Vec<f64>);

fn rate_list(s: &str) -> Result<RateList, String> {
    text::rate_list(s).map(RateList)
}

/// `--until-precise`'s targets, e.g. `ttft.p50=2%,tpot.p50=1%`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionList(pub Vec<inferbench_core::spec::PrecisionTarget>);

fn precision_list(s: &str) -> Result<PrecisionList, String> {
    text::precision_targets(s).map(PrecisionList)
}

fn burstiness(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !BURSTINESS.contains(&v) {
        return Err(format!(
            "{v} is outside {} to {}",
            BURSTINESS.start(),
            BURSTINESS.end()
        ));
    }
    Ok(v)
}

fn request_counts(s: &str) -> Result<PerLoad<u64>, String> {
    s.parse()
}

fn durations(s: &str) -> Result<PerLoad<Duration>, String> {
    s.parse()
}

fn trace_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !(v.is_finite() && (1e-3..=1e6).contains(&v)) {
        return Err(format!("{v} is outside 0.001 to 1000000"));
    }
    Ok(v)
}

fn shard(s: &str) -> Result<inferbench_core::spec::Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s}: give I/N, e.g. 0/2"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s}: {v} is not a whole number"))
    };
    let (index, count) = (parse(i)?, parse(n)?);
    if count == 0 || index >= count {
        return Err(format!("{s}: I must be below N (0-based: 0/2 and 1/2)"));
    }
    Ok(inferbench_core::spec::Shard { index, count })
}

fn duration(s: &str) -> Result<Duration, String> {
    text::duration(s)
}

/// Latency objectives, e.g. `ttft=500ms,tpot=50ms,e2e=10s`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SloSpec {
    pub ttft: Option<Duration>,
    pub tpot: Option<Duration>,
    pub e2e: Option<Duration>,
}

impl SloSpec {
    /// The objectives in milliseconds, as results record them.
    pub fn to_slo(self) -> inferbench_harness::schema::Slo {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        inferbench_harness::schema::Slo {
            ttft_ms: ms(self.ttft),
            tpot_ms: ms(self.tpot),
            e2e_ms: ms(self.e2e),
        }
    }
}

fn slo(s: &str) -> Result<SloSpec, String> {
    let mut spec = SloSpec::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' is not NAME=DURATION (e.g. ttft=500ms)"))?;
        let d = Some(duration(value)?);
        match name.trim() {
            "ttft" => spec.ttft = d,
            "tpot" => spec.tpot = d,
            "e2e" => spec.e2e = d,
            other => {
                return Err(format!(
                    "unknown objective '{other}': use ttft, tpot or e2e"
                ))
            }
        }
    }
    if spec == SloSpec::default() {
        return Err("no objective given; e.g. ttft=500ms,tpot=50ms".into());
    }
    Ok(spec)
}

/// `inproc --sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SamplerArg {
    Greedy,
    LlamaGreedy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EndpointArg {
    /// POST /v1/completions with a prompt.
    Completions,
    /// POST /v1/chat/completions with one user message.
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArrivalArg {
    /// Exponential gaps: independent users (the usual model of served traffic).
    Poisson,
    /// Gamma gaps; --burstiness below 1 is burstier than Poisson, above 1 more regular.
    Gamma,
    /// Equal gaps.
    Constant,
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Server base URL, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted). Several
    /// --url: targets measured in alternating rounds (A B A B ...), see --rounds.
    #[arg(long = "url", required = true, action = clap::ArgAction::Append, value_name = "URL")]
    pub urls: Vec<String>,

    /// Rounds in which the --url targets take turns, each round on fresh prompts and the same
    /// prompts for every target, so that a machine's slow drift falls on all sides alike.
    /// Results go into one file (mode "rounds"): per target and round, pooled statistics, the
    /// per-round medians, their spread and a t-interval over rounds, and each target against
    /// the first, paired by round.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,

    /// Which API to call.
    #[arg(long, value_enum, default_value_t = EndpointArg::Completions)]
    pub endpoint: EndpointArg,

    /// Model name to request. Default: the first id the server lists at /v1/models.
    #[arg(long)]
    pub model: Option<String>,

    /// Environment variable holding the API key (sent as a bearer token; never printed or saved).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,

    /// Closed loop: requests kept in flight, comma separated for a sweep. Closed loops understate
    /// latency under load (a slow server slows the arrivals); use --rate for served-load claims.
    /// With --rate as well, the sweep runs the closed-loop points, then the open-loop ones.
    #[arg(long, value_parser = positive_list("concurrency"))]
    pub concurrency: Option<PositiveList>,

    /// Open loop: requests per second, comma separated for a sweep. Requests go out on a schedule
    /// fixed in advance, however the server keeps up.
    #[arg(long, value_parser = rate_list)]
    pub rate: Option<RateList>,

    /// Search for the highest open-loop rate whose p99 meets every --slo objective with no failed
    /// request: doubling from START (default 1 req/s), then bisecting to within 10%. Every probe is
    /// a point of the result; `max_rate` holds the answer. Reproducible from --seed.
    #[arg(long, value_name = "START", num_args = 0..=1, default_missing_value = "1",
          conflicts_with_all = ["rate", "concurrency"], requires = "slo")]
    pub find_max_rate: Option<f64>,

    /// Search for the highest closed-loop concurrency whose p99 meets every --slo objective with
    /// no failed request: doubling from START (default 1), then bisecting to within 10% (or 1).
    /// A closed loop never builds an unbounded backlog, as a rate above capacity does. Every
    /// probe is a point; `max_concurrency` holds the answer.
    #[arg(long, value_name = "START", num_args = 0..=1, default_missing_value = "1",
          value_parser = clap::value_parser!(u32).range(1..=100_000),
          conflicts_with_all = ["rate", "concurrency", "find_max_rate"], requires = "slo")]
    pub find_max_concurrency: Option<u32>,

    /// A search's probe is decided by MLPerf LoadGen's early-stopping rule at 99% confidence: a
    /// p99 objective passes only with enough requests (459 with none over the limit, 662 with
    /// one), fails when too many are over it, and is otherwise undecided. An undecided probe is
    /// extended with fresh requests, as many as the rule says a pass needs, up to N in all, and
    /// called by its point estimate if still undecided (the answer counts those). Without this
    /// flag probes are not extended.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests_per_probe: Option<u64>,

    /// Keep adding requests to each point, in batches, until the 95% bootstrap interval of every
    /// named statistic is within PCT of it (its half-width), e.g. ttft.p50=2%,tpot.p50=1%
    /// (metrics ttft, itl, tpot, e2e; statistics p50, p90, p95, p99), or until --max-requests or
    /// --max-duration is reached, which the point then says. Batches are sized by the 1/sqrt(n)
    /// law; every prompt stays distinct. The point's `precision` records the intervals reached.
    #[arg(long, value_name = "METRIC.STAT=PCT%,...", value_parser = precision_list)]
    pub until_precise: Option<PrecisionList>,

    /// --until-precise: most requests per point (default: 20 times its first count, or the count
    /// the highest percentile named needs, 662 for a p99, if more).
    #[arg(long, value_name = "N", requires = "until_precise",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests: Option<u64>,

    /// --until-precise: most time per point (e.g. 10m).
    #[arg(long, value_name = "DURATION", requires = "until_precise", value_parser = duration)]
    pub max_duration: Option<Duration>,

    /// Cut each point into slices of this length (e.g. 10s), each request in the slice it was
    /// sent in (due in, under an open loop): TTFT and TPOT p50/p99 and throughput per slice, in
    /// the result (`slices`), the `.slices.csv` beside --csv and `report`; the first slice
    /// against the last flags warm-up or drift. Default: from 1s, doubled while a point would
    /// have more than 60 slices.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub slice: Option<Duration>,

    /// Run shard I of N (0-based) of this load, the other shards elsewhere with the same flags:
    /// an open loop draws the whole schedule at the full --rate and sends request k when
    /// k mod N = I (--max-inflight divided between shards); a closed loop runs its share of
    /// the --concurrency streams, its j-th request being the load's j·N + I. Prompts come from
    /// the load's request index, so no two shards send the same one. Needs --start-at; `merge`
    /// joins the shards' files (scripts/dist/ runs them on Ray or Slurm).
    #[arg(long, value_name = "I/N", value_parser = shard, requires = "start_at")]
    pub shard: Option<inferbench_core::spec::Shard>,

    /// With --shard: the wall-clock time (Unix seconds, e.g. $(( $(date +%s) + 30 ))) every
    /// shard starts its first point at, after its warm-up and connections; a time already past
    /// is refused.
    #[arg(long, value_name = "UNIX_S", requires = "shard")]
    pub start_at: Option<f64>,

    /// With --shard and several points: point p starts at --start-at + p × this (e.g. 2m), so
    /// that the shards' points line up without a barrier; a point that overruns its slot
    /// starts late and says so.
    #[arg(long, value_name = "DURATION", value_parser = duration, requires = "shard")]
    pub point_interval: Option<Duration>,

    /// Arrival process of the open loop.
    #[arg(long, value_enum, default_value_t = ArrivalArg::Poisson)]
    pub arrival: ArrivalArg,

    /// Shape of the gamma arrival process (requires --arrival gamma), from 0.001 (very bursty) to
    /// 1000 (nearly constant gaps); 1 is Poisson.
    #[arg(long, value_parser = burstiness)]
    pub burstiness: Option<f64>,

    /// Open loop: most requests in flight at once; a request due beyond it waits and counts as late.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inflight: u32,

    /// Measured requests per point (default 100 unless --duration is given): one count for
    /// every point, a list with one count per load level (as many as --concurrency and --rate
    /// values together, e.g. `--concurrency 1,50,300 --num-requests 5,200,1500`), or a multiple
    /// of the load (`5x`: 5 requests per request in flight, or 5 seconds' worth of an open-loop
    /// rate). With a multi-turn workload it counts conversations.
    #[arg(long, value_parser = request_counts)]
    pub num_requests: Option<PerLoad<u64>>,

    /// Time per point (e.g. 60s), or a list with one per load level (30s,60s,120s); with
    /// --num-requests, whichever ends first.
    #[arg(long, value_parser = durations)]
    pub duration: Option<PerLoad<Duration>>,

    /// Continue the sweep of a partial result file (interrupted, failed, or cut short): its
    /// completely measured points are kept, the rest are run, into the same file unless --out
    /// says otherwise. The file's settings must equal this run's (the first that differs is
    /// named); its prompt seed is kept, and the points still to run draw prompts no earlier
    /// point sent, so the server's prefix cache cannot serve them.
    #[arg(long, value_name = "FILE.json")]
    pub resume: Option<PathBuf>,

    /// Also write each point in the result format of `vllm bench serve --save-result`
    /// (vLLM 0.32's keys: completed, request_throughput, mean_ttft_ms, p99_e2el_ms, ...), so
    /// scripts that read vLLM's files read these: FILE itself for a one-point run, else
    /// FILE's stem with the point's load (`out.c8.json`, `out.rate2.json`).
    #[arg(long, value_name = "FILE.json")]
    pub export_vllm: Option<PathBuf>,

    /// Replay speed of a `trace:` workload: 2 sends it twice as fast (gaps halved).
    #[arg(long, default_value_t = 1.0, value_parser = trace_speed)]
    pub trace_speed: f64,

    /// Warm-up requests before each point, never counted.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,

    /// fixed:IN:OUT, short, medium, long, chat, code, long-qa, summarization, or sharegpt:PATH.
    #[arg(long, default_value = "fixed:128:64")]
    pub workload: String,

    /// Seed of lengths and arrival times (and of prompts, with --prompt-seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Seed of the prompts' content (words, token ids, conversations). Default: drawn anew for
    /// every run and recorded in the result (settings.prompt_seed). Servers cache prompt prefixes:
    /// a run that repeated the last run's prompts against a server still up would measure that
    /// cache, not prefill. Within a run no two requests share a prompt (every point, probe and
    /// warm-up draws its own). Give it to repeat a run exactly; with --token-ids-from, the prompts
    /// `inproc --seed S` decoded are those of `--prompt-seed S`, point by point.
    #[arg(long)]
    pub prompt_seed: Option<u64>,

    /// Send each prompt as a token-id array (`"prompt": [ids]`, completions endpoint) drawn from
    /// this GGUF's vocabulary exactly as `inproc` draws them: BOS first when the model wants one,
    /// then ordinary tokens. The server then evaluates the very ids the in-process engine did,
    /// with no tokenizer in between; the result records the file's sha256. llama-server and vLLM
    /// accept token ids; llama-cpp-python does too.
    #[arg(long, value_name = "MODEL.gguf", conflicts_with = "tokenizer")]
    pub token_ids_from: Option<PathBuf>,

    /// Ask the server to ignore end-of-sequence, so each request generates its full output length.
    #[arg(long)]
    pub ignore_eos: bool,

    /// Objectives for goodput, e.g. ttft=500ms,tpot=50ms,e2e=10s.
    #[arg(long, value_parser = slo)]
    pub slo: Option<SloSpec>,

    /// Longest wait for response headers, and for each chunk after them.
    #[arg(long, default_value = "300s", value_parser = duration)]
    pub timeout: Duration,

    /// Result file (JSON), written after every point. Default: results/http-<time>.json.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,

    /// Also write one CSV row per point.
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// One JSON line per request, streamed to this file as requests finish.
    #[arg(long)]
    pub requests_log: Option<PathBuf>,

    /// The server's tokenizer.json: makes synthetic prompts exactly --workload's input length, and
    /// counts output tokens when the server sends no usage (better than counting chunks).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,

    /// Also read GPU telemetry through NVML (for a server on this machine).
    #[arg(long)]
    pub gpu_telemetry: bool,

    /// Sample the server's Prometheus metrics during every point, about once
    /// a second, on a thread of their own: gauges (requests running and
    /// waiting, KV-cache use) as mean and max, counters as their change over
    /// the point, histograms (queue time, server-side TTFT, ...) as
    /// bucket-estimated quantiles of the point's observations, every series
    /// under the server's own name. URL default: the server's /metrics
    /// (llama-server needs --metrics; vLLM always has it).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub server_metrics: Option<String>,

    /// Time between two scrapes of --server-metrics.
    #[arg(long, default_value = "1s", value_parser = duration, value_name = "DURATION")]
    pub server_metrics_interval: Duration,

    /// Do not sample host and client-process telemetry during points.
    #[arg(long, conflicts_with = "gpu_telemetry")]
    pub no_telemetry: bool,

    /// Threads of the client's runtime. One keeps the client light beside a server on the same host.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub client_threads: u32,

    /// Spin the client's threads polling their sockets instead of sleeping
    /// until one is ready: removes the wake-up delay of an idle thread from
    /// every timestamp (about 0.1 ms here), at the cost of one full core per
    /// client thread. Use it when the server has cores to spare.
    #[arg(long)]
    pub busy_poll: bool,

    /// Do not open the point's connections before it starts: the first
    /// requests then pay for their TCP (and TLS) handshakes, as a client
    /// without a warm pool would.
    #[arg(long)]
    pub no_preconnect: bool,

    /// PEM file of a certificate authority to trust for an https server (a
    /// self-signed one), besides the system's; repeat for more.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,

    /// Accept any certificate from an https server: encrypted, but the
    /// server is not authenticated.
    #[arg(long)]
    pub insecure: bool,
}

impl HttpArgs {
    /// The server a single run measures: the first `--url`.
    pub fn url(&self) -> &str {
        &self.urls[0]
    }
}
