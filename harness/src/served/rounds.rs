//! Alternating rounds (`http --url A --url B --rounds R`): the targets take
//! turns, each round on fresh prompts and on the same prompts for every
//! target; one result holds every run and the summary
//! ([`crate::rounds::summarize`]).

use std::sync::atomic::{AtomicBool, Ordering};

use inferbench_core::schema::validity::RunValidity;
use inferbench_core::schema::{HttpResult, RunStatus};
use inferbench_core::spec::{HttpSpec, RoundsSpec, Spec};

use super::{now_rfc3339, SaveError};
use crate::rounds::{
    summarize, RoundEntry, RoundsResult, RoundsSettings, TargetRuns, ROUNDS_SCHEMA_VERSION,
};
use inferbench_core::error_chain;

/// The confidence of the summary's intervals.
pub const LEVEL: f64 = 0.95;

/// What runs each target's sweep and keeps the files: the binary (each
/// sweep written beside the rounds file), a test.
pub trait RoundsDriver {
    /// Why one sweep could not run.
    type Error: std::fmt::Display;
    /// Round `round` of target `target` starts, against `url`.
    fn round_started(&mut self, _round: u32, _target: usize, _url: &str) {}
    /// A warning for whoever watches.
    fn warning(&mut self, _message: &str) {}
    /// Where round `round` of target `target` is written, as the rounds
    /// file records it.
    fn file_of(&self, round: u32, target: usize) -> String;
    /// Runs one sweep from `spec` (the target's URL and the round's prompt
    /// seed set): its result.
    fn sweep(
        &mut self,
        round: u32,
        target: usize,
        spec: &HttpSpec,
    ) -> Result<HttpResult, Self::Error>;
    /// Saves the rounds result as it stands.
    fn save(&mut self, result: &mut RoundsResult) -> Result<(), SaveError>;
}

/// Why rounds stopped before their end.
#[derive(Debug, thiserror::Error)]
pub enum RoundsError<E: std::fmt::Display + std::fmt::Debug> {
    /// A sweep failed; the rounds file is saved `failed` with it.
    #[error("round {round}, {url}")]
    Sweep {
        /// The round.
        round: u32,
        /// The target's URL.
        url: String,
        /// Why its sweep failed.
        error: E,
    },
    /// The rounds result could not be saved.
    #[error("saving the rounds result")]
    Save(#[source] SaveError),
}

/// Round `r`'s prompt content, the same for every target: a new stream per
/// round, so that no round is answered from a cache the last one filled.
pub fn round_seed(base: u64, round: u32) -> u64 {
    base ^ (u64::from(round) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The rounds result as the rounds start: running, no run yet.
fn new_result(spec: &RoundsSpec, base_seed: u64) -> RoundsResult {
    RoundsResult {
        schema_version: ROUNDS_SCHEMA_VERSION,
        mode: "rounds".into(),
        status: RunStatus::Running,
        partial: true,
        error: None,
        started_at: now_rfc3339(),
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
    }
}

/// Runs every round of `spec`, each target in turn, saving after each
/// sweep; `base_seed` draws the rounds' prompt seeds. Ends `complete`, or
/// `interrupted` when `interrupt` is set (partial when a round is missing
/// or a run is partial). A sweep that fails leaves the file `failed` with
/// its error.
pub fn run_rounds<D: RoundsDriver>(
    spec: &RoundsSpec,
    base_seed: u64,
    interrupt: &AtomicBool,
    driver: &mut D,
) -> Result<RoundsResult, RoundsError<D::Error>>
where
    D::Error: std::fmt::Debug,
{
    let mut result = new_result(spec, base_seed);
    driver.save(&mut result).map_err(RoundsError::Save)?;
    'rounds: for round in 0..spec.rounds {
        for (target, url) in spec.targets.iter().enumerate() {
            if interrupt.load(Ordering::Relaxed) {
                break 'rounds;
            }
            let one = spec.run(target, result.settings.prompt_seeds[round as usize]);
            driver.round_started(round, target, url);
            result.order.push(RoundEntry {
                round,
                target,
                started_at: now_rfc3339(),
                file: driver.file_of(round, target),
            });
            let sweep = match driver.sweep(round, target, &one) {
                Ok(sweep) => sweep,
                Err(error) => {
                    result.status = RunStatus::Failed;
                    result.error = Some(format!("round {round}, {url}: {error:#}"));
                    result.summary = summarize(&result.targets, LEVEL);
                    // The sweep's failure is the one to report.
                    if let Err(e) = driver.save(&mut result) {
                        driver.warning(&error_chain(&*e));
                    }
                    return Err(RoundsError::Sweep {
                        round,
                        url: url.clone(),
                        error,
                    });
                }
            };
            result.targets[target].rounds.push(sweep);
            result.summary = summarize(&result.targets, LEVEL);
            driver.save(&mut result).map_err(RoundsError::Save)?;
        }
    }
    result.notes = like_for_like_notes(&result);
    let interrupted = interrupt.load(Ordering::Relaxed);
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
    driver.save(&mut result).map_err(RoundsError::Save)?;
    Ok(result)
}

/// What makes the targets less than like for like, and every run's own
/// warnings (cached prompt tokens, prompts counted otherwise than sent).
fn like_for_like_notes(result: &RoundsResult) -> Vec<String> {
    let mut notes = Vec::new();
    let firsts: Vec<(&str, &HttpResult)> = result
        .targets
        .iter()
        .filter_map(|t| Some((t.url.as_str(), t.rounds.first()?)))
        .collect();
    let Some((base_url, base)) = firsts.first().copied() else {
        return notes;
    };
    for (url, other) in &firsts[1..] {
        notes.extend(server_differences((base_url, base), (url, other)));
        notes.extend(token_count_differences((base_url, base), (url, other)));
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

/// Differently named models, or different server builds.
fn server_differences(
    (base_url, base): (&str, &HttpResult),
    (url, other): (&str, &HttpResult),
) -> Vec<String> {
    let server = |r: &HttpResult| {
        r.provenance.server.as_ref().map(|s| {
            (
                s.model.clone(),
                s.system_fingerprint
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            )
        })
    };
    let mut notes = Vec::new();
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
    notes
}

/// Loads at which the servers counted prompt or output tokens differently.
fn token_count_differences(
    (base_url, base): (&str, &HttpResult),
    (url, other): (&str, &HttpResult),
) -> Vec<String> {
    let mut notes = Vec::new();
    for p in &base.points {
        let Some(q) = other.points.iter().find(|q| q.load == p.load) else {
            continue;
        };
        let p50 = |s: &Option<crate::stats::Stats>| s.as_ref().map(|s| s.p50);
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
    notes
}
