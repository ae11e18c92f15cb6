//! Specs through the binary: every measuring command records the spec it
//! ran, `spec` prints it, `run` runs a spec file and `rerun` runs a result's
//! spec again into a new file with an equal `settings.spec`.

use std::time::Duration;

use inferbench_test_support::mock::{MockServer, Script};

use crate::util::*;

fn tiny_inproc(out: &std::path::Path) -> std::process::Output {
    bin()
        .args(["inproc", "--model"])
        .arg(tiny_model())
        .args([
            "-p", "8,12", "-n", "3", "-b", "1,2", "-r", "2", "--warmup", "0",
        ])
        .args([
            "-t",
            "1",
            "--seed",
            "5",
            "--no-telemetry",
            "--sampler",
            "llama-greedy",
        ])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn inproc_rerun_runs_the_recorded_spec_again() {
    let dir = tempfile::tempdir().unwrap();
    let (first, again) = (dir.path().join("first.json"), dir.path().join("again.json"));
    let o = tiny_inproc(&first);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&first);
    assert_valid_result(&r);
    let spec = &r["settings"]["spec"];
    assert_eq!(spec["command"], "inproc");
    assert_eq!(spec["prompt_tokens"], serde_json::json!([8, 12]));
    assert_eq!(spec["batch"], serde_json::json!([1, 2]));
    assert_eq!(spec["sampler"], "llama-greedy");
    assert_eq!(spec["telemetry"], false);
    assert_eq!(spec["threads"], serde_json::json!([1]));

    let o = bin()
        .arg("rerun")
        .arg(&first)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rerun = read_json(&again);
    assert_valid_result(&rerun);
    assert_eq!(rerun["settings"]["spec"], *spec);
    assert_eq!(rerun["points"].as_array().unwrap().len(), 4);
    assert_eq!(rerun["status"], "complete");
    // The first file is untouched.
    assert_eq!(read_json(&first), r);
}

#[test]
fn spec_prints_toml_that_run_runs() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.json");
    let o = tiny_inproc(&first);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bin().arg("spec").arg(&first).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = stdout(&o);
    assert!(toml.contains("command = \"inproc\""), "{toml}");
    assert!(toml.contains("batch = ["), "{toml}");

    // A person edits it: one batch size, one prompt length.
    let edited = toml
        .lines()
        .map(|l| {
            if l.starts_with("batch") {
                "batch = [2]".to_string()
            } else if l.starts_with("prompt_tokens") {
                "prompt_tokens = [8]".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let spec_file = dir.path().join("edited.toml");
    std::fs::write(&spec_file, &edited).unwrap();
    let (out, csv) = (
        dir.path().join("edited.json"),
        dir.path().join("edited.csv"),
    );
    let o = bin()
        .arg("run")
        .arg(&spec_file)
        .arg("--out")
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["batch"], 2);
    assert_eq!(points[0]["prompt_tokens"], 8);
    assert_eq!(r["settings"]["spec"]["batch"], serde_json::json!([2]));
    assert!(std::fs::read_to_string(&csv).unwrap().lines().count() == 2);

    // JSON works as well as TOML.
    let o = bin().args(["spec", "--json"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json, r["settings"]["spec"]);
}

#[test]
fn http_rerun_gives_an_equal_spec_and_fresh_prompts() {
    let server = MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(2),
        itl: Duration::from_millis(1),
        tokens: 4,
        ..Script::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (first, again) = (dir.path().join("first.json"), dir.path().join("again.json"));
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1,2"])
        .args([
            "--num-requests",
            "6,8",
            "--warmup",
            "1",
            "--workload",
            "fixed:16:4",
        ])
        .args(["--rate", "50", "--arrival", "gamma", "--burstiness", "0.5"])
        .args(["--slo", "ttft=2s", "--timeout", "20s", "--no-telemetry"])
        .arg("--out")
        .arg(&first)
        .output();
    let o = o.unwrap();
    // Three load levels, two counts: refused at parse time.
    assert_clean_failure(&o, 2, "--num-requests: 2 values for 3 load levels");
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1,2"])
        .args([
            "--num-requests",
            "6,8",
            "--warmup",
            "1",
            "--workload",
            "fixed:16:4",
        ])
        .args(["--slo", "ttft=2s", "--timeout", "20s", "--no-telemetry"])
        .arg("--out")
        .arg(&first)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&first);
    assert_valid_result(&r);
    let spec = &r["settings"]["spec"];
    assert_eq!(spec["command"], "http");
    assert_eq!(spec["url"], server.url());
    assert_eq!(spec["num_requests"], "6,8");
    assert_eq!(spec["timeout"], "20s");
    assert_eq!(spec["slo"]["ttft_ms"], 2000.0);
    assert!(spec.get("prompt_seed").is_none(), "{spec}");

    let o = bin()
        .arg("rerun")
        .arg(&first)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rerun = read_json(&again);
    assert_valid_result(&rerun);
    assert_eq!(rerun["settings"]["spec"], *spec);
    let counts: Vec<u64> = rerun["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"]["succeeded"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [6, 8]);
    // No prompt seed in the spec: the rerun drew new prompts, so that a
    // server's prefix cache cannot answer it from the first run.
    assert_ne!(
        rerun["settings"]["prompt_seed"],
        r["settings"]["prompt_seed"]
    );
}

#[test]
fn rerun_refuses_a_file_without_a_spec_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    // A result as builds before specs wrote it: no settings.spec.
    let first = dir.path().join("first.json");
    let o = tiny_inproc(&first);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut r = read_json(&first);
    r["settings"].as_object_mut().unwrap().remove("spec");
    std::fs::write(&old, r.to_string()).unwrap();
    for command in ["rerun", "spec"] {
        let o = bin().arg(command).arg(&old).output().unwrap();
        assert_clean_failure(&o, 2, "old.json: records no spec");
    }
    let o = bin()
        .arg("rerun")
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "missing.json");
}

