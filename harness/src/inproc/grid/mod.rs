//! The engine grid from its spec: every list of engine settings of an
//! [`InprocSpec`] expanded into cells (as llama-bench does), and in each
//! cell the sweep of prompt lengths, depths and batch sizes, each point
//! measured by [`measure_point_until`] and completed with its
//! configuration, memory and rooflines.
//!
//! The runner knows no engine and writes nothing: a [`GridEngines`] loads
//! models and makes engines (llama.cpp in the binary, a fake in tests), and
//! a [`GridObserver`] shows the run and saves the result whenever the
//! runner says it should.
//!
//! ```text
//! let finished = run_grid(&spec, &engines, GridInputs { .. }, &mut observer)?;
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use inferbench_core::engine::{BatchShape, Engine};
use inferbench_core::error_chain;
use inferbench_core::schema::LlamaBuffers;
use inferbench_core::schema::{
    EngineConfig, InprocPoint, InprocResult, InprocSettings, Mode, Provenance, RunStatus,
};
use inferbench_core::spec::{EngineSettings, InprocSpec, Spec};
use inferbench_models::gguf::{DecodeTraffic, PrefillCompute};
use inferbench_models::GgufFile;

use super::measure_point_until;
use crate::roofline::BandwidthCeiling;
use crate::telemetry::PointSampler;
use crate::SaveError;

mod cells;

use cells::Grid;

/// How often a point in flight is saved.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// A boxed cause from an engine or an observer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the grid needs of an engine: its models loaded, an engine made for
/// each cell, and what the engine was given, for the result.
pub trait GridEngines {
    /// A loaded model, shared by the cells that load it alike.
    type Model;
    /// An engine over a loaded model, one for each cell.
    type Engine<'m>: Engine
    where
        Self: 'm;
    /// Why a model could not be found or loaded (any error, or
    /// `anyhow::Error`).
    type Error: Into<BoxError>;

    /// The file a cell's `model` names (`None`: the engine's default),
    /// checked to exist.
    fn model_path(&self, model: Option<&Path>) -> Result<PathBuf, Self::Error>;
    /// Loads the model of `cell` (its layers on a GPU, memory-mapped or not).
    fn load(&self, cell: &EngineSettings, path: &Path) -> Result<Self::Model, Self::Error>;
    /// The longest context `model` was trained for: no point may need more
    /// per sequence.
    fn context_limit(&self, model: &Self::Model) -> u32;
    /// The most sequences one batch may hold.
    fn max_sequences(&self) -> u32;
    /// An engine over `model` with the settings of `cell`.
    fn engine<'m>(
        &'m self,
        model: &'m Self::Model,
        spec: &InprocSpec,
        cell: &EngineSettings,
    ) -> Self::Engine<'m>;
    /// What the engine was given for `cell`: at the shape `engine` last
    /// configured, or what is known before one exists.
    fn config(
        &self,
        spec: &InprocSpec,
        cell: &EngineSettings,
        path: &Path,
        engine: Option<&Self::Engine<'_>>,
    ) -> EngineConfig;
    /// Bytes of the model's weights.
    fn weight_bytes(&self, model: &Self::Model) -> u64;
    /// The buffers the engine's context allocated, as it reported them.
    fn buffers(&self, engine: &Self::Engine<'_>) -> Option<LlamaBuffers>;
    /// The run's provenance and the machine's ceilings, taken with the first
    /// cell's model and engine before any point is measured (so that the
    /// probes disturb none).
    fn begin(
        &self,
        path: &Path,
        model: &Self::Model,
        engine: &Self::Engine<'_>,
        counts: &ModelCounts,
    ) -> Result<GridStart, Self::Error>;
}

/// What [`GridEngines::begin`] finds before the first point.
#[derive(Debug, Clone)]
pub struct GridStart {
    /// The tool, host (with its ceilings), engine and model.
    pub provenance: Provenance,
    /// Notes for the result (the ceilings' caveats).
    pub notes: Vec<String>,
    /// The memory bandwidth a decode step's roofline is drawn against.
    pub ceiling: Option<BandwidthCeiling>,
    /// The compute peak a prefill's roofline is drawn against.
    pub peak_gflop_s: Option<f64>,
    /// The result's `settings.sampler`.
    pub sampler: String,
}

