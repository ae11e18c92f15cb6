//! Exact merge of result files of the same settings: several client
//! instances loading one server at once, or one benchmark repeated. Counts
//! are added and histograms merged, so percentiles of the merge are those of
//! the union of the requests (to the histogram's precision), never an
//! average of percentiles; throughputs are over the union of the points'
//! windows (overlapping windows count once, disjoint ones add up).

use std::collections::BTreeMap;

use crate::schema::shard::MergedShards;
use crate::schema::{
    ClientCost, HttpPoint, HttpResult, InprocPoint, InprocResult, PromptCacheUse, PromptTokenCheck,
    RequestCounts, ResultFile, RunStatus, TokenDiscrepancy,
};
use crate::stats::{Distribution, Stats};

/// Why files cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    /// Fewer than two files were given.
    #[error("nothing to merge: give at least two files")]
    TooFew,
    /// A setting, the model file or a point differs between two files.
    #[error("{field} differs: {first} has {a}, {other} has {b}")]
    Differs {
        /// What differs: `settings.KEY`, `provenance.model.sha256`, or a
        /// point by its load or shape.
        field: String,
        /// The first file's path.
        first: String,
        /// The path of the file that differs from it.
        other: String,
        /// The first file's value, as text ("measured" for a point).
        a: String,
        /// The other file's value, as text ("absent" for a point it lacks).
        b: String,
    },
    /// Sharded files without every shard.
    #[error(
        "shard {shard} is missing: a merge of shards needs each of 0..{last} once (given: {given})"
    )]
    ShardMissing {
        /// The missing shard, `I/N`.
        shard: String,
        /// The last index, N − 1.
        last: u32,
        /// The shards given, by file.
        given: String,
    },
    /// The same shard given twice.
    #[error("shard {shard} is given twice: {first} and {other}")]
    ShardTwice {
        /// The shard, `I/N`.
        shard: String,
        /// The file that gave it first.
        first: String,
        /// The file that gave it again.
        other: String,
    },
    /// A file that is not a shard of the same run as the first.
    #[error("{other} is not a shard of the same run as {first}: {why}")]
    ShardForeign {
        /// The first sharded file.
        first: String,
        /// The file that does not belong.
        other: String,
        /// What differs.
        why: String,
    },
    /// A metric was written before histograms were kept, so it cannot be merged exactly.
    #[error("{file}: {what} has no histogram (written before histograms were kept): it cannot be merged exactly")]
    NoHistogram {
        /// The file's path.
        file: String,
        /// The point and metric, e.g. "P=128 B=4 ttft_ms".
        what: String,
    },
    /// A metric's histogram could not be decoded or merged with the others.
    #[error("{file}: {what}: {cause}")]
    Histogram {
        /// The file's path.
        file: String,
        /// The point and metric, e.g. "P=128 B=4 ttft_ms".
        what: String,
        /// Why decoding or merging the histogram failed.
        cause: String,
    },
}

/// Settings that may differ between the files of one merge: each run draws
/// fresh prompt content (`prompt_seed`), on purpose; `fixed_lengths` follows
/// from the workload, which is compared, and older files lack it; `spec`
/// says again what the other settings say (and older files lack it).
const HTTP_SETTINGS_FREE: [&str; 3] = ["prompt_seed", "fixed_lengths", "spec"];
/// In-process settings that may differ: see [`HTTP_SETTINGS_FREE`].
const INPROC_SETTINGS_FREE: [&str; 1] = ["spec"];

mod points;
mod shards;

pub(crate) use points::merge_http_points;
pub use shards::check_shards;

