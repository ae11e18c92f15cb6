//! What the engines (`inferbench-ffi`) and the runners (`inferbench-harness`)
//! share, and nothing else: the engine trait and its timings, statistics,
//! the metric definitions and the result schema. It knows no HTTP, so that
//! an HTTP change does not rebuild the engine crate.
#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod early_stopping;
pub mod engine;
pub mod fma;
pub mod gpu;
pub mod intervals;
pub mod kernels;
pub mod metrics;
pub mod quantile;
pub mod schema;
pub mod significance;
pub mod spec;
pub mod stats;
pub mod workload;
