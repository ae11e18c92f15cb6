//! The HTTP client and load generator against the scripted mock server, over
//! real sockets on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inferbench_core::workload::{Phase, PromptStream};
use inferbench_http::arrival::Arrival;
use inferbench_http::client::{ClientConfig, ClientError, Endpoint, HttpClient, TlsOptions};
use inferbench_http::load::{run_point, Limits, Load, PointPlan};
use inferbench_http::point::{HttpAccumulator, RequestRecord};
use inferbench_http::schema::{HttpPoint, Slo};
use inferbench_http::workload::Workload;
use inferbench_test_support::mock::{Fault, MockServer, Script, UsageStyle};

fn client(server: &MockServer, endpoint: Endpoint, api_key: Option<&str>) -> Arc<HttpClient> {
    Arc::new(
        HttpClient::new(ClientConfig {
            base_url: server.url(),
            endpoint,
            model: "mock-model".into(),
            api_key: api_key.map(str::to_string),
            timeout: Duration::from_secs(2),
            ignore_eos: true,
            keep_text: false,
            tls: TlsOptions::default(),
        })
        .unwrap(),
    )
}

async fn measure(
    client: Arc<HttpClient>,
    load: Load,
    requests: u64,
    seed: u64,
    slo: Slo,
) -> (Vec<RequestRecord>, HttpPoint) {
    let workload = Arc::new(Workload::parse("fixed:16:8").unwrap());
    let start = Instant::now();
    let mut acc = HttpAccumulator::new(start, slo);
    let mut records = Vec::new();
    let description = load.describe();
    let plan = PointPlan {
        load,
        limits: Limits {
            num_requests: Some(requests),
            duration: None,
        },
        seed,
        prompts: PromptStream::new(seed, 0, Phase::Measured),
        start,
        shard: None,
    };
    let end = run_point(
        client,
        workload,
        plan,
        Arc::new(AtomicBool::new(false)),
        |c| records.push(acc.add(c)),
    )
    .await;
    assert!(!end.interrupted);
    records.sort_by_key(|r| r.index);
    let point = acc.finish(description, true, end.cancelled);
    (records, point)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn known_delays_give_exact_counts_and_close_timings() {
    let server = MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(40),
        itl: Duration::from_millis(10),
        tokens: 8,
        ..Script::default()
    })
    .unwrap();
    let (records, p) = measure(
        client(&server, Endpoint::Completions, None),
        Load::Closed { concurrency: 2 },
        6,
        1,
        Slo::default(),
    )
    .await;
    assert_eq!(
        (p.requests.total, p.requests.succeeded, p.requests.failed),
        (6, 6, 0)
    );
    assert_eq!(p.ttft_ms.as_ref().unwrap().count, 6);
    assert_eq!(p.itl_ms.as_ref().unwrap().count, 6 * 7);
    assert_eq!(p.tpot_ms.as_ref().unwrap().count, 6);
    assert_eq!(p.output_tokens.as_ref().unwrap().mean, 8.0);
    assert_eq!(p.output_tokens_source.get("usage"), Some(&6));
    assert_eq!(p.token_count_discrepancy.unwrap().requests_differing, 0);
    assert_eq!(server.requests(), 6);
    // Each request's client-side times against the server's own record of
    // when it sent each chunk (same clock, same process). Loose bounds: CI
    // machines are noisy; the benchmark measures the real error.
    for r in &records {
        let truth = server.truth(r.response_id.as_deref().unwrap()).unwrap();
        assert_eq!(truth.content_sent.len(), r.content_ms.len());
        assert!(r.ttft_ms.unwrap() >= 40.0 - 1.0, "{r:?}");
        let sent_gap = truth.content_sent[1]
            .duration_since(truth.content_sent[0])
            .as_secs_f64()
            * 1e3;
        let seen_gap = r.content_ms[1] - r.content_ms[0];
        assert!(
            (sent_gap - seen_gap).abs() < 15.0,
            "sent {sent_gap} seen {seen_gap}"
        );
    }
    let itl = p.itl_ms.as_ref().unwrap();
    assert!(itl.p50 > 5.0 && itl.p50 < 30.0, "{itl:?}");
    let ttft = p.ttft_ms.as_ref().unwrap();
    assert!(ttft.p50 >= 39.0 && ttft.p50 < 90.0, "{ttft:?}");
    assert!(p.output_throughput_tok_s > 0.0 && p.duration_s > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn every_fault_is_counted_in_its_class_and_kept_out_of_latencies() {
    let faults = [
        None,
        Some(Fault::Status(404)),
        Some(Fault::Status(503)),
        Some(Fault::NoHeaders),
        Some(Fault::StallAfter(2)),
        Some(Fault::CutAfter(3)),
        Some(Fault::MalformedJsonAfter(1)),
        Some(Fault::BadUtf8After(1)),
        Some(Fault::NotEventStream),
        Some(Fault::ZeroTokens),
        Some(Fault::ErrorInStreamAfter(2)),
        None,
    ];
    let server = MockServer::start(move |n, _| {
        let index = n as usize % faults.len();
        Script {
            ttft: Duration::from_millis(2),
            itl: Duration::from_millis(1),
            tokens: 5,
            fault: faults[index],
            ..Script::default()
        }
    })
    .unwrap();
    // Short timeout so stalls and missing headers are detected quickly.
    let client = Arc::new(
        HttpClient::new(ClientConfig {
            base_url: server.url(),
            endpoint: Endpoint::Completions,
            model: "mock-model".into(),
            api_key: None,
            timeout: Duration::from_millis(400),
            ignore_eos: false,
            keep_text: false,
            tls: TlsOptions::default(),
        })
        .unwrap(),
    );
    let workload = Arc::new(Workload::parse("fixed:4:5").unwrap());
    let start = Instant::now();
    let mut acc = HttpAccumulator::new(start, Slo::default());
    let mut records = Vec::new();
    let load = Load::Closed { concurrency: 2 };
    let description = load.describe();
    let plan = PointPlan {
        load,
        limits: Limits {
            num_requests: Some(faults.len() as u64 * 3),
            duration: None,
        },
        seed: 0,
        prompts: PromptStream::new(0, 0, Phase::Measured),
        start,
        shard: None,
    };
    let end = run_point(
        client,
        workload,
        plan,
        Arc::new(AtomicBool::new(false)),
        |c| records.push(acc.add(c)),
    )
    .await;
    assert_eq!(end.cancelled, 0);
    let p = acc.finish(description, true, 0);
    let by_class = &p.requests.failed_by_class;
    assert_eq!(p.requests.total, records.len() as u64);
    assert_eq!(p.requests.succeeded + p.requests.failed, p.requests.total);
    // Every class this mock can inject shows up, none as "other".
    for class in [
        "http_4xx",
        "http_5xx",
        "timeout_first_byte",
        "stall",
        "stream_cut",
        "malformed_json",
        "malformed_sse",
        "zero_tokens",
        "server_error",
    ] {
        assert!(
            by_class.get(class).copied().unwrap_or(0) > 0,
            "{class} missing: {by_class:?}"
        );
    }
    assert!(!by_class.contains_key("other"), "{by_class:?}");
    // Only successes enter the latency statistics.
    assert_eq!(p.ttft_ms.map_or(0, |s| s.count), p.requests.succeeded);
    assert_eq!(p.e2e_ms.map_or(0, |s| s.count), p.requests.succeeded);
    for r in records.iter().filter(|r| !r.ok) {
        let f = r.failure.as_ref().unwrap();
        assert!(!f.message.is_empty());
        assert!(r.ttft_ms.is_none());
        if f.class.name().starts_with("http_") {
            assert!(
                f.message.contains("injected status"),
                "server message kept: {f:?}"
            );
            assert!(f.http_status.is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn refused_and_unresolvable_connections_are_classified() {
    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = HttpClient::new(ClientConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        endpoint: Endpoint::Completions,
        model: "m".into(),
        api_key: None,
        timeout: Duration::from_secs(2),
        ignore_eos: false,
        keep_text: false,
        tls: TlsOptions::default(),
    })
    .unwrap();
    let spec = Workload::parse("short")
        .unwrap()
        .request(&PromptStream::new(0, 0, Phase::Measured), 0);
    let o = refused.send(&spec).await;
    assert_eq!(o.failure.unwrap().class.name(), "connection_refused");
    let e = refused.models().await.unwrap_err().to_string();
    assert!(
        e.contains("connection refused") && e.contains(&port.to_string()),
        "{e}"
    );

    let dns = HttpClient::new(ClientConfig {
        base_url: "http://no-such-host.invalid:8000".into(),
        ..refused.config().clone()
    })
    .unwrap();
    assert_eq!(dns.send(&spec).await.failure.unwrap().class.name(), "dns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn chat_and_every_usage_style() {
    for (endpoint, usage, empty_every) in [
        (Endpoint::Chat, UsageStyle::SeparateChunk, Some(3)),
        (Endpoint::Completions, UsageStyle::SeparateChunk, None),
        (Endpoint::Chat, UsageStyle::Absent, None),
        (Endpoint::Completions, UsageStyle::InFinalChunk, Some(4)),
    ] {
        let server = MockServer::start(move |_, _| Script {
            ttft: Duration::from_millis(2),
            itl: Duration::from_millis(1),
            tokens: 9,
            usage,
            empty_every,
            fault: None,
            llama_server: false,
        })
        .unwrap();
        let (records, p) = measure(
            client(&server, endpoint, None),
            Load::Closed { concurrency: 3 },
            6,
            2,
            Slo::default(),
        )
        .await;
        assert_eq!(
            p.requests.succeeded, 6,
            "{endpoint:?} {usage:?}: {:?}",
            p.requests
        );
        // Chunks with empty text are not content: 9 tokens, every third empty
        // except the last, leaves 7 content chunks.
        let content = match empty_every {
            Some(3) => 7,
            Some(4) => 7,
            _ => 9,
        };
        assert!(records.iter().all(|r| r.content_ms.len() == content));
        assert_eq!(p.empty_chunks, 6 * (9 - content as u64));
        let truth = server.all_truth();
        let body = &truth[0].body;
        match endpoint {
            Endpoint::Chat => assert_eq!(body["messages"][0]["role"], "user"),
            Endpoint::Completions => assert!(body["prompt"].is_string()),
        }
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["ignore_eos"], true);
        assert_eq!(body["max_tokens"], 8);
        if usage == UsageStyle::Absent {
            // Without usage, tokens are counted from content chunks.
            assert_eq!(p.output_tokens_source.get("chunks"), Some(&6));
            assert_eq!(p.output_tokens.as_ref().unwrap().mean, content as f64);
            assert!(p.token_count_discrepancy.is_none());
        } else {
            assert_eq!(p.output_tokens_source.get("usage"), Some(&6));
            assert_eq!(p.output_tokens.as_ref().unwrap().mean, 9.0);
            let d = p.token_count_discrepancy.unwrap();
            assert_eq!(d.requests_differing, if content == 9 { 0 } else { 6 });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn open_loop_schedule_is_reproducible_and_on_rate() {
    let server = MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(1),
        itl: Duration::from_millis(1),
        tokens: 2,
        ..Script::default()
    })
    .unwrap();
    let open = |arrival| Load::Open {
        rate: 50.0,
        arrival,
        max_inflight: 64,
    };
    let (a, _) = measure(
        client(&server, Endpoint::Completions, None),
        open(Arrival::Poisson),
        40,
        11,
        Slo::default(),
    )
    .await;
    let (b, _) = measure(
        client(&server, Endpoint::Completions, None),
        open(Arrival::Poisson),
        40,
        11,
        Slo::default(),
    )
    .await;
    let due = |r: &[RequestRecord]| {
        r.iter()
            .map(|r| r.scheduled_ms.unwrap())
            .collect::<Vec<_>>()
    };
    let (da, db) = (due(&a), due(&b));
    // Intended times are relative to each point's own start: equal to the
    // microsecond whatever the run.
    assert!(
        da.iter().zip(&db).all(|(x, y)| (x - y).abs() < 1e-3),
        "{da:?} vs {db:?}"
    );

    let (c, p) = measure(
        client(&server, Endpoint::Completions, None),
        open(Arrival::Constant),
        60,
        3,
        Slo::default(),
    )
    .await;
    assert_eq!(p.requests.succeeded, 60);
    let first = c.iter().map(|r| r.sent_ms).fold(f64::INFINITY, f64::min);
    let last = c.iter().map(|r| r.sent_ms).fold(0.0, f64::max);
    let achieved = 59.0 / ((last - first) / 1e3);
    assert!(
        (achieved - 50.0).abs() / 50.0 < 0.05,
        "achieved {achieved} req/s"
    );
    assert_eq!(p.late_requests, 0);
    assert_eq!(p.schedule_lag_ms.as_ref().unwrap().count, 60);
    assert_eq!(p.ttft_from_scheduled_ms.as_ref().unwrap().count, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn in_flight_cap_makes_requests_late_never_skipped() {
    let server = MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(60),
        itl: Duration::from_millis(1),
        tokens: 2,
        ..Script::default()
    })
    .unwrap();
    // 100 req/s against 60 ms requests with at most 2 in flight: most wait.
    let load = Load::Open {
        rate: 100.0,
        arrival: Arrival::Constant,
        max_inflight: 2,
    };
    let (records, p) = measure(
        client(&server, Endpoint::Completions, None),
        load,
        20,
        0,
        Slo::default(),
    )
    .await;
    assert_eq!(p.requests.total, 20, "no request skipped");
    assert!(p.late_requests > 0);
    assert!(records.iter().filter(|r| r.late).count() as u64 == p.late_requests);
    let lag = p.schedule_lag_ms.as_ref().unwrap();
    assert!(lag.max > 20.0, "lag reported: {lag:?}");
    // The corrected TTFT includes the wait: larger than the plain one.
    assert!(p.ttft_from_scheduled_ms.as_ref().unwrap().max > p.ttft_ms.as_ref().unwrap().max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn slo_goodput_counts_requests_meeting_every_objective() {
    let server = MockServer::start(|n, _| Script {
        ttft: Duration::from_millis(if n % 2 == 0 { 5 } else { 120 }),
        itl: Duration::from_millis(1),
        tokens: 3,
        ..Script::default()
    })
    .unwrap();
    let slo = Slo {
        ttft_ms: Some(60.0),
        tpot_ms: None,
        e2e_ms: None,
    };
    let (_, p) = measure(
        client(&server, Endpoint::Completions, None),
        Load::Closed { concurrency: 1 },
        6,
        0,
        slo,
    )
    .await;
    assert_eq!(p.slo_met, Some(3));
    assert!(p.goodput_req_s.unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn api_key_is_sent_but_never_recorded() {
    let secret = "sk-inferbench-secret-4242";
    let server = MockServer::start(|n, _| Script {
        ttft: Duration::from_millis(1),
        itl: Duration::from_millis(1),
        tokens: 2,
        fault: (n == 1).then_some(Fault::Status(401)),
        ..Script::default()
    })
    .unwrap();
    let (records, p) = measure(
        client(&server, Endpoint::Completions, Some(secret)),
        Load::Closed { concurrency: 1 },
        3,
        0,
        Slo::default(),
    )
    .await;
    assert_eq!(
        server.all_truth()[0].authorization.as_deref(),
        Some(&*format!("Bearer {secret}"))
    );
    assert_eq!(p.requests.failed, 1);
    let everything = format!(
        "{}{}",
        serde_json::to_string(&records).unwrap(),
        serde_json::to_string(&p).unwrap()
    );
    assert!(!everything.contains(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_connection_closed_before_any_response_is_retried_once() {
    // Every other request's connection is closed unanswered: each request's
    // first attempt fails that way and its one retry succeeds.
    let server = MockServer::start(|n, _| Script {
        fault: (n % 2 == 0).then_some(Fault::CloseConnection),
        ..Script {
            ttft: Duration::from_millis(1),
            itl: Duration::from_millis(1),
            tokens: 2,
            ..Script::default()
        }
    })
    .unwrap();
    let (records, p) = measure(
        client(&server, Endpoint::Completions, None),
        Load::Closed { concurrency: 1 },
        3,
        0,
        Slo::default(),
    )
    .await;
    eprintln!(
        "alternating: {:?} server saw {}",
        p.requests,
        server.requests()
    );
    assert_eq!(p.requests.succeeded, 3, "{:?}", p.requests);
    assert_eq!(p.requests.retried, 3);
    assert!(records.iter().all(|r| r.retries == 1));
    assert_eq!(server.requests(), 6);

    // A server that always closes: the retry fails too, and says how.
    let closing = MockServer::start(|_, _| Script {
        fault: Some(Fault::CloseConnection),
        ..Script::default()
    })
    .unwrap();
    let (_, p) = measure(
        client(&closing, Endpoint::Completions, None),
        Load::Closed { concurrency: 1 },
        2,
        0,
        Slo::default(),
    )
    .await;
    assert_eq!(
        p.requests.failed_by_class.get("connection_closed"),
        Some(&2),
        "{:?}",
        p.requests
    );
    assert_eq!(closing.requests(), 4, "one retry each, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn https_with_a_trusted_self_signed_certificate() {
    let server = MockServer::start_tls(|_, _| Script {
        tokens: 5,
        ..Script::default()
    })
    .unwrap();
    assert!(server.url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.certificate().unwrap()).unwrap();
    let config = |tls: TlsOptions| ClientConfig {
        tls,
        ..client(&server, Endpoint::Chat, None).config().clone()
    };

    // Not trusted: refused at the probe, and the message says why.
    let untrusted = HttpClient::new(config(TlsOptions::default())).unwrap();
    let e = untrusted.models().await.unwrap_err().to_string();
    assert!(
        e.contains(&server.url()) && e.contains("TLS") && e.contains("--ca-cert"),
        "{e}"
    );
    let spec = Workload::parse("fixed:8:5")
        .unwrap()
        .request(&PromptStream::new(0, 0, Phase::Measured), 0);
    let refused = untrusted.send(&spec).await.failure.unwrap();
    assert_eq!(refused.class.name(), "tls");

    for tls in [
        TlsOptions {
            ca_certs: vec![ca.clone()],
            insecure: false,
        },
        TlsOptions {
            ca_certs: Vec::new(),
            insecure: true,
        },
    ] {
        let client = HttpClient::new(config(tls)).unwrap();
        assert_eq!(
            client.models().await.unwrap()["data"][0]["id"],
            "mock-model"
        );
        let o = client.send(&spec).await;
        assert!(o.failure.is_none(), "{:?}", o.failure);
        assert_eq!(o.content_times.len(), 5);
    }
}

#[test]
fn unreadable_or_non_pem_ca_certificates_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for path in [dir.path().join("missing.pem"), not_pem] {
        let e = HttpClient::new(ClientConfig {
            base_url: "https://127.0.0.1:1".into(),
            endpoint: Endpoint::Completions,
            model: "m".into(),
            api_key: None,
            timeout: Duration::from_secs(2),
            ignore_eos: false,
            keep_text: false,
            tls: TlsOptions {
                ca_certs: vec![path.clone()],
                insecure: false,
            },
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(&format!("--ca-cert {}:", path.display())),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn preconnected_connections_carry_the_point_without_new_handshakes() {
    let server = MockServer::start(|_, _| Script {
        tokens: 3,
        ..Script::default()
    })
    .unwrap();
    let client = client(&server, Endpoint::Completions, None);
    assert_eq!(client.preconnect(8).await, 8);
    // Each probe holds its connection until all are ready: 8 distinct
    // connections, none still opening.
    assert_eq!(client.connects().started(), 8);
    assert_eq!(client.connects().pending(), 0, "a connect still opening");
    // The server may count the last accept a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.connections() < 8 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.connections(), 8);
    let (records, _) = measure(
        client.clone(),
        Load::Closed { concurrency: 8 },
        16,
        3,
        Slo::default(),
    )
    .await;
    assert!(records.iter().all(|r| r.ok));
    assert_eq!(
        client.connects().started(),
        8,
        "a measured request opened a connection"
    );
    // Each connection carried two requests in turn: a stream read to its end
    // leaves its connection reusable.
    assert_eq!(
        server.connections(),
        8,
        "a measured request opened a connection"
    );
    // The next point's preconnect readies the idle ones, and opens only
    // what it needs beyond them.
    assert_eq!(client.preconnect(8).await, 8);
    assert_eq!(
        client.connects().started(),
        8,
        "idle connections not reused"
    );
    assert_eq!(client.preconnect(12).await, 12);
    assert_eq!(client.connects().started(), 12);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.connections() < 12 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.connections(), 12);
}

/// A server on a real socket that reads one request per connection,
/// writes `response`, and closes the connection 20 ms later (once the
/// client has read it, so that the close reaches a connection idle in the
/// pool). Its URL, the connections it accepted, and its task.
async fn one_response_per_connection(
    response: Vec<u8>,
) -> (
    String,
    Arc<std::sync::atomic::AtomicU64>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = accepted.clone();
    let response = Arc::new(response);
    let serving = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as many body bytes as it announced.
                let body_end = loop {
                    let got = socket.read(&mut buf).await.unwrap();
                    assert!(got > 0, "the client closed before its request");
                    request.extend_from_slice(&buf[..got]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(head) = text.find("\r\n\r\n") {
                        let length = text[..head]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                        break head + 4 + length;
                    }
                };
                while request.len() < body_end {
                    let got = socket.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..got]);
                }
                // A client that stops reading early makes this fail: fine.
                let _ = socket.write_all(&response).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    (url, accepted, serving)
}

fn plain_client(url: String) -> Arc<HttpClient> {
    Arc::new(
        HttpClient::new(ClientConfig {
            base_url: url,
            endpoint: Endpoint::Completions,
            model: "m".into(),
            api_key: None,
            timeout: Duration::from_secs(5),
            ignore_eos: false,
            keep_text: false,
            tls: TlsOptions::default(),
        })
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_connection_the_server_closed_while_idle_is_replaced_without_a_retry() {
    let events = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"a\",\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"b\",\"finish_reason\":\"length\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    // Keep-alive in its headers, closed while it sits in the pool.
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: keep-alive\r\ncontent-length: {}\r\n\r\n{events}",
        events.len()
    );
    let (url, accepted, serving) = one_response_per_connection(response.into_bytes()).await;
    let client = plain_client(url);
    let spec = Workload::parse("fixed:8:2")
        .unwrap()
        .request(&PromptStream::new(0, 0, Phase::Measured), 0);
    for round in 0..3 {
        let o = client.send(&spec).await;
        assert!(o.failure.is_none(), "round {round}: {:?}", o.failure);
        assert_eq!(o.content_times.len(), 2, "round {round}");
        // Seen closed at checkout and replaced: not a failed attempt.
        assert_eq!(o.retries, 0, "round {round}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(client.connects().started(), 3);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_huge_error_body_is_read_through_and_named_briefly() {
    let page = "x".repeat(10 << 20);
    let response = format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{page}",
        page.len()
    );
    let (url, _, serving) = one_response_per_connection(response.into_bytes()).await;
    let client = plain_client(url);
    let spec = Workload::parse("fixed:8:2")
        .unwrap()
        .request(&PromptStream::new(0, 0, Phase::Measured), 0);
    let failure = client.send(&spec).await.failure.unwrap();
    assert_eq!(failure.http_status, Some(500));
    assert!(
        failure.message.starts_with("HTTP 500"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.len() < 400,
        "{} bytes",
        failure.message.len()
    );
    serving.abort();
}

/// The `GET`s around the load (`/v1/models`, `/metrics`) share the client's
/// HTTP stack but not its measured connections: they follow a redirect,
/// keep their own connection alive, and never count among the connects a
/// point reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn gets_follow_redirects_on_connections_of_their_own() {
    let server = MockServer::start(|_, _| Script::default()).unwrap();
    let client = client(&server, Endpoint::Completions, Some("sk-get"));
    let metrics = client
        .get_text(&client.url("/moved/metrics?name=x"))
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE vllm:num_requests_running gauge"),
        "{metrics}"
    );
    let models = client.models().await.unwrap();
    assert_eq!(models["data"][0]["id"], "mock-model");
    // Three GETs (the redirect, its target, the models) on one kept-alive
    // connection, none of them the measured requests'.
    assert_eq!(server.connections(), 1);
    assert_eq!(client.connects().started(), 0);
    assert_eq!(client.preconnect(2).await, 2);
    assert_eq!(client.connects().started(), 2);
    client.get_text(&client.url("/metrics")).await.unwrap();
    assert_eq!(client.connects().started(), 2);
    assert_eq!(server.connections(), 3);
}

/// A `GET` that cannot reach its server says why, naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_get_to_a_closed_port_is_refused_by_name() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = plain_client(format!("http://127.0.0.1:{port}"));
    let url = client.url("/metrics");
    match client.get_text(&url).await {
        Err(ClientError::Unreachable {
            url: named,
            message,
        }) => {
            assert_eq!(named, url);
            assert!(
                message.starts_with("connection refused (is the server running?)"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match client.get_text("ftp://127.0.0.1/metrics").await {
        Err(ClientError::Unreachable { message, .. }) => {
            assert!(message.contains("unsupported scheme 'ftp'"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
