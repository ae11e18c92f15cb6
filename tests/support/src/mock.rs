//! A scripted OpenAI-compatible streaming server on 127.0.0.1, for tests
//! that need exactly known timings or injected faults, and for measuring the
//! client's own error. It records when it handed each content chunk to the
//! connection (the truth the client's timestamps are compared with). It never
//! stands in for a real engine in a claim about one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the scripted test server: a poisoned lock or a bad script is a failed test"
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How the usage arrives, as the real servers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageStyle {
    /// In the last chunk with choices, beside `finish_reason` (llama.cpp).
    InFinalChunk,
    /// A separate last chunk with empty `choices` (vLLM, OpenAI).
    SeparateChunk,
    /// Never (llama-cpp-python while streaming).
    Absent,
}

/// A way the server misbehaves on one request, for the tests of how the
/// client classifies failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an OpenAI-style error body.
    Status(u16),
    /// Accept the request and never send headers.
    NoHeaders,
    /// Send `n` tokens, then nothing more, keeping the connection open.
    StallAfter(u32),
    /// Send `n` tokens, then end the body without `[DONE]` or a finish_reason.
    CutAfter(u32),
    /// Send `n` tokens, then a `data:` line that is not JSON.
    MalformedJsonAfter(u32),
    /// Send `n` tokens, then bytes that are not UTF-8.
    BadUtf8After(u32),
    /// Answer 200 with a JSON body instead of an event stream.
    NotEventStream,
    /// A proper stream end with no generated text.
    ZeroTokens,
    /// Send `n` tokens, then an error object inside the stream.
    ErrorInStreamAfter(u32),
    /// Close the connection without any response.
    CloseConnection,
}

/// What the server does for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Script {
    /// From receiving the request to sending the first chunk.
    pub ttft: Duration,
    /// Between one chunk and the next.
    pub itl: Duration,
    /// Tokens to stream, one chunk each (the usage's `completion_tokens`).
    pub tokens: u32,
    /// How the usage arrives.
    pub usage: UsageStyle,
    /// Every `n`th chunk has empty text (as vLLM's partial UTF-8 tokens).
    pub empty_every: Option<u32>,
    /// A fault to inject; `None`: a proper stream.
    pub fault: Option<Fault>,
    /// Account for the request as llama-server does: usage counts the
    /// prompt (a token-id array as sent, text as its words plus a BOS) and
    /// says in `prompt_tokens_details.cached_tokens` how many of its leading
    /// tokens some earlier prompt shared (a prefix cache of every prompt
    /// seen), and the final chunk carries a `timings` object (`cache_n`,
    /// `prompt_n`, `prompt_ms` = the scripted TTFT, `predicted_per_token_ms`
    /// = the scripted ITL, ...).
    pub llama_server: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(5),
            tokens: 8,
            usage: UsageStyle::InFinalChunk,
            empty_every: None,
            fault: None,
            llama_server: false,
        }
    }
}

/// The prompt of a request body as the tokens a server would evaluate: token
/// ids as sent, text as its words behind a BOS (`"<bos>"`).
fn prompt_tokens(body: &Value) -> Vec<Value> {
    match body.get("prompt") {
        Some(Value::Array(ids)) => ids.clone(),
        Some(Value::String(text)) => std::iter::once(Value::from("<bos>"))
            .chain(text.split_whitespace().map(Value::from))
            .collect(),
        // A conversation: every message's words, in order, behind one BOS.
        _ => match body["messages"].as_array() {
            Some(messages) => std::iter::once(Value::from("<bos>"))
                .chain(
                    messages
                        .iter()
                        .filter_map(|m| m["content"].as_str())
                        .flat_map(str::split_whitespace)
                        .map(Value::from),
                )
                .collect(),
            None => Vec::new(),
        },
    }
}

/// Prompts seen so far, for the llama-server-style prefix cache.
type SeenPrompts = Arc<Mutex<Vec<Vec<Value>>>>;

