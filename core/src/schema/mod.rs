//! The result file: every serde type it holds (the runners that fill them
//! import this tree; it imports nothing from them), the writer that keeps it
//! valid on disk at every moment, and the reader of either mode's files.
//! `schema/result.schema.json` describes the same shape; tests validate
//! every file the tool writes against it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stats::{HistogramInfo, Stats};

pub mod http;
pub mod inproc;
pub mod kernels;
pub mod roofline;
pub mod server_metrics;
pub mod telemetry;

pub use http::*;
pub use inproc::*;

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
    /// Whether the device's own activity records timed its kernels (absent
    /// in older files and in served runs).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kernel_timing: Option<kernels::KernelTimingStatus>,
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

/// The event window: CUDA events recorded around the synchronized call,
/// beside the host clock. They bracket the host's window on the GPU's clock
/// (graph building, launches, gaps and the synchronization included), not
/// the kernels' work, which `kernel_timing` measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceComparison {
    /// What the interval brackets, in words (absent in older files, whose
    /// device timing was the same event window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brackets: Option<String>,
    pub prefill_ms: Option<Stats>,
    pub decode_step_ms: Option<Stats>,
    pub host_over_device_prefill: Option<f64>,
    pub host_over_device_decode_step: Option<f64>,
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
