//! What a run was asked to do beside measuring: `--until-precise`,
//! `--export-vllm`, `--server-metrics`.

use std::time::Duration;

use inferbench_core::schema::validity::Precision;
use inferbench_core::schema::{HttpPoint, LoadDescription};
use inferbench_core::spec::PrecisionTarget;
use inferbench_http::client::ClientConfig;

use crate::precision;

/// `--until-precise` and its caps.
pub(crate) struct PrecisionPlan {
    pub(crate) targets: Vec<PrecisionTarget>,
    pub(crate) max_requests: Option<u64>,
    pub(crate) max_duration: Option<Duration>,
}

impl PrecisionPlan {
    /// The cap on a point that started with `first` requests.
    pub(crate) fn max_requests(&self, first: u64) -> u64 {
        self.max_requests.unwrap_or_else(|| {
            first
                .saturating_mul(20)
                .max(precision::observations_needed(&self.targets))
        })
    }

    /// Where a point that started with `first` requests got to, and why it
    /// stopped.
    pub(crate) fn outcome(&self, point: &HttpPoint, first: u64, stopped_by: &str) -> Precision {
        let targets = precision::check(point, &self.targets);
        Precision {
            reached: targets.iter().all(|t| t.met),
            stopped_by: stopped_by.into(),
            requests: point.requests.succeeded + point.requests.failed,
            max_requests: self.max_requests(first),
            max_duration_s: self.max_duration.map(|d| d.as_secs_f64()),
            targets,
        }
    }
}

/// Where each point goes in vLLM's result format (`--export-vllm`).
pub(crate) struct VllmExportPlan {
    pub(crate) path: std::path::PathBuf,
    /// The run measures one point: it goes to `path` itself.
    pub(crate) one_point: bool,
}

impl VllmExportPlan {
    /// `out.json` for a one-point run, else `out.c8.json`, `out.rate2.json`.
    pub(crate) fn path_for(&self, load: &LoadDescription) -> std::path::PathBuf {
        if self.one_point {
            return self.path.clone();
        }
        let tag = match (load.concurrency, load.rate) {
            (Some(c), _) => format!("c{c}"),
            (_, Some(r)) => format!("rate{r}"),
            _ => "point".into(),
        };
        let stem = self
            .path
            .file_stem()
            .map_or_else(|| "vllm".into(), |s| s.to_string_lossy().into_owned());
        let ext = self
            .path
            .extension()
            .map_or_else(|| "json".into(), |e| e.to_string_lossy().into_owned());
        self.path.with_file_name(format!("{stem}.{tag}.{ext}"))
    }
}

/// Where and how often the server's metrics are scraped.
pub(crate) struct MetricsPlan {
    pub(crate) url: String,
    pub(crate) interval: Duration,
    pub(crate) config: ClientConfig,
}
