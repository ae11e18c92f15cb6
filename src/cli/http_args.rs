//! `http`'s flags: loads, workloads, limits, objectives, shards.

use super::*;

/// A comma-separated list of distinct positive rates, e.g. `0.5,1,2`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateList(pub Vec<f64>);

pub(super) fn rate_list(s: &str) -> Result<RateList, String> {
    text::rate_list(s).map(RateList)
}

/// `--until-precise`'s targets, e.g. `ttft.p50=2%,tpot.p50=1%`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionList(pub Vec<inferbench_core::spec::PrecisionTarget>);

pub(super) fn precision_list(s: &str) -> Result<PrecisionList, String> {
    text::precision_targets(s).map(PrecisionList)
}

pub(super) fn burstiness(s: &str) -> Result<f64, String> {
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

pub(super) fn request_counts(s: &str) -> Result<PerLoad<u64>, String> {
    s.parse()
}

pub(super) fn durations(s: &str) -> Result<PerLoad<Duration>, String> {
    s.parse()
}

pub(super) fn trace_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !(v.is_finite() && (1e-3..=1e6).contains(&v)) {
        return Err(format!("{v} is outside 0.001 to 1000000"));
    }
    Ok(v)
}

pub(super) fn shard(s: &str) -> Result<inferbench_core::spec::Shard, String> {
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

pub(super) fn duration(s: &str) -> Result<Duration, String> {
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

pub(super) fn slo(s: &str) -> Result<SloSpec, String> {
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
