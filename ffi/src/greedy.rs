//! Greedy sampling read straight from llama.cpp's logits rows.
//!
//! llama.cpp's own greedy sampler first copies the whole vocabulary into a
//! candidate array, then takes the maximum. With Gemma 3's 262,144-entry
//! vocabulary that took about 1 ms per sequence per step on an H100 machine's
//! host. At batch 64 that was ten times the GPU's decode step (60 ms against
//! 6 ms), so the batch curve measured the sampler, not the engine. Reading
//! each row in place, and spreading the rows over threads, keeps sampling a
//! small and separately reported share of each step.

use rayon::prelude::*;

/// Rows holding fewer logits than this, in all, are scanned on the calling
/// thread: waking pool threads costs about what scanning them takes.
const MIN_LOGITS_FOR_POOL: usize = 1 << 19;

/// Lanes scanned side by side: independent running maxima let the compiler
/// use vector max instructions. 16 fills two AVX registers.
const LANES: usize = 16;

/// Index of the largest logit; the first of equal ones, as llama.cpp's
/// greedy sampler picks. NaNs are never picked; a row without a number
/// greater than minus infinity gives its first minus infinity, or 0.
pub fn argmax(row: &[f32]) -> usize {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (best, &x) in lanes.iter_mut().zip(chunk) {
            // `x > best` is false for NaN, so a NaN never becomes the maximum.
            if x > *best {
                *best = x;
            }
        }
    }
    let max = lanes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    row.iter().position(|&x| x == max).unwrap_or(0)
}

/// `argmax` of every row into `out` (one entry per row), on `pool` when the
/// rows hold enough logits to pay for waking it. Rows are tasks the pool's
/// threads steal from each other: on a shared host one descheduled thread
/// then delays only the rows it holds, not a fixed share of the batch.
pub fn argmax_rows(rows: &[&[f32]], pool: Option<&rayon::ThreadPool>, out: &mut [usize]) {
    assert_eq!(rows.len(), out.len(), "one output per row");
    let logits: usize = rows.iter().map(|row| row.len()).sum();
    match pool {
        Some(pool) if rows.len() > 1 && logits >= MIN_LOGITS_FOR_POOL => pool.install(|| {
            out.par_iter_mut()
                .zip(rows.par_iter())
                .for_each(|(slot, row)| *slot = argmax(row));
        }),
        _ => {
            for (slot, row) in out.iter_mut().zip(rows) {
                *slot = argmax(row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition llama.cpp's greedy sampler implements.
    fn first_strictly_greatest(row: &[f32]) -> usize {
        let mut selected = 0;
        for (i, &x) in row.iter().enumerate().skip(1) {
            if x > row[selected] {
                selected = i;
            }
        }
        selected
    }

    /// Deterministic pseudo-random logits (xorshift), with repeated values.
    fn logits(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Coarse steps make ties between lanes common.
                ((state % 2001) as f32 - 1000.0) / 8.0
            })
            .collect()
    }

    #[test]
    fn agrees_with_llama_cpp_greedy_on_every_length_and_position() {
        for len in [1, 2, 15, 16, 17, 31, 33, 1000, 262_144] {
            for seed in 1..6 {
                let row = logits(len, seed);
                assert_eq!(
                    argmax(&row),
                    first_strictly_greatest(&row),
                    "len {len} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn first_of_equal_maxima_wins_even_in_a_later_lane_or_the_tail() {
        let mut row = vec![0.0f32; 40];
        row[37] = 5.0; // in the tail
        row[3] = 5.0; // lane 3, first chunk
        row[18] = 5.0; // lane 2, second chunk
        assert_eq!(argmax(&row), 3);
        row[3] = 4.0;
        assert_eq!(argmax(&row), 18);
        row[18] = 0.0;
        assert_eq!(argmax(&row), 37);
    }

    #[test]
    fn nan_and_infinities() {
        assert_eq!(argmax(&[f32::NAN, 1.0, f32::NAN, 2.0, f32::NAN]), 3);
        assert_eq!(argmax(&[1.0, f32::INFINITY, 3.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 20]), 0);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn rows_give_the_same_tokens_on_one_thread_or_many() {
        let data: Vec<Vec<f32>> = (0..37).map(|seed| logits(50_000, seed + 1)).collect();
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let expected: Vec<usize> = rows
            .iter()
            .map(|row| first_strictly_greatest(row))
            .collect();
        let mut out = vec![usize::MAX; rows.len()];
        argmax_rows(&rows, None, &mut out);
        assert_eq!(out, expected, "on the calling thread");
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![usize::MAX; rows.len()];
            argmax_rows(&rows, Some(&pool), &mut out);
            assert_eq!(out, expected, "{threads} threads");
        }
    }
}
