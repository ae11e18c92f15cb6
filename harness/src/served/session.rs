//! A run's points: each measured (warm-up, its requests, their
//! extensions), kept and saved, or taken from a resumed file.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use inferbench_core::early_stopping::CONFIDENCE;
use inferbench_core::schema::shard::PointStart;
use inferbench_core::schema::{HttpPoint, HttpResult, LoadDescription, ProbeCalls, RunStatus, Slo};
use inferbench_core::spec::HttpSpec;
use inferbench_http::client::HttpClient;
use inferbench_http::load::{run_point, Limits, Load, PointEnd, PointPlan};
use inferbench_http::point::{point_notes, HttpAccumulator};
use inferbench_http::runtime::ClientRuntime;
use inferbench_http::server_metrics::Sampler;
use inferbench_http::tokenizer::Tokenizer;
use inferbench_http::workload::Workload;

use super::recorder::{PointRecorder, PointSetup};
use super::{
    search, sleep_until_unix, unix_now, vllm_date, LimitsPlan, MetricsPlan, PointSampler,
    PrecisionPlan, ServedError, SweepObserver, VllmExportPlan, MAX_EXTENSIONS,
};
use crate::plan::{call_slo, ProbeVerdict};
use crate::precision;
use crate::vllm_export::VllmExport;
use crate::workload::{Phase, PromptStream};

/// Everything [`Sweep::new`] takes.
pub(super) struct Parts {
    pub(super) spec: HttpSpec,
    pub(super) loads: Vec<(Load, LoadDescription)>,
    pub(super) runtime: ClientRuntime,
    pub(super) client: Arc<HttpClient>,
    pub(super) workload: Arc<Workload>,
    pub(super) limits: LimitsPlan,
    pub(super) prompt_seed: u64,
    pub(super) next_point: u32,
    pub(super) kept: VecDeque<HttpPoint>,
    pub(super) interrupt: Arc<AtomicBool>,
    pub(super) log: Option<Box<dyn Write>>,
    pub(super) result: HttpResult,
    pub(super) tokenizer: Option<Arc<Tokenizer>>,
    pub(super) telemetry: Option<Box<dyn PointSampler>>,
    pub(super) metrics: Option<MetricsPlan>,
    pub(super) export_vllm: Option<VllmExportPlan>,
}

/// A served run under way: everything its points share, and its result.
pub struct Sweep {
    pub(super) spec: HttpSpec,
    loads: Vec<(Load, LoadDescription)>,
    pub(super) runtime: ClientRuntime,
    pub(super) client: Arc<HttpClient>,
    pub(super) workload: Arc<Workload>,
    limits: LimitsPlan,
    /// Points measured (or kept from --resume) so far: the next one's place
    /// in the sweep, for per-load request counts.
    position: usize,
    prompt_seed: u64,
    /// Points measured or attempted so far: the next point's prompt streams.
    next_point: u32,
    /// Finished points of the `--resume` file still to be taken, in order.
    kept: VecDeque<HttpPoint>,
    slo: Slo,
    /// Probes called by their point estimate so far.
    pub(super) called_by_estimate: u32,
    /// `--until-precise`: every point grows until its statistics are precise.
    precision: Option<PrecisionPlan>,
    pub(super) interrupt: Arc<AtomicBool>,
    log: Option<Box<dyn Write>>,
    result: HttpResult,
    failed_requests: u64,
    tokenizer: Option<Arc<Tokenizer>>,
    telemetry: Option<Box<dyn PointSampler>>,
    metrics: Option<MetricsPlan>,
    export_vllm: Option<VllmExportPlan>,
}

/// How a sweep ended: its final result (saved), whether an interrupt cut
/// it short, and how many of its requests failed.
pub struct Finished {
    /// The result as saved last.
    pub result: HttpResult,
    /// An interrupt ended the run.
    pub interrupted: bool,
    /// Requests that failed, over every point (kept ones included).
    pub failed_requests: u64,
    /// A search's run (its failed requests are a probe's verdict, not the
    /// run's failure).
    pub searched: bool,
}

impl Sweep {
    pub(super) fn new(parts: Parts) -> Sweep {
        let spec = parts.spec;
        Sweep {
            slo: spec.slo.unwrap_or_default(),
            precision: spec.until_precise.clone().map(|targets| PrecisionPlan {
                targets,
                max_requests: spec.max_requests,
                max_duration: spec.max_duration,
            }),
            spec,
            loads: parts.loads,
            runtime: parts.runtime,
            client: parts.client,
            workload: parts.workload,
            limits: parts.limits,
            position: 0,
            prompt_seed: parts.prompt_seed,
            next_point: parts.next_point,
            kept: parts.kept,
            called_by_estimate: 0,
            interrupt: parts.interrupt,
            log: parts.log,
            result: parts.result,
            failed_requests: 0,
            tokenizer: parts.tokenizer,
            telemetry: parts.telemetry,
            metrics: parts.metrics,
            export_vllm: parts.export_vllm,
        }
    }

    /// The result as it stands.
    pub fn result(&self) -> &HttpResult {
        &self.result
    }

