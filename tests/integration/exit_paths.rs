//! Every exit after the result file was first written leaves it final:
//! failures injected at each stage of a run (a write that fails after the
//! first point, before it, during one, a later point's warm-up failing)
//! must end as `failed` with the error, the points measured before kept.

use std::time::Duration;

use inferbench_test_support::mock::{Fault, MockServer, Script};

use crate::util::*;

fn fast(tokens: u32) -> Script {
    Script {
        ttft: Duration::from_millis(2),
        itl: Duration::from_millis(1),
        tokens,
        ..Script::default()
    }
}

/// The run failed cleanly and its file says so, with `points` measured.
fn assert_failed(out: &std::path::Path, o: &std::process::Output, needle: &str, points: usize) {
    assert_clean_failure(o, 1, needle);
    let r = read_json(out);
    assert_valid_result(&r);
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_eq!(r["partial"], true);
    let error = r["error"].as_str().unwrap();
    assert!(error.contains(needle), "{needle:?} not in {error:?}");
    assert_eq!(r["points"].as_array().unwrap().len(), points, "{r:#}");
}

#[test]
fn inproc_a_write_failing_after_a_point_leaves_a_failed_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    // A directory where the CSV should go: the first point's save fails.
    let csv = dir.path().join("csv-is-a-directory");
    std::fs::create_dir(&csv).unwrap();
    let o = bin()
        .args([
            "inproc", "-p", "8", "-n", "4", "-b", "1,2", "-r", "1", "--warmup", "0",
        ])
        .arg("--model")
        .arg(tiny_model())
        .arg("--out")
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert_failed(&out, &o, "csv-is-a-directory", 1);
}

#[test]
fn http_failures_at_every_stage_leave_a_failed_result() {
    let server = MockServer::start(|_, _| fast(3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let run = |extra: &[&str], url: &str| {
        bin()
            .args(["http", "--url", url, "--concurrency", "1,2"])
            .args(["--num-requests", "4", "--warmup", "2"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };

    // Before the first point: the first save's CSV cannot be written.
    let csv = dir.path().join("csv-dir");
    std::fs::create_dir(&csv).unwrap();
    let o = run(&["--csv", csv.to_str().unwrap()], &server.url());
    assert_failed(&out, &o, "csv-dir", 0);

    // After the first point: its vLLM-format file cannot be written.
    let export = dir.path().join("missing-dir").join("v.json");
    let o = run(&["--export-vllm", export.to_str().unwrap()], &server.url());
    assert_failed(&out, &o, "--export-vllm", 1);

    // During a point: the requests log cannot be written.
    let o = run(&["--requests-log", "/dev/full"], &server.url());
    assert_failed(&out, &o, "--requests-log", 1);

    // A later point's warm-up fails: the first point is kept.
    let failing_later = MockServer::start(|n, _| Script {
        fault: (n >= 6).then_some(Fault::Status(500)),
        ..fast(3)
    })
    .unwrap();
    let o = run(&[], &failing_later.url());
    assert_failed(&out, &o, "warm-up failed", 1);
    assert_eq!(read_json(&out)["points"][0]["requests"]["succeeded"], 4);
}
