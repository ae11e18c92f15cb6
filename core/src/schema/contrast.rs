//! The contrast result file (`inferbench contrast`): both runs whole and the
//! layer table that splits their times into engine, server and client. The
//! runner that fills it is `inferbench_harness::contrast`.

use serde::{Deserialize, Serialize};

use super::difference::MedianDifference;
use super::{HttpResult, InprocResult, RunStatus};
use crate::stats::Stats;

/// Bumped on any change that could break a reader of older files.
pub const CONTRAST_SCHEMA_VERSION: u32 = 1;

/// Where on the way from the engine to the client a time is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The engine in-process, timed by the harness (no server, no HTTP).
    Engine,
    /// Inside the server, from its per-request `timings` (llama.cpp's server).
    Server,
    /// At the client over HTTP: the server, its HTTP stack and the network included.
    Client,
}

impl Layer {
    /// The layer's name in tables: "engine in-process", "inside the server",
    /// "client over HTTP".
    pub fn title(self) -> &'static str {
        match self {
            Layer::Engine => "engine in-process",
            Layer::Server => "inside the server",
            Layer::Client => "client over HTTP",
        }
    }
}

/// One layer's figures at one shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LayerRow {
    /// Which layer the figures are from.
    pub layer: Layer,
    /// Time to first token as this layer sees it, ms: prefill + first sample
    /// in-process, the server's `prompt_ms`, or send to first content chunk.
    pub ttft_ms: Option<Stats>,
    /// Time per output token after the first, ms: TPOT in-process and at the
    /// client, the server's `predicted_per_token_ms` inside it.
    pub per_token_ms: Option<Stats>,
    /// Where the row's numbers come from, e.g. "inproc ttft_ms, tpot_ms".
    pub source: String,
    /// Independent values behind the row (runs in-process, requests served).
    pub independent_values: u64,
}

/// One layer above another, per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Overhead {
    /// The layer further from the engine: each difference is its median
    /// minus `lower`'s.
    pub upper: Layer,
    /// The layer nearer the engine, the base of each difference.
    pub lower: Layer,
    /// `upper`'s TTFT median − `lower`'s, ms, with its interval (`None` when
    /// a side has no histogram or no values).
    pub ttft: Option<MedianDifference>,
    /// `upper`'s per-token median − `lower`'s, ms, with its interval (`None`
    /// when a side has no histogram or no values).
    pub per_token: Option<MedianDifference>,
}

/// The layer table of one shape: in-process batch B against served
/// concurrency B, at the same prompt and output lengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContrastShape {
    /// Prompt tokens per sequence and request.
    pub prompt_tokens: u32,
    /// Tokens generated per sequence and request.
    pub gen_tokens: u32,
    /// In-process batch and served concurrency.
    pub sequences: u32,
    /// The layers, bottom up: engine, server (when it sends timings), client.
    pub layers: Vec<LayerRow>,
    /// Each layer over the one below (engine to server, server to client,
    /// when the server sends timings), then the client over the engine.
    pub overheads: Vec<Overhead>,
    /// In-process B × G / E2E, p50 over runs.
    pub inproc_output_tok_s: Option<f64>,
    /// Served output tokens over the point's window.
    pub served_output_tok_s: Option<f64>,
    /// What makes this shape less than like for like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What `contrast` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContrastSettings {
    /// Path of the GGUF measured on both sides, whose vocabulary the prompts'
    /// token ids come from.
    pub model: String,
    /// Prompt tokens per request and sequence (BOS included).
    pub prompt_tokens: u32,
    /// Tokens generated per request (per sequence in-process).
    pub gen_tokens: u32,
    /// Served concurrencies, each also the in-process batch size of its shape.
    pub concurrency: Vec<u32>,
    /// Measured requests per served point.
    pub requests: u64,
    /// Written by early versions only: the first point's in-process runs.
    /// Each in-process point records its own `runs`; kept so that those
    /// files still read and validate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inproc_runs: Option<u32>,
    /// Warm-up runs in-process and warm-up requests served, per point, never counted.
    pub warmup: u32,
    /// Threads in-process and for a started server (default: physical cores).
    pub threads: u32,
    /// Layers on a GPU, in-process and in a started server (absent in
    /// older files: 0).
    #[serde(default)]
    pub n_gpu_layers: i32,
    /// Seed of the prompts' token ids, the same on both sides.
    pub seed: u64,
    /// "llama-server" (started by inferbench) or "url" (already running).
    pub server: String,
    /// The server measured: `--url`, or the started server's address once
    /// it is up (`None` before that).
    pub url: Option<String>,
    /// The started server's command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_command: Option<Vec<String>>,
    /// Confidence level of the overhead intervals (0.95 for 95%).
    pub confidence_level: f64,
    /// Bootstrap resamples per overhead interval.
    pub resamples: u32,
    /// The spec this run ran (absent in files written before specs):
    /// `inferbench rerun` runs it again, `inferbench spec` prints it as TOML.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::spec::lenient"
    )]
    pub spec: Option<crate::spec::Spec>,
}

/// The contrast result file: both runs whole, and the layer table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContrastResult {
    /// [`CONTRAST_SCHEMA_VERSION`] of the build that wrote the file.
    pub schema_version: u32,
    /// Always "contrast".
    pub mode: String,
    /// Running while measuring, then complete, interrupted or failed.
    pub status: RunStatus,
    /// True unless every shape was contrasted and both runs are complete.
    pub partial: bool,
    /// The error that ended the run, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the file was last written (RFC 3339, UTC).
    pub updated_at: String,
    /// What `contrast` was asked to do.
    pub settings: ContrastSettings,
    /// The in-process runs, one sweep per batch size merged into one result
    /// as each finishes (`None` before the first).
    pub inproc: Option<InprocResult>,
    /// The served run whole (`None` until it finished).
    pub http: Option<HttpResult>,
    /// The layer table: every shape both runs measured, in-process batch B
    /// against concurrency B.
    pub shapes: Vec<ContrastShape>,
    /// What makes the two sides differ beyond the server (two llama.cpp
    /// builds, two model files, the sampler), and the served run's notes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
