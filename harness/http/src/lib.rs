//! The HTTP mode: any OpenAI-compatible server, measured at the client over
//! streaming SSE, with the same metric definitions as the in-process mode
//! ([`crate::metrics`]): the streaming client and the `GET`s around it, load
//! generation, arrival schedules, workloads and traces, the server's
//! Prometheus metrics. A crate of its own (tokio, hyper, rustls,
//! tokenizers), so that the in-process side builds without any of it; the
//! harness re-exports it as `inferbench_harness::http`.

#![forbid(unsafe_code)]

pub use inferbench_core::{engine, metrics, quantile, schema, significance, stats};

pub mod arrival;
pub mod chunk;
pub mod client;
pub mod fd_limit;
pub mod load;
pub mod point;
pub mod record;
pub mod runtime;
pub mod server_metrics;
pub mod sse;
pub mod timeline;
pub mod tokenizer;
pub mod trace;
pub mod workload;
