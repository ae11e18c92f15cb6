//! `--resume`: the finished points of a partial result file, checked
//! against this run and kept.

use std::collections::VecDeque;
use std::path::Path;

use inferbench_core::schema::{AnyResult, HttpPoint, HttpResult, HttpSettings, LoadDescription};
use inferbench_http::load::Load;

use super::ServedError;

/// The finished part of a partial result file, to be continued.
pub struct Resume {
    settings: HttpSettings,
    /// The seed of its prompts' content, when the file says which streams
    /// its points used (without them, new prompts could repeat old ones).
    pub prompt_seed: Option<u64>,
    /// Its completely measured points, in order.
    points: Vec<HttpPoint>,
    /// The first prompt stream no point of the file (nor a warm-up of a point
    /// that never finished) can have used.
    next_stream: u32,
}

impl Resume {
    /// Checks the file against this run (its settings, and its loads unless
    /// the run is a search, whose loads are not known ahead) and notes the
    /// resume in `result`: the finished points to keep, in order, and the
    /// first prompt stream the run may use.
    pub(super) fn take_into(
        self,
        path: &Path,
        result: &mut HttpResult,
        loads: Option<&[(Load, LoadDescription)]>,
    ) -> Result<(VecDeque<HttpPoint>, u32), ServedError> {
        self.check_settings(path, &result.settings)?;
        if let Some(loads) = loads {
            self.check_loads(path, loads)?;
        }
        result.notes.push(format!(
            "resumed from {}: {} finished points kept, the rest measured on prompt streams from {} on",
            path.display(),
            self.points.len(),
            self.next_stream
        ));
        Ok((self.points.into(), self.next_stream))
    }

    /// Reads a partial result file to continue.
    pub fn read(path: &Path) -> Result<Resume, ServedError> {
        let file = match AnyResult::read(path).map_err(|source| ServedError::ResumeRead {
            path: path.to_path_buf(),
            source,
        })? {
            AnyResult::Http(r) => r,
            AnyResult::Inproc(_) => {
                return Err(ServedError::Usage(format!(
                    "--resume {}: an inproc result; resume an http one",
                    path.display()
                )))
            }
        };
        let streams: Option<Vec<u32>> = file.points.iter().map(|p| p.prompt_stream).collect();
        // Without stream numbers (older files) the prompt seed cannot tell
        // used prompts from new ones: a fresh seed then keeps every new
        // prompt unseen.
        let (prompt_seed, next_stream) = match (streams, file.settings.prompt_seed) {
            (Some(streams), Some(seed)) => {
                // The point after the last recorded one may have sent
                // warm-ups and been dropped with no measured request.
                (Some(seed), streams.iter().max().map_or(0, |m| m + 2))
            }
            _ => (None, 0),
        };
        let points = file
            .points
            .iter()
            .take_while(|p| p.complete)
            .cloned()
            .collect();
        Ok(Resume {
            settings: file.settings,
            prompt_seed,
            points,
            next_stream,
        })
    }

    /// The first setting in which this run differs from the file's.
    fn check_settings(&self, path: &Path, now: &HttpSettings) -> Result<(), ServedError> {
        let as_map = |s: &HttpSettings| match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let (before, now) = (as_map(&self.settings), as_map(now));
        let mut keys: Vec<&String> = before.keys().chain(now.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            // The seed of prompt content is the file's unless given anew.
            // Derived from the workload, which is compared; older files lack it.
            if key == "prompt_seed" || key == "fixed_lengths" || key == "spec" {
                continue;
            }
            let (b, n) = (before.get(key), now.get(key));
            let null = serde_json::Value::Null;
            if b.unwrap_or(&null) != n.unwrap_or(&null) {
                return Err(ServedError::Usage(format!(
                    "--resume {}: its settings.{key} is {}, this run's is {}; resume with the same flags",
                    path.display(),
                    b.unwrap_or(&null),
                    n.unwrap_or(&null)
                )));
            }
        }
        Ok(())
    }

    /// The kept points must be the first loads of this run's sweep.
    fn check_loads(
        &self,
        path: &Path,
        loads: &[(Load, LoadDescription)],
    ) -> Result<(), ServedError> {
        if self.points.len() > loads.len() {
            return Err(ServedError::Usage(format!(
                "--resume {}: it has {} finished points, this run plans {}",
                path.display(),
                self.points.len(),
                loads.len()
            )));
        }
        for (i, (point, (_, planned))) in self.points.iter().zip(loads).enumerate() {
            if point.load != *planned {
                return Err(ServedError::Usage(format!(
                    "--resume {}: its point {} is {}, this run's is {}; resume with the same loads",
                    path.display(),
                    i + 1,
                    point.load.label(),
                    planned.label()
                )));
            }
        }
        Ok(())
    }
}
