//! One load split between processes (`http --shard I/N --start-at T`), as
//! Ray or Slurm runs it on several machines: the shards together send what
//! one unsharded run sends, and `merge` joins them exactly or refuses
//! files that do not belong together.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use inferbench_harness::stats::Distribution;
use inferbench_test_support::mock::{MockServer, Script};
use serde_json::Value;

use crate::util::*;

pub(crate) fn server(ttft_ms: u64) -> MockServer {
    MockServer::start(move |_, _| Script {
        ttft: Duration::from_millis(ttft_ms),
        itl: Duration::from_millis(2),
        tokens: 3,
        ..Script::default()
    })
    .unwrap()
}

pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Starts shard `i` of `n` of `args` at `start_at`, writing `dir/sI.json`
/// and its requests log `dir/sI.jsonl`.
fn start_shard(url: &str, args: &[&str], i: u32, n: u32, start_at: f64, dir: &Path) -> Child {
    bin()
        .args(["http", "--url", url])
        .args(args)
        .args(["--shard", &format!("{i}/{n}")])
        .args(["--start-at", &format!("{start_at:.3}")])
        .arg("--out")
        .arg(dir.join(format!("s{i}.json")))
        .arg("--requests-log")
        .arg(dir.join(format!("s{i}.jsonl")))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) {
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

pub(crate) fn log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The prompts the server received, sorted.
pub(crate) fn prompts(server: &MockServer) -> Vec<String> {
    let mut p: Vec<String> = server
        .all_truth()
        .iter()
        .map(|t| t.body["prompt"].to_string())
        .collect();
    p.sort();
    p
}

/// The most requests the server held at once, from its receipt of each to
/// its last chunk (warm-ups included).
pub(crate) fn server_peak(server: &MockServer) -> usize {
    let truth = server.all_truth();
    let t0 = truth.iter().filter_map(|t| t.received).min().unwrap();
    let at = |i: Instant| i.duration_since(t0).as_secs_f64();
    peak_overlap(
        truth
            .iter()
            .map(|t| (at(t.received.unwrap()), at(*t.content_sent.last().unwrap())))
            .collect(),
    )
}

/// The most intervals (start, end) open at once.
pub(crate) fn peak_overlap(mut intervals: Vec<(f64, f64)>) -> usize {
    let mut events: Vec<(f64, i32)> = intervals
        .drain(..)
        .flat_map(|(a, b)| [(a, 1), (b, -1)])
        .collect();
    // An end before a start at the same moment: back to back is not overlap.
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut open, mut peak) = (0i32, 0i32);
    for (_, d) in events {
        open += d;
        peak = peak.max(open);
    }
    peak as usize
}

