//! Specs as commands: `run SPEC.toml`, `rerun RESULT.json`, `spec
//! RESULT.json` and `schema [NAME]`, and the one place that runs any spec.

use std::process::ExitCode;

use anyhow::Result;
use inferbench_core::spec::{Spec, SpecFileError};

use crate::cli::{usage, Outputs, RerunArgs, RunArgs, SchemaArgs, SchemaName, SpecArgs};
use crate::{contrast, http, inproc, rounds};

/// Runs any command's spec, writing where `outputs` says.
pub fn run(spec: Spec, outputs: &Outputs) -> Result<ExitCode> {
    check_outputs(&spec, outputs)?;
    match spec {
        Spec::Inproc(s) => Ok(inproc::sweep(&s, outputs, 0)?.exit),
        Spec::Http(s) => http::run_spec(&s, outputs),
        Spec::Rounds(s) => rounds::run(&s, outputs),
        Spec::Contrast(s) => contrast::run_spec(&s, outputs),
    }
}

/// Refuses an output the spec's command does not write, rather than
/// silently writing nothing.
fn check_outputs(spec: &Spec, outputs: &Outputs) -> Result<()> {
    let http_only = [
        ("--requests-log", outputs.requests_log.is_some()),
        ("--export-vllm", outputs.export_vllm.is_some()),
        ("--resume", outputs.resume.is_some()),
    ];
    let served = matches!(spec, Spec::Http(_) | Spec::Rounds(_));
    for (flag, given) in http_only {
        if given && !served {
            return Err(usage(format!(
                "{flag}: a {} spec sends no HTTP requests of its own to log",
                spec.command()
            )));
        }
    }
    if outputs.csv.is_some() && matches!(spec, Spec::Rounds(_) | Spec::Contrast(_)) {
        return Err(usage(format!(
            "--csv: a {} spec writes each run's own file beside --out, not one CSV",
            spec.command()
        )));
    }
    Ok(())
}

/// A spec file's error: bad input (exit 2), unless the file could not be read.
fn spec_file_error(e: SpecFileError) -> anyhow::Error {
    match e {
        SpecFileError::Io { .. } => e.into(),
        other => usage(other.to_string()),
    }
}

/// `inferbench run SPEC.toml`.
pub fn run_file(args: RunArgs) -> Result<ExitCode> {
    let spec = Spec::read(&args.spec).map_err(spec_file_error)?;
    run(spec, &args.outputs())
}

/// `inferbench rerun RESULT.json`: the recorded spec again, into a new file
/// unless `--out` names one. An http spec without a prompt seed draws new
/// prompts, so that the rerun does not meet the first run's in a cache.
pub fn rerun(args: RerunArgs) -> Result<ExitCode> {
    let spec = Spec::from_result_file(&args.result).map_err(spec_file_error)?;
    eprintln!(
        "rerunning the {} spec of {}",
        spec.command(),
        args.result.display()
    );
    run(spec, &args.outputs())
}

/// `inferbench spec RESULT.json`: the recorded spec, as TOML (or JSON).
pub fn print(args: SpecArgs) -> Result<ExitCode> {
    let spec = Spec::from_result_file(&args.result).map_err(spec_file_error)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&spec)?);
    } else {
        print!("{}", spec.to_toml());
    }
    Ok(ExitCode::SUCCESS)
}

/// The schema of a file, generated from the types (the repository commits
/// the same text under `schema/`; a test fails on drift).
pub fn schema_text(name: SchemaName) -> String {
    inferbench_harness::schema::files::text(&name.generate())
}

/// `inferbench schema [NAME]`.
pub fn schema(args: SchemaArgs) -> Result<ExitCode> {
    match args.name {
        Some(name) => print!("{}", schema_text(name)),
        None => {
            use clap::ValueEnum;
            for name in SchemaName::value_variants() {
                if let Some(v) = name.to_possible_value() {
                    println!(
                        "{:13} {}",
                        v.get_name(),
                        v.get_help().map(|h| h.to_string()).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
