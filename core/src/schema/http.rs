//! The HTTP mode's points and settings.

use serde::{Deserialize, Serialize};

use super::ResultFile;
use crate::stats::Stats;

/// The server an HTTP run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerInfo {
    /// The server's base URL, as given to `--url`.
    pub url: String,
    /// The API path called: "/v1/completions" or "/v1/chat/completions".
    pub endpoint: String,
    /// The model name requested: `--model`, else the first id the server
    /// listed at `/v1/models`.
    pub model: String,
    /// The server's answer to `GET /v1/models`.
    pub models: serde_json::Value,
    /// The first `system_fingerprint` the server streamed, if any.
    pub system_fingerprint: Option<String>,
}

/// The lengths every request of a workload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FixedLengths {
    /// Prompt length every request asks for, in tokens.
    pub prompt_tokens: u32,
    /// Output length every request asks for, in tokens.
    pub output_tokens: u32,
}

/// How an HTTP point's requests were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// A fixed number of requests always in flight.
    Closed,
    /// Requests sent on an arrival schedule, however the server keeps up.
    Open,
    /// Requests sent on a trace's own send times.
    Trace,
}

impl LoadKind {
    /// As the result file spells it.
    pub fn name(self) -> &'static str {
        match self {
            LoadKind::Closed => "closed",
            LoadKind::Open => "open",
            LoadKind::Trace => "trace",
        }
    }
}

/// The gaps of an open loop's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalKind {
    /// Exponential gaps: independent users.
    Poisson,
    /// Gamma gaps, of shape `burstiness`.
    Gamma,
    /// Equal gaps of 1 / `rate`.
    Constant,
}

/// The load of one HTTP point (built from the runner's load, which it
/// describes: `inferbench_harness::http::load::Load`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadDescription {
    /// Closed loop, open loop or trace replay: which of the fields below
    /// are present.
    pub kind: LoadKind,
    /// Requests kept in flight (closed loop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Requests per second asked for (open loop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Open loop only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival: Option<ArrivalKind>,
    /// Gamma arrivals only: the gamma shape (below 1 burstier than Poisson,
    /// above 1 more regular, 1 Poisson itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burstiness: Option<f64>,
    /// Cap on requests in flight (open loop); a request due while the cap is
    /// reached waits, and counts as late.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_inflight: Option<u32>,
    /// A trace replayed on its own send times ("trace"), this many times as
    /// fast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_speed: Option<f64>,
}

impl LoadDescription {
    /// The one number that sets this point's load.
    pub fn level(&self) -> Option<LoadLevel> {
        match (self.concurrency, self.rate, self.trace_speed) {
            (Some(c), _, _) => Some(LoadLevel::Concurrency(c)),
            (_, Some(r), _) => Some(LoadLevel::Rate(r)),
            (_, _, Some(s)) => Some(LoadLevel::TraceSpeed(s)),
            _ => None,
        }
    }

    /// See [`LoadLevel::label`]; `-` for a file that names no level.
    pub fn label(&self) -> String {
        self.level().map_or_else(|| "-".into(), LoadLevel::label)
    }
}

/// The one number that sets a point's load, in either mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadLevel {
    /// Sequences decoded together in-process.
    Batch(u32),
    /// Requests kept in flight by a closed loop.
    Concurrency(u32),
    /// Requests per second of an open loop.
    Rate(f64),
    /// A replayed trace, this many times as fast.
    TraceSpeed(f64),
}

impl LoadLevel {
    /// How every table, figure and message names a point's load: `B=8`,
    /// `c=8`, `2 req/s`, `trace x2`.
    pub fn label(self) -> String {
        match self {
            LoadLevel::Batch(b) => format!("B={b}"),
            LoadLevel::Concurrency(c) => format!("c={c}"),
            LoadLevel::Rate(r) => format!("{r} req/s"),
            LoadLevel::TraceSpeed(s) => format!("trace x{s}"),
        }
    }
}