/// Tokens `prompt` shares from its start with the longest-matching earlier
/// prompt; records it.
fn cached_prefix(seen: &SeenPrompts, prompt: Vec<Value>) -> usize {
    let mut seen = seen.lock().expect("prompts lock");
    let cached = seen
        .iter()
        .map(|p| p.iter().zip(&prompt).take_while(|(a, b)| a == b).count())
        .max()
        .unwrap_or(0);
    seen.push(prompt);
    cached
}

/// What the scripted server exposes at `GET /metrics`, under vLLM's names:
/// requests running (in flight), prompt tokens and finished requests as
/// counters, the scripted TTFT as a histogram.
#[derive(Debug, Default)]
struct MockMetrics {
    prompt_tokens: u64,
    finished: u64,
    ttft_buckets: [u64; TTFT_BOUNDS.len()],
    ttft_sum_s: f64,
    ttft_count: u64,
}

const TTFT_BOUNDS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56,
];

impl MockMetrics {
    fn render(&self, running: u64) -> String {
        let labels = r#"model_name="mock-model""#;
        let mut out = format!(
            "# HELP vllm:num_requests_running Requests in flight.\n\
             # TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{{{labels}}} {running}\n\
             # TYPE vllm:num_requests_waiting gauge\n\
             vllm:num_requests_waiting{{{labels}}} 0\n\
             # TYPE vllm:kv_cache_usage_perc gauge\n\
             vllm:kv_cache_usage_perc{{{labels}}} {}\n\
             # TYPE vllm:prompt_tokens_total counter\n\
             vllm:prompt_tokens_total{{{labels}}} {}\n\
             # TYPE vllm:request_success_total counter\n\
             vllm:request_success_total{{finished_reason=\"length\",{labels}}} {}\n\
             # TYPE vllm:time_to_first_token_seconds histogram\n",
            running as f64 / 100.0,
            self.prompt_tokens,
            self.finished,
        );
        let mut cumulative = 0;
        for (bound, n) in TTFT_BOUNDS.iter().zip(self.ttft_buckets) {
            cumulative += n;
            out.push_str(&format!(
                "vllm:time_to_first_token_seconds_bucket{{le=\"{bound}\",{labels}}} {cumulative}\n"
            ));
        }
        out.push_str(&format!(
            "vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",{labels}}} {}\n\
             vllm:time_to_first_token_seconds_count{{{labels}}} {}\n\
             vllm:time_to_first_token_seconds_sum{{{labels}}} {}\n",
            self.ttft_count, self.ttft_count, self.ttft_sum_s
        ));
        out
    }

    fn observe(&mut self, prompt_tokens: usize, ttft: Duration) {
        self.prompt_tokens += prompt_tokens as u64;
        let s = ttft.as_secs_f64();
        self.ttft_sum_s += s;
        self.ttft_count += 1;
        if let Some(i) = TTFT_BOUNDS.iter().position(|b| s <= *b) {
            self.ttft_buckets[i] += 1;
        }
    }
}

/// A request in flight until its response body is dropped (sent or cut).
struct InFlight {
    running: Arc<AtomicU64>,
    metrics: Arc<Mutex<MockMetrics>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        self.metrics.lock().expect("metrics lock").finished += 1;
    }
}

/// Chooses the script of request `n` (in arrival order) from its JSON body.
pub type ScriptFn = dyn Fn(u64, &Value) -> Script + Send + Sync;

/// What the server saw and did for one completion request: the truth the
/// client's observations are compared with.
#[derive(Debug, Default, Clone)]
pub struct Truth {
    /// When the server began handling the request (its headers read, before
    /// its body); the scripted TTFT counts from here.
    pub received: Option<Instant>,
    /// When each content chunk was handed to hyper, in the poll of the
    /// connection that writes it to the socket.
    pub content_sent: Vec<Instant>,
    /// The request's JSON body (`null` when it was not JSON).
    pub body: Value,
    /// The request's `Authorization` header; `None` when it had none.
    pub authorization: Option<String>,
}

