//! `cargo bench`: llama.cpp's prefill and one decode step, timed by the
//! engine itself (host clock around llama_decode + synchronize) and handed to
//! criterion through `iter_custom`, so criterion's statistics see engine time
//! only, never prompt building or sampling; and, apart, sampling the next
//! token of every sequence with each greedy sampler (the vocabulary's size
//! decides its cost: bench a real model for numbers that mean something).
//!
//! Model: `$INFERBENCH_BENCH_MODEL`, default the tiny generated model.
//! Threads: `$INFERBENCH_BENCH_THREADS`, default physical cores.
//! Flash attention: `$INFERBENCH_BENCH_FLASH_ATTN` (off, on, auto; default
//! auto). KV cache types: `$INFERBENCH_BENCH_CACHE_TYPE_K` and
//! `$INFERBENCH_BENCH_CACHE_TYPE_V` (f16, q8_0, q4_0, ...; default f16).
//! Context depth: `$INFERBENCH_BENCH_DEPTH` (llama-bench's `-d`), default 0:
//! every sequence's cache is filled with that many tokens, untimed, before
//! the timed prefill, and before the prompts the decode steps follow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
// criterion_group! defines a public `benches` that no attribute can reach.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inferbench_ffi::{GreedySampler, LlamaEngine, LlamaOptions, LoadedModel, Runtime};
use inferbench_harness::engine::{BatchShape, Engine, PromptVocab, TokenId};
use inferbench_harness::workload::{batch_prompts, Phase, PromptStream};

fn model_path() -> PathBuf {
    if let Some(path) = std::env::var_os("INFERBENCH_BENCH_MODEL") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inferbench-tiny-v1.gguf");
    inferbench_models::write_tiny_model(&path, &inferbench_models::TinySpec::default())
        .expect("writing the tiny model");
    path
}

/// An engine setting from the environment, named in the panic when it is wrong.
fn env_setting<T: std::str::FromStr<Err = String>>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value}: {e}")),
    )
}

fn options(sampler: GreedySampler) -> LlamaOptions {
    let threads = std::env::var("INFERBENCH_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .or_else(inferbench_harness::host::physical_cores)
        .unwrap_or(1);
    let mut options = LlamaOptions::new(threads, 512, sampler);
    if let Some(v) = env_setting("INFERBENCH_BENCH_FLASH_ATTN") {
        options.flash_attn = v;
    }
    if let Some(v) = env_setting("INFERBENCH_BENCH_CACHE_TYPE_K") {
        options.cache_type_k = v;
    }
    if let Some(v) = env_setting("INFERBENCH_BENCH_CACHE_TYPE_V") {
        options.cache_type_v = v;
    }
    options
}

fn depth() -> u32 {
    std::env::var("INFERBENCH_BENCH_DEPTH")
        .ok()
        .map(|d| {
            d.parse()
                .unwrap_or_else(|_| panic!("INFERBENCH_BENCH_DEPTH={d}: not a token count"))
        })
        .unwrap_or(0)
}

/// A shape's tokens: the depth's (empty at depth 0) and the prompts.
struct Tokens {
    depth: Option<Vec<Vec<TokenId>>>,
    prompts: Vec<Vec<TokenId>>,
}

/// Configures `engine` for the shape and returns its tokens.
fn configure(
    engine: &mut LlamaEngine<'_>,
    vocab: &PromptVocab,
    sequences: u32,
    prompt_tokens: u32,
    gen_tokens: u32,
) -> Tokens {
    let shape = BatchShape {
        sequences,
        prompt_tokens,
        gen_tokens,
        depth: depth(),
    };
    engine.configure(&shape).expect("configure");
    let draw = |tokens: u32, seed: u64| {
        batch_prompts(
            vocab,
            sequences,
            tokens,
            &PromptStream::new(seed, 0, Phase::Measured),
            0,
        )
        .expect("a vocabulary with ordinary tokens")
    };
    Tokens {
        depth: (shape.depth > 0).then(|| draw(shape.depth, 1)),
        prompts: draw(prompt_tokens, 0),
    }
}

/// Clears the cache and refills the depth, untimed.
fn reset(engine: &mut LlamaEngine<'_>, tokens: &Tokens) {
    engine.reset().expect("reset");
    if let Some(depth) = &tokens.depth {
        engine.prefill(depth).expect("filling the depth");
    }
}

fn engine_benches(c: &mut Criterion) {
    let path = model_path();
    let runtime = Runtime::get(true).expect("llama.cpp runtime");
    let model = LoadedModel::load(runtime, &path, 0)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    let mut engine = LlamaEngine::new(runtime, &model, options(GreedySampler::Argmax));
    let vocab = engine.prompt_vocab();

    let mut group = c.benchmark_group("prefill");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for prompt_tokens in [128u32, 512] {
        let tokens = configure(&mut engine, &vocab, 1, prompt_tokens, 1);
        group.throughput(Throughput::Elements(u64::from(prompt_tokens)));
        group.bench_function(BenchmarkId::from_parameter(prompt_tokens), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    reset(&mut engine, &tokens);
                    total += engine.prefill(&tokens.prompts).expect("prefill").host;
                }
                total
            })
        });
    }
    group.finish();

    // One decode step of B sequences, each with a 128-token prompt behind it.
    // The KV cache is refilled (untimed) every 64 steps so every step sees a
    // context between 128 and 192 tokens.
    let mut group = c.benchmark_group("decode_step");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500));
    for sequences in [1u32, 8] {
        let tokens = configure(&mut engine, &vocab, sequences, 128, 65);
        group.throughput(Throughput::Elements(u64::from(sequences)));
        group.bench_function(BenchmarkId::from_parameter(sequences), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut steps_left = 0;
                for _ in 0..iters {
                    if steps_left == 0 {
                        reset(&mut engine, &tokens);
                        engine.prefill(&tokens.prompts).expect("prefill");
                        engine.sample().expect("sample");
                        steps_left = 64;
                    }
                    total += engine.decode_step().expect("decode").host;
                    engine.sample().expect("sample");
                    steps_left -= 1;
                }
                total
            })
        });
    }
    group.finish();

    // Choosing the next token of B sequences from the same logits, again and
    // again: what each sampler costs per step.
    let mut group = c.benchmark_group("sample");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500));
    for sampler in [GreedySampler::Argmax, GreedySampler::Llama] {
        let mut engine = LlamaEngine::new(runtime, &model, options(sampler));
        for sequences in [1u32, 8] {
            let tokens = configure(&mut engine, &vocab, sequences, 16, 2);
            reset(&mut engine, &tokens);
            engine.prefill(&tokens.prompts).expect("prefill");
            group.throughput(Throughput::Elements(u64::from(sequences)));
            let id = BenchmarkId::new(sampler.name(), sequences);
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| engine.sample().expect("sample").host)
                        .sum()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, engine_benches);
criterion_main!(benches);