/// A point's measured requests by outcome (warm-ups excluded).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestCounts {
    /// Requests that finished: `succeeded` + `failed` (the cancelled are
    /// not among them).
    pub total: u64,
    /// Requests streamed to their end with at least one content chunk.
    pub succeeded: u64,
    /// Requests that ended in an error, by class in `failed_by_class`.
    pub failed: u64,
    /// In flight when the run was interrupted: neither succeeded nor failed.
    pub cancelled: u64,
    /// Requests sent a second time because a kept-alive connection closed
    /// before any response (counted once in `total`).
    pub retried: u64,
    /// Failed requests per failure class, e.g. "http_5xx",
    /// "timeout_first_byte", "zero_tokens".
    pub failed_by_class: std::collections::BTreeMap<String, u64>,
}

/// The output token count used against the next-best count (usage against
/// the tokenizer or the content chunks, tokenizer against chunks), over the
/// requests that had both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenDiscrepancy {
    /// e.g. "usage_vs_chunks".
    pub against: String,
    /// Successful requests with both counts.
    pub requests_compared: u64,
    /// Those whose two counts differ.
    pub requests_differing: u64,
    /// Σ |count used − next-best count| over those requests, in tokens.
    pub total_abs_difference: u64,
}

/// The prompt tokens a server says it served from its prefix cache, over the
/// successful requests of a point that said.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PromptCacheUse {
    /// Successful requests whose response said how many prompt tokens came
    /// from the cache.
    pub requests_reporting: u64,
    /// Requests with cached tokens beyond what the workload shares on
    /// purpose (the BOS) and what random prompts share by chance (fewer
    /// than 4 tokens).
    pub requests_hit: u64,
    /// Every cached prompt token the reporting requests named, the BOS and
    /// any share the workload intends included.
    pub cached_tokens: u64,
    /// Cached tokens beyond the BOS, of the requests hit.
    pub unintended_cached_tokens: u64,
    /// Prompt tokens of the requests reporting (the server's count).
    pub prompt_tokens: u64,
    /// unintended_cached_tokens / prompt_tokens: the share of prefill the
    /// server skipped because the workload repeated itself.
    pub cached_fraction: f64,
    /// Where the counts came from, e.g. "usage.prompt_tokens_details.cached_tokens".
    pub source: String,
}

/// The server's count of each prompt (`usage.prompt_tokens`) against the
/// tokens the workload sent: servers differ in whether they add a BOS.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PromptTokenCheck {
    /// Successful requests whose usage gave a prompt token count.
    pub requests_compared: u64,
    /// Those whose count differed from the tokens sent.
    pub requests_differing: u64,
    /// Mean of server count − tokens sent (1.0: it added one token, a BOS,
    /// to every prompt).
    pub mean_server_minus_sent: f64,
}

/// What measuring cost the client itself: when it nears a core, the client,
/// not the server, may be the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientCost {
    /// CPU time the client process used during the point, all threads, in
    /// seconds (null when the OS would not say).
    pub cpu_s: Option<f64>,
    /// Of one core, over the point's wall time.
    pub cpu_percent: Option<f64>,
    /// `cpu_s` in ms per output token of the successful requests (null
    /// without CPU time or output tokens).
    pub cpu_ms_per_output_token: Option<f64>,
    /// Connections opened before the point (`GET /v1/models` on each), so
    /// that no measured request paid for a TCP or TLS handshake; absent
    /// with `--no-preconnect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconnected: Option<u32>,
    /// Connections the client began to open (TCP, and TLS for https) during
    /// the point's measured requests: 0 when every one found an idle
    /// connection; each above 0 a request that found none and began one,
    /// taking whichever came first, its own or one that came free (absent in
    /// older files and merged ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_opened: Option<u64>,
}

