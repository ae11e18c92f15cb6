//! The in-process runner: drives an [`Engine`] through warm-up and measured
//! runs of one batch shape and turns the timings into a result point.
//!
//! Request metrics follow [`crate::metrics`] (per sequence, as a served
//! request would see them); in-process they reduce to:
//! - `ttft_ms` = prefill + first sample.
//! - `itl_ms`  = one decode step + its sample: the gap between consecutive
//!   tokens of a sequence; pooled over sequences and steps.
//! - `e2e_ms`  = ttft + Σ itl: from the start of prefill to the last token.
//! - `tpot_ms` = (e2e − ttft) / (gen_tokens − 1).
//!
//! Engine-phase metrics (per run or per step, not per sequence):
//! - `prefill_ms`: evaluating all prompts of the batch, synchronized.
//! - `decode_step_ms`: evaluating one token of every sequence, synchronized.
//! - `sample_ms`: sampling one token for every sequence.
//! - `depth_fill_ms`: filling every sequence's KV cache with `depth` tokens
//!   before the prompt (`--depth`), in no other metric.
//! - `prefill_tok_s` = batch × prompt_tokens / prefill;
//!   `decode_tok_s` = batch × (gen_tokens − 1) / Σ itl;
//!   `throughput_tok_s` = batch × gen_tokens / e2e.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::{BatchShape, Engine, EngineCounters, Timed};
use crate::metrics;
use crate::schema::kernels::{KernelPhase, KernelTiming};
use crate::schema::{CounterComparison, DeviceComparison, InprocPoint, RunSamples, TokenTotals};
use crate::stats::Distribution;
use crate::workload::{batch_prompts, NoOrdinaryTokens, Phase, PromptStream};

pub mod grid;

/// What [`measure_point`] measures: one batch shape, its runs and its prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointSpec {
    /// Sequences, prompt length and tokens generated per sequence.
    pub shape: BatchShape,
    /// Runs before the measured ones, whose timings are discarded.
    pub warmup_runs: u32,
    /// Measured runs, each of which enters the point's statistics.
    pub runs: u32,
    /// Seed of the prompt streams (`--seed`).
    pub seed: u64,
    /// The point's position in its sweep: with the seed, it names the
    /// prompt streams ([`crate::workload`]), so that no two points, runs or
    /// warm-ups decode the same prompt, and a served run of the same sweep
    /// can send the very same token ids.
    pub point: u32,
}

/// Mixed into the seed of the depth's tokens, so that they are drawn
/// apart from the prompts: the prompts stay those of depth 0 (and of a
/// served run of the same seed), and no depth repeats a prompt.
const DEPTH_SEED: u64 = 0xD3E7_4F11_0000_0000;

impl PointSpec {
    /// The point's prompt stream for `phase` (warm-up runs draw from their own).
    pub fn prompts(&self, phase: Phase) -> PromptStream {
        PromptStream::new(self.seed, self.point, phase)
    }

    /// The stream the depth's tokens are drawn from for `phase`: every run
    /// fills its cache with tokens of its own.
    pub fn depth_tokens(&self, phase: Phase) -> PromptStream {
        PromptStream::new(self.seed ^ DEPTH_SEED, self.point, phase)
    }
}

/// Why [`measure_point`] could not measure a point.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError<E: std::error::Error + 'static> {
    /// An engine call failed (configure, reset, prefill, decode step or sample).
    #[error(transparent)]
    Engine(E),
    /// The shape needs more context per sequence than the engine allows
    /// (found before any engine work).
    #[error("{what} needs {needed} tokens of context per sequence, but the model allows {max}")]
    ContextTooLong {
        /// What needs it, e.g. "depth 4096 + 128 prompt tokens + 64 generated tokens".
        what: String,
        /// KV cells one sequence needs: its depth, its prompt and every
        /// generated token but the last.
        needed: u32,
        /// The engine's longest context per sequence, in tokens.
        max: u32,
    },
    /// The vocabulary has no token to build a prompt from (before any engine work).
    #[error(transparent)]
    NoOrdinaryTokens(#[from] NoOrdinaryTokens),
}

