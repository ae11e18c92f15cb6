//! A fake engine with exactly known, deterministic timings. It never sleeps:
//! it reports the durations a cost model gives, so runner tests can check
//! every metric against its definition, with no clock involved.

use std::convert::Infallible;
use std::time::Duration;

use crate::engine::{BatchShape, Engine, EngineCounters, PromptVocab, Timed, TokenId};
use crate::kernels::{DeviceWork, KernelActivity, WorkKind};

/// The fake's cost model, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FakeTimings {
    /// A prefill's fixed cost, whatever the prompts.
    pub prefill_base_ms: f64,
    /// A prefill's cost per prompt token, over all the batch's prompts.
    pub prefill_per_token_ms: f64,
    /// A decode step's fixed cost, whatever the batch.
    pub decode_base_ms: f64,
    /// A decode step's cost per sequence decoded, added to the base.
    pub decode_per_sequence_ms: f64,
    /// A sample call's cost per sequence sampled.
    pub sample_per_sequence_ms: f64,
    /// The engine's own counters report this fraction of the host time.
    pub counter_fraction: f64,
    /// When set, steps also report a device time of this fraction.
    pub device_fraction: Option<f64>,
    /// When set, steps also report kernel activity: this many kernels,
    /// back to back after a delay of a tenth of the step, busy for this
    /// fraction of it.
    pub kernels: Option<(u32, f64)>,
}

impl Default for FakeTimings {
    fn default() -> Self {
        FakeTimings {
            prefill_base_ms: 1.0,
            prefill_per_token_ms: 0.01,
            decode_base_ms: 2.0,
            decode_per_sequence_ms: 0.5,
            sample_per_sequence_ms: 0.1,
            counter_fraction: 0.9,
            device_fraction: None,
            kernels: None,
        }
    }
}

/// How often each operation was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls to `configure`, one per point measured.
    pub configures: u32,
    /// Calls to `reset`, one per run (warm-up included).
    pub resets: u32,
    /// Calls to `prefill`.
    pub prefills: u32,
    /// Calls to `decode_step`.
    pub decode_steps: u32,
    /// Calls to `sample`, each for every sequence at once (G per run).
    pub samples: u32,
}

/// An [`Engine`] that reports [`FakeTimings`]' durations instead of running
/// a model, and counts its calls.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    timings: FakeTimings,
    max_context: u32,
    shape: Option<BatchShape>,
    calls: CallCounts,
    slow_runs_left: u32,
    slow: bool,
    counters: EngineCounters,
    prefilled: Vec<Vec<TokenId>>,
}

impl FakeEngine {
    /// A fake with these timings, a 4096-token context per sequence and no
    /// slow runs.
    pub fn new(timings: FakeTimings) -> Self {
        FakeEngine {
            timings,
            max_context: 4096,
            shape: None,
            calls: CallCounts::default(),
            slow_runs_left: 0,
            slow: false,
            counters: EngineCounters::default(),
            prefilled: Vec::new(),
        }
    }

    /// Sets the context per sequence the engine reports (default 4096 tokens).
    pub fn with_max_context(mut self, max_context: u32) -> Self {
        self.max_context = max_context;
        self
    }

    /// The first `runs` runs take 100× longer, as a cold engine might.
    pub fn with_slow_first_calls(mut self, runs: u32) -> Self {
        self.slow_runs_left = runs;
        self
    }

    /// How often each operation has been called so far.
    pub fn calls(&self) -> CallCounts {
        self.calls
    }

    /// Every prompt prefilled so far, in order.
    pub fn prefilled(&self) -> &[Vec<TokenId>] {
        &self.prefilled
    }

    fn timed(&mut self, host_ms: f64, counted: Option<u64>) -> Timed {
        let host_ms = if self.slow { host_ms * 100.0 } else { host_ms };
        if let Some(tokens) = counted {
            self.counters.eval_ms += host_ms * self.timings.counter_fraction;
            self.counters.evals += 1;
            self.counters.tokens += tokens;
        }
        let duration = |ms: f64| Duration::from_nanos((ms * 1e6).round() as u64);
        let window_ns = (host_ms * 1e6).round() as u64;
        Timed {
            host: duration(host_ms),
            device: self.timings.device_fraction.map(|f| duration(host_ms * f)),
            kernels: self.timings.kernels.map(|(count, busy)| {
                let each = (window_ns as f64 * busy / f64::from(count.max(1))) as u64;
                let start = window_ns / 10;
                let records: Vec<DeviceWork> = (0..u64::from(count))
                    .map(|i| DeviceWork {
                        kind: WorkKind::Kernel,
                        start_ns: start + i * each,
                        end_ns: start + (i + 1) * each,
                    })
                    .collect();
                KernelActivity::from_records(0, window_ns, &records)
            }),
        }
    }

    fn sequences(&self) -> u32 {
        self.shape.map_or(1, |s| s.sequences)
    }
}

impl Engine for FakeEngine {
    type Error = Infallible;

    fn prompt_vocab(&self) -> PromptVocab {
        PromptVocab {
            bos: Some(1),
            ordinary: (3..259).collect(),
        }
    }

    fn max_context_per_sequence(&self) -> u32 {
        self.max_context
    }

    fn configure(&mut self, shape: &BatchShape) -> Result<(), Infallible> {
        self.calls.configures += 1;
        self.shape = Some(*shape);
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Infallible> {
        self.calls.resets += 1;
        self.slow = self.slow_runs_left > 0;
        self.slow_runs_left = self.slow_runs_left.saturating_sub(1);
        Ok(())
    }

    fn prefill(&mut self, prompts: &[Vec<TokenId>]) -> Result<Timed, Infallible> {
        self.calls.prefills += 1;
        self.prefilled.extend_from_slice(prompts);
        let tokens: usize = prompts.iter().map(Vec::len).sum();
        let ms = self.timings.prefill_base_ms + self.timings.prefill_per_token_ms * tokens as f64;
        Ok(self.timed(ms, Some(tokens as u64)))
    }

    fn sample(&mut self) -> Result<Timed, Infallible> {
        self.calls.samples += 1;
        let ms = self.timings.sample_per_sequence_ms * f64::from(self.sequences());
        Ok(self.timed(ms, None))
    }

    fn decode_step(&mut self) -> Result<Timed, Infallible> {
        self.calls.decode_steps += 1;
        let n = self.sequences();
        let ms = self.timings.decode_base_ms + self.timings.decode_per_sequence_ms * f64::from(n);
        Ok(self.timed(ms, Some(u64::from(n))))
    }

    fn take_counters(&mut self) -> Option<EngineCounters> {
        Some(std::mem::take(&mut self.counters))
    }
}
