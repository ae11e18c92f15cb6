//! `inferbench contrast`: in-process and served on the same token ids, the
//! layer table, and a server started by inferbench that never outlives it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use inferbench_harness::workload::{batch_prompts, Phase, PromptStream};
use inferbench_test_support::mock::{MockServer, Script};
use serde_json::Value;

use crate::util::*;

fn scripted() -> MockServer {
    MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(4),
        itl: Duration::from_millis(1),
        tokens: 4,
        llama_server: true,
        ..Script::default()
    })
    .unwrap()
}

fn fake_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-llama-server")
}

fn contrast_args(out: &Path) -> Vec<String> {
    [
        "contrast",
        "--model",
        &tiny_model().display().to_string(),
        "-t",
        "1",
        "-p",
        "16",
        "-n",
        "4",
        "-c",
        "1,2",
        "--requests",
        "6",
        "--warmup",
        "1",
        "--seed",
        "5",
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The token ids the in-process engine decodes for `point` at `batch` over
/// `runs` measured runs.
fn inproc_prompts(point: u32, batch: u32, runs: u32) -> HashSet<Vec<i32>> {
    let runtime = inferbench_ffi::Runtime::get(true).unwrap();
    let vocab = inferbench_ffi::LoadedModel::load_vocab(runtime, tiny_model())
        .unwrap()
        .prompt_vocab();
    let stream = PromptStream::new(5, point, Phase::Measured);
    (0..runs)
        .flat_map(|run| batch_prompts(&vocab, batch, 16, &stream, run).unwrap())
        .collect()
}

fn sent_prompt(body: &Value) -> Vec<i32> {
    body["prompt"]
        .as_array()
        .expect("a token-id prompt")
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect()
}

#[test]
fn contrast_against_the_scripted_server_sends_the_in_process_token_ids() {
    let server = scripted();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.json");
    let o = bin()
        .args(contrast_args(&out))
        .args(["--url", &server.url()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_contrast(&r);
    assert_eq!(r["status"], "complete");
    assert_eq!(r["partial"], false);
    let shapes = r["shapes"].as_array().unwrap();
    assert_eq!(shapes.len(), 2);
    for (shape, c) in shapes.iter().zip([1, 2]) {
        assert_eq!(shape["sequences"], c);
        let layers: Vec<&str> = shape["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["layer"].as_str().unwrap())
            .collect();
        assert_eq!(layers, ["engine", "server", "client"]);
        let server_row = &shape["layers"][1];
        // The scripted server says its prompt took the scripted 4 ms.
        assert!((server_row["ttft_ms"]["p50"].as_f64().unwrap() - 4.0).abs() < 0.01);
        assert_eq!(shape["overheads"].as_array().unwrap().len(), 3);
        let client_over_server = &shape["overheads"][1];
        assert_eq!(client_over_server["upper"], "client");
        let ttft = &client_over_server["ttft"];
        let (low, high) = (
            ttft["difference_ci"]["low"].as_f64().unwrap(),
            ttft["difference_ci"]["high"].as_f64().unwrap(),
        );
        let d = ttft["difference"].as_f64().unwrap();
        assert!(low <= d && d <= high, "{ttft}");
        // In-process decodes at least 3 runs' prompts; served, 6 requests.
        assert_eq!(
            shape["layers"][0]["independent_values"],
            6u32.div_ceil(c).max(3)
        );
        assert_eq!(shape["layers"][2]["independent_values"], 6);
    }
    // Every served prompt is one the in-process engine decoded at the same
    // point, none twice, and the warm-ups are others again.
    let truth = server.all_truth();
    assert_eq!(truth.len(), 2 * (6 + 1));
    let sent: Vec<Vec<i32>> = truth.iter().map(|t| sent_prompt(&t.body)).collect();
    let distinct: HashSet<&Vec<i32>> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "a prompt was sent twice");
    let decoded: HashSet<Vec<i32>> = inproc_prompts(0, 1, 6)
        .into_iter()
        .chain(inproc_prompts(1, 2, 3))
        .collect();
    let served_in_process = sent.iter().filter(|p| decoded.contains(*p)).count();
    assert_eq!(
        served_in_process,
        2 * 6,
        "measured requests send the in-process ids"
    );
    assert!(sent.iter().all(|p| p.len() == 16));
    // Both runs whole, valid result files of their own modes.
    assert_valid_result(&r["inproc"]);
    assert_valid_result(&r["http"]);
    assert_eq!(r["http"]["settings"]["prompt_seed"], 5);
    assert_eq!(
        r["http"]["provenance"]["model"]["sha256"],
        r["inproc"]["provenance"]["model"]["sha256"]
    );
    for p in r["http"]["points"].as_array().unwrap() {
        assert!(
            p["prompt_cache"]["cached_fraction"].as_f64().unwrap() < 0.01,
            "{p}"
        );
        // Token ids go as sent: the server counts exactly the prompt.
        assert_eq!(p["prompt_token_check"]["requests_differing"], 0, "{p}");
    }
    let table = stdout(&o);
    assert!(table.contains("inside the server"), "{table}");
    assert!(table.contains("client − server"), "{table}");
}

fn pid_alive(pid: u32) -> bool {
    // A reaped child has no /proc entry; a zombie would still read as one.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn contrast_starts_llama_server_and_stops_it_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let (out, pidfile, argsfile) = (
        dir.path().join("c.json"),
        dir.path().join("pid"),
        dir.path().join("args"),
    );
    let o = bin()
        .args(contrast_args(&out))
        .arg("--server")
        .arg(format!("llama-server={}", fake_server().display()))
        .env("FAKE_LLAMA_SERVER_PIDFILE", &pidfile)
        .env("FAKE_LLAMA_SERVER_ARGS", &argsfile)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let pid = read_pid(&pidfile).expect("the server wrote its pid");
    assert!(!pid_alive(pid), "llama-server (pid {pid}) outlived the run");
    let args = std::fs::read_to_string(&argsfile).unwrap();
    let args: Vec<&str> = args.lines().collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--host"), "127.0.0.1");
    assert_eq!(
        after("-np"),
        "2",
        "as many slots as the largest concurrency"
    );
    assert_eq!(after("-t"), "1");
    assert_eq!(after("-m"), tiny_model().display().to_string());
    let r = read_json(&out);
    assert_valid_contrast(&r);
    assert_eq!(r["settings"]["server"], "llama-server");
    assert_eq!(
        r["settings"]["server_command"][0],
        fake_server().display().to_string()
    );
    assert!(dir.path().join("c.server.log").is_file());
}

#[test]
fn contrast_stops_its_server_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let (out, pidfile) = (dir.path().join("c.json"), dir.path().join("pid"));
    let o = bin()
        .args(contrast_args(&out))
        .arg("--server")
        .arg(format!("llama-server={}", fake_server().display()))
        .env("FAKE_LLAMA_SERVER_PIDFILE", &pidfile)
        .env("FAKE_LLAMA_SERVER_FAIL", "all")
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "warm-up failed");
    let pid = read_pid(&pidfile).expect("the server wrote its pid");
    assert!(
        !pid_alive(pid),
        "llama-server (pid {pid}) outlived the failed run"
    );
    let r = read_json(&out);
    assert_valid_contrast(&r);
    assert_eq!(r["status"], "failed");
    assert!(
        r["error"].as_str().unwrap().contains("HTTP 500"),
        "{}",
        r["error"]
    );
    assert!(
        r["inproc"]["points"].as_array().unwrap().len() == 2,
        "in-process kept"
    );
}

#[test]
fn contrast_stops_its_server_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (out, pidfile) = (dir.path().join("c.json"), dir.path().join("pid"));
    let child = bin()
        .args(contrast_args(&out))
        .arg("--server")
        .arg(format!("llama-server={}", fake_server().display()))
        .env("FAKE_LLAMA_SERVER_PIDFILE", &pidfile)
        .env("FAKE_LLAMA_SERVER_DELAY_MS", "300")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = KillOnDrop(Some(child));
    let start = Instant::now();
    let pid = loop {
        if let Some(pid) = read_pid(&pidfile) {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let requests reach the server, then interrupt inferbench alone (not
    // its process group: the server must be stopped by inferbench).
    std::thread::sleep(Duration::from_millis(800));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        !pid_alive(pid),
        "llama-server (pid {pid}) outlived the interrupted run"
    );
    let r = read_json(&out);
    assert_valid_contrast(&r);
    assert_eq!(r["status"], "interrupted");
}

#[test]
fn contrast_refuses_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.json");
    let o = bin()
        .args(contrast_args(&out))
        .args(["--server", "vllm"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "llama-server=PATH");
    let o = bin()
        .args(contrast_args(&out))
        .args(["--server", "llama-server=/nonexistent/llama-server"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "/nonexistent/llama-server");
    let o = bin().args(contrast_args(&out)).output().unwrap();
    assert_clean_failure(&o, 2, "--server");
}