/// Reported after every run, warm-up or measured.
#[derive(Debug, Clone, Copy)]
pub struct RunProgress<'a> {
    /// True for a warm-up run, false for a measured one.
    pub warmup: bool,
    /// Runs of this phase finished, this one included.
    pub done: u32,
    /// Runs of this phase in all: `warmup_runs` or `runs`.
    pub of: u32,
    acc: &'a Accumulator,
    warmup_runs: u32,
}

impl RunProgress<'_> {
    /// The point as measured so far (`complete: false`), for saving a long
    /// point while it runs.
    pub fn snapshot(&self) -> InprocPoint {
        self.acc.finish(self.warmup_runs, false)
    }
}

/// What the event window brackets, for the result file.
pub const DEVICE_WINDOW: &str = "CUDA events around the synchronized call: the host's window on the GPU clock (graph building, launches, gaps and the synchronization included), not kernel time";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Timings of one complete run.
struct RunTimings {
    /// Filling the depth, when the shape has one.
    depth_fill: Option<Timed>,
    prefill: Timed,
    samples: Vec<Timed>,
    steps: Vec<Timed>,
    prefill_counters: Option<EngineCounters>,
    decode_counters: Option<EngineCounters>,
}

/// The tokens of one run: its depth's (when the shape has one) and its
/// prompts, one of each per sequence.
struct RunPrompts {
    depth: Option<Vec<Vec<i32>>>,
    prompts: Vec<Vec<i32>>,
}

/// Executes one run; `None` when interrupted before it completed.
fn run_once<E: Engine>(
    engine: &mut E,
    shape: &BatchShape,
    run: &RunPrompts,
    interrupt: &AtomicBool,
) -> Result<Option<RunTimings>, E::Error> {
    let prompts = &run.prompts;
    engine.reset()?;
    // The depth: every sequence's cache filled with tokens of this run's
    // own, timed apart from the prefill that follows it.
    let depth_fill = match &run.depth {
        Some(depth) => Some(engine.prefill(depth)?),
        None => None,
    };
    // Counters left from the previous run, warm-up or depth belong to nobody.
    engine.take_counters();
    let prefill = engine.prefill(prompts)?;
    let prefill_counters = engine.take_counters();
    let mut samples = Vec::with_capacity(shape.gen_tokens as usize);
    let mut steps = Vec::with_capacity(shape.gen_tokens.saturating_sub(1) as usize);
    samples.push(engine.sample()?);
    for _ in 1..shape.gen_tokens {
        if interrupt.load(Ordering::Relaxed) {
            return Ok(None);
        }
        steps.push(engine.decode_step()?);
        samples.push(engine.sample()?);
    }
    let decode_counters = engine.take_counters();
    Ok(Some(RunTimings {
        depth_fill,
        prefill,
        samples,
        steps,
        prefill_counters,
        decode_counters,
    }))
}

/// What the engine's kernel records said of one phase's steps.
#[derive(Debug, Clone)]
struct KernelPhaseAccumulator {
    busy: Distribution,
    busy_fraction: Distribution,
    overhead: Distribution,
    kernels: Distribution,
    first_kernel_delay: Distribution,
    idle_gaps: Distribution,
    tail: Distribution,
    copies: Distribution,
    window: Distribution,
    host_sum: f64,
    busy_sum: f64,
}

impl KernelPhaseAccumulator {
    fn new() -> Self {
        let ms = Distribution::milliseconds;
        KernelPhaseAccumulator {
            busy: ms(),
            busy_fraction: Distribution::ratios(),
            overhead: ms(),
            kernels: Distribution::counts(),
            first_kernel_delay: ms(),
            idle_gaps: ms(),
            tail: ms(),
            copies: ms(),
            window: ms(),
            host_sum: 0.0,
            busy_sum: 0.0,
        }
    }

    fn add(&mut self, step: &Timed) {
        let Some(k) = step.kernels else { return };
        let (host, busy) = (ms(step.host), ms(k.busy));
        self.busy.record(busy);
        if host > 0.0 {
            self.busy_fraction.record(busy / host);
        }
        // The records' clock and the host's differ by the microseconds
        // between reading each: a busy time past the host time is no overhead.
        self.overhead.record((host - busy).max(0.0));
        self.kernels.record(f64::from(k.kernels));
        if let Some(d) = k.first_kernel_delay {
            self.first_kernel_delay.record(ms(d));
        }
        self.idle_gaps.record(ms(k.idle_gaps));
        if let Some(t) = k.tail {
            self.tail.record(ms(t));
        }
        self.copies.record(ms(k.copy_busy));
        self.window.record(ms(k.window));
        self.host_sum += host;
        self.busy_sum += busy;
    }