/// One HTTP measurement point. Definitions: [`crate::metrics`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HttpPoint {
    /// The load the point's requests were sent under.
    pub load: LoadDescription,
    /// False when the run was interrupted during this point.
    pub complete: bool,
    /// The point's measured requests by outcome.
    pub requests: RequestCounts,
    /// Requests that came due while `max_inflight` were in flight and
    /// waited for a free slot.
    pub late_requests: u64,
    /// Open loop and trace: send time − intended send time, ms, one value
    /// per request (null for a closed loop).
    pub schedule_lag_ms: Option<Stats>,
    /// Time to first token from the send, ms, one value per successful
    /// request.
    pub ttft_ms: Option<Stats>,
    /// Open loop: TTFT from the intended send time (coordinated omission corrected).
    pub ttft_from_scheduled_ms: Option<Stats>,
    /// Gaps between consecutive content chunks, ms, pooled over the
    /// successful requests.
    pub itl_ms: Option<Stats>,
    /// (E2E − TTFT) / (output tokens − 1), ms, one value per successful
    /// request of at least two tokens.
    pub tpot_ms: Option<Stats>,
    /// Send to the last content chunk, ms, one value per successful request.
    pub e2e_ms: Option<Stats>,
    /// Open loop: the intended send time to the last content chunk, ms
    /// (coordinated omission corrected, as `ttft_from_scheduled_ms`; TPOT
    /// needs no such twin, the schedule's offset cancels in E2E − TTFT).
    /// Absent in closed loops and older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_from_scheduled_ms: Option<Stats>,
    /// Prompt tokens per successful request: the server's
    /// `usage.prompt_tokens`, else the length the workload asked for.
    pub input_tokens: Option<Stats>,
    /// Output tokens per successful request, from the best count it had
    /// (see `output_tokens_source`).
    pub output_tokens: Option<Stats>,
    /// How many requests counted their output tokens from each source.
    pub output_tokens_source: std::collections::BTreeMap<String, u64>,
    /// The count used against the next-best one (null when no request had
    /// two counts).
    pub token_count_discrepancy: Option<TokenDiscrepancy>,
    /// Chunks with empty text (vLLM sends them for partial UTF-8 tokens).
    pub empty_chunks: u64,
    /// First send to last completion of a successful request.
    pub duration_s: f64,
    /// Wall-clock time of the first send, Unix seconds: with `duration_s`
    /// the point's window, so that `merge` knows whether the windows of
    /// several files overlapped (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_send_unix_s: Option<f64>,
    /// Output tokens of the successful requests over `duration_s`, in
    /// tokens/s (0 when the window is empty).
    pub output_throughput_tok_s: f64,
    /// Successful requests over `duration_s`, per second.
    pub request_throughput_req_s: f64,
    /// Prompt tokens of the successful requests (as `input_tokens` counts
    /// them) over `duration_s`, in tokens/s.
    pub input_throughput_tok_s: f64,
    /// Each successful request's output tokens over its E2E, in tokens/s.
    pub per_request_output_tok_s: Option<Stats>,
    /// Requests meeting every SLO, per second (absent without `--slo`).
    pub goodput_req_s: Option<f64>,
    /// Successful requests that met every `--slo` objective (null without
    /// `--slo`).
    pub slo_met: Option<u64>,
    /// llama.cpp's server: its own prompt time and time per generated token.
    pub server_prompt_ms: Option<Stats>,
    /// llama.cpp's server: its `timings.predicted_per_token_ms`, ms, one
    /// value per successful request (null from servers that send no
    /// timings).
    pub server_predicted_per_token_ms: Option<Stats>,
    /// Prompt tokens served from the server's cache (absent: the server
    /// does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache: Option<PromptCacheUse>,
    /// The server's prompt counts against the tokens sent (absent when no
    /// response gave `usage.prompt_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_check: Option<PromptTokenCheck>,
    /// What the point cost the client process itself.
    pub client: ClientCost,
    /// Host, client-process and (with `--gpu-telemetry`) GPU readings while
    /// the point's measured requests ran.
    pub telemetry: Option<super::telemetry::TelemetrySummary>,
    /// The request count and time this point was given (absent in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_requests_planned: Option<u64>,
    /// The time limit this point was given, in seconds (absent without one,
    /// and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_planned_s: Option<f64>,
    /// The point's place among the run's prompt streams: its prompts, and
    /// its warm-ups', came from stream `prompt_stream` of the prompt seed
    /// (absent in older files). `--resume` starts past the highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_stream: Option<u32>,
    /// Multi-turn workloads: TTFT and prompt tokens (served from cache,
    /// too) turn by turn, and the conversations finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<Vec<PartStats>>,
    /// Multi-turn workloads: the conversations completed and cut short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<ConversationCounts>,
    /// Shared-prefix workloads: the first request of each group ("first")
    /// against the group's later ones ("later").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_groups: Option<Vec<PartStats>>,
    /// The server's own metrics over the point (`--server-metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<super::server_metrics::ServerMetricsSummary>,
    /// Whether the point can be trusted, and why not (absent in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<super::validity::Validity>,
    /// The point against `--slo` by MLPerf LoadGen's early-stopping rule
    /// (absent without `--slo`, and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_verdict: Option<super::validity::SloVerdict>,
    /// `--until-precise`: the statistics' intervals as reached, and why the
    /// point stopped (absent without it, and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<super::validity::Precision>,
    /// What the point's output tokens cost in energy (absent in older
    /// files, and where neither a GPU nor RAPL reported energy: see the
    /// result's notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<super::telemetry::PointEnergy>,
    /// The longest span with the load at 90% of its target or more, and the
    /// throughputs over it (absent in older and merged files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<super::timeline::SteadyState>,
    /// The point in slices of time, and its first slice against its last
    /// (absent in older and merged files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<super::timeline::TimeSlices>,
    /// `--shard`: when the point started against its slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<super::shard::PointStart>,
}

