//! The GPU's memory bandwidth, the ceiling of a decode step whose layers
//! are on the GPU: what a device-to-device copy achieves (timed with CUDA
//! events on the copying stream, so the interval holds the copy and nothing
//! of the host), and what the memory's clock and bus width allow (NVML, or
//! the CUDA device attributes without it). The copy is the practical
//! ceiling, the nominal figure the physical one; a decode step is judged
//! against the copy.
//!
//! Like the rest of the CUDA path, libcuda and libnvidia-ml are loaded at
//! run time: without them, [`device_bandwidth`] says why in its notes.

use std::sync::Arc;

use cudarc::driver::{sys, CudaContext};
use inferbench_core::schema::roofline::{DeviceBandwidth, DeviceCopyProbe, NominalBandwidth};

use crate::cuda::{libcuda_present, no_panic};
use crate::nvml::{nominal_gb_s, NvmlProbe};

/// The copy's buffer: 1 GiB, twenty times the L2 cache of an H100 or H200
/// (50-60 MB), so that the copy streams from memory; at 4.8 TB/s one copy
/// takes about 0.45 ms, a thousand times the events' resolution.
pub const COPY_BUFFER_BYTES: u64 = 1 << 30;

/// Copies timed after the warm-up copy.
pub const COPY_REPETITIONS: u32 = 20;

/// Below this, caches would hold the buffers and the copy measure them.
const MIN_COPY_BYTES: u64 = 256 << 20;

/// Measures device `ordinal`'s memory bandwidth: `repetitions` copies of
/// `buffer_bytes` (fewer when the device has less than four times that
/// free), and the nominal figure. Never fails: what could not be measured
/// is absent, with the reason in the notes. Takes 2 × buffer_bytes of
/// device memory while it runs and frees it before returning.
pub fn device_bandwidth(ordinal: usize, buffer_bytes: u64, repetitions: u32) -> DeviceBandwidth {
    let mut out = DeviceBandwidth {
        device: format!("CUDA{ordinal}"),
        copy: None,
        nominal: None,
        notes: Vec::new(),
    };
    if !libcuda_present() {
        out.notes
            .push("libcuda not found: no device bandwidth probe".into());
        return out;
    }
    let ctx = match no_panic("probing device memory bandwidth", || {
        CudaContext::new(ordinal).map_err(|e| format!("opening CUDA device {ordinal}: {e}"))
    }) {
        Ok(ctx) => ctx,
        Err(reason) => {
            out.notes
                .push(format!("{reason}: no device bandwidth probe"));
            return out;
        }
    };
    if let Ok(name) = no_panic("naming the device", || {
        ctx.name().map_err(|e| e.to_string())
    }) {
        out.device = format!("CUDA{ordinal} ({name})");
    }
    match no_panic("the device copy probe", || {
        copy_probe(&ctx, buffer_bytes, repetitions)
    }) {
        Ok(copy) => out.copy = Some(copy),
        Err(reason) => out.notes.push(format!("copy probe: {reason}")),
    }
    let uuid = no_panic("reading the device's UUID", || {
        ctx.uuid().map(nvml_uuid).map_err(|e| e.to_string())
    });
    let from_nvml = uuid.and_then(|uuid| {
        NvmlProbe::new()
            .map_err(|e| e.reason)
            .and_then(|nvml| nvml.nominal_bandwidth(&uuid))
    });
    out.nominal = match from_nvml {
        Ok(nominal) => Some(nominal),
        Err(reason) => {
            out.notes.push(format!(
                "nominal bandwidth from NVML: {reason}; from the CUDA device attributes instead"
            ));
            match no_panic("reading the memory clock and bus width", || {
                attribute_bandwidth(&ctx)
            }) {
                Ok(nominal) => Some(nominal),
                Err(reason) => {
                    out.notes.push(format!("nominal bandwidth: {reason}"));
                    None
                }
            }
        }
    };
    out
}

/// Copies a buffer `repetitions` times on the context's default stream,
/// each copy between two events recorded on that stream: stream order puts
/// exactly the copy between them.
fn copy_probe(
    ctx: &Arc<CudaContext>,
    buffer_bytes: u64,
    repetitions: u32,
) -> Result<DeviceCopyProbe, String> {
    let (free, _) = ctx
        .mem_get_info()
        .map_err(|e| format!("reading free memory: {e}"))?;
    // Source and destination, with as much again left for others.
    let bytes = buffer_bytes.min(free as u64 / 4);
    if bytes < MIN_COPY_BYTES {
        return Err(format!(
            "{free} bytes free on the device, too little for two buffers of {MIN_COPY_BYTES}"
        ));
    }
    let len = usize::try_from(bytes).map_err(|_| format!("{bytes} bytes do not fit a usize"))?;
    let driver = |what: &'static str| move |e: cudarc::driver::DriverError| format!("{what}: {e}");
    let stream = ctx.default_stream();
    let src = stream
        .alloc_zeros::<u8>(len)
        .map_err(driver("allocating the source"))?;
    let mut dst = stream
        .alloc_zeros::<u8>(len)
        .map_err(driver("allocating the destination"))?;
    let event = || {
        ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(driver("creating an event"))
    };
    let (start, end) = (event()?, event()?);
    // The first copy pays for page mapping and clock ramp-up.
    stream
        .memcpy_dtod(&src, &mut dst)
        .map_err(driver("copying"))?;
    let mut times_ms = Vec::with_capacity(repetitions as usize);
    for _ in 0..repetitions.max(1) {
        start
            .record(&stream)
            .map_err(driver("recording the start event"))?;
        stream
            .memcpy_dtod(&src, &mut dst)
            .map_err(driver("copying"))?;
        end.record(&stream)
            .map_err(driver("recording the end event"))?;
        times_ms.push(
            start
                .elapsed_ms(&end)
                .map_err(driver("reading the elapsed time"))?,
        );
    }
    copy_rates(bytes, &times_ms)
}