    fn finish(&self) -> Option<KernelPhase> {
        (self.busy.count() > 0).then(|| KernelPhase {
            steps: self.busy.count(),
            busy_ms: self.busy.stats(),
            busy_fraction: self.busy_fraction.stats(),
            overhead_ms: self.overhead.stats(),
            kernels_per_step: self.kernels.stats(),
            first_kernel_delay_ms: self.first_kernel_delay.stats(),
            idle_gap_ms: self.idle_gaps.stats(),
            tail_ms: self.tail.stats(),
            copy_ms: self.copies.stats(),
            window_ms: self.window.stats(),
            busy_over_host: (self.host_sum > 0.0).then(|| self.busy_sum / self.host_sum),
        })
    }
}

#[derive(Debug, Clone)]
struct Accumulator {
    shape: BatchShape,
    runs: u32,
    ttft: Distribution,
    itl: Distribution,
    tpot: Distribution,
    e2e: Distribution,
    prefill: Distribution,
    decode_step: Distribution,
    sample: Distribution,
    prefill_tok_s: Distribution,
    decode_tok_s: Distribution,
    throughput_tok_s: Distribution,
    engine_prefill: Distribution,
    engine_decode_step: Distribution,
    device_prefill: Distribution,
    device_decode_step: Distribution,
    kernel_prefill: KernelPhaseAccumulator,
    kernel_decode_step: KernelPhaseAccumulator,
    depth_fill: Distribution,
    run_samples: RunSamples,
    // Host time of the steps that have a device time, for a like-for-like ratio.
    host_prefill_with_device: f64,
    host_decode_with_device: f64,
    host_prefill_with_counters: f64,
    host_decode_with_counters: f64,
}

impl Accumulator {
    fn new(shape: BatchShape) -> Self {
        let ms = Distribution::milliseconds;
        let rate = Distribution::per_second;
        Accumulator {
            shape,
            runs: 0,
            ttft: ms(),
            itl: ms(),
            tpot: ms(),
            e2e: ms(),
            prefill: ms(),
            decode_step: ms(),
            sample: ms(),
            prefill_tok_s: rate(),
            decode_tok_s: rate(),
            throughput_tok_s: rate(),
            engine_prefill: ms(),
            engine_decode_step: ms(),
            device_prefill: ms(),
            device_decode_step: ms(),
            kernel_prefill: KernelPhaseAccumulator::new(),
            kernel_decode_step: KernelPhaseAccumulator::new(),
            depth_fill: ms(),
            run_samples: RunSamples {
                decode_steps: shape.gen_tokens.saturating_sub(1),
                ..RunSamples::default()
            },
            host_prefill_with_device: 0.0,
            host_decode_with_device: 0.0,
            host_prefill_with_counters: 0.0,
            host_decode_with_counters: 0.0,
        }
    }

