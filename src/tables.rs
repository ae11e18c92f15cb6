//! The tables of the composite results (contrast, rounds), one function
//! each, for the terminal and the report alike.

use inferbench_harness::contrast::{ContrastShape, Layer};
use inferbench_harness::rounds::RoundsResult;
use inferbench_harness::significance::MedianDifference;

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
