//! The tables of the composite results (compare, contrast, rounds), one
//! function each, for the terminal and the report alike.

use inferbench_harness::compare::{Comparison, Delta, Group, Row};
use inferbench_harness::contrast::{ContrastShape, Layer};
use inferbench_harness::rounds::RoundsResult;
use inferbench_harness::significance::MedianDifference;
use inferbench_harness::stats::Stats;

use crate::table::Table;

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

fn overhead_cell(d: Option<&MedianDifference>) -> String {
    match d {
        None => "-".into(),
        Some(d) => {
            let percent = d
                .percent
                .map(|p| format!(" ({p:+.1}%)"))
                .unwrap_or_default();
            format!(
                "{:+.2} [{:+.2}, {:+.2}]{percent}",
                d.difference, d.difference_ci.low, d.difference_ci.high
            )
        }
    }
}

/// The layers of one shape and the overheads between them, for the
/// terminal and the report.
pub fn contrast_shape(shape: &ContrastShape) -> Vec<Table> {
    let mut layers = Table::new(
        format!(
            "pp{} tg{}, c = B = {}   (p50 ms; overheads: difference of medians [95% bootstrap interval])",
            shape.prompt_tokens, shape.gen_tokens, shape.sequences
        ),
        &["layer", "TTFT p50", "TTFT p99", "per-token p50", "per-token p99", "n"],
        1,
    );
    for row in &shape.layers {
        layers.rows.push(vec![
            row.layer.title().to_string(),
            ms(row.ttft_ms.as_ref().map(|s| s.p50)),
            ms(row.ttft_ms.as_ref().map(|s| s.p99)),
            ms(row.per_token_ms.as_ref().map(|s| s.p50)),
            ms(row.per_token_ms.as_ref().map(|s| s.p99)),
            row.independent_values.to_string(),
        ]);
    }
    let mut overheads = Table::new(String::new(), &["overhead", "TTFT", "per-token"], 1);
    let name = |l: Layer| match l {
        Layer::Engine => "engine",
        Layer::Server => "server",
        Layer::Client => "client",
    };
    for o in &shape.overheads {
        overheads.rows.push(vec![
            format!("{} − {}", name(o.upper), name(o.lower)),
            overhead_cell(o.ttft.as_ref()),
            overhead_cell(o.per_token.as_ref()),
        ]);
    }
    let rate = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    overheads.footer.push(format!(
        "output tok/s: in-process B={} {}, served c={} {}",
        shape.sequences,
        rate(shape.inproc_output_tok_s),
        shape.sequences,
        rate(shape.served_output_tok_s),
    ));
    overheads
        .footer
        .extend(shape.notes.iter().map(|n| format!("note: {n}")));
    vec![layers, overheads]
}

fn interval(i: Option<&inferbench_harness::significance::Interval>) -> String {
    i.map_or("-".into(), |i| format!("[{:+.2}, {:+.2}]", i.low, i.high))
}

