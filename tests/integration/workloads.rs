//! The server's own view and real traffic shapes, against the scripted
//! server on a real socket: `/metrics` sampled per point, multi-turn
//! conversations, shared-prefix groups, trace replay, resumed sweeps, the
//! vLLM-format export and request counts per load level.

use std::process::Stdio;
use std::time::{Duration, Instant};

use inferbench_test_support::mock::{MockServer, Script};
use serde_json::Value;

use crate::util::*;

fn paced(tokens: u32, itl_ms: u64) -> Script {
    Script {
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(itl_ms),
        tokens,
        ..Script::default()
    }
}

fn series<'a>(map: &'a Value, name: &str) -> &'a Value {
    let obj = map.as_object().expect("object");
    obj.iter()
        .find(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no series {name} in {map:#}"))
}

#[test]
fn server_metrics_are_sampled_and_summarized_per_point() {
    let server = MockServer::start(|_, _| paced(20, 5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1,4"])
        .args([
            "--num-requests",
            "16",
            "--warmup",
            "2",
            "--workload",
            "fixed:20:20",
        ])
        .args(["--server-metrics", "--server-metrics-interval", "50ms"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("queue mean ms") && text.contains("KV % max"),
        "{text}"
    );
    assert!(text.contains("server ("), "{text}");
    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(
        r["settings"]["server_metrics"],
        format!("{}/metrics", server.url())
    );
    for (p, c) in r["points"].as_array().unwrap().iter().zip([1.0, 4.0]) {
        let m = &p["server_metrics"];
        assert!(m["scrapes"].as_u64().unwrap() >= 3, "{m:#}");
        assert_eq!(m["failed_scrapes"], 0);
        // Counted at each request's arrival: exactly the point's 16, none of
        // the warm-ups (over before the baseline scrape).
        let prompt = series(&m["counters"], "vllm:prompt_tokens_total");
        assert_eq!(prompt["delta"], 16.0 * 21.0, "20 words and a BOS each");
        let ttft = series(&m["histograms"], "vllm:time_to_first_token_seconds");
        assert_eq!(ttft["count"], 16.0);
        // The scripted 5 ms TTFT falls in the (0.005, 0.01] bucket at most.
        assert!(ttft["p50"].as_f64().unwrap() <= 0.01, "{ttft:#}");
        let finished = series(&m["counters"], "vllm:request_success_total")["delta"]
            .as_f64()
            .unwrap();
        assert!((16.0 - c..=18.0).contains(&finished), "{finished}");
        let running = &m["headline"]["requests_running"];
        assert!(running["max"].as_f64().unwrap() <= c, "{running:#}");
        assert!(running["max"].as_f64().unwrap() >= 1.0, "{running:#}");
        assert!(m["headline"]["kv_cache_percent"]["max"].as_f64().unwrap() <= c);
        // The scripted server has no queue-time histogram: absent, not zero.
        assert!(m["headline"].get("queue_time_ms").is_none(), "{m:#}");
    }
}

#[test]
fn a_missing_metrics_endpoint_is_a_note_not_a_failure() {
    let server = MockServer::start(|_, _| paced(4, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--num-requests", "3"])
        .args([
            "--server-metrics",
            &format!("{}/nothing-here", server.url()),
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--server-metrics"), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    assert!(r["settings"].get("server_metrics").is_none());
    assert!(r["points"][0].get("server_metrics").is_none());
    assert!(
        r["notes"][0].as_str().unwrap().contains("HTTP 404"),
        "{:#}",
        r["notes"]
    );
}

#[test]
fn multi_turn_conversations_carry_their_exact_history() {
    let server = MockServer::start(|_, _| Script {
        llama_server: true,
        ..paced(4, 1)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--endpoint", "chat"])
        .args(["--concurrency", "2", "--num-requests", "4", "--warmup", "0"])
        .args(["--workload", "multiturn:3:8:4:20ms", "--ignore-eos"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let p = &r["points"][0];
    assert_eq!(p["requests"]["total"], 12, "4 conversations of 3 turns");
    assert_eq!(p["conversations"]["completed"], 4);
    assert_eq!(p["conversations"]["cut_short"], 0);
    let turns = p["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    for (t, turn) in turns.iter().zip(["1", "2", "3"]) {
        assert_eq!(t["part"], turn);
        assert_eq!(t["succeeded"], 4);
        assert_eq!(t["ttft_ms"]["count"], 4);
    }
    // A later turn's history is in the server's prefix cache.
    let cached = |t: &Value| t["cached_prompt_tokens"]["mean"].as_f64().unwrap();
    assert!(cached(&turns[2]) > cached(&turns[0]) + 8.0, "{turns:?}");
    assert!(
        !r["notes"].to_string().contains("from its cache"),
        "an intended share is not a warning: {:#}",
        r["notes"]
    );

    let bodies: Vec<Value> = server.all_truth().into_iter().map(|t| t.body).collect();
    let messages = |b: &Value| b["messages"].as_array().unwrap().clone();
    let reply = Value::from(" t0 t1 t2 t3");
    let mut by_turn = [0; 3];
    for body in &bodies {
        let m = messages(body);
        assert_eq!(m.len() % 2, 1, "user, assistant, ..., user: {m:?}");
        by_turn[m.len() / 2] += 1;
        for (k, message) in m.iter().enumerate() {
            let role = if k % 2 == 0 { "user" } else { "assistant" };
            assert_eq!(message["role"], role);
            if k % 2 == 1 {
                assert_eq!(message["content"], reply, "the server's own reply");
            }
        }
        // The history is exactly an earlier request's messages and reply.
        if m.len() > 1 {
            let earlier = &m[..m.len() - 2];
            assert!(
                bodies.iter().any(|b| messages(b) == earlier),
                "no earlier turn sent {earlier:?}"
            );
        }
    }
    assert_eq!(by_turn, [4, 4, 4]);
}

#[test]
fn open_loop_conversations_start_on_the_schedule() {
    let server = MockServer::start(|_, _| paced(3, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--endpoint", "chat"])
        .args([
            "--rate",
            "20",
            "--arrival",
            "constant",
            "--num-requests",
            "6",
        ])
        .args(["--warmup", "0", "--workload", "multiturn:2:4:3"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let p = &r["points"][0];
    assert_eq!(p["conversations"]["completed"], 6);
    assert_eq!(p["requests"]["total"], 12);
    // Only first turns are scheduled: six of them, 50 ms apart.
    assert_eq!(p["schedule_lag_ms"]["count"], 6);
    assert_eq!(p["turns"][1]["succeeded"], 6);
}

#[test]
fn a_conversation_workload_needs_the_chat_endpoint() {
    let o = bin()
        .args([
            "http",
            "--url",
            "http://127.0.0.1:9",
            "--workload",
            "multiturn:2:8:4",
        ])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "--endpoint chat");
    let o = bin()
        .args([
            "http",
            "--url",
            "http://127.0.0.1:9",
            "--workload",
            "multiturn:0:8:4",
        ])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "turns '0'");
}

#[test]
fn shared_prefix_groups_are_cached_after_their_first_request() {
    let server = MockServer::start(|_, _| Script {
        llama_server: true,
        ..paced(4, 1)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1"])
        .args(["--num-requests", "6", "--warmup", "1"])
        .args([
            "--workload",
            "shared-prefix:2:3:16:4:4",
            "--prompt-seed",
            "1",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let groups = r["points"][0]["prefix_groups"].as_array().unwrap();
    assert_eq!(groups[0]["part"], "first");
    assert_eq!(groups[0]["succeeded"], 2);
    assert_eq!(groups[1]["part"], "later");
    assert_eq!(groups[1]["succeeded"], 4);
    let cached = |g: &Value| g["cached_prompt_tokens"]["mean"].as_f64().unwrap();
    // The BOS and the 16-word prefix; a first request shares only the BOS.
    assert_eq!(cached(&groups[1]), 17.0, "{groups:?}");
    assert_eq!(cached(&groups[0]), 1.0, "{groups:?}");
    assert!(!r["notes"].to_string().contains("from its cache"));
}

#[test]
fn a_trace_is_replayed_on_its_own_scaled_times() {
    let server = MockServer::start(|_, _| paced(3, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (trace, out, log) = (
        dir.path().join("t.jsonl"),
        dir.path().join("r.json"),
        dir.path().join("log.jsonl"),
    );
    let offsets_ms = [0.0, 100.0, 300.0, 340.0, 700.0];
    let lines: Vec<String> = offsets_ms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                r#"{{"timestamp": {}, "input_length": {}, "output_length": 3, "hash_ids": [{}]}}"#,
                5000.0 + t,
                10 + i,
                i % 2
            )
        })
        .collect();
    std::fs::write(&trace, lines.join("\n")).unwrap();
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--warmup",
            "0",
            "--trace-speed",
            "2",
        ])
        .arg("--workload")
        .arg(format!("trace:{}", trace.display()))
        .arg("--out")
        .arg(&out)
        .arg("--requests-log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let p = &r["points"][0];
    assert_eq!(p["load"]["kind"], "trace");
    assert_eq!(p["load"]["trace_speed"], 2.0);
    assert_eq!(p["requests"]["total"], 5, "the whole trace by default");
    let mut scheduled: Vec<f64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v["schedule_lag_ms"].as_f64().unwrap() < 50.0, "{v}");
            v["scheduled_ms"].as_f64().unwrap()
        })
        .collect();
    scheduled.sort_by(f64::total_cmp);
    for (s, t) in scheduled.iter().zip(offsets_ms) {
        assert!((s - t / 2.0).abs() < 0.01, "{scheduled:?}");
    }
    assert!(p["schedule_lag_ms"]["p99"].as_f64().unwrap() < 50.0);
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "2"])
        .arg("--workload")
        .arg(format!("trace:{}", trace.display()))
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "own send times");
}

#[test]
fn an_interrupted_sweep_resumed_gives_the_uninterrupted_point_list() {
    let server = MockServer::start(|_, _| paced(10, 8)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let args = |cmd: &mut std::process::Command| {
        cmd.args(["http", "--url", &server.url(), "--concurrency", "1,2,3"])
            .args([
                "--num-requests",
                "12",
                "--warmup",
                "1",
                "--workload",
                "fixed:8:10",
            ]);
    };
    let mut first = bin();
    args(&mut first);
    let child = KillOnDrop(Some(
        first
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Interrupt once the first point is finished and the second has begun.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the first point never finished");
        std::thread::sleep(Duration::from_millis(20));
        if !out.exists() {
            continue;
        }
        let r = read_json(&out);
        let points = r["points"].as_array().unwrap();
        if points.len() == 2 && points[1]["requests"]["total"].as_u64().unwrap_or(0) > 0 {
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let interrupted = child.wait_with_output();
    assert_eq!(interrupted.status.code(), Some(130));
    let before = read_json(&out);
    assert_eq!(before["status"], "interrupted");

    // Other settings are refused, the one that differs named.
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1,2,3"])
        .args([
            "--num-requests",
            "12",
            "--warmup",
            "1",
            "--workload",
            "fixed:9:10",
        ])
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "settings.workload");

    let mut again = bin();
    args(&mut again);
    let o = again.arg("--resume").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["status"], "complete");
    assert_eq!(r["partial"], false);
    let points = r["points"].as_array().unwrap();
    let loads: Vec<u64> = points
        .iter()
        .map(|p| p["load"]["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(
        loads,
        [1, 2, 3],
        "the same point list as an uninterrupted sweep"
    );
    let before_points = before["points"].as_array().unwrap();
    let kept = before_points
        .iter()
        .take_while(|p| p["complete"] == true)
        .count();
    assert!((1..3).contains(&kept), "{before:#}");
    for k in 0..kept {
        assert_eq!(
            points[k], before_points[k],
            "a finished point kept as it was"
        );
    }
    assert_eq!(
        r["settings"]["prompt_seed"],
        before["settings"]["prompt_seed"]
    );
    // The points measured anew draw prompts no earlier point sent.
    let stream = |p: &Value| p["prompt_stream"].as_u64().unwrap();
    let used = before_points.iter().map(stream).max().unwrap();
    for p in &points[kept..] {
        assert!(stream(p) > used, "stream {} after {used}", stream(p));
    }
    for p in points {
        assert_eq!(p["requests"]["succeeded"], 12);
    }
    assert!(r["notes"].to_string().contains("resumed from"));
}

/// Keys of a real `vllm bench serve --save-result` file (vLLM 0.32.0,
/// closed loop, `vllm.benchmarks.serve` against vLLM CPU serving Gemma 3
/// 270M, 8 random prompts, `--max-concurrency 2 --save-result`), captured
/// here: tests/fixtures/vllm-bench-serve-result.json.
fn vllm_keys() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vllm-bench-serve-result.json");
    let v = read_json(&path);
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn the_vllm_export_has_every_key_vllm_writes_with_inferbench_values() {
    let server = MockServer::start(|_, _| paced(6, 2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, export) = (dir.path().join("r.json"), dir.path().join("v.json"));
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "2"])
        .args([
            "--num-requests",
            "10",
            "--workload",
            "fixed:12:6",
            "--ignore-eos",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--export-vllm")
        .arg(&export)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let p = &read_json(&out)["points"][0];
    let v = read_json(&export);
    for key in vllm_keys() {
        assert!(
            v.get(&key).is_some(),
            "vLLM writes {key}; the export has not: {v:#}"
        );
    }
    assert_eq!(v["completed"], p["requests"]["succeeded"]);
    assert_eq!(v["failed"], p["requests"]["failed"]);
    assert_eq!(v["max_concurrency"], 2);
    assert_eq!(v["request_rate"], "inf");
    assert_eq!(v["request_throughput"], p["request_throughput_req_s"]);
    assert_eq!(v["output_throughput"], p["output_throughput_tok_s"]);
    assert_eq!(v["total_output_tokens"], 60);
    for (vllm, ours) in [
        ("ttft", "ttft_ms"),
        ("tpot", "tpot_ms"),
        ("itl", "itl_ms"),
        ("e2el", "e2e_ms"),
    ] {
        assert_eq!(v[format!("mean_{vllm}_ms")], p[ours]["mean"]);
        assert_eq!(v[format!("median_{vllm}_ms")], p[ours]["p50"]);
        assert_eq!(v[format!("p99_{vllm}_ms")], p[ours]["p99"]);
    }
    assert_eq!(v["latencies"].as_array().unwrap().len(), 10);
    assert!(v["max_concurrent_requests"].as_u64().unwrap() >= 1);
    // vLLM counts every request active at any time within a one-second
    // bucket: short requests add up within one.
    assert!(v["max_concurrent_requests"].as_u64().unwrap() <= 10);

    // A sweep writes one file per point, named by its load.
    let o = bin()
        .args([
            "http",
            "--url",
            &server.url(),
            "--concurrency",
            "1,2",
            "--rate",
            "50",
        ])
        .args(["--num-requests", "4", "--out"])
        .arg(dir.path().join("s.json"))
        .arg("--export-vllm")
        .arg(dir.path().join("sweep.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["sweep.c1.json", "sweep.c2.json", "sweep.rate50.json"] {
        let v = read_json(&dir.path().join(name));
        assert_eq!(v["completed"], 4, "{name}");
    }
    assert_eq!(
        read_json(&dir.path().join("sweep.rate50.json"))["request_rate"],
        50.0
    );
}

#[test]
fn request_counts_per_load_level() {
    let server = MockServer::start(|_, _| paced(3, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let totals = |extra: &[&str]| -> Vec<u64> {
        let o = bin()
            .args(["http", "--url", &server.url(), "--warmup", "0"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let r = read_json(&out);
        assert_valid_result(&r);
        r["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["num_requests_planned"], p["requests"]["total"]);
                p["requests"]["total"].as_u64().unwrap()
            })
            .collect()
    };
    assert_eq!(
        totals(&["--concurrency", "1,3", "--num-requests", "2,5"]),
        [2, 5]
    );
    assert_eq!(
        totals(&["--concurrency", "1,3", "--num-requests", "2x"]),
        [2, 6]
    );
    assert_eq!(
        totals(&["--concurrency", "2", "--rate", "40", "--num-requests", "3x"]),
        [6, 120]
    );
    let r = read_json(&out);
    assert_eq!(r["settings"]["num_requests_per_load"], "3x");
    let o = bin()
        .args(["http", "--url", &server.url(), "--concurrency", "1,2,4"])
        .args(["--num-requests", "5,6"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "--num-requests: 2 values for 3 load levels");
}
