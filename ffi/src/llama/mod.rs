//! llama.cpp as an [`Engine`]: prompts and decode steps are submitted with
//! `llama_decode` and timed on the host clock from just before the call until
//! `llama_synchronize` returns, so the time covers all of the engine's work
//! and none of the harness's (batches are built before the clock starts).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Instant;

use inferbench_core::engine::{BatchShape, Engine, EngineCounters, PromptVocab, Timed, TokenId};
use inferbench_models::GgufError;

use crate::cuda::{DeviceTimer, DeviceTimerStatus};
use crate::cupti::{KernelTracer, KernelTracerStatus};
use crate::greedy;
use inferbench_core::schema::kernels::KernelTimingStatus;
use inferbench_core::schema::LlamaBuffers;
use inferbench_core::spec::{CacheType, FlashAttn};
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::{BatchAddError, LlamaBatch};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

mod log;
mod model;

use log::capturing_log;
pub use log::{buffers_from_log, take_llama_problems};
pub use model::{engine_build, LoadedModel, Runtime};

/// llama.cpp's LLAMA_MAX_SEQ: sequences one context can hold.
pub const MAX_SEQUENCES: u32 = 256;

/// Why loading a model into llama.cpp or running it failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// llama.cpp's backend could not be initialised (`llama_backend_init`).
    #[error("initialising llama.cpp: {0}")]
    Backend(String),
    /// inferbench's GGUF reader refused the file, before llama.cpp saw it.
    #[error(transparent)]
    InvalidModel(#[from] GgufError),
    /// llama.cpp failed to load a file the GGUF reader accepted.
    #[error("loading model {path}: llama.cpp refused it: {cause}")]
    Load {
        /// The model file.
        path: PathBuf,
        /// llama.cpp's error.
        cause: llama_cpp_2::LlamaModelLoadError,
    },
    /// llama.cpp could not create a context (and its KV cache) for a shape.
    #[error("creating a llama.cpp context for {sequences} sequences of {cells} cells: {cause}{}",
        if llama_log.is_empty() { String::new() } else { format!(" (llama.cpp: {})", llama_log.join("; ")) })]
    Context {
        /// Sequences the context was for.
        sequences: u32,
        /// KV cells per sequence (the shape's context, padded to 256).
        cells: u32,
        /// llama.cpp's error.
        cause: llama_cpp_2::LlamaContextLoadError,
        /// What llama.cpp logged as it refused: its reason.
        llama_log: Vec<String>,
    },
    /// `llama_decode` returned an error.
    #[error("llama_decode failed during {phase}: {cause}")]
    Decode {
        /// `"prefill"` or `"decode step"`.
        phase: &'static str,
        /// llama.cpp's error.
        cause: llama_cpp_2::DecodeError,
    },
    /// A token could not be added to a llama.cpp batch.
    #[error("building a batch: {0}")]
    Batch(BatchAddError),
    /// An operation (named) was called before [`Engine::configure`].
    #[error("{0} before the engine was configured")]
    NotConfigured(&'static str),
    /// A shape asked for more than [`MAX_SEQUENCES`] sequences.
    #[error("batch of {0} sequences is more than llama.cpp's limit of {MAX_SEQUENCES}")]
    TooManySequences(u32),
    /// `n_batch` below the batch's sequences: the last `llama_decode` of a
    /// prefill holds one token of every sequence, whose logits are sampled.
    #[error(
        "n_batch {n_batch} is below this point's {needed} sequences, whose last prompt tokens \
         go to one llama_decode: give --n-batch {needed} or more"
    )]
    BatchTooSmall {
        /// The n_batch asked for.
        n_batch: u32,
        /// The sequences of the batch.
        needed: u32,
    },
}

// By hand, not `#[from]`: the message shows the cause once.
impl From<BatchAddError> for EngineError {
    fn from(e: BatchAddError) -> Self {
        EngineError::Batch(e)
    }
}

/// How the next token of each sequence is chosen. Both are greedy and pick
/// the same tokens; they differ in the host work per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GreedySampler {
    /// The argmax of each logits row, read in place, rows over threads
    /// ([`crate::greedy`]).
    #[default]
    Argmax,
    /// llama.cpp's own greedy sampler (`llama_sampler_sample`), which first
    /// copies the whole vocabulary into a candidate array per sequence, as
    /// llama.cpp's common sampling (llama-server's) does.
    Llama,
}

