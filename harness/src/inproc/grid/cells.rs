//! The grid as it runs: each cell's points measured, completed and saved,
//! a failed cell recorded as such, the final status.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use inferbench_core::engine::{BatchShape, Engine};
use inferbench_core::error_chain;
use inferbench_core::schema::validity::Precision;
use inferbench_core::schema::{InprocPoint, InprocResult, PointMemory, RunStatus};
use inferbench_core::spec::{EngineSettings, InprocSpec};

use super::{
    measure_point_until, GridEngines, GridError, GridFinished, GridObserver, ModelCounts,
    SAVE_EVERY,
};
use crate::inproc::{unmeasured_point, PointSpec, RunnerError};
use crate::precision;
use crate::roofline::{self, BandwidthCeiling};
use crate::telemetry::PointSampler;

/// The grid as it is measured: the result so far.
pub(super) struct Grid<'a> {
    pub(super) spec: &'a InprocSpec,
    pub(super) shapes: &'a [BatchShape],
    pub(super) first_point: u32,
    pub(super) varying: &'a [&'static str],
    pub(super) result: InprocResult,
    pub(super) telemetry: &'a mut dyn PointSampler,
    pub(super) interrupt: Arc<AtomicBool>,
    /// What stopped the run, when something but an interrupt did.
    pub(super) failure: Option<String>,
    pub(super) ceiling: Option<BandwidthCeiling>,
    pub(super) peak_gflop_s: Option<f64>,
}

/// One cell as it is measured: its settings, model file, loaded model and
/// what the GGUF reader counted of it.
pub(super) struct CellPlace<'c, M> {
    pub(super) cell: &'c EngineSettings,
    pub(super) path: &'c std::path::Path,
    pub(super) model: &'c M,
    pub(super) counts: &'c ModelCounts,
}

/// How many runs a point may grow to and for how long, under
/// `--until-precise`.
struct Precise<'s> {
    targets: &'s [inferbench_core::spec::PrecisionTarget],
    max_runs: u32,
    max_duration: Option<std::time::Duration>,
}

