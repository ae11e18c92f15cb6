//! The result file: every serde type it holds (the runners that fill them
//! import this tree; it imports nothing from them), the writer that keeps it
//! valid on disk at every moment, and the reader of either mode's files.
//! `schema/result.schema.json` is generated from these types (`files.rs`),
//! their doc comments its descriptions; tests validate every file the tool
//! writes against it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stats::{HistogramInfo, Stats};

// The two modes' types are reached through `schema::` itself, so that each
// has one path; the smaller concepts keep their module's name.
pub mod compare;
pub mod contrast;
pub mod difference;
pub mod files;
mod http;
mod inproc;
pub mod kernels;
pub mod plan;
pub mod roofline;
pub mod rounds;
pub mod server_metrics;
pub mod shard;
pub mod telemetry;
pub mod timeline;
pub mod validity;

pub use http::*;
pub use inproc::*;

/// Bumped on any change that could break a reader of older files.
pub const SCHEMA_VERSION: u32 = 1;

/// Which command wrote a result file (its `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// "inproc": llama.cpp in this process, settings and points of
    /// [`InprocSettings`] and [`InprocPoint`].
    Inproc,
    /// "http": a server over HTTP, settings and points of [`HttpSettings`]
    /// and [`HttpPoint`].
    Http,
}

/// Where a run stands (a result file's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still being written: points finished so far are in the file.
    Running,
    /// Ended with neither an error nor an interrupt (`partial` still says
    /// whether every point was measured completely).
    Complete,
    /// Stopped by Ctrl-C (or SIGTERM).
    Interrupted,
    /// Stopped by an error, named in `error`.
    Failed,
}

impl RunStatus {
    /// As the result file spells it.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }
}

impl<S, P> ResultFile<S, P> {
    /// A run's file as it starts: running, partial, no point yet, stamped
    /// `now` (RFC 3339).
    pub fn running(
        mode: Mode,
        provenance: Provenance,
        settings: S,
        notes: Vec<String>,
        now: String,
    ) -> Self {
        ResultFile {
            schema_version: SCHEMA_VERSION,
            mode,
            partial: true,
            status: RunStatus::Running,
            error: None,
            started_at: now.clone(),
            updated_at: now,
            provenance,
            settings,
            histogram: HistogramInfo::current(),
            points: Vec::new(),
            max_rate: None,
            max_concurrency: None,
            notes,
            validity: None,
            shard: None,
            shards: None,
        }
    }
}

impl<S, P: validity::JudgedPoint> ResultFile<S, P> {
    /// The run's verdict: as recorded, or judged now from its points.
    pub fn judged(&self) -> validity::RunValidity {
        self.validity.clone().unwrap_or_else(|| {
            validity::RunValidity::of(&self.points, self.status.name(), self.partial)
        })
    }

    /// Records the run's verdict as it stands now.
    pub fn judge(&mut self) {
        self.validity = Some(validity::RunValidity::of(
            &self.points,
            self.status.name(),
            self.partial,
        ));
    }
}

/// A whole result file. `S` is the mode's settings, `P` its point type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ResultFile_for_{P}")]
pub struct ResultFile<S, P> {
    /// The [`SCHEMA_VERSION`] of the build that wrote the file.
    pub schema_version: u32,
    /// Which command wrote the file, and so what `settings` and `points` hold.
    pub mode: Mode,
    /// True unless every requested point was measured completely.
    pub partial: bool,
    /// Where the run stands: running while it is written, then how it ended.
    pub status: RunStatus,
    /// The error that stopped the run; present exactly when `status` is
    /// failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run last wrote the file (RFC 3339, UTC): after every point
    /// and at its end.
    pub updated_at: String,
    /// What was measured, with what build, on which machine.
    pub provenance: Provenance,
    /// What the run was asked to do, in the mode's own terms.
    pub settings: S,
    /// How every stats object's percentiles and histogram were recorded.
    pub histogram: HistogramInfo,
    /// The points measured so far; one cut short by an interrupt has
    /// `complete` false.
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
    /// The run's verdict from its points' (absent in older files: judged
    /// as they are read).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validity: Option<validity::RunValidity>,
    /// `http --shard`: this file is one shard of a load split between
    /// machines.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<shard::ShardRun>,
    /// A merge of shards: which, and how well their starts lined up.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shards: Option<shard::MergedShards>,
}

