//! One integration test binary: every test runs the real `inferbench`
//! binary (real llama.cpp, real GGUF files) and checks what a user or a
//! script would see: exit codes, messages, files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod bad_input;
mod campaign;
mod compare;
mod contrast;
mod dist;
mod exit_paths;
mod faults;
mod http;
mod inproc;
mod interrupt;
mod llama_bench;
mod model;
mod real_servers;
mod report;
mod shards;
mod specs;
mod util;
mod workloads;
