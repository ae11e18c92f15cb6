//! `inferbench inproc`: llama.cpp in this process over the engine grid
//! (every list of engine settings expanded, as llama-bench does) and, in
//! each cell, the sweep of prompt lengths, depths and batch sizes, with the
//! result file rewritten after every point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use inferbench_core::spec::{EngineSettings, InprocSpec, Sampler, Spec};
use inferbench_ffi::{GreedySampler, LlamaEngine, LlamaOptions, LoadedModel, Runtime};
use inferbench_harness::engine::BatchShape;
use inferbench_harness::inproc::{measure_point_until, unmeasured_point, PointSpec, RunnerError};
use inferbench_harness::precision;
use inferbench_harness::roofline::{self, BandwidthCeiling};
use inferbench_harness::schema::roofline::{BandwidthProbe, ComputePeakProbe, DeviceBandwidth};
use inferbench_harness::schema::validity::Precision;
use inferbench_harness::schema::{
    EngineConfig, InprocPoint, InprocResult, InprocSettings, Mode, PointMemory, Provenance,
    ResultWriter, RunStatus,
};
use inferbench_models::gguf::{DecodeTraffic, PrefillCompute};
use inferbench_models::GgufFile;

use crate::cli::{usage, Outputs};
use crate::telemetry::PointTelemetry;
use crate::{interrupt, model, provenance, terminal};
use inferbench_harness::llama_bench_export::{self, BuildLabel};

mod ceilings;
mod grid;

use ceilings::{Ceilings, ModelCounts};
use grid::Grid;

/// How often a point in flight is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The sweep's points: prompt lengths, then depths, then batch sizes, so
/// that each (prompt, depth) keeps its batch curve together.
fn shapes(spec: &InprocSpec) -> Vec<BatchShape> {
    let mut shapes = Vec::new();
    for &prompt_tokens in &spec.prompt_tokens {
        for &depth in &spec.depth {
            for &sequences in &spec.batch {
                shapes.push(BatchShape {
                    sequences,
                    prompt_tokens,
                    gen_tokens: spec.gen_tokens,
                    depth,
                });
            }
        }
    }
    shapes
}

/// What a finished sweep leaves: its result (also on disk) and the exit
/// status the `inproc` command would give.
pub struct Sweep {
    pub result: InprocResult,
    pub exit: ExitCode,
}

/// Each of the bandwidth probe's three arrays: far beyond the caches here.
const BANDWIDTH_ARRAY_BYTES: u64 = 64 << 20;
const BANDWIDTH_REPETITIONS: u32 = 5;
/// The compute probe's work per thread and repetition: 4 GFLOP, about 40 ms
/// on a core with two 256-bit FMA units (32 f32 FLOPs a cycle) at 3 GHz.
const PEAK_FLOPS_PER_THREAD: u64 = 4_000_000_000;
const PEAK_REPETITIONS: u32 = 5;

/// `--threads` as given, else the machine's physical cores.
pub fn resolve_threads(threads: Option<u32>) -> u32 {
    threads.unwrap_or_else(|| {
        inferbench_harness::host::physical_cores()
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32)
            })
            .unwrap_or(1)
    })
}

/// The engine's options for one cell of the grid.
fn cell_options(spec: &InprocSpec, cell: &EngineSettings) -> LlamaOptions {
    let threads = resolve_threads(cell.threads);
    let sampler = match spec.sampler {
        Sampler::Greedy => GreedySampler::Argmax,
        Sampler::LlamaGreedy => GreedySampler::Llama,
    };
    LlamaOptions {
        kv_unified: spec.kv_unified,
        swa_full: spec.swa_full,
        kernel_timing: spec.kernel_timing,
        n_batch: cell.n_batch,
        flash_attn: cell.flash_attn,
        cache_type_k: cell.cache_type_k,
        cache_type_v: cell.cache_type_v,
        kv_offload: cell.kv_offload,
        ..LlamaOptions::new(threads, cell.ubatch, sampler)
    }
}

fn load(runtime: &Runtime, cell: &EngineSettings, path: &Path) -> Result<LoadedModel> {
    LoadedModel::load_with(runtime, path, cell.n_gpu_layers, cell.mmap)
        .with_context(|| format!("--model {}", path.display()))
}