/// A running scripted server; it stops when dropped.
pub struct MockServer {
    /// Where it listens: 127.0.0.1 on a port the system chose.
    pub addr: SocketAddr,
    truth: Arc<Mutex<HashMap<String, Truth>>>,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
    seen: SeenPrompts,
    /// Linux thread id of the server's thread, to read its CPU time.
    thread_id: Option<u32>,
    /// PEM of the self-signed certificate, when the server speaks TLS.
    certificate: Option<String>,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("valid response")
}

fn chunk_json(
    id: &str,
    chat: bool,
    text: Option<&str>,
    finish: Option<&str>,
    usage: Option<Value>,
) -> String {
    let choice = match (chat, text) {
        (_, None) => None,
        (true, Some(t)) => {
            Some(json!({"index": 0, "delta": {"content": t}, "finish_reason": finish}))
        }
        (false, Some(t)) => Some(json!({"index": 0, "text": t, "finish_reason": finish})),
    };
    let mut v = json!({
        "id": id,
        "object": if chat { "chat.completion.chunk" } else { "text_completion" },
        "model": "mock-model",
        "system_fingerprint": "mock-fp",
        "choices": choice.map_or_else(Vec::new, |c| vec![c]),
    });
    if let Some(u) = usage {
        v["usage"] = u;
    }
    format!("data: {v}\n\n")
}

impl MockServer {
    /// Starts the server on its own thread and runtime, so that its timing
    /// does not depend on how busy the caller's runtime is.
    pub fn start(
        script: impl Fn(u64, &Value) -> Script + Send + Sync + 'static,
    ) -> std::io::Result<MockServer> {
        Self::start_with(script, false)
    }

    /// The same server behind TLS, with a self-signed certificate for
    /// `127.0.0.1` and `localhost` made on the spot ([`Self::certificate`]).
    pub fn start_tls(
        script: impl Fn(u64, &Value) -> Script + Send + Sync + 'static,
    ) -> std::io::Result<MockServer> {
        Self::start_with(script, true)
    }

