//! `http --url A --url B --rounds R`: the targets take turns, each round on
//! fresh prompts and the same prompts for every target; one file holds
//! every run and the summary (harness/src/rounds.rs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use inferbench_harness::rounds::{
    summarize, RoundEntry, RoundsResult, RoundsSettings, TargetRuns, ROUNDS_SCHEMA_VERSION,
};
use inferbench_harness::schema::validity::RunValidity;
use inferbench_harness::schema::{ResultWriter, RunStatus};

use inferbench_core::spec::{RoundsSpec, Spec};

use crate::cli::Outputs;
use crate::{http, interrupt, provenance, terminal};

const LEVEL: f64 = 0.95;

/// `FILE.json` → `FILE.<suffix>.json`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "rounds".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.{suffix}.json"))
}

/// Round `r`'s prompt content, the same for every target: a new stream per
/// round, so that no round is answered from a cache the last one filled.
fn round_seed(base: u64, round: u32) -> u64 {
    base ^ (u64::from(round) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn save(writer: &ResultWriter, result: &mut RoundsResult) -> Result<()> {
    result.updated_at = provenance::now_rfc3339();
    writer.write(result)?;
    Ok(())
}

pub fn run(spec: &RoundsSpec, outputs: &Outputs) -> Result<ExitCode> {
    let out = outputs
        .out
        .clone()
        .unwrap_or_else(|| terminal::default_result_path("rounds"));
    terminal::make_parent_dir("--out", &out)?;
    let tokens = match &spec.http.token_ids_from {
        Some(path) => Some(http::token_prompts(path)?),
        None => None,
    };
    let base_seed = spec.http.prompt_seed.unwrap_or_else(http::rand_seed);
    let writer = ResultWriter::new(&out);
    let mut result = RoundsResult {
        schema_version: ROUNDS_SCHEMA_VERSION,
        mode: "rounds".into(),
        status: RunStatus::Running,
        partial: true,
        error: None,
        started_at: provenance::now_rfc3339(),
        updated_at: String::new(),
        settings: RoundsSettings {
            targets: spec.targets.clone(),
            rounds: spec.rounds,
            prompt_seeds: (0..spec.rounds).map(|r| round_seed(base_seed, r)).collect(),
            level: LEVEL,
            spec: Some(Spec::Rounds(spec.clone())),
        },
        order: Vec::new(),
        targets: spec
            .targets
            .iter()
            .map(|url| TargetRuns {
                url: url.clone(),
                rounds: Vec::new(),
            })
            .collect(),
        summary: Vec::new(),
        notes: Vec::new(),
    };
    save(&writer, &mut result)?;
    let flag = interrupt::flag();
    let mut worst_exit = ExitCode::SUCCESS;
    'rounds: for round in 0..spec.rounds {
        for (target, url) in spec.targets.iter().enumerate() {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                break 'rounds;
            }
            let file = beside(&out, &format!("r{round}.t{target}"));
            let one = spec.run(target, result.settings.prompt_seeds[round as usize]);
            let one_outputs = Outputs {
                out: Some(file.clone()),
                requests_log: outputs
                    .requests_log
                    .as_ref()
                    .map(|p| beside(p, &format!("r{round}.t{target}"))),
                ..outputs.clone()
            };
            eprintln!(
                "round {} of {}, target {}: {url}",
                round + 1,
                spec.rounds,
                target + 1
            );
            result.order.push(RoundEntry {
                round,
                target,
                started_at: provenance::now_rfc3339(),
                file: file.display().to_string(),
            });
            let sweep = match http::sweep(&one, &one_outputs, tokens.clone()) {
                Ok(s) => s,
                Err(e) => {
                    result.status = RunStatus::Failed;
                    result.error = Some(format!("round {round}, {url}: {e:#}"));
                    result.summary = summarize(&result.targets, LEVEL);
                    if let Err(save_error) = save(&writer, &mut result) {
                        eprintln!("warning: {save_error:#}");
                    }
                    terminal::print_result_path(&out, true);
                    return Err(e.context(format!("round {round}, {url}")));
                }
            };
            if sweep.exit != ExitCode::SUCCESS {
                worst_exit = sweep.exit;
            }
            result.targets[target].rounds.push(sweep.result);
            result.summary = summarize(&result.targets, LEVEL);
            save(&writer, &mut result)?;
        }
    }
    result.notes = like_for_like_notes(&result);
    let interrupted = flag.load(std::sync::atomic::Ordering::Relaxed);
    let complete_rounds = result
        .targets
        .iter()
        .map(|t| t.rounds.len())
        .min()
        .unwrap_or(0);
    result.partial = interrupted
        || complete_rounds < spec.rounds as usize
        || result
            .targets
            .iter()
            .flat_map(|t| &t.rounds)
            .any(|r| r.partial);
    result.status = if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Complete
    };
    save(&writer, &mut result)?;
    for t in crate::tables::rounds_summary(&result) {
        println!("\n{}", t.title);
        print!("{}", t.markdown());
    }
    terminal::print_result_path(&out, result.partial);
    Ok(if interrupted {
        ExitCode::from(crate::exit::INTERRUPTED)
    } else {
        worst_exit
    })
}

