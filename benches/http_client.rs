//! `cargo bench --bench http_client`: what the HTTP client itself costs.
//!
//! A scripted SSE server (its own thread and runtime, same process, same
//! clock) records the instant it hands each content chunk to the socket
//! (in the poll that writes it); the client, on the very runtime the `http`
//! command uses (`--client-threads 1`, with and without `--busy-poll`), its
//! connections opened beforehand as the command does, stamps each chunk as
//! its bytes arrive. For N concurrent streams it
//! reports the error of the client's TTFT and ITL against that truth (p50,
//! p99), the delay of every chunk, and the client's CPU per streamed token
//! (the process's CPU time less the server thread's). The kernel's loopback
//! delivery counts as client error here: the figures are an upper bound.
//!
//! Env: INFERBENCH_BENCH_STREAMS (default "1,64,256,1024"),
//! INFERBENCH_BENCH_TOKENS (per request, default 40),
//! INFERBENCH_BENCH_ITL_MS (default 20),
//! INFERBENCH_BENCH_BUSY_POLL ("0", "1" or "0,1", the default: both),
//! INFERBENCH_BENCH_CLIENT_THREADS (default 1, as `--client-threads`),
//! INFERBENCH_BENCH_TLS ("1": the server speaks TLS, the client trusts its
//! certificate; the TLS cost then counts on both sides).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inferbench_harness::http::client::{ClientConfig, Endpoint, HttpClient, Outcome, TlsOptions};
use inferbench_harness::http::load::{run_point, Limits, Load, PointPlan};
use inferbench_harness::http::mock::{MockServer, Script};
use inferbench_harness::http::runtime::ClientRuntime;
use inferbench_harness::http::workload::Workload;
use inferbench_harness::stats::{Distribution, Stats};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64() * 1e3
    } else {
        -(b.duration_since(a).as_secs_f64() * 1e3)
    }
}

fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    // `cargo test --benches` runs benches without `--bench`: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let streams: Vec<u32> = list("INFERBENCH_BENCH_STREAMS", "1,64,256,1024");
    let busy_polls: Vec<u8> = list("INFERBENCH_BENCH_BUSY_POLL", "0,1");
    let tokens: u32 = env_or("INFERBENCH_BENCH_TOKENS", 40);
    let itl = Duration::from_millis(env_or("INFERBENCH_BENCH_ITL_MS", 20));
    let threads: u32 = env_or("INFERBENCH_BENCH_CLIENT_THREADS", 1);
    let tls = env_or("INFERBENCH_BENCH_TLS", 0u8) != 0;

    println!(
        "client cost: {tokens} tokens per request, server ITL {} ms, TTFT 50 ms, client on {threads} worker thread(s){}",
        itl.as_millis(),
        if tls { ", over TLS" } else { "" }
    );
    println!(
        "| busy poll | streams | requests | chunks/s | TTFT err p50 ms | TTFT err p99 ms | ITL err p50 ms | ITL err p99 ms | chunk delay p50 / p99 / max ms | client CPU µs/token | client CPU % |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &busy_poll in &busy_polls {
        for &n in &streams {
            measure(n, busy_poll != 0, threads, tls, tokens, itl);
        }
    }
}

