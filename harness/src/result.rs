//! The result file: its serde types (separate from the accumulators that
//! fill them) and the writer that keeps it valid on disk at every moment.
//! `schema/result.schema.json` describes the same shape; tests validate
//! every file the tool writes against it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stats::{HistogramInfo, Stats};

/// Bumped on any change that could break a reader of older files.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Inproc,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still being written: points finished so far are in the file.
    Running,
    Complete,
    /// Stopped by Ctrl-C (or SIGTERM).
    Interrupted,
    /// Stopped by an error, named in `error`.
    Failed,
}

/// A whole result file. `S` is the mode's settings, `P` its point type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFile<S, P> {
    pub schema_version: u32,
    pub mode: Mode,
    /// True unless every requested point was measured completely.
    pub partial: bool,
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    pub provenance: Provenance,
    pub settings: S,
    pub histogram: HistogramInfo,
    pub points: Vec<P>,
    /// `http --find-max-rate`: the answer of the search whose probes are the points.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_rate: Option<MaxRateSearch>,
    /// `http --find-max-concurrency`: the answer of that search.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_concurrency: Option<MaxConcurrencySearch>,
    /// What a reader must know to trust the numbers, also printed as
    /// warnings: cached prompt tokens in a workload meant to be cache-free,
    /// a server that counts prompts differently, ...
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

/// The outcome of a search for the highest rate meeting the SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxRateSearch {
    /// Highest probed rate that met the criterion (none did: null).
    pub max_rate: Option<f64>,
    /// Lowest probed rate that did not (none failed: null, the server was
    /// never pushed past the SLO within the probes).
    pub lowest_failing_rate: Option<f64>,
    pub probes: u32,
    pub criterion: String,
}

/// The outcome of a search for the highest concurrency meeting the SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxConcurrencySearch {
    /// Highest probed concurrency that met the criterion (none did: null).
    pub max_concurrency: Option<u32>,
    /// Lowest probed concurrency that did not (none failed: null).
    pub lowest_failing_concurrency: Option<u32>,
    pub probes: u32,
    pub criterion: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub tool: ToolInfo,
    pub engine: EngineInfo,
    pub host: HostInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    /// The server measured (HTTP mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    /// When the run started (RFC 3339, UTC).
    pub timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    /// Cargo profile the binary was built with.
    pub build_profile: String,
    pub target: String,
    /// `-C target-cpu` the binary was built for, if any.
    pub target_cpu: Option<String>,
    /// Cargo features of the binary.
    pub features: Vec<String>,
    pub rustc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// e.g. "llama.cpp".
    pub name: String,
    /// e.g. ggml's version and commit.
    pub version: String,
    /// How the engine is reached, e.g. "llama-cpp-2 0.1.160 (llama-cpp-sys-2 0.1.161)".
    pub bindings: String,
    /// Compute backend doing the work, e.g. "CPU" or "CUDA".
    pub backend: String,
    /// Features the engine reports for the CPU (llama_print_system_info).
    pub cpu_features: Option<String>,
    pub devices: Vec<String>,
    pub threads: Option<u32>,
    pub threads_batch: Option<u32>,
    pub gpu_layers_requested: Option<i32>,
    pub gpu_layers_offloaded: Option<u32>,
    /// Which clock timed the steps: "host" or "cuda_events+host".
    pub timing_source: String,
    /// How the engine itself was compiled (in-process llama.cpp: CMake build
    /// type and flags), where known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub build: Option<EngineBuild>,
    /// Anything the timing source wants the reader to know (e.g. why CUDA
    /// events were not used).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

