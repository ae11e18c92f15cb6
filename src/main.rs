//! The `inferbench` command: measures LLM inference in-process (llama.cpp
//! linked in, `inproc`) and served (any OpenAI-compatible server, `http`),
//! sets them side by side (`compare`, `contrast`), merges result files
//! (`merge`), plans replicas from a sweep (`plan`), draws results (`report`)
//! and writes or inspects GGUF models (`model`). Bad flags exit 2, other
//! errors 1, a run stopped by Ctrl-C [`exit::INTERRUPTED`].
#![forbid(unsafe_code)]

mod campaign;
mod campaign_db;
mod cli;
mod compare;
mod contrast;
mod exit;
mod export;
mod http;
mod inproc;
mod interrupt;
mod merge;
mod model;
mod plan;
mod points_table;
mod progress;
mod provenance;
mod report;
mod result_files;
mod rounds;
mod server;
mod specs;
mod table;
mod tables;
mod telemetry;
mod terminal;

use std::process::ExitCode;

use clap::Parser;
use inferbench_core::spec::Spec;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Inproc(args) => args
            .spec()
            .map_err(Into::into)
            .and_then(|spec| specs::run(Spec::Inproc(spec), &args.outputs())),
        cli::Command::Http(args) => args
            .spec()
            .map_err(Into::into)
            .and_then(|spec| specs::run(spec, &args.outputs())),
        cli::Command::Compare(args) => compare::run(args),
        cli::Command::Contrast(args) => args
            .spec()
            .map_err(Into::into)
            .and_then(|spec| specs::run(Spec::Contrast(spec), &args.outputs())),
        cli::Command::Report(args) => report::run(args),
        cli::Command::Merge(args) => merge::run(args),
        cli::Command::Export(args) => export::run(args),
        cli::Command::Plan(args) => plan::run(args),
        cli::Command::Model(cmd) => model::run(cmd),
        cli::Command::Run(args) => specs::run_file(args),
        cli::Command::Rerun(args) => specs::rerun(args),
        cli::Command::Spec(args) => specs::print(args),
        cli::Command::Schema(args) => specs::schema(args),
        cli::Command::Campaign(cmd) => campaign::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("error: {err:#}");
            // Bad flags exit 2, as clap's own errors do; other errors 1.
            if err.chain().any(|e| e.is::<cli::UsageError>()) {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