/// Failures above this share of a point's requests make it not valid.
pub const FAILURE_SHARE_LIMIT: f64 = 0.01;

/// Client CPU, in percent of one core, above which the load generator may
/// have been the limit.
pub const CLIENT_CPU_LIMIT_PERCENT: f64 = 80.0;

/// Schedule lag p99, as a share of the mean inter-arrival time, above which
/// the open loop's generator fell behind its schedule.
pub const SCHEDULE_LAG_LIMIT: f64 = 0.05;

impl super::validity::JudgedPoint for HttpPoint {
    fn point_label(&self) -> String {
        self.load.label()
    }

    fn judged(&self) -> super::validity::Validity {
        self.validity.clone().unwrap_or_else(|| self.assess())
    }
}

impl HttpPoint {
    /// The point's validity: its percentiles' counts (one observation per
    /// successful request), failures, the client's saturation, cached
    /// prompt tokens no workload meant, and a point cut short.
    pub fn assess(&self) -> super::validity::Validity {
        let mut reasons = Vec::new();
        if !self.complete {
            reasons.push("cut short".to_string());
        }
        let r = &self.requests;
        if r.total > 0 && r.failed as f64 > FAILURE_SHARE_LIMIT * r.total as f64 {
            reasons.push(format!(
                "{} of {} requests failed (over {:.0}%)",
                r.failed,
                r.total,
                FAILURE_SHARE_LIMIT * 100.0
            ));
        }
        if let Some(cpu) = self
            .client
            .cpu_percent
            .filter(|&c| c > CLIENT_CPU_LIMIT_PERCENT)
        {
            reasons.push(format!(
                "the client used {cpu:.0}% of a core: the load generator, not the server, may have been the limit"
            ));
        }
        if let (Some(rate), Some(lag)) =
            (self.load.rate.filter(|&r| r > 0.0), &self.schedule_lag_ms)
        {
            let gap_ms = 1e3 / rate;
            if lag.p99 > SCHEDULE_LAG_LIMIT * gap_ms {
                reasons.push(format!(
                    "schedule lag p99 {:.2} ms is over {:.0}% of the mean gap between arrivals ({gap_ms:.1} ms): the load generator fell behind",
                    lag.p99,
                    SCHEDULE_LAG_LIMIT * 100.0
                ));
            }
        }
        if let Some(cache) = self
            .prompt_cache
            .as_ref()
            .filter(|c| c.unintended_cached_tokens > 0)
        {
            reasons.push(format!(
                "{} prompt tokens ({:.1}%) came from the server's cache where the workload meant none",
                cache.unintended_cached_tokens,
                cache.cached_fraction * 100.0
            ));
        }
        if let Some(slices) = &self.slices {
            reasons.extend(slices.reasons());
        }
        let (ttft_key, ttft) = self.ttft_judged();
        let (e2e_key, e2e) = self.e2e_judged();
        super::validity::Validity::new(
            &[
                (ttft_key, ttft),
                ("itl_ms", self.itl_ms.as_ref()),
                ("tpot_ms", self.tpot_ms.as_ref()),
                (e2e_key, e2e),
            ],
            r.succeeded,
            "request",
            &["p99"],
            reasons,
        )
    }