/// How llama.cpp was compiled, read from its CMake cache at build time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineBuild {
    /// e.g. "Release" (-O3) or "RelWithDebInfo" (-O2 -g).
    pub cmake_build_type: String,
    /// The C and C++ flags of that build type.
    pub c_flags: String,
    pub cxx_flags: String,
    /// GGML_NATIVE: compiled for the build machine's CPU features.
    pub ggml_native: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub cpu_model: String,
    pub logical_cores: u32,
    pub physical_cores: Option<u32>,
    pub memory_bytes: u64,
    pub os: String,
    pub kernel: Option<String>,
    /// Memory bandwidth measured before an in-process CPU run, the ceiling
    /// of its decode steps' roofline (absent elsewhere and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bandwidth: Option<crate::roofline::BandwidthProbe>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: String,
    pub sha256: Option<String>,
    pub file_size_bytes: u64,
    pub name: Option<String>,
    pub architecture: String,
    pub parameters: u64,
    pub layers: Option<u64>,
    pub context_length: Option<u64>,
    pub quantization: String,
    pub tensor_types: std::collections::BTreeMap<String, u64>,
}

/// Token totals over the measured runs of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenTotals {
    pub prompt: u64,
    pub generated: u64,
}

/// The engine's own counters beside the harness's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterComparison {
    pub prefill_ms: Option<Stats>,
    /// Per-step mean the engine reports, one value per step.
    pub decode_step_ms: Option<Stats>,
    /// Σ harness prefill / Σ engine prefill: 1.0 means the harness adds nothing.
    pub harness_over_engine_prefill: Option<f64>,
    pub harness_over_engine_decode_step: Option<f64>,
}

/// Device-clock timings (CUDA events) beside the host clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceComparison {
    pub prefill_ms: Option<Stats>,
    pub decode_step_ms: Option<Stats>,
    pub host_over_device_prefill: Option<f64>,
    pub host_over_device_decode_step: Option<f64>,
}

/// One in-process measurement point. Metric definitions: see [`crate::inproc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InprocPoint {
    pub prompt_tokens: u32,
    pub gen_tokens: u32,
    /// Sequences decoded together.
    pub batch: u32,
    /// False when the run was interrupted during this point.
    pub complete: bool,
    /// Measured runs (warm-up excluded).
    pub runs: u32,
    pub warmup_runs: u32,
    pub tokens: TokenTotals,
    pub ttft_ms: Option<Stats>,
    pub itl_ms: Option<Stats>,
    pub tpot_ms: Option<Stats>,
    pub e2e_ms: Option<Stats>,
    pub prefill_ms: Option<Stats>,
    pub decode_step_ms: Option<Stats>,
    pub sample_ms: Option<Stats>,
    pub prefill_tok_s: Option<Stats>,
    pub decode_tok_s: Option<Stats>,
    pub throughput_tok_s: Option<Stats>,
    pub engine_counters: Option<CounterComparison>,
    pub device_timing: Option<DeviceComparison>,
    /// Host, process and GPU readings while the point's measured runs ran.
    pub telemetry: Option<crate::telemetry::TelemetrySummary>,
    /// The decode step's bytes over its time, against the memory bandwidth
    /// (absent in older files and without a GGUF to count bytes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roofline: Option<crate::roofline::Roofline>,
}

#[derive(Debug, thiserror::Error)]
#[error("writing result file {path}: {cause}")]
pub struct WriteError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

/// Writes a result file atomically (a temporary file renamed over the old
/// one), so that a reader, or a crash, never sees half a file.
#[derive(Debug, Clone)]
pub struct ResultWriter {
    path: PathBuf,
}