/// How a search's probes were called: by MLPerf LoadGen's early-stopping
/// rule, or by their point estimate where it could not decide.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeCalls {
    /// Probes the early-stopping rule left undecided (after any extension
    /// up to `max_requests_per_probe`), called by their point estimate
    /// instead; the others were called at `confidence` (absent in older
    /// files, which called every probe by its point estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_by_estimate: Option<u32>,
    /// The confidence of the probes the rule called (0.99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// `--max-requests-per-probe`: the most requests an undecided probe was
    /// extended to (absent: probes were not extended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_probe: Option<u64>,
}

/// The outcome of a search for the highest rate meeting the SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MaxRateSearch {
    /// Highest probed rate that met the criterion (none did: null).
    pub max_rate: Option<f64>,
    /// Lowest probed rate that did not (none failed: null, the server was
    /// never pushed past the SLO within the probes).
    pub lowest_failing_rate: Option<f64>,
    /// Rates probed (at most 12, an incomplete last one included), each a
    /// point of the file.
    pub probes: u32,
    /// How the probes were called (keys beside the others; absent in
    /// older files, which called every probe by its point estimate).
    #[serde(flatten)]
    pub calls: ProbeCalls,
    /// What a probe had to meet, in words.
    pub criterion: String,
}

/// The outcome of a search for the highest concurrency meeting the SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MaxConcurrencySearch {
    /// Highest probed concurrency that met the criterion (none did: null).
    pub max_concurrency: Option<u32>,
    /// Lowest probed concurrency that did not (none failed: null).
    pub lowest_failing_concurrency: Option<u32>,
    /// Concurrencies probed (at most 12, an incomplete last one included),
    /// each a point of the file.
    pub probes: u32,
    /// How the probes were called (keys beside the others; absent in
    /// older files, which called every probe by its point estimate).
    #[serde(flatten)]
    pub calls: ProbeCalls,
    /// What a probe had to meet, in words (as for `max_rate`).
    pub criterion: String,
}

/// What was measured, with what build of what, on which machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Provenance {
    /// The inferbench build.
    pub tool: ToolInfo,
    /// The engine, or in HTTP mode the client.
    pub engine: EngineInfo,
    /// The machine inferbench ran on.
    pub host: HostInfo,
    /// The GGUF file: the model measured in-process, or `--token-ids-from`'s
    /// in HTTP mode (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    /// The server measured (HTTP mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    /// When the run started (RFC 3339, UTC).
    pub timestamp: String,
}

/// The inferbench build that wrote the file, as embedded at compile time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ToolInfo {
    /// The package name: "inferbench".
    pub name: String,
    /// The package version, e.g. "0.1.0".
    pub version: String,
    /// The git commit built (null when git could not tell: no checkout, no
    /// git).
    pub git_commit: Option<String>,
    /// Whether tracked files differed from that commit at build time (null
    /// when git could not tell).
    pub git_dirty: Option<bool>,
    /// Cargo profile the binary was built with.
    pub build_profile: String,
    /// The target triple, e.g. "x86_64-unknown-linux-gnu".
    pub target: String,
    /// `-C target-cpu` the binary was built for, if any.
    pub target_cpu: Option<String>,
    /// Cargo features of the binary.
    pub features: Vec<String>,
    /// `rustc --version` of the compiler that built it (null when unknown).
    pub rustc: Option<String>,
}

