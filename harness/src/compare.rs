//! Side by side: the points of several result files that share a shape (the
//! same request lengths, the same number of sequences in flight), each
//! against the first file that has that shape. In-process against served
//! puts a number on what the server, its HTTP stack and the network cost;
//! two servers, or two builds, compare the same way.

use crate::http::workload::Workload;
use crate::schema::validity::JudgedPoint;
use crate::schema::{AnyResult, HttpPoint, InprocPoint, Mode, RunStatus};
use crate::significance::{holm, mann_whitney_p, quantile_difference, Sample, DEFAULT_RESAMPLES};
use crate::stats::Stats;

pub use crate::schema::compare::{
    Comparison, Delta, Group, Load, MetricTest, RequestSummary, Row, Shape, Significance,
    SourceSummary, TestBasis, Unmatched, COMPARISON_VERSION, METRICS, TESTED_METRICS,
};

/// Compares `files` (path and contents, in the order given).
pub fn compare(files: &[(String, AnyResult)]) -> Comparison {
    let sources: Vec<SourceSummary> = files
        .iter()
        .map(|(path, result)| summarize(path, result))
        .collect();
    let sources = with_unique_labels(sources);

    let mut all: Vec<(Shape, Row)> = Vec::new();
    for (index, (_, result)) in files.iter().enumerate() {
        match result {
            AnyResult::Inproc(r) => {
                // A grid's cells share shapes: each row names its cell.
                let varying = crate::schema::varying_settings(&r.points);
                for (point, p) in r.points.iter().enumerate() {
                    all.push(inproc_row(index, point, p, &varying));
                }
            }
            AnyResult::Http(r) => {
                let workload = match r.settings.fixed_lengths {
                    Some(l) => format!("fixed:{}:{}", l.prompt_tokens, l.output_tokens),
                    // Files written before the lengths were recorded.
                    None => canonical_workload(&r.settings.workload),
                };
                for (point, p) in r.points.iter().enumerate() {
                    all.push(http_row(index, point, p, &workload));
                }
            }
        }
    }

    let mut groups: Vec<Group> = Vec::new();
    for (shape, row) in all {
        match groups.iter_mut().find(|g| g.shape == shape) {
            Some(g) => g.rows.push(row),
            None => groups.push(Group {
                shape,
                rows: vec![row],
            }),
        }
    }
    let (groups, lone): (Vec<Group>, Vec<Group>) = groups
        .into_iter()
        .partition(|g| g.rows.iter().any(|r| r.source != g.rows[0].source));
    let unmatched = lone
        .into_iter()
        .flat_map(|g| {
            let shape = g.shape;
            g.rows.into_iter().map(move |r| Unmatched {
                source: r.source,
                point: r.point,
                shape: shape.clone(),
            })
        })
        .collect();
    let groups: Vec<Group> = groups.into_iter().map(with_deltas).collect();
    let warnings = warnings(files, &sources, &groups);
    Comparison {
        comparison_version: COMPARISON_VERSION,
        sources,
        groups,
        unmatched,
        warnings,
    }
}

/// `fixed:IN:OUT` for any workload whose lengths are fixed, so that `short`
/// and `fixed:10:100` match; other workloads keep their names.
fn canonical_workload(spec: &str) -> String {
    // A sharegpt workload would be read from its file again: its name is enough.
    if spec.starts_with("sharegpt:") {
        return spec.to_string();
    }
    Workload::parse(spec)
        .ok()
        .and_then(|w| w.fixed_lengths())
        .map_or_else(|| spec.to_string(), |(i, o)| format!("fixed:{i}:{o}"))
}

