//! The rounds file (`inferbench http` with several `--url` and `--rounds`):
//! every round's result and the summary per load. The summary's arithmetic
//! is `inferbench_harness::rounds`.

use serde::{Deserialize, Serialize};

use super::difference::{Interval, MedianDifference};
use super::{HttpPoint, HttpResult, RunStatus};

/// Bumped on any change that could break a reader of older rounds files.
pub const ROUNDS_SCHEMA_VERSION: u32 = 1;

/// The metrics summarized per round: the point's p50 of each latency, and
/// its output throughput.
pub const ROUND_METRICS: [&str; 4] = ["ttft_ms", "tpot_ms", "e2e_ms", "output_tok_s"];

/// What the rounds were asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundsSettings {
    /// The servers' URLs (`--url`), in the order each round measures them;
    /// the first is the baseline.
    pub targets: Vec<String>,
    /// Rounds requested (`--rounds`).
    pub rounds: u32,
    /// The prompt seed of each round, shared by every target in it.
    pub prompt_seeds: Vec<u64>,
    /// Confidence level of every interval (0.95 for 95%).
    pub level: f64,
    /// The spec this run ran (absent in files written before specs):
    /// `inferbench rerun` runs it again, `inferbench spec` prints it as TOML.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::spec::lenient"
    )]
    pub spec: Option<crate::spec::Spec>,
}

/// One (round, target) run, in the order they ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundEntry {
    /// The round, from 0.
    pub round: u32,
    /// Index into [`RoundsSettings::targets`].
    pub target: usize,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// The run's own result file, written beside this one.
    pub file: String,
}

/// One target and its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetRuns {
    /// The target's server URL (`--url`).
    pub url: String,
    /// One served result per round, in round order.
    pub rounds: Vec<HttpResult>,
}

/// A metric of one target over the rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OverRounds {
    /// The metric's value in each round that measured it, in round order: a
    /// latency's p50 in ms, or the output rate in tok/s.
    pub per_round: Vec<f64>,
    /// Mean of the per-round values.
    pub mean: f64,
    /// Standard deviation of the per-round values over their mean.
    pub cv: Option<f64>,
    /// Student-t interval of the mean over rounds (needs 2 rounds).
    pub t_interval: Option<Interval>,
    /// The rounds merged: the median of all their requests, with its
    /// bootstrap interval (latencies only).
    pub pooled_median: Option<f64>,
    /// The bootstrap interval of `pooled_median` (latencies only).
    pub pooled_median_ci: Option<Interval>,
}

/// A target against the first, one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairedDifference {
    /// This target − the first, per round.
    pub per_round: Vec<f64>,
    /// Mean of the per-round differences, in the metric's unit (ms, or tok/s
    /// for the output rate).
    pub mean: f64,
    /// This target's mean over rounds / the first's (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Student-t interval of the mean paired difference (needs 2 rounds):
    /// the drift common to both sides of a round cancels in it.
    pub t_interval: Option<Interval>,
    /// The pooled medians' difference with its bootstrap interval, which
    /// does not cancel drift (latencies only).
    pub pooled: Option<MedianDifference>,
    /// "better", "worse" (this target against the first) or "no
    /// significant difference", from the paired interval.
    pub verdict: String,
}

/// One target at one load, over its rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetSummary {
    /// The target's server URL.
    pub url: String,
    /// The rounds merged into one point.
    pub pooled: HttpPoint,
    /// Each metric of [`ROUND_METRICS`] some round measured, over the rounds.
    pub metrics: std::collections::BTreeMap<String, OverRounds>,
    /// Absent for the first target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versus_first: Option<std::collections::BTreeMap<String, PairedDifference>>,
}

/// Every target at one load level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSummary {
    /// `c=8`, `2 req/s`.
    pub load: String,
    /// One per target that measured this load, in target order; the first
    /// target is the baseline of the others.
    pub targets: Vec<TargetSummary>,
}

/// The rounds result file (`http` with several `--url` or `--rounds`): every
/// round's run whole, and the summary per load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundsResult {
    /// [`ROUNDS_SCHEMA_VERSION`] of the build that wrote the file.
    pub schema_version: u32,
    /// Always "rounds".
    pub mode: String,
    /// Running while measuring, then complete, interrupted or failed.
    pub status: RunStatus,
    /// True unless every target ran every round and every run is complete.
    pub partial: bool,
    /// The error that ended the run, naming its round and target, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the file was last written (RFC 3339, UTC).
    pub updated_at: String,
    /// What the rounds were asked to do.
    pub settings: RoundsSettings,
    /// Every (round, target) run begun, in the order they ran.
    pub order: Vec<RoundEntry>,
    /// Each target's runs, in the order of [`RoundsSettings::targets`].
    pub targets: Vec<TargetRuns>,
    /// One summary per load the first target's first round measured,
    /// updated after every run.
    pub summary: Vec<LoadSummary>,
    /// What makes the targets less than like for like (different models or
    /// server builds), and every run's own warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