    /// The result as it stands, to mark failed and save when the run
    /// cannot go on.
    pub fn result_mut(&mut self) -> &mut HttpResult {
        &mut self.result
    }

    /// The points the sweep plans; `None` for a search, whose probes are
    /// not known ahead.
    pub fn planned(&self) -> Option<usize> {
        (!self.spec.searching()).then_some(self.loads.len())
    }

    /// The run's points: a search's probes, or every load in turn until an
    /// interrupt. Each point is saved through `observer` as it ends.
    pub fn run(&mut self, observer: &mut dyn SweepObserver) -> Result<(), ServedError> {
        match (self.spec.find_max_rate, self.spec.find_max_concurrency) {
            (_, Some(start)) => {
                let search = search::max_concurrency(self, start, observer)?;
                self.result.max_concurrency = Some(search);
            }
            (Some(start_rate), None) => {
                let Load::Open { arrival, .. } = self.loads[0].0 else {
                    unreachable!("--find-max-rate implies an open loop")
                };
                let max_inflight = self.spec.max_inflight;
                let search = search::max_rate(self, start_rate, arrival, max_inflight, observer)?;
                self.result.max_rate = Some(search);
            }
            (None, None) => {
                for (load, description) in self.loads.clone() {
                    if !self.interrupted() {
                        self.measure(load, &description, None, observer)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The final status, saved: complete, or interrupted; partial when a
    /// planned point is missing or any is incomplete.
    pub fn finish(self, observer: &mut dyn SweepObserver) -> Result<Finished, ServedError> {
        let planned = self.planned();
        let Sweep {
            interrupt,
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
        observer
            .save(&mut result, true)
            .map_err(ServedError::Save)?;
        Ok(Finished {
            result,
            interrupted,
            failed_requests,
            searched: planned.is_none(),
        })
    }

    /// How the search's probes were called so far.
    pub(super) fn probe_calls(&self) -> ProbeCalls {
        ProbeCalls {
            called_by_estimate: Some(self.called_by_estimate),
            confidence: Some(CONFIDENCE),
            max_requests_per_probe: self.spec.max_requests_per_probe,
        }
    }

    pub(super) fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    /// One probe of a search; `None` once interrupted. It is called by the
    /// early-stopping rule, extended while the rule leaves it undecided (up
    /// to `--max-requests-per-probe`), and called by its point estimate if
    /// it still is.
    pub(super) fn probe(
        &mut self,
        load: Load,
        observer: &mut dyn SweepObserver,
    ) -> Result<Option<ProbeVerdict>, ServedError> {
        if self.interrupted() {
            return Ok(None);
        }
        let extend_to = self.spec.max_requests_per_probe;
        let point = self.measure(load, &load.describe(), extend_to, observer)?;
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
    fn wait_for_slot(
        &mut self,
        slot: usize,
        load: Load,
        description: &LoadDescription,
        observer: &mut dyn SweepObserver,
    ) -> Option<PointStart> {
        let start_at = self.spec.start_at?;
        let shard = self.spec.shard?;
        let share = shard.share(match load {
            Load::Closed { concurrency } => concurrency,
            Load::Open { max_inflight, .. } | Load::Trace { max_inflight, .. } => max_inflight,
        });
        let interval = self.spec.point_interval.map_or(0.0, |d| d.as_secs_f64());
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
            observer.warning(&note);
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
    fn run_warmup(&self, load: Load, prompts: PromptStream) -> Option<String> {
        // Sharded, every shard sends `warmup` requests of its own: the
        // warm-up is the whole load's N times as many, each shard its part.
        let shards = self.spec.shard.map_or(1, |s| s.count);
        let count = self.spec.warmup * u64::from(shards);
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
            seed: self.spec.seed,
            prompts,
            start: Instant::now(),
            shard: self.spec.shard,
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
    fn keep_resumed(
        &mut self,
        description: &LoadDescription,
        observer: &mut dyn SweepObserver,
    ) -> Result<Option<HttpPoint>, ServedError> {
        let Some(kept) = self.kept.pop_front() else {
            return Ok(None);
        };
        if kept.load != *description {
            return Err(ServedError::Usage(format!(
                "--resume: the file's point {} is {}, where this run measures {}",
                self.result.points.len() + 1,
                kept.load.label(),
                description.label()
            )));
        }
        self.position += 1;
        self.failed_requests += kept.requests.failed;
        observer.point_kept(&kept, true);
        self.result.points.push(kept.clone());
        observer
            .save(&mut self.result, true)
            .map_err(ServedError::Save)?;
        Ok(Some(kept))
    }

    /// Readies the point's connections before it starts (unless
    /// `--no-preconnect`): how many the pool holds.
    fn preconnect(&self, load: Load) -> Option<u32> {
        self.result.settings.preconnect.then(|| {
            // An open loop's in-flight count is not known ahead: a second's
            // arrivals is a fair guess; later ones open their own.
            let connections = match load {
                Load::Closed { concurrency } => self
                    .spec
                    .shard
                    .map_or(concurrency, |s| s.share(concurrency)),
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
    fn more_requests(
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
    fn keep_point(
        &mut self,
        point: &HttpPoint,
        observer: &mut dyn SweepObserver,
    ) -> Result<(), ServedError> {
        self.failed_requests += point.requests.failed;
        observer.point_kept(point, false);
        for note in point_notes(point, self.workload.sends_token_ids()) {
            observer.warning(&note);
            self.result.notes.push(note);
        }
        if point.requests.total > 0 {
            self.result.points.push(point.clone());
        }
        observer
            .save(&mut self.result, true)
            .map_err(ServedError::Save)
    }

    /// Writes the point in vLLM's result format (`--export-vllm`).
    fn export_vllm(&self, point: &HttpPoint, export: &VllmExport) -> Result<(), ServedError> {
        let Some(plan) = &self.export_vllm else {
            return Ok(());
        };
        let path = plan.path_for(&point.load);
        let json = export.finish(point, &self.result.settings, &vllm_date());
        let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other);
        text.and_then(|text| std::fs::write(&path, text))
            .map_err(|source| ServedError::ExportVllm { path, source })
    }

    /// Point `stream_index`'s prompts of one phase: every point's and every
    /// phase's are distinct.
    fn prompt_stream(&self, stream_index: u32, phase: Phase) -> PromptStream {
        PromptStream::new(self.spec.seed, stream_index, phase).with_content_seed(self.prompt_seed)
    }

    /// A point's requests: the first ones, then the extensions it needs
    /// ([`Sweep::more_requests`]), each request handed to `recorder`.
    /// How it ended, the requests sent, and why an --until-precise point
    /// stopped.
    fn run_segments(
        &mut self,
        setup: &PointSetup,
        recorder: &mut PointRecorder<'_>,
        observer: &mut dyn SweepObserver,
    ) -> (PointEnd, Option<u64>, &'static str) {
        let mut segment = PointPlan {
            load: setup.load,
            limits: setup.limits,
            seed: self.spec.seed,
            prompts: self.prompt_stream(setup.stream_index, Phase::Measured),
            start: setup.start,
            shard: self.spec.shard,
        };
        let mut sent = setup.first;
        let mut stopped_by = "interrupted";
        loop {
            let (result, log) = (&self.result, &mut self.log);
            let end = self.runtime.block_on(run_point(
                self.client.clone(),
                self.workload.clone(),
                segment,
                self.interrupt.clone(),
                |completed| recorder.record(completed, result, log, &mut *observer),
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
            observer.point_extended(more);
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
                seed: self.spec.seed,
                prompts: self
                    .prompt_stream(setup.stream_index, Phase::Extension(recorder.extension)),
                start: Instant::now(),
                shard: self.spec.shard,
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
        observer: &mut dyn SweepObserver,
    ) -> Result<HttpPoint, ServedError> {
        if let Some(kept) = self.keep_resumed(description, observer)? {
            return Ok(kept);
        }
        let stream_index = self.next_point;
        self.next_point += 1;
        if self.spec.warmup > 0 {
            let prompts = self.prompt_stream(stream_index, Phase::Warmup);
            if let Some(message) = self.run_warmup(load, prompts) {
                return Err(ServedError::WarmupFailed {
                    label: description.label(),
                    message,
                });
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
        let start_against_slot = self.wait_for_slot(slot, load, description, observer);
        let start = Instant::now();
        // A shard sends its part of the load's requests.
        let first = limits
            .num_requests
            .map(|n| self.spec.shard.map_or(n, |s| s.count_of(n)));
        observer.point_started(&description.label(), first);
        let mut recorder = PointRecorder {
            acc: HttpAccumulator::new(start, self.slo)
                .with_tokenizer(self.tokenizer.clone())
                .with_slices(self.spec.slice),
            vllm: self.export_vllm.as_ref().map(|_| VllmExport::new()),
            description,
            point_index: self.result.points.len(),
            extension: 0,
            last_save: Instant::now(),
            io_error: None,
        };
        if let Some(t) = self.telemetry.as_mut() {
            t.start();
        }
        let setup = PointSetup {
            load,
            limits,
            first,
            start,
            stream_index,
            extend_to,
        };
        let (end, sent, stopped_by) = self.run_segments(&setup, &mut recorder, observer);
        let telemetry = self.telemetry.as_mut().and_then(|t| t.stop());
        let server_metrics = sampler.map(Sampler::stop);
        let PointRecorder {
            acc,
            vllm,
            mut io_error,
            ..
        } = recorder;
        observer.point_ended();
        // A write that failed during the point fails the run, after the
        // point is kept: a run never loses what it measured.
        if let (Some(log), None) = (self.log.as_mut(), io_error.as_ref()) {
            if let Err(e) = log.flush() {
                io_error = Some(ServedError::RequestsLog(e));
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
        self.keep_point(&point, observer)?;
        if let Some(e) = io_error {
            return Err(e);
        }
        if let Some(v) = &vllm {
            self.export_vllm(&point, v)?;
        }
        Ok(point)
    }
}
