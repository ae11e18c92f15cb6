//! The machine's ceilings (memory bandwidth, compute peak): the rooflines'
//! upper side.

use inferbench_harness::roofline::{self, BandwidthCeiling};
use inferbench_harness::schema::roofline::{BandwidthProbe, ComputePeakProbe, DeviceBandwidth};
use inferbench_models::gguf::{DecodeTraffic, PrefillCompute};

use super::{
    BANDWIDTH_ARRAY_BYTES, BANDWIDTH_REPETITIONS, PEAK_FLOPS_PER_THREAD, PEAK_REPETITIONS,
};

/// The machine's ceilings, measured before any point so that the probes
/// disturb none, and what a reader must know about them.
pub(super) struct Ceilings {
    pub(super) bandwidth: Option<BandwidthProbe>,
    pub(super) device_bandwidth: Option<DeviceBandwidth>,
    pub(super) ceiling: Option<BandwidthCeiling>,
    pub(super) peak: Option<ComputePeakProbe>,
    pub(super) notes: Vec<String>,
}

impl Ceilings {
    /// Probes what the first cell runs on: the CPU's memory bandwidth and
    /// f32 FMA peak, or the GPU's copy bandwidth when layers are on one.
    pub(super) fn measure(
        offloaded: u32,
        offloadable: u32,
        threads: u32,
        model: Option<(&DecodeTraffic, &PrefillCompute)>,
    ) -> Ceilings {
        // Where the layers really are, not what was asked: --n-gpu-layers on
        // a build or machine without a GPU leaves them on the CPU.
        let on_gpu = offloaded > 0;
        let bandwidth = (!on_gpu)
            .then(|| roofline::stream_triad(threads, BANDWIDTH_ARRAY_BYTES, BANDWIDTH_REPETITIONS));
        // llama.cpp's first GPU is device 0 unless told otherwise.
        let device_bandwidth = on_gpu.then(|| {
            inferbench_ffi::bandwidth::device_bandwidth(
                0,
                inferbench_ffi::bandwidth::COPY_BUFFER_BYTES,
                inferbench_ffi::bandwidth::COPY_REPETITIONS,
            )
        });
        let ceiling = roofline::bandwidth_ceiling(bandwidth.as_ref(), device_bandwidth.as_ref());
        // The CPU's own vector kernel where there is one: what the compiler
        // makes of portable code depends on the CPU it targets.
        let kernel =
            inferbench_ffi::simd::fma_kernel().unwrap_or_else(roofline::portable_fma_kernel);
        let peak = (!on_gpu).then(|| {
            roofline::compute_peak_with(threads, PEAK_FLOPS_PER_THREAD, PEAK_REPETITIONS, &kernel)
        });
        let mut notes: Vec<String> = model
            .iter()
            .flat_map(|(t, c)| t.notes.iter().chain(c.notes.iter()))
            .map(|n| format!("roofline: {n}"))
            .collect();
        if let Some(d) = &device_bandwidth {
            notes.extend(d.notes.iter().map(|n| format!("roofline: {n}")));
            if ceiling.is_none() {
                notes.push(
                    "roofline: layers on a GPU and its bandwidth could not be had; the CPU probe does not apply, so no ceiling is given".into(),
                );
            }
            if offloaded < offloadable {
                notes.push(format!(
                    "roofline: {offloaded} of {offloadable} layers on the GPU: the ceiling is the GPU's, but the layers left on the CPU read at the CPU's bandwidth"
                ));
            }
        }
        notes.extend(
            peak.as_ref()
                .and_then(roofline::compute_peak_note)
                .map(|n| format!("roofline: {n}")),
        );
        if peak.is_none() {
            notes.push(
                "roofline: layers on a GPU; the CPU compute probe does not apply, so prefill has no ceiling".into(),
            );
        }
        Ceilings {
            bandwidth,
            device_bandwidth,
            ceiling,
            peak,
            notes,
        }
    }
}
