//! Command-line flags. Everything is validated here, at parse time, so that a
//! typo fails before a model is loaded, never halfway through a sweep.

use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use inferbench_core::spec::text;
pub use inferbench_core::spec::PerLoad;
use inferbench_core::spec::{CacheType, FlashAttn, ServerLaunch, BURSTINESS};

mod http_args;
mod inproc_args;
mod spec;
pub use http_args::*;
pub use inproc_args::*;
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