impl GreedySampler {
    /// The result file's `settings.sampler`.
    pub fn name(self) -> &'static str {
        match self {
            GreedySampler::Argmax => "greedy",
            GreedySampler::Llama => "llama-greedy",
        }
    }
}

/// Settings of every context the engine creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlamaOptions {
    /// Threads for single-token graphs (llama.cpp's n_threads).
    pub threads: u32,
    /// Threads for graphs of more than one token: prefill, and decode steps
    /// of several sequences (llama.cpp's n_threads_batch).
    pub threads_batch: u32,
    /// Physical batch: tokens evaluated per graph (llama.cpp's n_ubatch).
    pub ubatch: u32,
    /// One KV pool shared by all sequences instead of one per sequence.
    pub kv_unified: bool,
    /// Sliding-window layers keep a cache of the whole context (llama.cpp's
    /// swa_full) instead of one of their window plus a ubatch.
    pub swa_full: bool,
    /// How the next token of each sequence is chosen.
    pub sampler: GreedySampler,
    /// With layers on a GPU, trace its kernels with CUPTI (see
    /// [`crate::cupti`]); off, steps are measured without CUPTI's cost.
    pub kernel_timing: bool,
    /// Tokens per `llama_decode` call (n_batch); `None`: each point's whole
    /// prefill.
    pub n_batch: Option<u32>,
    /// Flash attention.
    pub flash_attn: FlashAttn,
    /// The K cache's element type.
    pub cache_type_k: CacheType,
    /// The V cache's element type.
    pub cache_type_v: CacheType,
    /// Keep the KV cache on the GPU with offloaded layers (llama.cpp's offload_kqv).
    pub kv_offload: bool,
}

impl LlamaOptions {
    /// llama.cpp's defaults for what a grid varies, with these threads,
    /// ubatch and sampler.
    pub fn new(threads: u32, ubatch: u32, sampler: GreedySampler) -> LlamaOptions {
        LlamaOptions {
            threads,
            threads_batch: threads,
            ubatch,
            kv_unified: false,
            // llama-bench and llama-server turn it off; the library's
            // default (on) makes every sliding-window layer attend over the
            // whole cache, 0.75 of llama-bench's speed at depth 2048 on Gemma 3.
            swa_full: false,
            sampler,
            kernel_timing: true,
            n_batch: None,
            flash_attn: FlashAttn::Auto,
            cache_type_k: CacheType::F16,
            cache_type_v: CacheType::F16,
            kv_offload: true,
        }
    }
}

/// The context parameters llama.cpp was given for the shape last configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextParams {
    /// KV cells of the whole context (n_ctx).
    pub n_ctx: u32,
    /// Tokens per llama_decode call.
    pub n_batch: u32,
    /// Tokens per compute graph.
    pub n_ubatch: u32,
    /// Sequences (n_seq_max).
    pub n_seq_max: u32,
}

fn kv_cache_type(t: CacheType) -> KvCacheType {
    match t {
        CacheType::F32 => KvCacheType::F32,
        CacheType::F16 => KvCacheType::F16,
        CacheType::Bf16 => KvCacheType::BF16,
        CacheType::Q8_0 => KvCacheType::Q8_0,
        CacheType::Q4_0 => KvCacheType::Q4_0,
        CacheType::Q4_1 => KvCacheType::Q4_1,
        CacheType::Iq4Nl => KvCacheType::IQ4_NL,
        CacheType::Q5_0 => KvCacheType::Q5_0,
        CacheType::Q5_1 => KvCacheType::Q5_1,
    }
}

fn flash_attn_type(f: FlashAttn) -> llama_cpp_sys_2::llama_flash_attn_type {
    match f {
        FlashAttn::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        FlashAttn::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        FlashAttn::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
    }
}

struct Configured<'m> {
    ctx: LlamaContext<'m>,
    shape: BatchShape,
    /// Next token of each sequence (the last sampled one).
    next_tokens: Vec<LlamaToken>,
    positions: Vec<i32>,
    /// Index in the last evaluated batch of each sequence's logits.
    output_index: Vec<i32>,
    /// Each sequence's sampled token id, before it becomes a `LlamaToken`.
    sampled: Vec<usize>,
    step_batch: LlamaBatch<'static>,
    decode_calls: u64,
}

