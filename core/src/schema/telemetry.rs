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
    pub samples: u64,
    /// Logical CPUs of the host: the scale of `process_cpu_percent`.
    pub logical_cores: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_cpu_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_memory_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_cpu_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_rss_bytes: Option<MeanMax>,
    /// Absent when there was no GPU probe; one entry per GPU index otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpus: Option<Vec<GpuSummary>>,
}

/// One GPU's metrics over a sampling period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSummary {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Samples in which the probe reported this GPU.
    pub samples: u64,
    /// The largest total the driver reported (it does not change).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_used_bytes: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub utilization_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub power_watts: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub temperature_c: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub graphics_clock_mhz: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_clock_mhz: Option<MeanMax>,
}

/// Mean and maximum of one metric over the samples that had it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanMax {
    pub mean: f64,
    pub max: f64,
}

/// What a probe knows of one GPU that does not change during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_total_bytes: Option<u64>,
}