#[test]
fn run_refuses_a_bad_spec_file_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "typo.toml",
            "command = \"inproc\"\nbatchs = [1]\n",
            "typo.toml: unknown key batchs",
        ),
        (
            "zero.toml",
            "command = \"inproc\"\nbatch = [0]\n",
            "zero.toml: --batch: the batch list contains 0",
        ),
        (
            "kind.toml",
            "command = \"nope\"\n",
            "kind.toml: command = \"nope\" is not a spec's command",
        ),
        (
            "csv.toml",
            "command = \"contrast\"\nurl = \"http://127.0.0.1:9\"\n",
            "--csv: a contrast spec",
        ),
    ];
    for (name, text, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let o = bin()
            .arg("run")
            .arg(&path)
            .arg("--csv")
            .arg(dir.path().join("x.csv"))
            .output()
            .unwrap();
        assert_clean_failure(&o, 2, needle);
    }
}

#[test]
fn the_committed_schemas_are_the_generated_ones() {
    let names = [
        "spec",
        "result",
        "compare",
        "contrast",
        "rounds",
        "plan",
        "requests-log",
    ];
    for name in names {
        let file = format!("schema/{name}.schema.json");
        let committed =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&file))
                .unwrap();
        let o = bin().args(["schema", name]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o) == committed,
            "{file} differs from the types: regenerate the schemas with \
             `for n in {}; do cargo run --release -- schema $n > schema/$n.schema.json; done`",
            names.join(" ")
        );
    }
    let o = bin().arg("schema").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for name in names {
        assert!(stdout(&o).contains(name), "{}", stdout(&o));
    }
}

/// The generated result schema is closed: a key the types do not know is
/// an error wherever it is, the spec's included (whose variants are closed
/// through their references), and `mode` picks the shape a file is held to.
#[test]
fn the_result_schema_refuses_unknown_keys_and_the_wrong_mode() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples/grid/gemma-fa-depth.json");
    let result = read_json(&example);
    assert_eq!(result_errors(&result), Vec::<String>::new());
    assert_eq!(result["settings"]["spec"]["command"], "inproc");

    for pointer in [
        "",
        "/settings",
        "/settings/spec",
        "/points/0/config",
        "/provenance/tool",
    ] {
        let mut broken = result.clone();
        broken
            .pointer_mut(pointer)
            .and_then(|v| v.as_object_mut())
            .unwrap()
            .insert("no_such_key".into(), 1.into());
        let errors = result_errors(&broken);
        assert_eq!(errors.len(), 1, "{pointer}: {errors:?}");
        assert!(errors[0].contains("no_such_key"), "{pointer}: {errors:?}");
    }
    let mut http = result.clone();
    http["mode"] = "http".into();
    assert!(
        result_errors(&http).iter().any(|e| e.contains("/settings")),
        "an in-process file read as http must fail on its settings"
    );
}