    fn start_with(
        script: impl Fn(u64, &Value) -> Script + Send + Sync + 'static,
        tls: bool,
    ) -> std::io::Result<MockServer> {
        let (acceptor, certificate) = if tls {
            let (acceptor, pem) = tls_acceptor()?;
            (Some(acceptor), Some(pem))
        } else {
            (None, None)
        };
        let script: Arc<ScriptFn> = Arc::new(script);
        let truth = Arc::new(Mutex::new(HashMap::new()));
        let seen: SeenPrompts = Arc::new(Mutex::new(Vec::new()));
        let seen_c = seen.clone();
        let requests = Arc::new(AtomicU64::new(0));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let connections = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicU64::new(0));
        let metrics = Arc::new(Mutex::new(MockMetrics::default()));
        let (truth_c, requests_c, connections_c) =
            (truth.clone(), requests.clone(), connections.clone());
        let (running_c, metrics_c) = (running.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("mock-server".into())
            .spawn(move || {
                let _ = tid_tx.send(current_thread_id());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("mock runtime");
                rt.block_on(async move {
                    let listener = match TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = addr_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = addr_tx.send(listener.local_addr());
                    let mut shutdown_rx = shutdown_rx;
                    loop {
                        let (stream, _) = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok(a) => a,
                                Err(_) => continue,
                            },
                            _ = &mut shutdown_rx => break,
                        };
                        connections_c.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.set_nodelay(true);
                        let shared = Shared {
                            script: script.clone(),
                            truth: truth_c.clone(),
                            requests: requests_c.clone(),
                            seen: seen_c.clone(),
                            running: running_c.clone(),
                            metrics: metrics_c.clone(),
                        };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let service =
                                hyper::service::service_fn(move |req| handle(req, shared.clone()));
                            let http = hyper::server::conn::http1::Builder::new();
                            let _ = match acceptor {
                                None => http.serve_connection(TokioIo::new(stream), service).await,
                                Some(acceptor) => match acceptor.accept(stream).await {
                                    Ok(tls) => {
                                        http.serve_connection(TokioIo::new(tls), service).await
                                    }
                                    // A client that refused the certificate.
                                    Err(_) => return,
                                },
                            };
                        });
                    }
                });
            })?;
        let addr = addr_rx
            .recv()
            .map_err(|_| std::io::Error::other("mock server thread ended"))??;
        Ok(MockServer {
            addr,
            truth,
            requests,
            connections,
            shutdown: Some(shutdown_tx),
            seen,
            thread_id: tid_rx.recv().ok().flatten(),
            certificate,
        })
    }

    /// The base URL to give a client: `http://` (or `https://` behind TLS)
    /// and the address.
    pub fn url(&self) -> String {
        let scheme = if self.certificate.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM certificate a client must trust to reach a TLS server.
    pub fn certificate(&self) -> Option<&str> {
        self.certificate.as_deref()
    }

    /// CPU time the server's thread has used so far (Linux only), so that a
    /// benchmark in the same process can tell its own cost from the server's.
    pub fn thread_cpu(&self) -> Option<Duration> {
        let stat =
            std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", self.thread_id?))
                .ok()?;
        let nanos = stat.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    }

    /// The Linux id of the server's thread, to read its CPU from `/proc`.
    pub fn thread_id(&self) -> Option<u32> {
        self.thread_id
    }

    /// Completion requests received (`/v1/models` is not counted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// What the server did for the response with this id (`mock-N`).
    pub fn truth(&self, response_id: &str) -> Option<Truth> {
        self.truth
            .lock()
            .expect("truth lock")
            .get(response_id)
            .cloned()
    }

    /// Forgets every prompt the llama-server-style prefix cache has seen.
    pub fn clear_prompt_cache(&self) {
        self.seen.lock().expect("prompts lock").clear();
    }

    /// What the server did for every completion request received, in no
    /// particular order.
    pub fn all_truth(&self) -> Vec<Truth> {
        self.truth
            .lock()
            .expect("truth lock")
            .values()
            .cloned()
            .collect()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A TLS acceptor with a fresh self-signed certificate, and its PEM.
fn tls_acceptor() -> std::io::Result<(tokio_rustls::TlsAcceptor, String)> {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(std::io::Error::other)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certified.cert.der().to_vec())],
            key,
        )
        .map_err(std::io::Error::other)?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        certified.cert.pem(),
    ))
}

/// The calling thread's Linux thread id.
fn current_thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// What every connection's handler shares.
#[derive(Clone)]
struct Shared {
    script: Arc<ScriptFn>,
    truth: Arc<Mutex<HashMap<String, Truth>>>,
    requests: Arc<AtomicU64>,
    seen: SeenPrompts,
    running: Arc<AtomicU64>,
    metrics: Arc<Mutex<MockMetrics>>,
}

