//! How close a decode step comes to the memory-bandwidth limit. A decode
//! step must read every weight once and the KV cache of every sequence, so
//! bytes read / step time is the bandwidth it achieved, and the machine's
//! measured bandwidth is its ceiling: the ratio says how much faster the
//! step could be at best, whatever the kernels.
//!
//! A prefill is the other side: its tokens go through every matrix
//! together, so it is bound by arithmetic, and FLOPs / prefill time against
//! the machine's measured FMA rate says how much of the compute it used.

use std::hint::black_box;
use std::time::Instant;

use crate::fma::FmaKernel;

use crate::schema::roofline::{
    BandwidthProbe, ComputePeakProbe, DeviceBandwidth, PrefillRoofline, Roofline,
};

/// The bandwidth a decode step is judged against, and which probe gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandwidthCeiling {
    /// The ceiling in GB/s (10^9 bytes per second), always positive.
    pub gb_s: f64,
    /// "stream-triad", "device copy" or "nominal" (see [`Roofline`]).
    pub source: &'static str,
}

/// The ceiling of a run's decode steps: the GPU's when layers are on it
/// (its copy probe, else its nominal figure), else the CPU probe's best.
pub fn bandwidth_ceiling(
    cpu: Option<&BandwidthProbe>,
    device: Option<&DeviceBandwidth>,
) -> Option<BandwidthCeiling> {
    let positive = |gb_s: f64, source| (gb_s > 0.0).then_some(BandwidthCeiling { gb_s, source });
    match device {
        Some(d) => d
            .copy
            .as_ref()
            .and_then(|c| positive(c.best_gb_s, "device copy"))
            .or_else(|| d.nominal.as_ref().and_then(|n| positive(n.gb_s, "nominal"))),
        None => cpu.and_then(|c| positive(c.best_gb_s, "stream-triad")),
    }
}

/// The roofline of a point decoding `batch` sequences of `prompt` tokens
/// for `gen` tokens: the steps see contexts prompt+1 … prompt+gen−1, mean
/// prompt + gen/2.
pub fn decode_roofline(
    weight_bytes: u64,
    kv_bytes_per_cell: u64,
    batch: u32,
    prompt: u32,
    gen: u32,
    step_ms_p50: f64,
    ceiling: Option<BandwidthCeiling>,
) -> Roofline {
    let bandwidth_gb_s = ceiling.map(|c| c.gb_s);
    let mean_context = f64::from(prompt) + f64::from(gen) / 2.0;
    let kv_bytes = (kv_bytes_per_cell as f64 * f64::from(batch) * mean_context).round() as u64;
    let bytes_per_step = weight_bytes + kv_bytes;
    let achieved_gb_s = if step_ms_p50 > 0.0 {
        bytes_per_step as f64 / (step_ms_p50 * 1e-3) / 1e9
    } else {
        0.0
    };
    Roofline {
        weight_bytes,
        kv_bytes,
        bytes_per_step,
        step_ms_p50,
        achieved_gb_s,
        bandwidth_gb_s,
        bandwidth_source: ceiling.map(|c| c.source.to_string()),
        fraction_of_bandwidth: bandwidth_gb_s
            .filter(|b| *b > 0.0)
            .map(|b| achieved_gb_s / b),
    }
}

/// The roofline of a prefill that does `flops` (counted from the model:
/// `GgufFile::prefill_compute`) in `prefill_ms_p50`, against a peak of
/// `peak_gflop_s` when one was measured.
pub fn prefill_roofline(
    flops: u64,
    prefill_ms_p50: f64,
    peak_gflop_s: Option<f64>,
) -> PrefillRoofline {
    let achieved_gflop_s = if prefill_ms_p50 > 0.0 {
        flops as f64 / (prefill_ms_p50 * 1e-3) / 1e9
    } else {
        0.0
    };
    PrefillRoofline {
        flops,
        prefill_ms_p50,
        achieved_gflop_s,
        peak_gflop_s,
        fraction_of_peak: peak_gflop_s
            .filter(|p| *p > 0.0)
            .map(|p| achieved_gflop_s / p),
    }
}

