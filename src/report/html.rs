//! The report page: one HTML file holding its figures as inline SVG and its
//! style inline, with no link, script or font from anywhere else, so that
//! it opens offline from a file and prints as it shows.

use std::collections::BTreeSet;

use anyhow::Result;
use inferbench_harness::http::point::point_notes;
use inferbench_harness::schema::validity::RunValidity;
use inferbench_harness::schema::{Provenance, ResultFile, RunStatus};
use inferbench_harness::stats::Stats;

use super::figures::{describe, Figure};
use super::{draw, Input, RequestLog, Source};
use crate::table::Table;
use crate::terminal;

/// Client CPU, in percent of one core, above which the client may be
/// what limits a served point rather than the server.
pub const CLIENT_CPU_WARNING_PERCENT: f64 = 80.0;

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; margin: 24px auto; max-width: 1240px; padding: 0 16px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.86em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.short { color: #999; }
td.valid { color: #1a7f37; }
td.not-valid { color: #b00020; }
table.kv td:first-child { font-weight: bold; white-space: nowrap; }
figure { margin: 1.4em 0; page-break-inside: avoid; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 4px; }
ul.warnings li { margin: 4px 0; }
.muted { color: #666; font-size: 0.9em; }
code { background: #f6f6f6; padding: 0 3px; }
nav a { margin-right: 12px; }
@media print { nav { display: none; } body { max-width: none; } }
";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn table_html(t: &Table) -> String {
    let mut out = String::new();
    if !t.title.is_empty() {
        out.push_str(&format!("<h4>{}</h4>\n", escape(&t.title)));
    }
    out.push_str("<table>\n<tr>");
    for h in &t.header {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr>\n");
    let mut short = false;
    for r in &t.rows {
        out.push_str("<tr>");
        for (c, cell) in r.iter().enumerate() {
            // The tables mark a percentile from fewer observations than it
            // needs with '*' (MLPerf LoadGen's early-stopping rule): greyed.
            let attributes = if c < t.name_columns {
                ""
            } else if cell.ends_with('*') {
                short = true;
                " class=\"num short\" title=\"too few observations for this percentile at 99% confidence\""
            } else {
                " class=\"num\""
            };
            out.push_str(&format!("<td{attributes}>{}</td>", escape(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if short {
        out.push_str("<p class=\"muted\">Greyed, with *: a percentile from fewer observations than it needs for an upper bound at 99% confidence (MLPerf LoadGen's early-stopping rule: 662 for a p99); each point's verdict says how many.</p>\n");
    }
    for line in &t.footer {
        out.push_str(&format!("<p class=\"muted\">{}</p>\n", escape(line)));
    }
    out
}

fn kv_table(rows: &[(String, String)]) -> String {
    let mut out = String::from("<table class=\"kv\">\n");
    for (k, v) in rows {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            escape(k),
            escape(v)
        ));
    }
    out.push_str("</table>\n");
    out
}

fn provenance_rows(p: &Provenance) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            "tool".to_string(),
            format!(
                "{} {} (commit {}{}, {} build, {}{})",
                p.tool.name,
                p.tool.version,
                p.tool.git_commit.as_deref().unwrap_or("unknown"),
                if p.tool.git_dirty == Some(true) {
                    ", dirty"
                } else {
                    ""
                },
                p.tool.build_profile,
                p.tool.target,
                if p.tool.features.is_empty() {
                    String::new()
                } else {
                    format!(", features {}", p.tool.features.join(" "))
                }
            ),
        ),
        (
            "engine".into(),
            format!(
                "{} {} via {} | backend {} | threads {}/{} | clock: {}",
                p.engine.name,
                p.engine.version,
                p.engine.bindings,
                p.engine.backend,
                p.engine.threads.map_or("-".into(), |t| t.to_string()),
                p.engine.threads_batch.map_or("-".into(), |t| t.to_string()),
                p.engine.timing_source
            ),
        ),
    ];
    if let Some(b) = &p.engine.build {
        rows.push((
            "engine build".into(),
            format!(
                "{} (C flags: {}; native: {})",
                b.cmake_build_type,
                b.c_flags,
                b.ggml_native.map_or("unknown".into(), |n| n.to_string())
            ),
        ));
    }
    if !p.engine.devices.is_empty() {
        rows.push(("devices".into(), p.engine.devices.join("; ")));
    }
    rows.push((
        "host".into(),
        format!(
            "{} | {} logical cores{} | {:.1} GiB | {}{}",
            p.host.cpu_model.trim(),
            p.host.logical_cores,
            p.host
                .physical_cores
                .map(|c| format!(" ({c} physical)"))
                .unwrap_or_default(),
            p.host.memory_bytes as f64 / (1u64 << 30) as f64,
            p.host.os,
            p.host
                .kernel
                .as_ref()
                .map(|k| format!(", kernel {k}"))
                .unwrap_or_default()
        ),
    ));
    if let Some(c) = terminal::ceilings(&p.host) {
        rows.push(("ceilings".into(), c));
    }
    if let Some(m) = &p.model {
        rows.push((
            "model".into(),
            format!(
                "{} ({}, {}, {:.1}M parameters, {:.1} MiB) | {} | sha256 {}",
                m.name.as_deref().unwrap_or("-"),
                m.architecture,
                m.quantization,
                m.parameters as f64 / 1e6,
                m.file_size_bytes as f64 / (1024.0 * 1024.0),
                m.path,
                m.sha256.as_deref().unwrap_or("not computed")
            ),
        ));
    }
    if let Some(s) = &p.server {
        rows.push((
            "server".into(),
            format!(
                "{} {} | model {}{}",
                s.url,
                s.endpoint,
                s.model,
                s.system_fingerprint
                    .as_ref()
                    .map(|f| format!(" | fingerprint {f}"))
                    .unwrap_or_default()
            ),
        ));
    }
    rows.push(("measured at".into(), p.timestamp.clone()));
    for n in &p.engine.notes {
        rows.push(("note".into(), n.clone()));
    }
    rows
}

fn settings_rows(settings: &impl serde::Serialize) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(settings) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect()
}

/// Each run's verdict in a file (a rounds file: every round of every
/// target); none for files that hold no run of their own.
fn run_verdicts(input: &Input) -> Vec<RunValidity> {
    match input {
        Input::Inproc(r) => vec![r.judged()],
        Input::Http(r) => vec![r.judged()],
        Input::Rounds { result, .. } => result
            .targets
            .iter()
            .flat_map(|t| t.rounds.iter().map(|r| r.judged()))
            .collect(),
        Input::Contrast(_) | Input::Compare(_) => Vec::new(),
    }
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "running (still being written, or the process died)",
        RunStatus::Complete => "complete",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Failed => "failed",
    }
}

fn stats_have_histograms<'a>(mut stats: impl Iterator<Item = &'a Stats>) -> bool {
    stats.any(|s| s.histogram.is_some())
}

/// What a reader must know before trusting the figures, from every file.
pub fn warnings(sources: &[Source], figures: &[Figure]) -> Vec<String> {
    let mut out = Vec::new();
    result_warnings(sources, &mut out);
    other_file_warnings(sources, &mut out);
    not_alike_warnings(sources, &mut out);
    if figures.is_empty() {
        out.push("nothing in these files could be drawn".into());
    }
    out
}

/// A run's state when it did not complete, and its notes.
fn run_state<S, P>(label: &str, r: &ResultFile<S, P>, out: &mut Vec<String>) {
    if r.status != RunStatus::Complete || r.partial {
        out.push(format!(
            "{label}: {} run{}{}",
            if r.partial { "partial" } else { "incomplete" },
            format_args!(", status {}", status_word(r.status)),
            r.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    out.extend(r.notes.iter().map(|n| format!("{label}: {n}")));
}

/// The in-process and served result files': their state, failed requests,
/// their points' notes, a busy client, a file without histograms.
fn result_warnings(sources: &[Source], out: &mut Vec<String>) {
    for (label, r) in super::inproc_results(sources) {
        run_state(&label, r, out);
        let with = r.points.iter().flat_map(|p| p.ttft_ms.iter());
        if !r.points.is_empty() && !stats_have_histograms(with) {
            out.push(format!(
                "{label}: written before result files kept histograms: no CDF can be drawn from it"
            ));
        }
    }
    for (label, r) in super::http_results(sources) {
        run_state(&label, r, out);
        let token_ids = r.settings.token_ids_from.is_some();
        for p in &r.points {
            let load = p.load.label();
            if p.requests.failed > 0 {
                out.push(format!(
                    "{label} {load}: {} of {} requests failed ({})",
                    p.requests.failed,
                    p.requests.total,
                    terminal::failure_classes(p)
                ));
            }
            if !r.notes.iter().any(|n| n.starts_with(&format!("{load}:"))) {
                out.extend(
                    point_notes(p, token_ids)
                        .into_iter()
                        .map(|n| format!("{label}: {n}")),
                );
            }
            if let Some(cpu) = p.client.cpu_percent {
                if cpu >= CLIENT_CPU_WARNING_PERCENT && !r.settings.busy_poll {
                    out.push(format!(
                        "{label} {load}: the client used {cpu:.0}% of a core: it, not the server, may be the bottleneck (more --client-threads)"
                    ));
                }
            }
        }
        let with = r.points.iter().flat_map(|p| p.ttft_ms.iter());
        if !r.points.is_empty() && !stats_have_histograms(with) {
            out.push(format!(
                "{label}: written before result files kept histograms: no CDF can be drawn from it"
            ));
        }
    }
}

/// Contrast, compare and rounds files: their state and notes.
fn other_file_warnings(sources: &[Source], out: &mut Vec<String>) {
    for s in sources {
        match &s.input {
            Input::Contrast(c) => {
                if c.status != RunStatus::Complete || c.partial {
                    out.push(format!(
                        "{}: contrast {}{}",
                        s.label,
                        status_word(c.status),
                        c.error
                            .as_ref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ));
                }
                out.extend(c.notes.iter().map(|n| format!("{}: {n}", s.label)));
                for shape in &c.shapes {
                    out.extend(shape.notes.iter().map(|n| format!("{}: {n}", s.label)));
                }
            }
            Input::Compare(c) => {
                out.extend(c.warnings.iter().map(|w| format!("{}: {w}", s.label)));
            }
            Input::Rounds { result, .. } => {
                if result.status != RunStatus::Complete || result.partial {
                    out.push(format!(
                        "{}: rounds {}",
                        s.label,
                        status_word(result.status)
                    ));
                }
                out.extend(result.notes.iter().map(|n| format!("{}: {n}", s.label)));
            }
            _ => {}
        }
    }
}

/// Files that were not measured alike: machines, model files, engine builds.
fn not_alike_warnings(sources: &[Source], out: &mut Vec<String>) {
    // Files that were not measured alike.
    let provenances: Vec<(String, &Provenance)> = super::inproc_results(sources)
        .into_iter()
        .map(|(l, r)| (l, &r.provenance))
        .chain(
            super::http_results(sources)
                .into_iter()
                .map(|(l, r)| (l, &r.provenance)),
        )
        .collect();
    let machines: BTreeSet<String> = provenances
        .iter()
        .map(|(_, p)| {
            format!(
                "{} ({} cores)",
                p.host.cpu_model.trim(),
                p.host.logical_cores
            )
        })
        .collect();
    if machines.len() > 1 {
        out.push(format!(
            "the files were measured on different machines: {}",
            machines.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
    let models: BTreeSet<String> = provenances
        .iter()
        .filter_map(|(_, p)| p.model.as_ref()?.sha256.clone())
        .collect();
    if models.len() > 1 {
        out.push(format!(
            "the files measured different model files (sha256 {})",
            models
                .iter()
                .map(|h| &h[..h.len().min(12)])
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let builds: BTreeSet<String> = provenances
        .iter()
        .filter(|(_, p)| p.server.is_none())
        .map(|(_, p)| format!("{} {}", p.engine.version, p.engine.backend))
        .collect();
    if builds.len() > 1 {
        out.push(format!(
            "the in-process files ran different engine builds: {}",
            builds.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
}

fn kind(input: &Input) -> &'static str {
    match input {
        Input::Inproc(_) => "inproc",
        Input::Http(_) => "http",
        Input::Contrast(_) => "contrast",
        Input::Compare(_) => "compare",
        Input::Rounds { .. } => "rounds",
    }
}

fn tables(source: &Source) -> Vec<Table> {
    match &source.input {
        Input::Inproc(r) => vec![terminal::inproc_table(r)],
        Input::Http(r) => vec![terminal::http_table(r)],
        Input::Compare(c) => crate::tables::compare_groups(c),
        Input::Rounds { result, .. } => crate::tables::rounds_summary(result),
        Input::Contrast(c) => {
            let mut t = Vec::new();
            if let Some(r) = &c.inproc {
                t.push(terminal::inproc_table(r));
            }
            if let Some(r) = &c.http {
                t.push(terminal::http_table(r));
            }
            for shape in &c.shapes {
                t.extend(crate::tables::contrast_shape(shape));
            }
            t
        }
    }
}

pub fn page(sources: &[Source], logs: &[RequestLog], figures: &[Figure]) -> Result<String> {
    let headline = super::inproc_results(sources)
        .first()
        .map(|(_, r)| describe(&r.provenance))
        .or_else(|| {
            super::http_results(sources)
                .first()
                .map(|(_, r)| describe(&r.provenance))
        })
        .unwrap_or_else(|| "comparison".into());
    let title = format!("inferbench report: {headline}");
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape(&title)));
    out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    out.push_str(&format!("<h1>{}</h1>\n", escape(&title)));
    out.push_str(&format!(
        "<p class=\"muted\">Made by inferbench {} from {} file{}{}. Everything on this page is in this file.</p>\n",
        env!("CARGO_PKG_VERSION"),
        sources.len(),
        if sources.len() == 1 { "" } else { "s" },
        if logs.is_empty() {
            String::new()
        } else {
            format!(" and {} request log{}", logs.len(), if logs.len() == 1 { "" } else { "s" })
        }
    ));
    out.push_str("<nav><a href=\"#files\">Files</a><a href=\"#warnings\">Notes and warnings</a><a href=\"#figures\">Figures</a><a href=\"#tables\">Tables</a><a href=\"#provenance\">Provenance</a></nav>\n");

    files_section(sources, &mut out);
    warnings_section(&warnings(sources, figures), &mut out);
    figures_section(figures, &mut out)?;
    tables_section(sources, &mut out);
    provenance_section(sources, &mut out);
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

/// Every file: its kind, path, status and verdicts.
fn files_section(sources: &[Source], out: &mut String) {
    out.push_str("<section id=\"files\">\n<h2>Files</h2>\n<table>\n<tr><th>label</th><th>kind</th><th>path</th><th>status</th><th>verdict</th></tr>\n");
    for s in sources {
        let status = match &s.input {
            Input::Inproc(r) => status_word(r.status).to_string(),
            Input::Http(r) => status_word(r.status).to_string(),
            Input::Contrast(c) => status_word(c.status).to_string(),
            Input::Compare(c) => format!("{} files compared", c.sources.len()),
            Input::Rounds { result, .. } => format!(
                "{}, {} targets × {} rounds",
                status_word(result.status),
                result.targets.len(),
                result.settings.rounds
            ),
        };
        let verdicts = run_verdicts(&s.input);
        let verdict = if verdicts.is_empty() {
            "<td>-</td>".to_string()
        } else {
            let class = if verdicts.iter().all(|v| v.reasons.is_empty()) {
                "valid"
            } else {
                "not-valid"
            };
            let lines: Vec<String> = verdicts.iter().map(|v| escape(&v.line())).collect();
            format!("<td class=\"{class}\">{}</td>", lines.join("<br>"))
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td>{verdict}</tr>\n",
            escape(&s.label),
            kind(&s.input),
            escape(&s.path.display().to_string()),
            escape(&status)
        ));
    }
    out.push_str("</table>\n</section>\n");
}

fn warnings_section(warnings: &[String], out: &mut String) {
    out.push_str("<section id=\"warnings\">\n<h2>Notes and warnings</h2>\n");
    if warnings.is_empty() {
        out.push_str("<p>None: every run complete, no failed request, no cached prompt token, the client never near a core, every file from the same machine and model.</p>\n");
    } else {
        out.push_str("<ul class=\"warnings\">\n");
        for w in warnings {
            out.push_str(&format!("<li>{}</li>\n", escape(w)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// Each figure as inline SVG, with its caption.
fn figures_section(figures: &[Figure], out: &mut String) -> Result<()> {
    out.push_str("<section id=\"figures\">\n<h2>Figures</h2>\n");
    for f in figures {
        let svg = draw::svg(f).map_err(anyhow::Error::msg)?;
        out.push_str(&format!(
            "<figure id=\"{}\">\n<h3>{}</h3>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
            escape(&f.id),
            escape(&f.title),
            strip_xml_declaration(&svg),
            escape(&f.caption)
        ));
    }
    out.push_str("</section>\n");
    Ok(())
}

/// Each file's tables, as the terminal prints them.
fn tables_section(sources: &[Source], out: &mut String) {
    out.push_str("<section id=\"tables\">\n<h2>Tables</h2>\n");
    for s in sources {
        out.push_str(&format!("<h3>{}</h3>\n", escape(&s.label)));
        for t in tables(s) {
            out.push_str(&table_html(&t));
        }
    }
    out.push_str("</section>\n");
}

/// Each file's provenance and settings.
fn provenance_section(sources: &[Source], out: &mut String) {
    out.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n");
    for (label, r) in super::inproc_results(sources) {
        out.push_str(&format!("<h3>{}</h3>\n", escape(&label)));
        out.push_str(&kv_table(&provenance_rows(&r.provenance)));
        out.push_str("<h4>settings</h4>\n");
        out.push_str(&kv_table(&settings_rows(&r.settings)));
    }
    for (label, r) in super::http_results(sources) {
        out.push_str(&format!("<h3>{}</h3>\n", escape(&label)));
        out.push_str(&kv_table(&provenance_rows(&r.provenance)));
        out.push_str("<h4>settings</h4>\n");
        out.push_str(&kv_table(&settings_rows(&r.settings)));
    }
    for s in sources {
        match &s.input {
            Input::Contrast(c) => {
                out.push_str(&format!(
                    "<h3>{} (contrast settings)</h3>\n",
                    escape(&s.label)
                ));
                out.push_str(&kv_table(&settings_rows(&c.settings)));
            }
            Input::Compare(c) => {
                out.push_str(&format!("<h3>{} (compared files)</h3>\n", escape(&s.label)));
                let rows: Vec<(String, String)> = c
                    .sources
                    .iter()
                    .map(|src| {
                        (
                            src.label.clone(),
                            format!(
                                "{} | {} | model {} | host {}",
                                src.path,
                                src.engine,
                                src.model.as_deref().unwrap_or("-"),
                                src.host
                            ),
                        )
                    })
                    .collect();
                out.push_str(&kv_table(&rows));
            }
            _ => {}
        }
    }
    out.push_str("</section>\n");
}

/// An SVG document's body, for inlining in HTML (which allows no XML
/// declaration inside).
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.find("?>").map_or(svg, |i| rest[i + 2..].trim_start()),
        None => svg,
    }
}
