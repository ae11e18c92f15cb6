//! `inferbench compare`: result files side by side, as tables on stdout and
//! optionally as JSON and CSV.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use inferbench_harness::compare::{compare, Comparison, Load, METRICS};

use crate::cli::CompareArgs;

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
    for t in crate::tables::compare_groups(c) {
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
