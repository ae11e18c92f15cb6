//! A streaming client for OpenAI-compatible servers: sends one request,
//! timestamps every chunk as it is parsed, and turns every way a request can
//! go wrong into a classified [`Failure`] rather than an error that stops
//! the run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::chunk::{error_message, Chunk, Usage};
use super::sse::{LimitExceeded, LineLimit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /v1/completions` with a `prompt`.
    Completions,
    /// `POST /v1/chat/completions` with one user message.
    Chat,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme, host and port, e.g. `http://127.0.0.1:8000` (a trailing `/v1`
    /// is accepted and dropped).
    pub base_url: String,
    pub endpoint: Endpoint,
    pub model: String,
    /// Sent as a bearer token; never logged or saved.
    pub api_key: Option<String>,
    /// Longest wait for the response headers, and for each chunk after.
    pub timeout: Duration,
    /// Ask the server to ignore end-of-sequence so that every request
    /// generates exactly `max_tokens` (`ignore_eos` and `min_tokens`: each
    /// server honours one or the other).
    pub ignore_eos: bool,
    /// Keep the generated text (needed to count tokens with a tokenizer).
    pub keep_text: bool,
    pub tls: TlsOptions,
}

/// How an `https` server's certificate is checked. By default against the
/// system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM files of certificate authorities to trust as well (a server with
    /// a self-signed certificate).
    pub ca_certs: Vec<PathBuf>,
    /// Accept any certificate: the connection is encrypted but the server
    /// is not authenticated.
    pub insecure: bool,
}

/// Why a request failed. Failed requests are counted per class and kept out
/// of every latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    ConnectionRefused,
    Dns,
    /// Any other failure to connect.
    Connect,
    /// The TLS handshake failed (most often: a certificate not trusted).
    Tls,
    /// The connection closed before any response, twice (see
    /// [`HttpClient::send`] on the one retry).
    ConnectionClosed,
    Http4xx,
    Http5xx,
    /// No response headers within the timeout.
    TimeoutFirstByte,
    /// The stream went silent for longer than the timeout.
    Stall,
    /// The body ended (or the connection broke) before the stream's end.
    StreamCut,
    /// Not an event stream, or broken SSE framing.
    MalformedSse,
    /// A `data:` line that is not the JSON of a chunk.
    MalformedJson,
    /// The server reported an error inside the stream.
    ServerError,
    /// The stream ended properly without any generated text.
    ZeroTokens,
    Other,
}

impl FailureClass {
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::ConnectionRefused => "connection_refused",
            FailureClass::Dns => "dns",
            FailureClass::Connect => "connect",
            FailureClass::Tls => "tls",
            FailureClass::ConnectionClosed => "connection_closed",
            FailureClass::Http4xx => "http_4xx",
            FailureClass::Http5xx => "http_5xx",
            FailureClass::TimeoutFirstByte => "timeout_first_byte",
            FailureClass::Stall => "stall",
            FailureClass::StreamCut => "stream_cut",
            FailureClass::MalformedSse => "malformed_sse",
            FailureClass::MalformedJson => "malformed_json",
            FailureClass::ServerError => "server_error",
            FailureClass::ZeroTokens => "zero_tokens",
            FailureClass::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub class: FailureClass,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    pub message: String,
}

/// What a request asks the server to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    /// Token ids, sent as `"prompt": [ids]` (completions only): the server
    /// evaluates exactly these, with no tokenizer in between.
    TokenIds(Vec<i32>),
    /// A conversation so far, oldest message first (chat only): a later
    /// turn of a multi-turn workload carries the whole history.
    Chat(Vec<ChatMessage>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Where a request sits in a workload's structure, for the figures that
/// split a point by it. Default: an independent request, meant to share
/// only the BOS with any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTag {
    /// Multi-turn workloads: its turn, from 1, and whether it is its
    /// conversation's last.
    pub turn: Option<u32>,
    pub last_turn: bool,
    /// Shared-prefix workloads: its group, and whether it is the group's
    /// first request.
    pub prefix_group: Option<u64>,
    pub first_of_group: bool,
    /// Prompt tokens the workload means this request to share with earlier
    /// ones (beyond this, a server's cached tokens mean the run repeated
    /// itself); `None`: any share is intended (a conversation's history, a
    /// trace's shared blocks).
    pub intended_shared: Option<u64>,
}

