//! GPU telemetry through NVML (`nvml-wrapper`, which loads libnvidia-ml at
//! run time): an implementation of the harness's [`GpuProbe`].
//!
//! Device indices are NVML's, which follow PCI bus order. CUDA's ordinals
//! may differ (CUDA orders the fastest device first unless
//! `CUDA_DEVICE_ORDER=PCI_BUS_ID`); match them by UUID
//! ([`GpuDevice::uuid`]) when it matters.

use inferbench_core::gpu::{GpuProbe, GpuSample};
use inferbench_core::schema::roofline::NominalBandwidth;
use inferbench_core::schema::telemetry::GpuDevice;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

/// Why there is no NVML telemetry here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct NvmlUnavailable {
    /// e.g. "libnvidia-ml not found: no GPU telemetry".
    pub reason: String,
}

/// Reads every GPU NVML sees.
pub struct NvmlProbe {
    nvml: Nvml,
    devices: Vec<GpuDevice>,
}

impl std::fmt::Debug for NvmlProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlProbe")
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

/// Drivers install `libnvidia-ml.so.1`; the unversioned name nvml-wrapper
/// tries first is often missing (containers, no development package).
const VERSIONED_LIB: &str = "libnvidia-ml.so.1";

fn unavailable(what: &str, e: &NvmlError) -> NvmlUnavailable {
    let reason = match e {
        NvmlError::LibloadingError(_) => "libnvidia-ml not found".to_string(),
        NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".to_string(),
        NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".to_string(),
        other => format!("{what}: {other}"),
    };
    NvmlUnavailable {
        reason: format!("{reason}: no GPU telemetry"),
    }
}

impl NvmlProbe {
    /// Initialises NVML and lists its GPUs. Fails, with the reason, where
    /// there is no NVIDIA driver, or no GPU.
    pub fn new() -> Result<NvmlProbe, NvmlUnavailable> {
        let nvml = match Nvml::init() {
            Err(NvmlError::LibloadingError(_)) => Nvml::builder()
                .lib_path(std::ffi::OsStr::new(VERSIONED_LIB))
                .init(),
            other => other,
        }
        .map_err(|e| unavailable("initialising NVML", &e))?;
        let count = nvml
            .device_count()
            .map_err(|e| unavailable("counting GPUs", &e))?;
        if count == 0 {
            return Err(NvmlUnavailable {
                reason: "NVML sees no GPU: no GPU telemetry".into(),
            });
        }
        let devices = (0..count)
            .map(|index| match nvml.device_by_index(index) {
                Ok(d) => GpuDevice {
                    index,
                    name: d.name().unwrap_or_else(|e| format!("unknown ({e})")),
                    uuid: d.uuid().ok(),
                    memory_total_bytes: d.memory_info().ok().map(|m| m.total),
                },
                Err(e) => GpuDevice {
                    index,
                    name: format!("unreadable ({e})"),
                    uuid: None,
                    memory_total_bytes: None,
                },
            })
            .collect();
        Ok(NvmlProbe { nvml, devices })
    }

    /// The driver's version, e.g. "580.65.06".
    pub fn driver_version(&self) -> Option<String> {
        self.nvml.sys_driver_version().ok()
    }

    /// The nominal memory bandwidth of the GPU whose UUID is `uuid` (as
    /// NVML writes it, "GPU-…"): its maximum memory clock over its bus.
    pub fn nominal_bandwidth(&self, uuid: &str) -> Result<NominalBandwidth, String> {
        let d = self
            .nvml
            .device_by_uuid(uuid)
            .map_err(|e| format!("finding {uuid}: {e}"))?;
        let memory_clock_mhz = d
            .max_clock_info(Clock::Memory)
            .map_err(|e| format!("reading {uuid}'s maximum memory clock: {e}"))?;
        let bus_width_bits = d
            .memory_bus_width()
            .map_err(|e| format!("reading {uuid}'s memory bus width: {e}"))?;
        Ok(NominalBandwidth {
            source: "nvml".into(),
            memory_clock_mhz,
            bus_width_bits,
            gb_s: nominal_gb_s(memory_clock_mhz, bus_width_bits),
        })
    }
}

