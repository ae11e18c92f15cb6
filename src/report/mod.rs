//! `inferbench report`: result files drawn as figures (SVG or PNG) and one
//! self-contained HTML page, offline.

mod catalog;
mod draw;
pub mod figures;
mod html;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use inferbench_harness::compare::Comparison;
use inferbench_harness::contrast::ContrastResult;
use inferbench_harness::http::point::{RequestLogLine, RequestRecord};
use inferbench_harness::rounds::RoundsResult;
use inferbench_harness::schema::{AnyResult, HttpResult, InprocResult};

use crate::cli::{PlotFormat, ReportArgs};

/// A result file of any kind, read back.
#[derive(Debug, Clone)]
pub enum Input {
    Inproc(Box<InprocResult>),
    Http(Box<HttpResult>),
    Contrast(Box<ContrastResult>),
    Compare(Comparison),
    /// An `http --rounds` file, and per target its rounds pooled into one
    /// served result (the summary's merged points), to be drawn as one.
    Rounds {
        result: Box<RoundsResult>,
        pooled: Vec<(String, HttpResult)>,
    },
}

/// Per target, the first round's result with the pooled points of every load.
fn pooled_targets(r: &RoundsResult) -> Vec<(String, HttpResult)> {
    r.targets
        .iter()
        .enumerate()
        .filter_map(|(t, target)| {
            let mut base = target.rounds.first()?.clone();
            base.points = r
                .summary
                .iter()
                .filter_map(|load| Some(load.targets.get(t)?.pooled.clone()))
                .collect();
            base.notes.clear();
            Some((
                format!(
                    "{} (pooled over {} rounds)",
                    target.url,
                    target.rounds.len()
                ),
                base,
            ))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    /// The file's name without `.json`, or its path when two names clash.
    pub label: String,
    pub input: Input,
}

/// An `http --requests-log` file, its records grouped by point.
#[derive(Debug, Clone)]
pub struct RequestLog {
    pub label: String,
    pub points: BTreeMap<usize, Vec<RequestRecord>>,
    /// Each point's load (`c=8`, `2 req/s`) when a served result given
    /// beside the log has that point.
    pub loads: Vec<String>,
}

/// Reads one result file of any kind, naming the file in every error.
pub fn read_input(path: &Path) -> Result<Input> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    if value.get("comparison_version").is_some() {
        let c: Comparison = serde_json::from_value(value).with_context(|| {
            format!("{}: a comparison file that does not parse", path.display())
        })?;
        return Ok(Input::Compare(c));
    }
    if value.get("mode").and_then(|m| m.as_str()) == Some("rounds") {
        let r: RoundsResult = serde_json::from_value(value)
            .with_context(|| format!("{}: a rounds file that does not parse", path.display()))?;
        let pooled = pooled_targets(&r);
        return Ok(Input::Rounds {
            result: Box::new(r),
            pooled,
        });
    }
    if value.get("mode").and_then(|m| m.as_str()) == Some("contrast") {
        let c: ContrastResult = serde_json::from_value(value)
            .with_context(|| format!("{}: a contrast file that does not parse", path.display()))?;
        return Ok(Input::Contrast(Box::new(c)));
    }
    Ok(match AnyResult::read(path)? {
        AnyResult::Inproc(r) => Input::Inproc(r),
        AnyResult::Http(r) => Input::Http(r),
    })
}

fn read_log(path: &Path, http: &[(String, &HttpResult)]) -> Result<RequestLog> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--requests-log {}: cannot read", path.display()))?;
    let mut points: BTreeMap<usize, Vec<RequestRecord>> = BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line: RequestLogLine<RequestRecord> =
            serde_json::from_str(line).with_context(|| {
                format!(
                    "--requests-log {} line {}: not a request record",
                    path.display(),
                    n + 1
                )
            })?;
        points.entry(line.point).or_default().push(line.record);
    }
    if points.is_empty() {
        anyhow::bail!("--requests-log {}: no requests in it", path.display());
    }
    // A served result beside the log names each point's load.
    let loads = match http {
        [(_, r)] => r.points.iter().map(|p| p.load.label()).collect(),
        _ => Vec::new(),
    };
    Ok(RequestLog {
        label: file_stem(path),
        points,
        loads,
    })
}

