//! A streaming client for OpenAI-compatible servers: sends one request,
//! timestamps every chunk as it is parsed, and turns every way a request can
//! go wrong into a classified [`Failure`] rather than an error that stops
//! the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::chunk::error_message;

mod config;
mod connects;
mod failure;
mod request;
mod stream;

pub use config::{ClientConfig, Endpoint, TlsOptions};
pub use connects::ConnectCount;
pub use failure::{ClientError, Failure, FailureClass};
pub use request::{ChatMessage, Outcome, Prompt, RequestSpec, RequestTag};
pub use stream::read_events;

use failure::{closed_before_response, error_chain, redact, transport_class};

/// One server's client: its connection pool, base URL and settings, shared
/// by every request of a run.
#[derive(Debug, Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    base: String,
    config: ClientConfig,
    connects: Arc<ConnectCount>,
}

impl HttpClient {
    /// Checks the URL and the CA certificates and builds the pool; nothing is
    /// sent until a request is.
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
        let connects = Arc::new(ConnectCount::default());
        let http = reqwest::Client::builder()
            .connector_layer(connects::CountConnects(connects.clone()))
            .tls_certs_merge(roots)
            .tls_danger_accept_invalid_certs(config.tls.insecure)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(config.timeout)
            .no_proxy()
            .build()
            .map_err(|e| bad(&error_chain(&e)))?;
        Ok(HttpClient {
            http,
            base,
            config,
            connects,
        })
    }

    /// The connections the client has opened, and those still opening.
    pub fn connects(&self) -> &ConnectCount {
        &self.connects
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `path` on the server (the base URL without any trailing `/v1`).
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
        let ready = futures_util::future::join_all(reads)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count() as u32;
        // A probe may have been handed a connection another probe had just
        // finished with; its own connect then goes on in the background.
        // Return once those have landed, so that no measured request races
        // one of them and pays for a handshake.
        self.connects.settle(self.config.timeout).await;
        // The pool takes each connection back (a finished connect, a probe's
        // read body) from a task of its own: give those tasks their turn.
        // What still misses shows in a point's `connections_opened`.
        tokio::time::sleep(Duration::from_millis(10) + Duration::from_micros(2) * connections)
            .await;
        ready
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
