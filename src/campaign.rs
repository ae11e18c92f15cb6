//! `inferbench campaign`: a grid of runs from one TOML file
//! ([`inferbench_core::spec::campaign`]), each cell's result
//! `<results>/<id>.json`, so that the results directory says what is done
//! and a rerun runs only what is missing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use inferbench_core::spec::campaign::{Campaign, CampaignError, Cell};
use inferbench_harness::contrast::read_sources;
use inferbench_harness::schema::validity::JudgedPoint;
use inferbench_harness::schema::AnyResult;

use crate::campaign_db::CellRecord;
use crate::cli::{usage, CampaignCommand, Outputs};
use crate::table::Table;

/// `collect`'s database of every point, beside the cells' results.
pub const DATABASE: &str = "campaign.sqlite";

/// A cell's state, from its result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Done,
    Failed,
    Interrupted,
    Running,
    Missing,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Done => "done",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
            State::Running => "running",
            State::Missing => "missing",
        }
    }

    /// What `campaign run` without `--cell` runs: a file being written may
    /// be another process's run.
    fn to_run(self) -> bool {
        matches!(self, State::Failed | State::Interrupted | State::Missing)
    }
}

fn state(path: &Path) -> State {
    let Ok(text) = std::fs::read_to_string(path) else {
        return State::Missing;
    };
    let status = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string));
    match status.as_deref() {
        Some("complete") => State::Done,
        Some("running") => State::Running,
        Some("interrupted") => State::Interrupted,
        // A failed run, or a file that is not a result (cut short by a crash).
        _ => State::Failed,
    }
}

fn read(file: &Path) -> Result<Campaign> {
    Campaign::read(file).map_err(|e| match e {
        CampaignError::Io { .. } => e.into(),
        other => usage(other.to_string()),
    })
}

pub fn run(command: CampaignCommand) -> Result<ExitCode> {
    match command {
        CampaignCommand::List { file } => list(&read(&file)?),
        CampaignCommand::Run { file, cell } => run_cells(&read(&file)?, cell.as_deref()),
        CampaignCommand::Status { file, todo, gpus } => status(&read(&file)?, todo, gpus),
        CampaignCommand::Collect { file } => collect(&read(&file)?),
    }
}