/// llama.cpp driven one step at a time, greedy sampling (see
/// [`crate::greedy`]), EOS ignored (every sequence generates exactly the
/// requested number of tokens). With layers
/// on a GPU and a CUDA driver present, prefill and decode steps are also
/// timed with CUDA events (see [`crate::cuda`]).
pub struct LlamaEngine<'m> {
    runtime: &'m Runtime,
    model: &'m LoadedModel,
    options: LlamaOptions,
    /// Only for [`GreedySampler::Llama`].
    llama_sampler: Option<LlamaSampler>,
    /// Threads the argmax spreads rows over, with layers on a GPU only: on
    /// the CPU, llama.cpp's OpenMP threads keep spinning on every core for a
    /// while after each step, and a sampling thread competing with them took
    /// twice as long as one thread alone (2 cores, batch 2).
    sample_pool: Option<rayon::ThreadPool>,
    configured: Option<Configured<'m>>,
    device_timer: Option<DeviceTimer>,
    kernel_tracer: Option<KernelTracer>,
    kernel_timing: KernelTimingStatus,
    timing_notes: Vec<String>,
    context_params: Option<ContextParams>,
    /// The buffers llama.cpp reported making the context last configured.
    buffers: Option<LlamaBuffers>,
}

impl<'m> LlamaEngine<'m> {
    /// An engine on `model`, not yet configured. With layers on a GPU it
    /// probes CUDA event timing and, unless `options.kernel_timing` is off,
    /// CUPTI kernel tracing; what is unavailable is noted, never an error.
    pub fn new(runtime: &'m Runtime, model: &'m LoadedModel, options: LlamaOptions) -> Self {
        let on_gpu = model.gpu_layers_offloaded(runtime) > 0;
        let (device_timer, timing_notes) = if !on_gpu {
            (
                None,
                vec!["no layers on a GPU: host timing only".to_string()],
            )
        } else {
            match DeviceTimer::probe() {
                DeviceTimerStatus::Available(timer) => (Some(timer), Vec::new()),
                DeviceTimerStatus::Unavailable { reason } => (None, vec![reason]),
            }
        };
        let (kernel_tracer, kernel_timing) = if !on_gpu {
            (None, unavailable("no layers on a GPU"))
        } else if !options.kernel_timing {
            (None, unavailable("off (--no-kernel-timing)"))
        } else {
            match KernelTracer::probe() {
                KernelTracerStatus::Available(tracer) => {
                    let status = KernelTimingStatus {
                        available: true,
                        detail: tracer.description(),
                    };
                    (Some(tracer), status)
                }
                KernelTracerStatus::Unavailable { reason } => (None, unavailable(&reason)),
            }
        };
        LlamaEngine {
            runtime,
            model,
            options,
            llama_sampler: (options.sampler == GreedySampler::Llama).then(LlamaSampler::greedy),
            // Without a pool the rows are scanned on the calling thread,
            // which is also what a pool that cannot start would leave.
            sample_pool: on_gpu
                .then(|| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(options.threads as usize)
                        .thread_name(|i| format!("inferbench-sample-{i}"))
                        .build()
                        .ok()
                })
                .flatten(),
            configured: None,
            device_timer,
            kernel_tracer,
            kernel_timing,
            timing_notes,
            context_params: None,
            buffers: None,
        }
    }

    /// The context parameters of the shape last configured (`None` before).
    pub fn context_params(&self) -> Option<ContextParams> {
        self.context_params
    }

    /// The buffers llama.cpp reported as it made the context last
    /// configured (`None` before, or where it logged none).
    pub fn buffers(&self) -> Option<LlamaBuffers> {
        self.buffers
    }

    /// The model this engine runs.
    pub fn model(&self) -> &'m LoadedModel {
        self.model
    }

    /// The options this engine was made with.
    pub fn options(&self) -> &LlamaOptions {
        &self.options
    }

    /// Whether the GPU's kernels are traced, and why not, for the result file.
    pub fn kernel_timing(&self) -> KernelTimingStatus {
        let mut status = self.kernel_timing.clone();
        if let Some(t) = self
            .kernel_tracer
            .as_ref()
            .filter(|t| t.refused_buffers() > 0)
        {
            status.detail.push_str(&format!(
                "; {} record buffers could not be allocated, their records are lost",
                t.refused_buffers()
            ));
        }
        status
    }

    /// "cuda_events+host" when steps are also timed on the GPU, else "host".
    pub fn timing_source(&self) -> &'static str {
        if self.device_timer.is_some() {
            "cuda_events+host"
        } else {
            "host"
        }
    }

    /// Why the device clock is or is not used, for the result file.
    pub fn timing_notes(&self) -> &[String] {
        &self.timing_notes
    }

    fn configured(&mut self, what: &'static str) -> Result<&mut Configured<'m>, EngineError> {
        self.configured
            .as_mut()
            .ok_or(EngineError::NotConfigured(what))
    }

    /// KV cells per sequence llama.cpp will allocate: it pads to 256.
    fn cells_per_sequence(shape: &BatchShape) -> u32 {
        shape.context_per_sequence().max(1).div_ceil(256) * 256
    }
}

