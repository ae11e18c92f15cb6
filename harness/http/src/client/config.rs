//! What the client is told: the endpoint, timeouts, TLS and credentials.

use std::path::PathBuf;
use std::time::Duration;

/// Which API the requests call: the spec's own type.
pub use inferbench_core::spec::Endpoint;

/// Everything the client needs to reach one server and build its requests.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme, host and port, e.g. `http://127.0.0.1:8000` (a trailing `/v1`
    /// is accepted and dropped).
    pub base_url: String,
    /// The endpoint every request is sent to.
    pub endpoint: Endpoint,
    /// Sent as every request's `model` (`--model`; by default the first id
    /// the server's `/v1/models` lists).
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
    /// How an `https` server's certificate is checked.
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
