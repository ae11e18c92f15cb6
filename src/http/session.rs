//! A run's points: each measured (warm-up, its requests, their
//! extensions), kept and saved, or taken from a resumed file; the SLO
//! searches' probes (`--find-max-rate`, `--find-max-concurrency`).

use super::*;

/// Everything the points of one run share.
pub(super) struct Session {
    pub(super) runtime: ClientRuntime,
    pub(super) client: Arc<HttpClient>,
    pub(super) workload: Arc<Workload>,
    pub(super) limits: LimitsPlan,
    /// Points measured (or kept from --resume) so far: the next one's place
    /// in the sweep, for per-load request counts.
    pub(super) position: usize,
    pub(super) seed: u64,
    pub(super) prompt_seed: u64,
    /// Points measured or attempted so far: the next point's prompt streams.
    pub(super) next_point: u32,
    /// Finished points of the `--resume` file still to be taken, in order.
    pub(super) kept: std::collections::VecDeque<HttpPoint>,
    pub(super) warmup: u64,
    pub(super) slo: Slo,
    /// `--max-requests-per-probe`: how far an undecided probe is extended.
    pub(super) max_requests_per_probe: Option<u64>,
    /// Probes called by their point estimate so far.
    pub(super) called_by_estimate: u32,
    /// `--until-precise`: every point grows until its statistics are precise.
    pub(super) precision: Option<PrecisionPlan>,
    /// `--slice`: each point's time slices.
    pub(super) slice: Option<Duration>,
    /// `--shard`: this run's part of the load.
    pub(super) shard: Option<Shard>,
    /// `--start-at`, Unix seconds: when the first point starts.
    pub(super) start_at: Option<f64>,
    /// `--point-interval`: point p starts at `start_at` + p × it.
    pub(super) point_interval: Option<Duration>,
    pub(super) interrupt: Arc<AtomicBool>,
    pub(super) writer: ResultWriter,
    pub(super) csv: Option<std::path::PathBuf>,
    pub(super) log: Option<BufWriter<std::fs::File>>,
    pub(super) result: HttpResult,
    pub(super) failed_requests: u64,
    pub(super) tokenizer: Option<Arc<Tokenizer>>,
    pub(super) telemetry: PointTelemetry,
    pub(super) metrics: Option<MetricsPlan>,
    pub(super) export_vllm: Option<VllmExportPlan>,
}

impl Session {
    /// The run's points: a search's probes, or every load in turn until an
    /// interrupt.
    pub(super) fn run(&mut self, spec: &HttpSpec, loads: &[(Load, LoadDescription)]) -> Result<()> {
        match (spec.find_max_rate, spec.find_max_concurrency) {
            (_, Some(start)) => search_max_concurrency(self, start)
                .map(|search| self.result.max_concurrency = Some(search)),
            (Some(start_rate), None) => {
                let Load::Open { arrival, .. } = loads[0].0 else {
                    unreachable!("--find-max-rate implies an open loop")
                };
                search_max_rate(self, start_rate, arrival, spec.max_inflight)
                    .map(|search| self.result.max_rate = Some(search))
            }
            (None, None) => loads.iter().try_for_each(|(load, description)| {
                if !self.interrupted() {
                    self.measure(*load, description, None)?;
                }
                Ok(())
            }),
        }
    }

    /// The final status, file and exit status of a sweep that ran to its
    /// end (or was interrupted): `planned` points, or a search's (`None`).
    pub(super) fn finish(
        self,
        out_path: &Path,
        planned: Option<usize>,
        csv: Option<&Path>,
    ) -> Result<Sweep> {
        let searching = planned.is_none();
        let Session {
            interrupt,
            writer,
            mut result,
            failed_requests,
            ..
        } = self;
        let interrupted = interrupt.load(Ordering::Relaxed);
        result.status = if interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        result.partial = interrupted
            || planned.is_some_and(|n| result.points.len() != n)
            || result.points.iter().any(|p| !p.complete);
        save(&writer, &mut result, csv)?;
        terminal::print_run_verdict(&result);
        terminal::print_result_path(out_path, result.partial);
        let exit = if interrupted {
            ExitCode::from(crate::exit::INTERRUPTED)
        } else if failed_requests > 0 && !searching {
            eprintln!("{failed_requests} requests failed (see failed_by_class in the result)");
            ExitCode::from(crate::exit::REQUESTS_FAILED)
        } else {
            ExitCode::SUCCESS
        };
        Ok(Sweep { result, exit })
    }

