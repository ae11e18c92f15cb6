//! The capacity plan (`inferbench plan --out`). How it is found is
//! `inferbench_harness::plan`.

use serde::{Deserialize, Serialize};

use super::Slo;

/// Expected latency per replica at the planned load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Expected {
    /// Median, ms, interpolated linearly in achieved requests per second.
    pub p50: f64,
    /// 99th percentile, ms, interpolated the same way.
    pub p99: f64,
}

/// What `inferbench plan` finds: one replica's capacity under the SLO, the
/// replicas a target rate needs, and the latencies each should then see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// The traffic to serve over all replicas, requests per second.
    pub target_rate: f64,
    /// Share of each replica's capacity kept free, in [0, 1) (0.3: each runs
    /// at most at 70% of its capacity).
    pub headroom: f64,
    /// The objectives a point's p99 must meet (`--slo`, else the file's own).
    pub slo: Slo,
    /// The highest measured load (achieved requests per second) whose p99
    /// met every objective, every lower load passing too: the capacity of
    /// one replica. Never beyond a measured passing point.
    pub capacity_req_s: Option<f64>,
    /// The load label of that point (`c=8`, `2 req/s`).
    pub capacity_point: Option<String>,
    /// How that point was found to meet the objectives: "early_stopping"
    /// (at 99% confidence, MLPerf LoadGen's rule) or "point_estimate" (its
    /// requests were too few for the rule; absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_decided_by: Option<String>,
    /// The lowest measured load above it that failed, if any: the SLO
    /// boundary lies between the two.
    pub first_failing_req_s: Option<f64>,
    /// Replicas the target rate needs: target / (capacity × (1 − headroom)),
    /// rounded up, at least 1 (`None` without a capacity).
    pub replicas: Option<u64>,
    /// Target rate / replicas.
    pub per_replica_req_s: Option<f64>,
    /// Interpolated between the measured points around the per-replica load.
    pub expected_ttft_ms: Option<Expected>,
    /// TPOT, interpolated the same way (`None` without a replica count or
    /// without TPOT in the points).
    pub expected_tpot_ms: Option<Expected>,
    /// E2E latency, interpolated the same way (`None` without a replica
    /// count or without E2E in the points).
    pub expected_e2e_ms: Option<Expected>,
    /// Whether the sweep brackets the SLO boundary, and what to measure next.
    pub advice: Vec<String>,
}
