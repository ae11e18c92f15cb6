use std::path::Path;
use std::time::Duration;

use inferbench_test_support::mock::{MockServer, Script};
use serde_json::Value;

use crate::util::*;

fn inproc(out: &Path, batches: &str) {
    let o = bin()
        .args(["inproc", "-p", "16", "-n", "4", "-b", batches])
        .args([
            "-r",
            "2",
            "--warmup",
            "0",
            "-t",
            "2",
            "--no-telemetry",
            "--model",
        ])
        .arg(tiny_model())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `load`: `--concurrency N,..` or `--rate R,..`.
fn served(out: &Path, server: &MockServer, workload: &str, load: [&str; 2]) {
    let o = bin()
        .args(["http", "--url", &server.url()])
        .args(load)
        .args(["--num-requests", "4", "--warmup", "1", "--ignore-eos"])
        .args(["--workload", workload, "--no-telemetry", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

fn mock() -> MockServer {
    MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(2),
        itl: Duration::from_millis(1),
        tokens: 4,
        ..Script::default()
    })
    .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn in_process_and_served_points_of_one_shape_line_up_against_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server_file) = (
        dir.path().join("engine.json"),
        dir.path().join("server.json"),
    );
    inproc(&engine, "1,2");
    let server = mock();
    served(
        &server_file,
        &server,
        "fixed:16:4",
        ["--concurrency", "1,2,3"],
    );
    let (out, csv) = (dir.path().join("cmp.json"), dir.path().join("cmp.csv"));

    let o = bin()
        .arg("compare")
        .args([&engine, &server_file])
        .arg("--out")
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("fixed:16:4, 1 in flight"), "{text}");
    assert!(text.contains("fixed:16:4, 2 in flight"), "{text}");
    assert!(text.contains("TTFT p50 vs engine"), "{text}");

    let c = read_json(&out);
    assert_valid_comparison(&c);
    // The statistics are checked by the result schema's definition.
    let mut broken = c.clone();
    broken["groups"][0]["rows"][1]["ttft_ms"]["p50"] = "fast".into();
    assert_eq!(comparison_errors(&broken).len(), 1);
    assert_eq!(c["comparison_version"], 1);
    assert_eq!(c["sources"][0]["label"], "engine");
    assert_eq!(c["sources"][0]["mode"], "inproc");
    assert_eq!(c["sources"][1]["mode"], "http");
    let groups = c["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{c}");
    // A verdict per latency metric of the served row, tested against the
    // in-process one; output rates of different kinds are not tested.
    let sig = &groups[0]["rows"][1]["significance"];
    for m in ["ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"] {
        let t = &sig["tests"][m];
        assert!(
            t["holm_p"].as_f64().unwrap() >= t["mann_whitney_p"].as_f64().unwrap(),
            "{t}"
        );
        assert!(t["verdict"].is_string(), "{m}: {sig}");
    }
    assert!(sig["tests"]["output_tok_s"].is_null(), "{sig}");
    assert!(groups[0]["rows"][0]["significance"].is_null());
    assert!(text.contains("Mann-Whitney p (Holm-adjusted)"), "{text}");
    for (g, n) in groups.iter().zip([1, 2]) {
        assert_eq!(g["shape"]["workload"], "fixed:16:4");
        assert_eq!(g["shape"]["load"]["in_flight"], n);
        let rows = g["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["source"], 0);
        assert_eq!(rows[0]["load"], format!("B={n}"));
        assert!(rows[0].get("vs_first").is_none());
        assert_eq!(rows[1]["source"], 1);
        assert_eq!(rows[1]["load"], format!("c={n}"));
        assert_eq!(rows[1]["requests"]["succeeded"], 4);
        for metric in ["ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"] {
            let (base, other) = (&rows[0][metric], &rows[1][metric]);
            let delta = &rows[1]["vs_first"][metric];
            let f = |v: &Value| v.as_f64().unwrap();
            assert!(close(
                f(&delta["p50_delta"]),
                f(&other["p50"]) - f(&base["p50"])
            ));
            assert!(close(
                f(&delta["p50_ratio"]),
                f(&other["p50"]) / f(&base["p50"])
            ));
            assert!(close(
                f(&delta["p99_delta"]),
                f(&other["p99"]) - f(&base["p99"])
            ));
        }
        let ratio = rows[1]["output_tok_s_ratio"].as_f64().unwrap();
        let tok_s = |r: &Value| r["output_tok_s"].as_f64().unwrap();
        assert!(close(ratio, tok_s(&rows[1]) / tok_s(&rows[0])));
    }
    // Concurrency 3 has no in-process counterpart.
    let unmatched = c["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1, "{c}");
    assert_eq!(unmatched[0]["source"], 1);
    assert_eq!(unmatched[0]["point"], 2);
    assert!(text.contains("without a counterpart: server fixed:16:4 3 in flight"));
    // B=2 prefills both prompts at once; the comparison says so.
    let warnings: Vec<&str> = c["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("at B=2") && w.contains("prefilled together")),
        "{warnings:?}"
    );
    // A handful of runs and requests is no p99: both sides' verdicts are
    // carried, per row, per file and in a warning naming both.
    assert!(c["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rows"].as_array().unwrap())
        .all(|r| r["verdict"]
            .as_str()
            .unwrap()
            .starts_with("not valid: p99 needs 662")));
    assert!(c["sources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["verdict"].as_str().unwrap().starts_with("not valid")));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("not every side is valid")
                && w.contains("engine ")
                && w.contains("server ")),
        "{warnings:?}"
    );

    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4, "{csv}");
    assert!(lines[0].starts_with("workload,in_flight,rate,source"));
    assert!(lines[2].starts_with("fixed:16:4,1,,server,"), "{csv}");
}