async fn handle(req: Request<Incoming>, shared: Shared) -> Result<Response<Body>, std::io::Error> {
    let Shared {
        script,
        truth,
        requests,
        seen,
        running,
        metrics,
    } = shared;
    let received = Instant::now();
    let path = req.uri().path().to_string();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // `GET /moved/X` redirects to `/X` (the query kept), for the client's
    // redirect following.
    if let (true, Some(rest)) = (
        req.method() == hyper::Method::GET,
        path.strip_prefix("/moved/"),
    ) {
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let mut moved = full(StatusCode::FOUND, "text/plain", String::new());
        moved.headers_mut().insert(
            hyper::header::LOCATION,
            hyper::header::HeaderValue::from_str(&format!("/{rest}{query}")).expect("a path"),
        );
        return Ok(moved);
    }
    if req.method() == hyper::Method::GET && path == "/v1/models" {
        return Ok(full(
            StatusCode::OK,
            "application/json",
            json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "inferbench"}]}).to_string(),
        ));
    }
    if req.method() == hyper::Method::GET && path == "/metrics" {
        let text = metrics
            .lock()
            .expect("metrics lock")
            .render(running.load(Ordering::Relaxed));
        return Ok(full(StatusCode::OK, "text/plain; version=0.0.4", text));
    }
    let chat = match path.as_str() {
        "/v1/completions" => false,
        "/v1/chat/completions" => true,
        _ => {
            return Ok(full(
                StatusCode::NOT_FOUND,
                "application/json",
                json!({"error": {"message": format!("no route {path}")}}).to_string(),
            ))
        }
    };
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = requests.fetch_add(1, Ordering::Relaxed);
    let s = script(n, &body);
    let id = format!("mock-{n}");
    let prompt_len = prompt_tokens(&body).len();
    let prompt = s.llama_server.then(|| {
        let tokens = prompt_tokens(&body);
        let n = tokens.len();
        (n, cached_prefix(&seen, tokens))
    });
    truth.lock().expect("truth lock").insert(
        id.clone(),
        Truth {
            received: Some(received),
            content_sent: Vec::new(),
            body,
            authorization,
        },
    );

    match s.fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(full(
                status,
                "application/json",
                json!({"error": {"message": format!("injected status {code}"), "code": code}})
                    .to_string(),
            ));
        }
        Some(Fault::NoHeaders) => {
            std::future::pending::<()>().await;
        }
        Some(Fault::NotEventStream) => {
            return Ok(full(
                StatusCode::OK,
                "application/json",
                json!({"choices": []}).to_string(),
            ));
        }
        Some(Fault::CloseConnection) => {
            // A service error makes hyper drop the connection unanswered.
            return Err(std::io::Error::other("injected connection close"));
        }
        _ => {}
    }

    metrics
        .lock()
        .expect("metrics lock")
        .observe(prompt_len, s.ttft);
    running.fetch_add(1, Ordering::Relaxed);
    let in_flight = InFlight { running, metrics };
    let plan = stream_plan(&id, chat, &s, received, prompt);
    let record = move |at: Instant| {
        let _in_flight = &in_flight;
        if let Some(t) = truth.lock().expect("truth lock").get_mut(&id) {
            t.content_sent.push(at);
        }
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(StreamBody::new(paced(plan, record))))
        .expect("valid response"))
}

/// One piece of a scripted stream.
enum Emit {
    /// At this instant, these bytes; `content` marks a chunk with generated
    /// text, whose instant is recorded as truth.
    Frame {
        at: Option<Instant>,
        bytes: Bytes,
        content: bool,
    },
    /// Nothing more, ever, with the connection kept open.
    Stall,
}