    /// The TTFT a point is judged by: from each request's intended send time
    /// under an open loop (coordinated omission corrected: a request the
    /// client sent late still pays for its wait), from the send otherwise.
    pub fn ttft_judged_ms(&self) -> Option<&Stats> {
        self.ttft_judged().1
    }

    /// [`HttpPoint::ttft_judged_ms`] with its key.
    pub fn ttft_judged(&self) -> (&'static str, Option<&Stats>) {
        match &self.ttft_from_scheduled_ms {
            Some(ttft) => ("ttft_from_scheduled_ms", Some(ttft)),
            None => ("ttft_ms", self.ttft_ms.as_ref()),
        }
    }

    /// The E2E a point is judged by, with its key: from the intended send
    /// time under an open loop, as TTFT.
    pub fn e2e_judged(&self) -> (&'static str, Option<&Stats>) {
        match &self.e2e_from_scheduled_ms {
            Some(e2e) => ("e2e_from_scheduled_ms", Some(e2e)),
            None => ("e2e_ms", self.e2e_ms.as_ref()),
        }
    }

    /// The point against `slo` by MLPerf LoadGen's early-stopping rule
    /// (`None` without an objective): TTFT and E2E as judged
    /// ([`HttpPoint::ttft_judged_ms`]), TPOT as measured, every failed
    /// request over every limit.
    pub fn judge_slo(&self, slo: &Slo) -> Option<super::validity::SloVerdict> {
        let (ttft_key, ttft) = self.ttft_judged();
        let (e2e_key, e2e) = self.e2e_judged();
        let objectives: Vec<(&str, f64, Option<&Stats>)> = [
            (ttft_key, slo.ttft_ms, ttft),
            ("tpot_ms", slo.tpot_ms, self.tpot_ms.as_ref()),
            (e2e_key, slo.e2e_ms, e2e),
        ]
        .into_iter()
        .filter_map(|(key, limit, stats)| limit.map(|l| (key, l, stats)))
        .collect();
        (!objectives.is_empty()).then(|| {
            let r = &self.requests;
            super::validity::SloVerdict::judge(r.succeeded + r.failed, r.failed, &objectives)
        })
    }
}

/// One part of a point: a turn of its conversations, or a place in its
/// prefix groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PartStats {
    /// The turn (from "1"), or "first" / "later".
    pub part: String,
    /// Requests of this part that finished, succeeded or failed.
    pub requests: u64,
    /// Those that succeeded: the figures below are theirs.
    pub succeeded: u64,
    /// Time to first token from the send, ms, one value per successful
    /// request.
    pub ttft_ms: Option<Stats>,
    /// Prompt tokens per successful request: the server's count, else the
    /// workload's.
    pub input_tokens: Option<Stats>,
    /// Prompt tokens the server says it served from its cache (absent: it
    /// does not say).
    pub cached_prompt_tokens: Option<Stats>,
}