impl Grid<'_> {
    pub(super) fn stopped(&self) -> bool {
        self.failure.is_some() || self.interrupt.load(Ordering::Relaxed)
    }

    /// Saves the result after a point; a failed save stops the grid.
    fn save(&mut self, observer: &mut dyn GridObserver) {
        if let Err(e) = observer.save(&mut self.result, true) {
            self.failure.get_or_insert(error_chain(e.as_ref()));
        }
    }

    /// Records every point of `cell` as failed with `error`, and goes on.
    pub(super) fn fail_cell<G: GridEngines>(
        &mut self,
        engines: &G,
        cell: &EngineSettings,
        path: &std::path::Path,
        error: &str,
        observer: &mut dyn GridObserver,
    ) {
        for shape in self.shapes {
            let mut point = unmeasured_point(*shape);
            point.config = Some(engines.config(self.spec, cell, path, None));
            point.error = Some(error.to_string());
            point.validity = Some(point.assess());
            observer.point_ended(&point, self.varying);
            self.result.points.push(point);
        }
        self.save(observer);
    }

    /// Measures every shape of the sweep in one cell of the grid. A point
    /// the engine fails on is recorded with its error; the grid goes on.
    pub(super) fn measure_cell<'m, G: GridEngines>(
        &mut self,
        engines: &'m G,
        engine: &mut G::Engine<'m>,
        place: &CellPlace<'_, G::Model>,
        observer: &mut dyn GridObserver,
    ) {
        for (index, shape) in self.shapes.iter().enumerate() {
            if self.stopped() {
                return;
            }
            observer.point_started(&format!(
                "pp{} tg{} B{} d{} {}",
                shape.prompt_tokens,
                shape.gen_tokens,
                shape.sequences,
                shape.depth,
                place.cell.label(self.varying)
            ));
            let point_spec = PointSpec {
                shape: *shape,
                warmup_runs: self.spec.warmup,
                runs: self.spec.runs,
                seed: self.spec.seed,
                point: self.first_point + index as u32,
            };
            let peak_reset = crate::host::reset_peak_rss();
            let Some(measured) = self.measure_point(engine, &point_spec, observer) else {
                return;
            };
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
            self.record(point, engines, engine, place, peak_reset, observer);
        }
    }

    /// The limits `--until-precise` sets on a point of `runs` runs.
    fn precise(spec: &InprocSpec, runs: u32) -> Precise<'_> {
        let targets = spec.until_precise.as_deref().unwrap_or_default();
        let max_runs = spec.max_runs.unwrap_or_else(|| {
            let needed = precision::observations_needed(targets);
            runs.saturating_mul(20)
                .max(u32::try_from(needed).unwrap_or(u32::MAX))
        });
        Precise {
            targets,
            max_runs,
            max_duration: spec.max_duration,
        }
    }

    /// One point's runs, with telemetry over the measured ones and the
    /// point saved every second while it runs; `None` when saving failed.
    fn measure_point<E: Engine>(
        &mut self,
        engine: &mut E,
        point_spec: &PointSpec,
        observer: &mut dyn GridObserver,
    ) -> Option<Result<InprocPoint, RunnerError<E::Error>>> {
        let mut last_save = Instant::now();
        let mut save_error = None;
        if point_spec.warmup_runs == 0 {
            self.telemetry.start();
        }
        let Precise {
            targets,
            max_runs,
            max_duration,
        } = Self::precise(self.spec, point_spec.runs);
        let (telemetry, result) = (&mut *self.telemetry, &self.result);
        // Both closures report to the observer; the runner calls them in turn.
        let observer = RefCell::new(observer);
        // Set by the first measured run, read by `more`: both closures see it.
        // The time cap counts from the end of warm-up.
        let measuring_since: Cell<Option<Instant>> =
            Cell::new((point_spec.warmup_runs == 0).then(Instant::now));
        let stopped_by = Cell::new("interrupted");
        // --until-precise: runs are added while a statistic is too wide.
        let more = |point: &InprocPoint| -> u32 {
            if targets.is_empty() {
                return 0;
            }
            let checks = precision::check_inproc(point, targets);
            let out_of_time = max_duration
                .zip(measuring_since.get())
                .is_some_and(|(d, since)| since.elapsed() >= d);
            let wanted = precision::more_needed(&checks, u64::from(point.runs));
            stopped_by.set(match wanted {
                None => "precise",
                Some(_) if point.runs >= max_runs => "max_runs",
                Some(_) if out_of_time => "max_duration",
                Some(_) => "",
            });
            match wanted {
                Some(n) if !out_of_time => {
                    let n = u32::try_from(n).unwrap_or(u32::MAX);
                    let added = n.min(max_runs.saturating_sub(point.runs));
                    observer.borrow_mut().point_extended(u64::from(added));
                    added
                }
                _ => 0,
            }
        };
        let measured = measure_point_until(engine, point_spec, &self.interrupt, more, |progress| {
            let warmup_over = progress.warmup && progress.done == progress.of;
            if warmup_over {
                measuring_since.set(Some(Instant::now()));
            }
            observer.borrow_mut().run_done();
            // Telemetry covers the measured runs: it starts when warm-up ends.
            if warmup_over {
                telemetry.start();
            }
            // A long point is saved while it runs, so that even a kill that
            // cannot be caught loses at most a second of measurements.
            if !progress.warmup && last_save.elapsed() >= SAVE_EVERY && save_error.is_none() {
                let mut snapshot = result.clone();
                snapshot.points.push(progress.snapshot());
                save_error = observer.borrow_mut().save(&mut snapshot, false).err();
                last_save = Instant::now();
            }
        });
        let summary = self.telemetry.stop();
        if let Some(e) = save_error {
            self.failure = Some(error_chain(e.as_ref()));
            return None;
        }
        let stopped_by = stopped_by.get();
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
    /// memory and rooflines, reports it and saves the result.
    fn record<'m, G: GridEngines>(
        &mut self,
        mut point: InprocPoint,
        engines: &'m G,
        engine: &G::Engine<'m>,
        place: &CellPlace<'_, G::Model>,
        peak_reset: bool,
        observer: &mut dyn GridObserver,
    ) {
        let config = engines.config(self.spec, place.cell, place.path, Some(engine));
        let kv_bytes_per_cell = place.counts.kv_bytes_per_cell(place.cell);
        point.memory = Some(PointMemory {
            model_bytes: engines.weight_bytes(place.model),
            kv_cache_bytes: kv_bytes_per_cell.map(|b| b * u64::from(config.n_ctx)),
            kv_cache_source: "computed: n_ctx cells x layers x (K row + V row) at the cache types, from the GGUF's attention shape; sliding-window layers counted as full (an overestimate for them without --swa-full, where llama.cpp keeps a window-sized cache; llama_buffers has llama.cpp's own figure)".into(),
            peak_rss_bytes: crate::host::peak_rss_bytes(),
            peak_rss_source: if peak_reset {
                "VmHWM, reset before the point".into()
            } else {
                "VmHWM since the process started (the kernel refused a reset)".into()
            },
            // A context the engine refused may have logged some buffers.
            llama_buffers: engines.buffers(engine).filter(|_| point.error.is_none()),
        });
        point.config = Some(config);
        point.validity = Some(point.assess());
        if let (Some(t), Some(kv), Some(step)) = (
            &place.counts.traffic,
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
        if let (Some(c), Some(prefill)) = (&place.counts.compute, point.prefill_ms.as_ref()) {
            point.prefill_roofline = Some(roofline::prefill_roofline(
                c.flops(point.prompt_tokens, point.batch),
                prefill.p50,
                self.peak_gflop_s,
            ));
        }
        observer.point_ended(&point, self.varying);
        // A point interrupted before its first measured run holds no data;
        // a failed one holds its error.
        if point.runs > 0 || point.error.is_some() {
            self.result.points.push(point);
        }
        self.save(observer);
    }

    /// The final status, saved. A failure to save it is saved once more,
    /// as failed, where it can be.
    pub(super) fn finish(
        self,
        planned: usize,
        observer: &mut dyn GridObserver,
    ) -> Result<GridFinished, GridError> {
        let interrupted = self.interrupt.load(Ordering::Relaxed);
        let mut result = self.result;
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
        if let Err(e) = observer.save(&mut result, true) {
            result.status = RunStatus::Failed;
            result.error = Some(error_chain(e.as_ref()));
            result.partial = true;
            // The JSON alone: an output of the whole save may be what failed.
            let _ = observer.save(&mut result, false);
            return Err(GridError::Save(e));
        }
        Ok(GridFinished {
            result,
            interrupted,
        })
    }
}
