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
    EngineConfig, InprocPoint, InprocResult, InprocSettings, Mode, PointMemory, ResultWriter,
    RunStatus, SCHEMA_VERSION,
};
use inferbench_harness::stats::HistogramInfo;
use inferbench_models::gguf::{DecodeTraffic, PrefillCompute};
use inferbench_models::GgufFile;

use crate::cli::{usage, Outputs};
use crate::telemetry::PointTelemetry;
use crate::{interrupt, model, provenance, terminal};
use inferbench_harness::llama_bench_export::{self, BuildLabel};

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
fn resolve_threads(threads: Option<u32>) -> u32 {
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

/// The machine's ceilings, measured before any point so that the probes
/// disturb none, and what a reader must know about them.
struct Ceilings {
    bandwidth: Option<BandwidthProbe>,
    device_bandwidth: Option<DeviceBandwidth>,
    ceiling: Option<BandwidthCeiling>,
    peak: Option<ComputePeakProbe>,
    notes: Vec<String>,
}

impl Ceilings {
    /// Probes what the first cell runs on: the CPU's memory bandwidth and
    /// f32 FMA peak, or the GPU's copy bandwidth when layers are on one.
    fn measure(
        offloaded: u32,
        offloadable: u32,
        threads: u32,
        model: Option<(&DecodeTraffic, &PrefillCompute)>,
    ) -> Ceilings {
        // Where the layers really are, not what was asked: --n-gpu-layers on
        // a build or machine without a GPU leaves them on the CPU.
        let on_gpu = offloaded > 0;
        let bandwidth = (!on_gpu)
            .then(|| roofline::stream_triad(threads, BANDWIDTH_ARRAY_BYTES, BANDWIDTH_REPETITIONS));
        // llama.cpp's first GPU is device 0 unless told otherwise.
        let device_bandwidth = on_gpu.then(|| {
            inferbench_ffi::bandwidth::device_bandwidth(
                0,
                inferbench_ffi::bandwidth::COPY_BUFFER_BYTES,
                inferbench_ffi::bandwidth::COPY_REPETITIONS,
            )
        });
        let ceiling = roofline::bandwidth_ceiling(bandwidth.as_ref(), device_bandwidth.as_ref());
        // The CPU's own vector kernel where there is one: what the compiler
        // makes of portable code depends on the CPU it targets.
        let kernel =
            inferbench_ffi::simd::fma_kernel().unwrap_or_else(roofline::portable_fma_kernel);
        let peak = (!on_gpu).then(|| {
            roofline::compute_peak_with(threads, PEAK_FLOPS_PER_THREAD, PEAK_REPETITIONS, &kernel)
        });
        let mut notes: Vec<String> = model
            .iter()
            .flat_map(|(t, c)| t.notes.iter().chain(c.notes.iter()))
            .map(|n| format!("roofline: {n}"))
            .collect();
        if let Some(d) = &device_bandwidth {
            notes.extend(d.notes.iter().map(|n| format!("roofline: {n}")));
            if ceiling.is_none() {
                notes.push(
                    "roofline: layers on a GPU and its bandwidth could not be had; the CPU probe does not apply, so no ceiling is given".into(),
                );
            }
            if offloaded < offloadable {
                notes.push(format!(
                    "roofline: {offloaded} of {offloadable} layers on the GPU: the ceiling is the GPU's, but the layers left on the CPU read at the CPU's bandwidth"
                ));
            }
        }
        notes.extend(
            peak.as_ref()
                .and_then(roofline::compute_peak_note)
                .map(|n| format!("roofline: {n}")),
        );
        if peak.is_none() {
            notes.push(
                "roofline: layers on a GPU; the CPU compute probe does not apply, so prefill has no ceiling".into(),
            );
        }
        Ceilings {
            bandwidth,
            device_bandwidth,
            ceiling,
            peak,
            notes,
        }
    }
}

/// What the GGUF reader counts of one model: a decode step's bytes and a
/// prefill's FLOPs (absent when the file cannot be read again).
struct ModelCounts {
    traffic: Option<DecodeTraffic>,
    compute: Option<PrefillCompute>,
}

impl ModelCounts {
    fn read(path: &Path) -> ModelCounts {
        let gguf = GgufFile::open(path).ok();
        ModelCounts {
            traffic: gguf.as_ref().map(GgufFile::decode_traffic),
            compute: gguf.as_ref().map(GgufFile::prefill_compute),
        }
    }

    /// Bytes one context cell of the KV cache holds over every layer, at
    /// the cell's cache types.
    fn kv_bytes_per_cell(&self, cell: &EngineSettings) -> Option<u64> {
        self.traffic.as_ref().map(|t| {
            t.layers
                * (cell.cache_type_k.bytes(t.k_row_elements)
                    + cell.cache_type_v.bytes(t.v_row_elements))
        })
    }
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
    let mut skipped = Vec::new();
    let mut valid: Vec<&EngineSettings> = Vec::new();
    for cell in &cells {
        match cell.invalid() {
            Some(reason) => {
                let note = format!("cell {} skipped: {reason}", cell.label(&varying));
                eprintln!("warning: {note}");
                skipped.push(note);
            }
            None => valid.push(cell),
        }
    }
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
    if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: creating {}", out_path.display(), dir.display()))?;
    }
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
    let result = InprocResult {
        schema_version: SCHEMA_VERSION,
        mode: Mode::Inproc,
        partial: true,
        status: RunStatus::Running,
        error: None,
        started_at: provenance::now_rfc3339(),
        updated_at: provenance::now_rfc3339(),
        provenance,
        // The first cell's settings: a grid's every cell is in its points'
        // configs and in the spec.
        settings: InprocSettings {
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
        },
        histogram: HistogramInfo::current(),
        points: Vec::new(),
        max_rate: None,
        max_concurrency: None,
        notes,
        validity: None,
        shard: None,
        shards: None,
    };
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
        llama_bench: outputs.llama_bench_out.clone().map(|path| {
            let build = match &outputs.llama_bench_commit {
                Some(commit) => BuildLabel {
                    commit: commit.clone(),
                    number: 0,
                },
                None => BuildLabel::for_tool_commit(result_commit.as_deref()),
            };
            (path, build)
        }),
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

/// The grid as it is measured: the result so far and where it goes.
struct Grid<'a> {
    spec: &'a InprocSpec,
    shapes: &'a [BatchShape],
    first_point: u32,
    varying: &'a [&'static str],
    writer: ResultWriter,
    result: InprocResult,
    telemetry: PointTelemetry,
    interrupt: Arc<AtomicBool>,
    bar: ProgressBar,
    failure: Option<String>,
    csv: Option<PathBuf>,
    /// `--llama-bench-out` and the rows' build label.
    llama_bench: Option<(PathBuf, BuildLabel)>,
    ceiling: Option<BandwidthCeiling>,
    peak_gflop_s: Option<f64>,
}

