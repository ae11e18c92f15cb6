//! Engine-agnostic measurement. Runners drive anything that implements
//! [`engine::Engine`]; statistics and result types know nothing of llama.cpp.
#![forbid(unsafe_code)]

pub mod compare;
pub mod contrast;
pub mod engine;
pub mod fake;
pub mod host;
pub mod http;
pub mod inproc;
pub mod knee;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod result;
pub mod roofline;
pub mod rounds;
pub mod significance;
pub mod stats;
pub mod telemetry;
pub mod vllm_export;
pub mod workload;
