//! The in-process grid at the library level, without the binary or
//! llama.cpp: cells over shared and separate model loads, the prompts each
//! cell decodes, a model that cannot be loaded, an interrupt, a failed
//! save, `--until-precise`, and the checks made before anything runs. The
//! engine is the fake one (exact, deterministic timings); the model files
//! are the generated tiny GGUF, so that the GGUF reader's counts and the
//! rooflines are real.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::cell::RefCell;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use inferbench_core::engine::{BatchShape, Engine, EngineCounters, PromptVocab, Timed, TokenId};
use inferbench_core::schema::telemetry::TelemetrySummary;
use inferbench_core::schema::{
    EngineConfig, EngineInfo, InprocPoint, InprocResult, LlamaBuffers, Provenance, RunStatus,
};
use inferbench_core::spec::{CacheType, FlashAttn, InprocSpec, Spec};
use inferbench_harness::fake::{FakeEngine, FakeTimings};
use inferbench_harness::inproc::grid::{
    run_grid, GridEngines, GridError, GridFinished, GridInputs, GridObserver, GridStart,
    ModelCounts,
};
use inferbench_harness::telemetry::PointSampler;
use inferbench_harness::SaveError;
use inferbench_models::tiny::{write_tiny_model, TinySpec};

/// A model file the fake engines refuse to load.
const UNLOADABLE: &str = "unloadable.gguf";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FakeLoadError(String);

/// Each engine's cell label and the prompts it prefilled, as engines end.
type PromptLog = Rc<RefCell<Vec<(String, Vec<Vec<TokenId>>)>>>;

/// The fake engine, its prompts logged (by cell) when it is dropped.
struct LoggedEngine {
    inner: FakeEngine,
    cell: String,
    log: PromptLog,
}

impl Drop for LoggedEngine {
    fn drop(&mut self) {
        self.log
            .borrow_mut()
            .push((self.cell.clone(), self.inner.prefilled().to_vec()));
    }
}

impl Engine for LoggedEngine {
    type Error = Infallible;
    fn prompt_vocab(&self) -> PromptVocab {
        self.inner.prompt_vocab()
    }
    fn max_context_per_sequence(&self) -> u32 {
        self.inner.max_context_per_sequence()
    }
    fn configure(&mut self, shape: &BatchShape) -> Result<(), Infallible> {
        self.inner.configure(shape)
    }
    fn reset(&mut self) -> Result<(), Infallible> {
        self.inner.reset()
    }
    fn prefill(&mut self, prompts: &[Vec<TokenId>]) -> Result<Timed, Infallible> {
        self.inner.prefill(prompts)
    }
    fn sample(&mut self) -> Result<Timed, Infallible> {
        self.inner.sample()
    }
    fn decode_step(&mut self) -> Result<Timed, Infallible> {
        self.inner.decode_step()
    }
    fn take_counters(&mut self) -> Option<EngineCounters> {
        self.inner.take_counters()
    }
}

/// Fake engines over the tiny model's files: what each load and engine was.
struct FakeEngines {
    dir: PathBuf,
    context_limit: u32,
    loads: RefCell<Vec<PathBuf>>,
    prompts: PromptLog,
}

impl FakeEngines {
    fn new(dir: &Path) -> FakeEngines {
        write_tiny_model(&dir.join("tiny.gguf"), &TinySpec::default()).unwrap();
        FakeEngines {
            dir: dir.to_path_buf(),
            context_limit: 4096,
            loads: RefCell::new(Vec::new()),
            prompts: Rc::default(),
        }
    }
}

struct FakeModel {
    weight_bytes: u64,
}

impl GridEngines for FakeEngines {
    type Model = FakeModel;
    type Engine<'m> = LoggedEngine;
    type Error = FakeLoadError;

    fn model_path(&self, model: Option<&Path>) -> Result<PathBuf, FakeLoadError> {
        let path = model.map_or_else(|| self.dir.join("tiny.gguf"), Path::to_path_buf);
        if path.file_name().is_some_and(|n| n == UNLOADABLE) || path.is_file() {
            Ok(path)
        } else {
            Err(FakeLoadError(format!(
                "--model {}: no such file",
                path.display()
            )))
        }
    }

