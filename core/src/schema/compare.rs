//! The comparison file (`inferbench compare --out`): the files compared, their
//! points grouped by shape, each row's differences and tests against the
//! first. The matching and the tests are `inferbench_harness::compare`.

use serde::{Deserialize, Serialize};

use super::difference::MedianDifference;
use super::{LoadLevel, Mode, RunStatus};
use crate::stats::Stats;

/// Bumped on any change that could break a reader of older comparisons.
pub const COMPARISON_VERSION: u32 = 1;

/// The latency metrics compared, by their names in the result files.
pub const METRICS: [&str; 4] = ["ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"];

/// What makes two points comparable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shape {
    /// `fixed:IN:OUT` when every request asks for the same lengths (presets
    /// such as `short` included), else the workload as the run named it.
    pub workload: String,
    /// Sequences in flight or the open loop's rate (see [`Load::of`]).
    pub load: Load,
}

/// The load a point ran under, as the comparison matches it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Sequences decoding together in-process, or requests kept in flight
    /// by a closed loop.
    InFlight(u32),
    /// Open loop, requests per second.
    Rate(f64),
}

impl Load {
    /// The comparison's key: sequences in flight whatever the mode (a
    /// replayed trace, which sets neither, is 0 in flight).
    pub fn of(level: Option<LoadLevel>) -> Load {
        match level {
            Some(LoadLevel::Batch(n) | LoadLevel::Concurrency(n)) => Load::InFlight(n),
            Some(LoadLevel::Rate(r)) => Load::Rate(r),
            Some(LoadLevel::TraceSpeed(_)) | None => Load::InFlight(0),
        }
    }

    /// `8 in flight` (a batch of 8 or 8 requests kept in flight), `2 req/s`.
    pub fn label(self) -> String {
        match self {
            Load::InFlight(n) => format!("{n} in flight"),
            Load::Rate(r) => format!("{r} req/s"),
        }
    }
}

/// One result file, as the comparison names it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceSummary {
    /// The file's path as given.
    pub path: String,
    /// The file's name without `.json`, or its path when two names clash.
    pub label: String,
    /// In-process or served.
    pub mode: Mode,
    /// How the file's run ended (or that it is still running).
    pub status: RunStatus,
    /// True unless every requested point of the file was measured completely.
    pub partial: bool,
    /// What answered: the in-process engine and its backend, or the server.
    pub engine: String,
    /// In-process: the model's name (or path), quantization and sha256
    /// prefix, `None` without model provenance; served: the model requested.
    pub model: Option<String>,
    /// The machine the file was measured on, as `CPU model (N cores)`
    /// counting logical cores.
    pub host: String,
    /// The run's verdict (absent in older comparisons, and for contrast
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// Ratio and difference of one metric against the group's first row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delta {
    /// This row's p50 − the first row's, ms.
    pub p50_delta: f64,
    /// This row's p50 over the first row's (absent when the first row's is 0).
    pub p50_ratio: Option<f64>,
    /// This row's p99 − the first row's, ms.
    pub p99_delta: f64,
    /// This row's p99 over the first row's (absent when the first row's is 0).
    pub p99_ratio: Option<f64>,
}

/// A served point's request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestSummary {
    /// Measured requests that succeeded (warm-up excluded).
    pub succeeded: u64,
    /// Measured requests that failed; the point's statistics leave them out.
    pub failed: u64,
}

/// One point of one file.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Row {
    /// Index into [`Comparison::sources`].
    pub source: usize,
    /// Index into that file's `points`.
    pub point: usize,
    /// `B=8` in-process, `c=8` closed loop, `2 req/s` open loop.
    pub load: String,
    /// False when the run stopped during this point.
    pub complete: bool,
    /// Time to first token, ms, as the point's file holds it (`None`: not measured).
    pub ttft_ms: Option<Stats>,
    /// Inter-token latency, ms (`None` when nothing was measured, as with one
    /// output token).
    pub itl_ms: Option<Stats>,
    /// Time per output token after the first, ms.
    pub tpot_ms: Option<Stats>,
    /// End-to-end latency, ms: from prefill start or request send to the last token.
    pub e2e_ms: Option<Stats>,
    /// In-process: B × G / E2E, mean over runs. Served: output tokens over
    /// the point's window.
    pub output_tok_s: Option<f64>,
    /// Served points only.
    pub requests: Option<RequestSummary>,
    /// Input and output tokens per request as counted (served: by the
    /// server's usage where it sent one), median.
    pub input_tokens_p50: Option<f64>,
    /// Output tokens per request, median, counted as for the input (in-process: G).
    pub output_tokens_p50: Option<f64>,
    /// Against the group's first row; absent on that row. Keys: [`METRICS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_first: Option<std::collections::BTreeMap<String, Delta>>,
    /// This row's `output_tok_s` over the first row's (absent on the first
    /// row, when either is missing, or when the first row's is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tok_s_ratio: Option<f64>,
    /// Against the group's first row: per metric, the differences of p50
    /// and p99 with bootstrap intervals, a Mann-Whitney test, the Holm-
    /// adjusted p-value and a verdict (absent on the first row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub significance: Option<Significance>,
    /// The point's verdict: "valid", or "not valid: " and its reasons
    /// (absent in older comparisons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// What the tests draw from (not written: rebuilt from the files).
    #[serde(skip)]
    pub basis: TestBasis,
}