fn file_stem(path: &Path) -> String {
    path.file_name()
        .map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
        .trim_end_matches(".json")
        .trim_end_matches(".jsonl")
        .to_string()
}

/// In-process results among the sources, a contrast's own included.
pub fn inproc_results(sources: &[Source]) -> Vec<(String, &InprocResult)> {
    sources
        .iter()
        .filter_map(|s| match &s.input {
            Input::Inproc(r) => Some((s.label.clone(), &**r)),
            Input::Contrast(c) => c
                .inproc
                .as_ref()
                .map(|r| (format!("{} (in-process)", s.label), r)),
            _ => None,
        })
        .collect()
}

/// Served results among the sources, a contrast's own included.
pub fn http_results(sources: &[Source]) -> Vec<(String, &HttpResult)> {
    sources
        .iter()
        .filter_map(|s| match &s.input {
            Input::Http(r) => Some((s.label.clone(), &**r)),
            Input::Contrast(c) => c
                .http
                .as_ref()
                .map(|r| (format!("{} (served)", s.label), r)),
            _ => None,
        })
        .chain(sources.iter().flat_map(|s| {
            match &s.input {
                Input::Rounds { pooled, .. } => pooled
                    .iter()
                    .map(|(label, r)| (format!("{}: {label}", s.label), r))
                    .collect(),
                _ => Vec::new(),
            }
        }))
        .collect()
}

pub fn read_sources(files: &[PathBuf]) -> Result<Vec<Source>> {
    let stems: Vec<String> = files.iter().map(|p| file_stem(p)).collect();
    files
        .iter()
        .zip(&stems)
        .map(|(path, stem)| {
            let clash = stems.iter().filter(|s| *s == stem).count() > 1;
            Ok(Source {
                path: path.clone(),
                label: if clash {
                    path.display().to_string()
                } else {
                    stem.clone()
                },
                input: read_input(path)?,
            })
        })
        .collect()
}

/// One HTML page of `files` at `path` (what `report --html` writes).
pub fn write_page(files: &[PathBuf], path: &Path) -> Result<()> {
    let sources = read_sources(files)?;
    let figures = catalog::figures(&sources, &[]);
    let page = html::page(&sources, &[], &figures)?;
    std::fs::write(path, page).with_context(|| format!("{}: cannot write", path.display()))
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let sources = read_sources(&args.files)?;
    let logs = {
        let http = http_results(&sources);
        args.requests_log
            .iter()
            .map(|p| read_log(p, &http))
            .collect::<Result<Vec<_>>>()?
    };
    let figures = catalog::figures(&sources, &logs);

    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--plots {}: cannot create", dir.display()))?;
        for f in &figures {
            let path = dir.join(format!(
                "{}.{}",
                f.id,
                match args.format {
                    PlotFormat::Svg => "svg",
                    PlotFormat::Png => "png",
                }
            ));
            match args.format {
                PlotFormat::Svg => {
                    let svg = draw::svg(f).map_err(anyhow::Error::msg)?;
                    std::fs::write(&path, svg)
                        .with_context(|| format!("--plots: writing {}", path.display()))?;
                }
                PlotFormat::Png => draw::png(f, &path)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("--plots: writing {}", path.display()))?,
            }
            eprintln!("figure: {}", path.display());
        }
    }
    let html_path = match (&args.html, &args.plots) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => Some(args.files[0].with_extension("html")),
        (None, Some(_)) => None,
    };
    if let Some(path) = html_path {
        let page = html::page(&sources, &logs, &figures)?;
        crate::terminal::make_parent_dir("--html", &path)?;
        std::fs::write(&path, &page)
            .with_context(|| format!("--html {}: cannot write", path.display()))?;
        eprintln!(
            "report: {} ({} figures, {:.0} KiB)",
            path.display(),
            figures.len(),
            page.len() as f64 / 1024.0
        );
    }
    eprintln!("report took {:.2} s", start.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