    fn add(&mut self, run: &RunTimings) {
        let b = u64::from(self.shape.sequences);
        let prefill_ms = ms(run.prefill.host);
        let first_sample_ms = ms(run.samples[0].host);
        let ttft = prefill_ms + first_sample_ms;
        self.prefill.record(prefill_ms);
        self.ttft.record_n(ttft, b);
        let mut decode_total = 0.0;
        for (step, sample) in run.steps.iter().zip(&run.samples[1..]) {
            let itl = ms(step.host) + ms(sample.host);
            self.decode_step.record(ms(step.host));
            self.itl.record_n(itl, b);
            decode_total += itl;
        }
        for sample in &run.samples {
            self.sample.record(ms(sample.host));
        }
        let e2e = ttft + decode_total;
        self.e2e.record_n(e2e, b);
        if let Some(tpot) = metrics::tpot_ms(e2e, ttft, u64::from(self.shape.gen_tokens)) {
            self.tpot.record_n(tpot, b);
            let generated_after_first = u64::from(self.shape.gen_tokens - 1);
            self.decode_tok_s
                .record((b * generated_after_first) as f64 / (decode_total / 1e3));
        }
        let prompt_tokens = b * u64::from(self.shape.prompt_tokens);
        self.prefill_tok_s
            .record(prompt_tokens as f64 / (prefill_ms / 1e3));
        self.throughput_tok_s
            .record((b * u64::from(self.shape.gen_tokens)) as f64 / (e2e / 1e3));

        if let Some(c) = run.prefill_counters.filter(|c| c.evals > 0) {
            self.engine_prefill.record(c.eval_ms);
            self.host_prefill_with_counters += prefill_ms;
        }
        if let Some(c) = run.decode_counters.filter(|c| c.evals > 0) {
            // The engine reports a total per run; its per-step mean is what
            // compares with the harness's per-step distribution.
            self.engine_decode_step
                .record_n(c.eval_ms / c.evals as f64, c.evals);
            self.host_decode_with_counters += run.steps.iter().map(|s| ms(s.host)).sum::<f64>();
        }
        if let Some(device) = run.prefill.device {
            self.device_prefill.record(ms(device));
            self.host_prefill_with_device += prefill_ms;
        }
        self.kernel_prefill.add(&run.prefill);
        for step in &run.steps {
            self.kernel_decode_step.add(step);
            if let Some(device) = step.device {
                self.device_decode_step.record(ms(device));
                self.host_decode_with_device += ms(step.host);
            }
        }
        if let Some(fill) = run.depth_fill {
            self.depth_fill.record(ms(fill.host));
        }
        self.run_samples.prefill_ns.push(nanos(run.prefill.host));
        if !run.steps.is_empty() {
            let decode = run.steps.iter().map(|s| s.host).sum();
            self.run_samples.decode_ns.push(nanos(decode));
        }
        self.runs += 1;
    }

    fn finish(&self, warmup_runs: u32, complete: bool) -> InprocPoint {
        let b = u64::from(self.shape.sequences);
        let ratio = |host: f64, other: &Distribution| {
            (other.sum() > 0.0 && host > 0.0).then(|| host / other.sum())
        };
        let engine_counters = (self.engine_prefill.count() + self.engine_decode_step.count() > 0)
            .then(|| CounterComparison {
                prefill_ms: self.engine_prefill.stats(),
                decode_step_ms: self.engine_decode_step.stats(),
                harness_over_engine_prefill: ratio(
                    self.host_prefill_with_counters,
                    &self.engine_prefill,
                ),
                harness_over_engine_decode_step: ratio(
                    self.host_decode_with_counters,
                    &self.engine_decode_step,
                ),
            });
        let device_timing = (self.device_prefill.count() + self.device_decode_step.count() > 0)
            .then(|| DeviceComparison {
                brackets: Some(DEVICE_WINDOW.into()),
                prefill_ms: self.device_prefill.stats(),
                decode_step_ms: self.device_decode_step.stats(),
                host_over_device_prefill: ratio(
                    self.host_prefill_with_device,
                    &self.device_prefill,
                ),
                host_over_device_decode_step: ratio(
                    self.host_decode_with_device,
                    &self.device_decode_step,
                ),
            });
        let (kernel_prefill, kernel_decode_step) = (
            self.kernel_prefill.finish(),
            self.kernel_decode_step.finish(),
        );
        let kernel_timing =
            (kernel_prefill.is_some() || kernel_decode_step.is_some()).then(|| KernelTiming {
                source: "the device's activity records: see provenance.engine.kernel_timing".into(),
                prefill: kernel_prefill,
                decode_step: kernel_decode_step,
            });
        let runs = u64::from(self.runs);
        InprocPoint {
            prompt_tokens: self.shape.prompt_tokens,
            gen_tokens: self.shape.gen_tokens,
            batch: self.shape.sequences,
            depth: self.shape.depth,
            depth_fill_ms: self.depth_fill.stats(),
            config: None,
            memory: None,
            error: None,
            complete,
            runs: self.runs,
            warmup_runs,
            tokens: TokenTotals {
                prompt: runs * b * u64::from(self.shape.prompt_tokens),
                generated: runs * b * u64::from(self.shape.gen_tokens),
            },
            ttft_ms: self.ttft.stats(),
            itl_ms: self.itl.stats(),
            tpot_ms: self.tpot.stats(),
            e2e_ms: self.e2e.stats(),
            prefill_ms: self.prefill.stats(),
            decode_step_ms: self.decode_step.stats(),
            sample_ms: self.sample.stats(),
            prefill_tok_s: self.prefill_tok_s.stats(),
            decode_tok_s: self.decode_tok_s.stats(),
            throughput_tok_s: self.throughput_tok_s.stats(),
            engine_counters,
            device_timing,
            telemetry: None,
            roofline: None,
            prefill_roofline: None,
            kernel_timing,
            run_samples: (self.runs > 0).then(|| self.run_samples.clone()),
            validity: None,
            precision: None,
            energy: None,
        }
    }
}

