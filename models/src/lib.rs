//! GGUF files: inspection and validation before anything reaches llama.cpp
//! (which may abort the process on a malformed file), and the deterministic
//! tiny model that every command defaults to.
#![forbid(unsafe_code)]

pub mod gguf;
pub mod tiny;

pub use gguf::{GgmlType, GgufError, GgufFile, ModelSummary};
pub use tiny::{write_tiny_model, TinyModelError, TinySpec};