/// One prompt token as a prefill hands it to llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PrefillToken {
    id: TokenId,
    pos: i32,
    seq: i32,
    /// The sequence's last prompt token, whose logits are sampled.
    last: bool,
}

/// The calls of one prefill, each at most `n_batch` tokens, every prompt
/// placed after the `positions` its sequence already holds.
///
/// When everything fits in one call, the prompts go one after another, as
/// they always have. Otherwise the prompts but their last tokens are split
/// into calls of `n_batch` (llama-bench's split of its prompt, for one
/// sequence), and the last tokens close the final call, or make one of their
/// own where it has no room for them all: llama.cpp keeps only the last
/// call's logits, and every sequence's last token must be sampled. Each
/// sequence's positions stay consecutive across the calls, as llama.cpp
/// requires.
fn prefill_chunks(
    prompts: &[Vec<TokenId>],
    positions: &[i32],
    n_batch: usize,
) -> Vec<Vec<PrefillToken>> {
    let token = |seq: usize, pos: usize, last: bool| PrefillToken {
        id: prompts[seq][pos],
        pos: positions[seq] + pos as i32,
        seq: seq as i32,
        last,
    };
    let total: usize = prompts.iter().map(Vec::len).sum();
    if total <= n_batch {
        let all = prompts
            .iter()
            .enumerate()
            .flat_map(|(seq, p)| (0..p.len()).map(move |pos| (seq, pos, pos + 1 == p.len())))
            .map(|(seq, pos, last)| token(seq, pos, last))
            .collect();
        return vec![all];
    }
    let body: Vec<PrefillToken> = prompts
        .iter()
        .enumerate()
        .flat_map(|(seq, p)| (0..p.len().saturating_sub(1)).map(move |pos| (seq, pos)))
        .map(|(seq, pos)| token(seq, pos, false))
        .collect();
    let lasts: Vec<PrefillToken> = prompts
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(seq, p)| token(seq, p.len() - 1, true))
        .collect();
    let mut chunks: Vec<Vec<PrefillToken>> = body.chunks(n_batch).map(<[_]>::to_vec).collect();
    match chunks.last_mut() {
        Some(tail) if tail.len() + lasts.len() <= n_batch => tail.extend(lasts),
        _ => chunks.push(lasts),
    }
    chunks
}

fn unavailable(reason: &str) -> KernelTimingStatus {
    KernelTimingStatus {
        available: false,
        detail: reason.into(),
    }
}

/// Times `f` on the host clock; with a timer, its window on the device
/// clock too; with a tracer, the kernels it ran. `f` must end with a full
/// synchronize (see [`DeviceTimer::time`]).
fn timed(
    timer: Option<&mut DeviceTimer>,
    tracer: Option<&mut KernelTracer>,
    f: impl FnOnce() -> Result<(), EngineError>,
) -> Result<Timed, EngineError> {
    let clocked = || {
        let start = Instant::now();
        // The records' window just inside the host's.
        let opened = tracer.as_deref().and_then(KernelTracer::now);
        let result = f();
        let closed = tracer.as_deref().and_then(KernelTracer::now);
        (result, start.elapsed(), opened.zip(closed))
    };
    let ((result, host, window), device) = match timer {
        Some(timer) => {
            let (value, device) = timer.time(clocked);
            (value, device.ok())
        }
        None => (clocked(), None),
    };
    result?;
    // A step whose events or records failed keeps its host time; the device
    // statistics then count fewer steps, which the result shows.
    let kernels = match (tracer, window) {
        (Some(tracer), Some((opened, closed))) => tracer.activity(opened, closed).ok(),
        _ => None,
    };
    Ok(Timed {
        host,
        device,
        kernels,
    })
}

