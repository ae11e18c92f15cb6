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
//! certificate; the TLS cost then counts on both sides),
//! INFERBENCH_BENCH_FLOOR ("0" leaves it out; default "1").
//!
//! The floor row ("bare reader") is the same streams read by the least a
//! client on this runtime can do: a task per stream that writes the request
//! bytes, reads the socket and stamps each read, with no HTTP, SSE or JSON
//! parsing. What the kernel (the loopback, its ACKs, epoll, wake-ups) and
//! the runtime cost per token on this machine is that row's CPU: the
//! client's cost above it is what its own code adds. Both rows split the
//! client's CPU into user and kernel time (from /proc, 10 ms ticks).
//! The last column counts how often the client's threads slept (their
//! voluntary context switches) per token: it tells kernel time spent per
//! chunk from kernel time spent waking an idle thread.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inferbench_harness::http::client::{
    read_events, ClientConfig, Endpoint, HttpClient, Outcome, TlsOptions,
};
use inferbench_harness::http::load::{run_point, Limits, Load, PointPlan};
use inferbench_harness::http::runtime::{ClientRuntime, CLIENT_THREAD_NAME};
use inferbench_harness::http::workload::Workload;
use inferbench_harness::stats::{Distribution, Stats};
use inferbench_test_support::mock::{MockServer, Script};

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
        "| busy poll | streams | requests | chunks/s | TTFT err p50 ms | TTFT err p99 ms | ITL err p50 ms | ITL err p99 ms | chunk delay p50 / p99 / max ms | client CPU µs/token | client CPU % | client sleeps per token |"
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let floor = env_or("INFERBENCH_BENCH_FLOOR", 1u8) != 0 && !tls;
    for &busy_poll in &busy_polls {
        for &n in &streams {
            measure(n, busy_poll != 0, threads, tls, tokens, itl);
            if floor {
                measure_floor(n, busy_poll != 0, threads, tokens, itl, false);
                measure_floor(n, busy_poll != 0, threads, tokens, itl, true);
            }
        }
    }
}

fn script(tokens: u32, itl: Duration) -> impl Fn(u64, &serde_json::Value) -> Script {
    move |_: u64, _: &serde_json::Value| Script {
        ttft: Duration::from_millis(50),
        itl,
        tokens,
        ..Script::default()
    }
}

/// User and kernel CPU ticks (`/proc/.../stat` fields 14 and 15).
fn ticks(path: &str) -> (u64, u64) {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The command name may hold spaces: fields are counted after its ')'.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    match fields[..] {
        [user, kernel] => (user, kernel),
        _ => (0, 0),
    }
}

/// The client's CPU (process less the server's thread) as user and kernel
/// ticks, read before and after a run.
struct CpuSplit {
    process: (u64, u64),
    server: (u64, u64),
    server_path: String,
    process_cpu: cpu_time::ProcessTime,
    server_cpu: Option<Duration>,
    client_sleeps: u64,
}

/// How often the client's worker threads went to sleep (their voluntary
/// context switches, summed): on a virtual machine each sleep and wake-up
/// is a trip through the hypervisor, most of the kernel's share per token.
fn client_sleeps() -> u64 {
    // The kernel keeps 15 bytes of a thread's name.
    let name = &CLIENT_THREAD_NAME[..CLIENT_THREAD_NAME.len().min(15)];
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

impl CpuSplit {
    fn start(server: &MockServer) -> CpuSplit {
        let server_path = server
            .thread_id()
            .map(|tid| format!("/proc/self/task/{tid}/stat"))
            .unwrap_or_default();
        CpuSplit {
            process: ticks("/proc/self/stat"),
            server: ticks(&server_path),
            server_path,
            process_cpu: cpu_time::ProcessTime::now(),
            server_cpu: server.thread_cpu(),
            client_sleeps: client_sleeps(),
        }
    }

    /// The client threads' sleeps since `start`, per token.
    fn sleeps_per_token(&self, tokens: u64) -> String {
        let sleeps = client_sleeps().saturating_sub(self.client_sleeps);
        format!("{:.2}", sleeps as f64 / tokens.max(1) as f64)
    }

    /// The client's CPU seconds since `start` (the process's, less the
    /// server thread's, at nanosecond resolution), and the kernel's share
    /// of it.
    fn finish(&self, server: &MockServer) -> (f64, Option<f64>) {
        let server_cpu = match (self.server_cpu, server.thread_cpu()) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => Duration::ZERO,
        };
        let cpu = self
            .process_cpu
            .elapsed()
            .saturating_sub(server_cpu)
            .as_secs_f64();
        (cpu, self.kernel_share())
    }

    /// The kernel's share of the client's CPU since `start`, if any was seen.
    fn kernel_share(&self) -> Option<f64> {
        let (pu, pk) = ticks("/proc/self/stat");
        let (su, sk) = ticks(&self.server_path);
        let user = (pu - self.process.0).saturating_sub(su - self.server.0);
        let kernel = (pk - self.process.1).saturating_sub(sk - self.server.1);
        (user + kernel > 0).then(|| kernel as f64 / (user + kernel) as f64)
    }
}

fn cpu_cell(cpu_per_token_us: f64, kernel_share: Option<f64>) -> String {
    match kernel_share {
        Some(k) => format!(
            "{cpu_per_token_us:.1} ({:.1} user + {:.1} kernel)",
            cpu_per_token_us * (1.0 - k),
            cpu_per_token_us * k
        ),
        None => format!("{cpu_per_token_us:.1}"),
    }
}