fn list(c: &Campaign) -> Result<ExitCode> {
    for cell in &c.cells {
        println!("{}  {:<8}  {}", cell.id, cell.spec.command(), cell.label);
    }
    eprintln!(
        "{} cells; results in {}",
        c.cells.len(),
        c.results.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_one(c: &Campaign, cell: &Cell) -> Result<ExitCode> {
    std::fs::create_dir_all(&c.results)
        .with_context(|| format!("creating {}", c.results.display()))?;
    eprintln!("campaign: cell {} ({})", cell.id, cell.label);
    let outputs = Outputs {
        out: Some(c.result_path(cell)),
        ..Outputs::default()
    };
    crate::specs::run(cell.spec.clone(), &outputs)
}

fn run_cells(c: &Campaign, only: Option<&str>) -> Result<ExitCode> {
    if let Some(id) = only {
        let cell = c.cell(id).ok_or_else(|| {
            let ids: Vec<&str> = c.cells.iter().map(|c| c.id.as_str()).collect();
            usage(format!(
                "--cell {id}: no cell of {} has that id (its cells: {})",
                c.path.display(),
                ids.join(", ")
            ))
        })?;
        return run_one(c, cell);
    }
    let mut worst = ExitCode::SUCCESS;
    let mut failed = Vec::new();
    for cell in &c.cells {
        match state(&c.result_path(cell)) {
            s if s.to_run() => {}
            State::Running => {
                eprintln!(
                    "campaign: cell {} is being written (running): left to the process writing it; `campaign run --cell {}` runs it anyway",
                    cell.id, cell.id
                );
                continue;
            }
            _ => continue,
        }
        // One cell's failure is its file's to say; the others still run.
        // An interrupt stops the campaign: its cell's file says so, and the
        // cells after it are left missing for the next `campaign run`.
        match run_one(c, cell) {
            Ok(code) if code == ExitCode::SUCCESS => {}
            Ok(code) if code == ExitCode::from(crate::exit::INTERRUPTED) => {
                eprintln!(
                    "campaign: interrupted in cell {}; the cells after it are left to the next `campaign run`",
                    cell.id
                );
                return Ok(code);
            }
            Ok(code) => {
                failed.push(cell.id.clone());
                worst = code;
            }
            Err(e) => {
                eprintln!("campaign: cell {} failed: {e:#}", cell.id);
                failed.push(cell.id.clone());
                worst = ExitCode::FAILURE;
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("campaign: cells that failed: {}", failed.join(", "));
    }
    Ok(worst)
}

fn status(c: &Campaign, todo: bool, gpus: bool) -> Result<ExitCode> {
    let states: Vec<(&Cell, State)> = c
        .cells
        .iter()
        .map(|cell| (cell, state(&c.result_path(cell))))
        .collect();
    if todo {
        for (cell, s) in &states {
            match (s.to_run(), gpus) {
                (true, false) => println!("{}", cell.id),
                (true, true) => println!("{} {}", cell.id, cell.gpus),
                (false, _) => {}
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(
        format!("campaign {}", c.path.display()),
        &["cell", "state", "command", "gpus", "what"],
        1,
    );
    for (cell, s) in &states {
        table.rows.push(vec![
            cell.id.clone(),
            s.name().into(),
            cell.spec.command().into(),
            cell.gpus.to_string(),
            cell.label.clone(),
        ]);
    }
    print!("{}", table.markdown());
    let count = |want: State| states.iter().filter(|(_, s)| *s == want).count();
    println!(
        "{} done, {} failed, {} interrupted, {} running, {} missing; results in {}",
        count(State::Done),
        count(State::Failed),
        count(State::Interrupted),
        count(State::Running),
        count(State::Missing),
        c.results.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Each point of a cell's result: (its label, the metric's value).
type Values = Vec<(String, Option<f64>)>;

/// A metric of one point.
type Column = fn(&PointSummary) -> Option<f64>;

/// What the summary tables show of a point, in either mode.
struct PointSummary {
    label: String,
    ttft_p50_ms: Option<f64>,
    itl_p50_ms: Option<f64>,
    output_tok_s: Option<f64>,
    valid: bool,
}

impl PointSummary {
    fn of(r: &AnyResult) -> Vec<PointSummary> {
        match r {
            AnyResult::Inproc(r) => r
                .points
                .iter()
                .map(|p| PointSummary {
                    label: p.point_label(),
                    ttft_p50_ms: p.ttft_ms.as_ref().map(|s| s.p50),
                    itl_p50_ms: p.itl_ms.as_ref().map(|s| s.p50),
                    output_tok_s: p.throughput_tok_s.as_ref().map(|s| s.mean),
                    valid: p.judged().reasons.is_empty(),
                })
                .collect(),
            AnyResult::Http(r) => r
                .points
                .iter()
                .map(|p| PointSummary {
                    label: p.point_label(),
                    ttft_p50_ms: p.ttft_judged_ms().map(|s| s.p50),
                    itl_p50_ms: p.itl_ms.as_ref().map(|s| s.p50),
                    output_tok_s: Some(p.output_throughput_tok_s),
                    valid: p.judged().reasons.is_empty(),
                })
                .collect(),
        }
    }
}

/// How a metric's value is printed.
type Format<'a> = &'a dyn Fn(f64) -> String;

fn collect(c: &Campaign) -> Result<ExitCode> {
    // A contrast cell's file holds two runs: each is a row of the summary.
    let done: Vec<(&Cell, PathBuf, Vec<AnyResult>)> = c
        .cells
        .iter()
        .filter_map(|cell| {
            let path = c.result_path(cell);
            (state(&path) == State::Done)
                .then(|| read_sources(&path).ok())
                .flatten()
                .map(|sources| (cell, path, sources.into_iter().map(|(_, r)| r).collect()))
        })
        .collect();
    let summary = summary(c, &done);
    let summary_path = c.results.join("summary.md");
    std::fs::write(&summary_path, &summary)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    print!("{summary}");

    let files: Vec<PathBuf> = done.iter().map(|(_, p, _)| p.clone()).collect();
    if files.len() >= 2 {
        let mut sources = Vec::new();
        for path in &files {
            sources.extend(read_sources(path)?);
        }
        let comparison = inferbench_harness::compare::compare(&sources);
        let path = c.results.join("compare.json");
        std::fs::write(&path, serde_json::to_string_pretty(&comparison)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("compare: {}", path.display());
    }
    let page = c.results.join("report.html");
    crate::report::write_page(&files, &page)?;
    eprintln!("report: {}", page.display());

    let records = cell_records(c, &done);
    let database = c.results.join(DATABASE);
    let written = crate::campaign_db::write(&database, &records)?;
    eprintln!(
        "database: {} ({} cells, {} points, {} llama-bench rows)",
        database.display(),
        written.cells,
        written.points,
        written.llama_bench_rows
    );
    eprintln!("summary: {}", summary_path.display());
    Ok(ExitCode::SUCCESS)
}

/// The campaign's summary in Markdown: a table per metric, a row per
/// (cell, run), a column per point label.
fn summary(c: &Campaign, done: &[(&Cell, PathBuf, Vec<AnyResult>)]) -> String {
    let number = |v: f64| format!("{v:.2}");
    let verdict = |v: f64| if v > 0.5 { "valid" } else { "not valid" }.to_string();
    let metrics: [(&str, Column, Format); 4] = [
        ("TTFT p50, ms", |p| p.ttft_p50_ms, &number),
        ("ITL p50, ms", |p| p.itl_p50_ms, &number),
        ("output throughput, tokens/s", |p| p.output_tok_s, &number),
        ("verdict", |p| Some(f64::from(u8::from(p.valid))), &verdict),
    ];
    let points: Vec<(&Cell, String, Vec<PointSummary>)> = done
        .iter()
        .flat_map(|(cell, _, results)| {
            results.iter().map(move |r| {
                let what = if results.len() > 1 {
                    format!("{} [{}]", cell.label, r.mode())
                } else {
                    cell.label.clone()
                };
                (*cell, what, PointSummary::of(r))
            })
        })
        .collect();
    let mut summary = format!(
        "# Campaign {}\n\n{} of {} cells done.\n",
        c.path.display(),
        done.len(),
        c.cells.len()
    );
    for (title, column, format) in metrics {
        // Columns: every point label any cell has, in first-seen order.
        let mut labels: Vec<String> = Vec::new();
        let rows: Vec<(&Cell, &String, Values)> = points
            .iter()
            .map(|(cell, what, ps)| {
                (
                    *cell,
                    what,
                    ps.iter().map(|p| (p.label.clone(), column(p))).collect(),
                )
            })
            .collect();
        for (_, _, values) in &rows {
            for (label, _) in values {
                if !labels.contains(label) {
                    labels.push(label.clone());
                }
            }
        }
        let mut header = vec!["cell", "what"];
        header.extend(labels.iter().map(String::as_str));
        let mut table = Table::new(title, &header, 2);
        for (cell, what, values) in rows {
            let mut row = vec![cell.id.clone(), what.clone()];
            for label in &labels {
                row.push(
                    values
                        .iter()
                        .find(|(l, _)| l == label)
                        .and_then(|(_, v)| *v)
                        .map_or_else(|| "-".into(), format),
                );
            }
            table.rows.push(row);
        }
        summary.push_str(&format!("\n## {title}\n\n{}", table.markdown()));
    }
    summary
}

/// Every cell's row of the database: its state, file and results (a done
/// cell whose file does not read counts as failed).
fn cell_records<'a>(
    c: &'a Campaign,
    done: &'a [(&'a Cell, PathBuf, Vec<AnyResult>)],
) -> Vec<CellRecord<'a>> {
    c.cells
        .iter()
        .map(|cell| {
            let file = c.result_path(cell);
            let results = done
                .iter()
                .find(|(done, _, _)| done.id == cell.id)
                .map_or(&[][..], |(_, _, r)| &r[..]);
            // A done cell whose file does not read counts as failed.
            let state = match results {
                [_, ..] => State::Done,
                [] => match state(&file) {
                    State::Done => State::Failed,
                    other => other,
                },
            };
            CellRecord {
                cell,
                state: state.name(),
                file,
                results,
            }
        })
        .collect()
}
