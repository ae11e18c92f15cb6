//! `inferbench http`: an OpenAI-compatible server under closed- or open-loop
//! load, one point per concurrency or rate, the result file rewritten after
//! every point and every second during one, the requests log streamed. The
//! library runs the sweep ([`inferbench_harness::served`]); this module
//! reads what it needs from the environment and files, shows the run and
//! writes the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use inferbench_harness::http::point::RequestRecord;
use inferbench_harness::schema::{HttpResult, ResultWriter};
use inferbench_harness::served::{
    self, ConnectInputs, Finished, Ready, Resume, SaveError, SearchReport, ServedError,
    StartInputs, SweepObserver,
};

use inferbench_core::spec::HttpSpec;

use crate::cli::{usage, Outputs};
use crate::progress::PointProgress;
use crate::telemetry::PointTelemetry;
use crate::{interrupt, provenance, terminal};

pub use inferbench_harness::served::{rand_seed, TokenPrompts};

/// Reads the vocabulary of `path` through llama.cpp (no weights), for
/// token-id prompts.
pub fn token_prompts(path: &Path) -> Result<TokenPrompts> {
    if !path.is_file() {
        bail!("--token-ids-from {}: no such file", path.display());
    }
    let runtime = inferbench_ffi::Runtime::get(true)?;
    let loaded = inferbench_ffi::LoadedModel::load_vocab(runtime, path)
        .with_context(|| format!("--token-ids-from {}", path.display()))?;
    Ok(TokenPrompts {
        vocab: loaded.prompt_vocab(),
        model: provenance::model_info(path, &loaded)?,
    })
}

/// What a finished sweep leaves: its result (also on disk) and the exit
/// status the `http` command would give.
pub struct Sweep {
    pub result: HttpResult,
    pub exit: ExitCode,
}

/// Runs one server's spec, its token-id prompts read first.
pub fn run_spec(spec: &HttpSpec, outputs: &Outputs) -> Result<ExitCode> {
    let tokens = match &spec.token_ids_from {
        Some(path) => Some(token_prompts(path)?),
        None => None,
    };
    Ok(sweep(spec, outputs, tokens)?.exit)
}

/// A library error as the binary reports it: a usage error exits 2.
fn reported(e: ServedError) -> anyhow::Error {
    match e {
        ServedError::Usage(message) => usage(message),
        e => anyhow::Error::new(e),
    }
}

/// The terminal's view of a sweep: rows, warnings and a progress bar; and
/// the result file (with its CSV) written on every save.
struct TerminalObserver {
    writer: ResultWriter,
    csv: Option<PathBuf>,
    with_server: bool,
    progress: Option<PointProgress>,
}

impl SweepObserver for TerminalObserver {
    fn warning(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn point_started(&mut self, label: &str, planned: Option<u64>) {
        self.progress = Some(PointProgress::new(label.to_string(), planned));
    }

    fn request_done(&mut self, record: &RequestRecord) {
        if let Some(p) = self.progress.as_mut() {
            p.record(record);
        }
    }

    fn point_extended(&mut self, more: u64) {
        if let Some(p) = self.progress.as_mut() {
            p.extend(more);
        }
    }

    fn point_ended(&mut self) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }

    fn point_kept(&mut self, point: &inferbench_harness::schema::HttpPoint, resumed: bool) {
        terminal::print_http_row(point, self.with_server);
        if resumed {
            println!("  (kept from the resumed file)");
        }
    }

    fn search_ended(&mut self, s: &SearchReport) {
        terminal::print_search(
            s.what,
            s.best.clone(),
            s.failing.clone(),
            s.probes,
            s.called_by_estimate,
        );
    }

    fn save(&mut self, result: &mut HttpResult, whole: bool) -> Result<(), SaveError> {
        if whole {
            return self.save_whole(result).map_err(Into::into);
        }
        terminal::save_result(
            &self.writer,
            result,
            None,
            crate::points_table::write_http_csv,
        )
        .map_err(Into::into)
    }
}

