//! A streaming client for OpenAI-compatible servers: sends one request,
//! timestamps every chunk as it is parsed, and turns every way a request can
//! go wrong into a classified [`Failure`] rather than an error that stops
//! the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::TryStreamExt;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Method;
use serde_json::{json, Value};

use crate::chunk::error_message;

mod config;
mod connection;
mod connects;
mod failure;
mod get;
mod request;
mod stream;
mod tls;

pub use config::{ClientConfig, Endpoint, TlsOptions};
pub use connects::ConnectCount;
pub use failure::{ClientError, Failure, FailureClass};
pub use request::{ChatMessage, Outcome, Prompt, RequestSpec, RequestTag, INTENDED_SHARED_PREFIX};
pub use stream::read_events;

use connection::{Connection, Pool, ResponseBody, Target};
use failure::{closed_before_response, connect_class, failure, redact, send_class};
use get::Gets;
use inferbench_core::error_chain;

/// The most of an error response's body kept for its message (which shows
/// 300 characters of it, or the JSON error inside).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// One server's client: its connections, base URL and settings, shared by
/// every request of a run. The measured requests (and `preconnect`) go
/// through the client's own connections ([`connection`]); the `GET`s
/// around them (`/v1/models`, `/metrics`, on any host) on connections of
/// the same kind, in pools of their own ([`get`]).
#[derive(Debug, Clone)]
pub struct HttpClient {
    gets: Arc<Gets>,
    pool: Arc<Pool>,
    base: String,
    /// The base URL's path (empty for none), before every request's own.
    prefix: String,
    /// `Bearer <key>`, marked sensitive.
    authorization: Option<HeaderValue>,
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
        let parsed = url::Url::parse(&base).map_err(|e| bad(&e.to_string()))?;
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
            let certs =
                tls::read_pem_certificates(path).map_err(|message| ClientError::CaCert {
                    path: path.clone(),
                    message,
                })?;
            roots.extend(certs);
        }
        // Made once, for the measured requests and the `GET`s alike.
        let tls = match parsed.scheme() {
            "https" => {
                Some(tls::client_config(roots.clone(), config.tls.insecure).map_err(|e| bad(&e))?)
            }
            _ => None,
        };
        let gets = Arc::new(Gets::new(
            roots,
            config.tls.insecure,
            config.timeout,
            tls.clone(),
        ));
        let connects = Arc::new(ConnectCount::default());
        let pool = Arc::new(Pool::new(
            Target::new(&parsed, tls).map_err(|e| bad(&e))?,
            config.timeout,
            connects.clone(),
        ));
        let authorization = match &config.api_key {
            None => None,
            Some(key) => {
                // The key itself is never shown.
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| bad("the API key holds characters an HTTP header cannot carry"))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let prefix = parsed.path().trim_end_matches('/').to_string();
        Ok(HttpClient {
            gets,
            pool,
            base,
            prefix,
            authorization,
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
        let get = self.gets.get(url, self.authorization.as_ref());
        let answer = tokio::time::timeout(self.config.timeout.min(Duration::from_secs(30)), get)
            .await
            .map_err(|_| unreachable("no answer within the timeout".into()))?
            .map_err(unreachable)?;
        let (status, body) = (answer.status, answer.body);
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

    /// Readies `connections` kept-alive connections at once, each proven
    /// by a `GET /v1/models` (which costs a server nothing) and left in the
    /// pool, so that the requests that follow do not pay for a TCP or TLS
    /// handshake: idle ones are used first, new ones opened for the rest.
    /// Each probe holds its connection until all are done, so no two share
    /// one. Returns how many are in the pool.
    pub async fn preconnect(&self, connections: u32) -> u32 {
        let probes = (0..connections).map(|_| async {
            // An idle connection the server has just closed fails its
            // probe before any response: one more try, on another.
            for _ in 0..2 {
                if let Some(connection) = self.probe().await {
                    return Some(connection);
                }
            }
            None
        });
        futures_util::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .map(|connection| self.pool.checkin(connection))
            .filter(|taken| *taken)
            .count() as u32
    }

    /// One `GET /v1/models` on a connection from the pool (or a new one),
    /// read to its end: the connection, ready for the next request.
    async fn probe(&self) -> Option<Connection> {
        let mut connection = self.pool.checkout().await.ok()?;
        let request = self.request(Method::GET, "/v1/models", Bytes::new()).ok()?;
        let response = tokio::time::timeout(self.config.timeout, connection.send(request))
            .await
            .ok()?
            .ok()?;
        // Read to the end: only a finished response leaves its connection
        // ready for the next.
        let body = ResponseBody::new(&mut connection, response.into_body());
        tokio::time::timeout(
            self.config.timeout,
            body.try_for_each(|_| std::future::ready(Ok(()))),
        )
        .await
        .ok()?
        .ok()?;
        Some(connection)
    }

    /// A request for `path` on the server, with the API key if any.
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Request<connection::RequestBody>, hyper::http::Error> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(HOST, self.pool.authority())
            .header(ACCEPT, "*/*");
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        builder.body(http_body_util::Full::new(body))
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
    /// kept-alive connection closes before any response is sent once more,
    /// its clock restarted (the first attempt never reached the server); the
    /// retry is counted.
    pub async fn send(&self, spec: &RequestSpec) -> Outcome {
        let body = Bytes::from(self.body(spec).to_string());
        let mut outcome = Outcome::new(
            Instant::now(),
            spec.max_tokens as usize,
            self.config.keep_text,
        );
        if let Err(failure) = self.follow(body, &mut outcome).await {
            outcome.failure = Some(Failure {
                message: redact(failure.message, self.config.api_key.as_deref()),
                ..failure
            });
        }
        outcome
    }

    /// Takes a connection (an idle one, or a new one) and sends the request
    /// on it, within the timeout: the connection and the response's head.
    /// A request whose kept-alive connection was closed before any response
    /// never reached the server: it goes once more. `outcome.sent` is set
    /// just before each try; the retries made are counted in it.
    async fn open(
        &self,
        body: &Bytes,
        outcome: &mut Outcome,
    ) -> Result<(Connection, hyper::Response<hyper::body::Incoming>), Failure> {
        let timeout = self.config.timeout;
        let path = self.config.endpoint.path();
        loop {
            outcome.sent = Instant::now();
            let attempt = async {
                let mut connection = self.pool.checkout().await.map_err(|e| Failure {
                    class: connect_class(&e),
                    http_status: None,
                    message: error_chain(&e),
                })?;
                let request = self
                    .request(Method::POST, path, body.clone())
                    .map_err(|e| failure(FailureClass::Other, error_chain(&e)))?;
                match connection.send(request).await {
                    Ok(response) => Ok(Ok((connection, response))),
                    Err(e) => Ok(Err(e)),
                }
            };
            match tokio::time::timeout(timeout, attempt).await {
                Err(_) => {
                    return Err(failure(
                        FailureClass::TimeoutFirstByte,
                        format!("no response within {timeout:?}"),
                    ))
                }
                Ok(Err(failure)) => return Err(failure),
                Ok(Ok(Ok(opened))) => return Ok(opened),
                Ok(Ok(Err(e))) if outcome.retries == 0 && closed_before_response(&e) => {
                    outcome.retries += 1;
                }
                Ok(Ok(Err(e))) => return Err(failure(send_class(&e), error_chain(&e))),
            }
        }
    }

    async fn follow(&self, body: Bytes, outcome: &mut Outcome) -> Result<(), Failure> {
        let timeout = self.config.timeout;
        let (mut connection, response) = self.open(&body, outcome).await?;
        outcome.headers_at = Some(Instant::now());
        let status = response.status();
        if !status.is_success() {
            let body = ResponseBody::new(&mut connection, response.into_body());
            let body = tokio::time::timeout(
                timeout,
                // Read to its end (which frees the connection), but kept
                // only up to a bound: a server's error page can be huge.
                body.try_fold(Vec::new(), |mut all, piece| {
                    let room = ERROR_BODY_LIMIT.saturating_sub(all.len());
                    all.extend_from_slice(&piece[..piece.len().min(room)]);
                    std::future::ready(Ok(all))
                }),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
            self.pool.checkin(connection);
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
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            return Err(failure(
                FailureClass::MalformedSse,
                format!("expected an event stream (text/event-stream), got '{content_type}'"),
            ));
        }
        let read = read_events(
            ResponseBody::new(&mut connection, response.into_body()),
            outcome,
            timeout,
        )
        .await;
        if read.is_ok() {
            self.pool.checkin(connection);
        }
        read
    }
}
