//! `http --url A --url B --rounds R`: the targets take turns, each round on
//! fresh prompts and the same prompts for every target; one file holds
//! every run and the summary. The library runs the rounds
//! ([`inferbench_harness::served::rounds`]); each sweep is written beside
//! the rounds file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use inferbench_harness::rounds::RoundsResult;
use inferbench_harness::schema::{HttpResult, ResultWriter};
use inferbench_harness::served::rounds::{run_rounds, RoundsDriver, RoundsError};
use inferbench_harness::served::SaveError;

use inferbench_core::spec::{HttpSpec, RoundsSpec};

use crate::cli::Outputs;
use crate::{http, interrupt, provenance, terminal};

/// `FILE.json` → `FILE.<suffix>.json`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "rounds".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.{suffix}.json"))
}

/// Each round's sweep run as `http` runs one, its files beside the
/// rounds file; the worst exit status kept.
struct FileDriver<'a> {
    out: &'a Path,
    outputs: &'a Outputs,
    tokens: Option<http::TokenPrompts>,
    writer: ResultWriter,
    rounds: u32,
    worst_exit: ExitCode,
}

impl RoundsDriver for FileDriver<'_> {
    type Error = anyhow::Error;

    fn round_started(&mut self, round: u32, target: usize, url: &str) {
        eprintln!(
            "round {} of {}, target {}: {url}",
            round + 1,
            self.rounds,
            target + 1
        );
    }

    fn warning(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn file_of(&self, round: u32, target: usize) -> String {
        beside(self.out, &format!("r{round}.t{target}"))
            .display()
            .to_string()
    }

    fn sweep(&mut self, round: u32, target: usize, spec: &HttpSpec) -> Result<HttpResult> {
        let suffix = format!("r{round}.t{target}");
        let outputs = Outputs {
            out: Some(beside(self.out, &suffix)),
            requests_log: self
                .outputs
                .requests_log
                .as_ref()
                .map(|p| beside(p, &suffix)),
            ..self.outputs.clone()
        };
        let sweep = http::sweep(spec, &outputs, self.tokens.clone())?;
        if sweep.exit != ExitCode::SUCCESS {
            self.worst_exit = sweep.exit;
        }
        Ok(sweep.result)
    }

    fn save(&mut self, result: &mut RoundsResult) -> Result<(), SaveError> {
        result.updated_at = provenance::now_rfc3339();
        self.writer.write(result).map_err(Into::into)
    }
}

pub fn run(spec: &RoundsSpec, outputs: &Outputs) -> Result<ExitCode> {
    let out = outputs
        .out
        .clone()
        .unwrap_or_else(|| terminal::default_result_path("rounds"));
    terminal::make_parent_dir("--out", &out)?;
    let tokens = match &spec.http.token_ids_from {
        Some(path) => Some(http::token_prompts(path)?),
        None => None,
    };
    let base_seed = spec.http.prompt_seed.unwrap_or_else(http::rand_seed);
    let mut driver = FileDriver {
        out: &out,
        outputs,
        tokens,
        writer: ResultWriter::new(&out),
        rounds: spec.rounds,
        worst_exit: ExitCode::SUCCESS,
    };
    let flag = interrupt::flag();
    let result = match run_rounds(spec, base_seed, &flag, &mut driver) {
        Ok(result) => result,
        Err(RoundsError::Sweep { round, url, error }) => {
            terminal::print_result_path(&out, true);
            return Err(error.context(format!("round {round}, {url}")));
        }
        Err(e) => return Err(e.into()),
    };
    for t in crate::tables::rounds_summary(&result) {
        println!("\n{}", t.title);
        print!("{}", t.markdown());
    }
    terminal::print_result_path(&out, result.partial);
    Ok(
        if result.status == inferbench_harness::schema::RunStatus::Interrupted {
            ExitCode::from(crate::exit::INTERRUPTED)
        } else {
            driver.worst_exit
        },
    )
}
