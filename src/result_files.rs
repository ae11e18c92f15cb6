//! Where a result file goes and how it is saved: the default path, its
//! directory, a save as the run goes (with its CSV), and the final save of
//! a run that failed.

use std::path::{Path, PathBuf};

use anyhow::Result;
use inferbench_harness::schema::validity::JudgedPoint;
use inferbench_harness::schema::{ResultFile, ResultWriter, RunStatus};

/// `results/<mode>-<UTC time>.json`, for runs given no `--out`.
pub fn default_result_path(mode: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    PathBuf::from("results").join(format!("{mode}-{stamp}.json"))
}

/// Makes the directory a file given by `flag` (`--out`, `--html`) goes
/// in, when it has one.
pub fn make_parent_dir(flag: &str, path: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{flag} {}: creating {}", path.display(), dir.display()))?;
    }
    Ok(())
}

/// Stamps and writes a result file, and its CSV when one was asked for.
pub fn save_result<S: serde::Serialize, P: serde::Serialize + JudgedPoint>(
    writer: &ResultWriter,
    result: &mut ResultFile<S, P>,
    csv: Option<&Path>,
    write_csv: fn(&Path, &[P]) -> Result<()>,
) -> Result<()> {
    result.updated_at = crate::provenance::now_rfc3339();
    result.judge();
    writer.write(result)?;
    if let Some(csv) = csv {
        write_csv(csv, &result.points)?;
    }
    Ok(())
}

/// Marks a run that already wrote its result file as failed with `error`
/// and writes it once more (the JSON alone: a CSV may be what failed), so
/// that no exit path leaves a file saying `running`. Returns the error,
/// for the caller to report; a failure to save is only a warning beside it.
pub fn save_failed<S: serde::Serialize, P: serde::Serialize + JudgedPoint>(
    writer: &ResultWriter,
    result: &mut ResultFile<S, P>,
    error: anyhow::Error,
) -> anyhow::Error {
    result.status = RunStatus::Failed;
    result.error = Some(format!("{error:#}"));
    result.partial = true;
    result.updated_at = crate::provenance::now_rfc3339();
    result.judge();
    if let Err(save_error) = writer.write(result) {
        eprintln!("warning: {save_error:#}");
    }
    error
}