    /// How the search's probes were called so far.
    pub(super) fn probe_calls(&self) -> ProbeCalls {
        ProbeCalls {
            called_by_estimate: Some(self.called_by_estimate),
            confidence: Some(CONFIDENCE),
            max_requests_per_probe: self.max_requests_per_probe,
        }
    }

    pub(super) fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    /// One probe of a search; `None` once interrupted. It is called by the
    /// early-stopping rule, extended while the rule leaves it undecided (up
    /// to `--max-requests-per-probe`), and called by its point estimate if
    /// it still is.
    pub(super) fn probe(&mut self, load: Load) -> Result<Option<ProbeVerdict>> {
        if self.interrupted() {
            return Ok(None);
        }
        let point = self.measure(load, &load.describe(), self.max_requests_per_probe)?;
        if !point.complete {
            return Ok(Some(ProbeVerdict::Incomplete));
        }
        let call = call_slo(&point, &self.slo);
        if call.by_estimate {
            self.called_by_estimate += 1;
        }
        Ok(Some(if call.met {
            ProbeVerdict::Met
        } else {
            ProbeVerdict::Missed
        }))
    }

    /// Sharded: waits for point `slot`'s start on the wall clock, every
    /// shard's the same; a point whose slot has passed (its warm-up or the
    /// previous point ran past it) starts at once and says so.
    pub(super) fn wait_for_slot(
        &mut self,
        slot: usize,
        load: Load,
        description: &LoadDescription,
    ) -> Option<PointStart> {
        let start_at = self.start_at?;
        let shard = self.shard?;
        let share = shard.share(match load {
            Load::Closed { concurrency } => concurrency,
            Load::Open { max_inflight, .. } | Load::Trace { max_inflight, .. } => max_inflight,
        });
        let interval = self.point_interval.map_or(0.0, |d| d.as_secs_f64());
        let planned = start_at + slot as f64 * interval;
        let overran = unix_now() > planned;
        // Interrupted while waiting, the point starts at once and stops.
        if !overran {
            sleep_until_unix(planned, &self.interrupt);
        }
        let lag_ms = (unix_now() - planned) * 1e3;
        if overran {
            let note = format!(
                "{}: started {lag_ms:.0} ms after its slot at {planned:.3} (the warm-up or the previous point ran past it; raise --point-interval or --start-at): its window may not line up with the other shards'",
                description.label()
            );
            eprintln!("warning: {note}");
            self.result.notes.push(note);
        }
        Some(PointStart {
            planned_unix_s: planned,
            lag_ms,
            overran_slot: overran,
            share,
        })
    }

    /// Runs the warm-up requests of a point. `Some(message)` when every one
    /// failed: the server cannot serve this load at all, and measuring it
    /// would only count failures.
    pub(super) fn run_warmup(&self, load: Load, prompts: PromptStream) -> Option<String> {
        // Sharded, every shard sends `warmup` requests of its own: the
        // warm-up is the whole load's N times as many, each shard its part.
        let shards = self.shard.map_or(1, |s| s.count);
        let count = self.warmup * u64::from(shards);
        let concurrency = match load {
            Load::Closed { concurrency } => concurrency,
            Load::Open { .. } | Load::Trace { .. } => shards,
        };
        let plan = PointPlan {
            load: Load::Closed {
                concurrency: concurrency.min(count as u32).max(shards),
            },
            limits: Limits {
                num_requests: Some(count),
                duration: None,
            },
            seed: self.seed,
            prompts,
            start: Instant::now(),
            shard: self.shard,
        };
        let mut failures = Vec::new();
        let mut successes = 0;
        self.runtime.block_on(run_point(
            self.client.clone(),
            self.workload.clone(),
            plan,
            self.interrupt.clone(),
            |c| match c.outcome.failure {
                Some(f) => failures.push(format!("{}: {}", f.class.name(), f.message)),
                None => successes += 1,
            },
        ));
        (successes == 0 && !failures.is_empty()).then(|| {
            format!(
                "all {} warm-up requests failed; first: {}",
                failures.len(),
                failures[0]
            )
        })
    }

