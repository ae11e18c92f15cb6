//! `inferbench inproc`: llama.cpp in this process over the engine grid.
//! The library runs the grid ([`inferbench_harness::inproc::grid`]); this
//! module gives it llama.cpp ([`LlamaGrid`]), shows the run and writes the
//! result file (rewritten after every point and every second during one),
//! its CSV and its llama-bench rows.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use inferbench_core::spec::{EngineSettings, InprocSpec, Sampler};
use inferbench_ffi::{GreedySampler, LlamaEngine, LlamaOptions, LoadedModel, Runtime};
use inferbench_harness::inproc::grid::{
    run_grid, GridEngines, GridError, GridInputs, GridStart, ModelCounts,
};
use inferbench_harness::schema::{EngineConfig, InprocResult, LlamaBuffers};

use crate::cli::{usage, Outputs};
use crate::telemetry::PointTelemetry;
use crate::{interrupt, model, provenance, terminal};

mod ceilings;
mod observer;

use ceilings::Ceilings;
use observer::TerminalObserver;

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

/// The spec's sampler, as llama.cpp's engine takes it.
fn sampler(spec: &InprocSpec) -> GreedySampler {
    match spec.sampler {
        Sampler::Greedy => GreedySampler::Argmax,
        Sampler::LlamaGreedy => GreedySampler::Llama,
    }
}

/// The engine's options for one cell of the grid.
fn cell_options(spec: &InprocSpec, cell: &EngineSettings) -> LlamaOptions {
    let threads = resolve_threads(cell.threads);
    let sampler = sampler(spec);
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

/// llama.cpp, as the grid runs it: models loaded through the process's one
/// runtime, an engine for each cell.
struct LlamaGrid<'s> {
    runtime: &'static Runtime,
    spec: &'s InprocSpec,
    /// Notes for the engine's provenance (the telemetry's).
    engine_notes: Vec<String>,
}

impl GridEngines for LlamaGrid<'_> {
    type Model = LoadedModel;
    type Engine<'m>
        = LlamaEngine<'m>
    where
        Self: 'm;
    type Error = anyhow::Error;

    fn model_path(&self, model: Option<&Path>) -> Result<PathBuf> {
        let path = model::resolve(model.map(Path::to_path_buf))?;
        if !path.is_file() {
            bail!("--model {}: no such file", path.display());
        }
        Ok(path)
    }

    fn load(&self, cell: &EngineSettings, path: &Path) -> Result<LoadedModel> {
        Ok(LoadedModel::load_with(
            self.runtime,
            path,
            cell.n_gpu_layers,
            cell.mmap,
        )?)
    }

    fn context_limit(&self, model: &LoadedModel) -> u32 {
        model.n_ctx_train()
    }

    fn max_sequences(&self) -> u32 {
        inferbench_ffi::llama::MAX_SEQUENCES
    }

    fn engine<'m>(
        &'m self,
        model: &'m LoadedModel,
        spec: &InprocSpec,
        cell: &EngineSettings,
    ) -> LlamaEngine<'m> {
        LlamaEngine::new(self.runtime, model, cell_options(spec, cell))
    }

    fn config(
        &self,
        spec: &InprocSpec,
        cell: &EngineSettings,
        path: &Path,
        engine: Option<&LlamaEngine<'_>>,
    ) -> EngineConfig {
        let options = cell_options(spec, cell);
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
            kv_unified: spec.kv_unified,
            swa_full: Some(spec.swa_full),
            model_type: model.and_then(|m| m.description().map(str::to_string)),
            model_size: model.map(LoadedModel::weight_bytes),
            model_n_params: model.map(LoadedModel::parameter_count),
        }
    }

    fn weight_bytes(&self, model: &LoadedModel) -> u64 {
        model.weight_bytes()
    }

    fn buffers(&self, engine: &LlamaEngine<'_>) -> Option<LlamaBuffers> {
        engine.buffers()
    }

    fn begin(
        &self,
        path: &Path,
        model: &LoadedModel,
        engine: &LlamaEngine<'_>,
        counts: &ModelCounts,
    ) -> Result<GridStart> {
        let options = engine.options();
        let mut engine_info = provenance::llama_engine_info(self.runtime, model, engine, options);
        engine_info.notes.extend(self.engine_notes.iter().cloned());
        let model_info = provenance::model_info(path, model)?;
        let ceilings = Ceilings::measure(
            engine_info.gpu_layers_offloaded.unwrap_or(0),
            model.offloadable_layers(),
            options.threads,
            counts.traffic.as_ref().zip(counts.compute.as_ref()),
        );
        let mut provenance = provenance::provenance(engine_info, Some(model_info));
        provenance.host.memory_bandwidth = ceilings.bandwidth.clone();
        provenance.host.compute_peak = ceilings.peak.clone();
        provenance.host.device_memory_bandwidth = ceilings.device_bandwidth.clone();
        Ok(GridStart {
            provenance,
            notes: ceilings.notes,
            ceiling: ceilings.ceiling,
            peak_gflop_s: ceilings.peak.as_ref().map(|p| p.best_gflop_s),
            sampler: sampler(self.spec).name().into(),
        })
    }
}

/// A library error as the binary reports it: a usage error exits 2.
fn reported(e: GridError) -> anyhow::Error {
    match e {
        GridError::Usage(message) => usage(message),
        e => anyhow::Error::new(e),
    }
}

