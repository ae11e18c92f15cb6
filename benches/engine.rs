//! `cargo bench`: llama.cpp's prefill and one decode step, timed by the
//! engine itself (host clock around llama_decode + synchronize) and handed to
//! criterion through `iter_custom`, so criterion's statistics see engine time
//! only, never prompt building or sampling; and, apart, sampling the next
//! token of every sequence with each greedy sampler (the vocabulary's size
//! decides its cost: bench a real model for numbers that mean something).
//!
//! Model: `$INFERBENCH_BENCH_MODEL`, default the tiny generated model.
//! Threads: `$INFERBENCH_BENCH_THREADS`, default physical cores.
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

fn options(sampler: GreedySampler) -> LlamaOptions {
    let threads = std::env::var("INFERBENCH_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .or_else(inferbench_harness::host::physical_cores)
        .unwrap_or(1);
    LlamaOptions {
        threads,
        threads_batch: threads,
        ubatch: 512,
        kv_unified: false,
        sampler,
        kernel_timing: true,
    }
}

/// Configures `engine` for the shape and returns its prompts.
fn configure(
    engine: &mut LlamaEngine<'_>,
    vocab: &PromptVocab,
    sequences: u32,
    prompt_tokens: u32,
    gen_tokens: u32,
) -> Vec<Vec<TokenId>> {
    let shape = BatchShape {
        sequences,
        prompt_tokens,
        gen_tokens,
    };
    engine.configure(&shape).expect("configure");
    batch_prompts(
        vocab,
        sequences,
        prompt_tokens,
        &PromptStream::new(0, 0, Phase::Measured),
        0,
    )
    .expect("a vocabulary with ordinary tokens")
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
        let prompts = configure(&mut engine, &vocab, 1, prompt_tokens, 1);
        group.throughput(Throughput::Elements(u64::from(prompt_tokens)));
        group.bench_function(BenchmarkId::from_parameter(prompt_tokens), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    engine.reset().expect("reset");
                    total += engine.prefill(&prompts).expect("prefill").host;
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
        let prompts = configure(&mut engine, &vocab, sequences, 128, 65);
        group.throughput(Throughput::Elements(u64::from(sequences)));
        group.bench_function(BenchmarkId::from_parameter(sequences), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut steps_left = 0;
                for _ in 0..iters {
                    if steps_left == 0 {
                        engine.reset().expect("reset");
                        engine.prefill(&prompts).expect("prefill");
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
            let prompts = configure(&mut engine, &vocab, sequences, 16, 2);
            engine.prefill(&prompts).expect("prefill");
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