    /// The resumed file's next point, when it has one left: it must be the
    /// load this run measures next; it is shown, kept and saved.
    pub(super) fn keep_resumed(
        &mut self,
        description: &LoadDescription,
    ) -> Result<Option<HttpPoint>> {
        let Some(kept) = self.kept.pop_front() else {
            return Ok(None);
        };
        if kept.load != *description {
            bail!(
                "--resume: the file's point {} is {}, where this run measures {}",
                self.result.points.len() + 1,
                kept.load.label(),
                description.label()
            );
        }
        self.position += 1;
        self.failed_requests += kept.requests.failed;
        terminal::print_http_row(&kept, self.metrics.is_some());
        println!("  (kept from the resumed file)");
        self.result.points.push(kept.clone());
        save(&self.writer, &mut self.result, self.csv.as_deref())?;
        Ok(Some(kept))
    }

    /// Readies the point's connections before it starts (unless
    /// `--no-preconnect`): how many the pool holds.
    pub(super) fn preconnect(&self, load: Load) -> Option<u32> {
        self.result.settings.preconnect.then(|| {
            // An open loop's in-flight count is not known ahead: a second's
            // arrivals is a fair guess; later ones open their own.
            let connections = match load {
                Load::Closed { concurrency } => {
                    self.shard.map_or(concurrency, |s| s.share(concurrency))
                }
                Load::Open {
                    rate, max_inflight, ..
                } => (rate.ceil() as u32).clamp(1, max_inflight),
                Load::Trace { max_inflight, .. } => 8.min(max_inflight),
            };
            self.runtime.block_on(self.client.preconnect(connections))
        })
    }

    /// How many more requests a point needs, `sent` so far of the `first`
    /// planned: a probe the rule leaves undecided gets the requests it
    /// needs (a quarter more at least, so that it is not extended request
    /// by request), up to `extend_to` in all; under --until-precise a point
    /// grows until its statistics are precise, or a cap, and `stopped_by`
    /// says which. Each extension's prompts are fresh.
    pub(super) fn more_requests(
        &self,
        snapshot: &dyn Fn() -> HttpPoint,
        extend_to: Option<u64>,
        (first, sent): (Option<u64>, Option<u64>),
        start: Instant,
        stopped_by: &mut &'static str,
    ) -> Option<u64> {
        match (extend_to, &self.precision, first, sent) {
            (Some(cap), _, _, Some(n)) => snapshot()
                .judge_slo(&self.slo)
                .and_then(|v| v.more_needed)
                .map(|more| more.max(n / 4).min(cap.saturating_sub(n)))
                .filter(|&more| more > 0),
            (None, Some(plan), Some(first), Some(n)) => {
                let checks = precision::check(&snapshot(), &plan.targets);
                let cap = plan.max_requests(first);
                let out_of_time = plan.max_duration.is_some_and(|d| start.elapsed() >= d);
                *stopped_by = match precision::more_needed(&checks, n) {
                    None => "precise",
                    Some(_) if n >= cap => "max_requests",
                    Some(_) if out_of_time => "max_duration",
                    Some(_) => "",
                };
                precision::more_needed(&checks, n)
                    .map(|more| more.min(cap.saturating_sub(n)))
                    .filter(|&more| more > 0 && !out_of_time)
            }
            _ => None,
        }
    }

    /// Counts, shows and keeps a measured point (one without any request
    /// is shown, not kept), with its notes, and saves the run.
    pub(super) fn keep_point(&mut self, point: &HttpPoint) -> Result<()> {
        self.failed_requests += point.requests.failed;
        terminal::print_http_row(point, self.metrics.is_some());
        for note in point_notes(point, self.workload.sends_token_ids()) {
            eprintln!("warning: {note}");
            self.result.notes.push(note);
        }
        if point.requests.total > 0 {
            self.result.points.push(point.clone());
        }
        save(&self.writer, &mut self.result, self.csv.as_deref())
    }

    /// Writes the point in vLLM's result format (`--export-vllm`).
    pub(super) fn export_vllm(&self, point: &HttpPoint, export: &VllmExport) -> Result<()> {
        let Some(plan) = &self.export_vllm else {
            return Ok(());
        };
        let path = plan.path_for(&point.load);
        let json = export.finish(point, &self.result.settings, &vllm_date());
        let text = serde_json::to_string_pretty(&json).context("--export-vllm")?;
        std::fs::write(&path, text)
            .with_context(|| format!("--export-vllm {}: cannot write", path.display()))
    }