/// NVML reports power in milliwatts.
fn milliwatts_to_watts(mw: u32) -> f64 {
    f64::from(mw) / 1e3
}

fn read_device(index: u32, d: &Device<'_>) -> GpuSample {
    let memory = d.memory_info().ok();
    GpuSample {
        index,
        memory_used_bytes: memory.as_ref().map(|m| m.used),
        memory_total_bytes: memory.as_ref().map(|m| m.total),
        utilization_percent: d.utilization_rates().ok().map(|u| f64::from(u.gpu)),
        power_watts: d.power_usage().ok().map(milliwatts_to_watts),
        temperature_c: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
        graphics_clock_mhz: d.clock_info(Clock::Graphics).ok().map(f64::from),
        memory_clock_mhz: d.clock_info(Clock::Memory).ok().map(f64::from),
        energy_mj: d.total_energy_consumption().ok(),
    }
}

impl GpuProbe for NvmlProbe {
    /// One reading per GPU; a metric the driver refuses is `None`, a GPU
    /// whose handle cannot be had is left out of this sample.
    fn sample(&mut self) -> Vec<GpuSample> {
        self.devices
            .iter()
            .filter_map(|g| {
                let d = self.nvml.device_by_index(g.index).ok()?;
                Some(read_device(g.index, &d))
            })
            .collect()
    }

    fn describe(&self) -> Vec<GpuDevice> {
        self.devices.clone()
    }
}

/// GB/s from a memory clock and bus width: two transfers per clock.
pub(crate) fn nominal_gb_s(memory_clock_mhz: u32, bus_width_bits: u32) -> f64 {
    f64::from(memory_clock_mhz) * 1e6 * 2.0 * f64::from(bus_width_bits) / 8.0 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_is_reported_in_watts() {
        assert_eq!(milliwatts_to_watts(350_500), 350.5);
        assert_eq!(milliwatts_to_watts(0), 0.0);
    }

    #[test]
    fn probe_is_sendable_to_the_sampler_thread() {
        fn assert_probe<T: GpuProbe + 'static>() {}
        assert_probe::<NvmlProbe>();
    }

    /// Without an NVIDIA driver: an error with a reason, no panic. With one:
    /// every GPU described and read.
    #[test]
    fn probe_reports_unavailable_without_a_driver_and_reads_gpus_with_one() {
        match NvmlProbe::new() {
            Err(NvmlUnavailable { reason }) => {
                assert!(reason.ends_with(": no GPU telemetry"), "{reason}");
            }
            Ok(mut probe) => {
                let devices = probe.describe();
                assert!(!devices.is_empty());
                let samples = probe.sample();
                assert_eq!(samples.len(), devices.len(), "{samples:?}");
                for (s, d) in samples.iter().zip(&devices) {
                    assert_eq!(s.index, d.index);
                    let total = s.memory_total_bytes.expect("memory total");
                    assert!(s.memory_used_bytes.unwrap() <= total, "{s:?}");
                    if let Some(u) = s.utilization_percent {
                        assert!((0.0..=100.0).contains(&u), "{s:?}");
                    }
                }
                assert!(probe.driver_version().is_some());
            }
        }
    }

    #[test]
    fn driver_errors_become_reasons() {
        let e = NvmlError::DriverNotLoaded;
        assert_eq!(
            unavailable("x", &e).reason,
            "the NVIDIA driver is not loaded: no GPU telemetry"
        );
        assert_eq!(
            unavailable("counting GPUs", &NvmlError::Unknown).reason,
            format!("counting GPUs: {}: no GPU telemetry", NvmlError::Unknown)
        );
    }
}