#[test]
fn presets_match_their_fixed_lengths_and_clashing_names_become_paths() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock();
    for sub in ["x", "y"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let (a, b) = (dir.path().join("x/r.json"), dir.path().join("y/r.json"));
    served(&a, &server, "short", ["--rate", "50,100"]);
    served(&b, &server, "fixed:10:100", ["--rate", "100"]);
    let out = dir.path().join("cmp.json");
    let o = bin()
        .arg("compare")
        .args([&a, &b])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("fixed:10:100, 100 req/s"),
        "{}",
        stdout(&o)
    );
    let c = read_json(&out);
    assert_valid_comparison(&c);
    assert_eq!(c["groups"].as_array().unwrap().len(), 1);
    assert_eq!(c["groups"][0]["shape"]["load"]["rate"], 100.0);
    assert_eq!(c["unmatched"][0]["shape"]["load"]["rate"], 50.0);
    assert_eq!(c["sources"][0]["label"], a.display().to_string());
    assert_eq!(c["sources"][1]["label"], b.display().to_string());
}

fn compare(files: &[&Path]) -> std::process::Output {
    bin().arg("compare").args(files).output().unwrap()
}

#[test]
fn compare_rejects_what_it_cannot_compare() {
    let dir = tempfile::tempdir().unwrap();
    let engine = dir.path().join("engine.json");
    inproc(&engine, "1");

    // One file is not a comparison.
    let o = compare(&[&engine]);
    assert_clean_failure(&o, 2, "RESULT.json");

    let missing = dir.path().join("missing.json");
    let o = compare(&[&engine, &missing]);
    assert_clean_failure(&o, 1, "missing.json");

    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"hello": 1}"#).unwrap();
    let o = compare(&[&engine, &other]);
    assert_clean_failure(&o, 1, "other.json is not an inferbench result file");

    std::fs::write(&other, "not json").unwrap();
    let o = compare(&[&engine, &other]);
    assert_clean_failure(&o, 1, "not JSON");

    // Nothing in common: different lengths.
    let server = mock();
    let served_file = dir.path().join("served.json");
    served(&served_file, &server, "fixed:20:4", ["--concurrency", "1"]);
    let o = compare(&[&engine, &served_file]);
    assert_clean_failure(&o, 1, "no point has a counterpart");
    assert!(
        stderr(&o).contains("fixed:20:4 1 in flight"),
        "{}",
        stderr(&o)
    );
}