fn merge(files: &[PathBuf], out: &Path) -> std::process::Output {
    bin()
        .arg("merge")
        .args(files)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Open loop, Poisson at 20 req/s, 60 requests over 2 shards: the server
/// receives exactly the prompts one unsharded run of the same seeds sends,
/// none twice; the shards' intended send times together are its schedule;
/// every first send is at or after the start; the merge counts 60 and its
/// TTFT histogram is the one built from both shards' request logs.
#[test]
fn open_loop_shards_send_exactly_the_unsharded_load_and_merge_exactly() {
    let sharded = server(5);
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--rate",
        "20",
        "--arrival",
        "poisson",
        "--num-requests",
        "60",
        "--workload",
        "fixed:16:3",
        "--ignore-eos",
        "--warmup",
        "0",
        "--seed",
        "7",
    ];
    let start_at = unix_now() + 3.0;
    let children: Vec<Child> = (0..2)
        .map(|i| start_shard(&sharded.url(), &common, i, 2, start_at, dir.path()))
        .collect();
    children.into_iter().for_each(finish);
    let files = [dir.path().join("s0.json"), dir.path().join("s1.json")];
    for (i, f) in files.iter().enumerate() {
        let r = read_json(f);
        assert_valid_result(&r);
        assert_eq!(r["shard"]["index"], i as u64);
        assert_eq!(r["shard"]["count"], 2);
        let p = &r["points"][0];
        assert_eq!(p["requests"]["total"], 30, "an even split of 60");
        assert!(p["first_send_unix_s"].as_f64().unwrap() >= start_at);
        assert!(p["start"]["lag_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(p["start"]["overran_slot"], false);
    }
    let merged_path = dir.path().join("merged.json");
    let o = merge(&files, &merged_path);
    assert!(o.status.success(), "{}", stderr(&o));
    let merged = read_json(&merged_path);
    assert_valid_result(&merged);
    let point = &merged["points"][0];
    assert_eq!(point["requests"]["succeeded"], 60);
    assert_eq!(merged["shards"]["count"], 2);
    assert_eq!(merged["settings"]["num_requests"], 60);
    assert!(merged["shards"]["max_start_lag_ms"].as_f64().unwrap() >= 0.0);

    // Bucket for bucket: the merged TTFT against both shards' logs.
    let lines: Vec<Value> = ["s0.jsonl", "s1.jsonl"]
        .iter()
        .flat_map(|f| log(&dir.path().join(f)))
        .collect();
    let mut from_logs = Distribution::milliseconds();
    for l in &lines {
        from_logs.record(l["ttft_ms"].as_f64().unwrap());
    }
    let merged_ttft: inferbench_harness::stats::Stats =
        serde_json::from_value(point["ttft_ms"].clone()).unwrap();
    assert_eq!(
        Distribution::from_stats(&merged_ttft).unwrap().buckets(),
        from_logs.buckets()
    );

    // One unsharded run of the same seeds, against a server of its own.
    let single = server(5);
    let prompt_seed = merged["settings"]["prompt_seed"]
        .as_u64()
        .unwrap()
        .to_string();
    let unsharded_log = dir.path().join("u.jsonl");
    let o = bin()
        .args(["http", "--url", &single.url()])
        .args(common)
        .args(["--prompt-seed", &prompt_seed])
        .arg("--out")
        .arg(dir.path().join("u.json"))
        .arg("--requests-log")
        .arg(&unsharded_log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (prompts(&sharded), prompts(&single));
    assert_eq!(a.len(), 60);
    assert_eq!(a, b, "the shards sent the unsharded run's prompts");
    let mut distinct = a.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 60, "no prompt twice");
    // The same intended send times, request by request.
    let schedule = |lines: &[Value]| {
        let mut s: Vec<(u64, f64)> = lines
            .iter()
            .map(|l| {
                (
                    l["index"].as_u64().unwrap(),
                    l["scheduled_ms"].as_f64().unwrap(),
                )
            })
            .collect();
        s.sort_by_key(|x| x.0);
        s
    };
    let (together, alone) = (schedule(&lines), schedule(&log(&unsharded_log)));
    assert_eq!(together.len(), alone.len());
    for ((i, a), (j, b)) in together.iter().zip(&alone) {
        assert_eq!(i, j);
        assert!((a - b).abs() < 1e-3, "request {i}: {a} ms against {b} ms");
    }
}

/// Closed loop c=5 over 2 shards: streams split 3 + 2, the shards' requests
/// interleave (even and odd indices), the server holds 5 at its peak, and
/// warm-ups are disjoint too. `merge` refuses a duplicated, a missing and a
/// foreign shard, naming the file.
#[test]
fn closed_loop_shards_split_the_streams_and_merge_refuses_what_does_not_belong() {
    let s = server(40);
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--concurrency",
        "5",
        "--num-requests",
        "40",
        "--workload",
        "fixed:16:3",
        "--ignore-eos",
        "--warmup",
        "2",
    ];
    let start_at = unix_now() + 3.0;
    let started = Instant::now();
    let children: Vec<Child> = (0..2)
        .map(|i| start_shard(&s.url(), &common, i, 2, start_at, dir.path()))
        .collect();
    children.into_iter().for_each(finish);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited for the start"
    );
    for (i, streams) in [(0u64, 3usize), (1, 2)] {
        let lines = log(&dir.path().join(format!("s{i}.jsonl")));
        assert_eq!(lines.len(), 20);
        assert!(lines.iter().all(|l| l["index"].as_u64().unwrap() % 2 == i));
        let intervals = lines
            .iter()
            .map(|l| {
                let sent = l["sent_ms"].as_f64().unwrap();
                (sent, sent + l["e2e_ms"].as_f64().unwrap())
            })
            .collect();
        assert_eq!(peak_overlap(intervals), streams, "shard {i}");
    }
    // The server's own view: receipt to last chunk, warm-ups included.
    let truth = s.all_truth();
    assert_eq!(truth.len(), 44, "20 + 20 measured, 2 + 2 warm-ups");
    assert_eq!(server_peak(&s), 5);
    let mut all = prompts(&s);
    all.dedup();
    assert_eq!(all.len(), 44, "no prompt twice, warm-ups included");

    let (s0, s1) = (dir.path().join("s0.json"), dir.path().join("s1.json"));
    let out = dir.path().join("m.json");
    let o = merge(&[s0.clone(), s1.clone()], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_json(&out)["points"][0]["requests"]["succeeded"], 40);

    let edited = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut r = read_json(&s1);
        edit(&mut r);
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
        path
    };
    let o = merge(&[s0.clone(), s0.clone()], &out);
    assert_clean_failure(&o, 1, "shard 0/2 is given twice");
    let three = |r: &mut Value| r["shard"]["count"] = 3.into();
    let s0_of_3 = {
        let mut r = read_json(&s0);
        three(&mut r);
        let path = dir.path().join("s0-of-3.json");
        std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
        path
    };
    let s1_of_3 = edited("s1-of-3.json", &three);
    let o = merge(&[s0_of_3, s1_of_3], &out);
    assert_clean_failure(&o, 1, "shard 2/3 is missing");
    let later = edited("later.json", &|r| {
        let t = r["shard"]["start_at_unix_s"].as_f64().unwrap();
        r["shard"]["start_at_unix_s"] = (t + 60.0).into();
    });
    let o = merge(&[s0.clone(), later.clone()], &out);
    assert_clean_failure(&o, 1, "is not a shard of the same run as");
    assert!(stderr(&o).contains("later.json"), "{}", stderr(&o));
    let unsharded = edited("plain.json", &|r| {
        r.as_object_mut().unwrap().remove("shard");
    });
    let o = merge(&[s0, unsharded], &out);
    assert_clean_failure(&o, 1, "plain.json is not a shard of the same run");
}