/// The engine measured and how it was driven: llama.cpp in-process, or in
/// HTTP mode the client and its clock (the server is `provenance.server`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The backend devices llama.cpp lists, as "backend: description (name)"
    /// (empty in HTTP mode).
    pub devices: Vec<String>,
    /// Threads for single-token graphs (llama.cpp's n_threads); in HTTP
    /// mode the client's runtime threads.
    pub threads: Option<u32>,
    /// Threads for graphs of more than one token (llama.cpp's
    /// n_threads_batch; null in HTTP mode).
    pub threads_batch: Option<u32>,
    /// `--n-gpu-layers` as asked (-1: all; null in HTTP mode).
    pub gpu_layers_requested: Option<i32>,
    /// Layers llama.cpp put on a GPU: 0 without one, else the request
    /// capped at the model's layers plus its output layer (null in HTTP
    /// mode).
    pub gpu_layers_offloaded: Option<u32>,
    /// Which clock timed the steps: "host" or "cuda_events+host".
    pub timing_source: String,
    /// Whether the device's own activity records timed its kernels (absent
    /// in older files and in served runs).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kernel_timing: Option<kernels::KernelTimingStatus>,
    /// How the engine itself was compiled (in-process llama.cpp: CMake build
    /// type and flags), where known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub build: Option<EngineBuild>,
    /// The devices and backends in the words llama.cpp's `llama-bench`
    /// records them (in-process only; absent in older files).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device_names: Option<DeviceNames>,
    /// Anything the timing source wants the reader to know (e.g. why CUDA
    /// events were not used).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

/// The compute devices as `llama-bench` names them, so that its rows and
/// inferbench's join on the same values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceNames {
    /// The descriptions of the CPU and accelerator devices, joined by ", ".
    pub cpu_info: String,
    /// The descriptions of the GPU devices, joined by ", " (empty without).
    pub gpu_info: String,
    /// The registered backends other than the CPU, joined by "," ("CPU"
    /// when there is none).
    pub backends: String,
}

/// How llama.cpp was compiled, read from its CMake cache at build time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EngineBuild {
    /// e.g. "Release" (-O3) or "RelWithDebInfo" (-O2 -g).
    pub cmake_build_type: String,
    /// The C and C++ flags of that build type.
    pub c_flags: String,
    /// The C++ flags of that build type.
    pub cxx_flags: String,
    /// GGML_NATIVE: compiled for the build machine's CPU features.
    pub ggml_native: Option<bool>,
}

/// The machine inferbench ran on (in HTTP mode the client's, which need not
/// be the server's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostInfo {
    /// The CPU's brand string ("unknown" when unreadable).
    pub cpu_model: String,
    /// Logical CPUs, SMT siblings included.
    pub logical_cores: u32,
    /// Physical cores (null when unknown): the default thread count.
    pub physical_cores: Option<u32>,
    /// Total memory, in bytes.
    pub memory_bytes: u64,
    /// The operating system's name and version.
    pub os: String,
    /// The OS kernel's version (null when unknown).
    pub kernel: Option<String>,
    /// Memory bandwidth measured before an in-process CPU run, the ceiling
    /// of its decode steps' roofline (absent elsewhere and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bandwidth: Option<roofline::BandwidthProbe>,
    /// f32 FMA throughput measured before an in-process CPU run, the
    /// ceiling of its prefills' roofline (absent elsewhere and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_peak: Option<roofline::ComputePeakProbe>,
    /// The GPU's memory bandwidth, measured before an in-process run with
    /// layers on it, the ceiling of its decode steps' roofline (absent
    /// elsewhere and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_memory_bandwidth: Option<roofline::DeviceBandwidth>,
}

/// The GGUF model file, as inferbench's own reader saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelInfo {
    /// The file's path, as given.
    pub path: String,
    /// SHA-256 of the whole file, lowercase hex (null: not computed).
    pub sha256: Option<String>,
    /// Size of the file, in bytes.
    pub file_size_bytes: u64,
    /// `general.name` (null when absent).
    pub name: Option<String>,
    /// `general.architecture`, e.g. "llama", "gemma3".
    pub architecture: String,
    /// Parameters: the elements of every tensor, summed.
    pub parameters: u64,
    /// `{architecture}.block_count` (null when absent).
    pub layers: Option<u64>,
    /// Training context length in tokens, `{architecture}.context_length`
    /// (null when absent).
    pub context_length: Option<u64>,
    /// The name of `general.file_type` (e.g. "Q4_K_M"), else the tensor
    /// type holding the most bytes.
    pub quantization: String,
    /// Tensor type name (e.g. "Q4_K", "F32") to the number of tensors of
    /// that type.
    pub tensor_types: std::collections::BTreeMap<String, u64>,
}

