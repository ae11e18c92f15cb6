//! `inferbench http`'s spec, one server's and several servers' in rounds.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::text::{self, check_positive_list, check_rates};
use super::SpecError;

pub(crate) use super::http_parts::check_precision;
pub use super::http_parts::{
    Arrival, Endpoint, PerLoad, PerLoadValue, PreciseMetric, PreciseStatistic, PrecisionTarget,
    Shard, BURSTINESS,
};

/// Measured requests per point when neither `--num-requests` nor
/// `--duration` is given (nor a trace, whose length it is then).
pub const DEFAULT_NUM_REQUESTS: u64 = 100;

/// Most client runtime threads.
pub const MAX_CLIENT_THREADS: u32 = 256;
/// Highest concurrency `--find-max-concurrency` may start from.
pub const MAX_SEARCH_CONCURRENCY: u32 = 100_000;
/// `--trace-speed`'s range.
pub const TRACE_SPEED: std::ops::RangeInclusive<f64> = 1e-3..=1e6;

/// Everything `http` does against one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct HttpSpec {
    /// The server's base URL (`--url`).
    pub url: String,
    /// Which API to call (`--endpoint`).
    pub endpoint: Endpoint,
    /// The model to request (`--model`); absent: the first the server lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Environment variable holding the API key (`--api-key-env`); the key
    /// itself is never in a spec.
    pub api_key_env: String,
    /// Closed-loop concurrencies, one point each (`--concurrency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Vec<u32>>,
    /// Open-loop rates in requests per second, one point each (`--rate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Vec<f64>>,
    /// Search the highest open-loop rate meeting `slo`, from this start (`--find-max-rate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub find_max_rate: Option<f64>,
    /// Search the highest concurrency meeting `slo`, from this start (`--find-max-concurrency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub find_max_concurrency: Option<u32>,
    /// A search's probe that the early-stopping rule leaves undecided is
    /// extended with more requests up to this many in all before it is
    /// called (`--max-requests-per-probe`); absent: never extended, an
    /// undecided probe is called by its point estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests_per_probe: Option<u64>,
    /// Keep adding requests to each point until every named statistic's 95%
    /// bootstrap interval is this precise (`--until-precise`), or a cap is
    /// reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_precise: Option<Vec<PrecisionTarget>>,
    /// `--until-precise`'s cap on each point's requests (`--max-requests`);
    /// absent: 20 times the point's first count, or the early-stopping
    /// count of the highest percentile named (662 for a p99) if more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    /// `--until-precise`'s cap on each point's time (`--max-duration`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "text::optional_duration",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub max_duration: Option<Duration>,
    /// Each point's time slices (`--slice`); absent: from a second,
    /// doubled while a point would have more than 60.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "text::optional_duration",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub slice: Option<Duration>,
    /// `--shard I/N`: this run is shard I of N of one load, the others run
    /// elsewhere at the same `start_at`; `merge` puts them together.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<Shard>,
    /// `--start-at`: the wall-clock time (Unix seconds) every shard starts
    /// its first point at.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_at: Option<f64>,
    /// `--point-interval`: with shards, point p starts at `start_at` + p ×
    /// this, so that the shards' points line up without a barrier.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "text::optional_duration",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub point_interval: Option<Duration>,
    /// The open loop's arrival process (`--arrival`, `--burstiness`).
    pub arrival: Arrival,
    /// Open loop: most requests in flight at once (`--max-inflight`).
    pub max_inflight: u32,
    /// Measured requests per point (`--num-requests`); absent with no
    /// duration: 100 (a trace: its length).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<PerLoad<u64>>")]
    pub num_requests: Option<PerLoad<u64>>,
    /// Time per point (`--duration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<PerLoad<u64>>")]
    pub duration: Option<PerLoad<Duration>>,
    /// Replay speed of a trace workload (`--trace-speed`).
    pub trace_speed: f64,
    /// Warm-up requests before each point, never counted (`--warmup`).
    pub warmup: u64,
    /// The workload (`--workload`): `fixed:IN:OUT`, a named mix, `sharegpt:PATH`, ...
    pub workload: String,
    /// Seed of lengths and arrival times (`--seed`).
    pub seed: u64,
    /// Seed of the prompts' content (`--prompt-seed`); absent: drawn anew
    /// by every run (so that a rerun never meets the last run's prompts in
    /// a server's cache) and recorded in `settings.prompt_seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_seed: Option<u64>,
    /// Send token-id prompts drawn from this GGUF's vocabulary (`--token-ids-from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ids_from: Option<PathBuf>,
    /// Ask the server to ignore end-of-sequence (`--ignore-eos`).
    pub ignore_eos: bool,
    /// Latency objectives (`--slo`), in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<SloSchema>")]
    pub slo: Option<Slo>,
    /// Longest wait for headers and for each chunk (`--timeout`).
    #[serde(with = "text::serde_duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// The server's tokenizer.json (`--tokenizer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
    /// Read GPU telemetry through NVML (`--gpu-telemetry`).
    pub gpu_telemetry: bool,
    /// Sample the server's Prometheus metrics at this URL (`--server-metrics`);
    /// empty: the server's own /metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<String>,
    /// Time between two scrapes of `server_metrics` (`--server-metrics-interval`).
    #[serde(with = "text::serde_duration")]
    #[schemars(with = "String")]
    pub server_metrics_interval: Duration,
    /// Sample host and client-process telemetry during points (off: `--no-telemetry`).
    pub telemetry: bool,
    /// Threads of the client's runtime (`--client-threads`).
    pub client_threads: u32,
    /// Spin the client's threads polling their sockets (`--busy-poll`).
    pub busy_poll: bool,
    /// Open each point's connections before it starts (off: `--no-preconnect`).
    pub preconnect: bool,
    /// Extra certificate authorities to trust (`--ca-cert`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca_cert: Vec<PathBuf>,
    /// Accept any server certificate (`--insecure`).
    pub insecure: bool,
}

