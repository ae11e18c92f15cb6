//! The engine grid as it runs: each cell's points measured, saved and
//! shown, a failed cell recorded as such.

use super::*;

/// The grid as it is measured: the result so far and where it goes.
pub(super) struct Grid<'a> {
    pub(super) spec: &'a InprocSpec,
    pub(super) shapes: &'a [BatchShape],
    pub(super) first_point: u32,
    pub(super) varying: &'a [&'static str],
    pub(super) writer: ResultWriter,
    pub(super) result: InprocResult,
    pub(super) telemetry: PointTelemetry,
    pub(super) interrupt: Arc<AtomicBool>,
    pub(super) bar: ProgressBar,
    pub(super) failure: Option<String>,
    pub(super) csv: Option<PathBuf>,
    /// `--llama-bench-out` and the rows' build label.
    pub(super) llama_bench: Option<(PathBuf, BuildLabel)>,
    pub(super) ceiling: Option<BandwidthCeiling>,
    pub(super) peak_gflop_s: Option<f64>,
}

impl Grid<'_> {
    pub(super) fn stopped(&self) -> bool {
        self.failure.is_some() || self.interrupt.load(Ordering::Relaxed)
    }

    /// What llama.cpp was given for `cell` at the shape it last configured.
    pub(super) fn config(
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
    pub(super) fn fail_cell(&mut self, cell: &EngineSettings, path: &Path, error: &str) {
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

    pub(super) fn save(&mut self) {
        if let Err(e) = save(&self.writer, &mut self.result, self.csv.as_deref()) {
            self.failure.get_or_insert(format!("{e:#}"));
        }
        if let Err(e) = self.write_llama_bench() {
            self.failure.get_or_insert(format!("{e:#}"));
        }
    }

    /// Writes `--llama-bench-out` with the points measured so far.
    pub(super) fn write_llama_bench(&self) -> Result<Option<llama_bench_export::Export>> {
        let Some((path, build)) = &self.llama_bench else {
            return Ok(None);
        };
        let export = llama_bench_export::rows(&self.result, build);
        llama_bench_export::write(path, &export.rows).context("--llama-bench-out")?;
        Ok(Some(export))
    }

    /// Measures every shape of the sweep in one cell of the grid. A point
    /// llama.cpp fails on is recorded with its error; the grid goes on.
    pub(super) fn measure_cell(
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
    pub(super) fn measure_point(
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
    pub(super) fn record(
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
    pub(super) fn finish(mut self, out_path: &Path, planned: usize) -> Result<Sweep> {
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
