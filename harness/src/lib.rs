//! Engine-agnostic measurement. Runners drive anything that implements
//! [`engine::Engine`]. The engine trait, statistics, metric definitions and
//! the result schema live in `inferbench-core` (re-exported here) and know
//! nothing of llama.cpp nor of HTTP.
#![forbid(unsafe_code)]

pub use inferbench_core::{
    engine, fma, gpu, intervals, kernels, metrics, quantile, schema, significance, stats, workload,
};
/// The HTTP mode, a crate of its own.
pub use inferbench_http as http;

pub mod compare;
pub mod contrast;
pub mod fake;
pub mod host;
pub mod inproc;
pub mod knee;
pub mod llama_bench_export;
pub mod merge;
pub mod plan;
pub mod precision;
pub mod roofline;
pub mod rounds;
pub mod served;
pub mod telemetry;
pub mod vllm_export;

/// What an observer's save returns when the result could not be written.
pub type SaveError = Box<dyn std::error::Error + Send + Sync>;
