//! The text forms of spec values, as flags and spec files write them: lists
//! (`1,2,4`), durations (`500ms`), per-load values (`5x`, `30s,60s`). The
//! command line's parsers and the spec's checks are these functions, so that
//! a flag and a spec key accept exactly the same values.

use std::time::Duration;

/// Checks a list of distinct whole numbers of at least `least` (`what`
/// names it in errors).
fn check_list(what: &str, values: &[u32], least: u32) -> Result<(), String> {
    if values.is_empty() {
        return Err(format!("the {what} list is empty; give e.g. {least},4"));
    }
    for (i, v) in values.iter().enumerate() {
        if *v < least {
            return Err(format!(
                "the {what} list contains {v}; every value must be at least {least}"
            ));
        }
        if values[..i].contains(v) {
            return Err(format!("the {what} list repeats {v}"));
        }
    }
    Ok(())
}

/// Parses `1,2,4` into distinct whole numbers of at least `least`.
fn parse_list(what: &str, s: &str, least: u32) -> Result<Vec<u32>, String> {
    if s.trim().is_empty() {
        return Err(format!("the {what} list is empty; give e.g. {least},4"));
    }
    let kind = if least == 0 {
        "a whole number"
    } else {
        "a positive integer"
    };
    let values = s
        .split(',')
        .map(|item| {
            let item = item.trim();
            item.parse::<u32>()
                .map_err(|_| format!("'{item}' in the {what} list is not {kind}"))
        })
        .collect::<Result<Vec<u32>, String>>()?;
    check_list(what, &values, least)?;
    Ok(values)
}

/// Checks a list of distinct positive integers (`what` names it in errors).
pub fn check_positive_list(what: &str, values: &[u32]) -> Result<(), String> {
    check_list(what, values, 1)
}

/// Parses `1,2,4`: distinct positive integers.
pub fn positive_list(what: &str, s: &str) -> Result<Vec<u32>, String> {
    parse_list(what, s, 1)
}

/// Checks a list of distinct counts, 0 allowed (`what` names it in errors).
pub fn check_count_list(what: &str, values: &[u32]) -> Result<(), String> {
    check_list(what, values, 0)
}

/// Parses `0,512,4096`: distinct counts, 0 allowed.
pub fn count_list(what: &str, s: &str) -> Result<Vec<u32>, String> {
    parse_list(what, s, 0)
}

/// The most requests per second an open loop may be asked for.
pub const MAX_RATE: f64 = 1e6;

/// Checks a list of distinct positive request rates.
pub fn check_rates(values: &[f64]) -> Result<(), String> {
    if values.is_empty() {
        return Err("the rate list is empty; give e.g. 1,2,4".into());
    }
    for (i, v) in values.iter().enumerate() {
        if !(v.is_finite() && *v > 0.0) {
            return Err(format!("'{v}' in the rate list is not a positive rate"));
        }
        if *v > MAX_RATE {
            return Err(format!(
                "'{v}' in the rate list is above {MAX_RATE} requests per second"
            ));
        }
        if values[..i].contains(v) {
            return Err(format!("the rate list repeats {v}"));
        }
    }
    Ok(())
}

/// Parses `0.5,1,2`: distinct positive request rates.
pub fn rate_list(s: &str) -> Result<Vec<f64>, String> {
    if s.trim().is_empty() {
        return Err("the rate list is empty; give e.g. 1,2,4".into());
    }
    let rates = s
        .split(',')
        .map(|item| {
            let item = item.trim();
            item.parse::<f64>()
                .map_err(|_| format!("'{item}' in the rate list is not a number"))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    check_rates(&rates)?;
    Ok(rates)
}

/// Parses a non-zero duration such as `500ms`, `30s` or `2m`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration like 500ms, 30s or 2m ({e})"))?;
    if d.is_zero() {
        return Err(format!("'{s}' is zero"));
    }
    Ok(d)
}

/// A duration as `duration` reads it back (`1m 30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Durations as spec files hold them: text that [`duration`] reads.
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `d` as text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    /// Reads text such as `300s`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Optional durations as spec files hold them (absent, or text).
pub mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `d` as text (callers skip `None`).
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads text such as `300s`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| super::duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Parses `--until-precise`: `ttft.p50=2%,tpot.p50=1%`.
pub fn precision_targets(s: &str) -> Result<Vec<super::PrecisionTarget>, String> {
    let targets = s
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(precision_target)
        .collect::<Result<Vec<_>, String>>()?;
    if targets.is_empty() {
        return Err("no statistic given; e.g. ttft.p50=2%".into());
    }
    Ok(targets)
}

fn precision_target(item: &str) -> Result<super::PrecisionTarget, String> {
    use super::{PreciseMetric, PreciseStatistic};
    let form = || format!("'{item}' is not METRIC.STATISTIC=PERCENT% (e.g. ttft.p50=2%)");
    let (name, percent) = item.split_once('=').ok_or_else(form)?;
    let (metric, statistic) = name.trim().split_once('.').ok_or_else(form)?;
    let metric = match metric {
        "ttft" => PreciseMetric::Ttft,
        "itl" => PreciseMetric::Itl,
        "tpot" => PreciseMetric::Tpot,
        "e2e" => PreciseMetric::E2e,
        other => {
            return Err(format!(
                "unknown metric '{other}' in '{item}': use ttft, itl, tpot or e2e"
            ))
        }
    };
    let statistic = match statistic {
        "p50" => PreciseStatistic::P50,
        "p90" => PreciseStatistic::P90,
        "p95" => PreciseStatistic::P95,
        "p99" => PreciseStatistic::P99,
        other => {
            return Err(format!(
                "unknown statistic '{other}' in '{item}': use p50, p90, p95 or p99"
            ))
        }
    };
    let within_percent: f64 = percent
        .trim()
        .strip_suffix('%')
        .ok_or_else(form)?
        .trim()
        .parse()
        .map_err(|_| form())?;
    let target = super::PrecisionTarget {
        metric,
        statistic,
        within_percent,
    };
    target.check()?;
    Ok(target)
}