impl Default for RequestTag {
    fn default() -> Self {
        RequestTag {
            turn: None,
            last_turn: false,
            prefix_group: None,
            first_of_group: false,
            intended_shared: Some(super::point::INTENDED_SHARED_PREFIX),
        }
    }
}

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub prompt: Prompt,
    pub max_tokens: u32,
    /// Prompt length the workload asked for (the server's usage says what it saw).
    pub input_tokens_requested: u32,
    pub tag: RequestTag,
}

/// Everything observed of one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub sent: Instant,
    pub headers_at: Option<Instant>,
    /// Arrival of every chunk that carried generated text.
    pub content_times: Vec<Instant>,
    pub chunks: u64,
    pub empty_chunks: u64,
    pub text: Option<String>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub server_timings: Option<Value>,
    pub system_fingerprint: Option<String>,
    pub response_id: Option<String>,
    /// Times the request was sent again because a kept-alive connection
    /// closed before any response (0 or 1).
    pub retries: u32,
    pub failure: Option<Failure>,
}

impl Outcome {
    /// Nothing observed yet of a request sent at `sent`: room for
    /// `expected_chunks` arrivals, and the text kept when `keep_text`.
    pub fn new(sent: Instant, expected_chunks: usize, keep_text: bool) -> Outcome {
        Outcome {
            sent,
            headers_at: None,
            content_times: Vec::with_capacity(expected_chunks),
            chunks: 0,
            empty_chunks: 0,
            text: keep_text.then(String::new),
            usage: None,
            finish_reason: None,
            server_timings: None,
            system_fingerprint: None,
            response_id: None,
            retries: 0,
            failure: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--url {url}: {message}")]
    BadUrl { url: String, message: String },
    #[error("--ca-cert {}: {message}", path.display())]
    CaCert { path: PathBuf, message: String },
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: {message}")]
    BadAnswer { url: String, message: String },
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    base: String,
    config: ClientConfig,
}

/// How long the client waits, after `[DONE]`, for the body's end.
const DRAIN_AFTER_DONE: Duration = Duration::from_millis(50);

fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Removes the API key from anything that could be printed or saved.
fn redact(message: String, key: Option<&str>) -> String {
    match key {
        Some(k) if !k.is_empty() && message.contains(k) => message.replace(k, "[redacted]"),
        _ => message,
    }
}

/// The server closed a kept-alive connection as this request went out on it,
/// before any byte of response: the request never reached the server.
/// (cpp-httplib, under llama.cpp's server, closes a connection after a few
/// requests without announcing it.)
fn closed_before_response(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// A rustls error, possibly wrapped in I/O errors (the TLS stack nests two),
/// whose `source` skips the wrapped error itself.
fn is_tls_error(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<tokio_rustls::rustls::Error>() {
            return true;
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}

fn transport_class(e: &reqwest::Error) -> FailureClass {
    if closed_before_response(e) {
        return FailureClass::ConnectionClosed;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if is_tls_error(s) {
            return FailureClass::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return FailureClass::ConnectionRefused;
            }
        }
        let text = s.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return FailureClass::Dns;
        }
        source = s.source();
    }
    if e.is_connect() {
        FailureClass::Connect
    } else if e.is_timeout() {
        FailureClass::TimeoutFirstByte
    } else {
        FailureClass::Other
    }
}

/// The error and its causes on one line: reqwest's own message alone often
/// omits the part that says what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl HttpClient {
    pub fn new(config: ClientConfig) -> Result<HttpClient, ClientError> {
        let trimmed = config.base_url.trim_end_matches('/');
        let base = trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string();
        let bad = |message: &str| ClientError::BadUrl {
            url: config.base_url.clone(),
            message: message.into(),
        };
        let parsed = reqwest::Url::parse(&base).map_err(|e| bad(&e.to_string()))?;
        match parsed.scheme() {
            "http" | "https" => {}
            other => {
                return Err(bad(&format!(
                    "unsupported scheme '{other}', use http or https"
                )))
            }
        }
        if parsed.host_str().is_none() {
            return Err(bad("no host"));
        }
        let mut roots = Vec::new();
        for path in &config.tls.ca_certs {
            let ca_error = |message: String| ClientError::CaCert {
                path: path.clone(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_error(format!("not a PEM certificate: {}", error_chain(&e))))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in the file".into()));
            }
            roots.extend(certs);
        }
        let http = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .tls_danger_accept_invalid_certs(config.tls.insecure)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(config.timeout)
            .no_proxy()
            .build()
            .map_err(|e| bad(&error_chain(&e)))?;
        Ok(HttpClient { http, base, config })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    /// `GET /v1/models`: proves the server is reachable before any load is
    /// sent, and names the models it serves.
    pub async fn models(&self) -> Result<Value, ClientError> {
        let url = self.url("/v1/models");
        let body = self.get_text(&url).await?;
        serde_json::from_str(&body).map_err(|e| ClientError::BadAnswer {
            url,
            message: format!("not JSON: {e}"),
        })
    }

    /// `GET url` (with the API key, if any): the body of a successful
    /// answer, or why there was none, named by `url`.
    pub async fn get_text(&self, url: &str) -> Result<String, ClientError> {
        let key = self.config.api_key.as_deref();
        let unreachable = |message: String| ClientError::Unreachable {
            url: url.to_string(),
            message: redact(message, key),
        };
        let req = self.authorize(self.http.get(url));
        let resp =
            tokio::time::timeout(self.config.timeout.min(Duration::from_secs(30)), req.send())
                .await
                .map_err(|_| unreachable("no answer within the timeout".into()))?
                .map_err(|e| {
                    let class = transport_class(&e);
                    let what = match class {
                        FailureClass::ConnectionRefused => {
                            "connection refused (is the server running?)"
                        }
                        FailureClass::Dns => "host name not found",
                        FailureClass::Tls => {
                            "TLS handshake failed (trust a self-signed server with --ca-cert FILE, or skip the check with --insecure)"
                        }
                        _ => "request failed",
                    };
                    unreachable(format!("{what}: {}", error_chain(&e)))
                })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&body)
                .map(|v| error_message(v.get("error").unwrap_or(&v)))
                .unwrap_or_else(|_| body.chars().take(300).collect());
            return Err(ClientError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                message: redact(message, key),
            });
        }
        Ok(body)
    }

    /// Opens `connections` kept-alive connections at once (each carries a
    /// `GET /v1/models`, which costs a server nothing) and leaves them in
    /// the pool, so that the requests that follow do not pay for a TCP or
    /// TLS handshake. Returns how many succeeded.
    pub async fn preconnect(&self, connections: u32) -> u32 {
        let url = self.url("/v1/models");
        // Two phases: every probe first gets its response headers with its
        // body left unread, which keeps its connection busy. Otherwise a
        // probe that finished early would return its connection to the pool
        // and the pool would hand it to the probes still connecting (it
        // races each checkout against idle connections): seen under load,
        // 8 probes over 1 connection.
        let probes = (0..connections).map(|_| {
            let req = self.authorize(self.http.get(&url));
            async move { self.send_retrying(req, || {}).await.0.ok() }
        });
        let responses = futures_util::future::join_all(probes).await;
        // Read to the end: only a finished response returns its connection
        // to the pool.
        let reads = responses
            .into_iter()
            .flatten()
            .map(|resp| async move { resp.bytes().await.is_ok() });
        futures_util::future::join_all(reads)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count() as u32
    }

    #[expect(clippy::expect_used, reason = "both bodies are JSON object literals")]
    fn body(&self, spec: &RequestSpec) -> Value {
        let mut body = match (&spec.prompt, self.config.endpoint) {
            (Prompt::Text(text), Endpoint::Completions) => json!({ "prompt": text }),
            (Prompt::TokenIds(ids), Endpoint::Completions) => json!({ "prompt": ids }),
            (Prompt::Text(text), Endpoint::Chat) => {
                json!({ "messages": [{ "role": "user", "content": text }] })
            }
            // Refused where the flags are read: a chat message is text.
            (Prompt::TokenIds(ids), Endpoint::Chat) => {
                json!({ "messages": [{ "role": "user", "content": ids }] })
            }
            (Prompt::Chat(messages), Endpoint::Chat) => json!({ "messages": messages }),
            // Refused where the flags are read: a conversation needs chat.
            (Prompt::Chat(messages), Endpoint::Completions) => {
                let text: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
                json!({ "prompt": text.join("\n") })
            }
        };
        let extra = json!({
            "model": self.config.model,
            "max_tokens": spec.max_tokens,
            "stream": true,
            "stream_options": { "include_usage": true },
            "temperature": 0.0,
        });
        let obj = body.as_object_mut().expect("object");
        obj.extend(extra.as_object().expect("object").clone());
        if self.config.ignore_eos {
            obj.insert("ignore_eos".into(), json!(true));
            obj.insert("min_tokens".into(), json!(spec.max_tokens));
        }
        body
    }

    /// Sends one request and follows its stream to the end. A request whose
    /// kept-alive connection closes before any response is sent once more on
    /// a new connection, its clock restarted (the first attempt never reached
    /// the server); the retry is counted.
    pub async fn send(&self, spec: &RequestSpec) -> Outcome {
        let body = self.body(spec);
        let req = self
            .authorize(self.http.post(self.url(self.config.endpoint.path())))
            .json(&body);
        let mut outcome = Outcome::new(
            Instant::now(),
            spec.max_tokens as usize,
            self.config.keep_text,
        );
        if let Err(failure) = self.follow(req, &mut outcome).await {
            outcome.failure = Some(Failure {
                message: redact(failure.message, self.config.api_key.as_deref()),
                ..failure
            });
        }
        outcome
    }

    /// Sends `req` and waits for the response headers, within the timeout
    /// (`Err(None)` past it). A request whose kept-alive connection was
    /// closed before any response never reached the server: it goes once
    /// more, on a new connection. `on_attempt` runs just before each try;
    /// the retries made come back with the answer.
    async fn send_retrying(
        &self,
        req: reqwest::RequestBuilder,
        mut on_attempt: impl FnMut(),
    ) -> (Result<reqwest::Response, Option<reqwest::Error>>, u32) {
        let (mut req, mut retries) = (req, 0);
        loop {
            let retry = (retries == 0).then(|| req.try_clone()).flatten();
            on_attempt();
            match tokio::time::timeout(self.config.timeout, req.send()).await {
                Err(_) => return (Err(None), retries),
                Ok(Err(e)) if closed_before_response(&e) => match retry {
                    Some(again) => {
                        retries += 1;
                        req = again;
                    }
                    None => return (Err(Some(e)), retries),
                },
                Ok(answer) => return (answer.map_err(Some), retries),
            }
        }
    }

    async fn follow(
        &self,
        req: reqwest::RequestBuilder,
        outcome: &mut Outcome,
    ) -> Result<(), Failure> {
        let timeout = self.config.timeout;
        let fail = |class: FailureClass, message: String| Failure {
            class,
            http_status: None,
            message,
        };
        let (resp, retries) = self
            .send_retrying(req, || outcome.sent = Instant::now())
            .await;
        outcome.retries = retries;
        let resp = match resp {
            Ok(resp) => resp,
            Err(None) => {
                return Err(fail(
                    FailureClass::TimeoutFirstByte,
                    format!("no response within {timeout:?}"),
                ))
            }
            Err(Some(e)) => return Err(fail(transport_class(&e), error_chain(&e))),
        };
        outcome.headers_at = Some(Instant::now());
        let status = resp.status();
        if !status.is_success() {
            let body = tokio::time::timeout(timeout, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .map(|v| error_message(v.get("error").unwrap_or(&v)))
                .unwrap_or_else(|_| body.chars().take(300).collect());
            let class = if status.is_server_error() {
                FailureClass::Http5xx
            } else {
                FailureClass::Http4xx
            };
            return Err(Failure {
                class,
                http_status: Some(status.as_u16()),
                message: format!("HTTP {status}: {message}"),
            });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            return Err(fail(
                FailureClass::MalformedSse,
                format!("expected an event stream (text/event-stream), got '{content_type}'"),
            ));
        }

        read_events(resp.bytes_stream(), outcome, timeout).await
    }
}

