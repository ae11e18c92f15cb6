//! Every way a request can go wrong, as a class a result counts, and the
//! client's own errors (outside any measured request).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a request failed. Failed requests are counted per class and kept out
/// of every latency distribution.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The server's host refused the connection (nothing listening on the
    /// port).
    ConnectionRefused,
    /// The host name could not be resolved.
    Dns,
    /// Any other failure to connect.
    Connect,
    /// The TLS handshake failed (most often: a certificate not trusted).
    Tls,
    /// The connection closed before any response, twice (see
    /// [`super::HttpClient::send`] on the one retry).
    ConnectionClosed,
    /// The server answered with an error status below 500 (a 4xx: a
    /// request it refused).
    Http4xx,
    /// The server answered with a 5xx status (an error on its side).
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
    /// A failure sending the request that fits no other class.
    Other,
}

impl FailureClass {
    /// The class's name as results count it (`failed_by_class`) and logs
    /// print it, e.g. `http_5xx`.
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

/// How one measured request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    /// The class it is counted under.
    pub class: FailureClass,
    /// The response's HTTP status code; `None` unless the server answered
    /// with an error status (`http_4xx`, `http_5xx`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// What went wrong, in words (for an HTTP error, the status and the
    /// server's message); the API key is redacted.
    pub message: String,
}

/// An error of the client outside any measured request: building it, or a
/// `GET` such as `/v1/models` before the load.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL cannot be used: it does not parse, its scheme is not
    /// `http` or `https`, it has no host, or no client can be built for it.
    #[error("--url {url}: {message}")]
    BadUrl {
        /// The base URL as given.
        url: String,
        /// Why it was refused.
        message: String,
    },
    /// A `--ca-cert` file cannot be read or holds no PEM certificate.
    #[error("--ca-cert {}: {message}", path.display())]
    CaCert {
        /// The file as given.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// A `GET` got no answer: no response within the timeout (at most 30 s),
    /// a connection or TLS failure, or a body that broke off.
    #[error("{url}: {message}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// What went wrong, with its causes; the API key is redacted.
        message: String,
    },
    /// A `GET` was answered with a status other than success.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's error message (or the body's first 300 characters);
        /// the API key is redacted.
        message: String,
    },
    /// A successful answer that is not what was asked for (`/v1/models`
    /// that is not JSON).
    #[error("{url}: {message}")]
    BadAnswer {
        /// The URL requested.
        url: String,
        /// What is wrong with the answer.
        message: String,
    },
}

/// Removes the API key from anything that could be printed or saved.
pub(super) fn redact(message: String, key: Option<&str>) -> String {
    match key {
        Some(k) if !k.is_empty() && message.contains(k) => message.replace(k, "[redacted]"),
        _ => message,
    }
}

/// The server closed a kept-alive connection as this request went out on it,
/// before any byte of response: the request never reached the server.
/// (cpp-httplib, under llama.cpp's server, closes a connection after a few
/// requests without announcing it.) A reset there counts the same (a load
/// balancer resets the connections it drops; before, such a request fell
/// into `other`: tests/integration/faults.rs).
pub(super) fn closed_before_response(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>().is_some_and(|h| {
            // Canceled or closed: the connection ended before the request
            // was written (a FIN at accept, or one that came while the
            // connection sat idle).
            h.is_incomplete_message()
                || h.is_canceled()
                || h.is_closed()
                || std::error::Error::source(h)
                    .and_then(|c| c.downcast_ref::<std::io::Error>())
                    .is_some_and(|io| {
                        matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted)
                    })
        }) {
            return true;
        }
        source = s.source();
    }
    false
}

/// A rustls error, possibly wrapped in I/O errors (the TLS stack nests two),
/// whose `source` skips the wrapped error itself.
pub(super) fn is_tls_error(mut e: &(dyn std::error::Error + 'static)) -> bool {
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

/// How a response body that broke off is counted: a body the server framed
/// wrongly (a chunk-size line that is not hex, a chunk longer than its size
/// line; hyper's `InvalidInput`/`InvalidData`, not TLS's) is malformed, not
/// cut (it was `stream_cut`, "connection broke", before:
/// tests/integration/faults.rs); anything else is a connection that broke.
pub(super) fn body_failure(e: &(dyn std::error::Error + 'static)) -> (FailureClass, &'static str) {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{InvalidData, InvalidInput};
            if matches!(io.kind(), InvalidData | InvalidInput) && !is_tls_error(s) {
                return (FailureClass::MalformedSse, "malformed HTTP body");
            }
            break;
        }
        source = s.source();
    }
    (FailureClass::StreamCut, "connection broke")
}

/// A connect that failed, by how.
pub(super) fn connect_class(e: &super::connection::ConnectError) -> FailureClass {
    use super::connection::ConnectError;
    match e {
        ConnectError::Dns { .. } => FailureClass::Dns,
        ConnectError::Tcp { source, .. }
            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            FailureClass::ConnectionRefused
        }
        ConnectError::Tls { source, .. } if is_tls_error(source) => FailureClass::Tls,
        ConnectError::Tcp { .. }
        | ConnectError::Tls { .. }
        | ConnectError::Timeout { .. }
        | ConnectError::Http { .. } => FailureClass::Connect,
    }
}

/// A request that failed on its connection before any response.
pub(super) fn send_class(e: &hyper::Error) -> FailureClass {
    if closed_before_response(e) {
        FailureClass::ConnectionClosed
    } else if e.is_timeout() {
        FailureClass::TimeoutFirstByte
    } else {
        FailureClass::Other
    }
}

/// A failure without an HTTP status.
pub(super) fn failure(class: FailureClass, message: String) -> Failure {
    Failure {
        class,
        http_status: None,
        message,
    }
}