impl TerminalObserver {
    /// The result file and its CSV.
    fn save_whole(&self, result: &mut HttpResult) -> Result<()> {
        let csv = self.csv.as_deref();
        terminal::save_result(
            &self.writer,
            result,
            csv,
            crate::points_table::write_http_csv,
        )
    }
}

/// Runs every point of `spec` against the server, writing the result file
/// as it goes. Any error after the file was first written leaves it final,
/// `failed` with the error.
pub fn sweep(spec: &HttpSpec, outputs: &Outputs, tokens: Option<TokenPrompts>) -> Result<Sweep> {
    let resume = match &outputs.resume {
        Some(path) => Some((Resume::read(path).map_err(reported)?, path.clone())),
        None => None,
    };
    let api_key = std::env::var(&spec.api_key_env)
        .ok()
        .filter(|k| !k.is_empty());
    let out_path = outputs
        .out
        .clone()
        .or_else(|| outputs.resume.clone())
        .unwrap_or_else(|| terminal::default_result_path("http"));
    let mut observer = TerminalObserver {
        writer: ResultWriter::new(&out_path),
        csv: outputs.csv.clone(),
        with_server: spec.server_metrics.is_some(),
        progress: None,
    };
    let inputs = ConnectInputs {
        api_key,
        tokens,
        resumed_prompt_seed: resume.as_ref().and_then(|(r, _)| r.prompt_seed),
    };
    // The result's directory is made, and the requests log created, once the
    // server answered.
    let ready = Ready::connect(spec, inputs, &mut observer).map_err(reported)?;
    terminal::make_parent_dir("--out", &out_path)?;
    let ready = match &outputs.requests_log {
        Some(path) => ready.with_requests_log(path).map_err(reported)?,
        None => ready,
    };
    observer.with_server = ready.scrapes_metrics();

    let mut engine = served::client_engine_info(spec);
    let (telemetry, telemetry_note) = PointTelemetry::new(spec.telemetry, spec.gpu_telemetry);
    engine.notes.extend(telemetry_note);
    let prov = provenance::provenance(engine, ready.token_model().cloned());
    let mut sweep = ready
        .start(
            prov,
            StartInputs {
                resume,
                telemetry: Some(Box::new(telemetry)),
                export_vllm: outputs.export_vllm.clone(),
                interrupt: interrupt::flag(),
                clock: inferbench_ffi::clock::sync_state(),
            },
        )
        .map_err(reported)?;
    if let Err(e) = observer.save_whole(sweep.result_mut()) {
        return Err(terminal::save_failed(
            &observer.writer,
            sweep.result_mut(),
            e,
        ));
    }
    terminal::print_http_header(sweep.result());

    if let Err(e) = sweep.run(&mut observer) {
        observer.point_ended();
        let e = terminal::save_failed(&observer.writer, sweep.result_mut(), reported(e));
        terminal::print_result_path(&out_path, true);
        return Err(e);
    }
    let finished = sweep.finish(&mut observer).map_err(reported)?;
    Ok(ended(finished, &out_path))
}

/// The verdict and the file shown, and the exit status of a sweep that ran
/// to its end (or was interrupted).
fn ended(finished: Finished, out_path: &Path) -> Sweep {
    let Finished {
        result,
        interrupted,
        failed_requests,
        searched,
    } = finished;
    terminal::print_run_verdict(&result);
    terminal::print_result_path(out_path, result.partial);
    let exit = if interrupted {
        ExitCode::from(crate::exit::INTERRUPTED)
    } else if failed_requests > 0 && !searched {
        eprintln!("{failed_requests} requests failed (see failed_by_class in the result)");
        ExitCode::from(crate::exit::REQUESTS_FAILED)
    } else {
        ExitCode::SUCCESS
    };
    Sweep { result, exit }
}