/// Latency objectives a request must all meet to count towards goodput.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Slo {
    /// Longest TTFT allowed, ms, counted from the intended send time under
    /// an open loop (null: no TTFT objective).
    pub ttft_ms: Option<f64>,
    /// Longest TPOT allowed, ms; a request of one token has no TPOT and
    /// meets it (null: no TPOT objective).
    pub tpot_ms: Option<f64>,
    /// Longest E2E allowed, ms, counted from the intended send time under
    /// an open loop (null: no E2E objective).
    pub e2e_ms: Option<f64>,
}

impl Slo {
    /// True when no objective is set.
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.e2e_ms.is_none()
    }
}

/// The objectives as spec files hold them: milliseconds.
#[derive(schemars::JsonSchema)]
#[expect(
    dead_code,
    reason = "only its schema is used: a spec file's objectives are described apart from a result's"
)]
struct SloSchema {
    /// Longest TTFT allowed, ms.
    ttft_ms: Option<f64>,
    /// Longest TPOT allowed, ms.
    tpot_ms: Option<f64>,
    /// Longest E2E allowed, ms.
    e2e_ms: Option<f64>,
}

impl Default for HttpSpec {
    /// The command line's defaults (with no URL).
    fn default() -> HttpSpec {
        HttpSpec {
            url: String::new(),
            endpoint: Endpoint::Completions,
            model: None,
            api_key_env: "OPENAI_API_KEY".into(),
            concurrency: None,
            rate: None,
            find_max_rate: None,
            find_max_concurrency: None,
            max_requests_per_probe: None,
            until_precise: None,
            max_requests: None,
            max_duration: None,
            slice: None,
            shard: None,
            start_at: None,
            point_interval: None,
            arrival: Arrival::Poisson,
            max_inflight: 4096,
            num_requests: None,
            duration: None,
            trace_speed: 1.0,
            warmup: 2,
            workload: "fixed:128:64".into(),
            seed: 0,
            prompt_seed: None,
            token_ids_from: None,
            ignore_eos: false,
            slo: None,
            timeout: Duration::from_secs(300),
            tokenizer: None,
            gpu_telemetry: false,
            server_metrics: None,
            server_metrics_interval: Duration::from_secs(1),
            telemetry: true,
            client_threads: 1,
            busy_poll: false,
            preconnect: true,
            ca_cert: Vec::new(),
            insecure: false,
        }
    }
}

