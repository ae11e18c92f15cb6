//! Mean and max per metric over a point's samples, per GPU index.

use std::collections::BTreeMap;
use std::time::Duration;

use super::energy::EnergyMeter;
use super::host::HostSample;
use crate::gpu::GpuSample;
use crate::schema::telemetry::{EnergyReading, GpuDevice, GpuSummary, MeanMax, TelemetrySummary};

/// Running mean and max of one metric. Non-finite values are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Gauge {
    sum: f64,
    max: f64,
    count: u64,
}

impl Gauge {
    pub(super) fn add(&mut self, value: Option<f64>) {
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return;
        };
        self.max = if self.count == 0 { v } else { self.max.max(v) };
        self.sum += v;
        self.count += 1;
    }

    pub(super) fn summary(&self) -> Option<MeanMax> {
        // Rounding in the sum can put the mean of equal values a hair above
        // them (0.1 three times: 0.10000000000000002); it cannot truly
        // exceed the max.
        (self.count > 0).then(|| MeanMax {
            mean: (self.sum / self.count as f64).min(self.max),
            max: self.max,
        })
    }
}

#[derive(Debug, Clone, Default)]
struct GpuAccumulator {
    name: Option<String>,
    samples: u64,
    memory_total_bytes: Option<u64>,
    memory_used_bytes: Gauge,
    utilization_percent: Gauge,
    power_watts: Gauge,
    temperature_c: Gauge,
    graphics_clock_mhz: Gauge,
    memory_clock_mhz: Gauge,
    energy: EnergyMeter,
}

/// Mean and max per metric, per GPU index. The sampler thread fills one;
/// it is public so that aggregation can be tested without threads or clocks.
#[derive(Debug, Clone)]
pub struct Accumulator {
    interval: Duration,
    logical_cores: u32,
    pub(super) samples: u64,
    host_cpu_percent: Gauge,
    host_memory_percent: Gauge,
    process_cpu_percent: Gauge,
    process_rss_bytes: Gauge,
    /// `None` when there is no GPU probe.
    gpus: Option<BTreeMap<u32, GpuAccumulator>>,
    /// One meter per CPU package with RAPL counters (empty without).
    host_energy: Vec<EnergyMeter>,
}

impl Accumulator {
    /// `gpus` is the probe's description, or `None` without a probe.
    pub fn new(interval: Duration, logical_cores: u32, gpus: Option<&[GpuDevice]>) -> Self {
        let gpus = gpus.map(|devices| {
            devices
                .iter()
                .map(|d| {
                    let acc = GpuAccumulator {
                        name: Some(d.name.clone()),
                        memory_total_bytes: d.memory_total_bytes,
                        ..GpuAccumulator::default()
                    };
                    (d.index, acc)
                })
                .collect()
        });
        Accumulator {
            interval,
            logical_cores,
            samples: 0,
            host_cpu_percent: Gauge::default(),
            host_memory_percent: Gauge::default(),
            process_cpu_percent: Gauge::default(),
            process_rss_bytes: Gauge::default(),
            gpus,
            host_energy: Vec::new(),
        }
    }

    /// The CPU packages' energy meters, which the sampler reads with every
    /// sample ([`Self::host_energy_mut`]).
    pub fn with_host_energy(mut self, meters: Vec<EnergyMeter>) -> Self {
        self.host_energy = meters;
        self
    }

    /// The CPU packages' meters, to read RAPL into.
    pub fn host_energy_mut(&mut self) -> &mut [EnergyMeter] {
        &mut self.host_energy
    }

    /// The GPUs' energy counters and power at `at_s` seconds into the
    /// window, without a sample: the reading at its start.
    pub fn energy_baseline(&mut self, gpus: &[GpuSample], at_s: f64) {
        let Some(accs) = self.gpus.as_mut() else {
            return;
        };
        for g in gpus {
            read_energy(&mut accs.entry(g.index).or_default().energy, g, at_s);
        }
    }

    /// [`add`](Self::add), the sample taken `at_s` seconds into the window
    /// (for the energy between readings).
    pub fn add_at(&mut self, host: &HostSample, gpus: &[GpuSample], at_s: f64) {
        self.add(host, gpus);
        if let Some(accs) = self.gpus.as_mut() {
            for g in gpus {
                read_energy(&mut accs.entry(g.index).or_default().energy, g, at_s);
            }
        }
    }

    /// Adds one sample: the host reading and the GPU readings taken with it
    /// (ignored when the accumulator was made without a probe).
    pub fn add(&mut self, host: &HostSample, gpus: &[GpuSample]) {
        self.samples += 1;
        self.host_cpu_percent.add(host.host_cpu_percent);
        self.host_memory_percent.add(host.host_memory_percent);
        self.process_cpu_percent.add(host.process_cpu_percent);
        self.process_rss_bytes.add(host.process_rss_bytes);
        let Some(accs) = self.gpus.as_mut() else {
            return;
        };
        for g in gpus {
            let acc = accs.entry(g.index).or_default();
            acc.samples += 1;
            acc.memory_total_bytes = match (acc.memory_total_bytes, g.memory_total_bytes) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            acc.memory_used_bytes
                .add(g.memory_used_bytes.map(|b| b as f64));
            acc.utilization_percent.add(g.utilization_percent);
            acc.power_watts.add(g.power_watts);
            acc.temperature_c.add(g.temperature_c);
            acc.graphics_clock_mhz.add(g.graphics_clock_mhz);
            acc.memory_clock_mhz.add(g.memory_clock_mhz);
        }
    }

    /// Mean and max of every metric sampled so far, per GPU too, for a
    /// sampling window of `duration` (start to stop, wall time).
    pub fn summary(&self, duration: Duration) -> TelemetrySummary {
        let gpus = self.gpus.as_ref().map(|accs| {
            accs.iter()
                .map(|(&index, a)| GpuSummary {
                    index,
                    name: a.name.clone(),
                    samples: a.samples,
                    memory_total_bytes: a.memory_total_bytes,
                    memory_used_bytes: a.memory_used_bytes.summary(),
                    utilization_percent: a.utilization_percent.summary(),
                    power_watts: a.power_watts.summary(),
                    temperature_c: a.temperature_c.summary(),
                    graphics_clock_mhz: a.graphics_clock_mhz.summary(),
                    memory_clock_mhz: a.memory_clock_mhz.summary(),
                    energy: a.energy.reading(),
                })
                .collect()
        });
        TelemetrySummary {
            interval_ms: self.interval.as_secs_f64() * 1e3,
            duration_ms: duration.as_secs_f64() * 1e3,
            samples: self.samples,
            logical_cores: self.logical_cores,
            host_cpu_percent: self.host_cpu_percent.summary(),
            host_memory_percent: self.host_memory_percent.summary(),
            process_cpu_percent: self.process_cpu_percent.summary(),
            process_rss_bytes: self.process_rss_bytes.summary(),
            host_energy: EnergyReading::total(
                &self
                    .host_energy
                    .iter()
                    .filter_map(EnergyMeter::reading)
                    .collect::<Vec<_>>(),
            ),
            gpus,
        }
    }
}

/// A GPU sample's energy counter (millijoules) and power into its meter.
fn read_energy(meter: &mut EnergyMeter, g: &GpuSample, at_s: f64) {
    if let Some(mj) = g.energy_mj {
        meter.counter(mj as f64 / 1e3, at_s);
    }
    if let Some(w) = g.power_watts {
        meter.power(w, at_s);
    }
}
