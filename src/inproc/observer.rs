//! The terminal's view of a grid (its header, a row for each point, a
//! progress bar over every run) and the files it writes: the result, its
//! CSV and `--llama-bench-out`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use inferbench_harness::inproc::grid::{GridFinished, GridObserver};
use inferbench_harness::llama_bench_export::{self, BuildLabel};
use inferbench_harness::schema::{InprocPoint, InprocResult, ResultWriter, RunStatus};
use inferbench_harness::SaveError;

use super::Sweep;
use crate::cli::Outputs;
use crate::terminal;

pub(super) struct TerminalObserver {
    out_path: PathBuf,
    writer: ResultWriter,
    csv: Option<PathBuf>,
    /// `--llama-bench-out` and `--llama-bench-commit`.
    llama_bench: Option<(PathBuf, Option<String>)>,
    /// Made on the first save: a run refused before it has no file.
    parent_dir_made: bool,
    bar: Option<ProgressBar>,
}

impl TerminalObserver {
    pub(super) fn new(out_path: &Path, outputs: &Outputs) -> TerminalObserver {
        TerminalObserver {
            out_path: out_path.to_path_buf(),
            writer: ResultWriter::new(out_path),
            csv: outputs.csv.clone(),
            llama_bench: outputs
                .llama_bench_out
                .clone()
                .map(|path| (path, outputs.llama_bench_commit.clone())),
            parent_dir_made: false,
            bar: None,
        }
    }

    /// Prints `line` without tearing the progress bar.
    fn print(&self, line: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(line),
            None => line(),
        }
    }

    fn save_files(&mut self, result: &mut InprocResult, whole: bool) -> Result<()> {
        if !self.parent_dir_made {
            terminal::make_parent_dir("--out", &self.out_path)?;
            self.parent_dir_made = true;
        }
        // A failed run's CSV may be what failed: its JSON alone is saved.
        let csv = self
            .csv
            .as_deref()
            .filter(|_| whole && result.status != RunStatus::Failed);
        terminal::save_result(&self.writer, result, csv, crate::points_table::write_csv)?;
        if whole && result.status != RunStatus::Failed {
            self.write_llama_bench(result)?;
        }
        Ok(())
    }

    /// Writes `--llama-bench-out` with the points measured so far, its rows
    /// naming `--llama-bench-commit`, else the harness's own commit, told
    /// apart from llama-bench's.
    fn write_llama_bench(
        &self,
        result: &InprocResult,
    ) -> Result<Option<(&Path, llama_bench_export::Export)>> {
        let Some((path, commit)) = &self.llama_bench else {
            return Ok(None);
        };
        let build = match commit {
            Some(commit) => BuildLabel {
                commit: commit.clone(),
                number: 0,
            },
            None => BuildLabel::for_tool_commit(result.provenance.tool.git_commit.as_deref()),
        };
        let export = llama_bench_export::rows(result, &build);
        llama_bench_export::write(path, &export.rows).context("--llama-bench-out")?;
        Ok(Some((path, export)))
    }

    /// The verdict, the file and the llama-bench rows on the terminal, and
    /// the exit code: a failure (after its file was saved) is an error.
    pub(super) fn finish(self, finished: GridFinished) -> Result<Sweep> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let mut failure = finished.failure().map(str::to_string);
        let GridFinished {
            result,
            interrupted,
        } = finished;
        terminal::print_run_verdict(&result);
        terminal::print_result_path(&self.out_path, result.partial);
        // The rows of what was measured, a failed run's too.
        match self.write_llama_bench(&result) {
            Ok(Some((path, export))) => {
                eprintln!(
                    "llama-bench rows: {} in {}",
                    export.rows.len(),
                    path.display()
                );
                for left_out in &export.left_out {
                    eprintln!("  no row for {left_out}");
                }
            }
            Ok(None) => {}
            Err(e) => {
                failure.get_or_insert(format!("{e:#}"));
            }
        }
        if let Some(f) = failure {
            bail!("{f}");
        }
        let exit = if interrupted {
            ExitCode::from(crate::exit::INTERRUPTED)
        } else {
            ExitCode::SUCCESS
        };
        Ok(Sweep { result, exit })
    }
}

impl GridObserver for TerminalObserver {
    fn warning(&mut self, message: &str) {
        self.print(|| eprintln!("warning: {message}"));
    }

    fn started(&mut self, result: &InprocResult, varying: &[&'static str], runs: u64) {
        terminal::print_header(&result.provenance, varying);
        self.bar = Some(crate::progress::bar(runs, "runs"));
    }

    fn point_started(&mut self, label: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(label.to_string());
        }
    }

    fn run_done(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn point_extended(&mut self, more: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(more);
        }
    }

    fn point_ended(&mut self, point: &InprocPoint, varying: &[&'static str]) {
        self.print(|| terminal::print_row(point, varying));
    }

    fn save(&mut self, result: &mut InprocResult, whole: bool) -> Result<(), SaveError> {
        self.save_files(result, whole).map_err(Into::into)
    }
}