/// The probe's accumulators per thread: 12 independent chains, each one
/// vector register wide. FMA latency is 4 cycles on current x86 and two
/// units issue one each a cycle, so 8 chains in flight keep them busy; 12
/// leave room, and with the two constants fit the 16 registers of AVX2 (32
/// with AVX-512).
const PEAK_CHAINS: usize = 12;
/// f32 lanes of one chain: a whole AVX-512 register where the build has
/// AVX-512 (on CPUs that split it into two 256-bit halves the rate is the
/// same), else an AVX2 register.
const PEAK_LANES: usize = if cfg!(target_feature = "avx512f") {
    16
} else {
    8
};

/// One chain's step: every lane x becomes x·m + a.
#[inline(always)]
fn fma_step(mut chain: [f32; PEAK_LANES], m: f32, a: f32) -> [f32; PEAK_LANES] {
    for x in chain.iter_mut() {
        // Without FMA in the build, mul_add would call libm's software
        // fmaf: a multiply and an add count the same FLOPs.
        *x = if cfg!(target_feature = "fma") {
            x.mul_add(m, a)
        } else {
            *x * m + a
        };
    }
    chain
}

/// One thread's share of the compute probe: `passes` times, every
/// accumulator x becomes x·m + a. With m < 1 the values converge to
/// a / (1 − m) and never overflow or go subnormal.
///
/// The chains are twelve named values, not an array: given an array of
/// chains, LLVM with AVX-512 vectorized across it with gathers and scatters
/// through the stack, and the probe read 1.9 GFLOP/s on a 2-core EPYC where
/// this form reads about 50 per core (checked in the release build: one
/// `vfmadd` per chain and pass, no loads or stores in the loop).
fn fma_chains(passes: u64, m: f32, a: f32) -> f32 {
    let start = |c: u8| [f32::from(c); PEAK_LANES];
    let (mut c0, mut c1, mut c2, mut c3) = (start(0), start(1), start(2), start(3));
    let (mut c4, mut c5, mut c6, mut c7) = (start(4), start(5), start(6), start(7));
    let (mut c8, mut c9, mut c10, mut c11) = (start(8), start(9), start(10), start(11));
    for _ in 0..passes {
        c0 = fma_step(c0, m, a);
        c1 = fma_step(c1, m, a);
        c2 = fma_step(c2, m, a);
        c3 = fma_step(c3, m, a);
        c4 = fma_step(c4, m, a);
        c5 = fma_step(c5, m, a);
        c6 = fma_step(c6, m, a);
        c7 = fma_step(c7, m, a);
        c8 = fma_step(c8, m, a);
        c9 = fma_step(c9, m, a);
        c10 = fma_step(c10, m, a);
        c11 = fma_step(c11, m, a);
    }
    [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11]
        .iter()
        .flatten()
        .sum()
}

/// The vector features this build's probe was compiled with.
fn probe_features() -> String {
    let features = [
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("neon", cfg!(target_feature = "neon")),
    ];
    let on: Vec<&str> = features
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    if on.is_empty() {
        "none".into()
    } else {
        on.join(",")
    }
}

/// The portable kernel: plain Rust, vectorized as the compiler sees fit,
/// for CPUs that `inferbench-ffi` has no kernel of its own for.
pub fn portable_fma_kernel() -> FmaKernel {
    FmaKernel {
        name: "portable",
        lanes: PEAK_LANES,
        chains: PEAK_CHAINS,
        run: fma_chains,
    }
}

/// [`compute_peak_with`] the portable kernel.
pub fn compute_peak(threads: u32, flops_per_thread: u64, repetitions: u32) -> ComputePeakProbe {
    compute_peak_with(
        threads,
        flops_per_thread,
        repetitions,
        &portable_fma_kernel(),
    )
}