/// The floor: the same server and streams read with no HTTP, SSE or JSON
/// parsing (see the module's comment). With `parse`, each read is handed to
/// the client's own event reader (`read_events`: SSE, JSON, timestamps)
/// without hyper in between: what a client that owned its socket would pay.
fn measure_floor(n: u32, busy_poll: bool, threads: u32, tokens: u32, itl: Duration, parse: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = MockServer::start(script(tokens, itl)).expect("mock server");
    let addr = server
        .url()
        .trim_start_matches("http://")
        .parse::<std::net::SocketAddr>()
        .expect("server address");
    let runtime = ClientRuntime::new(threads, busy_poll).expect("runtime");
    let body = serde_json::json!({
        "model": "mock-model", "prompt": "x", "max_tokens": tokens, "stream": true,
    })
    .to_string();
    let request = Arc::new(format!(
        "POST /v1/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    let connections = runtime.block_on(async {
        let mut connections = Vec::new();
        for _ in 0..n {
            let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
            socket.set_nodelay(true).expect("nodelay");
            connections.push(socket);
        }
        connections
    });
    let split = CpuSplit::start(&server);
    let wall = Instant::now();
    let chunks: u64 = runtime.block_on(async {
        let tasks: Vec<_> = connections
            .into_iter()
            .map(|mut socket| {
                let request = request.clone();
                tokio::spawn(async move {
                    const DONE: &[u8] = b"data: [DONE]";
                    let finder = memchr::memmem::Finder::new(DONE);
                    let events = memchr::memmem::Finder::new(b"data: {");
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut stamps = Vec::with_capacity(tokens as usize + 4);
                    let mut chunks = 0u64;
                    for _ in 0..2 {
                        socket.write_all(request.as_bytes()).await.expect("write");
                        if parse {
                            // The response head and the chunk-size lines
                            // reach the SSE parser too: lines it ignores.
                            let reads = futures_util::stream::unfold(
                                (&mut socket, &mut buf),
                                |(socket, buf)| async {
                                    match socket.read(&mut buf[..]).await {
                                        Ok(0) => None,
                                        Ok(got) => {
                                            let piece = buf[..got].to_vec();
                                            Some((Ok::<_, std::io::Error>(piece), (socket, buf)))
                                        }
                                        Err(e) => Some((Err(e), (socket, buf))),
                                    }
                                },
                            );
                            let mut outcome = Outcome::new(Instant::now(), tokens as usize, false);
                            let reads = std::pin::pin!(reads);
                            read_events(reads, &mut outcome, Duration::from_secs(60))
                                .await
                                .expect("an event stream");
                            chunks += outcome.content_times.len() as u64;
                            continue;
                        }
                        // Bytes kept from the previous read, so that a
                        // marker split between reads is still found.
                        let mut carry = 0;
                        loop {
                            let got = socket.read(&mut buf[carry..]).await.expect("read");
                            assert!(got > 0, "the server closed the stream");
                            stamps.push(Instant::now());
                            let seen = &buf[..carry + got];
                            chunks +=
                                events.find_iter(&seen[carry.saturating_sub(6)..]).count() as u64;
                            if finder.find(seen).is_some() {
                                break;
                            }
                            let end = seen.len();
                            let keep = end.min(DONE.len() - 1);
                            buf.copy_within(end - keep..end, 0);
                            carry = keep;
                        }
                    }
                    std::hint::black_box(&stamps);
                    chunks
                })
            })
            .collect();
        let mut chunks = 0;
        for task in tasks {
            chunks += task.await.expect("floor task");
        }
        chunks
    });
    let wall = wall.elapsed().as_secs_f64();
    let (cpu, kernel_share) = split.finish(&server);
    let sleeps = split.sleeps_per_token(chunks);
    let expected = u64::from(n) * 2 * u64::from(tokens);
    println!(
        "| {} | {n} ({}) | {}{} | {:.0} | – | – | – | – | – | {} | {:.1} | {sleeps} |",
        if busy_poll { "yes" } else { "no" },
        if parse {
            "bare reader + read_events"
        } else {
            "bare reader"
        },
        u64::from(n) * 2,
        if chunks == expected {
            String::new()
        } else {
            format!(" ({chunks} of {expected} chunks)")
        },
        chunks as f64 / wall,
        cpu_cell(cpu * 1e6 / chunks.max(1) as f64, kernel_share),
        100.0 * cpu / wall,
    );
}

fn measure(n: u32, busy_poll: bool, threads: u32, tls: bool, tokens: u32, itl: Duration) {
    let script = script(tokens, itl);
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
        shard: None,
    };
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(requests as usize);
    let split = CpuSplit::start(&server);
    let wall = Instant::now();
    runtime.block_on(run_point(
        client,
        workload,
        plan,
        Arc::new(AtomicBool::new(false)),
        |c| outcomes.push(c.outcome),
    ));
    let wall = wall.elapsed().as_secs_f64();
    let (cpu, kernel_share) = split.finish(&server);
    let sleeps =
        split.sleeps_per_token(outcomes.iter().map(|o| o.content_times.len() as u64).sum());

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
        "| {} | {n} | {}{} | {:.0} | {} | {} | {} | {} | {} / {} / {} | {} | {:.1} | {sleeps} |",
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
        cpu_cell(cpu * 1e6 / chunks.max(1) as f64, kernel_share),
        100.0 * cpu / wall,
    );
}
