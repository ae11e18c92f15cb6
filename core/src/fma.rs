//! The compute probe's kernel, as the crate that has it hands it to the one
//! that times it: `inferbench-ffi` holds kernels in the CPU's own vector
//! instructions (only a crate allowed raw calls may call them, after its
//! check of the CPU), `inferbench-harness` a portable one and the timing.

/// A kernel of independent multiply-add chains held in vector registers.
#[derive(Debug, Clone, Copy)]
pub struct FmaKernel {
    /// What it runs on, e.g. "avx2+fma" or "avx512f" (as detected at run
    /// time), or "portable" (what the compiler made of plain code).
    pub name: &'static str,
    /// f32 lanes of one chain (one vector register).
    pub lanes: usize,
    /// Independent chains.
    pub chains: usize,
    /// `passes` times, every lane x of every chain becomes x·m + a; returns
    /// a value that depends on every chain, so that none is optimized out.
    pub run: fn(passes: u64, m: f32, a: f32) -> f32,
}

impl FmaKernel {
    /// FLOPs of one pass: two per lane of every chain.
    pub fn flops_per_pass(&self) -> u64 {
        2 * (self.chains * self.lanes) as u64
    }
}
