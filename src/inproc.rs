//! `inferbench inproc`: llama.cpp in this process, swept over prompt lengths
//! and batch sizes, with the result file rewritten after every point.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use inferbench_ffi::{GreedySampler, LlamaEngine, LlamaOptions, LoadedModel, Runtime};
use inferbench_harness::engine::BatchShape;
use inferbench_harness::inproc::{measure_point, PointSpec};
use inferbench_harness::roofline;
use inferbench_harness::schema::{
    InprocResult, InprocSettings, Mode, ResultWriter, RunStatus, SCHEMA_VERSION,
};
use inferbench_harness::stats::HistogramInfo;

use inferbench_core::spec::{InprocSpec, Sampler, Spec};

use crate::cli::Outputs;
use crate::telemetry::PointTelemetry;
use crate::{interrupt, model, provenance, terminal};

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

/// Measures every point of `spec`, writing the result file as it goes. The
/// points' prompt streams are numbered from `first_point` ([`PointSpec::point`]),
/// so that a caller measuring one sweep in parts draws the prompts a served
/// run of the whole sweep sends.
pub fn sweep(spec: &InprocSpec, outputs: &Outputs, first_point: u32) -> Result<Sweep> {
    let model_path = model::resolve(spec.model.clone())?;
    if !model_path.is_file() {
        bail!("--model {}: no such file", model_path.display());
    }
    let out_path = outputs
        .out
        .clone()
        .unwrap_or_else(|| terminal::default_result_path("inproc"));
    let threads = match spec.threads {
        Some(t) => t,
        None => inferbench_harness::host::physical_cores()
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32)
            })
            .unwrap_or(1),
    };
    let options = LlamaOptions {
        threads,
        threads_batch: threads,
        ubatch: spec.ubatch,
        kv_unified: spec.kv_unified,
        sampler: match spec.sampler {
            Sampler::Greedy => GreedySampler::Argmax,
            Sampler::LlamaGreedy => GreedySampler::Llama,
        },
        kernel_timing: spec.kernel_timing,
    };

    let runtime = Runtime::get(!outputs.verbose)?;
    let loaded = LoadedModel::load(runtime, &model_path, spec.n_gpu_layers)
        .with_context(|| format!("--model {}", model_path.display()))?;

    let shapes = shapes(spec);
    // Refuse impossible points before measuring anything.
    let max = loaded.n_ctx_train();
    for s in &shapes {
        if s.context_per_sequence() > max {
            bail!(
                "--depth {} with --prompt-tokens {} and --gen-tokens {} needs {} tokens of context \
                 per sequence, but {} allows at most {max}",
                s.depth,
                s.prompt_tokens,
                s.gen_tokens,
                s.context_per_sequence(),
                model_path.display()
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

    if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: creating {}", out_path.display(), dir.display()))?;
    }
    let writer = ResultWriter::new(&out_path);
    let mut engine = LlamaEngine::new(runtime, &loaded, options);
    let mut engine_info = provenance::llama_engine_info(runtime, &loaded, &engine, &options);
    let (mut telemetry, telemetry_note) = PointTelemetry::new(spec.telemetry, true);
    engine_info.notes.extend(telemetry_note);
    let model_info = provenance::model_info(&model_path, &loaded)?;
    // What a decode step must read, and the machine's ceiling, measured
    // before any point so that the probe disturbs none.
    let gguf = inferbench_models::GgufFile::open(&model_path).ok();
    let traffic = gguf.as_ref().map(|g| g.decode_traffic());
    // What a prefill must compute, and the machine's f32 FMA rate.
    let compute = gguf.as_ref().map(|g| g.prefill_compute());
    // Where the layers really are, not what was asked: --n-gpu-layers on a
    // build or machine without a GPU leaves them on the CPU.
    let offloaded = engine_info.gpu_layers_offloaded.unwrap_or(0);
    let on_gpu = offloaded > 0;
    let bandwidth = (!on_gpu).then(|| {
        roofline::stream_triad(
            options.threads,
            BANDWIDTH_ARRAY_BYTES,
            BANDWIDTH_REPETITIONS,
        )
    });
    // llama.cpp's first GPU is device 0 unless told otherwise.
    let device_bandwidth = on_gpu.then(|| {
        inferbench_ffi::bandwidth::device_bandwidth(
            0,
            inferbench_ffi::bandwidth::COPY_BUFFER_BYTES,
            inferbench_ffi::bandwidth::COPY_REPETITIONS,
        )
    });
    let ceiling = roofline::bandwidth_ceiling(bandwidth.as_ref(), device_bandwidth.as_ref());
    let peak = (!on_gpu)
        .then(|| roofline::compute_peak(options.threads, PEAK_FLOPS_PER_THREAD, PEAK_REPETITIONS));
    let mut roofline_notes: Vec<String> = traffic
        .iter()
        .flat_map(|t| t.notes.iter())
        .chain(compute.iter().flat_map(|c| c.notes.iter()))
        .map(|n| format!("roofline: {n}"))
        .collect();
    if let Some(d) = &device_bandwidth {
        roofline_notes.extend(d.notes.iter().map(|n| format!("roofline: {n}")));
        if ceiling.is_none() {
            roofline_notes.push(
                "roofline: layers on a GPU and its bandwidth could not be had; the CPU probe does not apply, so no ceiling is given".into(),
            );
        }
        let layers = loaded.offloadable_layers();
        if offloaded < layers {
            roofline_notes.push(format!(
                "roofline: {offloaded} of {layers} layers on the GPU: the ceiling is the GPU's, but the layers left on the CPU read at the CPU's bandwidth"
            ));
        }
    }
    roofline_notes.extend(
        peak.as_ref()
            .and_then(roofline::compute_peak_note)
            .map(|n| format!("roofline: {n}")),
    );
    if peak.is_none() {
        roofline_notes.push(
            "roofline: layers on a GPU; the CPU compute probe does not apply, so prefill has no ceiling".into(),
        );
    }
    let mut provenance = provenance::provenance(engine_info, Some(model_info));
    provenance.host.memory_bandwidth = bandwidth;
    provenance.host.compute_peak = peak.clone();
    provenance.host.device_memory_bandwidth = device_bandwidth;
    let mut result = InprocResult {
        schema_version: SCHEMA_VERSION,
        mode: Mode::Inproc,
        partial: true,
        status: RunStatus::Running,
        error: None,
        started_at: provenance::now_rfc3339(),
        updated_at: provenance::now_rfc3339(),
        provenance,
        settings: InprocSettings {
            model: model_path.display().to_string(),
            prompt_tokens: spec.prompt_tokens.clone(),
            gen_tokens: spec.gen_tokens,
            batch: spec.batch.clone(),
            warmup: spec.warmup,
            runs: spec.runs,
            seed: spec.seed,
            threads: options.threads,
            threads_batch: options.threads_batch,
            n_gpu_layers: spec.n_gpu_layers,
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
        notes: roofline_notes,
    };
    writer.write(&result)?;
    terminal::print_header(&result.provenance);

    let interrupt = interrupt::flag();
    let bar = crate::progress::bar(
        shapes.len() as u64 * u64::from(spec.warmup + spec.runs),
        "runs",
    );
    let mut failure = None;
    for (point, shape) in shapes.iter().enumerate() {
        if interrupt.load(Ordering::Relaxed) {
            break;
        }
        bar.set_message(format!(
            "pp{} tg{} B{} d{}",
            shape.prompt_tokens, shape.gen_tokens, shape.sequences, shape.depth
        ));
        let point_spec = PointSpec {
            shape: *shape,
            warmup_runs: spec.warmup,
            runs: spec.runs,
            seed: spec.seed,
            point: first_point + point as u32,
        };
        let mut last_save = Instant::now();
        let mut save_error = None;
        if spec.warmup == 0 {
            telemetry.start();
        }
        let measured = measure_point(&mut engine, &point_spec, &interrupt, |progress| {
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
                save_error = save(&writer, &mut snapshot, None).err();
                last_save = Instant::now();
            }
        });
        let summary = telemetry.stop();
        if let Some(e) = save_error {
            failure = Some(format!("{e:#}"));
            break;
        }
        match measured {
            Ok(mut point) => {
                point.telemetry = summary;
                if let (Some(t), Some(step)) = (&traffic, point.decode_step_ms.as_ref()) {
                    point.roofline = Some(roofline::decode_roofline(
                        t.weight_bytes,
                        t.kv_bytes_per_cell,
                        point.batch,
                        // The KV cache a step reads holds the depth too.
                        point.depth + point.prompt_tokens,
                        point.gen_tokens,
                        step.p50,
                        ceiling,
                    ));
                }
                if let (Some(c), Some(prefill)) = (&compute, point.prefill_ms.as_ref()) {
                    point.prefill_roofline = Some(roofline::prefill_roofline(
                        c.flops(point.prompt_tokens, point.batch),
                        prefill.p50,
                        peak.as_ref().map(|p| p.best_gflop_s),
                    ));
                }
                bar.suspend(|| terminal::print_row(&point));
                // A point interrupted before its first measured run holds no data.
                if point.runs > 0 {
                    result.points.push(point);
                }
            }
            Err(e) => {
                failure = Some(format!(
                    "point pp{} tg{} B{} d{}: {e}",
                    shape.prompt_tokens, shape.gen_tokens, shape.sequences, shape.depth
                ));
            }
        }
        if let Err(e) = save(&writer, &mut result, outputs.csv.as_deref()) {
            failure.get_or_insert(format!("{e:#}"));
        }
        if failure.is_some() {
            break;
        }
    }
    bar.finish_and_clear();

    let interrupted = interrupt.load(Ordering::Relaxed);
    result.status = match (&failure, interrupted) {
        (Some(_), _) => RunStatus::Failed,
        (None, true) => RunStatus::Interrupted,
        (None, false) => RunStatus::Complete,
    };
    result.error = failure.clone();
    result.partial = result.status != RunStatus::Complete
        || result.points.len() != shapes.len()
        || result.points.iter().any(|p| !p.complete);
    // A failed run's CSV may be what failed: its JSON alone is saved.
    let csv = if failure.is_some() {
        None
    } else {
        outputs.csv.as_deref()
    };
    if let Err(e) = save(&writer, &mut result, csv) {
        return Err(terminal::save_failed(&writer, &mut result, e));
    }
    terminal::print_result_path(&out_path, result.partial);
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

fn save(writer: &ResultWriter, result: &mut InprocResult, csv: Option<&Path>) -> Result<()> {
    terminal::save_result(writer, result, csv, terminal::write_csv)
}
