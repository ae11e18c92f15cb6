//! The `inferbench` command: measures LLM inference in-process (llama.cpp
//! linked in, `inproc`) and served (any OpenAI-compatible server, `http`),
//! sets them side by side (`compare`, `contrast`), merges result files
//! (`merge`), plans replicas from a sweep (`plan`), draws results (`report`)
//! and writes or inspects GGUF models (`model`). Bad flags exit 2, other
//! errors 1, a run stopped by Ctrl-C [`EXIT_INTERRUPTED`].
#![forbid(unsafe_code)]

mod cli;
mod compare;
mod contrast;
mod http;
mod inproc;
mod interrupt;
mod merge;
mod model;
mod plan;
mod progress;
mod provenance;
mod report;
mod rounds;
mod server;
mod table;
mod telemetry;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT), its partial result saved.
pub const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Inproc(args) => inproc::run(args),
        cli::Command::Http(args) => http::run(*args),
        cli::Command::Compare(args) => compare::run(args),
        cli::Command::Contrast(args) => contrast::run(args),
        cli::Command::Report(args) => report::run(args),
        cli::Command::Merge(args) => merge::run(args),
        cli::Command::Plan(args) => plan::run(args),
        cli::Command::Model(cmd) => model::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("error: {err:#}");
            // Bad flags exit 2, as clap's own errors do; other errors 1.
            if err.chain().any(|e| e.is::<cli::UsageError>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