impl HttpSpec {
    /// `--until-precise` and its caps.
    fn validate_precision(&self) -> Result<(), SpecError> {
        check_precision(
            self.until_precise.as_deref(),
            [
                ("--max-requests", self.max_requests.is_some()),
                ("--max-duration", self.max_duration.is_some()),
            ],
            self.max_duration,
        )?;
        if self.until_precise.is_none() {
            return Ok(());
        }
        if self.searching() {
            return Err(SpecError::new(
                "--until-precise",
                "a search's probes are extended by --max-requests-per-probe instead",
            ));
        }
        if self.duration.is_some() {
            return Err(SpecError::new(
                "--until-precise",
                "adds requests to --num-requests; cap the time with --max-duration instead of --duration",
            ));
        }
        if self.workload.starts_with("trace:") {
            return Err(SpecError::new(
                "--until-precise",
                "a trace's requests are the trace's: there is nothing to add",
            ));
        }
        if let (Some(cap), Some(PerLoad::All(n))) = (self.max_requests, &self.num_requests) {
            if cap < *n {
                return Err(SpecError::new(
                    "--max-requests",
                    format!("{cap} is below the {n} requests each point starts with"),
                ));
            }
        }
        Ok(())
    }

    /// `--shard`, `--start-at` and `--point-interval` together: a shard
    /// runs a fixed plan that the others run too, so nothing that adapts to
    /// what it measures (a search, `--until-precise`) and no start already
    /// past.
    fn validate_shard(&self) -> Result<(), SpecError> {
        match (&self.shard, self.start_at) {
            (None, None) => {
                if self.point_interval.is_some() {
                    return Err(SpecError::new(
                        "--point-interval",
                        "spaces the points of sharded runs: give --shard and --start-at",
                    ));
                }
                return Ok(());
            }
            (Some(_), None) => {
                return Err(SpecError::new(
                    "--shard",
                    "needs --start-at UNIX_S, the time every shard starts at",
                ))
            }
            (None, Some(_)) => {
                return Err(SpecError::new(
                    "--start-at",
                    "starts the shards of one load together: give --shard I/N",
                ))
            }
            (Some(_), Some(_)) => {}
        }
        let shard = self.shard.unwrap_or(Shard { index: 0, count: 1 });
        if shard.count == 0 || shard.index >= shard.count {
            return Err(SpecError::new(
                "--shard",
                format!(
                    "{}/{}: I must be below N (0-based: 0/2 and 1/2)",
                    shard.index, shard.count
                ),
            ));
        }
        let start_at = self.start_at.unwrap_or(0.0);
        if !start_at.is_finite() || start_at <= 0.0 {
            return Err(SpecError::new(
                "--start-at",
                format!("{start_at}: give Unix seconds"),
            ));
        }
        for (flag, on) in [
            ("--find-max-rate", self.find_max_rate.is_some()),
            (
                "--find-max-concurrency",
                self.find_max_concurrency.is_some(),
            ),
            ("--until-precise", self.until_precise.is_some()),
        ] {
            if on {
                return Err(SpecError::new(
                    flag,
                    "adapts to what it measures, which the other shards cannot see: run it unsharded",
                ));
            }
        }
        if let Some(c) = self
            .concurrency
            .iter()
            .flatten()
            .find(|&&c| c < shard.count)
        {
            return Err(SpecError::new(
                "--concurrency",
                format!(
                    "{c} is below the {} shards: each shard needs a stream of its own",
                    shard.count
                ),
            ));
        }
        if self.load_levels() > 1 && self.point_interval.is_none() {
            return Err(SpecError::new(
                "--point-interval",
                "a sharded sweep of several points needs it: point p starts at --start-at + p × it",
            ));
        }
        Ok(())
    }

