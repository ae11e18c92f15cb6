//! `inferbench http`'s spec, one server's and several servers' in rounds.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::text::{self, check_positive_list, check_rates};
use super::SpecError;

/// Which API the requests call (`--endpoint`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// POST /v1/completions with a prompt.
    #[default]
    Completions,
    /// POST /v1/chat/completions with one user message.
    Chat,
}

impl Endpoint {
    /// The API path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }
}

/// The process an open loop's gaps between requests are drawn from
/// (`--arrival`, `--burstiness`); serialized with its name under `process`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "process")]
pub enum Arrival {
    /// Exponential gaps: independent users.
    #[default]
    Poisson,
    /// Gamma gaps with shape `burstiness`: below 1 burstier than Poisson,
    /// above 1 more regular; 1 is Poisson. The mean rate is unchanged.
    Gamma {
        /// The gamma distribution's shape, 0.001 to 1000.
        burstiness: f64,
    },
    /// Equal gaps.
    Constant,
}

/// Beyond these the gamma distribution degenerates (gaps of 0, or not a
/// number) and the schedule would not be the one asked for.
pub const BURSTINESS: std::ops::RangeInclusive<f64> = 0.001..=1000.0;

/// One run's part of a load split between machines (`--shard I/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: u32,
    /// Shards in all.
    pub count: u32,
}

impl Shard {
    /// This shard's part of `total` (streams, an in-flight cap): an equal
    /// share, the first `total mod count` shards one more.
    pub fn share(self, total: u32) -> u32 {
        total / self.count + u32::from(self.index < total % self.count)
    }

    /// The global index of this shard's `j`-th request.
    pub fn global(self, j: u64) -> u64 {
        j * u64::from(self.count) + u64::from(self.index)
    }

    /// How many of the first `n` requests of the load are this shard's.
    pub fn count_of(self, n: u64) -> u64 {
        let (count, index) = (u64::from(self.count), u64::from(self.index));
        (n + count - 1 - index) / count
    }

    /// Whether the request of global index `k` is this shard's.
    pub fn owns(self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index)
    }

    /// `I/N`, as `--shard` takes it.
    pub fn label(self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// One value for every point, one per load level, or a multiple of each
/// point's load. Spec files hold it as the flag's text: `100`,
/// `5,200,1500`, `5x`; `30s`, `30s,60s`.
#[derive(Debug, Clone, PartialEq)]
pub enum PerLoad<T> {
    /// The same for every point.
    All(T),
    /// One per load level, in sweep order.
    Each(Vec<T>),
    /// This many per request in flight (closed loop) or per request per
    /// second (open loop): `5x`.
    TimesLoad(f64),
}

impl<T: Clone> PerLoad<T> {
    /// The value of the point at `position` of the sweep whose load is
    /// `load` (requests in flight, or requests per second), `times` turning
    /// a multiple of the load into a value.
    pub fn at(&self, position: usize, load: f64, times: impl Fn(f64) -> T) -> Option<T> {
        match self {
            PerLoad::All(v) => Some(v.clone()),
            PerLoad::Each(list) => list.get(position).cloned(),
            PerLoad::TimesLoad(k) => Some(times(k * load)),
        }
    }

    /// How many values a list holds (`None` unless one per load level).
    pub fn list_len(&self) -> Option<usize> {
        match self {
            PerLoad::Each(list) => Some(list.len()),
            _ => None,
        }
    }
}

/// A value a [`PerLoad`] can hold, with its text form.
pub trait PerLoadValue: Sized + Clone {
    /// Reads one value.
    fn parse(s: &str) -> Result<Self, String>;
    /// Writes one value as `parse` reads it.
    fn format(&self) -> String;
    /// Whether `5x` (a multiple of the load) is accepted.
    const TIMES_LOAD: bool;
}

impl PerLoadValue for u64 {
    fn parse(item: &str) -> Result<u64, String> {
        item.parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("'{item}' is not a positive request count"))
    }
    fn format(&self) -> String {
        self.to_string()
    }
    const TIMES_LOAD: bool = true;
}

impl PerLoadValue for Duration {
    fn parse(item: &str) -> Result<Duration, String> {
        text::duration(item)
    }
    fn format(&self) -> String {
        text::format_duration(*self)
    }
    const TIMES_LOAD: bool = false;
}

