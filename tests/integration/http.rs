use std::process::Stdio;
use std::time::{Duration, Instant};

use inferbench_test_support::mock::{Fault, MockServer, Script};

use crate::util::*;

fn fast(tokens: u32) -> Script {
    Script {
        ttft: Duration::from_millis(3),
        itl: Duration::from_millis(1),
        tokens,
        ..Script::default()
    }
}

#[test]
fn closed_loop_sweep_writes_points_log_and_csv() {
    let server = MockServer::start(|_, _| fast(6)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, log, csv) = (
        dir.path().join("r.json"),
        dir.path().join("req.jsonl"),
        dir.path().join("r.csv"),
    );
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--concurrency",
            "1,4",
            "--num-requests",
            "12",
        ])
        .args([
            "--warmup",
            "3",
            "--workload",
            "fixed:20:6",
            "--ignore-eos",
            "--slo",
            "ttft=5s,tpot=1s",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--requests-log")
        .arg(&log)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The live progress is drawn on a terminal only: none in captured stderr.
    assert!(!stderr(&o).contains("TTFT p50 "), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\r'), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["mode"], "http");
    assert_eq!(r["status"], "complete");
    // 12 requests are far from the 662 a p99 needs: the table marks it and
    // each point's verdict says so.
    let table = stdout(&o);
    assert!(
        table.contains("verdict: not valid: p99 needs 662 requests from 12 requests"),
        "{table}"
    );
    assert!(table.contains('*'), "{table}");
    let validity = &r["points"][0]["validity"];
    assert_eq!(validity["observations"], 12);
    assert_eq!(validity["observation"], "request");
    let p99_ttft = validity["percentiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "ttft_ms" && c["percentile"] == "p99")
        .unwrap();
    assert_eq!(p99_ttft["needed"], 662);
    assert_eq!(p99_ttft["met"], false);
    assert_eq!(r["partial"], false);
    assert_eq!(
        r["settings"]["model"], "mock-model",
        "model taken from /v1/models"
    );
    assert_eq!(
        r["provenance"]["server"]["models"]["data"][0]["id"],
        "mock-model"
    );
    assert_eq!(r["provenance"]["server"]["system_fingerprint"], "mock-fp");
    assert_eq!(r["settings"]["busy_poll"], false);
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (p, c) in points.iter().zip([1, 4]) {
        assert_eq!(p["load"]["kind"], "closed");
        assert_eq!(p["load"]["concurrency"], c);
        assert_eq!(p["requests"]["total"], 12);
        assert_eq!(p["requests"]["succeeded"], 12);
        assert_eq!(p["ttft_ms"]["count"], 12);
        assert_eq!(p["itl_ms"]["count"], 12 * 5);
        assert_eq!(p["output_tokens"]["mean"], 6.0);
        assert_eq!(p["slo_met"], 12);
        assert!(
            p["ttft_from_scheduled_ms"].is_null(),
            "closed loop has no schedule"
        );
        assert!(p["client"]["cpu_percent"].as_f64().is_some());
        assert_eq!(p["client"]["preconnected"], c);
        // Every measured request found a preconnected connection idle.
        assert_eq!(p["client"]["connections_opened"], 0);
        assert!(p["telemetry"]["logical_cores"].as_u64().unwrap() >= 1);
    }
    // Warm-up (3 per point) reached the server but not the statistics or the log.
    assert_eq!(server.requests(), 2 * (12 + 3));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24);
    lines.iter().for_each(assert_valid_requests_log_line);
    assert_eq!(lines.iter().filter(|l| l["point"] == 1).count(), 12);
    assert!(lines
        .iter()
        .all(|l| l["ok"] == true && l["content_ms"].as_array().unwrap().len() == 6));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 3);
    assert!(stdout(&o).contains("c=4"));
}

#[test]
fn open_loop_point_reports_schedule_and_corrected_ttft() {
    let server = MockServer::start(|_, _| fast(3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args([
            "http",
            "--url",
            &format!("{}/v1", server.url()),
            "--rate",
            "40",
            "--arrival",
            "gamma",
        ])
        .args([
            "--burstiness",
            "0.5",
            "--num-requests",
            "20",
            "--warmup",
            "0",
            "--endpoint",
            "chat",
            "--client-threads",
            "2",
            "--busy-poll",
            "--no-preconnect",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let p = &r["points"][0];
    assert_eq!(p["load"]["kind"], "open");
    assert_eq!(p["load"]["rate"], 40.0);
    assert_eq!(p["load"]["arrival"], "gamma");
    assert_eq!(p["schedule_lag_ms"]["count"], 20);
    assert_eq!(p["ttft_from_scheduled_ms"]["count"], 20);
    assert!(p["ttft_from_scheduled_ms"]["min"].as_f64() >= p["ttft_ms"]["min"].as_f64());
    // E2E from the schedule: every request's, never below its E2E from the send.
    assert_eq!(p["e2e_from_scheduled_ms"]["count"], 20);
    assert!(p["e2e_from_scheduled_ms"]["min"].as_f64() >= p["e2e_ms"]["min"].as_f64());
    assert!(p["e2e_from_scheduled_ms"]["max"].as_f64() >= p["e2e_ms"]["max"].as_f64());
    assert_eq!(r["settings"]["endpoint"], "/v1/chat/completions");
    assert_eq!(r["settings"]["client_threads"], 2);
    assert_eq!(r["settings"]["busy_poll"], true);
    assert_eq!(r["settings"]["preconnect"], false);
    assert!(r["points"][0]["client"].get("preconnected").is_none());
    assert!(stdout(&o).contains("(busy poll)"));
    assert!(server
        .all_truth()
        .iter()
        .all(|t| t.body["messages"].is_array()));
}

#[test]
fn failed_requests_are_counted_and_exit_3() {
    let server = MockServer::start(|n, _| Script {
        fault: match n % 4 {
            1 => Some(Fault::Status(500)),
            2 => Some(Fault::CutAfter(1)),
            _ => None,
        },
        ..fast(4)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--num-requests",
            "8",
            "--warmup",
            "0",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("requests failed"));
    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["status"], "complete");
    let p = &r["points"][0];
    assert_eq!(p["requests"]["failed_by_class"]["http_5xx"], 2);
    assert_eq!(p["requests"]["failed_by_class"]["stream_cut"], 2);
    assert_eq!(p["requests"]["succeeded"], 4);
    assert_eq!(p["ttft_ms"]["count"], 4);
}

#[test]
fn api_key_is_used_but_appears_in_no_output() {
    let secret = "sk-test-7f3a9c1e2b";
    let server = MockServer::start(|n, _| Script {
        fault: (n == 2).then_some(Fault::Status(401)),
        ..fast(2)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, log, csv) = (
        dir.path().join("r.json"),
        dir.path().join("l.jsonl"),
        dir.path().join("r.csv"),
    );
    let o = bin()
        .env("INFERBENCH_TEST_KEY", secret)
        .args([
            "http",
            "--url",
            &server.url(),
            "--num-requests",
            "4",
            "--warmup",
            "1",
        ])
        .args(["--api-key-env", "INFERBENCH_TEST_KEY"])
        .arg("--out")
        .arg(&out)
        .arg("--requests-log")
        .arg(&log)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(server
        .all_truth()
        .iter()
        .all(|t| t.authorization.as_deref() == Some(&*format!("Bearer {secret}"))));
    let r = read_json(&out);
    assert_eq!(r["settings"]["api_key_env"], "INFERBENCH_TEST_KEY");
    assert_eq!(r["settings"]["api_key_present"], true);
    for text in [
        stdout(&o),
        stderr(&o),
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&log).unwrap(),
        std::fs::read_to_string(&csv).unwrap(),
    ] {
        assert!(!text.contains(secret), "the key leaked into: {text}");
    }
}

#[test]
fn unreachable_server_and_failing_warmup_stop_before_measuring() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let url = format!("http://127.0.0.1:{port}");
    let o = bin()
        .args(["http", "--url", &url])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "connection refused");
    assert!(stderr(&o).contains(&url));
    assert!(!out.exists());

    let server = MockServer::start(|_, _| Script {
        fault: Some(Fault::Status(404)),
        ..fast(2)
    })
    .unwrap();
    let o = bin()
        .args(["http", "--url", &server.url(), "--model", "nope"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "warm-up failed");
    assert!(stderr(&o).contains("http_4xx"));

    for (args, needle) in [
        (&["--rate", "1", "--arrival", "gamma"][..], "--burstiness"),
        (
            &["--rate", "1", "--burstiness", "2"][..],
            "--arrival gamma only",
        ),
        (&["--workload", "fixed:1"][..], "fixed:IN:OUT"),
    ] {
        let o = bin()
            .args(["http", "--url", &server.url()])
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        // Bad flags exit 2, whether clap or inferbench finds them (issue:
        // some usage errors exited 1, others 2).
        assert_clean_failure(&o, 2, needle);
    }
    let o = bin()
        .args(["http", "--url", &server.url(), "--rate", "0"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "not a positive rate");
}

#[test]
fn https_server_trusted_with_ca_cert_and_refused_without() {
    let server = MockServer::start_tls(|_, _| fast(4)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, ca) = (dir.path().join("r.json"), dir.path().join("ca.pem"));
    std::fs::write(&ca, server.certificate().unwrap()).unwrap();
    let o = bin()
        .args(["http", "--url", &server.url(), "--num-requests", "4"])
        .args(["--warmup", "1", "--workload", "fixed:8:4", "--ca-cert"])
        .arg(&ca)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["points"][0]["requests"]["succeeded"], 4);
    assert_eq!(r["settings"]["ca_certs"][0], ca.display().to_string());
    assert_eq!(r["settings"]["insecure_tls"], false);

    let o = bin()
        .args(["http", "--url", &server.url()])
        .arg("--out")
        .arg(dir.path().join("refused.json"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "TLS handshake failed");
    assert!(stderr(&o).contains("--ca-cert"));

    let o = bin()
        .args(["http", "--url", &server.url(), "--ca-cert"])
        .arg(dir.path().join("absent.pem"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "--ca-cert");
    assert!(stderr(&o).contains("absent.pem"));
}

#[test]
fn ctrl_c_keeps_a_valid_partial_http_result() {
    let server = MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(20),
        tokens: 100,
        ..Script::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let child = KillOnDrop(Some(
        bin()
            .args([
                "http",
                "--url",
                &server.url(),
                "--concurrency",
                "2",
                "--duration",
                "10m",
                "--warmup",
                "0",
            ])
            .args(["--workload", "fixed:8:200"])
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Requests of 100 tokens at 20 ms take about 2 s: wait until one has
    // finished and a snapshot of the point is on disk.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no finished request saved");
        std::thread::sleep(Duration::from_millis(100));
        if !out.exists() {
            continue;
        }
        let r = read_json(&out);
        if r["points"][0]["requests"]["succeeded"]
            .as_u64()
            .unwrap_or(0)
            > 0
        {
            assert_valid_result(&r);
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let o = child.wait_with_output();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "in-flight requests were not abandoned"
    );
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["partial"], true);
    let p = &r["points"][0];
    assert_eq!(p["complete"], false);
    assert!(p["requests"]["succeeded"].as_u64().unwrap() >= 1);
    assert!(p["requests"]["cancelled"].as_u64().unwrap() >= 1);
}

#[test]
fn find_max_rate_brackets_the_rate_where_the_slo_breaks() {
    use std::sync::{Arc, Mutex};
    // A server with one worker and 20 ms of work per request: below 50 req/s
    // nothing queues (TTFT 20 ms); above it the queue, and TTFT, grow with
    // every request.
    let busy_until = Arc::new(Mutex::new(Instant::now()));
    let server = MockServer::start(move |_, _| {
        let now = Instant::now();
        let mut busy = busy_until.lock().unwrap();
        *busy = (*busy).max(now) + Duration::from_millis(20);
        Script {
            ttft: *busy - now,
            ..fast(2)
        }
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--find-max-rate",
            "10",
            "--arrival",
            "constant",
        ])
        .args([
            "--slo",
            "ttft=60ms",
            "--num-requests",
            "30",
            "--warmup",
            "0",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let search = &r["max_rate"];
    let max = search["max_rate"].as_f64().unwrap();
    let failing = search["lowest_failing_rate"].as_f64().unwrap();
    // 40 req/s never queues; at 80 req/s the 30th request waits 29 × 7.5 ms.
    assert!(max >= 40.0 && failing <= 80.0 && failing > max, "{search}");
    assert!(
        (failing - max) / failing <= 0.1 + 1e-9,
        "bracket within 10%: {search}"
    );
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len() as u64, search["probes"].as_u64().unwrap());
    let rates: Vec<f64> = points
        .iter()
        .map(|p| p["load"]["rate"].as_f64().unwrap())
        .collect();
    assert_eq!(
        &rates[..3],
        &[10.0, 20.0, 40.0],
        "doubling first: {rates:?}"
    );

    let o = bin()
        .args(["http", "--url", &server.url(), "--find-max-rate"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "--slo");
}

/// A word-level tokenizer.json: every whitespace-separated word one token.
fn word_tokenizer(dir: &std::path::Path) -> std::path::PathBuf {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), 0.into());
    for (i, w) in ["the", "of", "and"].iter().enumerate() {
        vocab.insert((*w).into(), (i + 1).into());
    }
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

#[test]
fn tokenizer_counts_output_without_usage_and_sizes_prompts() {
    use inferbench_test_support::mock::UsageStyle;
    let server = MockServer::start(|_, _| Script {
        usage: UsageStyle::Absent,
        empty_every: Some(3),
        ..fast(7)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = word_tokenizer(dir.path());
    let out = dir.path().join("r.json");
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--num-requests",
            "5",
            "--warmup",
            "0",
        ])
        .args(["--workload", "fixed:33:7", "--tokenizer"])
        .arg(&tokenizer)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let p = &r["points"][0];
    assert_eq!(p["output_tokens_source"]["tokenizer"], 5);
    // 7 generated pieces, 2 of them empty: the tokenizer sees 5 words, as
    // many as content chunks.
    assert_eq!(p["output_tokens"]["mean"], 5.0);
    assert_eq!(
        p["token_count_discrepancy"]["against"],
        "tokenizer_vs_chunks"
    );
    assert_eq!(p["token_count_discrepancy"]["requests_differing"], 0);
    for t in server.all_truth() {
        assert_eq!(
            t.body["prompt"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .count(),
            33
        );
    }
    assert_eq!(r["settings"]["tokenizer"], tokenizer.display().to_string());

    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--tokenizer",
            "/nonexistent/tokenizer.json",
        ])
        .output()
        .unwrap();
    assert_clean_failure(
        &o,
        1,
        "--tokenizer /nonexistent/tokenizer.json: no such file",
    );
    let o = bin()
        .args(["http", "--url", &server.url(), "--tokenizer"])
        .arg(dir.path().join("r.json"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "not a tokenizer.json");
}

fn llama_like(tokens: u32) -> Script {
    Script {
        llama_server: true,
        ..fast(tokens)
    }
}

fn prompts_sent(server: &MockServer) -> Vec<String> {
    server
        .all_truth()
        .iter()
        .map(|t| t.body["prompt"].to_string())
        .collect()
}

#[test]
fn no_two_requests_of_a_run_share_a_prompt_across_points_warmups_and_probes() {
    let server = MockServer::start(|_, _| llama_like(3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1,2,4"])
        .args([
            "--num-requests",
            "8",
            "--warmup",
            "2",
            "--workload",
            "fixed:12:3",
        ])
        .arg("--out")
        .arg(&sweep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let search = dir.path().join("search.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--find-max-rate", "50"])
        .args(["--slo", "ttft=10s", "--num-requests", "6", "--warmup", "1"])
        .args(["--workload", "fixed:12:3"])
        .arg("--out")
        .arg(&search)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let probes = read_json(&search)["points"].as_array().unwrap().len();
    assert!(probes >= 2, "the search made {probes} probes");
    let sent = prompts_sent(&server);
    assert_eq!(sent.len(), 3 * (8 + 2) + probes * (6 + 1));
    let distinct: std::collections::HashSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "a prompt went twice");
    // The server's own account agrees: nothing beyond the BOS from its cache.
    for file in [&sweep, &search] {
        let r = read_json(file);
        assert_valid_result(&r);
        assert!(r.get("notes").is_none(), "{}", r["notes"]);
        for p in r["points"].as_array().unwrap() {
            // Random-word prompts may share a first word (two tokens), never more than that.
            assert!(
                p["prompt_cache"]["cached_fraction"].as_f64().unwrap() < 0.01,
                "{p}"
            );
            assert_eq!(
                p["prompt_cache"]["source"],
                "usage.prompt_tokens_details.cached_tokens"
            );
            // Text prompts: the scripted server adds a BOS, as llama-server does.
            assert_eq!(p["prompt_token_check"]["mean_server_minus_sent"], 1.0);
        }
    }
}

#[test]
fn a_run_repeating_an_earlier_runs_prompts_is_warned_about() {
    let server = MockServer::start(|_, _| llama_like(3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, prompt_seed: Option<&str>| {
        let out = dir.path().join(name);
        let mut cmd = bin();
        cmd.args(["http", "--url", &server.url(), "--concurrency", "2"])
            .args([
                "--num-requests",
                "6",
                "--warmup",
                "0",
                "--workload",
                "fixed:40:3",
            ])
            .arg("--out")
            .arg(&out);
        if let Some(seed) = prompt_seed {
            cmd.args(["--prompt-seed", seed]);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        (read_json(&out), stderr(&o))
    };
    let (first, _) = run("a.json", Some("7"));
    assert_eq!(first["settings"]["prompt_seed"], 7);
    assert!(
        first["points"][0]["prompt_cache"]["cached_fraction"]
            .as_f64()
            .unwrap()
            < 0.01
    );
    // The same prompts again: served from the cache the first run filled.
    let (again, warned) = run("b.json", Some("7"));
    assert_valid_result(&again);
    let cache = &again["points"][0]["prompt_cache"];
    assert_eq!(cache["requests_hit"], 6);
    assert!(cache["cached_fraction"].as_f64().unwrap() > 0.9, "{cache}");
    assert!(
        warned.contains("warning: c=2: the server served"),
        "{warned}"
    );
    let notes = again["notes"].as_array().unwrap();
    assert!(
        notes[0].as_str().unwrap().contains("from its cache"),
        "{notes:?}"
    );
    // Left to itself, each run draws its own prompts.
    let (fresh, quiet) = run("c.json", None);
    assert!(
        fresh["points"][0]["prompt_cache"]["cached_fraction"]
            .as_f64()
            .unwrap()
            < 0.01
    );
    assert_ne!(fresh["settings"]["prompt_seed"], 7);
    assert!(!quiet.contains("warning"), "{quiet}");
}

#[test]
fn token_id_prompts_need_the_completions_endpoint_and_a_real_file() {
    let server = MockServer::start(|_, _| fast(3)).unwrap();
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--endpoint",
            "chat",
            "--token-ids-from",
        ])
        .arg(tiny_model())
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "--endpoint chat");
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--token-ids-from",
            "/nonexistent.gguf",
        ])
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "/nonexistent.gguf");
}

/// `--until-precise`: a point grows in batches until the median TTFT's 95%
/// interval is within 5% of it, and says so; with a cap it cannot beat, it
/// stops at the cap and says that instead. Every request is distinct.
#[test]
fn until_precise_adds_requests_until_the_interval_is_narrow_or_a_cap() {
    // TTFT spread evenly over 10 to 20 ms by request number.
    let server = MockServer::start(|n, _| Script {
        ttft: Duration::from_micros(10_000 + (n * 7_919) % 10_000),
        itl: Duration::from_millis(1),
        tokens: 2,
        ..Script::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let log = dir.path().join(format!("{name}.jsonl"));
        let o = bin()
            .args(["http", "--url", &server.url(), "--concurrency", "4"])
            .args(["--num-requests", "20", "--warmup", "0"])
            .args(["--workload", "fixed:8:2", "--ignore-eos", "--no-telemetry"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .arg("--requests-log")
            .arg(&log)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let r = read_json(&out);
        assert_valid_result(&r);
        let prompts: std::collections::BTreeSet<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| {
                let l: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_valid_requests_log_line(&l);
                format!("{} {}", l["extension"], l["index"])
            })
            .collect();
        (r, stdout(&o), prompts.len())
    };

    let (r, text, distinct) = run("precise.json", &["--until-precise", "ttft.p50=5%"]);
    let p = &r["points"][0];
    let precision = &p["precision"];
    assert_eq!(precision["reached"], true, "{precision}");
    assert_eq!(precision["stopped_by"], "precise");
    let requests = precision["requests"].as_u64().unwrap();
    assert!(
        requests > 20,
        "20 requests cannot be that precise: {precision}"
    );
    assert_eq!(p["requests"]["total"].as_u64(), Some(requests));
    assert_eq!(p["num_requests_planned"].as_u64(), Some(requests));
    assert_eq!(precision["max_requests"], 400, "20 times the first count");
    let target = &precision["targets"][0];
    assert_eq!(target["statistic"], "ttft.p50");
    assert_eq!(target["metric"], "ttft_ms");
    let (value, half) = (
        target["value"].as_f64().unwrap(),
        target["half_width_percent"].as_f64().unwrap(),
    );
    assert!(half <= 5.0, "{target}");
    let interval = &target["interval"];
    assert!(
        interval["low"].as_f64().unwrap() <= value && value <= interval["high"].as_f64().unwrap()
    );
    assert_eq!(interval["level"], 0.95);
    assert!(text.contains("precision: ttft.p50"), "{text}");
    assert!(
        text.contains(&format!("precise after {requests} requests")),
        "{text}"
    );
    // Every request of the point, first batch and later, its own prompt.
    assert_eq!(distinct as u64, requests);
    assert_eq!(
        r["settings"]["spec"]["until_precise"][0]["within_percent"],
        5.0
    );

    let (r, text, _) = run(
        "capped.json",
        &["--until-precise", "ttft.p50=0.01%", "--max-requests", "30"],
    );
    let precision = &r["points"][0]["precision"];
    assert_eq!(precision["reached"], false, "{precision}");
    assert_eq!(precision["stopped_by"], "max_requests");
    assert_eq!(precision["requests"], 30);
    assert_eq!(r["points"][0]["requests"]["total"], 30);
    assert!(text.contains("stopped at --max-requests 30"), "{text}");

    for (args, needle) in [
        (vec!["--max-requests", "100"], "--until-precise"),
        (
            vec!["--until-precise", "ttft.p50=0%"],
            "above 0 and under 100",
        ),
        (
            vec!["--until-precise", "ttft"],
            "is not METRIC.STATISTIC=PERCENT%",
        ),
        (
            vec!["--until-precise", "speed.p50=1%"],
            "unknown metric 'speed'",
        ),
        (
            vec!["--until-precise", "ttft.p50=2%", "--duration", "10s"],
            "--max-duration instead of --duration",
        ),
        (
            vec!["--until-precise", "ttft.p50=2%", "--max-requests", "10"],
            "10 is below the 20 requests",
        ),
        (
            vec![
                "--until-precise",
                "ttft.p50=2%",
                "--workload",
                "trace:t.jsonl",
            ],
            "a trace's requests are the trace's",
        ),
    ] {
        let o = bin()
            .args([
                "http",
                "--url",
                "http://127.0.0.1:9",
                "--num-requests",
                "20",
            ])
            .args(&args)
            .output()
            .unwrap();
        assert_clean_failure(&o, 2, needle);
    }
}

/// A server that slows down after its first 100 requests (TTFT 5 ms, then
/// 25 ms): the point's one-second slices show it, the first slice against
/// the last calls it drift (a reason in the verdict), and the slices go to
/// the result, beside the CSV and onto the terminal's verdict line.
#[test]
fn slices_show_a_server_that_slows_down_and_call_it_drift() {
    let server = MockServer::start(|n, _| Script {
        ttft: Duration::from_millis(if n < 102 { 5 } else { 25 }),
        itl: Duration::from_millis(1),
        tokens: 3,
        ..Script::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, csv) = (dir.path().join("r.json"), dir.path().join("r.csv"));
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1"])
        .args(["--num-requests", "200", "--warmup", "2"])
        .args(["--workload", "fixed:16:3", "--ignore-eos", "--slice", "1s"])
        .arg("--out")
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let p = &r["points"][0];
    let slices = &p["slices"];
    assert_eq!(slices["chosen_by"], "flag");
    assert_eq!(slices["slice_s"], 1.0);
    assert_eq!(slices["ttft_metric"], "ttft_ms");
    let rows = slices["slices"].as_array().unwrap();
    assert!(rows.len() >= 3, "{slices}");
    let sent: u64 = rows.iter().map(|s| s["requests"].as_u64().unwrap()).sum();
    assert_eq!(sent, 200);
    let tokens: f64 = rows
        .iter()
        .map(|s| s["output_throughput_tok_s"].as_f64().unwrap() * s["duration_s"].as_f64().unwrap())
        .sum();
    assert!((tokens - 600.0).abs() < 1e-6, "{tokens}");
    let ttft = &slices["drift"][0];
    assert_eq!(ttft["metric"], "ttft_ms");
    assert_eq!(ttft["drifted"], true, "{ttft}");
    assert!(ttft["change"].as_f64().unwrap() > 1.0, "{ttft}");
    let reasons = p["validity"]["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("ttft_ms drifted")),
        "{reasons:?}"
    );
    assert!(stdout(&o).contains("ttft_ms drifted"), "{}", stdout(&o));
    let steady = &p["steady_state"];
    assert_eq!(steady["target_from"], "concurrency");
    assert_eq!(steady["target_in_flight"], 1.0);
    assert!(steady["share_of_point"].as_f64().unwrap() > 0.8, "{steady}");
    let slice_rows = std::fs::read_to_string(dir.path().join("r.slices.csv")).unwrap();
    assert_eq!(slice_rows.lines().count(), rows.len() + 1, "{slice_rows}");
    assert!(slice_rows.starts_with("point,load,concurrency,rate,slice,start_s"));
    let points_csv = std::fs::read_to_string(&csv).unwrap();
    assert!(points_csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",steady_state_s,steady_output_tok_s,steady_request_s"));
    // `report` draws the slices over time, and its Files table carries the
    // run's verdict.
    let (plots, html) = (dir.path().join("plots"), dir.path().join("r.html"));
    let o = bin()
        .arg("report")
        .arg(&out)
        .arg("--plots")
        .arg(&plots)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(plots.join("over-time-0.svg")).unwrap();
    assert!(svg.contains("c=1 p50") && svg.contains("c=1 p99"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<td class=\"not-valid\">not valid (0 of 1 points valid)"));
}
