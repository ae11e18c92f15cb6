//! `cargo bench --bench client_memory`: the client's memory over a million
//! requests. A point keeps histograms, not requests, and writes each
//! request's record as it completes, so its memory must not grow with the
//! request count.
//!
//! The scripted server runs in a child process (this bench, re-executed),
//! so that what it keeps of every request (its send log) is not counted.
//! The client side does what the `http` command does with each completed
//! request: the point's accumulator takes it and its record is serialised
//! (to a sink here, to the request log there). After each checkpoint the
//! process's peak resident set (`VmHWM`) and current one (`VmRSS`) are
//! printed.
//!
//! Env: INFERBENCH_BENCH_MEMORY_REQUESTS (default 1000000),
//! INFERBENCH_BENCH_MEMORY_CONCURRENCY (default 64).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inferbench_harness::http::client::{ClientConfig, Endpoint, HttpClient, TlsOptions};
use inferbench_harness::http::load::{run_point, Limits, Load, PointPlan};
use inferbench_harness::http::point::HttpAccumulator;
use inferbench_harness::http::runtime::ClientRuntime;
use inferbench_harness::http::workload::Workload;
use inferbench_harness::schema::Slo;
use inferbench_harness::workload::{Phase, PromptStream};
use inferbench_test_support::mock::{MockServer, Script};

const CHILD: &str = "INFERBENCH_BENCH_MOCK_CHILD";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmHWM` and `VmRSS` of this process, in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn serve() {
    let server = MockServer::start(|_, _| Script {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        tokens: 2,
        ..Script::default()
    })
    .expect("mock server");
    println!("{}", server.url());
    std::io::stdout().flush().expect("stdout");
    // Serve until the parent closes our stdin.
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {}
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return serve();
    }
    // `cargo test --benches` runs benches without `--bench`: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let total: u64 = env_or("INFERBENCH_BENCH_MEMORY_REQUESTS", 1_000_000);
    let concurrency: u32 = env_or("INFERBENCH_BENCH_MEMORY_CONCURRENCY", 64);
    let mut child = Command::new(std::env::current_exe().expect("this bench"))
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut url)
        .expect("the server's URL");
    let url = url.trim().to_string();

    let runtime = ClientRuntime::new(1, false).expect("runtime");
    let client = Arc::new(
        HttpClient::new(ClientConfig {
            base_url: url,
            endpoint: Endpoint::Completions,
            model: "mock-model".into(),
            api_key: None,
            timeout: Duration::from_secs(60),
            ignore_eos: false,
            keep_text: false,
            tls: TlsOptions::default(),
        })
        .expect("client"),
    );
    let workload = Arc::new(Workload::parse("fixed:16:2").expect("workload"));
    runtime.block_on(client.preconnect(concurrency));
    println!("client memory: {total} requests of 2 tokens, {concurrency} in flight, client on 1 worker thread");
    println!("| requests | failed | req/s | peak RSS MiB | RSS MiB |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let start = Instant::now();
    let mut acc = HttpAccumulator::new(start, Slo::default());
    let mut sink = std::io::sink();
    let (mut done, mut failed) = (0u64, 0u64);
    let mut checkpoint = 10_000.min(total);
    while done < total {
        let t = Instant::now();
        let before = done;
        let plan = PointPlan {
            load: Load::Closed { concurrency },
            limits: Limits {
                num_requests: Some(checkpoint - done),
                duration: None,
            },
            seed: 0,
            // A fresh stream per checkpoint: every prompt distinct.
            prompts: PromptStream::new(
                0,
                u32::try_from(done / 10_000).unwrap_or(0),
                Phase::Measured,
            ),
            start: t,
            shard: None,
        };
        runtime.block_on(run_point(
            client.clone(),
            workload.clone(),
            plan,
            Arc::new(AtomicBool::new(false)),
            |completed| {
                failed += u64::from(completed.outcome.failure.is_some());
                done += 1;
                let record = acc.add(completed);
                serde_json::to_writer(&mut sink, &record).expect("serialise");
            },
        ));
        let (peak, now) = rss_mib();
        println!(
            "| {done} | {failed} | {:.0} | {peak:.1} | {now:.1} |",
            (done - before) as f64 / t.elapsed().as_secs_f64()
        );
        checkpoint = (checkpoint * 10).min(total);
    }
    drop(child.stdin.take());
    let _ = child.wait();
}
