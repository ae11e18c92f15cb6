//! `inferbench campaign`: a grid of runs from one TOML file, run cell by
//! cell (as a Slurm array task would) or all that are missing, with a
//! status read from the results directory and one collected summary.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::util::*;

/// Four in-process cells on the tiny model: threads 1, 2 × batch 1, 2.
pub(crate) const TINY: &str = r#"
results = "res"
[base]
command = "inproc"
prompt_tokens = [8]
gen_tokens = 4
runs = 2
warmup = 0
[grid]
threads = [1, 2]
batch = [1, 2]
"#;

pub(crate) fn campaign(args: &[&str], file: &Path) -> std::process::Output {
    let mut cmd = bin();
    cmd.arg("campaign").arg(args[0]).arg(file).args(&args[1..]);
    cmd.output().unwrap()
}

pub(crate) fn ids(file: &Path) -> Vec<String> {
    let o = campaign(&["list"], file);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_campaign_runs_cells_by_id_then_only_what_is_missing_and_collects_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let ids = ids(&file);
    assert_eq!(ids.len(), 4);
    let result = |id: &str| dir.path().join("res").join(format!("{id}.json"));
    for id in &ids {
        let o = campaign(&["run", "--cell", id], &file);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = read_json(&result(id));
        assert_valid_result(&r);
        assert_eq!(r["status"], "complete");
    }
    let threads: Vec<u64> = ids
        .iter()
        .map(|id| {
            read_json(&result(id))["settings"]["spec"]["threads"][0]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(threads, [1, 2, 1, 2], "the grid's last key varies fastest");
    let o = campaign(&["status"], &file);
    assert!(stdout(&o).contains("4 done, 0 failed, 0 interrupted, 0 running, 0 missing"));

    // One result gone: the status says so, and `run` runs that one only.
    std::fs::remove_file(result(&ids[1])).unwrap();
    let kept: Vec<(PathBuf, SystemTime)> = [0, 2, 3]
        .iter()
        .map(|&i| (result(&ids[i]), modified(&result(&ids[i]))))
        .collect();
    let o = campaign(&["status"], &file);
    assert!(
        stdout(&o).contains("3 done, 0 failed, 0 interrupted, 0 running, 1 missing"),
        "{}",
        stdout(&o)
    );
    let o = campaign(&["status", "--todo"], &file);
    assert_eq!(stdout(&o).trim(), ids[1]);
    let o = campaign(&["run"], &file);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_json(&result(&ids[1]))["status"], "complete");
    for (path, before) in kept {
        assert_eq!(modified(&path), before, "{} ran again", path.display());
    }
    let o = campaign(&["status", "--todo"], &file);
    assert_eq!(stdout(&o).trim(), "");

    let o = campaign(&["collect"], &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = std::fs::read_to_string(dir.path().join("res/summary.md")).unwrap();
    for id in &ids {
        assert!(summary.contains(id.as_str()), "{summary}");
    }
    assert!(summary.contains("## TTFT p50, ms") && summary.contains("P=8 B=2"));
    let comparison = read_json(&dir.path().join("res/compare.json"));
    assert_valid_comparison(&comparison);
    assert_eq!(comparison["sources"].as_array().unwrap().len(), 4);
    assert!(dir.path().join("res/report.html").exists());
    assert_database_holds_every_point(&dir.path().join("res/campaign.sqlite"), &ids, |id| {
        read_json(&result(id))
    });
}

/// The collected database has every cell, every point of each cell's
/// result (with the CSV's columns and the whole point as JSON), and its
/// batch-1 points as llama-bench rows, each named with its cell.
fn assert_database_holds_every_point(
    path: &Path,
    ids: &[String],
    result: impl Fn(&str) -> serde_json::Value,
) {
    let db = rusqlite::Connection::open(path).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM cells WHERE state = 'done'"), 4);
    for id in ids {
        let r = result(id);
        let points = r["points"].as_array().unwrap();
        let rows: Vec<(i64, i64, f64, String)> = db
            .prepare(
                "SELECT batch, n_threads, ttft_ms_p50, json FROM inproc_points \
                 WHERE cell = ?1 ORDER BY point",
            )
            .unwrap()
            .query_map([id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), points.len(), "cell {id}");
        for ((batch, threads, ttft_p50, json), point) in rows.iter().zip(points) {
            assert_eq!(*batch, point["batch"].as_i64().unwrap());
            assert_eq!(*threads, point["config"]["n_threads"].as_i64().unwrap());
            assert_eq!(*ttft_p50, point["ttft_ms"]["p50"].as_f64().unwrap());
            let stored: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(stored["ttft_ms"], point["ttft_ms"]);
        }
        let spec: String = db
            .query_row("SELECT spec FROM cells WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
        assert_eq!(spec["threads"], r["settings"]["spec"]["threads"]);
    }
    // A prefill and a decode row for each batch-1 point (llama-bench runs B=1).
    let batch_one = count("SELECT COUNT(*) FROM inproc_points WHERE batch = 1");
    assert_eq!(count("SELECT COUNT(*) FROM llama_bench"), 2 * batch_one);
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM llama_bench l JOIN llama_bench_cells c \
             ON c.llama_bench_rowid = l.rowid JOIN inproc_points p \
             ON p.cell = c.cell AND p.batch = 1 AND p.n_threads = l.n_threads"
        ),
        2 * batch_one
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM points"),
        count("SELECT COUNT(*) FROM inproc_points")
    );
}

#[test]
fn campaign_errors_name_the_cell_and_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, TINY.replace("threads = [1, 2]", "threads = [1, 0]")).unwrap();
    let o = campaign(&["list"], &file);
    assert_clean_failure(&o, 2, "cell batch=1 threads=0");
    std::fs::write(&file, TINY).unwrap();
    let o = campaign(&["run", "--cell", "nope"], &file);
    assert_clean_failure(&o, 2, "--cell nope: no cell");
    let o = campaign(&["list"], &dir.path().join("absent.toml"));
    assert_clean_failure(&o, 1, "absent.toml");
}

