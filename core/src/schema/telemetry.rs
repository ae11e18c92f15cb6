//! Telemetry of a point: host, process and GPU readings over its measured runs, as the result file holds them. Definitions: `inferbench_harness::telemetry`.

use serde::{Deserialize, Serialize};

/// Telemetry of one sampling period (one measurement point), for the result
/// file. Definitions: see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The host's energy over the window from RAPL's package counters
    /// (`/sys/class/powercap/*-rapl:N/energy_uj`), where the kernel has them
    /// (absent in older files and where it does not).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_energy: Option<EnergyReading>,
    /// Absent when there was no GPU probe; one entry per GPU index otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpus: Option<Vec<GpuSummary>>,
}

/// One GPU's metrics over a sampling period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The energy the GPU used over the sampling window (absent in older
    /// files and where the driver reports neither energy nor power).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub energy: Option<EnergyReading>,
}

impl EnergyReading {
    /// The sum of several devices' readings over the same window (each
    /// package, each GPU): joules added, the widest window, the source
    /// shared or "mixed"; `None` for no reading.
    pub fn total<'a>(
        readings: impl IntoIterator<Item = &'a EnergyReading>,
    ) -> Option<EnergyReading> {
        let readings: Vec<&EnergyReading> = readings.into_iter().collect();
        let first = readings.first()?;
        let joules: f64 = readings.iter().map(|r| r.joules).sum();
        let window_s = readings.iter().map(|r| r.window_s).fold(0.0, f64::max);
        let source = if readings.iter().all(|r| r.source == first.source) {
            first.source.clone()
        } else {
            "mixed".into()
        };
        Some(EnergyReading {
            joules,
            window_s,
            average_power_w: if window_s > 0.0 {
                joules / window_s
            } else {
                0.0
            },
            source,
        })
    }
}

/// Energy used over a window, and how it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnergyReading {
    /// Joules over `window_s`.
    pub joules: f64,
    /// Seconds between the first and the last reading.
    pub window_s: f64,
    /// `joules` / `window_s`, in watts.
    pub average_power_w: f64,
    /// "counter": the difference of the energy counter (NVML's total
    /// energy consumption, RAPL's energy_uj) between the first and last
    /// readings; "power_integral": power samples times the time each
    /// covered, where there is no counter (an estimate, as coarse as the
    /// sampling).
    pub source: String,
}

/// Mean and maximum of one metric over the samples that had it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MeanMax {
    /// Mean over those samples, in the metric's unit.
    pub mean: f64,
    /// Largest sample, in the metric's unit.
    pub max: f64,
}

/// What a probe knows of one GPU that does not change during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What a point's output tokens cost in energy: the GPUs' energy over the
/// telemetry window (every GPU summed), else the CPU packages' (RAPL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PointEnergy {
    /// "gpu" or "cpu_packages": whose energy.
    pub device: String,
    /// How it was read: "counter" or "power_integral" ([`EnergyReading`]).
    pub source: String,
    /// Joules over the window.
    pub joules: f64,
    /// The telemetry window, seconds: the point's measured runs or
    /// requests, with what the engine or server did between them.
    pub window_s: f64,
    /// Joules / window, watts.
    pub average_power_w: f64,
    /// Output tokens of the point (every sequence, every measured run or
    /// successful request).
    pub output_tokens: u64,
    /// Joules per output token.
    pub joules_per_output_token: Option<f64>,
    /// Output tokens per joule.
    pub output_tokens_per_joule: Option<f64>,
}

impl TelemetrySummary {
    /// The energy of `output_tokens` over this window: the GPUs' where read,
    /// else the CPU packages'; `None` when neither was.
    pub fn energy_per_token(&self, output_tokens: u64) -> Option<PointEnergy> {
        let gpus: Vec<&EnergyReading> = self
            .gpus
            .iter()
            .flatten()
            .filter_map(|g| g.energy.as_ref())
            .collect();
        let (device, reading) = if gpus.is_empty() {
            ("cpu_packages", self.host_energy.clone()?)
        } else {
            ("gpu", EnergyReading::total(gpus)?)
        };
        let tokens = output_tokens as f64;
        Some(PointEnergy {
            device: device.into(),
            source: reading.source,
            joules: reading.joules,
            window_s: reading.window_s,
            average_power_w: reading.average_power_w,
            output_tokens,
            joules_per_output_token: (output_tokens > 0).then(|| reading.joules / tokens),
            output_tokens_per_joule: (reading.joules > 0.0).then(|| tokens / reading.joules),
        })
    }
}

#[cfg(test)]
mod energy_tests {
    use super::*;

    fn summary(
        gpus: Option<Vec<Option<EnergyReading>>>,
        host: Option<EnergyReading>,
    ) -> TelemetrySummary {
        TelemetrySummary {
            interval_ms: 100.0,
            duration_ms: 2000.0,
            samples: 20,
            logical_cores: 2,
            host_cpu_percent: None,
            host_memory_percent: None,
            process_cpu_percent: None,
            process_rss_bytes: None,
            host_energy: host,
            gpus: gpus.map(|g| {
                g.into_iter()
                    .enumerate()
                    .map(|(i, energy)| GpuSummary {
                        index: i as u32,
                        name: None,
                        samples: 20,
                        memory_total_bytes: None,
                        memory_used_bytes: None,
                        utilization_percent: None,
                        power_watts: None,
                        temperature_c: None,
                        graphics_clock_mhz: None,
                        memory_clock_mhz: None,
                        energy,
                    })
                    .collect()
            }),
        }
    }

    fn reading(joules: f64, source: &str) -> EnergyReading {
        EnergyReading {
            joules,
            window_s: 2.0,
            average_power_w: joules / 2.0,
            source: source.into(),
        }
    }

    #[test]
    fn joules_per_token_from_the_gpus_else_the_cpu_packages_else_none() {
        let two_gpus = summary(
            Some(vec![
                Some(reading(300.0, "counter")),
                Some(reading(100.0, "counter")),
            ]),
            Some(reading(50.0, "counter")),
        );
        let e = two_gpus.energy_per_token(800).unwrap();
        assert_eq!((e.device.as_str(), e.source.as_str()), ("gpu", "counter"));
        assert_eq!((e.joules, e.average_power_w), (400.0, 200.0));
        assert_eq!(e.joules_per_output_token, Some(0.5));
        assert_eq!(e.output_tokens_per_joule, Some(2.0));

        let mixed = summary(
            Some(vec![
                Some(reading(10.0, "counter")),
                Some(reading(10.0, "power_integral")),
            ]),
            None,
        );
        assert_eq!(mixed.energy_per_token(1).unwrap().source, "mixed");

        let cpu = summary(None, Some(reading(50.0, "counter")));
        let e = cpu.energy_per_token(0).unwrap();
        assert_eq!(e.device, "cpu_packages");
        assert_eq!(e.joules_per_output_token, None, "no tokens, no ratio");

        assert!(summary(Some(vec![None]), None)
            .energy_per_token(5)
            .is_none());
        assert!(summary(None, None).energy_per_token(5).is_none());
    }
}
