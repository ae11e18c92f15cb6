//! What a served run's spec is made of: the endpoint, the arrival
//! process, a shard, per-load values, precision targets.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::text;
use super::SpecError;

/// Which API the requests call (`--endpoint`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// POST /v1/completions with a prompt.
    #[default]
    Completions,
    /// POST /v1/chat/completions with one user message.
    Chat,
}

impl Endpoint {
    /// The API path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }
}

/// The process an open loop's gaps between requests are drawn from
/// (`--arrival`, `--burstiness`); serialized with its name under `process`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "process")]
pub enum Arrival {
    /// Exponential gaps: independent users.
    #[default]
    Poisson,
    /// Gamma gaps with shape `burstiness`: below 1 burstier than Poisson,
    /// above 1 more regular; 1 is Poisson. The mean rate is unchanged.
    Gamma {
        /// The gamma distribution's shape, 0.001 to 1000.
        burstiness: f64,
    },
    /// Equal gaps.
    Constant,
}

/// Beyond these the gamma distribution degenerates (gaps of 0, or not a
/// number) and the schedule would not be the one asked for.
pub const BURSTINESS: std::ops::RangeInclusive<f64> = 0.001..=1000.0;

/// One run's part of a load split between machines (`--shard I/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: u32,
    /// Shards in all.
    pub count: u32,
}

impl Shard {
    /// This shard's part of `total` (streams, an in-flight cap): an equal
    /// share, the first `total mod count` shards one more.
    pub fn share(self, total: u32) -> u32 {
        total / self.count + u32::from(self.index < total % self.count)
    }

    /// The global index of this shard's `j`-th request.
    pub fn global(self, j: u64) -> u64 {
        j * u64::from(self.count) + u64::from(self.index)
    }

    /// How many of the first `n` requests of the load are this shard's.
    pub fn count_of(self, n: u64) -> u64 {
        let (count, index) = (u64::from(self.count), u64::from(self.index));
        (n + count - 1 - index) / count
    }

    /// Whether the request of global index `k` is this shard's.
    pub fn owns(self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index)
    }

    /// `I/N`, as `--shard` takes it.
    pub fn label(self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// One value for every point, one per load level, or a multiple of each
/// point's load. Spec files hold it as the flag's text: `100`,
/// `5,200,1500`, `5x`; `30s`, `30s,60s`.
#[derive(Debug, Clone, PartialEq)]
pub enum PerLoad<T> {
    /// The same for every point.
    All(T),
    /// One per load level, in sweep order.
    Each(Vec<T>),
    /// This many per request in flight (closed loop) or per request per
    /// second (open loop): `5x`.
    TimesLoad(f64),
}

impl<T: Clone> PerLoad<T> {
    /// The value of the point at `position` of the sweep whose load is
    /// `load` (requests in flight, or requests per second), `times` turning
    /// a multiple of the load into a value.
    pub fn at(&self, position: usize, load: f64, times: impl Fn(f64) -> T) -> Option<T> {
        match self {
            PerLoad::All(v) => Some(v.clone()),
            PerLoad::Each(list) => list.get(position).cloned(),
            PerLoad::TimesLoad(k) => Some(times(k * load)),
        }
    }

    /// How many values a list holds (`None` unless one per load level).
    pub fn list_len(&self) -> Option<usize> {
        match self {
            PerLoad::Each(list) => Some(list.len()),
            _ => None,
        }
    }
}

/// A value a [`PerLoad`] can hold, with its text form.
pub trait PerLoadValue: Sized + Clone {
    /// Reads one value.
    fn parse(s: &str) -> Result<Self, String>;
    /// Writes one value as `parse` reads it.
    fn format(&self) -> String;
    /// Whether `5x` (a multiple of the load) is accepted.
    const TIMES_LOAD: bool;
}

impl PerLoadValue for u64 {
    fn parse(item: &str) -> Result<u64, String> {
        item.parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("'{item}' is not a positive request count"))
    }
    fn format(&self) -> String {
        self.to_string()
    }
    const TIMES_LOAD: bool = true;
}

impl PerLoadValue for Duration {
    fn parse(item: &str) -> Result<Duration, String> {
        text::duration(item)
    }
    fn format(&self) -> String {
        text::format_duration(*self)
    }
    const TIMES_LOAD: bool = false;
}

