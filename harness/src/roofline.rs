//! How close a decode step comes to the memory-bandwidth limit. A decode
//! step must read every weight once and the KV cache of every sequence, so
//! bytes read / step time is the bandwidth it achieved, and the machine's
//! measured bandwidth is its ceiling: the ratio says how much faster the
//! step could be at best, whatever the kernels.

use std::time::Instant;

use crate::schema::roofline::{BandwidthProbe, Roofline};

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
    bandwidth_gb_s: Option<f64>,
) -> Roofline {
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
        fraction_of_bandwidth: bandwidth_gb_s
            .filter(|b| *b > 0.0)
            .map(|b| achieved_gb_s / b),
    }
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

    #[test]
    fn bytes_per_step_count_weights_once_and_the_kv_at_the_mean_context() {
        // 100 MB of weights, 1 KiB per cell, 4 sequences at 128 + 64/2.
        let r = decode_roofline(100_000_000, 1024, 4, 128, 64, 10.0, Some(20.0));
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
    fn the_probe_measures_a_positive_rate() {
        let p = stream_triad(2, 8 << 20, 3);
        assert!(p.best_gb_s.is_finite() && p.best_gb_s > 0.0, "{p:?}");
        assert!(p.median_gb_s <= p.best_gb_s);
        assert_eq!(p.array_bytes, 8 << 20);
    }
}