#[test]
fn sharding_flags_are_checked_before_anything_runs() {
    let url = "http://127.0.0.1:9";
    let run = |args: &[&str]| {
        bin()
            .args(["http", "--url", url])
            .args(args)
            .output()
            .unwrap()
    };
    let soon = format!("{:.0}", unix_now() + 600.0);
    let o = run(&["--shard", "0/2"]);
    assert_clean_failure(&o, 2, "--start-at");
    let o = run(&["--shard", "2/2", "--start-at", &soon]);
    assert_clean_failure(&o, 2, "I must be below N");
    let o = run(&["--shard", "0/2", "--start-at", "1000"]);
    assert_clean_failure(&o, 2, "already past");
    let o = run(&["--shard", "0/4", "--start-at", &soon, "--concurrency", "2"]);
    assert_clean_failure(&o, 2, "below the 4 shards");
    let o = run(&[
        "--shard",
        "0/2",
        "--start-at",
        &soon,
        "--concurrency",
        "2,4",
    ]);
    assert_clean_failure(&o, 2, "--point-interval");
    let o = run(&[
        "--shard",
        "0/2",
        "--start-at",
        &soon,
        "--find-max-concurrency",
        "2",
        "--slo",
        "ttft=1s",
    ]);
    assert_clean_failure(&o, 2, "run it unsharded");
}
