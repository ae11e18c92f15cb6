//! `inferbench plan`: replicas for a target rate, from one replica's sweep.

use std::process::ExitCode;

use anyhow::{Context, Result};
use inferbench_harness::plan::{plan, Expected};
use inferbench_harness::schema::{AnyResult, ResultWriter};

use crate::cli::{usage, PlanArgs};

fn expected(name: &str, e: Option<Expected>) -> Option<String> {
    e.map(|e| format!("{name} p50 {:.1} ms, p99 {:.1} ms", e.p50, e.p99))
}

pub fn run(args: PlanArgs) -> Result<ExitCode> {
    let AnyResult::Http(result) = AnyResult::read(&args.file)? else {
        anyhow::bail!(
            "{}: an in-process result; plan reads a served sweep (an http result)",
            args.file.display()
        );
    };
    let slo = match (args.slo, result.settings.slo) {
        (Some(s), _) => s.to_slo(),
        (None, Some(s)) if !s.is_empty() => s,
        _ => {
            return Err(usage(format!(
                "{} was measured without --slo: give the objectives with --slo",
                args.file.display()
            )))
        }
    };
    let p = plan(&result.points, slo, args.target_rate, args.headroom);
    println!(
        "plan for {} req/s with {:.0}% headroom, from {} ({} points)",
        args.target_rate,
        100.0 * args.headroom,
        args.file.display(),
        result.points.len()
    );
    match (
        p.capacity_req_s,
        &p.capacity_point,
        p.replicas,
        p.per_replica_req_s,
    ) {
        (Some(c), Some(point), Some(n), Some(q)) => {
            let how = match p.capacity_decided_by.as_deref() {
                Some("early_stopping") => "at 99% confidence",
                _ => "by its point estimate",
            };
            println!("capacity of one replica: {c:.3} req/s (measured at {point}, p99 within every objective {how})");
            println!(
                "replicas: {n}, each at {q:.3} req/s ({:.0}% of its capacity)",
                100.0 * q / c
            );
            let lines: Vec<String> = [
                expected("TTFT", p.expected_ttft_ms),
                expected("TPOT", p.expected_tpot_ms),
                expected("E2E", p.expected_e2e_ms),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !lines.is_empty() {
                println!("expected per replica: {}", lines.join("; "));
            }
        }
        _ => println!("no replica count: no measured load met every objective"),
    }
    for a in &p.advice {
        println!("note: {a}");
    }
    if let Some(out) = &args.out {
        ResultWriter::new(out)
            .write(&p)
            .with_context(|| format!("--out {}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