fn inproc_row(source: usize, point: usize, p: &InprocPoint, varying: &[&str]) -> (Shape, Row) {
    // A point at a depth is a different shape: its context is longer.
    let depth = if p.depth > 0 {
        format!("@d{}", p.depth)
    } else {
        String::new()
    };
    let cell: String = p.config.as_ref().map_or(String::new(), |c| {
        varying
            .iter()
            .map(|name| format!(" {name}={}", c.value(name)))
            .collect()
    });
    let shape = Shape {
        workload: format!("fixed:{}:{}{depth}", p.prompt_tokens, p.gen_tokens),
        load: Load::of(Some(p.level())),
    };
    let row = Row {
        source,
        point,
        load: format!("{}{cell}", p.level().label()),
        complete: p.complete,
        ttft_ms: p.ttft_ms.clone(),
        itl_ms: p.itl_ms.clone(),
        tpot_ms: p.tpot_ms.clone(),
        e2e_ms: p.e2e_ms.clone(),
        output_tok_s: p.throughput_tok_s.as_ref().map(|s| s.mean),
        requests: None,
        input_tokens_p50: Some(f64::from(p.prompt_tokens)),
        output_tokens_p50: Some(f64::from(p.gen_tokens)),
        vs_first: None,
        output_tok_s_ratio: None,
        significance: None,
        verdict: Some(p.judged().line()),
        basis: TestBasis {
            independent: u64::from(p.runs),
            output_rate: p.throughput_tok_s.clone(),
            mode: Some(Mode::Inproc),
        },
    };
    (shape, row)
}

fn http_row(source: usize, point: usize, p: &HttpPoint, workload: &str) -> (Shape, Row) {
    let shape = Shape {
        workload: workload.to_string(),
        load: Load::of(p.load.level()),
    };
    let row = Row {
        source,
        point,
        load: p.load.label(),
        complete: p.complete,
        ttft_ms: p.ttft_ms.clone(),
        itl_ms: p.itl_ms.clone(),
        tpot_ms: p.tpot_ms.clone(),
        e2e_ms: p.e2e_ms.clone(),
        output_tok_s: Some(p.output_throughput_tok_s),
        requests: Some(RequestSummary {
            succeeded: p.requests.succeeded,
            failed: p.requests.failed,
        }),
        input_tokens_p50: p.input_tokens.as_ref().map(|s| s.p50),
        output_tokens_p50: p.output_tokens.as_ref().map(|s| s.p50),
        vs_first: None,
        output_tok_s_ratio: None,
        significance: None,
        verdict: Some(p.judged().line()),
        basis: TestBasis {
            independent: p.requests.succeeded,
            output_rate: p.per_request_output_tok_s.clone(),
            mode: Some(Mode::Http),
        },
    };
    (shape, row)
}

/// Significance level of every verdict.
pub const LEVEL: f64 = 0.95;

fn test_sample(stats: Option<&Stats>, independent: u64) -> Result<Sample, &'static str> {
    let stats = stats.ok_or("not measured")?;
    let distribution = stats.distribution().map_err(|_| {
        "no histogram in the file (written before histograms were kept): no test possible"
    })?;
    Sample::from_distribution(&distribution, independent).ok_or("no values")
}

