//! Shards of one run (`http --shard`), checked before they are merged.

use super::*;

/// The spec a shard ran, without what differs between shards by design.
pub(super) fn spec_without_shard(r: &HttpResult) -> serde_json::Value {
    let mut spec = serde_json::to_value(&r.settings.spec).unwrap_or_default();
    if let Some(m) = spec.as_object_mut() {
        m.remove("shard");
    }
    spec
}

/// Sharded files (`http --shard`): exactly shards 0..N−1, once each, of one
/// run (the same N, start, seeds and spec), or the reason naming the file.
/// `None` when no file is a shard.
pub fn check_shards(files: &[(String, HttpResult)]) -> Result<Option<MergedShards>, MergeError> {
    let Some((first_name, first, run)) = files
        .iter()
        .find_map(|(n, r)| r.shard.as_ref().map(|s| (n, r, s)))
    else {
        return Ok(None);
    };
    let foreign = |other: &str, why: String| MergeError::ShardForeign {
        first: first_name.clone(),
        other: other.to_string(),
        why,
    };
    let mut by_index: Vec<Option<&str>> = vec![None; run.count as usize];
    for (name, r) in files {
        let Some(s) = &r.shard else {
            return Err(foreign(name, "it is not a shard (no `shard` in it)".into()));
        };
        if s.count != run.count {
            return Err(foreign(
                name,
                format!(
                    "it is shard {}/{}, of {} shards, not {}",
                    s.index, s.count, s.count, run.count
                ),
            ));
        }
        if s.start_at_unix_s != run.start_at_unix_s || s.point_interval_s != run.point_interval_s {
            return Err(foreign(
                name,
                format!(
                    "it started at {} (points every {:?} s), not {} ({:?} s)",
                    s.start_at_unix_s,
                    s.point_interval_s,
                    run.start_at_unix_s,
                    run.point_interval_s
                ),
            ));
        }
        if r.settings.seed != first.settings.seed
            || r.settings.prompt_seed != first.settings.prompt_seed
        {
            return Err(foreign(
                name,
                format!(
                    "its seeds differ (seed {} and prompt seed {:?}, not {} and {:?}): it drew another load",
                    r.settings.seed, r.settings.prompt_seed, first.settings.seed, first.settings.prompt_seed
                ),
            ));
        }
        if spec_without_shard(r) != spec_without_shard(first) {
            return Err(foreign(
                name,
                "it ran another spec (settings.spec differs beyond its shard)".into(),
            ));
        }
        match by_index.get_mut(s.index as usize) {
            Some(Some(seen)) => {
                return Err(MergeError::ShardTwice {
                    shard: format!("{}/{}", s.index, s.count),
                    first: seen.to_string(),
                    other: name.clone(),
                })
            }
            Some(slot) => *slot = Some(name),
            None => {
                return Err(foreign(
                    name,
                    format!("its index {} is not below {}", s.index, s.count),
                ))
            }
        }
    }
    if let Some(missing) = by_index.iter().position(Option::is_none) {
        let given: Vec<String> = files
            .iter()
            .filter_map(|(n, r)| r.shard.as_ref().map(|s| format!("{} from {n}", s.index)))
            .collect();
        return Err(MergeError::ShardMissing {
            shard: format!("{missing}/{}", run.count),
            last: run.count - 1,
            given: given.join(", "),
        });
    }
    let mut ordered: Vec<(&String, &HttpResult)> = files.iter().map(|(n, r)| (n, r)).collect();
    ordered.sort_by_key(|(_, r)| r.shard.as_ref().map_or(0, |s| s.index));
    let clocks: Vec<_> = ordered
        .iter()
        .filter_map(|(_, r)| r.shard.as_ref().and_then(|s| s.clock.clone()))
        .collect();
    Ok(Some(MergedShards {
        count: run.count,
        start_at_unix_s: run.start_at_unix_s,
        files: ordered.iter().map(|(n, _)| n.to_string()).collect(),
        hosts: ordered
            .iter()
            .map(|(_, r)| {
                r.shard
                    .as_ref()
                    .map_or_else(String::new, |s| s.host.clone())
            })
            .collect(),
        max_start_lag_ms: ordered
            .iter()
            .flat_map(|(_, r)| r.points.iter().filter_map(|p| p.start.as_ref()))
            .map(|s| s.lag_ms)
            .fold(0.0, f64::max),
        worst_clock_error_ms: clocks.iter().map(|c| c.max_error_ms).reduce(f64::max),
        all_clocks_synchronized: clocks.len() == ordered.len()
            && clocks.iter().all(|c| c.synchronized),
    }))
}
