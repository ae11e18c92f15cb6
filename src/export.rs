//! `inferbench export`: in-process result files as llama.cpp's
//! `llama-bench` rows (the rows `inproc --llama-bench-out` writes).

use std::process::ExitCode;

use anyhow::{Context, Result};
use inferbench_harness::llama_bench_export::{self, BuildLabel};
use inferbench_harness::schema::AnyResult;

use crate::cli::{usage, ExportArgs};

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let mut rows = Vec::new();
    let mut left_out = Vec::new();
    for path in &args.files {
        let AnyResult::Inproc(result) = AnyResult::read(path)? else {
            return Err(usage(format!(
                "{}: a served result; llama-bench rows come from in-process points",
                path.display()
            )));
        };
        let build = match &args.llama_bench_commit {
            Some(commit) => BuildLabel {
                commit: commit.clone(),
                number: 0,
            },
            None => BuildLabel::for_tool_commit(result.provenance.tool.git_commit.as_deref()),
        };
        let export = llama_bench_export::rows(&result, &build);
        left_out.extend(
            export
                .left_out
                .iter()
                .map(|why| format!("{}: {why}", path.display())),
        );
        rows.extend(export.rows);
    }
    if rows.is_empty() {
        return Err(usage(format!(
            "no point has a llama-bench row ({})",
            left_out.join("; ")
        )));
    }
    llama_bench_export::write(&args.llama_bench_out, &rows).context("--llama-bench-out")?;
    eprintln!(
        "llama-bench rows: {} in {}",
        rows.len(),
        args.llama_bench_out.display()
    );
    for why in &left_out {
        eprintln!("  no row for {why}");
    }
    Ok(ExitCode::SUCCESS)
}