impl Engine for LlamaEngine<'_> {
    type Error = EngineError;

    fn prompt_vocab(&self) -> PromptVocab {
        self.model.prompt_vocab()
    }

    fn max_context_per_sequence(&self) -> u32 {
        self.model.n_ctx_train()
    }

    fn configure(&mut self, shape: &BatchShape) -> Result<(), EngineError> {
        if shape.sequences > MAX_SEQUENCES {
            return Err(EngineError::TooManySequences(shape.sequences));
        }
        // Free the old context (and its KV cache) before allocating the next.
        self.configured = None;
        let cells = Self::cells_per_sequence(shape);
        let n_ctx = cells * shape.sequences;
        // Without --n-batch, the whole prefill goes to llama_decode as one
        // logical batch, which llama.cpp splits into n_ubatch-sized graphs
        // itself; a depth is filled the same way, in one batch of its own.
        // With it, the prefill is split into calls of n_batch tokens, as
        // llama-bench splits its prompt (see `prefill`).
        let whole = (shape.sequences * shape.prompt_tokens.max(shape.depth)).max(shape.sequences);
        let n_batch = match self.options.n_batch {
            Some(n_batch) if n_batch < shape.sequences => {
                return Err(EngineError::BatchTooSmall {
                    n_batch,
                    needed: shape.sequences,
                })
            }
            Some(n_batch) => n_batch,
            None => whole,
        };
        let n_ubatch = self.options.ubatch.min(n_batch);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_ubatch)
            .with_n_seq_max(shape.sequences)
            .with_n_threads(self.options.threads as i32)
            .with_n_threads_batch(self.options.threads_batch as i32)
            .with_kv_unified(self.options.kv_unified)
            .with_swa_full(self.options.swa_full)
            .with_flash_attention_policy(flash_attn_type(self.options.flash_attn))
            .with_type_k(kv_cache_type(self.options.cache_type_k))
            .with_type_v(kv_cache_type(self.options.cache_type_v))
            .with_offload_kqv(self.options.kv_offload)
            .with_no_perf(false);
        self.context_params = Some(ContextParams {
            n_ctx,
            n_batch,
            n_ubatch,
            n_seq_max: shape.sequences,
        });
        // Only what this call logs explains its failure.
        take_llama_problems();
        let (made, log) =
            capturing_log(|| self.model.model.new_context(&self.runtime.backend, params));
        self.buffers = buffers_from_log(&log);
        let ctx = made.map_err(|source| EngineError::Context {
            sequences: shape.sequences,
            cells,
            cause: source,
            llama_log: take_llama_problems(),
        })?;
        let b = shape.sequences as usize;
        self.configured = Some(Configured {
            ctx,
            shape: *shape,
            next_tokens: vec![LlamaToken(0); b],
            positions: vec![0; b],
            output_index: vec![0; b],
            sampled: vec![0; b],
            step_batch: LlamaBatch::new(b, shape.sequences as i32),
            decode_calls: 0,
        });
        Ok(())
    }

    fn reset(&mut self) -> Result<(), EngineError> {
        let c = self.configured("reset")?;
        c.ctx.clear_kv_cache();
        c.positions.fill(0);
        Ok(())
    }

    fn prefill(&mut self, prompts: &[Vec<TokenId>]) -> Result<Timed, EngineError> {
        let c = self
            .configured
            .as_mut()
            .ok_or(EngineError::NotConfigured("prefill"))?;
        let n_batch = self
            .context_params
            .map_or(usize::MAX, |p| p.n_batch as usize)
            .max(1);
        let sequences = c.shape.sequences as i32;
        // Every batch is built before the clock starts.
        let mut batches = Vec::new();
        for chunk in prefill_chunks(prompts, &c.positions, n_batch) {
            let mut batch = LlamaBatch::new(chunk.len().max(1), sequences);
            for (index, token) in chunk.iter().enumerate() {
                batch.add(LlamaToken(token.id), token.pos, &[token.seq], token.last)?;
                if token.last {
                    c.output_index[token.seq as usize] = index as i32;
                }
            }
            batches.push(batch);
        }
        for (seq, prompt) in prompts.iter().enumerate() {
            // Appended after what the sequence holds: a depth's tokens, or
            // nothing after a reset.
            c.positions[seq] += prompt.len() as i32;
        }
        c.decode_calls += batches.len() as u64;
        let ctx = &mut c.ctx;
        timed(
            self.device_timer.as_mut(),
            self.kernel_tracer.as_mut(),
            || {
                for batch in &mut batches {
                    ctx.decode(batch).map_err(|source| EngineError::Decode {
                        phase: "prefill",
                        cause: source,
                    })?;
                }
                ctx.synchronize();
                Ok(())
            },
        )
    }

    fn sample(&mut self) -> Result<Timed, EngineError> {
        let c = self
            .configured
            .as_mut()
            .ok_or(EngineError::NotConfigured("sample"))?;
        let start = Instant::now();
        if let Some(sampler) = self.llama_sampler.as_mut() {
            for (next, &index) in c.next_tokens.iter_mut().zip(&c.output_index) {
                *next = sampler.sample(&c.ctx, index);
            }
            return Ok(Timed::host(start.elapsed()));
        }
        let rows: Vec<&[f32]> = c
            .output_index
            .iter()
            .map(|&index| c.ctx.get_logits_ith(index))
            .collect();
        greedy::argmax_rows(&rows, self.sample_pool.as_ref(), &mut c.sampled);
        for (next, &token) in c.next_tokens.iter_mut().zip(&c.sampled) {
            // A row index is below n_vocab, which is an i32.
            *next = LlamaToken(token as i32);
        }
        Ok(Timed::host(start.elapsed()))
    }

    fn decode_step(&mut self) -> Result<Timed, EngineError> {
        let c = self
            .configured
            .as_mut()
            .ok_or(EngineError::NotConfigured("decode step"))?;
        c.step_batch.clear();
        for seq in 0..c.next_tokens.len() {
            c.step_batch
                .add(c.next_tokens[seq], c.positions[seq], &[seq as i32], true)?;
            c.output_index[seq] = seq as i32;
            c.positions[seq] += 1;
        }
        c.decode_calls += 1;
        let (ctx, batch) = (&mut c.ctx, &mut c.step_batch);
        timed(
            self.device_timer.as_mut(),
            self.kernel_tracer.as_mut(),
            || {
                ctx.decode(batch).map_err(|source| EngineError::Decode {
                    phase: "decode step",
                    cause: source,
                })?;
                ctx.synchronize();
                Ok(())
            },
        )
    }

    fn take_counters(&mut self) -> Option<EngineCounters> {
        let c = self.configured.as_mut()?;
        let t = c.ctx.timings();
        let counters = EngineCounters {
            // llama.cpp files single-token evaluations under "eval" and all
            // others under "prompt eval"; a batch decode step is the latter.
            eval_ms: t.t_p_eval_ms() + t.t_eval_ms(),
            evals: c.decode_calls,
            tokens: (t.n_p_eval() + t.n_eval()).max(0) as u64,
        };
        c.ctx.reset_timings();
        c.decode_calls = 0;
        Some(counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_models::{write_tiny_model, TinySpec};

    const SHAPE: BatchShape = BatchShape {
        sequences: 4,
        prompt_tokens: 8,
        gen_tokens: 12,
        depth: 0,
    };

    /// An engine on `model`, configured for `SHAPE` and prefilled.
    fn prefilled<'m>(
        runtime: &'m Runtime,
        model: &'m LoadedModel,
        sampler: GreedySampler,
    ) -> LlamaEngine<'m> {
        let options = LlamaOptions::new(2, 512, sampler);
        let mut engine = LlamaEngine::new(runtime, model, options);
        engine.configure(&SHAPE).unwrap();
        let ordinary = engine.prompt_vocab().ordinary;
        let prompts: Vec<Vec<TokenId>> = (0..SHAPE.sequences as usize)
            .map(|seq| {
                (0..SHAPE.prompt_tokens as usize)
                    .map(|i| ordinary[(seq * 31 + i * 7) % ordinary.len()])
                    .collect()
            })
            .collect();
        engine.prefill(&prompts).unwrap();
        engine
    }

    /// At a depth, llama.cpp holds the depth, then the prompt after it,
    /// then one more position per decode step (read back from its KV
    /// cache), and a reset leaves no cell of a sequence behind.
    #[test]
    fn the_prompt_and_steps_follow_the_depth_in_llama_cpps_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_model(&path, &TinySpec::default()).unwrap();
        let runtime = Runtime::get(true).unwrap();
        let model = LoadedModel::load(runtime, &path, 0).unwrap();
        for n_batch in [None, Some(5)] {
            depth_then_prompt_then_steps(runtime, &model, n_batch);
        }
    }

    /// The body of the test above, the prefill whole or split into calls of
    /// `n_batch` tokens.
    fn depth_then_prompt_then_steps(runtime: &Runtime, model: &LoadedModel, n_batch: Option<u32>) {
        let options = LlamaOptions {
            kernel_timing: false,
            n_batch,
            ..LlamaOptions::new(2, 512, GreedySampler::Argmax)
        };
        let shape = BatchShape {
            depth: 300,
            ..SHAPE
        };
        let mut engine = LlamaEngine::new(runtime, model, options);
        engine.configure(&shape).unwrap();
        let ordinary = engine.prompt_vocab().ordinary;
        let tokens = |len: u32, salt: usize| -> Vec<Vec<TokenId>> {
            (0..shape.sequences as usize)
                .map(|seq| {
                    (0..len as usize)
                        .map(|i| ordinary[(seq * 131 + i * 7 + salt) % ordinary.len()])
                        .collect()
                })
                .collect()
        };
        let max_positions = |engine: &LlamaEngine<'_>| -> Vec<i32> {
            let c = engine.configured.as_ref().unwrap();
            (0..shape.sequences as i32)
                .map(|seq| c.ctx.kv_cache_seq_pos_max(seq))
                .collect()
        };
        for run in 0..2 {
            engine.reset().unwrap();
            assert_eq!(
                max_positions(&engine),
                vec![-1; 4],
                "run {run}: nothing kept"
            );
            engine.prefill(&tokens(shape.depth, run)).unwrap();
            assert_eq!(max_positions(&engine), vec![299; 4]);
            engine
                .prefill(&tokens(shape.prompt_tokens, 1000 + run))
                .unwrap();
            assert_eq!(max_positions(&engine), vec![300 + 8 - 1; 4]);
            engine.sample().unwrap();
            for i in 1..shape.gen_tokens as i32 {
                engine.decode_step().unwrap();
                // Step i evaluated the token at context depth + prompt + i - 1.
                assert_eq!(max_positions(&engine), vec![300 + 8 + i - 1; 4]);
                engine.sample().unwrap();
            }
        }
    }

    #[test]
    fn buffers_are_read_from_llama_cpps_lines_and_summed() {
        let lines: Vec<String> = [
            "llama_context:        CPU  output buffer size =     1.00 MiB",
            "llama_kv_cache:        CPU KV buffer size =     0.75 MiB",
            "llama_kv_cache:        CPU KV buffer size =     3.75 MiB",
            "load_tensors:   CPU_Mapped model buffer size =   235.16 MiB",
            "sched_reserve:        CPU compute buffer size =    64.85 MiB",
            "sched_reserve:      CUDA0 compute buffer size =     2.00 MiB",
            "llama_context: n_ctx = 256",
        ]
        .map(String::from)
        .to_vec();
        let mib = |m: f64| (m * 1024.0 * 1024.0).round() as u64;
        assert_eq!(
            buffers_from_log(&lines),
            Some(LlamaBuffers {
                kv_bytes: Some(mib(0.75) + mib(3.75)),
                compute_bytes: Some(mib(64.85) + mib(2.0)),
                output_bytes: Some(mib(1.0)),
            })
        );
        assert_eq!(buffers_from_log(&lines[6..]), None);
    }

    /// A split prefill: calls of at most n_batch tokens, each sequence's
    /// positions consecutive from where it stood, every last token in the
    /// final call.
    #[test]
    fn a_prefill_is_split_into_calls_of_n_batch_with_every_last_token_in_the_last() {
        let prompts: Vec<Vec<TokenId>> = (0..4)
            .map(|s| (0..8).map(|i| s * 100 + i).collect())
            .collect();
        let positions = [300, 300, 0, 7];
        let whole = prefill_chunks(&prompts, &positions, 32);
        assert_eq!(whole.len(), 1, "32 tokens fit in one call");
        assert_eq!(
            whole[0][7],
            PrefillToken {
                id: 7,
                pos: 307,
                seq: 0,
                last: true
            }
        );
        assert_eq!(
            whole[0][8],
            PrefillToken {
                id: 100,
                pos: 300,
                seq: 1,
                last: false
            }
        );

        let chunks = prefill_chunks(&prompts, &positions, 10);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        // 28 tokens but the last ones: 10, 10, 8; then the 4 last ones,
        // which do not fit beside the 8.
        assert_eq!(sizes, [10, 10, 8, 4]);
        assert!(chunks[3].iter().all(|t| t.last));
        assert!(chunks[..3].iter().flatten().all(|t| !t.last));
        for seq in 0..4 {
            let pos: Vec<i32> = chunks
                .iter()
                .flatten()
                .filter(|t| t.seq == seq)
                .map(|t| t.pos)
                .collect();
            let start = positions[seq as usize];
            assert_eq!(
                pos,
                (start..start + 8).collect::<Vec<_>>(),
                "sequence {seq}"
            );
        }
        assert_eq!(
            prefill_chunks(&prompts, &positions, 12)
                .last()
                .unwrap()
                .len(),
            4 + 4
        );

        // One sequence: llama-bench's split of its prompt.
        let one = vec![(0..512).collect::<Vec<TokenId>>()];
        let split = |n| {
            prefill_chunks(&one, &[0], n)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(split(256), [256, 256]);
        assert_eq!(split(2048), [512]);
        let one = vec![(0..513).collect::<Vec<TokenId>>()];
        assert_eq!(
            prefill_chunks(&one, &[0], 256)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [256, 256, 1]
        );
    }

    /// Split or whole, the prefill leaves the same next tokens to sample.
    #[test]
    fn a_split_prefill_samples_what_a_whole_one_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_model(&path, &TinySpec::default()).unwrap();
        let runtime = Runtime::get(true).unwrap();
        let model = LoadedModel::load(runtime, &path, 0).unwrap();
        let first_tokens = |n_batch| {
            let options = LlamaOptions {
                kernel_timing: false,
                n_batch,
                ..LlamaOptions::new(2, 512, GreedySampler::Argmax)
            };
            let mut engine = LlamaEngine::new(runtime, &model, options);
            engine.configure(&SHAPE).unwrap();
            let ordinary = engine.prompt_vocab().ordinary;
            let prompts: Vec<Vec<TokenId>> = (0..SHAPE.sequences as usize)
                .map(|seq| {
                    (0..SHAPE.prompt_tokens as usize)
                        .map(|i| ordinary[(seq * 31 + i * 7) % ordinary.len()])
                        .collect()
                })
                .collect();
            engine.prefill(&prompts).unwrap();
            engine.sample().unwrap();
            engine.configured.as_ref().unwrap().next_tokens.clone()
        };
        assert_eq!(first_tokens(Some(5)), first_tokens(None));
        assert!(matches!(
            LlamaEngine::new(
                runtime,
                &model,
                LlamaOptions {
                    n_batch: Some(3),
                    ..LlamaOptions::new(2, 512, GreedySampler::Argmax)
                }
            )
            .configure(&SHAPE),
            Err(EngineError::BatchTooSmall {
                n_batch: 3,
                needed: 4
            })
        ));
    }

    /// The engine's own greedy pass must pick exactly what llama.cpp's greedy
    /// sampler picks from the same logits, for every sequence of a batch and
    /// every step (all layers offloaded where a GPU is present); and the
    /// engine set to llama.cpp's sampler must generate the same tokens.
    #[test]
    fn sampled_tokens_are_llama_cpps_greedy_choices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_model(&path, &TinySpec::default()).unwrap();
        let runtime = Runtime::get(true).unwrap();
        let model = LoadedModel::load(runtime, &path, -1).unwrap();
        let mut argmax = prefilled(runtime, &model, GreedySampler::Argmax);
        let mut llama = prefilled(runtime, &model, GreedySampler::Llama);
        let mut reference = LlamaSampler::greedy();
        let mut seen = std::collections::HashSet::new();
        for step in 1..SHAPE.gen_tokens {
            argmax.sample().unwrap();
            llama.sample().unwrap();
            let c = argmax.configured.as_ref().unwrap();
            for (seq, &index) in c.output_index.iter().enumerate() {
                let expected = reference.sample(&c.ctx, index);
                assert_eq!(c.next_tokens[seq], expected, "step {step}, sequence {seq}");
                seen.insert(expected);
            }
            let via_llama = &llama.configured.as_ref().unwrap().next_tokens;
            assert_eq!(&c.next_tokens, via_llama, "step {step}");
            argmax.decode_step().unwrap();
            llama.decode_step().unwrap();
        }
        // Random weights still give varied tokens: a sampler stuck on one id
        // would not be compared meaningfully.
        assert!(seen.len() > 3, "only {} distinct tokens", seen.len());
    }
}