/// The probe's result from each copy's milliseconds: every byte is read
/// once and written once, 2 × `bytes` per copy.
fn copy_rates(bytes: u64, times_ms: &[f32]) -> Result<DeviceCopyProbe, String> {
    let mut rates: Vec<f64> = times_ms
        .iter()
        .filter(|ms| ms.is_finite() && **ms > 0.0)
        .map(|ms| 2.0 * bytes as f64 / f64::from(*ms) / 1e6)
        .collect();
    if rates.is_empty() {
        return Err(format!("no usable copy time among {times_ms:?} ms"));
    }
    rates.sort_by(f64::total_cmp);
    Ok(DeviceCopyProbe {
        method: "device-to-device copy (cuMemcpyDtoDAsync) between CUDA events on the copying stream; 2 bytes moved per byte copied".into(),
        buffer_bytes: bytes,
        repetitions: rates.len() as u32,
        best_gb_s: rates[rates.len() - 1],
        median_gb_s: rates[rates.len() / 2],
    })
}

/// The CUDA attributes' peak memory clock (kHz) and global memory bus width.
fn attribute_bandwidth(ctx: &Arc<CudaContext>) -> Result<NominalBandwidth, String> {
    let read = |attribute, what: &str| {
        ctx.attribute(attribute)
            .map_err(|e| format!("reading the {what}: {e}"))
            .and_then(|v| u32::try_from(v).map_err(|_| format!("the {what} is {v}")))
    };
    let clock_khz = read(
        sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE,
        "memory clock",
    )?;
    let bus_width_bits = read(
        sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH,
        "memory bus width",
    )?;
    let memory_clock_mhz = clock_khz / 1000;
    Ok(NominalBandwidth {
        source: "cuda device attributes".into(),
        memory_clock_mhz,
        bus_width_bits,
        gb_s: nominal_gb_s(memory_clock_mhz, bus_width_bits),
    })
}

/// A CUDA UUID as NVML names it: "GPU-" and the 16 bytes in hex, grouped
/// 8-4-4-4-12.
fn nvml_uuid(uuid: sys::CUuuid) -> String {
    let hex: String = uuid
        .bytes
        .iter()
        .map(|b| format!("{:02x}", *b as u8))
        .collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_count_each_byte_read_and_written() {
        // 1 GB copied in 0.5 ms: 2 GB moved, 4000 GB/s.
        let p = copy_rates(1_000_000_000, &[0.5, 1.0, 0.625, f32::NAN, 0.0]).unwrap();
        assert_eq!(p.repetitions, 3, "the NaN and the zero are not times");
        assert!((p.best_gb_s - 4000.0).abs() < 1e-9, "{p:?}");
        assert!((p.median_gb_s - 3200.0).abs() < 1e-9, "{p:?}");
        assert!(copy_rates(1, &[f32::NAN])
            .unwrap_err()
            .contains("no usable"));
    }

    #[test]
    fn nominal_bandwidth_is_two_transfers_per_clock_over_the_bus() {
        // An H100 SXM: NVML's 2619 MHz over 5120 bits is the 3.35 TB/s NVIDIA quotes.
        assert!((nominal_gb_s(2619, 5120) - 3352.32).abs() < 1e-9);
        // An H200: 3201 MHz over 6144 bits, the quoted 4.8 TB/s.
        assert!((nominal_gb_s(3201, 6144) - 4916.736).abs() < 1e-9);
    }

    #[test]
    fn uuids_are_written_as_nvml_writes_them() {
        let mut u = sys::CUuuid { bytes: [0; 16] };
        for (i, b) in u.bytes.iter_mut().enumerate() {
            *b = (0xa0 + i as u8) as std::ffi::c_char;
        }
        assert_eq!(nvml_uuid(u), "GPU-a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf");
    }

    /// Without a driver: nothing measured and the reason said. With a GPU:
    /// a copy faster than any PCIe link, below the nominal figure.
    #[test]
    fn the_probe_says_why_without_a_gpu_and_measures_with_one() {
        let b = device_bandwidth(0, MIN_COPY_BYTES, 3);
        if !libcuda_present() {
            assert_eq!(b.device, "CUDA0");
            assert_eq!(b.copy, None);
            assert_eq!(b.nominal, None);
            assert_eq!(b.notes, ["libcuda not found: no device bandwidth probe"]);
            return;
        }
        let Some(copy) = &b.copy else {
            // A driver without a device: the reason, no panic.
            assert!(!b.notes.is_empty(), "{b:?}");
            return;
        };
        assert!(copy.best_gb_s > 100.0, "{b:?}");
        assert!(copy.median_gb_s <= copy.best_gb_s);
        if let Some(nominal) = &b.nominal {
            assert!(copy.best_gb_s < 1.05 * nominal.gb_s, "{b:?}");
        }
    }
}
