//! Telemetry around each measured point: the host and this process always,
//! GPUs through NVML when asked for and a driver is there.

use inferbench_harness::gpu::GpuProbe;
use inferbench_harness::schema::telemetry::TelemetrySummary;
use inferbench_harness::telemetry::{Sampler, TelemetryConfig};

/// Samples one point at a time, keeping the GPU probe between points.
pub struct PointTelemetry {
    enabled: bool,
    probe: Option<Box<dyn GpuProbe>>,
    running: Option<Sampler>,
}

impl PointTelemetry {
    /// `gpu`: read GPUs through NVML. Without a driver the GPU fields are
    /// absent, and the reason is returned for the result's notes.
    pub fn new(enabled: bool, gpu: bool) -> (PointTelemetry, Option<String>) {
        let (probe, note) = if enabled && gpu {
            match inferbench_ffi::nvml::NvmlProbe::new() {
                Ok(p) => (Some(Box::new(p) as Box<dyn GpuProbe>), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        (
            PointTelemetry {
                enabled,
                probe,
                running: None,
            },
            note,
        )
    }

    pub fn start(&mut self) {
        if !self.enabled || self.running.is_some() {
            return;
        }
        match Sampler::start(TelemetryConfig::default(), self.probe.take()) {
            Ok(s) => self.running = Some(s),
            Err(e) => eprintln!("warning: telemetry not sampled: {e}"),
        }
    }

    pub fn stop(&mut self) -> Option<TelemetrySummary> {
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