/// A body's error: the transport's, or a bound of [`LineLimit`] passed.
#[derive(Debug)]
enum BodyError<E> {
    Transport(E),
    Limit(LimitExceeded),
}

impl<E: std::fmt::Display> std::fmt::Display for BodyError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Transport(e) => e.fmt(f),
            BodyError::Limit(e) => e.fmt(f),
        }
    }
}

/// Reads an event stream to its end into `outcome`: each content chunk's
/// arrival, the text, usage, timings and finish reason; any failure
/// classified. Generic over the byte stream so that tests feed it bytes
/// split anywhere.
pub async fn read_events<S, B, E>(
    body: S,
    outcome: &mut Outcome,
    timeout: Duration,
) -> Result<(), Failure>
where
    S: futures_util::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::error::Error,
{
    let fail = |class: FailureClass, message: String| Failure {
        class,
        http_status: None,
        message,
    };
    // Each chunk is stamped with the arrival of the bytes that completed
    // it, taken before SSE and JSON parsing, so that parsing costs no
    // accuracy.
    let origin = outcome.sent;
    let arrived = Arc::new(AtomicU64::new(0));
    let stamp = arrived.clone();
    let mut limit = LineLimit::default();
    let mut events = body
        .map(move |piece| {
            let piece = piece.map_err(BodyError::Transport)?;
            stamp.store(nanos_since(origin), Ordering::Relaxed);
            limit.check(piece.as_ref()).map_err(BodyError::Limit)?;
            Ok::<_, BodyError<E>>(piece)
        })
        .eventsource();
    // One timer for stall detection, re-armed only when it fires, so that
    // a chunk costs no timer registration on the client's hot path.
    let mut last_data = Instant::now();
    let stall = tokio::time::sleep(timeout);
    tokio::pin!(stall);
    let mut done = false;
    loop {
        let next = tokio::select! {
            biased;
            next = events.next() => next,
            () = &mut stall => {
                let quiet_until = last_data + timeout;
                if Instant::now() >= quiet_until {
                    return Err(fail(
                        FailureClass::Stall,
                        format!("no data for {timeout:?} after {} chunks", outcome.chunks),
                    ));
                }
                stall.as_mut().reset(quiet_until.into());
                continue;
            }
        };
        let event = match next {
            None => break,
            Some(Ok(event)) => event,
            Some(Err(EventStreamError::Transport(BodyError::Limit(e)))) => {
                return Err(fail(
                    FailureClass::MalformedSse,
                    format!("after {} chunks: {e}", outcome.chunks),
                ))
            }
            Some(Err(EventStreamError::Transport(BodyError::Transport(e)))) => {
                return Err(fail(
                    FailureClass::StreamCut,
                    format!(
                        "connection broke after {} chunks: {}",
                        outcome.chunks,
                        error_chain(&e)
                    ),
                ))
            }
            Some(Err(e)) => return Err(fail(FailureClass::MalformedSse, e.to_string())),
        };
        let now = origin + Duration::from_nanos(arrived.load(Ordering::Relaxed));
        last_data = now;
        if event.event == "error" {
            return Err(fail(FailureClass::ServerError, event.data));
        }
        if event.data.trim() == "[DONE]" {
            done = true;
            break;
        }
        let chunk = Chunk::parse(&event.data).map_err(|e| {
            let shown: String = event.data.chars().take(120).collect();
            fail(FailureClass::MalformedJson, format!("{e} in data: {shown}"))
        })?;
        if let Some(error) = chunk.error {
            return Err(fail(FailureClass::ServerError, error));
        }
        outcome.chunks += 1;
        if chunk.has_content() {
            outcome.content_times.push(now);
            if let (Some(text), Some(piece)) = (outcome.text.as_mut(), chunk.text.as_deref()) {
                text.push_str(piece);
            }
        } else if chunk.text.is_some() {
            outcome.empty_chunks += 1;
        }
        if chunk.finish_reason.is_some() {
            outcome.finish_reason = chunk.finish_reason;
        }
        if chunk.usage.is_some() {
            outcome.usage = chunk.usage;
        }
        if chunk.timings.is_some() {
            outcome.server_timings = chunk.timings;
        }
        if outcome.system_fingerprint.is_none() {
            outcome.system_fingerprint = chunk.system_fingerprint;
        }
        if outcome.response_id.is_none() {
            outcome.response_id = chunk.id;
        }
    }
    if done {
        // A body dropped before its end takes its connection with it, and
        // the next request would pay for a new handshake: read the end,
        // which a server sends right after [DONE].
        let _ = tokio::time::timeout(DRAIN_AFTER_DONE, async {
            while events.next().await.is_some() {}
        })
        .await;
    }
    if !done && outcome.finish_reason.is_none() {
        return Err(fail(
            FailureClass::StreamCut,
            format!(
                "stream ended after {} chunks without [DONE] or a finish_reason",
                outcome.chunks
            ),
        ));
    }
    if outcome.content_times.is_empty() {
        return Err(fail(
            FailureClass::ZeroTokens,
            format!("{} chunks, none with generated text", outcome.chunks),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod read_events_tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// What a stream left in the outcome, to compare two readings.
    type Reading = (
        u64,
        u64,
        usize,
        Option<String>,
        Option<String>,
        bool,
        Option<FailureClass>,
    );

    fn outcome() -> Outcome {
        Outcome::new(Instant::now(), 0, true)
    }

    async fn read_stream<S>(body: S) -> (Reading, Option<Failure>)
    where
        S: futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Unpin,
    {
        let mut o = outcome();
        let failure = read_events(body, &mut o, Duration::from_secs(5))
            .await
            .err();
        let reading = (
            o.chunks,
            o.empty_chunks,
            o.content_times.len(),
            o.text,
            o.finish_reason,
            o.usage.is_some() && o.server_timings.is_some(),
            failure.as_ref().map(|f| f.class),
        );
        (reading, failure)
    }

    async fn read(pieces: Vec<Vec<u8>>) -> (Reading, Option<Failure>) {
        read_stream(futures_util::stream::iter(pieces.into_iter().map(Ok))).await
    }

    /// A llama-server-like stream: two content chunks, an empty one, the
    /// final chunk with usage and timings, then [DONE].
    fn stream(newline: &str) -> Vec<u8> {
        let events = [
            r#"data: {"choices":[{"text":"Hello","index":0,"finish_reason":null}],"object":"text_completion"}"#,
            r#"data: {"choices":[{"text":" wörld","index":0,"finish_reason":null}]}"#,
            r#"data: {"choices":[{"text":"","index":0,"finish_reason":null}]}"#,
            r#"data: {"choices":[{"text":"","index":0,"finish_reason":"length"}],"usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5},"timings":{"prompt_n":3,"prompt_ms":1.5,"predicted_n":2,"predicted_ms":2.0,"predicted_per_token_ms":1.0}}"#,
            "data: [DONE]",
        ];
        events
            .iter()
            .map(|e| format!("{e}{newline}{newline}"))
            .collect::<String>()
            .into_bytes()
    }

    #[tokio::test]
    async fn the_same_events_however_the_bytes_are_split() {
        for newline in ["\n", "\r\n"] {
            let body = stream(newline);
            let (whole, failure) = read(vec![body.clone()]).await;
            assert!(failure.is_none(), "{failure:?}");
            assert_eq!(whole.2, 2, "two content chunks");
            assert_eq!(whole.3.as_deref(), Some("Hello wörld"));
            assert!(whole.5, "usage and timings kept");
            // Every split into two pieces, the multi-byte 'ö' included.
            for split in 0..=body.len() {
                let (r, _) = read(vec![body[..split].to_vec(), body[split..].to_vec()]).await;
                assert_eq!(r, whole, "split at {split}");
            }
            // Random splits into many small pieces.
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            for _ in 0..500 {
                let mut pieces = Vec::new();
                let mut at = 0;
                while at < body.len() {
                    let n = rng.random_range(1..=12).min(body.len() - at);
                    pieces.push(body[at..at + n].to_vec());
                    at += n;
                }
                assert_eq!(read(pieces).await.0, whole);
            }
        }
    }

    #[tokio::test]
    async fn garbage_is_classified_never_a_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let words: [&[u8]; 8] = [
            b"data: ", b"\n", b"\n\n", b"{", b"}", b"[DONE]", b"\xff", b":",
        ];
        for _ in 0..2000 {
            let mut body = Vec::new();
            for _ in 0..rng.random_range(0..60) {
                if rng.random_bool(0.5) {
                    body.extend_from_slice(words[rng.random_range(0..words.len())]);
                } else {
                    body.push(rng.random());
                }
            }
            let (reading, failure) = read(vec![body]).await;
            // Either a classified failure, or a stream with content.
            assert!(failure.is_some() || reading.2 > 0, "{reading:?}");
        }
    }

    #[tokio::test]
    async fn invalid_utf8_is_a_malformed_stream() {
        let (_, failure) = read(vec![
            b"data: {\"choices\":[{\"text\":\"\xff\xfe\"}]}\n\n".to_vec()
        ])
        .await;
        assert_eq!(failure.map(|f| f.class), Some(FailureClass::MalformedSse));
    }

    #[tokio::test]
    async fn a_ten_megabyte_line_is_refused_at_the_bound() {
        let mut pieces = vec![b"data: ".to_vec()];
        pieces.extend((0..160).map(|_| vec![b'a'; 64 * 1024]));
        pieces.push(b"\n\n".to_vec());
        let (_, failure) = read(pieces).await;
        let failure = failure.expect("refused");
        assert_eq!(failure.class, FailureClass::MalformedSse);
        assert!(
            failure.message.contains("a line longer than"),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn a_never_ending_line_ends_with_a_failure() {
        let endless = futures_util::stream::repeat_with(|| Ok(vec![b'x'; 64 * 1024]));
        let (_, failure) = read_stream(endless).await;
        assert_eq!(failure.map(|f| f.class), Some(FailureClass::MalformedSse));
    }
}