    /// Point `stream_index`'s prompts of one phase: every point's and every
    /// phase's are distinct.
    pub(super) fn prompt_stream(&self, stream_index: u32, phase: Phase) -> PromptStream {
        PromptStream::new(self.seed, stream_index, phase).with_content_seed(self.prompt_seed)
    }

    /// A point's requests: the first ones, then the extensions it needs
    /// ([`Session::more_requests`]), each request handed to `recorder`.
    /// How it ended, the requests sent, and why an --until-precise point
    /// stopped.
    pub(super) fn run_segments(
        &mut self,
        setup: &PointSetup,
        recorder: &mut PointRecorder<'_>,
    ) -> (PointEnd, Option<u64>, &'static str) {
        let mut segment = PointPlan {
            load: setup.load,
            limits: setup.limits,
            seed: self.seed,
            prompts: self.prompt_stream(setup.stream_index, Phase::Measured),
            start: setup.start,
            shard: self.shard,
        };
        let mut sent = setup.first;
        let mut stopped_by = "interrupted";
        loop {
            let (result, writer, log) = (&self.result, &self.writer, &mut self.log);
            let end = self.runtime.block_on(run_point(
                self.client.clone(),
                self.workload.clone(),
                segment,
                self.interrupt.clone(),
                |completed| recorder.record(completed, result, writer, log),
            ));
            if end.interrupted || recorder.extension >= MAX_EXTENSIONS {
                return (end, sent, stopped_by);
            }
            let snapshot = || recorder.acc.finish(recorder.description.clone(), true, 0);
            let more = self.more_requests(
                &snapshot,
                setup.extend_to,
                (setup.first, sent),
                setup.start,
                &mut stopped_by,
            );
            let (Some(more), Some(n)) = (more, sent) else {
                return (end, sent, stopped_by);
            };
            recorder.extension += 1;
            sent = Some(n + more);
            recorder.progress.extend(more);
            segment = PointPlan {
                load: setup.load,
                limits: Limits {
                    num_requests: Some(more),
                    // The time cap bounds the extension too.
                    duration: self
                        .precision
                        .as_ref()
                        .and_then(|p| p.max_duration)
                        .map(|d| d.saturating_sub(setup.start.elapsed())),
                },
                seed: self.seed,
                prompts: self
                    .prompt_stream(setup.stream_index, Phase::Extension(recorder.extension)),
                start: Instant::now(),
                shard: self.shard,
            };
        }
    }

