//! The engine trait: what a runner needs from an inference engine that it
//! drives step by step in the same process. The llama.cpp engine and the fake
//! engine implement it; runners, sweeps and statistics never know which.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kernels::KernelActivity;

/// A token id in the engine's vocabulary.
pub type TokenId = i32;

/// What prompt construction needs to know of a vocabulary: the tokens a
/// synthetic prompt may use (never control tokens, which could end a sequence
/// or change the model's mode), and the BOS token a real prompt would start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptVocab {
    /// The BOS token a prompt starts with; `None` when the model adds none.
    pub bos: Option<TokenId>,
    /// The tokens a synthetic prompt may draw from.
    pub ordinary: Vec<TokenId>,
}

/// One measurement point's shape: `sequences` prompts of `prompt_tokens`
/// each, decoded together, each generating `gen_tokens` tokens, after
/// `depth` tokens of context already in each sequence's KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchShape {
    /// Sequences decoded together (the batch size).
    pub sequences: u32,
    /// Prompt length of each sequence, in tokens.
    pub prompt_tokens: u32,
    /// Tokens each sequence generates, the first (sampled after prefill) included.
    pub gen_tokens: u32,
    /// Tokens already in each sequence's KV cache when its prompt is
    /// evaluated (llama-bench's `-d`): the prefill runs at context depth..
    /// depth + prompt, decode step i at depth + prompt + i.
    #[serde(default)]
    pub depth: u32,
}

impl BatchShape {
    /// KV cells one sequence needs: its depth, its prompt, and every
    /// generated token but the last, which is sampled and never decoded.
    pub fn context_per_sequence(&self) -> u32 {
        self.depth
            .saturating_add(self.prompt_tokens)
            .saturating_add(self.gen_tokens.saturating_sub(1))
    }
}

/// How long one engine operation took. `host` is always measured, from just
/// before the call into the engine until its results are complete
/// (synchronized); `device` is present when the engine also read that same
/// window on the accelerator's clock (CUDA events: the host's window, not
/// the kernels' time); `kernels` when the accelerator's own activity records
/// say what it executed inside the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    /// The window on the host's monotonic clock.
    pub host: Duration,
    /// The same window on the accelerator's clock; `None` when not read.
    pub device: Option<Duration>,
    /// What the accelerator executed in the window; `None` without activity records.
    pub kernels: Option<KernelActivity>,
}

impl Timed {
    /// A timing read on the host's clock only (no device window, no kernels).
    pub fn host(host: Duration) -> Self {
        Timed {
            host,
            device: None,
            kernels: None,
        }
    }
}

/// The engine's own account of the work since the last call to
/// [`Engine::take_counters`], for comparison with the harness's clock.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EngineCounters {
    /// Time the engine attributes to evaluating the batches, in ms.
    pub eval_ms: f64,
    /// Number of evaluation calls (llama_decode) it counted.
    pub evals: u64,
    /// Tokens it evaluated.
    pub tokens: u64,
}

/// An inference engine driven one step at a time.
///
/// A run is: [`reset`](Engine::reset), [`prefill`](Engine::prefill) with one
/// prompt per sequence, [`sample`](Engine::sample) (the first generated
/// token of every sequence), then `gen_tokens − 1` times
/// [`decode_step`](Engine::decode_step) (one token per sequence, all
/// sequences together) followed by [`sample`](Engine::sample).
pub trait Engine {
    /// The error an engine operation fails with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The vocabulary synthetic prompts are drawn from.
    fn prompt_vocab(&self) -> PromptVocab;

    /// The longest context one sequence may have.
    fn max_context_per_sequence(&self) -> u32;

    /// Prepares for runs of `shape` (allocates the KV cache for its sequences).
    fn configure(&mut self, shape: &BatchShape) -> Result<(), Self::Error>;

    /// Forgets all sequences, keeping the configuration.
    fn reset(&mut self) -> Result<(), Self::Error>;

    /// Evaluates every prompt, one per sequence, appended to what the
    /// sequence already holds (nothing after [`reset`](Engine::reset); the
    /// depth's tokens when it is called again), and waits for the result.
    fn prefill(&mut self, prompts: &[Vec<TokenId>]) -> Result<Timed, Self::Error>;

    /// Samples the next token of every sequence from the last evaluation.
    fn sample(&mut self) -> Result<Timed, Self::Error>;

    /// Evaluates the last sampled token of every sequence, together, and
    /// waits for the result.
    fn decode_step(&mut self) -> Result<Timed, Self::Error>;

    /// The engine's own counters since the last call, if it keeps any.
    fn take_counters(&mut self) -> Option<EngineCounters>;
}