/// The conversations of a multi-turn point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConversationCounts {
    /// Every turn answered.
    pub completed: u64,
    /// Ended by a failed turn.
    pub cut_short: u64,
    /// Completed conversations per second of the point.
    pub per_s: f64,
}

/// What `http` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HttpSettings {
    /// The server's base URL, as given to `--url`.
    pub url: String,
    /// The API path called: "/v1/completions" or "/v1/chat/completions".
    pub endpoint: String,
    /// The model name requested: `--model`, else the first id the server
    /// listed at `/v1/models`.
    pub model: String,
    /// The environment variable the API key was read from, and whether it
    /// was set. The key itself is never saved.
    pub api_key_env: String,
    /// Whether that variable held a non-empty key, sent as a bearer token.
    pub api_key_present: bool,
    /// The `--workload` spec, e.g. "fixed:128:64", "short" or "sharegpt:PATH".
    pub workload: String,
    /// The workload's lengths when every request asks for the same (`short`
    /// and `fixed:10:100` alike); absent for other workloads and in older
    /// files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_lengths: Option<FixedLengths>,
    /// The request count of every point, when one count was given for all.
    pub num_requests: Option<u64>,
    /// The time limit of every point, in seconds, when one `--duration` was
    /// given for all.
    pub duration_s: Option<f64>,
    /// `--num-requests` with one count per load level (`5,200,1500`) or a
    /// multiple of the load (`5x`); each point's own is in
    /// `num_requests_planned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_requests_per_load: Option<String>,
    /// `--duration` with one per load level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_per_load: Option<String>,
    /// Warm-up requests before each point, never counted.
    pub warmup: u64,
    /// Seed of the request lengths and arrival times (`--seed`).
    pub seed: u64,
    /// Mixed into every prompt with the seed, point and index; drawn anew
    /// for each run unless `--prompt-seed` is given, so that a run repeated
    /// against a server still up is not served from its cache (absent in
    /// files from before: their prompts came from `seed` alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_seed: Option<u64>,
    /// Prompts went as token-id arrays drawn from this GGUF's vocabulary
    /// (`--token-ids-from`), as `inproc` draws them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids_from: Option<String>,
    /// The server was asked to ignore end-of-sequence, so that every
    /// request generates its full output length (`--ignore-eos`).
    pub ignore_eos: bool,
    /// Longest wait for the response headers, and for each chunk after
    /// them, in seconds (`--timeout`).
    pub timeout_s: f64,
    /// The `--slo` objectives behind `goodput_req_s` and `slo_met` (null
    /// without `--slo`).
    pub slo: Option<Slo>,
    /// Threads of the client's runtime (`--client-threads`).
    pub client_threads: u32,
    /// The client's threads spun polling their sockets (`--busy-poll`): its
    /// CPU use then reads about 100% per thread by design.
    #[serde(default)]
    pub busy_poll: bool,
    /// Each point's connections were opened before it (see
    /// [`ClientCost::preconnected`]).
    #[serde(default)]
    pub preconnect: bool,
    /// Extra certificate authorities trusted for https (`--ca-cert`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certs: Vec<String>,
    /// Server certificates were not checked (`--insecure`).
    #[serde(default)]
    pub insecure_tls: bool,
    /// The `tokenizer.json` used for prompt lengths and output counts.
    pub tokenizer: Option<String>,
    /// The Prometheus endpoint sampled during every point
    /// (`--server-metrics`); absent when not asked for, or when it did not
    /// answer before the run (the run's notes say why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<String>,
    /// The spec this run ran (absent in files written before specs):
    /// `inferbench rerun` runs it again, `inferbench spec` prints it as TOML.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::spec::lenient"
    )]
    pub spec: Option<crate::spec::Spec>,
}