#[test]
fn the_committed_campaigns_expand() {
    for name in ["tiny.toml", "gemma.toml"] {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/examples/campaign")
            .join(name);
        assert_eq!(ids(&file).len(), 4, "{name}");
    }
}

/// Ctrl-C in a cell stops the campaign there: that cell's file says
/// `interrupted`, the cells after it stay missing for the next `run`.
#[test]
fn an_interrupt_stops_the_campaign_in_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.toml");
    // Far more runs than the test waits for: only Ctrl-C ends a cell.
    std::fs::write(
        &file,
        TINY.replace("runs = 2", "runs = 100000000")
            .replace("threads = [1, 2]", "threads = [1]"),
    )
    .unwrap();
    let ids = ids(&file);
    let first = dir.path().join("res").join(format!("{}.json", ids[0]));
    let mut child = bin()
        .arg("campaign")
        .arg("run")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !first.exists() || read_json(&first)["points"][0]["runs"].as_u64().unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "no run saved");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(read_json(&first)["status"], "interrupted");
    let second = dir.path().join("res").join(format!("{}.json", ids[1]));
    assert!(!second.exists(), "the next cell did not start");
    let o = campaign(&["status", "--todo"], &file);
    assert_eq!(stdout(&o).split_whitespace().collect::<Vec<_>>(), ids);
}

#[test]
fn a_served_campaign_collects_its_points_and_slices_into_the_database() {
    let server = crate::shards::server(2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("served.toml");
    std::fs::write(
        &file,
        format!(
            r#"
results = "res"
[base]
command = "http"
url = "{}"
workload = "fixed:8:3"
num_requests = 24
slice = "50ms"
[grid]
concurrency = [1, 2]
"#,
            server.url()
        ),
    )
    .unwrap();
    let o = campaign(&["run"], &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = campaign(&["collect"], &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let db = rusqlite::Connection::open(dir.path().join("res/campaign.sqlite")).unwrap();
    for id in ids(&file) {
        let r = read_json(&dir.path().join("res").join(format!("{id}.json")));
        let point = &r["points"][0];
        let (succeeded, concurrency, output_tok_s): (i64, i64, f64) = db
            .query_row(
                "SELECT succeeded, concurrency, output_tok_s FROM http_points WHERE cell = ?1",
                [&id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(succeeded, 24);
        assert_eq!(concurrency, point["load"]["concurrency"].as_i64().unwrap());
        assert_eq!(
            output_tok_s,
            point["output_throughput_tok_s"].as_f64().unwrap()
        );
        let slices: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM http_slices WHERE cell = ?1",
                [&id],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            slices as usize,
            point["slices"]["slices"].as_array().unwrap().len()
        );
        assert!(slices > 0);
    }
    let in_view: i64 = db
        .query_row("SELECT COUNT(*) FROM points WHERE mode = 'http'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(in_view, 2);
}