/// A point of `shape` with no run measured: what a cell the engine could
/// not run records, beside its error.
pub fn unmeasured_point(shape: BatchShape) -> InprocPoint {
    Accumulator::new(shape).finish(0, false)
}

/// Measures one point: `warmup_runs` runs whose timings are discarded, then
/// `runs` measured runs. When `interrupt` is raised, the run in flight is
/// abandoned and the point comes back with `complete: false` and the runs
/// already measured.
pub fn measure_point<E: Engine>(
    engine: &mut E,
    spec: &PointSpec,
    interrupt: &AtomicBool,
    on_run: impl FnMut(&RunProgress),
) -> Result<InprocPoint, RunnerError<E::Error>> {
    measure_point_until(engine, spec, interrupt, |_| 0, on_run)
}

/// [`measure_point`], asking `more` after the measured runs (and after each
/// batch it adds) how many runs to add, given the point so far: 0 ends the
/// point. Added runs draw the next prompts of the measured stream, so every
/// run still decodes prompts of its own (`--until-precise`).
pub fn measure_point_until<E: Engine>(
    engine: &mut E,
    spec: &PointSpec,
    interrupt: &AtomicBool,
    mut more: impl FnMut(&InprocPoint) -> u32,
    mut on_run: impl FnMut(&RunProgress),
) -> Result<InprocPoint, RunnerError<E::Error>> {
    let shape = spec.shape;
    let max = engine.max_context_per_sequence();
    if shape.context_per_sequence() > max {
        let depth = if shape.depth > 0 {
            format!("depth {} + ", shape.depth)
        } else {
            String::new()
        };
        return Err(RunnerError::ContextTooLong {
            what: format!(
                "{depth}{} prompt tokens + {} generated tokens",
                shape.prompt_tokens, shape.gen_tokens
            ),
            needed: shape.context_per_sequence(),
            max,
        });
    }
    let vocab = engine.prompt_vocab();
    // Prompts are built before each run, outside every timed region.
    let prompts = |phase: Phase, run: u32| -> Result<RunPrompts, NoOrdinaryTokens> {
        let depth = (shape.depth > 0)
            .then(|| {
                batch_prompts(
                    &vocab,
                    shape.sequences,
                    shape.depth,
                    &spec.depth_tokens(phase),
                    run,
                )
            })
            .transpose()?;
        Ok(RunPrompts {
            depth,
            prompts: batch_prompts(
                &vocab,
                shape.sequences,
                shape.prompt_tokens,
                &spec.prompts(phase),
                run,
            )?,
        })
    };
    // Fails here, before any engine work, on a vocabulary without prompt tokens.
    prompts(Phase::Measured, 0)?;
    engine.configure(&shape).map_err(RunnerError::Engine)?;
    let mut acc = Accumulator::new(shape);
    for i in 0..spec.warmup_runs {
        let batch = prompts(Phase::Warmup, i)?;
        if interrupt.load(Ordering::Relaxed)
            || run_once(engine, &shape, &batch, interrupt)
                .map_err(RunnerError::Engine)?
                .is_none()
        {
            return Ok(acc.finish(i, false));
        }
        on_run(&RunProgress {
            warmup: true,
            done: i + 1,
            of: spec.warmup_runs,
            acc: &acc,
            warmup_runs: i + 1,
        });
    }
    let mut planned = spec.runs;
    let mut i = 0;
    loop {
        while i < planned {
            if interrupt.load(Ordering::Relaxed) {
                return Ok(acc.finish(spec.warmup_runs, false));
            }
            let batch = prompts(Phase::Measured, i)?;
            match run_once(engine, &shape, &batch, interrupt).map_err(RunnerError::Engine)? {
                Some(run) => acc.add(&run),
                None => return Ok(acc.finish(spec.warmup_runs, false)),
            }
            i += 1;
            on_run(&RunProgress {
                warmup: false,
                done: i,
                of: planned,
                acc: &acc,
                warmup_runs: spec.warmup_runs,
            });
        }
        match more(&acc.finish(spec.warmup_runs, true)) {
            0 => break,
            n => planned = planned.saturating_add(n),
        }
    }
    Ok(acc.finish(spec.warmup_runs, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeEngine, FakeTimings};

    fn spec(sequences: u32, prompt_tokens: u32, gen_tokens: u32, runs: u32) -> PointSpec {
        PointSpec {
            shape: BatchShape {
                depth: 0,
                sequences,
                prompt_tokens,
                gen_tokens,
            },
            warmup_runs: 2,
            runs,
            seed: 1,
            point: 0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    /// A depth is filled before every run with tokens of that run's own,
    /// timed apart; the prompts stay those of depth 0; and the context the
    /// engine is asked for holds the depth.
    #[test]
    fn every_run_fills_its_own_depth_before_the_depth_0_prompts() {
        let timings = FakeTimings::default();
        let mut at_depth = FakeEngine::new(timings);
        let mut deep = spec(2, 6, 3, 3);
        deep.shape.depth = 40;
        assert_eq!(deep.shape.context_per_sequence(), 40 + 6 + 2);
        let point = measure_point(&mut at_depth, &deep, &AtomicBool::new(false), |_| {}).unwrap();
        let mut flat = FakeEngine::new(timings);
        let flat_point = measure_point(
            &mut flat,
            &spec(2, 6, 3, 3),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
        assert_eq!(point.depth, 40);
        assert!(flat_point.depth_fill_ms.is_none());
        // 2 warm-up + 3 measured runs, each a depth fill and a prefill.
        assert_eq!(at_depth.calls().prefills, 10);
        let fills = point.depth_fill_ms.as_ref().unwrap();
        assert_eq!(fills.count, 3, "one fill per measured run");
        // The fill is not prefill: prefill = 1 ms + 0.01 ms/token of the prompts alone.
        assert!(close(
            point.prefill_ms.as_ref().unwrap().p50,
            1.0 + 0.01 * 12.0
        ));
        assert!(close(fills.p50, 1.0 + 0.01 * 80.0));
        assert_eq!(point.tokens.prompt, 3 * 2 * 6, "the depth is not prompt");
        let batches = at_depth.prefilled();
        let (depths, prompts): (Vec<_>, Vec<_>) =
            batches.chunks(2).enumerate().partition(|(i, _)| i % 2 == 0);
        // Every sequence of every run has a depth of its own.
        let depth_tokens: std::collections::HashSet<&Vec<i32>> =
            depths.iter().flat_map(|(_, b)| b.iter()).collect();
        assert_eq!(depth_tokens.len(), 10);
        assert!(depth_tokens.iter().all(|d| d.len() == 40));
        // The prompts are those a depth-0 point of the same seed decodes.
        let prompts: Vec<&Vec<i32>> = prompts.iter().flat_map(|(_, b)| b.iter()).collect();
        let flat_prompts: Vec<&Vec<i32>> = flat.prefilled().iter().collect();
        assert_eq!(prompts, flat_prompts);
        // A depth that does not fit is refused before any engine work.
        let mut small = FakeEngine::new(timings).with_max_context(47);
        let err = measure_point(&mut small, &deep, &AtomicBool::new(false), |_| {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            "depth 40 + 6 prompt tokens + 3 generated tokens needs 48 tokens of context per sequence, but the model allows 47"
        );
        assert_eq!(small.calls().prefills, 0);
    }

    #[test]
    fn metrics_follow_their_definitions_exactly() {
        // prefill = 1 ms + 0.01 ms/token; decode = 2 ms + 0.5 ms/sequence;
        // sample = 0.1 ms/sequence; counters report 90% of the host time.
        let timings = FakeTimings::default();
        let mut engine = FakeEngine::new(timings);
        let point = measure_point(
            &mut engine,
            &spec(4, 100, 5, 3),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
        assert!(point.complete);
        assert_eq!((point.runs, point.warmup_runs), (3, 2));
        // 2 warm-up + 3 measured runs, each 1 prefill and 4 decode steps.
        assert_eq!(engine.calls().prefills, 5);
        assert_eq!(engine.calls().decode_steps, 20);
        assert_eq!(point.tokens.prompt, 3 * 4 * 100);
        assert_eq!(point.tokens.generated, 3 * 4 * 5);

        let prefill = 1.0 + 0.01 * 400.0; // 5 ms
        let sample = 0.1 * 4.0; // 0.4 ms
        let decode = 2.0 + 0.5 * 4.0; // 4 ms
        let itl = decode + sample;
        let ttft = prefill + sample;
        let e2e = ttft + 4.0 * itl;

        let p = point.prefill_ms.unwrap();
        assert_eq!(p.count, 3);
        assert!(close(p.mean, prefill));
        let d = point.decode_step_ms.unwrap();
        assert_eq!(d.count, 3 * 4);
        assert!(close(d.mean, decode));
        assert_eq!(point.sample_ms.unwrap().count, 3 * 5);
        let t = point.ttft_ms.unwrap();
        assert_eq!(t.count, 3 * 4, "one TTFT per sequence per run");
        assert!(close(t.mean, ttft));
        let i = point.itl_ms.unwrap();
        assert_eq!(i.count, 3 * 4 * 4);
        assert!(close(i.mean, itl));
        assert!(close(point.e2e_ms.unwrap().mean, e2e));
        assert!(close(point.tpot_ms.unwrap().mean, (e2e - ttft) / 4.0));
        assert!(close(
            point.prefill_tok_s.unwrap().mean,
            400.0 / (prefill / 1e3)
        ));
        assert!(close(
            point.decode_tok_s.unwrap().mean,
            16.0 / (4.0 * itl / 1e3)
        ));
        assert!(close(
            point.throughput_tok_s.unwrap().mean,
            20.0 / (e2e / 1e3)
        ));

        let c = point.engine_counters.unwrap();
        assert!(close(c.decode_step_ms.unwrap().mean, 0.9 * decode));
        assert!(close(c.harness_over_engine_decode_step.unwrap(), 1.0 / 0.9));
        assert!(close(c.harness_over_engine_prefill.unwrap(), 1.0 / 0.9));
        assert!(point.device_timing.is_none());
    }

    #[test]
    fn kernel_activity_is_reported_beside_the_host_time_of_each_step() {
        // Decode steps of 4 ms (B=4) with 8 kernels busy for 60% of each,
        // the first a tenth of the step after the call; prefill 5 ms.
        let timings = FakeTimings {
            kernels: Some((8, 0.6)),
            ..FakeTimings::default()
        };
        let point = measure_point(
            &mut FakeEngine::new(timings),
            &spec(4, 100, 5, 3),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
        assert!(point.device_timing.is_none(), "no event window asked for");
        let k = point
            .kernel_timing
            .expect("kernel timing with kernel records");
        let d = k.decode_step.unwrap();
        assert_eq!(d.steps, 3 * 4, "every measured decode step, no warm-up");
        assert_eq!(d.kernels_per_step.unwrap().p50, 8.0);
        assert!(close(d.busy_ms.unwrap().mean, 0.6 * 4.0));
        assert!((d.busy_fraction.unwrap().p50 - 0.6).abs() < 1e-3);
        assert!(close(d.overhead_ms.unwrap().mean, 0.4 * 4.0));
        assert!(close(d.first_kernel_delay_ms.unwrap().mean, 0.4));
        assert!(close(d.tail_ms.unwrap().mean, 4.0 - 0.4 - 2.4));
        assert!(close(d.idle_gap_ms.unwrap().max, 0.0), "back to back");
        assert!(close(d.window_ms.unwrap().mean, 4.0));
        assert!(close(d.busy_over_host.unwrap(), 0.6));
        let p = k.prefill.unwrap();
        assert_eq!(p.steps, 3);
        assert!(close(p.busy_ms.unwrap().mean, 0.6 * 5.0));

        let plain = measure_point(
            &mut FakeEngine::new(FakeTimings::default()),
            &spec(1, 8, 3, 1),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
        assert!(plain.kernel_timing.is_none());
    }

    #[test]
    fn single_generated_token_has_no_decode_metrics() {
        let mut engine = FakeEngine::new(FakeTimings::default());
        let point = measure_point(
            &mut engine,
            &spec(1, 8, 1, 2),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
        assert!(
            point.itl_ms.is_none() && point.tpot_ms.is_none() && point.decode_step_ms.is_none()
        );
        assert_eq!(point.ttft_ms.unwrap().count, 2);
        assert_eq!(engine.calls().decode_steps, 0);
    }

    #[test]
    fn context_limit_is_checked_before_configuring() {
        let mut engine = FakeEngine::new(FakeTimings::default()).with_max_context(64);
        let err = measure_point(
            &mut engine,
            &spec(1, 60, 6, 1),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("65 tokens of context"), "{err}");
        assert_eq!(engine.calls().configures, 0);
        // 60 + 5 decoded tokens would need 65; 60 + 4 fits exactly.
        measure_point(
            &mut engine,
            &spec(1, 60, 5, 1),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
    }

    #[test]
    fn interrupt_keeps_measured_runs_and_marks_incomplete() {
        let interrupt = AtomicBool::new(false);
        let mut engine = FakeEngine::new(FakeTimings::default());
        let mut seen = Vec::new();
        let point = measure_point(&mut engine, &spec(2, 4, 3, 10), &interrupt, |p| {
            seen.push((p.warmup, p.done));
            if !p.warmup {
                assert_eq!(p.snapshot().runs, p.done);
            }
            if !p.warmup && p.done == 3 {
                interrupt.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
        assert!(!point.complete);
        assert_eq!(point.runs, 3);
        assert_eq!(point.ttft_ms.unwrap().count, 6);
        assert_eq!(seen.len(), 2 + 3);
    }

    #[test]
    fn every_run_decodes_its_own_prompts_from_the_point_streams() {
        let mut engine = FakeEngine::new(FakeTimings::default());
        let mut spec = spec(3, 6, 2, 4);
        spec.point = 7;
        measure_point(&mut engine, &spec, &AtomicBool::new(false), |_| {}).unwrap();
        let seen = engine.prefilled();
        assert_eq!(seen.len(), (2 + 4) * 3);
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "a prompt was decoded twice");
        // Measured run r, sequence s is item r × B + s of the measured stream.
        let vocab = engine.prompt_vocab();
        let measured = spec.prompts(Phase::Measured);
        for (i, prompt) in seen[2 * 3..].iter().enumerate() {
            let want = crate::workload::synthetic_prompt(&vocab, 6, &measured, i as u64).unwrap();
            assert_eq!(prompt, &want);
        }
    }

    #[test]
    fn a_vocabulary_without_prompt_tokens_is_an_error_not_a_panic() {
        struct NoTokens(FakeEngine);
        impl Engine for NoTokens {
            type Error = std::convert::Infallible;
            fn prompt_vocab(&self) -> crate::engine::PromptVocab {
                crate::engine::PromptVocab {
                    bos: Some(1),
                    ordinary: vec![],
                }
            }
            fn max_context_per_sequence(&self) -> u32 {
                4096
            }
            fn configure(&mut self, s: &BatchShape) -> Result<(), Self::Error> {
                self.0.configure(s)
            }
            fn reset(&mut self) -> Result<(), Self::Error> {
                self.0.reset()
            }
            fn prefill(&mut self, p: &[Vec<crate::engine::TokenId>]) -> Result<Timed, Self::Error> {
                self.0.prefill(p)
            }
            fn sample(&mut self) -> Result<Timed, Self::Error> {
                self.0.sample()
            }
            fn decode_step(&mut self) -> Result<Timed, Self::Error> {
                self.0.decode_step()
            }
            fn take_counters(&mut self) -> Option<EngineCounters> {
                None
            }
        }
        let mut engine = NoTokens(FakeEngine::new(FakeTimings::default()));
        let err = measure_point(
            &mut engine,
            &spec(1, 4, 2, 1),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("no ordinary token"), "{err}");
        assert_eq!(engine.0.calls().configures, 0);
    }

    #[test]
    fn warmup_never_enters_statistics() {
        // The fake's first calls are 100× slower: only warm-up sees them.
        let mut engine = FakeEngine::new(FakeTimings::default()).with_slow_first_calls(2);
        let point = measure_point(
            &mut engine,
            &spec(1, 10, 3, 4),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
        let p = point.prefill_ms.unwrap();
        assert_eq!(p.max, p.min, "a warm-up timing leaked into the statistics");
    }
}