/// What a grid reports as it goes. Every method but [`Self::save`] has a
/// default that ignores the event.
pub trait GridObserver {
    /// A warning for whoever watches; the runner keeps it among the
    /// result's notes where it belongs there.
    fn warning(&mut self, _message: &str) {}
    /// The result has begun (its provenance known): `runs` runs are planned
    /// over the grid, warm-ups included; `varying` names the settings that
    /// tell its cells apart.
    fn started(&mut self, _result: &InprocResult, _varying: &[&'static str], _runs: u64) {}
    /// A point starts: its shape and cell, worded for a reader.
    fn point_started(&mut self, _label: &str) {}
    /// One run of the point is over (warm-up or measured).
    fn run_done(&mut self) {}
    /// The point goes on with `more` runs (it is not yet precise enough).
    fn point_extended(&mut self, _more: u64) {}
    /// A point is over: measured, failed, or interrupted before its first
    /// measured run (then reported but not kept).
    fn point_ended(&mut self, _point: &InprocPoint, _varying: &[&'static str]) {}
    /// Saves the result as it stands. `whole`: after a point and at the
    /// end, with every output; otherwise the result alone: the first file,
    /// a save during a point (whose last point is the one in flight), or a
    /// failed end's last try.
    fn save(&mut self, result: &mut InprocResult, whole: bool) -> Result<(), SaveError>;
}

/// What a grid is given besides its spec.
pub struct GridInputs<'a> {
    /// The first point's number: prompt streams are named by it and the
    /// shape's place in the sweep ([`super::PointSpec::point`]), so that a
    /// caller measuring one sweep in parts draws the prompts a served run
    /// of the whole sweep sends.
    pub first_point: u32,
    /// Set when the run is to stop; the point in flight ends with what it
    /// measured.
    pub interrupt: Arc<AtomicBool>,
    /// Samples the machine over each point's measured runs.
    pub telemetry: &'a mut dyn PointSampler,
}

/// Why a grid could not start, or could not save its end.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The spec cannot run (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A cell's model is not there.
    #[error(transparent)]
    Model(BoxError),
    /// The first cell's model could not be loaded.
    #[error("--model {}", path.display())]
    Load {
        /// The model file.
        path: PathBuf,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A point of the sweep cannot fit the first cell's model or engine.
    #[error("{0}")]
    Shape(String),
    /// The provenance or the machine's ceilings could not be had.
    #[error(transparent)]
    Begin(BoxError),
    /// The observer could not save the result (the first file, or the
    /// last: it was then saved once more as failed, if it could be).
    #[error("saving the result")]
    Save(#[source] SaveError),
}

/// What a finished grid leaves.
#[derive(Debug)]
pub struct GridFinished {
    /// The result, as last saved.
    pub result: InprocResult,
    /// The run was interrupted.
    pub interrupted: bool,
}

impl GridFinished {
    /// What stopped the run, if anything but an interrupt did (a save, or
    /// a runner error): the result is saved `failed` with it.
    pub fn failure(&self) -> Option<&str> {
        (self.result.status == RunStatus::Failed)
            .then_some(self.result.error.as_deref())
            .flatten()
    }
}

/// What the GGUF reader counts of one model: a decode step's bytes and a
/// prefill's FLOPs (absent when the file cannot be read).
#[derive(Debug, Clone, Default)]
pub struct ModelCounts {
    /// Bytes a decode step reads.
    pub traffic: Option<DecodeTraffic>,
    /// FLOPs a prefill does.
    pub compute: Option<PrefillCompute>,
}

impl ModelCounts {
    /// Counts what `path` holds; nothing where it is not a GGUF file.
    pub fn read(path: &Path) -> ModelCounts {
        let gguf = GgufFile::open(path).ok();
        ModelCounts {
            traffic: gguf.as_ref().map(GgufFile::decode_traffic),
            compute: gguf.as_ref().map(GgufFile::prefill_compute),
        }
    }

    /// Bytes one context cell of the KV cache holds over every layer, at
    /// the cell's cache types.
    pub fn kv_bytes_per_cell(&self, cell: &EngineSettings) -> Option<u64> {
        self.traffic.as_ref().map(|t| {
            t.layers
                * (cell.cache_type_k.bytes(t.k_row_elements)
                    + cell.cache_type_v.bytes(t.v_row_elements))
        })
    }
}

/// The sweep's points: prompt lengths, then depths, then batch sizes, so
/// that each (prompt, depth) keeps its batch curve together.
pub fn shapes(spec: &InprocSpec) -> Vec<BatchShape> {
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

/// Measures every cell of `spec`'s grid and, in each, every point of its
/// sweep, saving the result through `observer` as it goes: at the start,
/// after every point, every [`SAVE_EVERY`] during one, and at the end.
/// Cells that load the model alike share one load. A cell whose model
/// cannot be loaded, or a point the engine fails on, is recorded with its
/// error and the grid goes on.
pub fn run_grid<G: GridEngines>(
    spec: &InprocSpec,
    engines: &G,
    inputs: GridInputs<'_>,
    observer: &mut dyn GridObserver,
) -> Result<GridFinished, GridError> {
    let varying = spec.varying();
    let cells = spec.configurations();
    let (valid, skipped) = valid_cells(&cells, &varying);
    for note in &skipped {
        observer.warning(note);
    }
    let Some(&first) = valid.first() else {
        return Err(GridError::Usage(
            "every cell of the grid is invalid (see the warnings)".into(),
        ));
    };
    let paths = model_paths(engines, &valid)?;
    let path_of = |cell: &EngineSettings| -> PathBuf {
        paths
            .iter()
            .find(|(m, _)| *m == cell.model)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    let shapes = shapes(spec);
    let first_path = path_of(first);
    let loaded = engines
        .load(first, &first_path)
        .map_err(|e| GridError::Load {
            path: first_path.clone(),
            source: e.into(),
        })?;
    check_shapes(engines, &shapes, &loaded, &first_path).map_err(GridError::Shape)?;
    let counts = ModelCounts::read(&first_path);
    let start = {
        let engine = engines.engine(&loaded, spec, first);
        engines
            .begin(&first_path, &loaded, &engine, &counts)
            .map_err(|e| GridError::Begin(e.into()))?
    };
    let first_config = engines.config(spec, first, &first_path, None);
    let mut notes = start.notes.clone();
    notes.extend(skipped);
    let mut result = new_result(spec, &start, &first_config, notes);
    // The first file: the result alone (its other outputs come with points).
    observer.save(&mut result, false).map_err(GridError::Save)?;
    let planned_runs = (valid.len() * shapes.len()) as u64 * u64::from(spec.warmup + spec.runs);
    observer.started(&result, &varying, planned_runs);

    let mut grid = Grid {
        spec,
        shapes: &shapes,
        first_point: inputs.first_point,
        varying: &varying,
        result,
        telemetry: inputs.telemetry,
        interrupt: inputs.interrupt,
        failure: None,
        ceiling: start.ceiling,
        peak_gflop_s: start.peak_gflop_s,
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
            _ => match engines
                .load(group[0], &path)
                .map_err(|e| format!("--model {}: {}", path.display(), error_chain(&*e.into())))
                .and_then(|l| check_shapes(engines, &shapes, &l, &path).map(|()| l))
            {
                Ok(l) => (ModelCounts::read(&path), l),
                Err(e) => {
                    for cell in group {
                        grid.fail_cell(engines, cell, &path, &e, observer);
                    }
                    continue;
                }
            },
        };
        for cell in group {
            if grid.stopped() {
                break;
            }
            let mut engine = engines.engine(&loaded, spec, cell);
            let place = cells::CellPlace {
                cell,
                path: &path,
                model: &loaded,
                counts: &counts,
            };
            grid.measure_cell(engines, &mut engine, &place, observer);
        }
    }
    grid.finish(valid.len() * shapes.len(), observer)
}

/// The grid's cells the engine can run, and a note for each one skipped
/// (an invalid combination).
fn valid_cells<'a>(
    cells: &'a [EngineSettings],
    varying: &[&str],
) -> (Vec<&'a EngineSettings>, Vec<String>) {
    let mut skipped = Vec::new();
    let mut valid = Vec::new();
    for cell in cells {
        match cell.invalid() {
            Some(reason) => skipped.push(format!("cell {} skipped: {reason}", cell.label(varying))),
            None => valid.push(cell),
        }
    }
    (valid, skipped)
}

/// Every cell's model file, resolved once.
fn model_paths<G: GridEngines>(
    engines: &G,
    cells: &[&EngineSettings],
) -> Result<Vec<(Option<PathBuf>, PathBuf)>, GridError> {
    let mut paths: Vec<(Option<PathBuf>, PathBuf)> = Vec::new();
    for cell in cells {
        if paths.iter().any(|(m, _)| *m == cell.model) {
            continue;
        }
        let path = engines
            .model_path(cell.model.as_deref())
            .map_err(|e| GridError::Model(e.into()))?;
        paths.push((cell.model.clone(), path));
    }
    Ok(paths)
}

/// Refuses shapes the model cannot hold, before anything is measured on it.
fn check_shapes<G: GridEngines>(
    engines: &G,
    shapes: &[BatchShape],
    model: &G::Model,
    path: &Path,
) -> Result<(), String> {
    let max = engines.context_limit(model);
    let max_sequences = engines.max_sequences();
    for s in shapes {
        if s.context_per_sequence() > max {
            return Err(format!(
                "--depth {} with --prompt-tokens {} and --gen-tokens {} needs {} tokens of context \
                 per sequence, but {} allows at most {max}",
                s.depth,
                s.prompt_tokens,
                s.gen_tokens,
                s.context_per_sequence(),
                path.display()
            ));
        }
        if s.sequences > max_sequences {
            return Err(format!(
                "--batch {}: the engine decodes at most {max_sequences} sequences together",
                s.sequences,
            ));
        }
    }
    Ok(())
}

/// The result as a grid starts: running, no point yet.
fn new_result(
    spec: &InprocSpec,
    start: &GridStart,
    first: &EngineConfig,
    notes: Vec<String>,
) -> InprocResult {
    // The first cell's settings: a grid's every cell is in its points'
    // configs and in the spec.
    let settings = InprocSettings {
        model: first.model.clone(),
        prompt_tokens: spec.prompt_tokens.clone(),
        gen_tokens: spec.gen_tokens,
        batch: spec.batch.clone(),
        warmup: spec.warmup,
        runs: spec.runs,
        seed: spec.seed,
        threads: first.n_threads,
        threads_batch: first.n_threads_batch,
        n_gpu_layers: first.n_gpu_layers,
        ubatch: first.n_ubatch,
        kv_unified: first.kv_unified,
        sampler: start.sampler.clone(),
        stop_at_eos: false,
        depth: spec.depth.clone(),
        spec: Some(Spec::Inproc(spec.clone())),
    };
    InprocResult::running(
        Mode::Inproc,
        start.provenance.clone(),
        settings,
        notes,
        crate::served::now_rfc3339(),
    )
}
