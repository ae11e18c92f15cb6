//! `inferbench compare`: result files side by side, as tables on stdout and
//! optionally as JSON and CSV.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use inferbench_harness::compare::{compare, Comparison, Delta, Group, Load, Row, METRICS};
use inferbench_harness::significance::MedianDifference;
use inferbench_harness::stats::Stats;

use crate::cli::CompareArgs;
use crate::table::Table;

pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.files {
        files.extend(inferbench_harness::contrast::read_sources(path)?);
    }
    let comparison = compare(&files);
    if comparison.groups.is_empty() {
        let shapes: Vec<String> = comparison
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mine: Vec<String> = comparison
                    .unmatched
                    .iter()
                    .filter(|u| u.source == i)
                    .map(|u| format!("{} {}", u.shape.workload, u.shape.load.label()))
                    .collect();
                format!("{}: {}", s.path, none_if_empty(&mine.join(", ")))
            })
            .collect();
        bail!(
            "no point has a counterpart in another file (the same lengths and the same \
             sequences in flight); points found: {}",
            shapes.join("; ")
        );
    }
    print(&comparison);
    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&comparison)?;
        std::fs::write(out, text + "\n")
            .with_context(|| format!("writing --out {}", out.display()))?;
    }
    if let Some(csv) = &args.csv {
        std::fs::write(csv, to_csv(&comparison))
            .with_context(|| format!("writing --csv {}", csv.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() {
        "no points"
    } else {
        s
    }
}

fn print(c: &Comparison) {
    for (i, s) in c.sources.iter().enumerate() {
        println!(
            "[{}] {}: {} | model {} | host {}{}",
            i + 1,
            s.label,
            s.engine,
            s.model.as_deref().unwrap_or("-"),
            s.host,
            if s.partial { " | partial" } else { "" }
        );
    }
    for t in group_tables(c) {
        println!();
        println!("{}", t.title);
        print!("{}", t.markdown());
        for line in &t.footer {
            println!("{line}");
        }
    }
    if !c.unmatched.is_empty() {
        println!();
        let names: Vec<String> = c
            .unmatched
            .iter()
            .map(|u| {
                format!(
                    "{} {} {}",
                    c.sources[u.source].label,
                    u.shape.workload,
                    u.shape.load.label()
                )
            })
            .collect();
        println!("without a counterpart: {}", names.join("; "));
    }
    if !c.warnings.is_empty() {
        println!();
        for w in &c.warnings {
            println!("note: {w}");
        }
    }
}

/// One table per matched shape, each row a file's point.
pub fn group_tables(c: &Comparison) -> Vec<Table> {
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

fn difference_cell(d: &MedianDifference) -> String {
    format!(
        "{:+.2} [{:+.2}, {:+.2}]{}",
        d.difference,
        d.difference_ci.low,
        d.difference_ci.high,
        d.percent
            .map(|p| format!(" ({p:+.1}%)"))
            .unwrap_or_default()
    )
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
                difference_cell(&test.p50),
                difference_cell(&test.p99),
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

fn to_csv(c: &Comparison) -> String {
    let mut out =
        String::from("workload,in_flight,rate,source,path,load,complete,succeeded,failed");
    for m in METRICS {
        out.push_str(&format!(
            ",{m}_p50,{m}_p99,{m}_p50_delta,{m}_p50_ratio,{m}_p99_ratio"
        ));
    }
    out.push_str(",output_tok_s,output_tok_s_ratio\n");
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for g in &c.groups {
        let (in_flight, rate) = match g.shape.load {
            Load::InFlight(n) => (n.to_string(), String::new()),
            Load::Rate(r) => (String::new(), r.to_string()),
        };
        for r in &g.rows {
            let s = &c.sources[r.source];
            out.push_str(&format!(
                "{},{in_flight},{rate},{},{},{},{},{},{}",
                csv_field(&g.shape.workload),
                csv_field(&s.label),
                csv_field(&s.path),
                csv_field(&r.load),
                r.complete,
                r.requests
                    .map_or(String::new(), |q| q.succeeded.to_string()),
                r.requests.map_or(String::new(), |q| q.failed.to_string()),
            ));
            for m in METRICS {
                let stats = r.metric(m);
                let delta = r.vs_first.as_ref().and_then(|d| d.get(m));
                out.push_str(&format!(
                    ",{},{},{},{},{}",
                    opt(stats.as_ref().map(|s| s.p50)),
                    opt(stats.as_ref().map(|s| s.p99)),
                    opt(delta.map(|d| d.p50_delta)),
                    opt(delta.and_then(|d| d.p50_ratio)),
                    opt(delta.and_then(|d| d.p99_ratio)),
                ));
            }
            out.push_str(&format!(
                ",{},{}\n",
                opt(r.output_tok_s),
                opt(r.output_tok_s_ratio)
            ));
        }
    }
    out
}

/// Quotes a CSV field that holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