/// Measures the f32 multiply-add rate of `threads` threads, each running
/// about `flops_per_thread` FLOPs of `kernel`'s independent FMA chains in
/// registers, `repetitions` times after one warm-up pass (which also lets
/// the clock rise). This is the ceiling of f32 kernels; llama.cpp's
/// quantized ones multiply with integer dot products (AVX-512 VNNI, AVX2
/// `maddubs`), whose rate can be higher.
///
/// With more than one thread the kernel is also timed on one, so that a
/// core taken by something else during the probe shows (see
/// [`compute_peak_note`]).
pub fn compute_peak_with(
    threads: u32,
    flops_per_thread: u64,
    repetitions: u32,
    kernel: &FmaKernel,
) -> ComputePeakProbe {
    let threads = threads.max(1);
    let per_pass = kernel.flops_per_pass();
    let passes = (flops_per_thread / per_pass).max(1);
    let flops = passes * per_pass * u64::from(threads);
    let rates = fma_rates(kernel, threads, passes, repetitions);
    let single_thread_gflop_s = (threads > 1)
        .then(|| fma_rates(kernel, 1, passes, repetitions).last().copied())
        .flatten();
    ComputePeakProbe {
        method: format!(
            "f32 fma: {} independent chains of x = x*m + a per thread, each one vector register wide ({} f32 lanes, kernel {}), 2 FLOPs per fma",
            kernel.chains, kernel.lanes, kernel.name
        ),
        threads,
        target_features: if kernel.name == "portable" {
            probe_features()
        } else {
            format!("{} (detected at run time)", kernel.name)
        },
        flops_per_repetition: flops,
        repetitions: repetitions.max(1),
        best_gflop_s: rates.last().copied().unwrap_or(0.0),
        median_gflop_s: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
        single_thread_gflop_s,
    }
}