/// The metrics tested, by their names in the result files; latencies are
/// better lower, the output rate higher.
pub const TESTED_METRICS: [&str; 5] = ["ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "output_tok_s"];

/// How many independent values each metric of a row has, and the output
/// rate's distribution (in-process: per run, B × G / E2E; served: per
/// request, N / E2E: not the same quantity, so never tested across modes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestBasis {
    /// One per run in-process (a batch's sequences share every step), one
    /// per successful request served; ITL gaps within a request are not
    /// independent, so ITL counts the same.
    pub independent: u64,
    /// The output rate's distribution in tokens/s, tested as `output_tok_s`:
    /// the point's `throughput_tok_s` in-process, `per_request_output_tok_s`
    /// served.
    pub output_rate: Option<Stats>,
    /// The row's file's mode: output rates are tested only between rows of
    /// the same mode (`None` in a default basis, as read back from a file).
    pub mode: Option<Mode>,
}

/// The test of one metric against the group's first row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricTest {
    /// "lower" for latencies, "higher" for rates.
    pub better_when: String,
    /// This row − the first row.
    pub p50: MedianDifference,
    /// This row's p99 − the first row's, with its interval (wide unless
    /// both sides have many values).
    pub p99: MedianDifference,
    /// Two-sided Mann-Whitney U p-value, before the Holm adjustment.
    pub mann_whitney_p: f64,
    /// Holm-adjusted over the metrics tested on this row.
    pub holm_p: f64,
    /// "better", "worse" (this row against the first) or "no significant difference".
    pub verdict: String,
}

/// The tests of one row against its group's first row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Significance {
    /// Confidence level of the intervals, [`LEVEL`]; a verdict needs a Holm
    /// p-value below 1 − level.
    pub level: f64,
    /// Bootstrap resamples per interval ([`DEFAULT_RESAMPLES`]).
    pub resamples: u32,
    /// Each tested metric's test, by its name in [`TESTED_METRICS`].
    pub tests: std::collections::BTreeMap<String, MetricTest>,
    /// Metrics not tested and why (no histograms in an older file, output
    /// rates of different kinds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untested: Vec<String>,
}

impl Row {
    /// One of the latency metrics ([`METRICS`]) by name, borrowed.
    pub fn metric_ref(&self, name: &str) -> Option<&Stats> {
        match name {
            "ttft_ms" => self.ttft_ms.as_ref(),
            "itl_ms" => self.itl_ms.as_ref(),
            "tpot_ms" => self.tpot_ms.as_ref(),
            "e2e_ms" => self.e2e_ms.as_ref(),
            _ => None,
        }
    }

    /// One of the latency metrics ([`METRICS`]) by name, cloned; `None` for
    /// another name or a metric the point did not measure.
    pub fn metric(&self, name: &str) -> Option<Stats> {
        match name {
            "ttft_ms" => self.ttft_ms.clone(),
            "itl_ms" => self.itl_ms.clone(),
            "tpot_ms" => self.tpot_ms.clone(),
            "e2e_ms" => self.e2e_ms.clone(),
            _ => None,
        }
    }
}

/// The points of at least two files that share one shape.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    /// The workload and load every row shares.
    pub shape: Shape,
    /// Every point of that shape, in file order; the first row, from the
    /// first file that has the shape, is the baseline of the others.
    pub rows: Vec<Row>,
}

/// A point that no other file has a counterpart for.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unmatched {
    /// Index into [`Comparison::sources`].
    pub source: usize,
    /// Index into that file's `points`.
    pub point: usize,
    /// The point's workload and load.
    pub shape: Shape,
}

/// What `inferbench compare` writes: the files, their points grouped by
/// shape with each row against its group's first, and what did not match.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Comparison {
    /// [`COMPARISON_VERSION`] of the build that wrote the comparison.
    pub comparison_version: u32,
    /// The files compared, in the order given; rows name them by index.
    pub sources: Vec<SourceSummary>,
    /// Shapes that at least two files have, in the order the files have them.
    pub groups: Vec<Group>,
    /// Points whose shape no other file has, so they are in no group.
    pub unmatched: Vec<Unmatched>,
    /// What makes a row less than like for like.
    pub warnings: Vec<String>,
}
