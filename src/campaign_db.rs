//! `campaign collect`'s SQLite database: every point of every finished cell,
//! openable with `sqlite3` (and `compare-llama-bench.py` for its
//! `llama_bench` table).
//!
//! Tables:
//! - `cells`: every cell of the campaign, done or not, with its spec (JSON);
//! - `inproc_points`, `http_points`: one row per point, with the columns of
//!   `--csv` (`points_table`), its cell, its label, its verdict and the
//!   whole point as JSON (`json_extract(json, '$.…')` reaches any field);
//! - `http_slices`: the served points' time slices;
//! - `llama_bench`: the in-process points as llama-bench's own SQL rows
//!   (its table, unchanged), and `llama_bench_cells` naming each row's cell;
//! - `points`, a view of both modes' headline figures side by side.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use inferbench_core::spec::campaign::Cell;
use inferbench_harness::llama_bench_export::{self, BuildLabel};
use inferbench_harness::schema::validity::JudgedPoint;
use inferbench_harness::schema::AnyResult;
use rusqlite::types::Value;
use rusqlite::{params, Connection, Transaction};

use crate::points_table::{self, PointsTable};

/// One cell as the database records it.
pub struct CellRecord<'a> {
    pub cell: &'a Cell,
    /// `done`, `failed`, `missing`, ... as `campaign status` says.
    pub state: &'static str,
    pub file: PathBuf,
    /// Its runs, for a cell that is done (a contrast has two).
    pub results: &'a [AnyResult],
}

/// What went into the database.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub cells: usize,
    pub points: usize,
    pub llama_bench_rows: usize,
}

/// A CSV cell as SQLite stores it: empty is NULL, numbers are numbers.
fn value(cell: &str) -> Value {
    if cell.is_empty() {
        Value::Null
    } else if let Ok(i) = cell.parse::<i64>() {
        Value::Integer(i)
    } else if let Ok(f) = cell.parse::<f64>() {
        Value::Real(f)
    } else {
        Value::Text(cell.to_string())
    }
}

fn verdict<P: JudgedPoint>(point: &P) -> (String, String) {
    let judged = point.judged();
    let verdict = if judged.reasons.is_empty() {
        "valid"
    } else {
        "not valid"
    };
    (verdict.to_string(), judged.reasons.join("; "))
}

fn quoted(column: &str) -> String {
    format!("\"{}\"", column.replace('"', "\"\""))
}

/// `CREATE TABLE name (lead..., table's columns..., trail...)`, columns
/// untyped so that each value keeps the type [`value`] gave it.
fn create(
    tx: &Transaction,
    name: &str,
    lead: &[&str],
    table: &PointsTable,
    trail: &[&str],
) -> Result<()> {
    let columns: Vec<String> = lead
        .iter()
        .map(|c| c.to_string())
        .chain(table.columns.iter().map(|c| quoted(c)))
        .chain(trail.iter().map(|c| c.to_string()))
        .collect();
    tx.execute_batch(&format!("CREATE TABLE {name} ({});", columns.join(", ")))
        .with_context(|| format!("creating table {name}"))
}

/// Inserts `table`'s rows, each after its `lead` values and before its
/// `trail` ones.
fn insert(
    tx: &Transaction,
    name: &str,
    table: &PointsTable,
    lead: impl Fn(usize) -> Vec<Value>,
    trail: impl Fn(usize) -> Vec<Value>,
) -> Result<()> {
    for (i, row) in table.rows.iter().enumerate() {
        let values: Vec<Value> = lead(i)
            .into_iter()
            .chain(row.iter().map(|c| value(c)))
            .chain(trail(i))
            .collect();
        let marks = vec!["?"; values.len()].join(", ");
        tx.execute(
            &format!("INSERT INTO {name} VALUES ({marks})"),
            rusqlite::params_from_iter(values),
        )
        .with_context(|| format!("inserting into {name}"))?;
    }
    Ok(())
}

