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
