//! `inferbench merge`: result files of the same settings as one.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use inferbench_harness::merge::{merge_http, merge_inproc};
use inferbench_harness::schema::{AnyResult, ResultWriter};

use crate::cli::MergeArgs;
use crate::terminal;

pub fn run(args: MergeArgs) -> Result<ExitCode> {
    let mut inproc = Vec::new();
    let mut http = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        match AnyResult::read(path)? {
            AnyResult::Inproc(r) => inproc.push((name, *r)),
            AnyResult::Http(r) => http.push((name, *r)),
        }
    }
    if !inproc.is_empty() && !http.is_empty() {
        bail!(
            "{} is an in-process result and {} a served one: merge files of one mode",
            inproc[0].0,
            http[0].0
        );
    }
    let writer = ResultWriter::new(&args.out);
    let table = if http.is_empty() {
        let mut merged = merge_inproc(&inproc)?;
        merged.judge();
        writer
            .write(&merged)
            .with_context(|| format!("--out {}", args.out.display()))?;
        terminal::inproc_table(&merged)
    } else {
        let mut merged = merge_http(&http)?;
        merged.judge();
        writer
            .write(&merged)
            .with_context(|| format!("--out {}", args.out.display()))?;
        terminal::http_table(&merged)
    };
    print!("{}", table.markdown());
    for line in &table.footer {
        println!("{line}");
    }
    terminal::print_result_path(&args.out, false);
    Ok(ExitCode::SUCCESS)
}