impl ResultWriter {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ResultWriter { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write<T: Serialize>(&self, value: &T) -> Result<(), WriteError> {
        let err = |source| WriteError {
            path: self.path.clone(),
            cause: source,
        };
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut file = std::fs::File::create(&tmp).map_err(err)?;
        serde_json::to_writer_pretty(&mut file, value).map_err(|e| err(e.into()))?;
        file.write_all(b"\n").map_err(err)?;
        file.sync_data().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

/// What `inproc` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InprocSettings {
    pub model: String,
    pub prompt_tokens: Vec<u32>,
    pub gen_tokens: u32,
    pub batch: Vec<u32>,
    pub warmup: u32,
    pub runs: u32,
    pub seed: u64,
    pub threads: u32,
    pub threads_batch: u32,
    pub n_gpu_layers: i32,
    pub ubatch: u32,
    pub kv_unified: bool,
    /// How tokens are chosen: "greedy".
    pub sampler: String,
    /// False: end-of-sequence tokens are ignored, every sequence generates
    /// exactly `gen_tokens`.
    pub stop_at_eos: bool,
}

pub type InprocResult = ResultFile<InprocSettings, InprocPoint>;

/// The server an HTTP run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub url: String,
    pub endpoint: String,
    pub model: String,
    /// The server's answer to `GET /v1/models`.
    pub models: serde_json::Value,
    /// The first `system_fingerprint` the server streamed, if any.
    pub system_fingerprint: Option<String>,
}

/// The load of one HTTP point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadDescription {
    /// "closed" (fixed concurrency) or "open" (arrival schedule).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Requests per second asked for (open loop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// "poisson", "gamma" or "constant" (open loop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival: Option<String>,
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
    /// `c=8` for a closed loop, `2 req/s` for an open one, `trace x2` for a
    /// replayed trace.
    pub fn label(&self) -> String {
        match (self.concurrency, self.rate, self.trace_speed) {
            (Some(c), _, _) => format!("c={c}"),
            (_, Some(r), _) => format!("{r} req/s"),
            (_, _, Some(s)) => format!("trace x{s}"),
            _ => "-".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RequestCounts {
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// In flight when the run was interrupted: neither succeeded nor failed.
    pub cancelled: u64,
    /// Requests sent a second time because a kept-alive connection closed
    /// before any response (counted once in `total`).
    pub retried: u64,
    pub failed_by_class: std::collections::BTreeMap<String, u64>,
}

/// The output token count used against the next-best count (usage against
/// the tokenizer or the content chunks, tokenizer against chunks), over the
/// requests that had both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenDiscrepancy {
    /// e.g. "usage_vs_chunks".
    pub against: String,
    pub requests_compared: u64,
    pub requests_differing: u64,
    pub total_abs_difference: u64,
}

/// The prompt tokens a server says it served from its prefix cache, over the
/// successful requests of a point that said.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PromptCacheUse {
    pub requests_reporting: u64,
    /// Requests with cached tokens beyond what the workload shares on
    /// purpose (the BOS) and what random prompts share by chance (fewer
    /// than 4 tokens).
    pub requests_hit: u64,
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PromptTokenCheck {
    pub requests_compared: u64,
    pub requests_differing: u64,
    /// Mean of server count − tokens sent (1.0: it added one token, a BOS,
    /// to every prompt).
    pub mean_server_minus_sent: f64,
}

/// What measuring cost the client itself: when it nears a core, the client,
/// not the server, may be the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClientCost {
    pub cpu_s: Option<f64>,
    /// Of one core, over the point's wall time.
    pub cpu_percent: Option<f64>,
    pub cpu_ms_per_output_token: Option<f64>,
    /// Connections opened before the point (`GET /v1/models` on each), so
    /// that no measured request paid for a TCP or TLS handshake; absent
    /// with `--no-preconnect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconnected: Option<u32>,
}

/// One HTTP measurement point. Definitions: [`crate::metrics`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpPoint {
    pub load: LoadDescription,
    pub complete: bool,
    pub requests: RequestCounts,
    pub late_requests: u64,
    pub schedule_lag_ms: Option<Stats>,
    pub ttft_ms: Option<Stats>,
    /// Open loop: TTFT from the intended send time (coordinated omission corrected).
    pub ttft_from_scheduled_ms: Option<Stats>,
    pub itl_ms: Option<Stats>,
    pub tpot_ms: Option<Stats>,
    pub e2e_ms: Option<Stats>,
    pub input_tokens: Option<Stats>,
    pub output_tokens: Option<Stats>,
    /// How many requests counted their output tokens from each source.
    pub output_tokens_source: std::collections::BTreeMap<String, u64>,
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
    pub output_throughput_tok_s: f64,
    pub request_throughput_req_s: f64,
    pub input_throughput_tok_s: f64,
    pub per_request_output_tok_s: Option<Stats>,
    /// Requests meeting every SLO, per second (absent without `--slo`).
    pub goodput_req_s: Option<f64>,
    pub slo_met: Option<u64>,
    /// llama.cpp's server: its own prompt time and time per generated token.
    pub server_prompt_ms: Option<Stats>,
    pub server_predicted_per_token_ms: Option<Stats>,
    /// Prompt tokens served from the server's cache (absent: the server
    /// does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache: Option<PromptCacheUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_check: Option<PromptTokenCheck>,
    pub client: ClientCost,
    /// Host, client-process and (with `--gpu-telemetry`) GPU readings while
    /// the point's measured requests ran.
    pub telemetry: Option<crate::telemetry::TelemetrySummary>,
    /// The request count and time this point was given (absent in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_requests_planned: Option<u64>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<ConversationCounts>,
    /// Shared-prefix workloads: the first request of each group ("first")
    /// against the group's later ones ("later").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_groups: Option<Vec<PartStats>>,
    /// The server's own metrics over the point (`--server-metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<crate::http::server_metrics::ServerMetricsSummary>,
}