    /// Warm-up, then one measured point: logged, saved every second while it
    /// runs, appended to the result and saved when it ends. `extend_to`: a
    /// search's probe, extended with fresh requests (up to that many in
    /// all) while the early-stopping rule leaves it undecided.
    pub(super) fn measure(
        &mut self,
        load: Load,
        description: &LoadDescription,
        extend_to: Option<u64>,
    ) -> Result<HttpPoint> {
        if let Some(kept) = self.keep_resumed(description)? {
            return Ok(kept);
        }
        let stream_index = self.next_point;
        self.next_point += 1;
        if self.warmup > 0 {
            let prompts = self.prompt_stream(stream_index, Phase::Warmup);
            if let Some(message) = self.run_warmup(load, prompts) {
                bail!("{}: warm-up failed: {message}", description.label());
            }
        }
        let preconnected = self.preconnect(load);
        let limits = self.limits.at(self.position, load);
        let slot = self.position;
        self.position += 1;
        // Its first scrape, the baseline of every counter, is taken before
        // the point's first request.
        let sampler = self
            .metrics
            .as_ref()
            .and_then(|m| Sampler::start(&m.config, &m.url, m.interval).ok());
        let connects_before = self.client.connects().started();
        let start_against_slot = self.wait_for_slot(slot, load, description);
        let start = Instant::now();
        // A shard sends its part of the load's requests.
        let first = limits
            .num_requests
            .map(|n| self.shard.map_or(n, |s| s.count_of(n)));
        let mut recorder = PointRecorder {
            acc: HttpAccumulator::new(start, self.slo)
                .with_tokenizer(self.tokenizer.clone())
                .with_slices(self.slice),
            progress: PointProgress::new(description.label(), first),
            vllm: self.export_vllm.as_ref().map(|_| VllmExport::new()),
            description,
            point_index: self.result.points.len(),
            extension: 0,
            last_save: Instant::now(),
            io_error: None,
        };
        self.telemetry.start();
        let setup = PointSetup {
            load,
            limits,
            first,
            start,
            stream_index,
            extend_to,
        };
        let (end, sent, stopped_by) = self.run_segments(&setup, &mut recorder);
        let telemetry = self.telemetry.stop();
        let server_metrics = sampler.map(Sampler::stop);
        let PointRecorder {
            acc,
            progress,
            vllm,
            mut io_error,
            ..
        } = recorder;
        progress.finish();
        // A write that failed during the point fails the run, after the
        // point is kept: a run never loses what it measured.
        if let (Some(log), None) = (self.log.as_mut(), io_error.as_ref()) {
            if let Err(e) = log.flush() {
                io_error = Some(anyhow::Error::new(e).context("writing --requests-log"));
            }
        }
        let mut point = acc.finish(description.clone(), !end.interrupted, end.cancelled);
        point.prompt_stream = Some(stream_index);
        point.start = start_against_slot;
        point.num_requests_planned = sent;
        if let (Some(plan), Some(first)) = (&self.precision, first) {
            let stopped_by = if end.interrupted {
                "interrupted"
            } else {
                stopped_by
            };
            point.precision = Some(plan.outcome(&point, first, stopped_by));
        }
        point.duration_planned_s = limits.duration.map(|d| d.as_secs_f64());
        point.energy = telemetry.as_ref().and_then(|t| {
            let output_tokens = point
                .output_tokens
                .as_ref()
                .map_or(0, |s| (s.mean * s.count as f64).round() as u64);
            t.energy_per_token(output_tokens)
        });
        point.telemetry = telemetry;
        point.server_metrics = server_metrics;
        point.client.preconnected = preconnected;
        point.client.connections_opened = Some(self.client.connects().started() - connects_before);
        if let Some(server) = self.result.provenance.server.as_mut() {
            if server.system_fingerprint.is_none() {
                server.system_fingerprint = acc.system_fingerprint().map(str::to_string);
            }
        }
        self.keep_point(&point)?;
        if let Some(e) = io_error {
            return Err(e);
        }
        if let Some(v) = &vllm {
            self.export_vllm(&point, v)?;
        }
        Ok(point)
    }
}

/// Probes that bracket the highest rate meeting the SLO at p99
/// ([`search_max`]). Every probe uses the same seed, so the search repeats
/// exactly against a server that behaves the same.
pub(super) fn search_max_rate(
    session: &mut Session,
    start_rate: f64,
    arrival: Arrival,
    max_inflight: u32,
) -> Result<MaxRateSearch> {
    let found = search_max(start_rate, false, |rate| {
        let load = Load::Open {
            rate,
            arrival,
            max_inflight,
        };
        session.probe(load)
    })?;
    terminal::print_search(
        "highest rate",
        found.best.map(|r| format!("{r} req/s")),
        found.failing.map(|r| format!("{r} req/s")),
        found.probes,
        session.called_by_estimate,
    );
    Ok(MaxRateSearch {
        max_rate: found.best,
        lowest_failing_rate: found.failing,
        probes: found.probes,
        calls: session.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

/// Probes that bracket the highest concurrency meeting the SLO at p99, as
/// [`search_max_rate`] does for rates, on whole numbers of requests in flight.
pub(super) fn search_max_concurrency(
    session: &mut Session,
    start: u32,
) -> Result<MaxConcurrencySearch> {
    // Whole-number searches probe whole numbers from 1 up.
    let whole = |load: f64| load as u32;
    let found = search_max(f64::from(start), true, |concurrency| {
        session.probe(Load::Closed {
            concurrency: whole(concurrency),
        })
    })?;
    terminal::print_search(
        "highest concurrency",
        found.best.map(|c| format!("c={}", whole(c))),
        found.failing.map(|c| format!("c={}", whole(c))),
        found.probes,
        session.called_by_estimate,
    );
    Ok(MaxConcurrencySearch {
        max_concurrency: found.best.map(whole),
        lowest_failing_concurrency: found.failing.map(whole),
        probes: found.probes,
        calls: session.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

pub(super) const SEARCH_CRITERION: &str = "p99 of every --slo objective within its limit at 99% confidence by MLPerf LoadGen's early-stopping rule, a failed request over every limit; a probe the rule leaves undecided (after any extension up to --max-requests-per-probe) is called by its point estimate: p99 within every limit and no failed request";