/// Token totals over the measured runs of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenTotals {
    /// Prompt tokens prefilled: runs × batch × prompt length.
    pub prompt: u64,
    /// Tokens generated: runs × batch × generated tokens per sequence.
    pub generated: u64,
}

/// The engine's own counters beside the harness's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterComparison {
    /// The prefill eval time the engine reports, ms, one value per run.
    pub prefill_ms: Option<Stats>,
    /// Per-step mean the engine reports, one value per step.
    pub decode_step_ms: Option<Stats>,
    /// Σ harness prefill / Σ engine prefill: 1.0 means the harness adds nothing.
    pub harness_over_engine_prefill: Option<f64>,
    /// Σ harness decode-step time / Σ engine decode eval time, over the runs
    /// with counters: 1.0 means the harness adds nothing.
    pub harness_over_engine_decode_step: Option<f64>,
}

/// The event window: CUDA events recorded around the synchronized call,
/// beside the host clock. They bracket the host's window on the GPU's clock
/// (graph building, launches, gaps and the synchronization included), not
/// the kernels' work, which `kernel_timing` measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceComparison {
    /// What the interval brackets, in words (absent in older files, whose
    /// device timing was the same event window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brackets: Option<String>,
    /// The event interval around each prefill, ms, one value per run.
    pub prefill_ms: Option<Stats>,
    /// The event interval around each decode step, ms, one value per step.
    pub decode_step_ms: Option<Stats>,
    /// Σ host prefill / Σ event prefill, over the prefills both timed.
    pub host_over_device_prefill: Option<f64>,
    /// Σ host decode step / Σ event decode step, over the steps both timed.
    pub host_over_device_decode_step: Option<f64>,
}

/// A result file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing result file {path}: {cause}")]
pub struct WriteError {
    /// The result file (not its temporary file).
    pub path: PathBuf,
    /// The I/O error (a JSON encoding error arrives as one too).
    pub cause: std::io::Error,
}

/// Writes a result file atomically (a temporary file renamed over the old
/// one), so that a reader, or a crash, never sees half a file.
#[derive(Debug, Clone)]
pub struct ResultWriter {
    path: PathBuf,
}

impl ResultWriter {
    /// A writer of the file at `path`; nothing is written until [`Self::write`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ResultWriter { path: path.into() }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `value` as pretty-printed JSON to `PATH.tmp`, syncs it and
    /// renames it over the file.
    pub fn write<T: Serialize>(&self, value: &T) -> Result<(), WriteError> {
        crate::atomic_file::write_whole(&self.path, |tmp| -> std::io::Result<()> {
            let mut file = std::fs::File::create(tmp)?;
            serde_json::to_writer_pretty(&mut file, value)?;
            file.write_all(b"\n")?;
            file.sync_data()
        })
        .map_err(|cause| WriteError {
            path: self.path.clone(),
            cause,
        })
    }
}

/// A result file of either mode, read back.
#[derive(Debug, Clone)]
pub enum AnyResult {
    // Boxed: a result's settings and provenance make each large.
    /// A file of `inferbench inproc` (`mode` "inproc").
    Inproc(Box<InprocResult>),
    /// A file of `inferbench http` (`mode` "http").
    Http(Box<HttpResult>),
}

/// Why [`AnyResult::read`] could not read a result file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("reading {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// The file is not JSON, has no schema version or mode, or does not
    /// have its mode's shape.
    #[error("{} is not an inferbench result file: {message}", path.display())]
    NotAResult {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The file has another schema version than [`SCHEMA_VERSION`].
    #[error(
        "{} has schema_version {found}; this inferbench reads version {SCHEMA_VERSION}",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The file's `schema_version`.
        found: u64,
    },
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

    /// `inproc` or `http`, as the file's `mode` says.
    pub fn mode(&self) -> &'static str {
        match self {
            AnyResult::Inproc(_) => "inproc",
            AnyResult::Http(_) => "http",
        }
    }

    /// The file's provenance, whichever its mode.
    pub fn provenance(&self) -> &Provenance {
        match self {
            AnyResult::Inproc(r) => &r.provenance,
            AnyResult::Http(r) => &r.provenance,
        }
    }
}
