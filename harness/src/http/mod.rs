//! The HTTP mode: any OpenAI-compatible server, measured at the client over
//! streaming SSE, with the same metric definitions as the in-process mode
//! ([`crate::metrics`]).

pub mod arrival;
pub mod chunk;
pub mod client;
pub mod fd_limit;
pub mod load;
#[cfg(feature = "mock")]
pub mod mock;
pub mod point;
pub mod runtime;
pub mod server_metrics;
pub mod sse;
pub mod timeline;
pub mod tokenizer;
pub mod trace;
pub mod workload;