    fn load(
        &self,
        _cell: &inferbench_core::spec::EngineSettings,
        path: &Path,
    ) -> Result<FakeModel, FakeLoadError> {
        self.loads.borrow_mut().push(path.to_path_buf());
        if path.file_name().is_some_and(|n| n == UNLOADABLE) {
            return Err(FakeLoadError("not a model this engine reads".into()));
        }
        Ok(FakeModel {
            weight_bytes: std::fs::metadata(path).unwrap().len(),
        })
    }

    fn context_limit(&self, _model: &FakeModel) -> u32 {
        self.context_limit
    }

    fn max_sequences(&self) -> u32 {
        64
    }

    fn engine<'m>(
        &'m self,
        _model: &'m FakeModel,
        spec: &InprocSpec,
        cell: &inferbench_core::spec::EngineSettings,
    ) -> LoggedEngine {
        LoggedEngine {
            inner: FakeEngine::new(FakeTimings::default()),
            cell: cell.label(&spec.varying()),
            log: Rc::clone(&self.prompts),
        }
    }

    fn config(
        &self,
        spec: &InprocSpec,
        cell: &inferbench_core::spec::EngineSettings,
        path: &Path,
        engine: Option<&LoggedEngine>,
    ) -> EngineConfig {
        EngineConfig {
            model: path.display().to_string(),
            n_gpu_layers: cell.n_gpu_layers,
            use_mmap: cell.mmap,
            n_threads: cell.threads.unwrap_or(1),
            n_threads_batch: cell.threads.unwrap_or(1),
            n_ctx: engine.map_or(0, |_| 1024),
            n_batch: 0,
            n_ubatch: cell.ubatch,
            n_seq_max: 0,
            flash_attn: cell.flash_attn.name().into(),
            type_k: cell.cache_type_k.name().into(),
            type_v: cell.cache_type_v.name().into(),
            offload_kqv: cell.kv_offload,
            kv_unified: spec.kv_unified,
            swa_full: Some(spec.swa_full),
            model_type: None,
            model_size: None,
            model_n_params: None,
        }
    }

    fn weight_bytes(&self, model: &FakeModel) -> u64 {
        model.weight_bytes
    }

    fn buffers(&self, _engine: &LoggedEngine) -> Option<LlamaBuffers> {
        None
    }

    fn begin(
        &self,
        _path: &Path,
        _model: &FakeModel,
        _engine: &LoggedEngine,
        _counts: &ModelCounts,
    ) -> Result<GridStart, FakeLoadError> {
        Ok(GridStart {
            provenance: provenance(),
            notes: vec!["roofline: test ceilings".into()],
            ceiling: None,
            peak_gflop_s: Some(100.0),
            sampler: "greedy".into(),
        })
    }
}

fn provenance() -> Provenance {
    Provenance {
        tool: common::tool_info(),
        engine: EngineInfo {
            name: "fake".into(),
            version: "test".into(),
            bindings: String::new(),
            backend: "CPU".into(),
            cpu_features: None,
            devices: Vec::new(),
            threads: Some(1),
            threads_batch: Some(1),
            gpu_layers_requested: None,
            gpu_layers_offloaded: None,
            timing_source: "the fake engine's cost model".into(),
            kernel_timing: None,
            build: None,
            device_names: None,
            notes: Vec::new(),
        },
        host: inferbench_harness::host::host_info(),
        model: None,
        server: None,
        timestamp: inferbench_harness::served::now_rfc3339(),
    }
}

/// Counts the points it sampled.
#[derive(Default)]
struct CountingSampler {
    started: u32,
    stopped: u32,
}

impl PointSampler for CountingSampler {
    fn start(&mut self) {
        self.started += 1;
    }
    fn stop(&mut self) -> Option<TelemetrySummary> {
        self.stopped += 1;
        None
    }
}

/// Everything the grid reported, and the result as last saved.
#[derive(Default)]
struct Recorder {
    warnings: Vec<String>,
    planned_runs: Option<u64>,
    started: Vec<String>,
    runs: u64,
    extended: u64,
    ended: Vec<InprocPoint>,
    /// Each save: whole, the result's status and the points it held.
    saves: Vec<(bool, RunStatus, usize)>,
    last_saved: Option<InprocResult>,
    /// The whole save (counted from 1) that fails, if any.
    fail_whole_save: Option<usize>,
    /// Set the interrupt when this many points have ended.
    interrupt_after: Option<(usize, Arc<AtomicBool>)>,
}