/// Each metric of `row` against `first`, seeded by the row so that the same
/// files give the same intervals.
fn significance(first: &Row, row: &Row) -> Significance {
    let seed = (row.source as u64) << 32 | row.point as u64;
    let mut out = Significance {
        level: LEVEL,
        resamples: DEFAULT_RESAMPLES,
        ..Significance::default()
    };
    let mut tested: Vec<(String, MetricTest)> = Vec::new();
    for (m, name) in TESTED_METRICS.iter().enumerate() {
        let (a, b, lower_better) = if *name == "output_tok_s" {
            if first.basis.mode != row.basis.mode {
                out.untested.push(format!(
                    "{name}: in-process runs and served requests measure different rates"
                ));
                continue;
            }
            (
                first.basis.output_rate.as_ref(),
                row.basis.output_rate.as_ref(),
                false,
            )
        } else {
            (first.metric_ref(name), row.metric_ref(name), true)
        };
        let samples = test_sample(a, first.basis.independent)
            .and_then(|a| Ok((a, test_sample(b, row.basis.independent)?)));
        let (a, b) = match samples {
            Ok(s) => s,
            Err(why) => {
                out.untested.push(format!("{name}: {why}"));
                continue;
            }
        };
        let salt = seed.wrapping_mul(31).wrapping_add(m as u64);
        let p50 = quantile_difference(&a, &b, 0.5, LEVEL, DEFAULT_RESAMPLES, salt);
        let p99 = quantile_difference(&a, &b, 0.99, LEVEL, DEFAULT_RESAMPLES, salt ^ 0x99);
        tested.push((
            name.to_string(),
            MetricTest {
                better_when: if lower_better { "lower" } else { "higher" }.into(),
                p50,
                p99,
                mann_whitney_p: mann_whitney_p(&a, &b),
                holm_p: 1.0,
                verdict: String::new(),
            },
        ));
    }
    let adjusted = holm(
        &tested
            .iter()
            .map(|(_, t)| t.mann_whitney_p)
            .collect::<Vec<_>>(),
    );
    for ((name, mut t), holm_p) in tested.into_iter().zip(adjusted) {
        t.holm_p = holm_p;
        let resolved = holm_p < 1.0 - LEVEL && t.p50.difference_ci.excludes_zero();
        t.verdict = if !resolved {
            "no significant difference".into()
        } else if (t.p50.difference < 0.0) == (t.better_when == "lower") {
            "better".into()
        } else {
            "worse".into()
        };
        out.tests.insert(name, t);
    }
    out
}

fn ratio(value: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| value / base)
}

fn with_deltas(mut group: Group) -> Group {
    let Some(first) = group.rows.first().cloned() else {
        return group;
    };
    for row in group.rows.iter_mut().skip(1) {
        let deltas = METRICS
            .iter()
            .filter_map(|&name| {
                let (value, base) = (row.metric(name)?, first.metric(name)?);
                Some((
                    name.to_string(),
                    Delta {
                        p50_delta: value.p50 - base.p50,
                        p50_ratio: ratio(value.p50, base.p50),
                        p99_delta: value.p99 - base.p99,
                        p99_ratio: ratio(value.p99, base.p99),
                    },
                ))
            })
            .collect();
        row.vs_first = Some(deltas);
        row.significance = Some(significance(&first, row));
        row.output_tok_s_ratio = row
            .output_tok_s
            .zip(first.output_tok_s)
            .and_then(|(value, base)| ratio(value, base));
    }
    group
}

fn summarize(path: &str, result: &AnyResult) -> SourceSummary {
    let provenance = result.provenance();
    let host = format!(
        "{} ({} cores)",
        provenance.host.cpu_model, provenance.host.logical_cores
    );
    let label = std::path::Path::new(path)
        .file_stem()
        .map_or_else(|| path.to_string(), |s| s.to_string_lossy().into_owned());
    let (mode, status, partial, engine, model) = match result {
        AnyResult::Inproc(r) => {
            let e = &r.provenance.engine;
            let gpu = match e.gpu_layers_offloaded {
                Some(n) if n > 0 => format!(", {n} layers on GPU"),
                _ => String::new(),
            };
            let engine = format!(
                "in-process {} {} ({}, {} threads{gpu})",
                e.name,
                e.version,
                e.backend,
                e.threads.unwrap_or(0)
            );
            let model = r.provenance.model.as_ref().map(|m| {
                format!(
                    "{} ({}{})",
                    m.name.as_deref().unwrap_or(&m.path),
                    m.quantization,
                    m.sha256.as_deref().map_or(String::new(), |s| format!(
                        ", sha256 {}",
                        &s[..s.len().min(12)]
                    ))
                )
            });
            (r.mode, r.status, r.partial, engine, model)
        }
        AnyResult::Http(r) => {
            let s = &r.settings;
            let engine = format!("served {} ({})", s.url, s.endpoint);
            (r.mode, r.status, r.partial, engine, Some(s.model.clone()))
        }
    };
    SourceSummary {
        path: path.to_string(),
        label,
        mode,
        status,
        partial,
        engine,
        model,
        host,
        verdict: match result {
            AnyResult::Inproc(r) => Some(r.judged().line()),
            AnyResult::Http(r) => Some(r.judged().line()),
        },
    }
}