/// Refuses shapes the model cannot hold, before anything is measured on it.
fn check_shapes(shapes: &[BatchShape], loaded: &LoadedModel, path: &Path) -> Result<()> {
    let max = loaded.n_ctx_train();
    for s in shapes {
        if s.context_per_sequence() > max {
            bail!(
                "--depth {} with --prompt-tokens {} and --gen-tokens {} needs {} tokens of context \
                 per sequence, but {} allows at most {max}",
                s.depth,
                s.prompt_tokens,
                s.gen_tokens,
                s.context_per_sequence(),
                path.display()
            );
        }
        if s.sequences > inferbench_ffi::llama::MAX_SEQUENCES {
            bail!(
                "--batch {}: llama.cpp decodes at most {} sequences together",
                s.sequences,
                inferbench_ffi::llama::MAX_SEQUENCES
            );
        }
    }
    Ok(())
}

/// Every cell's model file, resolved once: `None` is the tiny model.
fn model_paths(cells: &[&EngineSettings]) -> Result<Vec<(Option<PathBuf>, PathBuf)>> {
    let mut paths: Vec<(Option<PathBuf>, PathBuf)> = Vec::new();
    for cell in cells {
        if paths.iter().any(|(m, _)| *m == cell.model) {
            continue;
        }
        let path = model::resolve(cell.model.clone())?;
        if !path.is_file() {
            bail!("--model {}: no such file", path.display());
        }
        paths.push((cell.model.clone(), path));
    }
    Ok(paths)
}

/// Measures every cell of `spec`'s grid and, in each, every point of its
/// sweep, writing the result file as it goes. The points' prompt streams
/// are numbered from `first_point` ([`PointSpec::point`]) by their shape, so
/// that every cell decodes the same prompts and a caller measuring one
/// sweep in parts draws the prompts a served run of the whole sweep sends.
pub fn sweep(spec: &InprocSpec, outputs: &Outputs, first_point: u32) -> Result<Sweep> {
    let varying = spec.varying();
    let cells = spec.configurations();
    let (valid, skipped) = valid_cells(&cells, &varying);
    let Some(&first) = valid.first() else {
        return Err(usage(
            "every cell of the grid is invalid (see the warnings)",
        ));
    };
    let paths = model_paths(&valid)?;
    let path_of = |cell: &EngineSettings| -> PathBuf {
        paths
            .iter()
            .find(|(m, _)| *m == cell.model)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    let out_path = outputs
        .out
        .clone()
        .unwrap_or_else(|| terminal::default_result_path("inproc"));
    let runtime = Runtime::get(!outputs.verbose)?;
    let first_path = path_of(first);
    let loaded = load(runtime, first, &first_path)?;
    let shapes = shapes(spec);
    check_shapes(&shapes, &loaded, &first_path)?;
    terminal::make_parent_dir("--out", &out_path)?;
    let writer = ResultWriter::new(&out_path);
    let options = cell_options(spec, first);
    let mut engine_info = {
        let engine = LlamaEngine::new(runtime, &loaded, options);
        provenance::llama_engine_info(runtime, &loaded, &engine, &options)
    };
    let (telemetry, telemetry_note) = PointTelemetry::new(spec.telemetry, true);
    engine_info.notes.extend(telemetry_note);
    let model_info = provenance::model_info(&first_path, &loaded)?;
    let counts = ModelCounts::read(&first_path);
    let ceilings = Ceilings::measure(
        engine_info.gpu_layers_offloaded.unwrap_or(0),
        loaded.offloadable_layers(),
        options.threads,
        counts.traffic.as_ref().zip(counts.compute.as_ref()),
    );
    let mut provenance = provenance::provenance(engine_info, Some(model_info));
    provenance.host.memory_bandwidth = ceilings.bandwidth.clone();
    provenance.host.compute_peak = ceilings.peak.clone();
    provenance.host.device_memory_bandwidth = ceilings.device_bandwidth.clone();
    let mut notes = ceilings.notes.clone();
    notes.extend(skipped);
    let result = new_result(spec, provenance, &first_path, first, &options, notes);
    writer.write(&result)?;
    terminal::print_header(&result.provenance, &varying);
    let result_commit = result.provenance.tool.git_commit.clone();

    let bar = crate::progress::bar(
        (valid.len() * shapes.len()) as u64 * u64::from(spec.warmup + spec.runs),
        "runs",
    );
    let mut grid = Grid {
        spec,
        shapes: &shapes,
        first_point,
        varying: &varying,
        writer,
        result,
        telemetry,
        interrupt: interrupt::flag(),
        bar,
        failure: None,
        csv: outputs.csv.clone(),
        llama_bench: llama_bench_out(outputs, result_commit.as_deref()),
        ceiling: ceilings.ceiling,
        peak_gflop_s: ceilings.peak.as_ref().map(|p| p.best_gflop_s),
    };
    let mut first_load = Some((counts, loaded));
    // Cells that load the model alike are neighbours in the grid's order:
    // each model is loaded once for all of them.
    for group in valid.chunk_by(|a, b| a.load_key() == b.load_key()) {
        if grid.stopped() {
            break;
        }
        let path = path_of(group[0]);
        let (counts, loaded) = match first_load.take() {
            Some(first_load) if group[0].load_key() == first.load_key() => first_load,
            _ => match load(runtime, group[0], &path)
                .and_then(|l| check_shapes(&shapes, &l, &path).map(|()| l))
            {
                Ok(l) => (ModelCounts::read(&path), l),
                Err(e) => {
                    for cell in group {
                        grid.fail_cell(cell, &path, &format!("{e:#}"));
                    }
                    continue;
                }
            },
        };
        for cell in group {
            if grid.stopped() {
                break;
            }
            let options = cell_options(spec, cell);
            let mut engine = LlamaEngine::new(runtime, &loaded, options);
            grid.measure_cell(&mut engine, cell, &path, &loaded, &counts);
        }
    }
    grid.finish(&out_path, valid.len() * shapes.len())
}

/// The grid's cells llama.cpp can run, and a note for each one skipped
/// (an invalid combination), each warned about.
fn valid_cells<'a>(
    cells: &'a [EngineSettings],
    varying: &[&str],
) -> (Vec<&'a EngineSettings>, Vec<String>) {
    let mut skipped = Vec::new();
    let mut valid = Vec::new();
    for cell in cells {
        match cell.invalid() {
            Some(reason) => {
                let note = format!("cell {} skipped: {reason}", cell.label(varying));
                eprintln!("warning: {note}");
                skipped.push(note);
            }
            None => valid.push(cell),
        }
    }
    (valid, skipped)
}

