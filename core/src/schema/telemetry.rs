//! Telemetry of a point: host, process and GPU readings over its measured runs, as the result file holds them. Definitions: `inferbench_harness::telemetry`.

use serde::{Deserialize, Serialize};

/// Telemetry of one sampling period (one measurement point), for the result
/// file. Definitions: see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySummary {
    /// The configured interval between samples.
    pub interval_ms: f64,
    /// Wall time from start to stop.
    pub duration_ms: f64,
    /// Samples taken, each covering the time since the one before.
    pub samples: u64,
    /// Logical CPUs of the host: the scale of `process_cpu_percent`.
    pub logical_cores: u32,
    /// Busy time of all logical CPUs over their total time, 0–100 (Linux
    /// only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_cpu_percent: Option<MeanMax>,
    /// Used memory (total − available) over total, 0–100.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_memory_percent: Option<MeanMax>,
    /// This process's user + system CPU time over wall time, 0–100 ×
    /// `logical_cores`, as `top` shows it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_cpu_percent: Option<MeanMax>,
    /// This process's resident set size, in bytes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_rss_bytes: Option<MeanMax>,
    /// Absent when there was no GPU probe; one entry per GPU index otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpus: Option<Vec<GpuSummary>>,
}

/// One GPU's metrics over a sampling period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSummary {
    /// The device index the probe uses (NVML's index for the NVML probe).
    pub index: u32,
    /// The GPU's name, as the probe describes it (absent when it did not).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Samples in which the probe reported this GPU.
    pub samples: u64,
    /// The largest total the driver reported (it does not change).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_total_bytes: Option<u64>,
    /// Device memory in use, in bytes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_used_bytes: Option<MeanMax>,
    /// Share of the driver's own sampling window in which a kernel ran,
    /// 0–100.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub utilization_percent: Option<MeanMax>,
    /// Power draw, in watts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub power_watts: Option<MeanMax>,
    /// GPU die temperature, in degrees Celsius.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub temperature_c: Option<MeanMax>,
    /// Graphics (core) clock, in MHz.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub graphics_clock_mhz: Option<MeanMax>,
    /// Memory clock, in MHz.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_clock_mhz: Option<MeanMax>,
}

/// Mean and maximum of one metric over the samples that had it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanMax {
    /// Mean over those samples, in the metric's unit.
    pub mean: f64,
    /// Largest sample, in the metric's unit.
    pub max: f64,
}

/// What a probe knows of one GPU that does not change during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// The device index the probe uses (NVML's index for the NVML probe).
    pub index: u32,
    /// The driver's name for the GPU, e.g. "NVIDIA H200" ("unreadable (...)"
    /// when the driver would not open it).
    pub name: String,
    /// The GPU's UUID, which stays the same whatever order the devices are
    /// listed in (absent when unreadable).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uuid: Option<String>,
    /// Total device memory, in bytes (absent when unreadable).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_total_bytes: Option<u64>,
}