/// GFLOP/s of `threads` threads each running `passes` passes, one warm-up
/// then `repetitions` timed, sorted.
fn fma_rates(kernel: &FmaKernel, threads: u32, passes: u64, repetitions: u32) -> Vec<f64> {
    let run = kernel.run;
    let pass = || {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    black_box(run(black_box(passes), black_box(0.999), black_box(0.001)))
                });
            }
        });
    };
    let flops = passes * kernel.flops_per_pass() * u64::from(threads);
    pass();
    let mut rates: Vec<f64> = (0..repetitions.max(1))
        .map(|_| {
            let start = Instant::now();
            pass();
            flops as f64 / start.elapsed().as_secs_f64().max(1e-9) / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates
}

/// A warning when the probe's threads reached less than 3/4 of `threads` ×
/// the one-thread rate: a core was busy (another process, a hypervisor
/// taking the vCPU) or the threads shared one, so the peak is understated
/// and every prefill's share of it overstated.
pub fn compute_peak_note(probe: &ComputePeakProbe) -> Option<String> {
    let single = probe.single_thread_gflop_s.filter(|s| *s > 0.0)?;
    let scaling = probe.best_gflop_s / single;
    (scaling < 0.75 * f64::from(probe.threads)).then(|| {
        format!(
            "compute probe: {} threads reached {:.1} GFLOP/s, only {scaling:.2}x one thread's {single:.1}: a core was likely busy during the probe, so the peak is understated and the prefill shares overstated",
            probe.threads, probe.best_gflop_s
        )
    })
}

/// Measures memory bandwidth with `threads` threads, each running the
/// triad over its share of three arrays of `array_bytes`, `repetitions`
/// times after one warm-up pass (which also faults the pages in).
pub fn stream_triad(threads: u32, array_bytes: u64, repetitions: u32) -> BandwidthProbe {
    let threads = threads.max(1) as usize;
    let n = (array_bytes / 8).max(threads as u64) as usize;
    let mut a = vec![0.0f64; n];
    let b = vec![1.0f64; n];
    let c = vec![2.0f64; n];
    let chunk = n.div_ceil(threads);
    let pass = |a: &mut [f64]| {
        std::thread::scope(|scope| {
            for ((a, b), c) in a
                .chunks_mut(chunk)
                .zip(b.chunks(chunk))
                .zip(c.chunks(chunk))
            {
                scope.spawn(move || {
                    for ((x, y), z) in a.iter_mut().zip(b).zip(c) {
                        *x = y + 3.0 * z;
                    }
                });
            }
        });
    };
    pass(&mut a);
    let mut rates: Vec<f64> = (0..repetitions.max(1))
        .map(|_| {
            let start = Instant::now();
            pass(&mut a);
            let secs = start.elapsed().as_secs_f64();
            (24 * n) as f64 / secs.max(1e-9) / 1e9
        })
        .collect();
    // Keep the result observable so the passes are not optimized away.
    std::hint::black_box(&a);
    rates.sort_by(f64::total_cmp);
    BandwidthProbe {
        method: "stream-triad: a[i] = b[i] + s*c[i] over f64, 24 bytes per element".into(),
        threads: threads as u32,
        array_bytes: (n * 8) as u64,
        repetitions: repetitions.max(1),
        best_gb_s: rates.last().copied().unwrap_or(0.0),
        median_gb_s: rates[rates.len() / 2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::roofline::{DeviceCopyProbe, NominalBandwidth};

    #[test]
    fn bytes_per_step_count_weights_once_and_the_kv_at_the_mean_context() {
        // 100 MB of weights, 1 KiB per cell, 4 sequences at 128 + 64/2.
        let ceiling = BandwidthCeiling {
            gb_s: 20.0,
            source: "stream-triad",
        };
        let r = decode_roofline(100_000_000, 1024, 4, 128, 64, 10.0, Some(ceiling));
        assert_eq!(r.bandwidth_source.as_deref(), Some("stream-triad"));
        assert_eq!(r.kv_bytes, 1024 * 4 * 160);
        assert_eq!(r.bytes_per_step, 100_000_000 + 655_360);
        // 100.66 MB in 10 ms: 10.07 GB/s, half of 20.
        assert!(
            (r.achieved_gb_s - 10.065_536).abs() < 1e-6,
            "{}",
            r.achieved_gb_s
        );
        assert!((r.fraction_of_bandwidth.unwrap() - 0.503_276_8).abs() < 1e-6);
        assert_eq!(
            decode_roofline(1, 1, 1, 1, 1, 1.0, None).fraction_of_bandwidth,
            None
        );
    }

    #[test]
    fn the_ceiling_is_the_gpus_when_layers_are_on_it() {
        let cpu = BandwidthProbe {
            method: String::new(),
            threads: 2,
            array_bytes: 1,
            repetitions: 1,
            best_gb_s: 30.0,
            median_gb_s: 29.0,
        };
        let copy = DeviceCopyProbe {
            method: String::new(),
            buffer_bytes: 1,
            repetitions: 1,
            best_gb_s: 4000.0,
            median_gb_s: 3900.0,
        };
        let nominal = NominalBandwidth {
            source: "nvml".into(),
            memory_clock_mhz: 3201,
            bus_width_bits: 6144,
            gb_s: 4916.7,
        };
        let device =
            |copy: Option<DeviceCopyProbe>, nominal: Option<NominalBandwidth>| DeviceBandwidth {
                device: "CUDA0".into(),
                copy,
                nominal,
                notes: Vec::new(),
            };
        let ceiling = |c: Option<&BandwidthProbe>, d: Option<&DeviceBandwidth>| {
            bandwidth_ceiling(c, d).map(|c| (c.gb_s, c.source))
        };
        assert_eq!(ceiling(Some(&cpu), None), Some((30.0, "stream-triad")));
        let both = device(Some(copy.clone()), Some(nominal.clone()));
        assert_eq!(
            ceiling(Some(&cpu), Some(&both)),
            Some((4000.0, "device copy"))
        );
        let no_copy = device(None, Some(nominal));
        assert_eq!(ceiling(None, Some(&no_copy)), Some((4916.7, "nominal")));
        // A GPU run whose probes both failed has no ceiling: the CPU's
        // would judge the GPU's steps against the wrong memory.
        assert_eq!(ceiling(Some(&cpu), Some(&device(None, None))), None);
        let zero = DeviceCopyProbe {
            best_gb_s: 0.0,
            ..copy
        };
        assert_eq!(ceiling(None, Some(&device(Some(zero), None))), None);
        assert_eq!(ceiling(None, None), None);
    }

    #[test]
    fn prefill_flops_over_the_p50_against_the_peak() {
        // 6 GFLOP in 40 ms: 150 GFLOP/s, 0.625 of 240.
        let r = prefill_roofline(6_000_000_000, 40.0, Some(240.0));
        assert_eq!(r.flops, 6_000_000_000);
        assert!((r.achieved_gflop_s - 150.0).abs() < 1e-9, "{r:?}");
        assert!((r.fraction_of_peak.unwrap() - 0.625).abs() < 1e-12);
        let no_peak = prefill_roofline(1_000, 1.0, None);
        assert!((no_peak.achieved_gflop_s - 1e-3).abs() < 1e-15);
        assert_eq!(no_peak.fraction_of_peak, None);
        assert_eq!(prefill_roofline(1, 1.0, Some(0.0)).fraction_of_peak, None);
        assert_eq!(prefill_roofline(1, 0.0, Some(1.0)).achieved_gflop_s, 0.0);
    }

    #[test]
    fn the_compute_probe_measures_a_positive_rate() {
        let p = compute_peak(2, 20_000_000, 3);
        assert!(p.best_gflop_s.is_finite() && p.best_gflop_s > 0.0, "{p:?}");
        assert!(p.median_gflop_s <= p.best_gflop_s);
        assert_eq!(p.threads, 2);
        // Whole passes of 2 × 96 FLOPs, every thread.
        assert_eq!(p.flops_per_repetition, 2 * (20_000_000 / 192) * 192);
        assert!(!p.target_features.is_empty());
        let single = p
            .single_thread_gflop_s
            .expect("two threads: one timed alone");
        assert!(single.is_finite() && single > 0.0, "{p:?}");
        assert_eq!(compute_peak(1, 1_000_000, 1).single_thread_gflop_s, None);
    }

    #[test]
    fn a_probe_whose_threads_did_not_scale_is_flagged() {
        let probe = |best: f64, single: Option<f64>| ComputePeakProbe {
            method: String::new(),
            threads: 2,
            target_features: String::new(),
            flops_per_repetition: 1,
            repetitions: 1,
            best_gflop_s: best,
            median_gflop_s: best,
            single_thread_gflop_s: single,
        };
        // Two threads at 1.9x one: fine. At 1.0x (one core's worth): flagged.
        assert_eq!(compute_peak_note(&probe(180.0, Some(95.0))), None);
        let note = compute_peak_note(&probe(95.0, Some(95.0))).unwrap();
        assert!(note.contains("only 1.00x"), "{note}");
        assert_eq!(compute_peak_note(&probe(95.0, None)), None);
    }

    #[test]
    fn the_fma_chains_converge_and_stay_finite() {
        // x = 0.999 x + 0.001 tends to 1 from every start: every lane near 1.
        let sum = fma_chains(100_000, 0.999, 0.001);
        let lanes = (PEAK_CHAINS * PEAK_LANES) as f32;
        // f32 rounding leaves each lane within 1e-4 of its fixed point.
        assert!((sum - lanes).abs() < 1e-4 * lanes, "{sum}");
        // One pass from the starts 0..11: each lane moves to 0.999 c + 0.001.
        let one = fma_chains(1, 0.999, 0.001);
        let expected: f32 = (0..PEAK_CHAINS)
            .map(|c| (c as f32).mul_add(0.999, 0.001) * PEAK_LANES as f32)
            .sum();
        assert!((one - expected).abs() < 1e-3, "{one} against {expected}");
    }

    #[test]
    fn the_probe_measures_a_positive_rate() {
        let p = stream_triad(2, 8 << 20, 3);
        assert!(p.best_gb_s.is_finite() && p.best_gb_s > 0.0, "{p:?}");
        assert!(p.median_gb_s <= p.best_gb_s);
        assert_eq!(p.array_bytes, 8 << 20);
    }
}