/// Everything the response body will do, decided before the first byte.
/// `prompt`: its length and the tokens served from cache, for a
/// llama-server-style account.
fn stream_plan(
    id: &str,
    chat: bool,
    s: &Script,
    received: Instant,
    prompt: Option<(usize, usize)>,
) -> Vec<Emit> {
    let frame = |at: Option<Instant>, text: String, content: bool| Emit::Frame {
        at,
        bytes: Bytes::from(text),
        content,
    };
    let mut usage =
        json!({"prompt_tokens": 7, "completion_tokens": s.tokens, "total_tokens": 7 + s.tokens});
    let mut timings = None;
    if let Some((prompt_n, cached)) = prompt {
        usage = json!({
            "prompt_tokens": prompt_n,
            "completion_tokens": s.tokens,
            "total_tokens": prompt_n as u32 + s.tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
        });
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        timings = Some(json!({
            "cache_n": cached,
            "prompt_n": prompt_n - cached,
            "prompt_ms": ms(s.ttft),
            "prompt_per_token_ms": ms(s.ttft) / (prompt_n - cached).max(1) as f64,
            "predicted_n": s.tokens,
            "predicted_ms": ms(s.itl) * f64::from(s.tokens),
            "predicted_per_token_ms": ms(s.itl),
        }));
    }
    let fault_at = match s.fault {
        Some(
            Fault::StallAfter(k)
            | Fault::CutAfter(k)
            | Fault::MalformedJsonAfter(k)
            | Fault::BadUtf8After(k)
            | Fault::ErrorInStreamAfter(k),
        ) => Some(k),
        _ => None,
    };
    let tokens = if s.fault == Some(Fault::ZeroTokens) {
        0
    } else {
        s.tokens
    };
    let mut plan = Vec::with_capacity(tokens as usize + 2);
    // Absolute deadlines: one late wake-up never shifts the ones after it.
    let first = received + s.ttft;
    for k in 0..tokens {
        if fault_at == Some(k) {
            break;
        }
        let last = k + 1 == tokens;
        let empty = s.empty_every.is_some_and(|e| e > 0 && (k + 1) % e == 0) && !last;
        let text = if empty {
            String::new()
        } else {
            format!(" t{k}")
        };
        let finish = last.then_some("length");
        let with_usage = (last && s.usage == UsageStyle::InFinalChunk).then(|| usage.clone());
        let mut json = chunk_json(id, chat, Some(&text), finish, with_usage);
        if let (true, Some(t)) = (last, &timings) {
            // llama-server puts its timings beside the usage of the last chunk.
            let mut v: Value =
                serde_json::from_str(json.trim_start_matches("data: ").trim_end()).expect("json");
            v["timings"] = t.clone();
            json = format!("data: {v}\n\n");
        }
        plan.push(frame(Some(first + s.itl * k), json, !empty));
    }
    match s.fault {
        Some(Fault::StallAfter(_)) => {
            plan.push(Emit::Stall);
            return plan;
        }
        Some(Fault::CutAfter(_)) => return plan,
        Some(Fault::MalformedJsonAfter(_)) => {
            plan.push(frame(None, "data: {\"choices\": [oops\n\n".into(), false));
            return plan;
        }
        Some(Fault::BadUtf8After(_)) => {
            plan.push(Emit::Frame {
                at: None,
                bytes: Bytes::from_static(b"data: \xff\xfe\xfd\n\n"),
                content: false,
            });
            return plan;
        }
        Some(Fault::ErrorInStreamAfter(_)) => {
            let error = json!({"error": {"message": "injected failure", "code": 500}});
            plan.push(frame(None, format!("data: {error}\n\n"), false));
            return plan;
        }
        Some(Fault::ZeroTokens) => {
            plan.push(frame(
                None,
                chunk_json(id, chat, Some(""), Some("stop"), None),
                false,
            ));
        }
        _ => {}
    }
    if s.usage == UsageStyle::SeparateChunk {
        plan.push(frame(
            None,
            chunk_json(id, chat, None, None, Some(usage)),
            false,
        ));
    }
    plan.push(frame(None, "data: [DONE]\n\n".into(), false));
    plan
}

/// The plan as a body stream. hyper's connection task polls it and writes
/// each frame to the socket in the same poll, so the instant recorded here
/// is within microseconds of the bytes entering the socket: no task hop or
/// channel sits between the truth and the write.
fn paced(
    plan: Vec<Emit>,
    record: impl Fn(Instant) + Send + Sync + 'static,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync {
    futures_util::stream::unfold(
        (plan.into_iter(), record),
        |(mut plan, record)| async move {
            match plan.next()? {
                Emit::Stall => {
                    std::future::pending::<()>().await;
                    None
                }
                Emit::Frame { at, bytes, content } => {
                    if let Some(at) = at {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    if content {
                        record(Instant::now());
                    }
                    Some((Ok(Frame::data(bytes)), (plan, record)))
                }
            }
        },
    )
}