impl<T: PerLoadValue> std::str::FromStr for PerLoad<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<PerLoad<T>, String> {
        let s = s.trim();
        if T::TIMES_LOAD {
            if let Some(k) = s.strip_suffix('x') {
                let k: f64 = k.trim().parse().map_err(|_| {
                    format!("'{s}': a multiple of the load is a number and x, e.g. 5x")
                })?;
                if !(k.is_finite() && k > 0.0 && k <= 1e6) {
                    return Err(format!(
                        "'{s}': the multiple must be above 0 and at most 1e6"
                    ));
                }
                return Ok(PerLoad::TimesLoad(k));
            }
        }
        let list = s
            .split(',')
            .map(|item| T::parse(item.trim()))
            .collect::<Result<Vec<T>, String>>()?;
        Ok(match <[T; 1]>::try_from(list) {
            Ok([one]) => PerLoad::All(one),
            Err(list) => PerLoad::Each(list),
        })
    }
}

impl<T: PerLoadValue> std::fmt::Display for PerLoad<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PerLoad::All(v) => f.write_str(&v.format()),
            PerLoad::Each(list) => {
                let items: Vec<String> = list.iter().map(PerLoadValue::format).collect();
                f.write_str(&items.join(","))
            }
            PerLoad::TimesLoad(k) => write!(f, "{k}x"),
        }
    }
}

impl<T: PerLoadValue> Serialize for PerLoad<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, T: PerLoadValue> Deserialize<'de> for PerLoad<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PerLoad<T>, D::Error> {
        // A bare count (`num_requests = 100`) is as good as its text.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Count(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl<T> schemars::JsonSchema for PerLoad<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PerLoad".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "One value for every point (`100`, `30s`), one per load level (`5,200,1500`, `30s,60s`), or a multiple of each point's load (`5x`, request counts only).",
            "type": ["string", "integer"]
        })
    }
}

/// A metric `--until-precise` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreciseMetric {
    /// TTFT as the point is judged: from the intended send time under an
    /// open loop.
    Ttft,
    /// Inter-token latency.
    Itl,
    /// Time per output token.
    Tpot,
    /// End-to-end latency as judged (from the intended send time under an
    /// open loop).
    E2e,
}

/// A statistic `--until-precise` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreciseStatistic {
    /// The median.
    P50,
    /// The 90th percentile.
    P90,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
}

impl PreciseStatistic {
    /// The quantile, in (0, 1).
    pub fn quantile(self) -> f64 {
        match self {
            PreciseStatistic::P50 => 0.50,
            PreciseStatistic::P90 => 0.90,
            PreciseStatistic::P95 => 0.95,
            PreciseStatistic::P99 => 0.99,
        }
    }
}

/// One `--until-precise` target: the statistic's 95% bootstrap interval
/// must be within `within_percent` of it, each side (its half-width).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrecisionTarget {
    /// The metric.
    pub metric: PreciseMetric,
    /// Its statistic.
    pub statistic: PreciseStatistic,
    /// The interval's half-width it must reach, percent of the statistic.
    pub within_percent: f64,
}

impl PrecisionTarget {
    /// Its name as the flag writes it: "ttft.p50".
    pub fn name(&self) -> String {
        let metric = match self.metric {
            PreciseMetric::Ttft => "ttft",
            PreciseMetric::Itl => "itl",
            PreciseMetric::Tpot => "tpot",
            PreciseMetric::E2e => "e2e",
        };
        let statistic = match self.statistic {
            PreciseStatistic::P50 => "p50",
            PreciseStatistic::P90 => "p90",
            PreciseStatistic::P95 => "p95",
            PreciseStatistic::P99 => "p99",
        };
        format!("{metric}.{statistic}")
    }

    /// A percentage a run can reach: above 0, under 100.
    pub fn check(&self) -> Result<(), String> {
        if self.within_percent.is_finite()
            && self.within_percent > 0.0
            && self.within_percent < 100.0
        {
            Ok(())
        } else {
            Err(format!(
                "{}={}%: the percentage must be above 0 and under 100",
                self.name(),
                self.within_percent
            ))
        }
    }
}

/// The checks `--until-precise` makes in either mode: its caps (`caps`:
/// each flag and whether it was given) only with it, at least one target,
/// each a percentage a run can reach, a time cap above zero.
pub(crate) fn check_precision(
    targets: Option<&[PrecisionTarget]>,
    caps: [(&str, bool); 2],
    max_duration: Option<Duration>,
) -> Result<(), SpecError> {
    let Some(targets) = targets else {
        return match caps.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(SpecError::new(*flag, "caps --until-precise: give it too")),
            None => Ok(()),
        };
    };
    if targets.is_empty() {
        return Err(SpecError::new(
            "--until-precise",
            "no statistic given; e.g. ttft.p50=2%",
        ));
    }
    for t in targets {
        t.check()
            .map_err(|m| SpecError::new("--until-precise", m))?;
    }
    if max_duration.is_some_and(|d| d.is_zero()) {
        return Err(SpecError::new("--max-duration", "must be longer than 0s"));
    }
    Ok(())
}