/// Measures every cell of `spec`'s grid and, in each, every point of its
/// sweep, writing the result file as it goes. The points' prompt streams
/// are numbered from `first_point` ([`inferbench_harness::inproc::PointSpec::point`])
/// by their shape, so that every cell decodes the same prompts and a
/// caller measuring one sweep in parts draws the prompts a served run of
/// the whole sweep sends.
pub fn sweep(spec: &InprocSpec, outputs: &Outputs, first_point: u32) -> Result<Sweep> {
    let out_path = outputs
        .out
        .clone()
        .unwrap_or_else(|| terminal::default_result_path("inproc"));
    let runtime = Runtime::get(!outputs.verbose)?;
    let (mut telemetry, engine_notes) = PointTelemetry::new(spec.telemetry, true);
    let engines = LlamaGrid {
        runtime,
        spec,
        engine_notes,
    };
    let mut observer = TerminalObserver::new(&out_path, outputs);
    let inputs = GridInputs {
        first_point,
        interrupt: interrupt::flag(),
        telemetry: &mut telemetry,
    };
    let finished = run_grid(spec, &engines, inputs, &mut observer).map_err(reported)?;
    observer.finish(finished)
}

#[cfg(test)]
mod tests {
    //! llama.cpp under the library's grid runner, in this process: no
    //! binary, no terminal, the real engine on the generated tiny model.
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

    use std::sync::Arc;

    use inferbench_core::spec::FlashAttn;
    use inferbench_harness::inproc::grid::GridObserver;
    use inferbench_harness::schema::{InprocPoint, RunStatus};
    use inferbench_harness::telemetry::PointSampler;
    use inferbench_harness::SaveError;
    use inferbench_models::tiny::{write_tiny_model, TinySpec};

    use super::*;

    #[derive(Default)]
    struct Recorder {
        ended: Vec<InprocPoint>,
        runs: u64,
        saves: usize,
    }

    impl GridObserver for Recorder {
        fn run_done(&mut self) {
            self.runs += 1;
        }
        fn point_ended(&mut self, point: &InprocPoint, _varying: &[&'static str]) {
            self.ended.push(point.clone());
        }
        fn save(&mut self, _result: &mut InprocResult, _whole: bool) -> Result<(), SaveError> {
            self.saves += 1;
            Ok(())
        }
    }

    struct NoTelemetry;

    impl PointSampler for NoTelemetry {
        fn start(&mut self) {}
        fn stop(&mut self) -> Option<inferbench_harness::schema::telemetry::TelemetrySummary> {
            None
        }
    }

    #[test]
    fn llama_cpp_runs_the_library_grid_on_the_tiny_model() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("tiny.gguf");
        write_tiny_model(&model, &TinySpec::default()).unwrap();
        let spec = InprocSpec {
            model: vec![model.clone()],
            threads: vec![1],
            prompt_tokens: vec![8],
            gen_tokens: 4,
            batch: vec![1, 3],
            warmup: 1,
            runs: 2,
            flash_attn: vec![FlashAttn::Off, FlashAttn::On],
            telemetry: false,
            ..InprocSpec::default()
        };
        let engines = LlamaGrid {
            runtime: Runtime::get(true).unwrap(),
            spec: &spec,
            engine_notes: vec!["a note for the engine".into()],
        };
        let mut recorder = Recorder::default();
        let inputs = GridInputs {
            first_point: 0,
            interrupt: Arc::default(),
            telemetry: &mut NoTelemetry,
        };
        let finished = run_grid(&spec, &engines, inputs, &mut recorder).unwrap();
        let result = finished.result;
        assert_eq!(result.status, RunStatus::Complete);
        assert!(!result.partial);
        assert_eq!(result.provenance.engine.name, "llama.cpp");
        assert!(result
            .provenance
            .engine
            .notes
            .contains(&"a note for the engine".to_string()));
        let model_info = result.provenance.model.as_ref().unwrap();
        assert_eq!(model_info.sha256.as_deref().map(str::len), Some(64));
        assert!(result.provenance.host.memory_bandwidth.is_some());
        assert_eq!(result.points.len(), 4);
        assert_eq!(recorder.ended.len(), 4);
        assert_eq!(recorder.runs, 4 * 3);
        for (point, (fa, batch)) in
            result
                .points
                .iter()
                .zip([("off", 1), ("off", 3), ("on", 1), ("on", 3)])
        {
            assert!(point.error.is_none(), "{:?}", point.error);
            assert_eq!(point.batch, batch);
            assert_eq!(point.runs, 2);
            // What llama.cpp itself was given for the shape.
            let config = point.config.as_ref().unwrap();
            assert_eq!(config.flash_attn, fa);
            assert_eq!(config.n_threads, 1);
            assert!(config.n_seq_max >= batch, "{config:?}");
            assert!(config.n_ctx >= batch * (8 + 4), "{config:?}");
            assert!(config.model_n_params.unwrap() > 0);
            // Every sequence generated every token in every measured run.
            assert_eq!(point.tokens.generated, u64::from(batch) * 4 * 2);
            let memory = point.memory.as_ref().unwrap();
            assert!(memory.llama_buffers.as_ref().unwrap().kv_bytes.unwrap() > 0);
            assert!(point.roofline.is_some() && point.prefill_roofline.is_some());
        }
    }
}
