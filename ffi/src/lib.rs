//! Everything that calls into C: llama.cpp through `llama-cpp-2` (and, where
//! the safe crate has no wrapper, `llama-cpp-sys-2`). Each `unsafe` block
//! says why it holds; everything exported is safe.

pub mod bandwidth;
pub mod clock;
pub mod cuda;
pub mod cupti;
pub mod greedy;
pub mod llama;
pub mod nvml;
pub mod simd;

pub use llama::{
    ContextParams, EngineError, GreedySampler, LlamaEngine, LlamaOptions, LoadedModel, Runtime,
};