/// What makes the targets less than like for like, and every run's own
/// warnings (cached prompt tokens, prompts counted otherwise than sent).
fn like_for_like_notes(result: &RoundsResult) -> Vec<String> {
    let mut notes = Vec::new();
    let firsts: Vec<(&str, &inferbench_harness::schema::HttpResult)> = result
        .targets
        .iter()
        .filter_map(|t| Some((t.url.as_str(), t.rounds.first()?)))
        .collect();
    let Some((base_url, base)) = firsts.first().copied() else {
        return notes;
    };
    let server = |r: &inferbench_harness::schema::HttpResult| {
        r.provenance.server.as_ref().map(|s| {
            (
                s.model.clone(),
                s.system_fingerprint
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            )
        })
    };
    for (url, other) in &firsts[1..] {
        if let (Some((ma, fa)), Some((mb, fb))) = (server(base), server(other)) {
            if ma != mb {
                notes.push(format!(
                    "the targets serve differently named models ({base_url}: {ma}, {url}: {mb}): different weights, quantization or tokenizer may differ as well"
                ));
            }
            if fa != fb {
                notes.push(format!(
                    "the targets are different server builds ({base_url}: {fa}, {url}: {fb})"
                ));
            }
        }
        for p in &base.points {
            let Some(q) = other.points.iter().find(|q| q.load == p.load) else {
                continue;
            };
            let p50 = |s: &Option<inferbench_harness::stats::Stats>| s.as_ref().map(|s| s.p50);
            for (what, a, b) in [
                ("prompt", p50(&p.input_tokens), p50(&q.input_tokens)),
                ("output", p50(&p.output_tokens), p50(&q.output_tokens)),
            ] {
                if let (Some(a), Some(b)) = (a, b) {
                    if a != b {
                        notes.push(format!(
                            "{}: the servers counted {what} tokens differently (p50 {a} at {base_url}, {b} at {url}): not the same work per request",
                            p.load.label()
                        ));
                    }
                }
            }
        }
    }
    // Every run's verdict once any is not valid: a difference between
    // targets is a finding only where both sides are valid.
    let verdicts: Vec<(usize, usize, &str, RunValidity)> = result
        .targets
        .iter()
        .enumerate()
        .flat_map(|(t, target)| {
            target
                .rounds
                .iter()
                .enumerate()
                .map(move |(r, run)| (r, t, target.url.as_str(), run.judged()))
        })
        .collect();
    if verdicts.iter().any(|(.., v)| !v.reasons.is_empty()) {
        notes.extend(verdicts.iter().map(|(r, t, url, v)| {
            format!("round {r}, target {t} ({url}): run verdict: {}", v.line())
        }));
    }
    for (t, target) in result.targets.iter().enumerate() {
        for (r, run) in target.rounds.iter().enumerate() {
            notes.extend(
                run.notes
                    .iter()
                    .map(|n| format!("round {r}, target {t} ({}): {n}", target.url)),
            );
        }
    }
    notes
}
