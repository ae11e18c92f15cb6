//! Telemetry around each measured point: the host and this process always,
//! GPUs through NVML when asked for and a driver is there.

use inferbench_harness::gpu::GpuProbe;
use inferbench_harness::schema::telemetry::TelemetrySummary;
use inferbench_harness::telemetry::{PointSampler, Sampler, TelemetryConfig};

/// Samples one point at a time, keeping the GPU probe between points.
pub struct PointTelemetry {
    enabled: bool,
    probe: Option<Box<dyn GpuProbe>>,
    running: Option<Sampler>,
}

impl PointTelemetry {
    /// `gpu`: read GPUs through NVML. Without a driver the GPU fields are
    /// absent, and the reason is among the notes returned for the result;
    /// so is why no point has an energy per token, when neither a GPU nor
    /// RAPL can give one.
    pub fn new(enabled: bool, gpu: bool) -> (PointTelemetry, Vec<String>) {
        let mut notes = Vec::new();
        let probe = if enabled && gpu {
            match inferbench_ffi::nvml::NvmlProbe::new() {
                Ok(p) => Some(Box::new(p) as Box<dyn GpuProbe>),
                Err(e) => {
                    notes.push(e.to_string());
                    None
                }
            }
        } else {
            None
        };
        if enabled && probe.is_none() {
            let powercap = std::path::Path::new(inferbench_harness::telemetry::POWERCAP);
            if let Err(rapl) = inferbench_harness::telemetry::energy::Rapl::find(powercap) {
                let gpu = if gpu {
                    "no GPU read through NVML"
                } else {
                    "GPUs not read"
                };
                notes.push(format!("energy per token not measured: {gpu}, and {rapl}"));
            }
        }
        (
            PointTelemetry {
                enabled,
                probe,
                running: None,
            },
            notes,
        )
    }
}

impl PointSampler for PointTelemetry {
    fn start(&mut self) {
        if !self.enabled || self.running.is_some() {
            return;
        }
        match Sampler::start(TelemetryConfig::default(), self.probe.take()) {
            Ok(s) => self.running = Some(s),
            Err(e) => eprintln!("warning: telemetry not sampled: {e}"),
        }
    }

    fn stop(&mut self) -> Option<TelemetrySummary> {
        let sampler = self.running.take()?;
        match sampler.finish() {
            Ok((summary, probe)) => {
                self.probe = probe;
                Some(summary)
            }
            Err(e) => {
                eprintln!("warning: telemetry lost: {e}");
                None
            }
        }
    }
}