/// One part of a point: a turn of its conversations, or a place in its
/// prefix groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartStats {
    /// The turn (from "1"), or "first" / "later".
    pub part: String,
    pub requests: u64,
    pub succeeded: u64,
    pub ttft_ms: Option<Stats>,
    pub input_tokens: Option<Stats>,
    /// Prompt tokens the server says it served from its cache (absent: it
    /// does not say).
    pub cached_prompt_tokens: Option<Stats>,
}

/// The conversations of a multi-turn point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationCounts {
    /// Every turn answered.
    pub completed: u64,
    /// Ended by a failed turn.
    pub cut_short: u64,
    /// Completed conversations per second of the point.
    pub per_s: f64,
}

/// What `http` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpSettings {
    pub url: String,
    pub endpoint: String,
    pub model: String,
    /// The environment variable the API key was read from, and whether it
    /// was set. The key itself is never saved.
    pub api_key_env: String,
    pub api_key_present: bool,
    pub workload: String,
    /// The request count of every point, when one count was given for all.
    pub num_requests: Option<u64>,
    pub duration_s: Option<f64>,
    /// `--num-requests` with one count per load level (`5,200,1500`) or a
    /// multiple of the load (`5x`); each point's own is in
    /// `num_requests_planned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_requests_per_load: Option<String>,
    /// `--duration` with one per load level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_per_load: Option<String>,
    pub warmup: u64,
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
    pub ignore_eos: bool,
    pub timeout_s: f64,
    pub slo: Option<crate::http::point::Slo>,
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
}

pub type HttpResult = ResultFile<HttpSettings, HttpPoint>;

/// A result file of either mode, read back.
#[derive(Debug, Clone)]
pub enum AnyResult {
    // Boxed: a result's settings and provenance make each large.
    Inproc(Box<InprocResult>),
    Http(Box<HttpResult>),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{} is not an inferbench result file: {message}", path.display())]
    NotAResult { path: PathBuf, message: String },
    #[error(
        "{} has schema_version {found}; this inferbench reads version {SCHEMA_VERSION}",
        path.display()
    )]
    Version { path: PathBuf, found: u64 },
}

impl AnyResult {
    /// Reads a file written by `inproc` or `http`, checking its schema version.
    pub fn read(path: &Path) -> Result<AnyResult, ReadError> {
        let not_a_result = |message: String| ReadError::NotAResult {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| not_a_result(format!("not JSON ({e})")))?;
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| not_a_result("no schema_version".into()))?;
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ReadError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        let parsed = match value.get("mode").and_then(serde_json::Value::as_str) {
            Some("inproc") => serde_json::from_value(value).map(|r| AnyResult::Inproc(Box::new(r))),
            Some("http") => serde_json::from_value(value).map(|r| AnyResult::Http(Box::new(r))),
            other => {
                return Err(not_a_result(format!(
                    "mode {}, expected \"inproc\" or \"http\"",
                    other.map_or("missing".into(), |m| format!("{m:?}"))
                )))
            }
        };
        parsed.map_err(|e| not_a_result(e.to_string()))
    }

    pub fn provenance(&self) -> &Provenance {
        match self {
            AnyResult::Inproc(r) => &r.provenance,
            AnyResult::Http(r) => &r.provenance,
        }
    }
}
