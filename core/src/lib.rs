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

/// An error and its causes on one line, `: `-joined, each cause once: a
/// cause whose text an earlier part already holds (a wrapper that repeats
/// its source, as hyper's and anyhow's contexts may) is left out.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}
