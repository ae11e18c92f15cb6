//! How long each point runs: `--num-requests` and `--duration`.

use std::time::Duration;

use inferbench_core::spec::{HttpSpec, PerLoad};
use inferbench_http::load::{Limits, Load};

/// How long each point runs: `--num-requests` and `--duration`, each one
/// value for all points, one per load level, or a multiple of the load.
pub(crate) struct LimitsPlan {
    counts: Option<PerLoad<u64>>,
    durations: Option<PerLoad<Duration>>,
}

impl LimitsPlan {
    /// The limits `spec` asks for (its lists checked against its loads by
    /// [`HttpSpec::validate`]); `default_count` when neither is given.
    pub(crate) fn new(spec: &HttpSpec, default_count: u64) -> LimitsPlan {
        let counts = spec.num_requests.clone().or(if spec.duration.is_none() {
            Some(PerLoad::All(default_count))
        } else {
            None
        });
        LimitsPlan {
            counts,
            durations: spec.duration.clone(),
        }
    }

    /// The limits of the point at `position` of the sweep.
    pub(crate) fn at(&self, position: usize, load: Load) -> Limits {
        let size = match load {
            Load::Closed { concurrency } => f64::from(concurrency),
            Load::Open { rate, .. } => rate,
            Load::Trace { .. } => 1.0,
        };
        Limits {
            num_requests: self
                .counts
                .as_ref()
                .and_then(|c| c.at(position, size, |n| (n.ceil() as u64).max(1))),
            duration: self
                .durations
                .as_ref()
                .and_then(|d| d.at(position, size, Duration::from_secs_f64)),
        }
    }

    pub(crate) fn same_count(&self) -> Option<u64> {
        match self.counts {
            Some(PerLoad::All(n)) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn same_duration(&self) -> Option<Duration> {
        match self.durations {
            Some(PerLoad::All(d)) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn count_spec(&self) -> Option<String> {
        match &self.counts {
            Some(PerLoad::Each(list)) => Some(
                list.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(PerLoad::TimesLoad(k)) => Some(format!("{k}x")),
            _ => None,
        }
    }

    pub(crate) fn duration_spec(&self) -> Option<String> {
        match &self.durations {
            Some(PerLoad::Each(list)) => Some(
                list.iter()
                    .map(|d| humantime::format_duration(*d).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        }
    }
}
