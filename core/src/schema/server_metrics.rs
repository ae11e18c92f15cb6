//! A point's server metrics (the server's Prometheus endpoint, sampled during the point), as the result file holds them. How they are gathered: `inferbench_harness::http::server_metrics`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A point's server metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerMetricsSummary {
    /// The Prometheus text endpoint scraped, e.g. "http://127.0.0.1:8000/metrics".
    pub url: String,
    /// The time asked for between two scrapes (`--server-metrics-interval`), ms.
    pub interval_ms: f64,
    /// Seconds from the first scrape to the last: the window of the
    /// counters' and histograms' changes.
    pub window_s: f64,
    /// Scrapes that answered, and those that did not.
    pub scrapes: u64,
    /// Scrapes that failed: no answer, or not Prometheus text.
    pub failed_scrapes: u64,
    /// Why the first failed scrape failed (absent when none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Gauges over the scrapes taken while the point ran (the idle scrapes
    /// before and after it are left out).
    pub gauges: BTreeMap<String, GaugeSummary>,
    /// Counters from the scrape before the point to the scrape after it (a
    /// counter that went backwards, a restarted server, is left out).
    pub counters: BTreeMap<String, CounterSummary>,
    /// Histograms' observations from the scrape before the point to the
    /// scrape after it, by series (`name{label="value",...}`, as every map
    /// here is keyed).
    pub histograms: BTreeMap<String, HistogramSummary>,
    /// The common engines' figures picked out of the series above.
    pub headline: ServerHeadline,
}

/// What the common engines' metrics say, taken from the series above under
/// their own names and added up over label sets, in inferbench's units.
/// Absent when the server does not expose the metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerHeadline {
    /// Requests the server was running (vLLM `vllm:num_requests_running`,
    /// llama-server `llamacpp:requests_processing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_running: Option<GaugeSummary>,
    /// Requests waiting for the server (vLLM `vllm:num_requests_waiting`,
    /// llama-server `llamacpp:requests_deferred`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_waiting: Option<GaugeSummary>,
    /// KV-cache use in percent (vLLM `vllm:kv_cache_usage_perc`, a
    /// fraction; llama-server `llamacpp:kv_cache_usage_ratio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_percent: Option<GaugeSummary>,
    /// Time requests waited in the server's queue, ms (vLLM
    /// `vllm:request_queue_time_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_time_ms: Option<HistogramSummary>,
    /// Server-side TTFT, ms (vLLM `vllm:time_to_first_token_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ttft_ms: Option<HistogramSummary>,
    /// Preemptions during the point (vLLM `vllm:num_preemptions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<f64>,
    /// Prefix-cache hits over queries, in tokens, during the point (vLLM
    /// `vllm:prefix_cache_hits` / `vllm:prefix_cache_queries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hit_rate: Option<f64>,
}

/// A histogram's change over the point: the observations made during it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistogramSummary {
    /// Observations made during the point (the change of `_count`).
    pub count: f64,
    /// Their total, in the metric's own unit (the change of `_sum`).
    pub sum: f64,
    /// `sum / count`, in the metric's own unit (absent with no observation).
    pub mean: Option<f64>,
    /// Bucket-estimated quantiles: linear within the bucket they fall in,
    /// the highest finite bound when they fall in `+Inf`.
    pub p50: Option<f64>,
    /// The 90th percentile, estimated as `p50` is.
    pub p90: Option<f64>,
    /// The 99th percentile, estimated as `p50` is.
    pub p99: Option<f64>,
    /// The bucket each of p50 and p99 fell in, `[lower, upper]`: the
    /// estimate's resolution. vLLM's queue-time buckets start at 0.3 s, so
    /// a queue of microseconds reads as a p50 of 0.15 s; the mean
    /// (`sum / count`) is exact. The upper bound is null for `+Inf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_bucket: Option<(f64, Option<f64>)>,
    /// The bucket p99 fell in, `[lower, upper]`, as `p50_bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_bucket: Option<(f64, Option<f64>)>,
}

/// A counter's change over the point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterSummary {
    /// Its increase from the scrape before the point to the scrape after
    /// it, in the counter's own unit.
    pub delta: f64,
    /// `delta` over `window_s`, per second (0 with no window).
    pub per_s: f64,
}

/// A gauge over the point's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GaugeSummary {
    /// Mean over the samples, in the gauge's own unit.
    pub mean: f64,
    /// Largest sample, in the gauge's own unit.
    pub max: f64,
    /// Smallest sample, in the gauge's own unit.
    pub min: f64,
    /// Scrapes taken while the point ran that had the gauge.
    pub samples: u64,
}
