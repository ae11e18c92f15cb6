//! The interface a GPU telemetry source implements (NVML in `inferbench-ffi`, a fake in tests).

use crate::schema::telemetry::GpuDevice;

/// A source of GPU readings (NVML in `inferbench-ffi`, a fake in tests).
/// It runs on the sampler's thread, hence `Send`.
pub trait GpuProbe: Send {
    /// One reading of every GPU. Must not block for long: it is called once
    /// per interval.
    fn sample(&mut self) -> Vec<GpuSample>;
    /// The GPUs this probe reads.
    fn describe(&self) -> Vec<GpuDevice>;
}

/// One reading of one GPU. Each field is `None` when the driver does not
/// report it (or reported an error for it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GpuSample {
    /// The device index the probe uses (NVML's index for the NVML probe).
    pub index: u32,
    /// Device memory in use, in bytes.
    pub memory_used_bytes: Option<u64>,
    /// Total device memory, in bytes.
    pub memory_total_bytes: Option<u64>,
    /// Share of the driver's last sample period in which a kernel ran, in percent (0–100).
    pub utilization_percent: Option<f64>,
    /// Power draw, in watts.
    pub power_watts: Option<f64>,
    /// GPU die temperature, in degrees Celsius.
    pub temperature_c: Option<f64>,
    /// Current graphics (core) clock, in MHz.
    pub graphics_clock_mhz: Option<f64>,
    /// Current memory clock, in MHz.
    pub memory_clock_mhz: Option<f64>,
    /// The driver's energy counter: millijoules since it was loaded
    /// (NVML's total energy consumption; Volta and later).
    pub energy_mj: Option<u64>,
}
