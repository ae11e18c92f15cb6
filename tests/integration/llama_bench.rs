//! llama-bench rows (`inproc --llama-bench-out`, `export`), read back by
//! llama.cpp's own scripts/compare-llama-bench.py from the pinned sdist's
//! tree (scripts/servers/install-compare-llama-bench, which CI runs).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// llama-bench's fields (b11434 `test::get_fields`), then its samples.
const FIELDS: [&str; 44] = [
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "cpu_mask",
    "cpu_strict",
    "poll",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "n_cpu_moe",
    "split_mode",
    "main_gpu",
    "no_kv_offload",
    "flash_attn",
    "devices",
    "tensor_split",
    "tensor_buft_overrides",
    "load_mode",
    "lazy_mode",
    "embeddings",
    "no_op_offload",
    "no_host",
    "repack",
    "fit_target",
    "fit_min_ctx",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "samples_ns",
    "samples_ts",
];

/// The comparison script and the Python that has its libraries, where
/// install-compare-llama-bench put them.
fn compare_script() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/servers/compare-llama-bench");
    let (script, python) = (
        dir.join("compare-llama-bench.py"),
        dir.join("venv/bin/python"),
    );
    (script.is_file() && python.is_file()).then_some((script, python))
}

fn compare(script: &Path, python: &Path, inputs: &[&Path], cwd: &Path) -> String {
    let mut cmd = Command::new(python);
    // The script guesses the tool from SQLite files only.
    cmd.arg(script)
        .args(["--tool", "llama-bench"])
        .current_dir(cwd);
    for input in inputs {
        cmd.arg("-i").arg(input);
    }
    let o = cmd
        .args(["-b", "base001", "-c", "cmp0001"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "compare-llama-bench.py {inputs:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn export(result: &Path, out: &Path, commit: &str) {
    let o = bin()
        .arg("export")
        .arg(result)
        .arg("--llama-bench-out")
        .arg(out)
        .args(["--llama-bench-commit", commit])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn llama_bench_rows_match_the_points_and_llama_cpps_script_compares_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = bin()
        .args([
            "inproc", "-p", "16", "-n", "5", "-b", "1,2", "--fa", "off,on",
        ])
        .args([
            "-r",
            "3",
            "--warmup",
            "0",
            "-t",
            "2",
            "--no-telemetry",
            "--model",
        ])
        .arg(tiny_model())
        .arg("--out")
        .arg(d.join("a.json"))
        .arg("--llama-bench-out")
        .arg(d.join("a-rows.json"))
        .args(["--llama-bench-commit", "base001"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("llama-bench rows: 4 in"), "{err}");
    assert!(
        err.contains("no row for pp16 tg5 B2 d0: llama-bench has no batch of sequences"),
        "{err}"
    );

    let result = read_json(&d.join("a.json"));
    assert_valid_result(&result);
    let rows = read_json(&d.join("a-rows.json"));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "pp and tg for fa off and on");
    let points: Vec<&Value> = result["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["batch"] == 1)
        .collect();
    let devices = &result["provenance"]["engine"]["device_names"];
    assert!(!devices["cpu_info"].as_str().unwrap().is_empty());
    for (i, row) in rows.iter().enumerate() {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted_fields = FIELDS.to_vec();
        sorted_fields.sort_unstable();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(
            sorted_keys, sorted_fields,
            "row {i}: every llama-bench field, no other"
        );
        let point = points[i / 2];
        let config = &point["config"];
        let is_pp = i % 2 == 0;
        assert_eq!(row["build_commit"], "base001");
        assert_eq!(row["cpu_info"], devices["cpu_info"]);
        assert_eq!(row["backends"], "CPU");
        assert_eq!(row["model_filename"], config["model"]);
        let model_type = row["model_type"].as_str().unwrap();
        assert!(
            !model_type.is_empty() && model_type != "unknown",
            "llama_model_desc: {model_type}"
        );
        assert_eq!(row["model_type"], config["model_type"]);
        assert_eq!(row["model_size"], point["memory"]["model_bytes"]);
        assert_eq!(row["n_threads"], 2);
        assert_eq!(row["n_batch"], config["n_batch"]);
        assert_eq!(row["n_ubatch"], config["n_ubatch"]);
        assert_eq!(row["type_k"], "f16");
        assert_eq!(row["no_kv_offload"], false);
        assert_eq!(row["load_mode"], "mmap");
        let fa = if config["flash_attn"] == "on" { 1 } else { 0 };
        assert_eq!(row["flash_attn"], fa);
        assert_eq!(fa, i64::from(i >= 2), "fa off's rows first");
        let samples = &point["run_samples"];
        let (n_prompt, n_gen, n_depth, expected) = if is_pp {
            (16, 0, 0, &samples["prefill_ns"])
        } else {
            (0, 4, 16, &samples["decode_ns"])
        };
        assert_eq!(
            (&row["n_prompt"], &row["n_gen"], &row["n_depth"]),
            (&n_prompt.into(), &n_gen.into(), &n_depth.into())
        );
        assert_eq!(&row["samples_ns"], expected);
        let ns: Vec<u64> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(ns.len(), 3, "one sample per measured run");
        assert_eq!(row["avg_ns"], ns.iter().sum::<u64>() / 3);
        let tokens = f64::from(n_prompt + n_gen);
        let ts: Vec<f64> = ns.iter().map(|&t| 1e9 * tokens / t as f64).collect();
        let avg_ts = ts.iter().sum::<f64>() / 3.0;
        assert!((row["avg_ts"].as_f64().unwrap() - avg_ts).abs() < 1e-3 * avg_ts);
        // The same runs as the point's own statistics: the prefill's mean,
        // and the decode steps' (sampling excluded) over their count.
        let mean_ms = ns.iter().sum::<u64>() as f64 / 3.0 / 1e6;
        if is_pp {
            let prefill = point["prefill_ms"]["mean"].as_f64().unwrap();
            assert!(
                (prefill - mean_ms).abs() < 1e-6 * prefill,
                "{prefill} vs {mean_ms}"
            );
        } else {
            let step = point["decode_step_ms"]["mean"].as_f64().unwrap();
            assert!(
                (step * 4.0 - mean_ms).abs() < 1e-6 * mean_ms,
                "{step} vs {mean_ms}"
            );
        }
    }

    // `export` writes the same rows from the result file.
    export(&d.join("a.json"), &d.join("again.json"), "base001");
    assert_eq!(
        &read_json(&d.join("again.json")).as_array().unwrap()[..],
        rows
    );

    // A second measurement of the same cells, through `rerun`.
    let o = bin()
        .arg("rerun")
        .arg(d.join("a.json"))
        .arg("--out")
        .arg(d.join("b.json"))
        .arg("--llama-bench-out")
        .arg(d.join("b-rows.json"))
        .args(["--llama-bench-commit", "cmp0001"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for (run, commit) in [("a", "base001"), ("b", "cmp0001")] {
        for ext in ["jsonl", "csv", "sql"] {
            export(
                &d.join(format!("{run}.json")),
                &d.join(format!("{run}-rows.{ext}")),
                commit,
            );
        }
    }
    let csv = std::fs::read_to_string(d.join("a-rows.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), FIELDS[..42].join(","));
    assert_eq!(lines.count(), 4);
    let sql = std::fs::read_to_string(d.join("a-rows.sql")).unwrap();
    assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS llama_bench (\n  build_commit TEXT,"));
    assert_eq!(sql.matches("INSERT INTO llama_bench (").count(), 4);

    let Some((script, python)) = compare_script() else {
        // CI installs it (.ci/run): there, its absence is a failure.
        assert!(
            std::env::var("CI").is_err(),
            "CI must have compare-llama-bench.py (scripts/servers/install-compare-llama-bench)"
        );
        eprintln!("skipped: run scripts/servers/install-compare-llama-bench for the script");
        return;
    };
    // JSONL and SQLite are one file each, as llama-bench appends to them.
    let jsonl = d.join("ab.jsonl");
    let both = [d.join("a-rows.jsonl"), d.join("b-rows.jsonl")]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    std::fs::write(&jsonl, both).unwrap();
    let sqlite = d.join("ab.sqlite");
    let o = Command::new(&python)
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             [c.executescript(open(f).read()) for f in sys.argv[2:]]; c.commit()",
        ])
        .arg(&sqlite)
        .arg(d.join("a-rows.sql"))
        .arg(d.join("b-rows.sql"))
        .output()
        .unwrap();
    assert!(o.status.success(), "sqlite3: {}", stderr(&o));

    let (a, b) = (d.join("a-rows"), d.join("b-rows"));
    let tables = [
        compare(
            &script,
            &python,
            &[&a.with_extension("json"), &b.with_extension("json")],
            d,
        ),
        compare(
            &script,
            &python,
            &[&a.with_extension("csv"), &b.with_extension("csv")],
            d,
        ),
        compare(&script, &python, &[&jsonl], d),
        compare(&script, &python, &[&sqlite], d),
    ];
    for table in &tables {
        let lines: Vec<&str> = table.lines().filter(|l| l.starts_with('|')).collect();
        // A header, its rule, and fa off and on for pp16 and tg4@d16.
        assert_eq!(lines.len(), 6, "{table}");
        assert!(lines[0].contains("FlashAttention"), "{table}");
        assert!(
            lines[0].contains("t/s base001") && lines[0].contains("t/s cmp0001"),
            "{table}"
        );
        for test in ["pp16", "tg4@d16"] {
            assert_eq!(
                lines.iter().filter(|l| l.contains(test)).count(),
                2,
                "{table}"
            );
        }
    }
    // Every format gives the same table.
    assert!(tables.iter().all(|t| t == &tables[0]), "{tables:#?}");
}

#[test]
fn export_refuses_what_has_no_rows_and_a_format_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    // Written before per-run samples were kept: nothing to export.
    let old = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/grid/gemma-fa-depth.json");
    let o = bin()
        .arg("export")
        .arg(&old)
        .arg("--llama-bench-out")
        .arg(dir.path().join("rows.json"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "its file predates per-run samples");
    assert!(!dir.path().join("rows.json").exists());

    let o = bin()
        .arg("export")
        .arg(&old)
        .arg("--llama-bench-out")
        .arg(dir.path().join("rows.sqlite"))
        .output()
        .unwrap();
    assert_clean_failure(
        &o,
        2,
        "rows.sqlite: the extension must be .json, .jsonl, .csv or .sql",
    );

    let o = bin()
        .args(["inproc", "--llama-bench-out", "rows.txt"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "--llama-bench-out");
}