fn with_unique_labels(mut sources: Vec<SourceSummary>) -> Vec<SourceSummary> {
    let labels: Vec<String> = sources.iter().map(|s| s.label.clone()).collect();
    for source in &mut sources {
        if labels.iter().filter(|l| **l == source.label).count() > 1 {
            source.label = source.path.clone();
        }
    }
    sources
}

fn warnings(
    files: &[(String, AnyResult)],
    sources: &[SourceSummary],
    groups: &[Group],
) -> Vec<String> {
    let mut warnings = Vec::new();
    for s in sources {
        if s.partial || s.status != RunStatus::Complete {
            warnings.push(format!(
                "{}: a partial result (status {})",
                s.label,
                s.status.name()
            ));
        }
    }
    if let Some(first) = sources.first() {
        for s in &sources[1..] {
            if s.host != first.host {
                warnings.push(format!(
                    "{} ran on {}, {} on {}: different machines",
                    s.label, s.host, first.label, first.host
                ));
            }
        }
    }
    let mut hashes = files.iter().zip(sources).filter_map(|((_, r), s)| {
        let sha = r.provenance().model.as_ref()?.sha256.clone()?;
        Some((s.label.as_str(), sha))
    });
    if let Some((first_label, first_sha)) = hashes.next() {
        for (label, sha) in hashes {
            if sha != first_sha {
                warnings.push(format!(
                    "{label} and {first_label} loaded different model files (sha256 differs)"
                ));
            }
        }
    }
    for ((_, r), s) in files.iter().zip(sources) {
        if let AnyResult::Http(r) = r {
            if !r.settings.ignore_eos {
                warnings.push(format!(
                    "{}: run without --ignore-eos, so outputs may end early (see the output tokens)",
                    s.label
                ));
            }
        }
    }
    for g in groups {
        // Both sides' verdicts, wherever one side is not valid: a
        // difference from an invalid point is no finding.
        if g.rows.len() > 1
            && g.rows
                .iter()
                .any(|r| r.verdict.as_deref().is_some_and(|v| v != "valid"))
        {
            let sides: Vec<String> = g
                .rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {}: {}",
                        sources[r.source].label,
                        r.load,
                        r.verdict.as_deref().unwrap_or("no verdict")
                    )
                })
                .collect();
            warnings.push(format!(
                "{} at {}: not every side is valid ({})",
                g.shape.workload,
                g.shape.load.label(),
                sides.join("; ")
            ));
        }
        let in_process_batch = g.rows.iter().any(|r| {
            sources[r.source].mode == Mode::Inproc
                && matches!(g.shape.load, Load::InFlight(b) if b > 1)
        });
        let served = g.rows.iter().any(|r| sources[r.source].mode == Mode::Http);
        if in_process_batch && served {
            warnings.push(format!(
                "{} at {}: in-process, the batch's prompts are prefilled together and its TTFT \
                 waits for all of them; a server receives requests one by one",
                g.shape.workload,
                g.rows
                    .iter()
                    .find(|r| sources[r.source].mode == Mode::Inproc)
                    .map_or("", |r| r.load.as_str())
            ));
        }
        let first = &g.rows[0];
        for r in &g.rows[1..] {
            for (what, value, base) in [
                ("input", r.input_tokens_p50, first.input_tokens_p50),
                ("output", r.output_tokens_p50, first.output_tokens_p50),
            ] {
                if let Some((value, base)) = value.zip(base).filter(|(v, b)| v != b) {
                    warnings.push(format!(
                        "{} {}: {value} {what} tokens per request (p50) against {base} for {} {}",
                        sources[r.source].label, r.load, sources[first.source].label, first.load
                    ));
                }
            }
        }
        for r in &g.rows {
            if let Some(q) = r.requests.filter(|q| q.failed > 0) {
                warnings.push(format!(
                    "{} {}: {} of {} requests failed; its statistics cover the rest",
                    sources[r.source].label,
                    r.load,
                    q.failed,
                    q.failed + q.succeeded
                ));
            }
        }
    }
    warnings
}
