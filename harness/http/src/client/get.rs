//! The `GET`s around the measured requests (`/v1/models`, `/metrics`, on
//! any host) on the client's own hyper connections and TLS set-up, the
//! ones the measured requests use, but in pools of their own: a `GET` never
//! takes a measured request's connection, nor counts among the connections
//! a point reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, HOST, LOCATION};
use hyper::{Method, StatusCode};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::connection::{Connection, Pool, ResponseBody, Target};
use super::connects::ConnectCount;
use super::failure::{closed_before_response, connect_class, FailureClass};
use super::tls;
use inferbench_core::error_chain;

/// Redirects followed before giving up (reqwest's limit, which served
/// these `GET`s before).
const MAX_REDIRECTS: usize = 10;

/// A `GET`'s answer: its status and its body (UTF-8, invalid bytes
/// replaced).
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: String,
}

/// The `GET`s' connections: one pool per server, and the TLS configuration
/// every https connection of the client shares, made once.
pub(super) struct Gets {
    extra_roots: Vec<CertificateDer<'static>>,
    insecure: bool,
    connect_timeout: Duration,
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    /// By `scheme://host:port`.
    pools: Mutex<HashMap<String, Arc<Pool>>>,
}

impl std::fmt::Debug for Gets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self
            .pools
            .lock()
            .map(|pools| pools.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Gets").field("servers", &servers).finish()
    }
}

impl Gets {
    /// No connection yet; `tls`, when the client has made its configuration
    /// already (an https base URL), is shared rather than made again.
    pub(super) fn new(
        extra_roots: Vec<CertificateDer<'static>>,
        insecure: bool,
        connect_timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Gets {
        let made = OnceLock::new();
        if let Some(config) = tls {
            let _ = made.set(Ok(config));
        }
        Gets {
            extra_roots,
            insecure,
            connect_timeout,
            tls: made,
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// The TLS configuration, made on the first https `GET` when the base
    /// URL is plain http.
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        self.tls
            .get_or_init(|| tls::client_config(self.extra_roots.clone(), self.insecure))
            .clone()
    }

    /// The pool for `url`'s server, made on first use (its TLS connector
    /// and server name only then).
    fn pool(&self, url: &url::Url) -> Result<Arc<Pool>, String> {
        let key = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let poisoned = |_| "the connection pool was poisoned by a panic".to_string();
        if let Some(pool) = self.pools.lock().map_err(poisoned)?.get(&key) {
            return Ok(pool.clone());
        }
        let tls = match url.scheme() {
            "http" => None,
            "https" => Some(self.tls()?),
            other => return Err(format!("unsupported scheme '{other}', use http or https")),
        };
        let target = Target::new(url, tls)?;
        let mut pools = self.pools.lock().map_err(poisoned)?;
        Ok(pools
            .entry(key)
            .or_insert_with(|| {
                // Counted apart: these connections are not a point's.
                let uncounted = Arc::new(ConnectCount::default());
                Arc::new(Pool::new(target, self.connect_timeout, uncounted))
            })
            .clone())
    }

    /// `GET url` with `authorization`, following redirects: the final
    /// answer, or what went wrong, said for a person (the API key is
    /// redacted by the caller).
    pub(super) async fn get(
        &self,
        url: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<Answer, String> {
        let mut url = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        for _ in 0..=MAX_REDIRECTS {
            let (status, location, body) = self.get_once(&url, authorization).await?;
            match location {
                Some(location) if status.is_redirection() => {
                    url = url
                        .join(&location)
                        .map_err(|e| format!("redirect to '{location}': not a URL: {e}"))?;
                }
                _ => return Ok(Answer { status, body }),
            }
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    /// One `GET`, without following a redirect: status, `Location`, body.
    async fn get_once(
        &self,
        url: &url::Url,
        authorization: Option<&HeaderValue>,
    ) -> Result<(StatusCode, Option<String>, String), String> {
        let pool = self.pool(url)?;
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let request = || {
            let mut builder = hyper::Request::builder()
                .method(Method::GET)
                .uri(path.as_str())
                .header(HOST, pool.authority())
                .header(ACCEPT, "*/*");
            if let Some(authorization) = authorization {
                builder = builder.header(AUTHORIZATION, authorization.clone());
            }
            builder
                .body(http_body_util::Full::new(Bytes::new()))
                .map_err(|e| format!("request failed: {}", error_chain(&e)))
        };
        let mut connection = pool.checkout().await.map_err(|e| {
            format!(
                "{}: {}",
                unreachable_because(connect_class(&e)),
                error_chain(&e)
            )
        })?;
        let response = match connection.send(request()?).await {
            Ok(response) => response,
            // An idle connection the server closed meanwhile: the request
            // never reached it; once more on a new connection.
            Err(e) if connection.reused && closed_before_response(&e) => {
                connection = pool.connect().await.map_err(|e| {
                    format!(
                        "{}: {}",
                        unreachable_because(connect_class(&e)),
                        error_chain(&e)
                    )
                })?;
                connection
                    .send(request()?)
                    .await
                    .map_err(|e| format!("request failed: {}", error_chain(&e)))?
            }
            Err(e) => return Err(format!("request failed: {}", error_chain(&e))),
        };
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_to_end(&mut connection, response.into_body())
            .await
            .map_err(|e| format!("the answer broke off: {}", error_chain(&e)))?;
        pool.checkin(connection);
        Ok((
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }
}

/// The whole body, read through its connection (which leaves it ready for
/// the next request).
async fn read_to_end(
    connection: &mut Connection,
    body: hyper::body::Incoming,
) -> hyper::Result<Vec<u8>> {
    ResponseBody::new(connection, body)
        .try_fold(Vec::new(), |mut all, piece| {
            all.extend_from_slice(&piece);
            std::future::ready(Ok(all))
        })
        .await
}

/// What a person should read first when a server could not be reached.
fn unreachable_because(class: FailureClass) -> &'static str {
    match class {
        FailureClass::ConnectionRefused => "connection refused (is the server running?)",
        FailureClass::Dns => "host name not found",
        FailureClass::Tls => {
            "TLS handshake failed (trust a self-signed server with --ca-cert FILE, or skip the check with --insecure)"
        }
        _ => "request failed",
    }
}
