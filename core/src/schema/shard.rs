//! A load split between machines (`http --shard I/N --start-at T`): what
//! each shard records, and what `merge` records of the shards it joined.

use serde::{Deserialize, Serialize};

/// The host clock's synchronization, as the kernel keeps it (`adjtimex`):
/// shards start on their own wall clocks, so their clocks' agreement bounds
/// how well their starts line up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClockSync {
    /// Whether the kernel's clock is synchronized (by NTP, chrony or PTP).
    pub synchronized: bool,
    /// The kernel's maximum error of the clock, ms.
    pub max_error_ms: f64,
    /// Its estimated error, ms.
    pub est_error_ms: f64,
}

/// What one shard of a sharded run records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardRun {
    /// This shard, 0-based.
    pub index: u32,
    /// Shards in all.
    pub count: u32,
    /// When every shard starts its first point, Unix seconds.
    pub start_at_unix_s: f64,
    /// Point p starts at `start_at_unix_s` + p × this, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_interval_s: Option<f64>,
    /// The host's clock when the run began (absent where the kernel did
    /// not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockSync>,
    /// The host this shard ran on.
    pub host: String,
}

/// When a sharded point started against its slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PointStart {
    /// The slot's start, Unix seconds.
    pub planned_unix_s: f64,
    /// How late the point started on this host's wall clock, ms.
    pub lag_ms: f64,
    /// The previous point (or the warm-up) ran past this point's slot: it
    /// started late, and its window may not overlap the other shards'.
    pub overran_slot: bool,
    /// This shard's part of the load: its streams (closed loop) or its
    /// share of `--max-inflight` (open loop, trace).
    pub share: u32,
}

/// The shards a merged file was made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MergedShards {
    /// Shards in all, each merged once.
    pub count: u32,
    /// Their common start, Unix seconds.
    pub start_at_unix_s: f64,
    /// Each shard's file and host, by index.
    pub files: Vec<String>,
    /// The hosts, by index.
    pub hosts: Vec<String>,
    /// The latest start of any shard's point, ms after its slot.
    pub max_start_lag_ms: f64,
    /// The largest clock error a shard's kernel reported, ms (absent when
    /// none said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_clock_error_ms: Option<f64>,
    /// Whether every shard's clock was synchronized.
    pub all_clocks_synchronized: bool,
}