/// Per load: each target's per-round medians with their spread and
/// interval, and each target against the first, paired by round.
pub fn rounds_summary(result: &RoundsResult) -> Vec<Table> {
    let mut tables = Vec::new();
    for load in &result.summary {
        let mut t = Table::new(
            format!(
                "{}: over {} rounds (p50 of each round; mean, CV, 95% t-interval over rounds; pooled median [bootstrap])",
                load.load, result.settings.rounds
            ),
            &["target", "metric", "per round", "mean", "CV", "t-interval", "pooled median"],
            2,
        );
        for target in &load.targets {
            for (metric, m) in &target.metrics {
                t.rows.push(vec![
                    target.url.clone(),
                    metric.clone(),
                    m.per_round
                        .iter()
                        .map(|v| format!("{v:.2}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    format!("{:.2}", m.mean),
                    m.cv.map_or("-".into(), |c| format!("{:.1}%", 100.0 * c)),
                    m.t_interval
                        .map_or("-".into(), |i| format!("[{:.2}, {:.2}]", i.low, i.high)),
                    match (m.pooled_median, m.pooled_median_ci) {
                        (Some(v), Some(i)) => format!("{v:.2} [{:.2}, {:.2}]", i.low, i.high),
                        _ => "-".into(),
                    },
                ]);
            }
        }
        tables.push(t);
        let first = load.targets.first().map_or("-", |t| t.url.as_str());
        let mut v = Table::new(
            format!("{}: against {first}, paired by round", load.load),
            &[
                "target",
                "metric",
                "mean difference",
                "ratio",
                "paired t-interval",
                "pooled difference [bootstrap]",
                "verdict",
            ],
            2,
        );
        for target in &load.targets {
            let Some(versus) = &target.versus_first else {
                continue;
            };
            for (metric, d) in versus {
                v.rows.push(vec![
                    target.url.clone(),
                    metric.clone(),
                    format!("{:+.2}", d.mean),
                    d.ratio.map_or("-".into(), |r| format!("×{r:.3}")),
                    interval(d.t_interval.as_ref()),
                    d.pooled.as_ref().map_or("-".into(), |p| {
                        format!("{:+.2} {}", p.difference, interval(Some(&p.difference_ci)))
                    }),
                    match d.verdict.as_str() {
                        "better" => format!("{} better", target.url),
                        "worse" => format!("{first} better"),
                        other => other.to_string(),
                    },
                ]);
            }
        }
        if !v.rows.is_empty() {
            tables.push(v);
        }
    }
    tables
}

/// One table per matched shape, each row a file's point.
pub fn compare_groups(c: &Comparison) -> Vec<Table> {
    c.groups
        .iter()
        .flat_map(|g| {
            let first = &c.sources[g.rows[0].source].label;
            let mut t = Table::new(
                format!("{}, {}", g.shape.workload, g.shape.load.label()),
                &[
                    "source",
                    "load",
                    "ok/failed",
                    "in/out tok",
                    "TTFT p50 ms",
                    "TTFT p99 ms",
                    "ITL p50 ms",
                    "ITL p99 ms",
                    "TPOT p50 ms",
                    "TPOT p99 ms",
                    "E2E p50 ms",
                    "out tok/s",
                ],
                2,
            );
            t.header.extend([
                format!("TTFT p50 vs {first}"),
                format!("TPOT p50 vs {first}"),
                format!("tok/s vs {first}"),
            ]);
            t.rows = g
                .rows
                .iter()
                .map(|r| table_row(&c.sources[r.source].label, r))
                .collect();
            vec![t, verdict_table(c, g)]
        })
        .filter(|t| !t.rows.is_empty())
        .collect()
}

/// Each row's metrics against the group's first row: which side is better,
/// with the interval, or no significant difference.
fn verdict_table(c: &Comparison, g: &Group) -> Table {
    let first = &c.sources[g.rows[0].source].label;
    let mut t = Table::new(
        format!("against {first}: p50 and p99 differences [95% bootstrap interval], Mann-Whitney p (Holm-adjusted)"),
        &["source", "metric", "p50 difference", "p99 difference", "p (Holm)", "verdict"],
        2,
    );
    for r in g.rows.iter().skip(1) {
        let label = &c.sources[r.source].label;
        let Some(sig) = &r.significance else { continue };
        for (name, test) in &sig.tests {
            let verdict = match test.verdict.as_str() {
                "better" => format!("{label} better ({} is better)", test.better_when),
                "worse" => format!("{first} better ({} is better)", test.better_when),
                other => other.to_string(),
            };
            t.rows.push(vec![
                label.clone(),
                name.clone(),
                overhead_cell(Some(&test.p50)),
                overhead_cell(Some(&test.p99)),
                format!("{:.3}", test.holm_p),
                verdict,
            ]);
        }
        t.footer.extend(
            sig.untested
                .iter()
                .map(|u| format!("{label}: not tested: {u}")),
        );
    }
    t
}

fn stat(s: Option<&Stats>, pick: fn(&Stats) -> f64) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{:.2}", pick(s)))
}

fn tokens(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

fn versus(r: &Row, metric: &str) -> String {
    let Some(deltas) = &r.vs_first else {
        return "ref".into();
    };
    match deltas.get(metric) {
        Some(Delta {
            p50_delta,
            p50_ratio,
            ..
        }) => format!(
            "{p50_delta:+.2} ms ({})",
            p50_ratio.map_or_else(|| "-".into(), |x| format!("×{x:.3}"))
        ),
        None => "-".into(),
    }
}

fn table_row(label: &str, r: &Row) -> Vec<String> {
    let p50 = |s: &Stats| s.p50;
    let p99 = |s: &Stats| s.p99;
    vec![
        label.to_string(),
        format!(
            "{}{}",
            r.load,
            if r.complete { "" } else { " (incomplete)" }
        ),
        r.requests
            .map_or_else(|| "-".into(), |q| format!("{}/{}", q.succeeded, q.failed)),
        format!(
            "{}/{}",
            tokens(r.input_tokens_p50),
            tokens(r.output_tokens_p50)
        ),
        stat(r.ttft_ms.as_ref(), p50),
        stat(r.ttft_ms.as_ref(), p99),
        stat(r.itl_ms.as_ref(), p50),
        stat(r.itl_ms.as_ref(), p99),
        stat(r.tpot_ms.as_ref(), p50),
        stat(r.tpot_ms.as_ref(), p99),
        stat(r.e2e_ms.as_ref(), p50),
        r.output_tok_s
            .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
        versus(r, "ttft_ms"),
        versus(r, "tpot_ms"),
        match (&r.vs_first, r.output_tok_s_ratio) {
            (None, _) => "ref".into(),
            (Some(_), Some(x)) => format!("×{x:.3}"),
            (Some(_), None) => "-".into(),
        },
    ]
}
