//! The compute probe's multiply-add kernels in the CPU's own vector
//! instructions, chosen at run time.
//!
//! Plain Rust over arrays gave LLVM too much freedom: with AVX-512 it
//! vectorized across the chains with gathers through the stack (the probe
//! read 1.9 GFLOP/s on a 2-core EPYC), and with AVX2 it kept one scalar per
//! chain and spilled the rest (3.9 GFLOP/s on a 2-core EPYC without
//! AVX-512). Intrinsics leave it none: twelve `vfmadd213ps` on twelve
//! registers a pass, nothing else in the loop (checked in the assembly).

use inferbench_core::fma::FmaKernel;

/// Chains per kernel: FMA latency is 4 cycles and two units issue one each
/// a cycle, so 8 in flight keep them busy; 12 leave room and, with the two
/// constants, fit AVX2's 16 registers.
const CHAINS: usize = 12;

/// The widest kernel this CPU runs, or `None` where there is none here (the
/// caller then times the portable one).
pub fn fma_kernel() -> Option<FmaKernel> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some(FmaKernel {
                name: "avx512f",
                lanes: 16,
                chains: CHAINS,
                run: x86::avx512,
            });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(FmaKernel {
                name: "avx2+fma",
                lanes: 8,
                chains: CHAINS,
                run: x86::avx2,
            });
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256, __m512, _mm256_cvtss_f32, _mm256_fmadd_ps, _mm256_set1_ps, _mm512_fmadd_ps,
        _mm512_reduce_add_ps, _mm512_set1_ps,
    };

    use super::CHAINS;

    /// The AVX2 kernel, handed out only where the CPU has AVX2 and FMA.
    pub(super) fn avx2(passes: u64, m: f32, a: f32) -> f32 {
        // SAFETY: `fma_kernel` hands this function out only after
        // `is_x86_feature_detected!` found AVX2 and FMA on this CPU, which
        // is all `chains_avx2` requires.
        unsafe { chains_avx2(passes, m, a) }
    }

    /// The AVX-512 kernel, handed out only where the CPU has AVX-512F.
    pub(super) fn avx512(passes: u64, m: f32, a: f32) -> f32 {
        // SAFETY: `fma_kernel` hands this function out only after
        // `is_x86_feature_detected!` found AVX-512F on this CPU.
        unsafe { chains_avx512(passes, m, a) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn chains_avx2(passes: u64, m: f32, a: f32) -> f32 {
        let (m, a) = (_mm256_set1_ps(m), _mm256_set1_ps(a));
        let mut chains: [__m256; CHAINS] = std::array::from_fn(|i| _mm256_set1_ps(i as f32));
        for _ in 0..passes {
            for x in &mut chains {
                *x = _mm256_fmadd_ps(*x, m, a);
            }
        }
        chains.iter().map(|&x| _mm256_cvtss_f32(x)).sum()
    }

    #[target_feature(enable = "avx512f")]
    fn chains_avx512(passes: u64, m: f32, a: f32) -> f32 {
        let (m, a) = (_mm512_set1_ps(m), _mm512_set1_ps(a));
        let mut chains: [__m512; CHAINS] = std::array::from_fn(|i| _mm512_set1_ps(i as f32));
        for _ in 0..passes {
            for x in &mut chains {
                *x = _mm512_fmadd_ps(*x, m, a);
            }
        }
        chains.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every lane of chain i starts at i and converges to a / (1 − m): the
    /// kernel computes what it claims, whichever this CPU runs.
    #[test]
    fn the_kernel_converges_where_the_arithmetic_says() {
        let Some(kernel) = fma_kernel() else {
            eprintln!("no vector kernel on this CPU: the portable one is timed");
            return;
        };
        assert_eq!(kernel.chains, CHAINS);
        assert_eq!(kernel.flops_per_pass(), 2 * (CHAINS * kernel.lanes) as u64);
        // One pass: Σ over chains of (i·m + a), per lane read.
        let lanes_read = if kernel.name == "avx512f" { 16.0 } else { 1.0 };
        let one = (kernel.run)(1, 0.5, 1.0);
        let expected: f32 = (0..CHAINS).map(|i| i as f32 * 0.5 + 1.0).sum::<f32>() * lanes_read;
        assert!((one - expected).abs() < 1e-3, "{one} vs {expected}");
        // Many passes: every lane at a / (1 − m) = 2.
        let many = (kernel.run)(10_000, 0.5, 1.0);
        assert!(
            (many - 2.0 * CHAINS as f32 * lanes_read).abs() < 1e-3,
            "{many}"
        );
    }
}
