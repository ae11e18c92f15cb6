//! `inferbench contrast`: the same model and the same token ids in-process
//! and served, the server started and stopped by inferbench or given by URL,
//! and one table of what each layer costs with its interval.
//!
//! Both runs are the `inproc` and `http` commands' own sweeps, with their
//! own result files beside the contrast's; the layer table is computed by
//! [`inferbench_harness::contrast`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use inferbench_harness::contrast::{
    contrast_table, like_for_like_notes, ContrastResult, ContrastSettings, CONTRAST_SCHEMA_VERSION,
};
use inferbench_harness::schema::{InprocResult, ResultWriter, RunStatus};
use inferbench_harness::significance::DEFAULT_RESAMPLES;

use inferbench_core::spec::{ContrastSpec, HttpSpec, InprocSpec, PerLoad, Sampler, Spec};

use crate::cli::Outputs;
use crate::server::{find_binary, LaunchOptions, LlamaServer};
use crate::{http, inproc, interrupt, model, provenance, terminal};

const CONFIDENCE: f64 = 0.95;
/// In-process runs below this give no interval worth the name.
const MIN_INPROC_RUNS: u64 = 3;

/// `FILE.json` → `FILE.<suffix>`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or("contrast".into(), |s| s.to_string_lossy().to_string());
    out.with_file_name(format!("{stem}.{suffix}"))
}

fn in_process_runs(requests: u64, batch: u32) -> u32 {
    requests
        .div_ceil(u64::from(batch))
        .max(MIN_INPROC_RUNS)
        .min(u64::from(u32::MAX)) as u32
}

