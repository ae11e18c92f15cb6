use crate::util::*;

/// Runs `inproc` on the tiny model with `args` appended.
fn inproc(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args(["inproc", "-r", "1", "-n", "2", "--model"])
        .arg(tiny_model())
        .arg("--out")
        .arg(dir.path().join("r.json"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn usage_errors_exit_2_with_the_flag_named() {
    let cases: &[(&[&str], &str)] = &[
        (&["--batch", ""], "the batch list is empty"),
        (&["--batch", "1,x"], "'x' in the batch list"),
        (&["--batch", "0"], "contains 0"),
        (&["--batch", "2,2"], "repeats 2"),
        (&["--prompt-tokens", "-5"], "'-5'"),
        (&["--threads", "0"], "--threads"),
        (&["--runs", "0"], "--runs"),
        (&["--gen-tokens", "0"], "--gen-tokens"),
        (&["--n-gpu-layers", "-2"], "--n-gpu-layers"),
        (&["--bogus"], "unexpected argument '--bogus'"),
    ];
    for (args, needle) in cases {
        let o = inproc(args);
        assert_clean_failure(&o, 2, needle);
    }
}

#[test]
fn impossible_runs_fail_before_measuring() {
    // The tiny model's context is 4096 tokens per sequence.
    let o = inproc(&["--prompt-tokens", "4096", "--gen-tokens", "2"]);
    assert_clean_failure(&o, 1, "needs 4097 tokens of context per sequence");
    let o = inproc(&["--batch", "257"]);
    assert_clean_failure(&o, 1, "at most 256 sequences");
}

#[test]
fn bad_models_are_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.gguf");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    for (model, needle) in [(&missing, "no such file"), (&text, "not a GGUF file")] {
        let o = bin()
            .args(["inproc", "--model"])
            .arg(model)
            .arg("--out")
            .arg(dir.path().join("r.json"))
            .output()
            .unwrap();
        assert_clean_failure(&o, 1, needle);
        assert!(stderr(&o).contains(&model.display().to_string()));
        assert!(
            !dir.path().join("r.json").exists(),
            "no result file for a run that never started"
        );
    }
}

#[test]
fn unwritable_output_is_reported() {
    let o = inproc(&["--out", "/proc/inferbench-cannot-write/r.json"]);
    assert_clean_failure(&o, 1, "--out /proc/inferbench-cannot-write/r.json");
}

/// Regression: errors printed their cause twice ("...: Is a directory (os
/// error 21): Is a directory (os error 21)"), once in their own message and
/// once more as the source anyhow walks.
#[test]
fn an_error_prints_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    std::fs::create_dir(&out).unwrap();
    let o = bin()
        .args([
            "inproc", "-r", "1", "-n", "2", "-p", "8", "-b", "1", "--model",
        ])
        .arg(tiny_model())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "writing result file");
    let err = stderr(&o);
    assert_eq!(err.matches("os error 21").count(), 1, "{err}");
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, "garbage").unwrap();
    let o = bin().args(["model", "inspect"]).arg(&bad).output().unwrap();
    assert_clean_failure(&o, 1, "not a GGUF file");
    assert_eq!(stderr(&o).matches("bad magic").count(), 1, "{}", stderr(&o));
}

/// Regression: `--arrival gamma --burstiness 1e308 --rate 2` passed, its gaps
/// overflowed and a spawned task panicked, leaving a point with no requests
/// and exit 0. Out-of-range values are usage errors now.
#[test]
fn arrival_values_out_of_range_are_usage_errors() {
    for (args, needle) in [
        (
            &["--arrival", "gamma", "--burstiness", "1e308", "--rate", "2"][..],
            "--burstiness",
        ),
        (
            &["--arrival", "gamma", "--burstiness", "0", "--rate", "2"][..],
            "outside 0.001 to 1000",
        ),
        (
            &["--rate", "1e300"][..],
            "above 1000000 requests per second",
        ),
    ] {
        let o = bin()
            .args(["http", "--url", "http://127.0.0.1:9"])
            .args(args)
            .output()
            .unwrap();
        assert_clean_failure(&o, 2, needle);
    }
}
