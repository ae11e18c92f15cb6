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
use clap::Parser;
use inferbench_harness::contrast::{
    contrast_table, like_for_like_notes, ContrastResult, ContrastSettings, ContrastShape, Layer,
    CONTRAST_SCHEMA_VERSION,
};
use inferbench_harness::schema::{InprocResult, ResultWriter, RunStatus};
use inferbench_harness::significance::{MedianDifference, DEFAULT_RESAMPLES};

use crate::cli::{ContrastArgs, HttpArgs, InprocArgs, SamplerArg};
use crate::server::{find_binary, LaunchOptions, LlamaServer};
use crate::table::Table;
use crate::{http, inproc, interrupt, model, provenance, terminal, EXIT_INTERRUPTED};

const CONFIDENCE: f64 = 0.95;
/// In-process runs below this give no interval worth the name.
const MIN_INPROC_RUNS: u64 = 3;

#[derive(Parser)]
struct InprocOnly {
    #[command(flatten)]
    args: InprocArgs,
}

#[derive(Parser)]
struct HttpOnly {
    #[command(flatten)]
    args: HttpArgs,
}

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

pub fn run(args: ContrastArgs) -> Result<ExitCode> {
    let model_path = model::resolve(args.model.clone())?;
    if !model_path.is_file() {
        bail!("--model {}: no such file", model_path.display());
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| terminal::default_result_path("contrast"));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: creating {}", out.display(), dir.display()))?;
    }
    let threads = args.threads.unwrap_or_else(|| {
        inferbench_harness::host::physical_cores()
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32)
            })
            .unwrap_or(1)
    });
    let server_binary = match &args.server {
        Some(spec) => Some(find_binary(spec.path.as_deref())?),
        None => None,
    };
    let concurrency = args.concurrency.0.clone();
    let max_concurrency = concurrency.iter().copied().max().unwrap_or(1);
    if max_concurrency > inferbench_ffi::llama::MAX_SEQUENCES {
        bail!(
            "--concurrency {max_concurrency}: llama.cpp decodes at most {} sequences together",
            inferbench_ffi::llama::MAX_SEQUENCES
        );
    }

    let writer = ResultWriter::new(&out);
    let mut result = ContrastResult {
        schema_version: CONTRAST_SCHEMA_VERSION,
        mode: "contrast".into(),
        status: RunStatus::Running,
        partial: true,
        error: None,
        started_at: provenance::now_rfc3339(),
        updated_at: provenance::now_rfc3339(),
        settings: ContrastSettings {
            model: model_path.display().to_string(),
            prompt_tokens: args.prompt_tokens,
            gen_tokens: args.gen_tokens,
            concurrency: concurrency.clone(),
            requests: args.requests,
            warmup: args.warmup,
            threads,
            n_gpu_layers: args.n_gpu_layers,
            seed: args.seed,
            server: if args.server.is_some() {
                "llama-server"
            } else {
                "url"
            }
            .into(),
            url: args.url.clone(),
            server_command: None,
            confidence_level: CONFIDENCE,
            resamples: DEFAULT_RESAMPLES,
        },
        inproc: None,
        http: None,
        shapes: Vec::new(),
        notes: Vec::new(),
    };
    save(&writer, &mut result)?;

    let measured = measure(
        &args,
        &model_path,
        &out,
        threads,
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
                ExitCode::from(EXIT_INTERRUPTED)
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
                return Ok(ExitCode::from(EXIT_INTERRUPTED));
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
    args: &ContrastArgs,
    model_path: &Path,
    out: &Path,
    threads: u32,
    server_binary: Option<PathBuf>,
    result: &mut ContrastResult,
    writer: &ResultWriter,
) -> Result<()> {
    let sampler = match args.sampler {
        SamplerArg::Greedy => "greedy",
        SamplerArg::LlamaGreedy => "llama-greedy",
    };
    // In-process: one sweep per batch size, each with the runs it needs to
    // decode every prompt the served point will send, its prompt streams
    // numbered as the served sweep numbers its points.
    let mut merged: Option<InprocResult> = None;
    for (point, &batch) in args.concurrency.0.iter().enumerate() {
        if interrupted() {
            return Ok(());
        }
        let runs = in_process_runs(args.requests, batch);
        let path = beside(out, &format!("inproc-c{batch}.json"));
        let mut argv: Vec<String> = [
            "inproc",
            "--model",
            &model_path.display().to_string(),
            "-t",
            &threads.to_string(),
            "-p",
            &args.prompt_tokens.to_string(),
            "-n",
            &args.gen_tokens.to_string(),
            "-b",
            &batch.to_string(),
            "-r",
            &runs.to_string(),
            "--warmup",
            &args.warmup.to_string(),
            "--seed",
            &args.seed.to_string(),
            "--sampler",
            sampler,
            "--out",
            &path.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if args.verbose {
            argv.push("--verbose".into());
        }
        if args.n_gpu_layers != 0 {
            argv.extend(["--n-gpu-layers".into(), args.n_gpu_layers.to_string()]);
        }
        let inproc_args = InprocOnly::try_parse_from(&argv)
            .context("building the in-process run's flags")?
            .args;
        let sweep = inproc::sweep(&inproc_args, point as u32)
            .with_context(|| format!("in-process run at batch {batch}"))?;
        merged = Some(match merged {
            None => sweep.result,
            Some(mut all) => {
                all.points.extend(sweep.result.points);
                all.partial |= sweep.result.partial;
                all.settings.batch.extend(sweep.result.settings.batch);
                all
            }
        });
        result.inproc = merged.clone();
        save(writer, result)?;
    }
    let Some(inproc_result) = merged else {
        return Ok(());
    };
    if interrupted() {
        return Ok(());
    }

    // Served: the server started here (and killed when `server` drops, at
    // the end of this function, on error or on Ctrl-C), or the one at --url.
    let server = match server_binary {
        Some(binary) => {
            let log = beside(out, "server.log");
            eprintln!("starting {} on {}", binary.display(), model_path.display());
            let server = LlamaServer::start(&LaunchOptions {
                binary,
                model: model_path.to_path_buf(),
                threads,
                slots: args.concurrency.0.iter().copied().max().unwrap_or(1),
                // A slot holds one request's prompt and output; llama.cpp pads to 256.
                context_per_slot: (args.prompt_tokens + args.gen_tokens + 16).div_ceil(256) * 256,
                gpu_layers: args.n_gpu_layers,
                log,
                ready_timeout: args.timeout,
            })?;
            eprintln!(
                "llama-server ready on {} (pid {})",
                server.url,
                server.pid()
            );
            result.settings.server_command = Some(server.command.clone());
            result.settings.url = Some(server.url.clone());
            save(writer, result)?;
            Some(server)
        }
        None => None,
    };
    let url = match (&server, &args.url) {
        (Some(s), _) => s.url.clone(),
        (None, Some(url)) => url.clone(),
        (None, None) => unreachable!("clap requires --server or --url"),
    };
    let concurrency: Vec<String> = args.concurrency.0.iter().map(u32::to_string).collect();
    let http_out = beside(out, "http.json");
    let mut argv: Vec<String> = [
        "http",
        "--url",
        &url,
        "--concurrency",
        &concurrency.join(","),
        "--num-requests",
        &args.requests.to_string(),
        "--warmup",
        &args.warmup.to_string(),
        "--workload",
        &format!("fixed:{}:{}", args.prompt_tokens, args.gen_tokens),
        "--ignore-eos",
        "--seed",
        &args.seed.to_string(),
        "--prompt-seed",
        &args.seed.to_string(),
        "--timeout",
        &format!("{}ms", args.timeout.as_millis()),
        "--out",
        &http_out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(m) = &args.served_model {
        argv.extend(["--model".to_string(), m.clone()]);
    }
    let http_args = HttpOnly::try_parse_from(&argv)
        .context("building the served run's flags")?
        .args;
    let tokens = http::TokenPrompts::load(model_path)?;
    let served = http::sweep(&http_args, Some(tokens)).context("served run")?;
    drop(server);
    let http_result = &*result.http.insert(served.result);

    result.shapes = contrast_table(
        &inproc_result,
        http_result,
        CONFIDENCE,
        DEFAULT_RESAMPLES,
        args.seed,
    );
    result.notes = like_for_like_notes(&inproc_result, http_result);
    result.notes.extend(http_result.notes.iter().cloned());
    if args.sampler == SamplerArg::Greedy {
        result.notes.push(
            "in-process sampling is inferbench's argmax, cheaper than the llama.cpp sampler a server runs: the server's per-token overhead includes that difference (use --sampler llama-greedy)"
                .into(),
        );
    }
    save(writer, result)
}

fn save(writer: &ResultWriter, result: &mut ContrastResult) -> Result<()> {
    result.updated_at = provenance::now_rfc3339();
    writer.write(result)?;
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

fn overhead_cell(d: Option<&MedianDifference>) -> String {
    match d {
        None => "-".into(),
        Some(d) => {
            let percent = d
                .percent
                .map(|p| format!(" ({p:+.1}%)"))
                .unwrap_or_default();
            format!(
                "{:+.2} [{:+.2}, {:+.2}]{percent}",
                d.difference, d.difference_ci.low, d.difference_ci.high
            )
        }
    }
}

/// The layers of one shape and the overheads between them, for the
/// terminal and the report.
pub fn shape_tables(shape: &ContrastShape) -> Vec<Table> {
    let mut layers = Table::new(
        format!(
            "pp{} tg{}, c = B = {}   (p50 ms; overheads: difference of medians [95% bootstrap interval])",
            shape.prompt_tokens, shape.gen_tokens, shape.sequences
        ),
        &["layer", "TTFT p50", "TTFT p99", "per-token p50", "per-token p99", "n"],
        1,
    );
    for row in &shape.layers {
        layers.rows.push(vec![
            row.layer.title().to_string(),
            ms(row.ttft_ms.as_ref().map(|s| s.p50)),
            ms(row.ttft_ms.as_ref().map(|s| s.p99)),
            ms(row.per_token_ms.as_ref().map(|s| s.p50)),
            ms(row.per_token_ms.as_ref().map(|s| s.p99)),
            row.independent_values.to_string(),
        ]);
    }
    let mut overheads = Table::new(String::new(), &["overhead", "TTFT", "per-token"], 1);
    let name = |l: Layer| match l {
        Layer::Engine => "engine",
        Layer::Server => "server",
        Layer::Client => "client",
    };
    for o in &shape.overheads {
        overheads.rows.push(vec![
            format!("{} − {}", name(o.upper), name(o.lower)),
            overhead_cell(o.ttft.as_ref()),
            overhead_cell(o.per_token.as_ref()),
        ]);
    }
    let rate = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    overheads.footer.push(format!(
        "output tok/s: in-process B={} {}, served c={} {}",
        shape.sequences,
        rate(shape.inproc_output_tok_s),
        shape.sequences,
        rate(shape.served_output_tok_s),
    ));
    overheads
        .footer
        .extend(shape.notes.iter().map(|n| format!("note: {n}")));
    vec![layers, overheads]
}

fn print_table(result: &ContrastResult) {
    println!("\ncontrast: {}", result.settings.model);
    for shape in &result.shapes {
        for (i, t) in shape_tables(shape).iter().enumerate() {
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