/// Runs a contrast: both sides, then the layer table.
pub fn run_spec(spec: &ContrastSpec, outputs: &Outputs) -> Result<ExitCode> {
    let model_path = model::resolve(spec.model.clone())?;
    if !model_path.is_file() {
        bail!("--model {}: no such file", model_path.display());
    }
    let out = outputs
        .out
        .clone()
        .unwrap_or_else(|| terminal::default_result_path("contrast"));
    terminal::make_parent_dir("--out", &out)?;
    let threads = inproc::resolve_threads(spec.threads);
    let server_binary = match &spec.server {
        Some(launch) => Some(find_binary(launch.path.as_deref())?),
        None => None,
    };
    let concurrency = spec.concurrency.clone();
    let max_concurrency = concurrency.iter().copied().max().unwrap_or(1);
    if max_concurrency > inferbench_ffi::llama::MAX_SEQUENCES {
        bail!(
            "--concurrency {max_concurrency}: llama.cpp decodes at most {} sequences together",
            inferbench_ffi::llama::MAX_SEQUENCES
        );
    }

    let writer = ResultWriter::new(&out);
    let mut result = new_result(spec, &model_path, threads);
    save(&writer, &mut result)?;

    // The spec as it runs here: the model and thread count resolved once,
    // for both sides.
    let resolved = ContrastSpec {
        model: Some(model_path.clone()),
        threads: Some(threads),
        ..spec.clone()
    };
    let measured = measure(
        &resolved,
        outputs.verbose,
        &out,
        server_binary,
        &mut result,
        &writer,
    );
    let interrupted = interrupt::flag().load(std::sync::atomic::Ordering::Relaxed);
    match measured {
        Ok(()) => {
            result.status = if interrupted {
                RunStatus::Interrupted
            } else {
                RunStatus::Complete
            };
            result.partial = interrupted
                || result.shapes.len() != concurrency.len()
                || [
                    result.inproc.as_ref().map(|r| r.partial),
                    result.http.as_ref().map(|r| r.partial),
                ]
                .iter()
                .any(|p| p.unwrap_or(true));
            save(&writer, &mut result)?;
            print_table(&result);
            terminal::print_result_path(&out, result.partial);
            Ok(if interrupted {
                ExitCode::from(crate::exit::INTERRUPTED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e) => {
            result.status = if interrupted {
                RunStatus::Interrupted
            } else {
                RunStatus::Failed
            };
            result.error = Some(format!("{e:#}"));
            result.partial = true;
            if let Err(save_error) = save(&writer, &mut result) {
                eprintln!("warning: {save_error:#}");
            }
            terminal::print_result_path(&out, true);
            if interrupted {
                eprintln!("interrupted: {e:#}");
                return Ok(ExitCode::from(crate::exit::INTERRUPTED));
            }
            Err(e)
        }
    }
}

fn interrupted() -> bool {
    interrupt::flag().load(std::sync::atomic::Ordering::Relaxed)
}

/// Both runs and the table, saving after each stage. The server, when
/// started here, lives only inside this function.
fn measure(
    spec: &ContrastSpec,
    verbose: bool,
    out: &Path,
    server_binary: Option<PathBuf>,
    result: &mut ContrastResult,
    writer: &ResultWriter,
) -> Result<()> {
    let (Some(model_path), Some(threads)) = (spec.model.as_deref(), spec.threads) else {
        bail!("the contrast's model and threads are resolved before it measures");
    };
    let merged = measure_inproc(spec, (model_path, threads), verbose, out, result, writer)?;
    let Some(inproc_result) = merged else {
        return Ok(());
    };
    if interrupted() {
        return Ok(());
    }

    // Served: the server started here (and killed when `server` drops, at
    // the end of this function, on error or on Ctrl-C), or the one at --url.
    let server = match server_binary {
        Some(binary) => Some(start_server(
            binary,
            spec,
            (model_path, threads),
            out,
            result,
            writer,
        )?),
        None => None,
    };
    let url = match (&server, &spec.url) {
        (Some(s), _) => s.url.clone(),
        (None, Some(url)) => url.clone(),
        (None, None) => bail!("--server or --url: neither given"),
    };
    let http_spec = HttpSpec {
        url,
        model: spec.served_model.clone(),
        concurrency: Some(spec.concurrency.clone()),
        num_requests: Some(PerLoad::All(spec.requests)),
        warmup: u64::from(spec.warmup),
        workload: format!("fixed:{}:{}", spec.prompt_tokens, spec.gen_tokens),
        ignore_eos: true,
        seed: spec.seed,
        prompt_seed: Some(spec.seed),
        timeout: spec.timeout,
        ..HttpSpec::default()
    };
    let http_outputs = Outputs {
        out: Some(beside(out, "http.json")),
        ..Outputs::default()
    };
    let tokens = http::token_prompts(model_path)?;
    let served = http::sweep(&http_spec, &http_outputs, Some(tokens)).context("served run")?;
    drop(server);
    let http_result = &*result.http.insert(served.result);

    result.shapes = contrast_table(
        &inproc_result,
        http_result,
        CONFIDENCE,
        DEFAULT_RESAMPLES,
        spec.seed,
    );
    result.notes = like_for_like_notes(&inproc_result, http_result);
    result.notes.extend(http_result.notes.iter().cloned());
    if spec.sampler == Sampler::Greedy {
        result.notes.push(
            "in-process sampling is inferbench's argmax, cheaper than the llama.cpp sampler a server runs: the server's per-token overhead includes that difference (use --sampler llama-greedy)"
                .into(),
        );
    }
    save(writer, result)
}

/// The contrast's file as it starts: its settings, nothing measured yet.
fn new_result(spec: &ContrastSpec, model_path: &Path, threads: u32) -> ContrastResult {
    ContrastResult {
        schema_version: CONTRAST_SCHEMA_VERSION,
        mode: "contrast".into(),
        status: RunStatus::Running,
        partial: true,
        error: None,
        started_at: provenance::now_rfc3339(),
        updated_at: provenance::now_rfc3339(),
        settings: ContrastSettings {
            model: model_path.display().to_string(),
            prompt_tokens: spec.prompt_tokens,
            gen_tokens: spec.gen_tokens,
            concurrency: spec.concurrency.clone(),
            requests: spec.requests,
            inproc_runs: None,
            warmup: spec.warmup,
            threads,
            n_gpu_layers: spec.n_gpu_layers,
            seed: spec.seed,
            server: if spec.server.is_some() {
                "llama-server"
            } else {
                "url"
            }
            .into(),
            url: spec.url.clone(),
            server_command: None,
            confidence_level: CONFIDENCE,
            resamples: DEFAULT_RESAMPLES,
            spec: Some(Spec::Contrast(spec.clone())),
        },
        inproc: None,
        http: None,
        shapes: Vec::new(),
        notes: Vec::new(),
    }
}

/// The in-process side: one sweep per batch size, saved after each; their
/// points together (`None` when interrupted before the first).
fn measure_inproc(
    spec: &ContrastSpec,
    (model_path, threads): (&Path, u32),
    verbose: bool,
    out: &Path,
    result: &mut ContrastResult,
    writer: &ResultWriter,
) -> Result<Option<InprocResult>> {
    // In-process: one sweep per batch size, each with the runs it needs to
    // decode every prompt the served point will send, its prompt streams
    // numbered as the served sweep numbers its points.
    let mut merged: Option<InprocResult> = None;
    for (point, &batch) in spec.concurrency.iter().enumerate() {
        if interrupted() {
            return Ok(merged);
        }
        let path = beside(out, &format!("inproc-c{batch}.json"));
        let inproc_spec = InprocSpec {
            model: vec![model_path.to_path_buf()],
            threads: vec![threads],
            n_gpu_layers: vec![spec.n_gpu_layers],
            prompt_tokens: vec![spec.prompt_tokens],
            gen_tokens: spec.gen_tokens,
            batch: vec![batch],
            warmup: spec.warmup,
            runs: in_process_runs(spec.requests, batch),
            seed: spec.seed,
            sampler: spec.sampler,
            ..InprocSpec::default()
        };
        let inproc_outputs = Outputs {
            out: Some(path),
            verbose,
            ..Outputs::default()
        };
        let sweep = inproc::sweep(&inproc_spec, &inproc_outputs, point as u32)
            .with_context(|| format!("in-process run at batch {batch}"))?;
        merged = Some(match merged {
            None => sweep.result,
            Some(mut all) => {
                all.points.extend(sweep.result.points);
                all.partial |= sweep.result.partial;
                all.settings.batch.extend(sweep.result.settings.batch);
                // Runs differ by batch: the parts' files hold their specs,
                // the contrast's settings the spec of the whole.
                all.settings.spec = None;
                all
            }
        });
        result.inproc = merged.clone();
        save(writer, result)?;
    }
    Ok(merged)
}

/// Starts llama-server on the model, as many slots as the highest
/// concurrency, its log beside the result; noted in the result.
fn start_server(
    binary: PathBuf,
    spec: &ContrastSpec,
    (model_path, threads): (&Path, u32),
    out: &Path,
    result: &mut ContrastResult,
    writer: &ResultWriter,
) -> Result<LlamaServer> {
    let log = beside(out, "server.log");
    eprintln!("starting {} on {}", binary.display(), model_path.display());
    let server = LlamaServer::start(&LaunchOptions {
        binary,
        model: model_path.to_path_buf(),
        threads,
        slots: spec.concurrency.iter().copied().max().unwrap_or(1),
        // A slot holds one request's prompt and output; llama.cpp pads to 256.
        context_per_slot: (spec.prompt_tokens + spec.gen_tokens + 16).div_ceil(256) * 256,
        gpu_layers: spec.n_gpu_layers,
        log,
        ready_timeout: spec.timeout,
    })?;
    eprintln!(
        "llama-server ready on {} (pid {})",
        server.url,
        server.pid()
    );
    result.settings.server_command = Some(server.command.clone());
    result.settings.url = Some(server.url.clone());
    save(writer, result)?;
    Ok(server)
}

fn save(writer: &ResultWriter, result: &mut ContrastResult) -> Result<()> {
    result.updated_at = provenance::now_rfc3339();
    writer.write(result)?;
    Ok(())
}

fn print_table(result: &ContrastResult) {
    println!("\ncontrast: {}", result.settings.model);
    for shape in &result.shapes {
        for (i, t) in crate::tables::contrast_shape(shape).iter().enumerate() {
            if i == 0 {
                println!("\n{}", t.title);
            }
            print!("{}", t.markdown());
            for line in &t.footer {
                println!("{line}");
            }
        }
    }
    for note in &result.notes {
        println!("note: {note}");
    }
}
