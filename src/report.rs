//! What a person reads: a llama-bench-like table on stdout, one row per
//! point as it finishes, and the same rows as CSV.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use inferbench_harness::result::{InprocPoint, Provenance};
use inferbench_harness::stats::Stats;

pub fn print_header(provenance: &Provenance) {
    let e = &provenance.engine;
    if let Some(m) = &provenance.model {
        println!(
            "model: {} ({}, {}, {:.1}M params, {:.1} MiB)",
            m.name.as_deref().unwrap_or(&m.path),
            m.architecture,
            m.quantization,
            m.parameters as f64 / 1e6,
            m.file_size_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "engine: {} {} via {} | backend {} | threads {}/{} | host {} ({} cores)",
        e.name,
        e.version,
        e.bindings,
        e.backend,
        e.threads.unwrap_or(0),
        e.threads_batch.unwrap_or(0),
        provenance.host.cpu_model,
        provenance.host.logical_cores,
    );
    println!();
    println!(
        "| {:>6} | {:>5} | {:>4} | {:>13} | {:>12} | {:>11} | {:>11} | {:>10} | {:>10} | {:>10} | {:>10} |",
        "pp", "tg", "B", "prefill tok/s", "decode tok/s", "total tok/s", "TTFT p50 ms", "ITL p50 ms",
        "ITL p99 ms", "E2E p50 ms", "step/llama"
    );
    println!(
        "| {:->6} | {:->5} | {:->4} | {:->13} | {:->12} | {:->11} | {:->11} | {:->10} | {:->10} | {:->10} | {:->10} |",
        ":", ":", ":", ":", ":", ":", ":", ":", ":", ":", ":"
    );
}

fn cell(stats: &Option<Stats>, pick: fn(&Stats) -> f64, decimals: usize) -> String {
    stats
        .as_ref()
        .map_or_else(|| "-".into(), |s| format!("{:.*}", decimals, pick(s)))
}

pub fn print_row(p: &InprocPoint) {
    let ratio = p
        .engine_counters
        .and_then(|c| c.harness_over_engine_decode_step)
        .map_or_else(|| "-".into(), |r| format!("{r:.4}"));
    let mean = |s: &Stats| s.mean;
    let p50 = |s: &Stats| s.p50;
    let p99 = |s: &Stats| s.p99;
    println!(
        "| {:>6} | {:>5} | {:>4} | {:>13} | {:>12} | {:>11} | {:>11} | {:>10} | {:>10} | {:>10} | {:>10} |{}",
        p.prompt_tokens,
        p.gen_tokens,
        p.batch,
        cell(&p.prefill_tok_s, mean, 1),
        cell(&p.decode_tok_s, mean, 1),
        cell(&p.throughput_tok_s, mean, 1),
        cell(&p.ttft_ms, p50, 3),
        cell(&p.itl_ms, p50, 3),
        cell(&p.itl_ms, p99, 3),
        cell(&p.e2e_ms, p50, 2),
        ratio,
        if p.complete { "" } else { " (incomplete)" },
    );
}

/// A named metric of a point, for the CSV columns.
type MetricColumn = (&'static str, fn(&InprocPoint) -> Option<Stats>);

/// Writes one row per point: the point's shape, then mean, p50 and p99 of
/// every metric.
pub fn write_csv(path: &Path, points: &[InprocPoint]) -> Result<()> {
    let metrics: [MetricColumn; 10] = [
        ("ttft_ms", |p| p.ttft_ms),
        ("itl_ms", |p| p.itl_ms),
        ("tpot_ms", |p| p.tpot_ms),
        ("e2e_ms", |p| p.e2e_ms),
        ("prefill_ms", |p| p.prefill_ms),
        ("decode_step_ms", |p| p.decode_step_ms),
        ("sample_ms", |p| p.sample_ms),
        ("prefill_tok_s", |p| p.prefill_tok_s),
        ("decode_tok_s", |p| p.decode_tok_s),
        ("throughput_tok_s", |p| p.throughput_tok_s),
    ];
    let mut out = String::from("prompt_tokens,gen_tokens,batch,complete,runs");
    for (name, _) in &metrics {
        out.push_str(&format!(",{name}_mean,{name}_p50,{name}_p99"));
    }
    out.push_str(",harness_over_engine_decode_step\n");
    for p in points {
        out.push_str(&format!(
            "{},{},{},{},{}",
            p.prompt_tokens, p.gen_tokens, p.batch, p.complete, p.runs
        ));
        for (_, get) in &metrics {
            match get(p) {
                Some(s) => out.push_str(&format!(",{},{},{}", s.mean, s.p50, s.p99)),
                None => out.push_str(",,,"),
            }
        }
        let ratio = p
            .engine_counters
            .and_then(|c| c.harness_over_engine_decode_step);
        out.push_str(&format!(
            ",{}\n",
            ratio.map_or(String::new(), |r| r.to_string())
        ));
    }
    let mut file =
        std::fs::File::create(path).with_context(|| format!("writing CSV {}", path.display()))?;
    file.write_all(out.as_bytes())
        .with_context(|| format!("writing CSV {}", path.display()))
}