/// The result files committed under docs/examples (measured on real machines,
/// the H100 among them) stay valid against the schemas as they change, and
/// `compare` still reads them: the GPU run's three sources give three rows
/// per shape, with the served rows' GPU telemetry kept in the inputs.
#[test]
fn committed_example_results_fit_the_schemas_and_compare() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let mut checked = 0;
    for dir in [
        examples.clone(),
        examples.join("h100"),
        examples.join("h100/cargo-cuda"),
        examples.join("contrast"),
        examples.join("cache-fix"),
        examples.join("pictures"),
        examples.join("rounds"),
        examples.join("engines"),
        examples.join("roofline"),
        examples.join("same-server"),
    ] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            if value["mode"] == "contrast" {
                assert_valid_contrast(&value);
            } else if value["mode"] == "rounds" {
                assert_valid_rounds(&value);
            } else if value.get("mode").is_some() {
                assert_valid_result(&value);
            } else {
                assert_valid_comparison(&value);
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} example files");

    let h100 = examples.join("h100");
    let served: Value =
        serde_json::from_slice(&std::fs::read(h100.join("serve-llama-server.json")).unwrap())
            .unwrap();
    for point in served["points"].as_array().unwrap() {
        let gpu = &point["telemetry"]["gpus"][0];
        assert!(gpu["samples"].as_u64().unwrap() > 0, "{point}");
        assert!(gpu["power_watts"]["max"].as_f64().unwrap() > 0.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("compare.json");
    let o = bin()
        .arg("compare")
        .arg(h100.join("serve-inproc-greedy.json"))
        .arg(h100.join("serve-inproc-llama-greedy.json"))
        .arg(h100.join("serve-llama-server.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let comparison: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_valid_comparison(&comparison);
    let groups = comparison["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "batch/concurrency 1, 8 and 32");
    for group in groups {
        assert_eq!(group["rows"].as_array().unwrap().len(), 3, "{group}");
    }
}

#[test]
fn merge_adds_requests_of_runs_with_the_same_settings_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock();
    let (a, b, c) = (
        dir.path().join("a.json"),
        dir.path().join("b.json"),
        dir.path().join("c.json"),
    );
    served(&a, &server, "fixed:16:4", ["--concurrency", "1,2"]);
    served(&b, &server, "fixed:16:4", ["--concurrency", "1,2"]);
    served(&c, &server, "fixed:8:4", ["--concurrency", "1,2"]);
    let merged = dir.path().join("m.json");
    let o = bin()
        .arg("merge")
        .args([&a, &b])
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (ra, rb, m) = (read_json(&a), read_json(&b), read_json(&merged));
    assert_valid_result(&m);
    for i in 0..2 {
        let count = |r: &Value, k: &str| r["points"][i]["requests"][k].as_u64().unwrap();
        assert_eq!(
            count(&m, "succeeded"),
            count(&ra, "succeeded") + count(&rb, "succeeded")
        );
        let ttft = |r: &Value| r["points"][i]["ttft_ms"]["count"].as_u64().unwrap();
        assert_eq!(ttft(&m), ttft(&ra) + ttft(&rb));
        // Two runs one after another: their windows add up.
        let d = |r: &Value| r["points"][i]["duration_s"].as_f64().unwrap();
        assert!(
            (d(&m) - d(&ra) - d(&rb)).abs() < 1e-6,
            "{} {} {}",
            d(&m),
            d(&ra),
            d(&rb)
        );
    }
    assert!(m["notes"][0]
        .as_str()
        .unwrap()
        .starts_with("merged from 2 files"));

    let o = bin()
        .arg("merge")
        .args([&a, &c])
        .arg("--out")
        .arg(dir.path().join("bad.json"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "settings.workload differs");
    assert!(stderr(&o).contains("c.json"), "{}", stderr(&o));

    let engine = dir.path().join("engine.json");
    inproc(&engine, "1");
    let o = bin()
        .arg("merge")
        .args([&a, &engine])
        .arg("--out")
        .arg(dir.path().join("bad.json"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "merge files of one mode");
}

#[test]
fn merge_of_in_process_runs_adds_their_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    inproc(&a, "1,2");
    inproc(&b, "1,2");
    let merged = dir.path().join("m.json");
    let o = bin()
        .arg("merge")
        .args([&a, &b])
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let m = read_json(&merged);
    assert_valid_result(&m);
    assert_eq!(m["settings"]["runs"], 4);
    assert_eq!(m["points"][1]["runs"], 4);
    assert_eq!(
        m["points"][1]["ttft_ms"]["count"], 8,
        "2 sequences × 4 runs"
    );
}

#[test]
fn rounds_alternate_targets_on_shared_prompts_and_pair_them() {
    let fast = mock();
    let slow = MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(2),
        itl: Duration::from_millis(6),
        tokens: 4,
        ..Script::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rounds.json");
    let o = bin()
        .args([
            "http",
            "--url",
            &fast.url(),
            "--url",
            &slow.url(),
            "--rounds",
            "3",
        ])
        .args(["--concurrency", "1", "--num-requests", "6", "--warmup", "1"])
        .args(["--workload", "fixed:16:4", "--ignore-eos", "--no-telemetry"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_rounds(&r);
    assert_eq!(r["status"], "complete");
    // A B A B A B, each later than the one before.
    let order: Vec<(u64, u64)> = r["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["round"].as_u64().unwrap(), e["target"].as_u64().unwrap()))
        .collect();
    assert_eq!(order, [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]);
    let starts: Vec<&str> = r["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["started_at"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    // The same prompts for both targets in a round, new ones each round.
    let seed = |t: usize, round: usize| {
        r["targets"][t]["rounds"][round]["settings"]["prompt_seed"].clone()
    };
    assert_eq!(seed(0, 0), seed(1, 0));
    assert_ne!(seed(0, 0), seed(0, 1));
    // Each run's own file lies beside the summary.
    assert!(dir.path().join("rounds.r2.t1.json").exists());
    // The slow server's TPOT is worse in every round: the paired verdict says so.
    let versus = &r["summary"][0]["targets"][1]["versus_first"]["tpot_ms"];
    assert_eq!(versus["verdict"], "worse", "{versus}");
    assert_eq!(versus["per_round"].as_array().unwrap().len(), 3);
    assert!(stdout(&o).contains("paired by round"), "{}", stdout(&o));

    // Closed and open loop in one command: both kinds in every run and in
    // the summary.
    let both = dir.path().join("both.json");
    let o = bin()
        .args([
            "http",
            "--url",
            &fast.url(),
            "--url",
            &slow.url(),
            "--rounds",
            "2",
        ])
        .args([
            "--concurrency",
            "1",
            "--rate",
            "50",
            "--num-requests",
            "4",
            "--warmup",
            "0",
        ])
        .args(["--workload", "fixed:16:4", "--ignore-eos", "--no-telemetry"])
        .arg("--out")
        .arg(&both)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&both);
    assert_valid_rounds(&r);
    let loads: Vec<&str> = r["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["load"].as_str().unwrap())
        .collect();
    assert_eq!(loads, ["c=1", "50 req/s"]);
    // Four requests a point: every run's verdict is in the notes.
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let verdicts = notes
        .iter()
        .filter(|n| n.contains("run verdict: not valid"))
        .count();
    assert_eq!(verdicts, 4, "2 rounds x 2 targets: {notes:?}");
}

#[test]
fn plan_sizes_replicas_from_a_committed_sweep_and_refuses_what_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples/pictures/gemma-llama-server.json");
    let out = dir.path().join("plan.json");
    let o = bin()
        .arg("plan")
        .arg(&sweep)
        .args(["--target-rate", "10", "--headroom", "0.2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let p = read_json(&out);
    assert_valid_plan(&p);
    // Sixteen requests a point: too few for the early-stopping rule.
    assert_eq!(p["capacity_decided_by"], "point_estimate");
    assert!(
        stdout(&o).contains(
            "by its point estimate only: 16 requests, where a p99 at 99% confidence needs 459"
        ),
        "{}",
        stdout(&o)
    );
    // The capacity is a measured point that met the file's SLO.
    let r = read_json(&sweep);
    let capacity = p["capacity_req_s"].as_f64().unwrap();
    let point = r["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["request_throughput_req_s"].as_f64() == Some(capacity))
        .expect("the capacity is a measured point");
    let limit = r["settings"]["slo"]["ttft_ms"].as_f64().unwrap();
    assert!(point["ttft_ms"]["p99"].as_f64().unwrap() <= limit);
    let replicas = p["replicas"].as_u64().unwrap();
    assert_eq!(replicas, (10.0 / (capacity * 0.8)).ceil() as u64);
    assert!(
        stdout(&o).contains(&format!("replicas: {replicas}")),
        "{}",
        stdout(&o)
    );

    let inproc_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/pictures/gemma-inproc.json");
    let o = bin()
        .arg("plan")
        .arg(&inproc_file)
        .args(["--target-rate", "1"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "plan reads a served sweep");
    let o = bin()
        .arg("plan")
        .arg(&sweep)
        .args(["--target-rate", "0"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "a rate must be positive");
}

#[test]
fn find_max_concurrency_doubles_then_bisects_on_whole_numbers() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    // TTFT grows with the requests started in the last 30 ms: the more in
    // flight, the slower, as a server with a fixed compute budget.
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let server = MockServer::start(move |_, _| {
        let mut s = starts.lock().unwrap();
        let now = Instant::now();
        s.retain(|t| now.duration_since(*t) < Duration::from_millis(30));
        s.push(now);
        let n = s.len() as u64;
        Script {
            ttft: Duration::from_millis(n * n),
            itl: Duration::from_millis(1),
            tokens: 4,
            ..Script::default()
        }
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("search.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--find-max-concurrency"])
        .args([
            "--slo",
            "ttft=40ms",
            "--num-requests",
            "16",
            "--warmup",
            "0",
        ])
        .args([
            "--workload",
            "fixed:8:4",
            "--ignore-eos",
            "--no-telemetry",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let search = &r["max_concurrency"];
    let best = search["max_concurrency"].as_u64().expect("c=1 meets 40 ms");
    let failing = search["lowest_failing_concurrency"]
        .as_u64()
        .expect("the search went past the boundary");
    assert!(failing > best, "{search}");
    let probed: Vec<u64> = r["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["load"]["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(probed.len() as u64, search["probes"].as_u64().unwrap());
    assert_eq!(&probed[..2], &[1, 2], "doubling from 1: {probed:?}");
    assert!(probed.len() <= 12);
}

/// A server that is slow on every 50th request: 2% over a 40 ms TTFT
/// limit, so its p99 misses it. Sixteen requests per probe cannot see
/// that: by their point estimate the search finds c=7. With
/// `--max-requests-per-probe` the first probe, undecided by MLPerf
/// LoadGen's early-stopping rule after 16 requests, is extended until the
/// rule fails it at 99% confidence: no concurrency meets the SLO.
/// (Requests are numbered by arrival, so the counts are exact whatever the
/// timing.)
#[test]
fn searches_call_probes_by_the_early_stopping_rule_and_extend_undecided_ones() {
    // A fresh server per search: its request numbers start at 0.
    let server = || {
        MockServer::start(|n, _| Script {
            ttft: Duration::from_millis(if (n + 1) % 50 == 0 { 60 } else { 1 }),
            itl: Duration::from_millis(1),
            tokens: 2,
            ..Script::default()
        })
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let search = |out: &Path, extra: &[&str]| {
        let server = server();
        let o = bin()
            .args(["http", "--url", &server.url(), "--find-max-concurrency"])
            .args([
                "--slo",
                "ttft=40ms",
                "--num-requests",
                "16",
                "--warmup",
                "0",
            ])
            .args(["--workload", "fixed:8:2", "--ignore-eos", "--no-telemetry"])
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let r = read_json(out);
        assert_valid_result(&r);
        (r, stdout(&o))
    };

    let by_estimate = dir.path().join("estimate.json");
    let (r, text) = search(&by_estimate, &[]);
    let answer = &r["max_concurrency"];
    assert_eq!(answer["max_concurrency"], 7, "{answer}");
    assert_eq!(answer["lowest_failing_concurrency"], 8, "{answer}");
    // Every probe of 16 requests was undecided, so called by its estimate.
    assert_eq!(answer["probes"], 6, "{answer}");
    assert_eq!(answer["called_by_estimate"], 6, "{answer}");
    assert_eq!(answer["confidence"], 0.99);
    assert!(answer.get("max_requests_per_probe").is_none(), "{answer}");
    for p in r["points"].as_array().unwrap() {
        assert_eq!(p["requests"]["total"], 16);
        assert_eq!(p["slo_verdict"]["decision"], "undecided", "{p}");
    }
    assert!(
        text.contains("6 of the probes called by their point estimate"),
        "{text}"
    );
    assert!(
        text.contains("SLO p99 at 99% confidence: undecided"),
        "{text}"
    );

    let by_rule = dir.path().join("rule.json");
    let (r, text) = search(&by_rule, &["--max-requests-per-probe", "1000"]);
    let answer = &r["max_concurrency"];
    assert!(answer["max_concurrency"].is_null(), "{answer}");
    assert_eq!(answer["lowest_failing_concurrency"], 1, "{answer}");
    assert_eq!(answer["called_by_estimate"], 0, "{answer}");
    assert_eq!(answer["max_requests_per_probe"], 1000);
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "one probe, extended");
    let p = &points[0];
    // 16, then the 443 a pass needs: requests 50, 100, ..., 450 over, 9
    // of 459 (P[Bin(459, 0.01) ≥ 9] = 0.04: not yet a fail), then the
    // 541 left under the cap: 20 of 1000 over, a fail.
    assert_eq!(p["requests"]["total"], 1000, "{p}");
    assert_eq!(p["num_requests_planned"], 1000);
    let verdict = &p["slo_verdict"];
    assert_eq!(verdict["decision"], "fail", "{verdict}");
    assert_eq!(verdict["objectives"][0]["metric"], "ttft_ms");
    assert_eq!(verdict["objectives"][0]["over"], 20, "{verdict}");
    assert!(text.contains("SLO p99 at 99% confidence: fail"), "{text}");
    // The spec keeps the cap, and the flag is refused where it means nothing.
    assert_eq!(r["settings"]["spec"]["max_requests_per_probe"], 1000);
    for (args, needle) in [
        (
            vec!["--concurrency", "1", "--max-requests-per-probe", "500"],
            "--max-requests-per-probe",
        ),
        (
            vec![
                "--find-max-concurrency",
                "--slo",
                "ttft=40ms",
                "--num-requests",
                "100",
                "--max-requests-per-probe",
                "50",
            ],
            "50 is below the 100 requests",
        ),
    ] {
        let o = bin()
            .args(["http", "--url", "http://127.0.0.1:9"])
            .args(&args)
            .output()
            .unwrap();
        assert_clean_failure(&o, 2, needle);
    }
}