fn measure(n: u32, busy_poll: bool, threads: u32, tls: bool, tokens: u32, itl: Duration) {
    let script = move |_: u64, _: &serde_json::Value| Script {
        ttft: Duration::from_millis(50),
        itl,
        tokens,
        ..Script::default()
    };
    let server = if tls {
        MockServer::start_tls(script)
    } else {
        MockServer::start(script)
    }
    .expect("mock server");
    // Kept until the client is built from it.
    let ca_dir = tempfile::tempdir().expect("temp dir");
    let ca_certs = match server.certificate() {
        Some(pem) => {
            let path = ca_dir.path().join("ca.pem");
            std::fs::write(&path, pem).expect("write the certificate");
            vec![path]
        }
        None => Vec::new(),
    };
    let runtime = ClientRuntime::new(threads, busy_poll).expect("runtime");
    let client = Arc::new(
        HttpClient::new(ClientConfig {
            base_url: server.url(),
            endpoint: Endpoint::Completions,
            model: "mock-model".into(),
            api_key: None,
            timeout: Duration::from_secs(60),
            ignore_eos: false,
            keep_text: false,
            tls: TlsOptions {
                ca_certs,
                insecure: false,
            },
        })
        .expect("client"),
    );
    let workload = Arc::new(Workload::parse(&format!("fixed:16:{tokens}")).expect("workload"));
    let requests = u64::from(n) * 2;
    // As the `http` command does by default: no measured request pays for a
    // handshake.
    let preconnected = runtime.block_on(client.preconnect(n));
    assert_eq!(preconnected, n, "preconnect");
    let plan = PointPlan {
        load: Load::Closed { concurrency: n },
        limits: Limits {
            num_requests: Some(requests),
            duration: None,
        },
        seed: 0,
        prompts: inferbench_harness::workload::PromptStream::new(
            0,
            0,
            inferbench_harness::workload::Phase::Measured,
        ),
        start: Instant::now(),
    };
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(requests as usize);
    let process_cpu = cpu_time::ProcessTime::now();
    let server_cpu = server.thread_cpu();
    let wall = Instant::now();
    runtime.block_on(run_point(
        client,
        workload,
        plan,
        Arc::new(AtomicBool::new(false)),
        |c| outcomes.push(c.outcome),
    ));
    let wall = wall.elapsed().as_secs_f64();
    let server_cpu = match (server_cpu, server.thread_cpu()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    let cpu = process_cpu
        .elapsed()
        .saturating_sub(server_cpu)
        .as_secs_f64();

    let mut ttft_err = Distribution::milliseconds();
    let mut itl_err = Distribution::milliseconds();
    let mut delay = Distribution::milliseconds();
    let mut chunks = 0u64;
    let mut failed = 0;
    for o in &outcomes {
        let Some(truth) = o.response_id.as_deref().and_then(|id| server.truth(id)) else {
            failed += 1;
            continue;
        };
        if o.failure.is_some() || truth.content_sent.len() != o.content_times.len() {
            failed += 1;
            continue;
        }
        chunks += o.content_times.len() as u64;
        // The client starts its TTFT clock at send, the truth at the same
        // instant: the difference is the first chunk's delivery delay.
        ttft_err.record(signed_ms(o.content_times[0], truth.content_sent[0]).abs());
        for (seen, sent) in o.content_times.iter().zip(&truth.content_sent) {
            delay.record(signed_ms(*seen, *sent).abs());
        }
        for k in 1..o.content_times.len() {
            let seen = signed_ms(o.content_times[k], o.content_times[k - 1]);
            let sent = signed_ms(truth.content_sent[k], truth.content_sent[k - 1]);
            itl_err.record((seen - sent).abs());
        }
    }
    let show = |s: &Option<Stats>, f: fn(&Stats) -> f64| {
        s.as_ref()
            .map_or_else(|| "-".into(), |s| format!("{:.3}", f(s)))
    };
    let (t, i, d) = (ttft_err.stats(), itl_err.stats(), delay.stats());
    println!(
        "| {} | {n} | {}{} | {:.0} | {} | {} | {} | {} | {} / {} / {} | {:.1} | {:.1} |",
        if busy_poll { "yes" } else { "no" },
        outcomes.len(),
        if failed > 0 {
            format!(" ({failed} failed)")
        } else {
            String::new()
        },
        chunks as f64 / wall,
        show(&t, |s| s.p50),
        show(&t, |s| s.p99),
        show(&i, |s| s.p50),
        show(&i, |s| s.p99),
        show(&d, |s| s.p50),
        show(&d, |s| s.p99),
        show(&d, |s| s.max),
        if chunks > 0 {
            cpu * 1e6 / chunks as f64
        } else {
            0.0
        },
        100.0 * cpu / wall,
    );
}