/// A result file of `inferbench http`.
pub type HttpResult = ResultFile<HttpSettings, HttpPoint>;
/// Latency objectives, as the spec gives them and results record them.
pub use crate::spec::Slo;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::timeline::{DriftCheck, TimeSlices};

    /// A served point from a committed example (H100, open loop at 2 req/s).
    fn example() -> HttpPoint {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/examples/h100/serve-open-loop.json"
        );
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("JSON");
        serde_json::from_value(file["points"][0].clone()).expect("a point")
    }

    fn reasons(p: &HttpPoint) -> Vec<String> {
        p.assess().reasons
    }

    /// Each reason a point can be not valid for, triggered once on its own.
    #[test]
    fn every_verdict_reason_is_given_once_with_its_cause() {
        let base = example();
        let only = |p: &HttpPoint, needle: &str| {
            let r = reasons(p);
            let hits: Vec<&String> = r.iter().filter(|r| r.contains(needle)).collect();
            assert_eq!(hits.len(), 1, "{needle}: {r:?}");
            // The example's 64 requests lack a p99: that reason is always
            // first; the one triggered is the only other.
            assert_eq!(r.len(), 2, "{r:?}");
            assert!(r[0].starts_with("p99 needs 662 requests from 64"), "{r:?}");
        };
        assert_eq!(reasons(&base).len(), 1, "{:?}", reasons(&base));

        let mut p = base.clone();
        p.complete = false;
        only(&p, "cut short");

        let mut p = base.clone();
        p.requests.failed = 2;
        p.requests.total += 2;
        only(&p, "2 of 66 requests failed (over 1%)");

        let mut p = base.clone();
        p.client.cpu_percent = Some(95.0);
        only(&p, "the client used 95% of a core");

        let mut p = base.clone();
        if let Some(lag) = p.schedule_lag_ms.as_mut() {
            // 5% of the 500 ms between arrivals at 2 req/s is 25 ms.
            lag.p99 = 30.0;
        }
        only(&p, "schedule lag p99 30.00 ms is over 5%");

        let mut p = base.clone();
        p.prompt_cache = Some(PromptCacheUse {
            requests_reporting: 64,
            requests_hit: 3,
            cached_tokens: 96,
            unintended_cached_tokens: 96,
            prompt_tokens: 6400,
            cached_fraction: 0.015,
            source: "usage".into(),
        });
        only(&p, "96 prompt tokens (1.5%) came from the server's cache");

        let drift = DriftCheck {
            metric: "ttft_ms".into(),
            first_span_s: 4.0,
            last_span_s: 4.0,
            first_requests: 12,
            last_requests: 12,
            first_p50: 100.0,
            last_p50: 150.0,
            change: 0.5,
            p_value: 1e-4,
            drifted: true,
        };
        let slices = TimeSlices {
            slice_s: 4.0,
            chosen_by: "flag".into(),
            ttft_metric: "ttft_ms".into(),
            slices: Vec::new(),
            drift: vec![drift],
            drift_note: None,
        };
        let mut p = base.clone();
        p.slices = Some(slices.clone());
        only(
            &p,
            "ttft_ms drifted: its p50 went from 100.00 ms in the first 4 s",
        );

        let mut p = base.clone();
        p.slices = Some(TimeSlices {
            drift: Vec::new(),
            slice_s: 60.0,
            drift_note: Some("1 slice of 60 s".into()),
            ..slices
        });
        only(&p, "too short for its --slice 60s");

        // The percentiles' count, alone: a point with enough requests and
        // nothing else wrong is valid.
        let mut p = base;
        let scale = |s: &mut Option<crate::stats::Stats>| {
            if let Some(s) = s {
                s.count = 700;
                s.histogram = None;
            }
        };
        p.requests.succeeded = 700;
        p.requests.total = 700;
        for s in [
            &mut p.ttft_ms,
            &mut p.ttft_from_scheduled_ms,
            &mut p.itl_ms,
            &mut p.tpot_ms,
            &mut p.e2e_ms,
            &mut p.e2e_from_scheduled_ms,
        ] {
            scale(s);
        }
        assert_eq!(p.assess().line(), "valid");
    }
}