    /// Whether the points are chosen by a search.
    pub fn searching(&self) -> bool {
        self.find_max_rate.is_some() || self.find_max_concurrency.is_some()
    }

    /// Load levels a sweep measures: the closed-loop points, then the open
    /// ones; one (concurrency 1) when neither is given.
    pub fn load_levels(&self) -> usize {
        let closed = self.concurrency.as_ref().map_or(0, Vec::len);
        let open = self.rate.as_ref().map_or(0, Vec::len);
        if closed + open == 0 {
            1
        } else {
            closed + open
        }
    }

    /// The checks the command line makes, for a spec from anywhere. The
    /// workload's own checks (its file, its endpoint) are made where it is
    /// loaded.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.url.trim().is_empty() {
            return Err(SpecError::new("--url", "no server URL given"));
        }
        if let Some(c) = &self.concurrency {
            check_positive_list("concurrency", c)
                .map_err(|m| SpecError::new("--concurrency", m))?;
        }
        if let Some(r) = &self.rate {
            check_rates(r).map_err(|m| SpecError::new("--rate", m))?;
        }
        if let Some(r) = self.find_max_rate {
            if !(r.is_finite() && r > 0.0 && r <= text::MAX_RATE) {
                return Err(SpecError::new(
                    "--find-max-rate",
                    format!(
                        "{r}: the start rate must be positive (at most {})",
                        text::MAX_RATE
                    ),
                ));
            }
        }
        if let Some(c) = self.find_max_concurrency {
            if c == 0 || c > MAX_SEARCH_CONCURRENCY {
                return Err(SpecError::new(
                    "--find-max-concurrency",
                    format!("{c} is not in 1..={MAX_SEARCH_CONCURRENCY}"),
                ));
            }
        }
        let searches = [
            ("--find-max-rate", self.find_max_rate.is_some()),
            (
                "--find-max-concurrency",
                self.find_max_concurrency.is_some(),
            ),
        ];
        for (flag, on) in searches {
            if !on {
                continue;
            }
            if self.concurrency.is_some() || self.rate.is_some() {
                return Err(SpecError::new(
                    flag,
                    "a search chooses its loads; drop --rate and --concurrency",
                ));
            }
            if self.slo.is_none_or(|s| s.is_empty()) {
                return Err(SpecError::new(flag, "a search needs --slo"));
            }
        }
        if let Some(cap) = self.max_requests_per_probe {
            if !self.searching() {
                return Err(SpecError::new(
                    "--max-requests-per-probe",
                    "extends a search's probes: give --find-max-rate or --find-max-concurrency",
                ));
            }
            if self.duration.is_some() {
                return Err(SpecError::new(
                    "--max-requests-per-probe",
                    "counts requests: give the probes --num-requests, not --duration",
                ));
            }
            // A count per load (`2.5x`) may exceed the cap at some loads:
            // those probes are simply not extended.
            let probe = match &self.num_requests {
                None => Some(DEFAULT_NUM_REQUESTS),
                Some(PerLoad::All(n)) => Some(*n),
                Some(_) => None,
            };
            if let Some(n) = probe.filter(|&n| cap < n) {
                return Err(SpecError::new(
                    "--max-requests-per-probe",
                    format!("{cap} is below the {n} requests each probe starts with"),
                ));
            }
        }
        self.validate_precision()?;
        self.validate_shard()?;
        if self.find_max_rate.is_some() && self.find_max_concurrency.is_some() {
            return Err(SpecError::new(
                "--find-max-concurrency",
                "give one search, not --find-max-rate as well",
            ));
        }
        if let Arrival::Gamma { burstiness } = self.arrival {
            if !BURSTINESS.contains(&burstiness) {
                return Err(SpecError::new(
                    "--burstiness",
                    format!(
                        "{burstiness} is outside {} to {}",
                        BURSTINESS.start(),
                        BURSTINESS.end()
                    ),
                ));
            }
        }
        if self.max_inflight == 0 {
            return Err(SpecError::new("--max-inflight", "must be at least 1"));
        }
        if !(self.trace_speed.is_finite() && TRACE_SPEED.contains(&self.trace_speed)) {
            return Err(SpecError::new(
                "--trace-speed",
                format!("{} is outside 0.001 to 1000000", self.trace_speed),
            ));
        }
        if self.client_threads == 0 || self.client_threads > MAX_CLIENT_THREADS {
            return Err(SpecError::new(
                "--client-threads",
                format!("{} is not in 1..={MAX_CLIENT_THREADS}", self.client_threads),
            ));
        }
        if self.timeout.is_zero() {
            return Err(SpecError::new("--timeout", "is zero"));
        }
        if self.server_metrics_interval.is_zero() {
            return Err(SpecError::new("--server-metrics-interval", "is zero"));
        }
        if self.slice.is_some_and(|s| s < Duration::from_millis(10)) {
            return Err(SpecError::new(
                "--slice",
                "is under 10ms, the resolution time slices are kept at",
            ));
        }
        if self.token_ids_from.is_some() {
            if self.endpoint == Endpoint::Chat {
                return Err(SpecError::new(
                    "--token-ids-from",
                    "sends token ids on /v1/completions; a chat message is text (drop --endpoint chat)",
                ));
            }
            if self.tokenizer.is_some() {
                return Err(SpecError::new(
                    "--token-ids-from",
                    "the prompts are token ids already; drop --tokenizer",
                ));
            }
        }
        if self.gpu_telemetry && !self.telemetry {
            return Err(SpecError::new(
                "--no-telemetry",
                "cannot be used with --gpu-telemetry",
            ));
        }
        self.check_limits()
    }

    /// `--num-requests` and `--duration` lists: one value per load level.
    fn check_limits(&self) -> Result<(), SpecError> {
        let levels = self.load_levels();
        let lists = [
            (
                "--num-requests",
                self.num_requests.as_ref().and_then(PerLoad::list_len),
            ),
            (
                "--duration",
                self.duration.as_ref().and_then(PerLoad::list_len),
            ),
        ];
        for (flag, len) in lists {
            match len {
                Some(_) if self.searching() => return Err(SpecError::new(
                    flag,
                    "a list gives one value per load level; a search chooses its loads as it goes (give one value)",
                )),
                Some(n) if n != levels => return Err(SpecError::new(
                    flag,
                    format!("{n} values for {levels} load levels (--concurrency and --rate values together)"),
                )),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Several servers measured in alternating rounds (`http --url A --url B
/// --rounds R`), each round on fresh prompts shared by every target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundsSpec {
    /// The servers, in the order each round measures them; the first is
    /// the baseline.
    pub targets: Vec<String>,
    /// Rounds (`--rounds`).
    pub rounds: u32,
    /// Each run's settings: its `url` is replaced by each target in turn,
    /// its `prompt_seed` by the round's (derived from this one when given).
    pub http: HttpSpec,
}

/// Most rounds a run may ask for.
pub const MAX_ROUNDS: u32 = 1000;

impl RoundsSpec {
    /// The checks the command line makes, for a spec from anywhere.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.targets.is_empty() {
            return Err(SpecError::new("--url", "no target given"));
        }
        if self.rounds == 0 || self.rounds > MAX_ROUNDS {
            return Err(SpecError::new(
                "--rounds",
                format!("{} is not in 1..={MAX_ROUNDS}", self.rounds),
            ));
        }
        if self.http.find_max_rate.is_some() {
            return Err(SpecError::new(
                "--find-max-rate",
                "a search measures one server; with several --url or --rounds, give --rate or --concurrency",
            ));
        }
        for target in &self.targets {
            HttpSpec {
                url: target.clone(),
                ..self.http.clone()
            }
            .validate()?;
        }
        Ok(())
    }

    /// The spec of target `target` in round `round` whose prompts come from
    /// `prompt_seed`.
    pub fn run(&self, target: usize, prompt_seed: u64) -> HttpSpec {
        HttpSpec {
            url: self.targets[target].clone(),
            prompt_seed: Some(prompt_seed),
            ..self.http.clone()
        }
    }
}