impl Grid<'_> {
    fn stopped(&self) -> bool {
        self.failure.is_some() || self.interrupt.load(Ordering::Relaxed)
    }

    /// What llama.cpp was given for `cell` at the shape it last configured.
    fn config(
        &self,
        cell: &EngineSettings,
        path: &Path,
        engine: Option<&LlamaEngine<'_>>,
    ) -> EngineConfig {
        let options = cell_options(self.spec, cell);
        let params = engine.and_then(LlamaEngine::context_params);
        let model = engine.map(LlamaEngine::model);
        EngineConfig {
            model: path.display().to_string(),
            n_gpu_layers: cell.n_gpu_layers,
            use_mmap: cell.mmap,
            n_threads: options.threads,
            n_threads_batch: options.threads_batch,
            n_ctx: params.map_or(0, |p| p.n_ctx),
            n_batch: params.map_or(0, |p| p.n_batch),
            n_ubatch: params.map_or(cell.ubatch, |p| p.n_ubatch),
            n_seq_max: params.map_or(0, |p| p.n_seq_max),
            flash_attn: cell.flash_attn.name().into(),
            type_k: cell.cache_type_k.name().into(),
            type_v: cell.cache_type_v.name().into(),
            offload_kqv: cell.kv_offload,
            kv_unified: self.spec.kv_unified,
            swa_full: Some(self.spec.swa_full),
            model_type: model.and_then(|m| m.description().map(str::to_string)),
            model_size: model.map(LoadedModel::weight_bytes),
            model_n_params: model.map(LoadedModel::parameter_count),
        }
    }

    /// Records every point of `cell` as failed with `error`, and goes on.
    fn fail_cell(&mut self, cell: &EngineSettings, path: &Path, error: &str) {
        for shape in self.shapes {
            let mut point = unmeasured_point(*shape);
            point.config = Some(self.config(cell, path, None));
            point.error = Some(error.to_string());
            point.validity = Some(point.assess());
            self.bar
                .suspend(|| terminal::print_row(&point, self.varying));
            self.result.points.push(point);
        }
        self.save();
    }

    fn save(&mut self) {
        if let Err(e) = save(&self.writer, &mut self.result, self.csv.as_deref()) {
            self.failure.get_or_insert(format!("{e:#}"));
        }
        if let Err(e) = self.write_llama_bench() {
            self.failure.get_or_insert(format!("{e:#}"));
        }
    }

    /// Writes `--llama-bench-out` with the points measured so far.
    fn write_llama_bench(&self) -> Result<Option<llama_bench_export::Export>> {
        let Some((path, build)) = &self.llama_bench else {
            return Ok(None);
        };
        let export = llama_bench_export::rows(&self.result, build);
        llama_bench_export::write(path, &export.rows).context("--llama-bench-out")?;
        Ok(Some(export))
    }

    /// Measures every shape of the sweep in one cell of the grid. A point
    /// llama.cpp fails on is recorded with its error; the grid goes on.
    fn measure_cell(
        &mut self,
        engine: &mut LlamaEngine<'_>,
        cell: &EngineSettings,
        path: &Path,
        loaded: &LoadedModel,
        counts: &ModelCounts,
    ) {
        for (index, shape) in self.shapes.iter().enumerate() {
            if self.stopped() {
                return;
            }
            self.bar.set_message(format!(
                "pp{} tg{} B{} d{} {}",
                shape.prompt_tokens,
                shape.gen_tokens,
                shape.sequences,
                shape.depth,
                cell.label(self.varying)
            ));
            let point_spec = PointSpec {
                shape: *shape,
                warmup_runs: self.spec.warmup,
                runs: self.spec.runs,
                seed: self.spec.seed,
                point: self.first_point + index as u32,
            };
            let peak_reset = inferbench_harness::host::reset_peak_rss();
            let measured = self.measure_point(engine, &point_spec);
            let Some(measured) = measured else { return };
            let point = match measured {
                Ok(point) => point,
                Err(RunnerError::Engine(e)) => {
                    let mut point = unmeasured_point(*shape);
                    point.error = Some(e.to_string());
                    point
                }
                Err(e) => {
                    self.failure = Some(format!(
                        "point pp{} tg{} B{} d{}: {e}",
                        shape.prompt_tokens, shape.gen_tokens, shape.sequences, shape.depth
                    ));
                    return;
                }
            };
            self.record(point, engine, cell, path, loaded, counts, peak_reset);
        }
    }

    /// One point's runs, with telemetry over the measured ones and the
    /// point saved every second while it runs; `None` when saving failed.
    fn measure_point(
        &mut self,
        engine: &mut LlamaEngine<'_>,
        point_spec: &PointSpec,
    ) -> Option<Result<InprocPoint, RunnerError<inferbench_ffi::EngineError>>> {
        let mut last_save = Instant::now();
        let mut save_error = None;
        if point_spec.warmup_runs == 0 {
            self.telemetry.start();
        }
        let (bar, telemetry, result, writer) =
            (&self.bar, &mut self.telemetry, &self.result, &self.writer);
        // --until-precise: runs are added while a statistic is too wide.
        let targets = self.spec.until_precise.as_deref().unwrap_or_default();
        let max_runs = self.spec.max_runs.unwrap_or_else(|| {
            let needed = inferbench_harness::precision::observations_needed(targets);
            point_spec
                .runs
                .saturating_mul(20)
                .max(u32::try_from(needed).unwrap_or(u32::MAX))
        });
        let max_duration = self.spec.max_duration;
        // Set by the first measured run, read by `more`: both closures see it.
        // The time cap counts from the end of warm-up.
        let measuring_since: std::cell::Cell<Option<Instant>> =
            std::cell::Cell::new((point_spec.warmup_runs == 0).then(Instant::now));
        let mut stopped_by = "interrupted";
        let more = |point: &InprocPoint| -> u32 {
            if targets.is_empty() {
                return 0;
            }
            let checks = precision::check_inproc(point, targets);
            let out_of_time = max_duration
                .zip(measuring_since.get())
                .is_some_and(|(d, since)| since.elapsed() >= d);
            let wanted = precision::more_needed(&checks, u64::from(point.runs));
            stopped_by = match wanted {
                None => "precise",
                Some(_) if point.runs >= max_runs => "max_runs",
                Some(_) if out_of_time => "max_duration",
                Some(_) => "",
            };
            match wanted {
                Some(n) if !out_of_time => {
                    let n = u32::try_from(n).unwrap_or(u32::MAX);
                    let added = n.min(max_runs.saturating_sub(point.runs));
                    bar.inc_length(u64::from(added));
                    added
                }
                _ => 0,
            }
        };
        let measured = measure_point_until(engine, point_spec, &self.interrupt, more, |progress| {
            if progress.warmup && progress.done == progress.of {
                measuring_since.set(Some(Instant::now()));
            }
            bar.inc(1);
            // Telemetry covers the measured runs: it starts when warm-up ends.
            if progress.warmup && progress.done == progress.of {
                telemetry.start();
            }
            // A long point is saved while it runs, so that even a kill that
            // cannot be caught loses at most a second of measurements.
            if !progress.warmup && last_save.elapsed() >= SAVE_EVERY && save_error.is_none() {
                let mut snapshot = result.clone();
                snapshot.points.push(progress.snapshot());
                save_error = save(writer, &mut snapshot, None).err();
                last_save = Instant::now();
            }
        });
        let summary = self.telemetry.stop();
        if let Some(e) = save_error {
            self.failure = Some(format!("{e:#}"));
            return None;
        }
        Some(measured.map(|mut point| {
            point.energy = summary
                .as_ref()
                .and_then(|t| t.energy_per_token(point.tokens.generated));
            point.telemetry = summary;
            if !targets.is_empty() {
                let checks = precision::check_inproc(&point, targets);
                point.precision = Some(Precision {
                    reached: checks.iter().all(|c| c.met),
                    stopped_by: if point.complete {
                        stopped_by
                    } else {
                        "interrupted"
                    }
                    .into(),
                    requests: u64::from(point.runs),
                    max_requests: u64::from(max_runs),
                    max_duration_s: max_duration.map(|d| d.as_secs_f64()),
                    targets: checks,
                });
            }
            point
        }))
    }

    /// Completes a measured (or failed) point with its configuration,
    /// memory and rooflines, prints it and saves the result.
    #[expect(clippy::too_many_arguments, reason = "one point's every source, once")]
    fn record(
        &mut self,
        mut point: InprocPoint,
        engine: &LlamaEngine<'_>,
        cell: &EngineSettings,
        path: &Path,
        loaded: &LoadedModel,
        counts: &ModelCounts,
        peak_reset: bool,
    ) {
        let config = self.config(cell, path, Some(engine));
        let kv_bytes_per_cell = counts.kv_bytes_per_cell(cell);
        point.memory = Some(PointMemory {
            model_bytes: loaded.weight_bytes(),
            kv_cache_bytes: kv_bytes_per_cell.map(|b| b * u64::from(config.n_ctx)),
            kv_cache_source: "computed: n_ctx cells x layers x (K row + V row) at the cache types, from the GGUF's attention shape; sliding-window layers counted as full (an overestimate for them without --swa-full, where llama.cpp keeps a window-sized cache; llama_buffers has llama.cpp's own figure)".into(),
            peak_rss_bytes: inferbench_harness::host::peak_rss_bytes(),
            peak_rss_source: if peak_reset {
                "VmHWM, reset before the point".into()
            } else {
                "VmHWM since the process started (the kernel refused a reset)".into()
            },
            // A context llama.cpp refused may have logged some buffers.
            llama_buffers: engine.buffers().filter(|_| point.error.is_none()),
        });
        point.config = Some(config);
        point.validity = Some(point.assess());
        if let (Some(t), Some(kv), Some(step)) = (
            &counts.traffic,
            kv_bytes_per_cell,
            point.decode_step_ms.as_ref(),
        ) {
            point.roofline = Some(roofline::decode_roofline(
                t.weight_bytes,
                kv,
                point.batch,
                // The KV cache a step reads holds the depth too.
                point.depth + point.prompt_tokens,
                point.gen_tokens,
                step.p50,
                self.ceiling,
            ));
        }
        if let (Some(c), Some(prefill)) = (&counts.compute, point.prefill_ms.as_ref()) {
            point.prefill_roofline = Some(roofline::prefill_roofline(
                c.flops(point.prompt_tokens, point.batch),
                prefill.p50,
                self.peak_gflop_s,
            ));
        }
        self.bar
            .suspend(|| terminal::print_row(&point, self.varying));
        // A point interrupted before its first measured run holds no data;
        // a failed one holds its error.
        if point.runs > 0 || point.error.is_some() {
            self.result.points.push(point);
        }
        self.save();
    }

    /// The final status, file and exit code.
    fn finish(mut self, out_path: &Path, planned: usize) -> Result<Sweep> {
        self.bar.finish_and_clear();
        let interrupted = self.interrupt.load(Ordering::Relaxed);
        let result = &mut self.result;
        result.status = match (&self.failure, interrupted) {
            (Some(_), _) => RunStatus::Failed,
            (None, true) => RunStatus::Interrupted,
            (None, false) => RunStatus::Complete,
        };
        result.error = self.failure.clone();
        result.partial = result.status != RunStatus::Complete
            || result.points.len() != planned
            || result
                .points
                .iter()
                .any(|p| !p.complete || p.error.is_some());
        // A failed run's CSV may be what failed: its JSON alone is saved.
        let csv = if self.failure.is_some() {
            None
        } else {
            self.csv.as_deref()
        };
        if let Err(e) = save(&self.writer, result, csv) {
            return Err(terminal::save_failed(&self.writer, result, e));
        }
        terminal::print_run_verdict(result);
        terminal::print_result_path(out_path, result.partial);
        match self.write_llama_bench() {
            Ok(Some(export)) => {
                let path = self.llama_bench.as_ref().map(|(p, _)| p.display());
                eprintln!(
                    "llama-bench rows: {} in {}",
                    export.rows.len(),
                    path.map(|p| p.to_string()).unwrap_or_default()
                );
                for left_out in &export.left_out {
                    eprintln!("  no row for {left_out}");
                }
            }
            Ok(None) => {}
            Err(e) => {
                self.failure.get_or_insert(format!("{e:#}"));
            }
        }
        if let Some(f) = self.failure {
            bail!("{f}");
        }
        let exit = if interrupted {
            ExitCode::from(crate::exit::INTERRUPTED)
        } else {
            ExitCode::SUCCESS
        };
        Ok(Sweep {
            result: self.result,
            exit,
        })
    }
}

fn save(writer: &ResultWriter, result: &mut InprocResult, csv: Option<&Path>) -> Result<()> {
    terminal::save_result(writer, result, csv, crate::points_table::write_csv)
}