impl GridObserver for Recorder {
    fn warning(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
    fn started(&mut self, _result: &InprocResult, _varying: &[&'static str], runs: u64) {
        self.planned_runs = Some(runs);
    }
    fn point_started(&mut self, label: &str) {
        self.started.push(label.to_string());
    }
    fn run_done(&mut self) {
        self.runs += 1;
    }
    fn point_extended(&mut self, more: u64) {
        self.extended += more;
    }
    fn point_ended(&mut self, point: &InprocPoint, _varying: &[&'static str]) {
        self.ended.push(point.clone());
        if let Some((after, flag)) = &self.interrupt_after {
            if self.ended.len() >= *after {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
    fn save(&mut self, result: &mut InprocResult, whole: bool) -> Result<(), SaveError> {
        self.saves.push((whole, result.status, result.points.len()));
        let whole_saves = self.saves.iter().filter(|s| s.0).count();
        if whole && self.fail_whole_save == Some(whole_saves) {
            return Err("disk full".into());
        }
        self.last_saved = Some(result.clone());
        Ok(())
    }
}

fn spec() -> InprocSpec {
    InprocSpec {
        prompt_tokens: vec![8],
        gen_tokens: 4,
        batch: vec![1, 2],
        warmup: 1,
        runs: 3,
        seed: 7,
        flash_attn: vec![FlashAttn::Off, FlashAttn::On],
        telemetry: false,
        ..InprocSpec::default()
    }
}

fn run(
    spec: &InprocSpec,
    engines: &FakeEngines,
    recorder: &mut Recorder,
    interrupt: Arc<AtomicBool>,
    first_point: u32,
) -> (Result<GridFinished, GridError>, CountingSampler) {
    let mut sampler = CountingSampler::default();
    let inputs = GridInputs {
        first_point,
        interrupt,
        telemetry: &mut sampler,
    };
    (run_grid(spec, engines, inputs, recorder), sampler)
}

#[test]
fn a_grid_measures_every_cell_on_one_load_and_saves_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let engines = FakeEngines::new(dir.path());
    let spec = spec();
    let mut recorder = Recorder::default();
    let (finished, sampler) = run(&spec, &engines, &mut recorder, Arc::default(), 0);
    let finished = finished.unwrap();
    let result = &finished.result;
    assert!(!finished.interrupted);
    assert_eq!(finished.failure(), None);
    assert_eq!(result.status, RunStatus::Complete);
    assert!(!result.partial);
    assert_eq!(result.settings.spec, Some(Spec::Inproc(spec.clone())));
    assert_eq!(result.settings.sampler, "greedy");
    assert!(result
        .notes
        .contains(&"roofline: test ceilings".to_string()));
    // Two cells (flash attention off, on) of two batch sizes, on one load.
    assert_eq!(engines.loads.borrow().len(), 1);
    assert_eq!(result.points.len(), 4);
    let cells: Vec<(&str, u32)> = result
        .points
        .iter()
        .map(|p| (p.config.as_ref().unwrap().flash_attn.as_str(), p.batch))
        .collect();
    assert_eq!(cells, [("off", 1), ("off", 2), ("on", 1), ("on", 2)]);
    for p in &result.points {
        assert!(p.complete && p.error.is_none());
        assert_eq!(p.runs, 3);
        let memory = p.memory.as_ref().unwrap();
        // The GGUF reader's count of the tiny model, times the context.
        assert!(memory.kv_cache_bytes.unwrap() > 0);
        assert!(memory.model_bytes > 0);
        assert!(p.roofline.is_some(), "a decode roofline from the counts");
        let prefill = p.prefill_roofline.as_ref().unwrap();
        assert!(prefill.flops > 0);
        assert!(p.validity.is_some());
    }
    // The observer saw every run and point; telemetry spanned each point.
    assert_eq!(recorder.planned_runs, Some(4 * (1 + 3)));
    assert_eq!(recorder.runs, 4 * (1 + 3));
    assert_eq!(recorder.started.len(), 4);
    assert!(recorder.started[0].starts_with("pp8 tg4 B1 d0 flash_attn=off"));
    assert_eq!(recorder.ended.len(), 4);
    assert_eq!((sampler.started, sampler.stopped), (4, 4));
    // Saved at the start (the result alone), after each point and at the end.
    let whole: Vec<(RunStatus, usize)> = recorder
        .saves
        .iter()
        .filter(|s| s.0)
        .map(|s| (s.1, s.2))
        .collect();
    assert_eq!(recorder.saves[0], (false, RunStatus::Running, 0));
    assert_eq!(whole.first(), Some(&(RunStatus::Running, 1)));
    assert_eq!(whole.last(), Some(&(RunStatus::Complete, 4)));
    assert_eq!(whole.len(), 4 + 1);
    assert_eq!(recorder.last_saved.as_ref().unwrap().points.len(), 4);
    // Each cell decoded the very same prompts, and no two runs alike.
    let prompts = engines.prompts.borrow();
    assert_eq!(
        prompts.len(),
        3,
        "the begin probe's engine, then one a cell"
    );
    assert!(prompts[0].1.is_empty());
    assert_eq!(prompts[1].1, prompts[2].1);
    assert_ne!(prompts[1].0, prompts[2].0);
    let mut distinct = prompts[1].1.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), prompts[1].1.len());
}

#[test]
fn the_first_point_names_the_prompt_streams() {
    let dir = tempfile::tempdir().unwrap();
    let spec = InprocSpec {
        flash_attn: vec![FlashAttn::Off],
        batch: vec![1],
        ..spec()
    };
    let drawn = |first_point| {
        let engines = FakeEngines::new(dir.path());
        let (finished, _) = run(
            &spec,
            &engines,
            &mut Recorder::default(),
            Arc::default(),
            first_point,
        );
        finished.unwrap();
        let prompts = engines.prompts.borrow();
        prompts.last().unwrap().1.clone()
    };
    assert_eq!(drawn(0), drawn(0));
    assert_ne!(drawn(0), drawn(1));
}

#[test]
fn a_model_that_cannot_be_loaded_fails_its_cells_and_the_grid_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let engines = FakeEngines::new(dir.path());
    let spec = InprocSpec {
        model: vec![dir.path().join("tiny.gguf"), dir.path().join(UNLOADABLE)],
        flash_attn: vec![FlashAttn::Off],
        ..spec()
    };
    let mut recorder = Recorder::default();
    let (finished, _) = run(&spec, &engines, &mut recorder, Arc::default(), 0);
    let result = finished.unwrap().result;
    assert_eq!(result.status, RunStatus::Complete);
    assert!(result.partial, "failed points make the result partial");
    assert_eq!(result.points.len(), 4);
    let errors: Vec<Option<&str>> = result.points.iter().map(|p| p.error.as_deref()).collect();
    assert_eq!(errors[..2], [None, None]);
    for error in &errors[2..] {
        let error = error.unwrap();
        assert!(error.contains(UNLOADABLE), "{error}");
        assert!(error.contains("not a model this engine reads"), "{error}");
    }
    assert!(result.points[2]
        .config
        .as_ref()
        .unwrap()
        .model
        .ends_with(UNLOADABLE));
    assert_eq!(engines.loads.borrow().len(), 2);
}

#[test]
fn an_interrupt_ends_the_grid_with_what_it_measured() {
    let dir = tempfile::tempdir().unwrap();
    let engines = FakeEngines::new(dir.path());
    let interrupt = Arc::new(AtomicBool::new(false));
    let mut recorder = Recorder {
        interrupt_after: Some((1, Arc::clone(&interrupt))),
        ..Recorder::default()
    };
    let (finished, _) = run(&spec(), &engines, &mut recorder, interrupt, 0);
    let finished = finished.unwrap();
    assert!(finished.interrupted);
    assert_eq!(finished.result.status, RunStatus::Interrupted);
    assert!(finished.result.partial);
    assert_eq!(finished.result.points.len(), 1);
    assert_eq!(recorder.last_saved.unwrap().status, RunStatus::Interrupted);
}

#[test]
fn a_failed_save_stops_the_grid_and_leaves_a_failed_file() {
    let dir = tempfile::tempdir().unwrap();
    let engines = FakeEngines::new(dir.path());
    // The save after the first point fails.
    let mut recorder = Recorder {
        fail_whole_save: Some(1),
        ..Recorder::default()
    };
    let (finished, _) = run(&spec(), &engines, &mut recorder, Arc::default(), 0);
    let finished = finished.unwrap();
    assert_eq!(finished.failure(), Some("disk full"));
    let saved = recorder.last_saved.unwrap();
    assert_eq!(saved.status, RunStatus::Failed);
    assert_eq!(saved.error.as_deref(), Some("disk full"));
    assert!(saved.partial);
    assert_eq!(
        saved.points.len(),
        1,
        "the point measured before the failure"
    );
    assert_eq!(recorder.ended.len(), 1, "nothing measured after it");
}

#[test]
fn the_last_save_failing_is_an_error_after_a_failed_file() {
    let dir = tempfile::tempdir().unwrap();
    let engines = FakeEngines::new(dir.path());
    let spec = InprocSpec {
        flash_attn: vec![FlashAttn::Off],
        batch: vec![1],
        ..spec()
    };
    // The point's save works, the end's fails.
    let mut recorder = Recorder {
        fail_whole_save: Some(2),
        ..Recorder::default()
    };
    let (finished, _) = run(&spec, &engines, &mut recorder, Arc::default(), 0);
    assert!(matches!(finished, Err(GridError::Save(_))));
    let (whole, status, points) = *recorder.saves.last().unwrap();
    assert_eq!((whole, status, points), (false, RunStatus::Failed, 1));
}

#[test]
fn until_precise_adds_runs_to_a_point() {
    let dir = tempfile::tempdir().unwrap();
    let engines = FakeEngines::new(dir.path());
    let spec = InprocSpec {
        flash_attn: vec![FlashAttn::Off],
        batch: vec![1],
        runs: 2,
        until_precise: Some(inferbench_core::spec::text::precision_targets("itl.p50=5%").unwrap()),
        ..spec()
    };
    let mut recorder = Recorder::default();
    let (finished, _) = run(&spec, &engines, &mut recorder, Arc::default(), 0);
    let point = &finished.unwrap().result.points[0];
    let precision = point.precision.as_ref().unwrap();
    assert!(precision.reached, "the fake engine's timings never vary");
    assert_eq!(precision.stopped_by, "precise");
    assert!(point.runs > 2, "runs {}", point.runs);
    assert_eq!(recorder.extended, u64::from(point.runs - 2));
    assert_eq!(recorder.runs, 1 + u64::from(point.runs));
}

#[test]
fn checks_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engines = FakeEngines {
        context_limit: 10,
        ..FakeEngines::new(dir.path())
    };
    let mut recorder = Recorder::default();
    // 8 prompt tokens + 3 more generated: 11 tokens of context.
    let (finished, _) = run(&spec(), &engines, &mut recorder, Arc::default(), 0);
    let Err(GridError::Shape(message)) = finished else {
        panic!("{finished:?}");
    };
    assert!(message.contains("needs 11 tokens of context"), "{message}");
    assert!(recorder.saves.is_empty(), "no file for a grid refused");

    let engines = FakeEngines::new(dir.path());
    let invalid = InprocSpec {
        flash_attn: vec![FlashAttn::Off],
        cache_type_v: vec![CacheType::Q8_0],
        ..spec()
    };
    let (finished, _) = run(&invalid, &engines, &mut recorder, Arc::default(), 0);
    assert!(matches!(finished, Err(GridError::Usage(_))), "{finished:?}");
    assert!(recorder.warnings[0].contains("needs flash attention"));

    let missing = InprocSpec {
        model: vec![dir.path().join("absent.gguf")],
        ..spec()
    };
    let (finished, _) = run(&missing, &engines, &mut recorder, Arc::default(), 0);
    let Err(GridError::Model(e)) = finished else {
        panic!("{finished:?}");
    };
    assert!(e.to_string().contains("absent.gguf: no such file"));
}