/// Writes the database at `path`, whole or not at all (a temporary file
/// renamed over it).
pub fn write(path: &Path, cells: &[CellRecord]) -> Result<Written> {
    inferbench_core::atomic_file::write_whole(path, |tmp| -> Result<Written> {
        let mut connection =
            Connection::open(tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let written = fill(&mut connection, cells)?;
        connection
            .close()
            .map_err(|(_, e)| e)
            .with_context(|| format!("closing {}", tmp.display()))?;
        Ok(written)
    })
    .with_context(|| format!("writing {}", path.display()))
}

fn fill(connection: &mut Connection, cells: &[CellRecord]) -> Result<Written> {
    let tx = connection.transaction()?;
    let mut written = Written::default();
    tx.execute_batch(
        "CREATE TABLE cells (id TEXT PRIMARY KEY, command TEXT, label TEXT, state TEXT, \
         file TEXT, verdict TEXT, spec TEXT);
         CREATE TABLE llama_bench_cells (llama_bench_rowid INTEGER, cell TEXT);",
    )?;
    // The column lists come from empty tables, so that a campaign without
    // one mode still has its table.
    let lead = [
        "cell TEXT",
        "point INTEGER",
        "label TEXT",
        "verdict TEXT",
        "reasons TEXT",
    ];
    create(
        &tx,
        "inproc_points",
        &lead,
        &points_table::inproc(&[]),
        &["json TEXT"],
    )?;
    create(
        &tx,
        "http_points",
        &lead,
        &points_table::http(&[]),
        &["json TEXT"],
    )?;
    create(
        &tx,
        "http_slices",
        &["cell TEXT"],
        &points_table::http_slices(&[]),
        &[],
    )?;
    // llama-bench's own table, even when no cell runs in process.
    tx.execute_batch(&llama_bench_export::render(
        &[],
        llama_bench_export::Format::Sql,
    ))?;

    for record in cells {
        let cell = record.cell;
        let spec = serde_json::to_string(&cell.spec)?;
        // Valid only when each of its runs is.
        let verdicts: Vec<Option<&str>> = record
            .results
            .iter()
            .map(|r| match r {
                AnyResult::Inproc(r) => r.validity.as_ref(),
                AnyResult::Http(r) => r.validity.as_ref(),
            })
            .map(|v| v.map(|v| v.verdict.as_str()))
            .collect();
        let run_verdict = match verdicts.as_slice() {
            [] => None,
            all if all.iter().all(|v| *v == Some("valid")) => Some("valid"),
            _ => Some("not valid"),
        };
        tx.execute(
            "INSERT INTO cells VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                cell.id,
                cell.spec.command(),
                cell.label,
                record.state,
                record.file.display().to_string(),
                run_verdict,
                spec
            ],
        )?;
        written.cells += 1;
        for result in record.results {
            insert_result(&tx, &cell.id, result, &mut written)?;
        }
    }
    tx.execute_batch(
        "CREATE VIEW points AS
           SELECT cell, point, 'inproc' AS mode, label, verdict,
                  ttft_ms_p50, itl_ms_p50, tpot_ms_p50, e2e_ms_p50,
                  throughput_tok_s_mean AS output_tok_s
             FROM inproc_points
           UNION ALL
           SELECT cell, point, 'http', label, verdict,
                  ttft_ms_p50, itl_ms_p50, tpot_ms_p50, e2e_ms_p50, output_tok_s
             FROM http_points;",
    )?;
    tx.commit()?;
    Ok(written)
}

/// `points` into `name`: each row led by its cell, index, label and
/// verdict, and closed by the point as JSON.
fn insert_points<P: JudgedPoint + serde::Serialize>(
    tx: &Transaction,
    name: &str,
    cell: &str,
    points: &[P],
    table: &PointsTable,
) -> Result<()> {
    let mut lead = Vec::with_capacity(points.len());
    let mut json = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let (verdict, reasons) = verdict(p);
        lead.push(vec![
            Value::Text(cell.to_string()),
            Value::Integer(i64::try_from(i)?),
            Value::Text(p.point_label()),
            Value::Text(verdict),
            Value::Text(reasons),
        ]);
        json.push(vec![Value::Text(serde_json::to_string(p)?)]);
    }
    insert(tx, name, table, |i| lead[i].clone(), |i| json[i].clone())
}

/// One run's points, slices and llama-bench rows, under its cell's id.
fn insert_result(
    tx: &Transaction,
    cell: &str,
    result: &AnyResult,
    written: &mut Written,
) -> Result<()> {
    match result {
        AnyResult::Inproc(r) => {
            let table = points_table::inproc(&r.points);
            insert_points(tx, "inproc_points", cell, &r.points, &table)?;
            written.points += r.points.len();

            let build = BuildLabel::for_tool_commit(r.provenance.tool.git_commit.as_deref());
            let export = llama_bench_export::rows(r, &build);
            let before: i64 = tx.query_row(
                "SELECT COALESCE(MAX(rowid), 0) FROM llama_bench",
                [],
                |row| row.get(0),
            )?;
            tx.execute_batch(&llama_bench_export::render(
                &export.rows,
                llama_bench_export::Format::Sql,
            ))?;
            tx.execute(
                "INSERT INTO llama_bench_cells SELECT rowid, ?1 FROM llama_bench WHERE rowid > ?2",
                params![cell, before],
            )?;
            written.llama_bench_rows += export.rows.len();
        }
        AnyResult::Http(r) => {
            let table = points_table::http(&r.points);
            insert_points(tx, "http_points", cell, &r.points, &table)?;
            let slices = points_table::http_slices(&r.points);
            let id = [Value::Text(cell.to_string())];
            insert(tx, "http_slices", &slices, |_| id.to_vec(), |_| Vec::new())?;
            written.points += r.points.len();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_keep_their_types() {
        assert_eq!(value(""), Value::Null);
        assert_eq!(value("12"), Value::Integer(12));
        assert_eq!(value("1.5"), Value::Real(1.5));
        assert_eq!(value("true"), Value::Text("true".into()));
        assert_eq!(value("q8_0"), Value::Text("q8_0".into()));
    }
}