impl<T: PerLoadValue> std::str::FromStr for PerLoad<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<PerLoad<T>, String> {
        let s = s.trim();
        if T::TIMES_LOAD {
            if let Some(k) = s.strip_suffix('x') {
                let k: f64 = k.trim().parse().map_err(|_| {
                    format!("'{s}': a multiple of the load is a number and x, e.g. 5x")
                })?;
                if !(k.is_finite() && k > 0.0 && k <= 1e6) {
                    return Err(format!(
                        "'{s}': the multiple must be above 0 and at most 1e6"
                    ));
                }
                return Ok(PerLoad::TimesLoad(k));
            }
        }
        let list = s
            .split(',')
            .map(|item| T::parse(item.trim()))
            .collect::<Result<Vec<T>, String>>()?;
        Ok(match <[T; 1]>::try_from(list) {
            Ok([one]) => PerLoad::All(one),
            Err(list) => PerLoad::Each(list),
        })
    }
}

impl<T: PerLoadValue> std::fmt::Display for PerLoad<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PerLoad::All(v) => f.write_str(&v.format()),
            PerLoad::Each(list) => {
                let items: Vec<String> = list.iter().map(PerLoadValue::format).collect();
                f.write_str(&items.join(","))
            }
            PerLoad::TimesLoad(k) => write!(f, "{k}x"),
        }
    }
}

impl<T: PerLoadValue> Serialize for PerLoad<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, T: PerLoadValue> Deserialize<'de> for PerLoad<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PerLoad<T>, D::Error> {
        // A bare count (`num_requests = 100`) is as good as its text.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Count(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl<T> schemars::JsonSchema for PerLoad<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PerLoad".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "One value for every point (`100`, `30s`), one per load level (`5,200,1500`, `30s,60s`), or a multiple of each point's load (`5x`, request counts only).",
            "type": ["string", "integer"]
        })
    }
}

/// A metric `--until-precise` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreciseMetric {
    /// TTFT as the point is judged: from the intended send time under an
    /// open loop.
    Ttft,
    /// Inter-token latency.
    Itl,
    /// Time per output token.
    Tpot,
    /// End-to-end latency as judged (from the intended send time under an
    /// open loop).
    E2e,
}

/// A statistic `--until-precise` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreciseStatistic {
    /// The median.
    P50,
    /// The 90th percentile.
    P90,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
}

impl PreciseStatistic {
    /// The quantile, in (0, 1).
    pub fn quantile(self) -> f64 {
        match self {
            PreciseStatistic::P50 => 0.50,
            PreciseStatistic::P90 => 0.90,
            PreciseStatistic::P95 => 0.95,
            PreciseStatistic::P99 => 0.99,
        }
    }
}

/// One `--until-precise` target: the statistic's 95% bootstrap interval
/// must be within `within_percent` of it, each side (its half-width).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrecisionTarget {
    /// The metric.
    pub metric: PreciseMetric,
    /// Its statistic.
    pub statistic: PreciseStatistic,
    /// The interval's half-width it must reach, percent of the statistic.
    pub within_percent: f64,
}

impl PrecisionTarget {
    /// Its name as the flag writes it: "ttft.p50".
    pub fn name(&self) -> String {
        let metric = match self.metric {
            PreciseMetric::Ttft => "ttft",
            PreciseMetric::Itl => "itl",
            PreciseMetric::Tpot => "tpot",
            PreciseMetric::E2e => "e2e",
        };
        let statistic = match self.statistic {
            PreciseStatistic::P50 => "p50",
            PreciseStatistic::P90 => "p90",
            PreciseStatistic::P95 => "p95",
            PreciseStatistic::P99 => "p99",
        };
        format!("{metric}.{statistic}")
    }

    /// A percentage a run can reach: above 0, under 100.
    pub fn check(&self) -> Result<(), String> {
        if self.within_percent.is_finite()
            && self.within_percent > 0.0
            && self.within_percent < 100.0
        {
            Ok(())
        } else {
            Err(format!(
                "{}={}%: the percentage must be above 0 and under 100",
                self.name(),
                self.within_percent
            ))
        }
    }
}

/// The checks `--until-precise` makes in either mode: its caps (`caps`:
/// each flag and whether it was given) only with it, at least one target,
/// each a percentage a run can reach, a time cap above zero.
pub(crate) fn check_precision(
    targets: Option<&[PrecisionTarget]>,
    caps: [(&str, bool); 2],
    max_duration: Option<Duration>,
) -> Result<(), SpecError> {
    let Some(targets) = targets else {
        return match caps.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(SpecError::new(*flag, "caps --until-precise: give it too")),
            None => Ok(()),
        };
    };
    if targets.is_empty() {
        return Err(SpecError::new(
            "--until-precise",
            "no statistic given; e.g. ttft.p50=2%",
        ));
    }
    for t in targets {
        t.check()
            .map_err(|m| SpecError::new("--until-precise", m))?;
    }
    if max_duration.is_some_and(|d| d.is_zero()) {
        return Err(SpecError::new("--max-duration", "must be longer than 0s"));
    }
    Ok(())
}

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