/// The result file as a sweep starts: running, no point yet.
fn new_result(
    spec: &InprocSpec,
    provenance: Provenance,
    first_path: &Path,
    first: &EngineSettings,
    options: &LlamaOptions,
    notes: Vec<String>,
) -> InprocResult {
    // The first cell's settings: a grid's every cell is in its points'
    // configs and in the spec.
    let settings = InprocSettings {
        model: first_path.display().to_string(),
        prompt_tokens: spec.prompt_tokens.clone(),
        gen_tokens: spec.gen_tokens,
        batch: spec.batch.clone(),
        warmup: spec.warmup,
        runs: spec.runs,
        seed: spec.seed,
        threads: options.threads,
        threads_batch: options.threads_batch,
        n_gpu_layers: first.n_gpu_layers,
        ubatch: options.ubatch,
        kv_unified: options.kv_unified,
        sampler: options.sampler.name().into(),
        stop_at_eos: false,
        depth: spec.depth.clone(),
        spec: Some(Spec::Inproc(spec.clone())),
    };
    InprocResult::running(
        Mode::Inproc,
        provenance,
        settings,
        notes,
        provenance::now_rfc3339(),
    )
}

/// `--llama-bench-out` and the build its rows name: `--llama-bench-commit`,
/// else the harness's own commit, told apart from llama-bench's.
fn llama_bench_out(outputs: &Outputs, tool_commit: Option<&str>) -> Option<(PathBuf, BuildLabel)> {
    outputs.llama_bench_out.clone().map(|path| {
        let build = match &outputs.llama_bench_commit {
            Some(commit) => BuildLabel {
                commit: commit.clone(),
                number: 0,
            },
            None => BuildLabel::for_tool_commit(tool_commit),
        };
        (path, build)
    })
}

fn save(writer: &ResultWriter, result: &mut InprocResult, csv: Option<&Path>) -> Result<()> {
    terminal::save_result(writer, result, csv, crate::points_table::write_csv)
}