fn settings_value<S: serde::Serialize>(s: &S) -> BTreeMap<String, serde_json::Value> {
    match serde_json::to_value(s) {
        Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

fn same_settings<S: serde::Serialize>(
    files: &[(String, &S)],
    free: &[&str],
) -> Result<(), MergeError> {
    let (first_name, first) = &files[0];
    let first = settings_value(*first);
    for (name, other) in &files[1..] {
        let other = settings_value(*other);
        for (key, a) in &first {
            if free.contains(&key.as_str()) {
                continue;
            }
            let b = other.get(key).unwrap_or(&serde_json::Value::Null);
            if a != b {
                return Err(MergeError::Differs {
                    field: format!("settings.{key}"),
                    first: first_name.clone(),
                    other: name.clone(),
                    a: a.to_string(),
                    b: b.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn same_model<S, P>(files: &[(String, &ResultFile<S, P>)]) -> Result<(), MergeError> {
    let hash = |r: &ResultFile<S, P>| r.provenance.model.as_ref().and_then(|m| m.sha256.clone());
    let (first_name, first) = &files[0];
    for (name, other) in &files[1..] {
        if hash(first) != hash(other) {
            return Err(MergeError::Differs {
                field: "provenance.model.sha256".into(),
                first: first_name.clone(),
                other: name.clone(),
                a: format!("{:?}", hash(first)),
                b: format!("{:?}", hash(other)),
            });
        }
    }
    Ok(())
}

/// Merges one metric of matching points; all absent is absent.
fn merge_stats(parts: &[(&str, Option<&Stats>)], what: &str) -> Result<Option<Stats>, MergeError> {
    let mut merged: Option<Distribution> = None;
    for (file, stats) in parts {
        let Some(stats) = stats else { continue };
        let d = Distribution::from_stats(stats).map_err(|e| match stats.histogram {
            None => MergeError::NoHistogram {
                file: file.to_string(),
                what: what.into(),
            },
            Some(_) => MergeError::Histogram {
                file: file.to_string(),
                what: what.into(),
                cause: e.to_string(),
            },
        })?;
        match &mut merged {
            None => merged = Some(d),
            Some(m) => m.merge(&d).map_err(|e| MergeError::Histogram {
                file: file.to_string(),
                what: what.into(),
                cause: e.to_string(),
            })?,
        }
    }
    Ok(merged.and_then(|d| d.stats()))
}

/// Total length of the union of intervals (start, length).
pub fn union_length(windows: Vec<(f64, f64)>) -> f64 {
    crate::intervals::union_length(
        windows
            .into_iter()
            .map(|(start, length)| (start, start + length.max(0.0))),
    )
}

fn total(stats: &Option<Stats>) -> f64 {
    stats
        .as_ref()
        .map_or(0.0, |s| (s.mean * s.count as f64).round())
}

fn merged_header<S: Clone, P>(
    files: &[(String, &ResultFile<S, P>)],
    points: Vec<P>,
    mut notes: Vec<String>,
) -> ResultFile<S, P> {
    let first = files[0].1;
    let all_complete = files
        .iter()
        .all(|(_, r)| r.status == RunStatus::Complete && !r.partial);
    notes.insert(
        0,
        format!(
            "merged from {} files: {}",
            files.len(),
            files
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    notes.extend(
        files
            .iter()
            .flat_map(|(n, r)| r.notes.iter().map(move |note| format!("{n}: {note}"))),
    );
    ResultFile {
        schema_version: first.schema_version,
        mode: first.mode,
        partial: !all_complete,
        status: if all_complete {
            RunStatus::Complete
        } else {
            RunStatus::Interrupted
        },
        error: None,
        started_at: files
            .iter()
            .map(|(_, r)| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        updated_at: files
            .iter()
            .map(|(_, r)| r.updated_at.clone())
            .max()
            .unwrap_or_default(),
        provenance: first.provenance.clone(),
        settings: first.settings.clone(),
        histogram: first.histogram.clone(),
        points,
        max_rate: None,
        max_concurrency: None,
        notes,
        validity: None,
        shard: None,
        shards: None,
    }
}

/// A clock error above this share of a point's TTFT p50 is worth a note.
const CLOCK_ERROR_SHARE: f64 = 0.1;

/// Served files of the same settings, points matched by their load.
pub fn merge_http(files: &[(String, HttpResult)]) -> Result<HttpResult, MergeError> {
    if files.len() < 2 {
        return Err(MergeError::TooFew);
    }
    let shards = check_shards(files)?;
    let refs: Vec<(String, &HttpResult)> = files.iter().map(|(n, r)| (n.clone(), r)).collect();
    let settings: Vec<(String, &crate::schema::HttpSettings)> =
        refs.iter().map(|(n, r)| (n.clone(), &r.settings)).collect();
    same_settings(&settings, &HTTP_SETTINGS_FREE)?;
    same_model(&refs)?;
    let mut notes = Vec::new();
    let mut points = Vec::new();
    for p in &files[0].1.points {
        let mut parts = vec![(files[0].0.as_str(), p)];
        for (name, other) in &files[1..] {
            let q = other
                .points
                .iter()
                .find(|q| q.load == p.load)
                .ok_or_else(|| MergeError::Differs {
                    field: format!("points (load {})", p.load.label()),
                    first: files[0].0.clone(),
                    other: name.clone(),
                    a: "measured".into(),
                    b: "absent".into(),
                })?;
            parts.push((name.as_str(), q));
        }
        points.push(merge_http_points(&parts, &mut notes)?);
    }
    if files.iter().any(|(_, r)| r.max_rate.is_some()) {
        notes.push("the files' --find-max-rate answers are not carried over: probes of different files are merged as points".into());
    }
    let mut merged = merged_header(&refs, points, notes);
    if let Some(slo) = merged.settings.slo {
        for p in &mut merged.points {
            p.slo_verdict = p.judge_slo(&slo);
        }
    }
    // A merge ran nothing: it has no spec to run again.
    merged.settings.spec = None;
    match &shards {
        // Shards drew one load: its seed and request count are the merge's.
        Some(s) => {
            for p in &mut merged.points {
                p.start = None;
            }
            if let Some(error) = s.worst_clock_error_ms {
                let ttft = merged
                    .points
                    .iter()
                    .filter_map(|p| p.ttft_judged_ms().map(|t| (p.load.label(), t.p50)))
                    .find(|(_, p50)| error > CLOCK_ERROR_SHARE * p50);
                if let Some((label, p50)) = ttft {
                    merged.notes.push(format!(
                        "the shards' clocks may be up to {error:.1} ms apart (the kernel's maximum error{}), {:.0}% of {label}'s TTFT p50 of {p50:.1} ms: their starts line up no better than that",
                        if s.all_clocks_synchronized { "" } else { "; not every clock was synchronized" },
                        100.0 * error / p50
                    ));
                }
            }
            merged.shards = shards;
        }
        None => {
            merged.settings.prompt_seed = None;
            if let Some(n) = &mut merged.settings.num_requests {
                *n *= files.len() as u64;
            }
        }
    }
    Ok(merged)
}

fn merge_inproc_points(parts: &[(&str, &InprocPoint)]) -> Result<InprocPoint, MergeError> {
    let first = parts[0].1;
    let label = format!(
        "P={} B={} D={}",
        first.prompt_tokens, first.batch, first.depth
    );
    let stats = |name: &str, get: fn(&InprocPoint) -> Option<&Stats>| {
        let v: Vec<(&str, Option<&Stats>)> = parts.iter().map(|(f, p)| (*f, get(p))).collect();
        merge_stats(&v, &format!("{label} {name}"))
    };
    let runs: u32 = parts.iter().map(|(_, p)| p.runs).sum();
    Ok(InprocPoint {
        prompt_tokens: first.prompt_tokens,
        gen_tokens: first.gen_tokens,
        batch: first.batch,
        depth: first.depth,
        depth_fill_ms: stats("depth_fill_ms", |p| p.depth_fill_ms.as_ref())?,
        config: first.config.clone(),
        memory: None,
        error: None,
        complete: parts.iter().all(|(_, p)| p.complete),
        runs,
        warmup_runs: parts.iter().map(|(_, p)| p.warmup_runs).sum(),
        tokens: crate::schema::TokenTotals {
            prompt: parts.iter().map(|(_, p)| p.tokens.prompt).sum(),
            generated: parts.iter().map(|(_, p)| p.tokens.generated).sum(),
        },
        ttft_ms: stats("ttft_ms", |p| p.ttft_ms.as_ref())?,
        itl_ms: stats("itl_ms", |p| p.itl_ms.as_ref())?,
        tpot_ms: stats("tpot_ms", |p| p.tpot_ms.as_ref())?,
        e2e_ms: stats("e2e_ms", |p| p.e2e_ms.as_ref())?,
        prefill_ms: stats("prefill_ms", |p| p.prefill_ms.as_ref())?,
        decode_step_ms: stats("decode_step_ms", |p| p.decode_step_ms.as_ref())?,
        sample_ms: stats("sample_ms", |p| p.sample_ms.as_ref())?,
        prefill_tok_s: stats("prefill_tok_s", |p| p.prefill_tok_s.as_ref())?,
        decode_tok_s: stats("decode_tok_s", |p| p.decode_tok_s.as_ref())?,
        throughput_tok_s: stats("throughput_tok_s", |p| p.throughput_tok_s.as_ref())?,
        // Ratios over sums and device windows are per run: not merged.
        engine_counters: None,
        device_timing: None,
        telemetry: None,
        roofline: None,
        prefill_roofline: None,
        kernel_timing: None,
        // Every file's runs, in file order, where every file kept them.
        run_samples: parts
            .iter()
            .map(|(_, p)| p.run_samples.as_ref())
            .collect::<Option<Vec<_>>>()
            .map(|all| crate::schema::RunSamples {
                prefill_ns: all
                    .iter()
                    .flat_map(|r| r.prefill_ns.iter().copied())
                    .collect(),
                decode_ns: all
                    .iter()
                    .flat_map(|r| r.decode_ns.iter().copied())
                    .collect(),
                decode_steps: all[0].decode_steps,
            }),
        validity: None,
        precision: None,
        energy: None,
    })
    .map(|mut point: InprocPoint| {
        point.validity = Some(point.assess());
        point
    })
}

/// In-process files of the same settings (a sweep repeated), points
/// matched by prompt length, output length, batch and depth.
pub fn merge_inproc(files: &[(String, InprocResult)]) -> Result<InprocResult, MergeError> {
    if files.len() < 2 {
        return Err(MergeError::TooFew);
    }
    let refs: Vec<(String, &InprocResult)> = files.iter().map(|(n, r)| (n.clone(), r)).collect();
    let settings: Vec<(String, &crate::schema::InprocSettings)> =
        refs.iter().map(|(n, r)| (n.clone(), &r.settings)).collect();
    same_settings(&settings, &INPROC_SETTINGS_FREE)?;
    same_model(&refs)?;
    let mut points = Vec::new();
    for p in &files[0].1.points {
        let mut parts = vec![(files[0].0.as_str(), p)];
        for (name, other) in &files[1..] {
            let q = other
                .points
                .iter()
                .find(|q| {
                    (q.prompt_tokens, q.gen_tokens, q.batch, q.depth)
                        == (p.prompt_tokens, p.gen_tokens, p.batch, p.depth)
                        && q.config.as_ref().map(|c| c.cell_key())
                            == p.config.as_ref().map(|c| c.cell_key())
                })
                .ok_or_else(|| MergeError::Differs {
                    field: format!("points (P={} B={})", p.prompt_tokens, p.batch),
                    first: files[0].0.clone(),
                    other: name.clone(),
                    a: "measured".into(),
                    b: "absent".into(),
                })?;
            parts.push((name.as_str(), q));
        }
        points.push(merge_inproc_points(&parts)?);
    }
    let notes = vec![
        "engine counters, device timings and telemetry are per run and not merged".to_string(),
    ];
    let mut merged = merged_header(&refs, points, notes);
    merged.settings.runs *= files.len() as u32;
    merged.settings.spec = None;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::Outcome;
    use crate::http::point::{Completed, HttpAccumulator};
    use crate::schema::{LoadDescription, LoadKind, Slo};
    use std::time::{Duration, Instant};

    fn request(base: Instant, i: u64) -> Completed {
        let sent = base + Duration::from_millis(i * 7);
        let content_times = (0..8)
            .map(|k| sent + Duration::from_millis(40 + i % 5 + k * (10 + i % 3)))
            .collect();
        Completed {
            index: i,
            scheduled: None,
            late: false,
            input_tokens_requested: 16,
            tag: Default::default(),
            outcome: Outcome {
                sent,
                headers_at: Some(sent),
                content_times,
                chunks: 8,
                empty_chunks: 0,
                text: Some("abcdefgh".into()),
                usage: None,
                finish_reason: Some("length".into()),
                server_timings: None,
                system_fingerprint: None,
                response_id: None,
                retries: 0,
                failure: None,
            },
        }
    }

    fn point(base: Instant, range: std::ops::Range<u64>) -> HttpPoint {
        let slo = Slo {
            ttft_ms: Some(45.0),
            ..Slo::default()
        };
        let mut acc = HttpAccumulator::new(base, slo);
        for i in range {
            acc.add(request(base, i));
        }
        let load = LoadDescription {
            kind: LoadKind::Closed,
            concurrency: Some(4),
            rate: None,
            arrival: None,
            burstiness: None,
            max_inflight: None,
            trace_speed: None,
        };
        acc.finish(load, true, 0)
    }

    #[test]
    fn two_halves_of_a_point_merge_into_the_whole() {
        let base = Instant::now();
        let whole = point(base, 0..40);
        let (a, b) = (point(base, 0..20), point(base, 20..40));
        let mut notes = Vec::new();
        let merged = merge_http_points(&[("a", &a), ("b", &b)], &mut notes).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(merged.requests, whole.requests);
        assert_eq!(merged.slo_met, whole.slo_met);
        assert_eq!(merged.output_tokens_source, whole.output_tokens_source);
        for (m, w) in [
            (&merged.ttft_ms, &whole.ttft_ms),
            (&merged.itl_ms, &whole.itl_ms),
            (&merged.tpot_ms, &whole.tpot_ms),
            (&merged.e2e_ms, &whole.e2e_ms),
        ] {
            let (m, w) = (m.as_ref().unwrap(), w.as_ref().unwrap());
            assert_eq!(m.count, w.count);
            for (x, y) in [
                (m.p50, w.p50),
                (m.p99, w.p99),
                (m.min, w.min),
                (m.max, w.max),
            ] {
                assert!((x - y).abs() <= 1e-3 * y.abs(), "{x} vs {y}");
            }
            assert!((m.mean - w.mean).abs() < 1e-9 * w.mean.abs());
        }
        // The halves' windows overlap: their union is the whole's window
        // (to the microseconds between the accumulators' wall clocks).
        assert!(
            (merged.duration_s - whole.duration_s).abs() < 1e-3,
            "{} vs {} ({:?} {} / {:?} {})",
            merged.duration_s,
            whole.duration_s,
            a.first_send_unix_s,
            a.duration_s,
            b.first_send_unix_s,
            b.duration_s
        );
        let rel = |x: f64, y: f64| (x - y).abs() / y;
        assert!(
            rel(
                merged.output_throughput_tok_s,
                whole.output_throughput_tok_s
            ) < 1e-2
        );
        assert!(rel(merged.goodput_req_s.unwrap(), whole.goodput_req_s.unwrap()) < 1e-2);
    }

    #[test]
    fn a_point_without_histograms_is_refused_by_name() {
        let base = Instant::now();
        let a = point(base, 0..5);
        let mut b = point(base, 5..10);
        b.ttft_ms.as_mut().unwrap().histogram = None;
        let e = merge_http_points(&[("a.json", &a), ("b.json", &b)], &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("b.json: c=4 ttft_ms has no histogram"), "{e}");
    }

    #[test]
    fn union_counts_overlap_once_and_gaps_not_at_all() {
        assert_eq!(union_length(vec![(0.0, 10.0), (5.0, 10.0)]), 15.0);
        assert_eq!(union_length(vec![(20.0, 5.0), (0.0, 10.0)]), 15.0);
        assert_eq!(union_length(vec![(0.0, 10.0), (2.0, 3.0)]), 10.0);
        assert_eq!(union_length(Vec::new()), 0.0);
    }
}
