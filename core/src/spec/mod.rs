//! Specs: what a run is asked to do, as typed values. The command line builds
//! one (every check made there), a result records the one it ran
//! (`settings.spec`), and `inferbench run` / `rerun` run one read back from a
//! TOML or JSON file. Composite commands (`contrast`, rounds) build the specs
//! of their parts instead of argument vectors.
//!
//! A spec says what to measure, never where to write: result, CSV and log
//! paths are the caller's, so that a spec reruns anywhere without
//! overwriting the file it came from.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod campaign;
mod contrast;
mod engine;
mod http;
mod http_parts;
mod inproc;
pub mod text;

pub use contrast::{ContrastSpec, ServerLaunch};
pub use engine::{CacheType, EngineSettings, FlashAttn};
pub use http::{
    Arrival, Endpoint, HttpSpec, PerLoad, PerLoadValue, PreciseMetric, PreciseStatistic,
    PrecisionTarget, RoundsSpec, Shard, Slo, BURSTINESS, DEFAULT_NUM_REQUESTS,
};
pub use inproc::{InprocSpec, Sampler};

/// The `$id` result schemas refer to the spec's schema by.
pub const SPEC_SCHEMA_ID: &str = "https://inferbench.invalid/schema/spec.schema.json";

/// A spec that cannot run: the flag (or spec key) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct SpecError {
    /// The command-line flag, e.g. `--batch` (spec files use the same
    /// names without the dashes).
    pub flag: String,
    /// What is wrong, in a sentence a user can act on.
    pub message: String,
}

impl SpecError {
    /// An error of `flag`.
    pub fn new(flag: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            flag: flag.into(),
            message: message.into(),
        }
    }
}

/// A spec file or a result's recorded spec that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a spec: bad TOML or JSON, a missing or mistyped key.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key no spec has (a typo would otherwise run the default silently).
    #[error("{path}: unknown key {key} (see `inferbench schema spec`)")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key's path, e.g. `batch_sizes` or `slo.ttft`.
        key: String,
    },
    /// A result file without `settings.spec`: written before specs, or by a
    /// command that runs nothing (`compare`, `merge`, `plan`).
    #[error(
        "{path}: records no spec (settings.spec): it was written by an inferbench before specs, \
         or by a command that measures nothing (compare, merge, plan), so there is nothing to rerun"
    )]
    NoSpec {
        /// The file.
        path: PathBuf,
    },
    /// Read, but it cannot run.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The check that failed.
        source: SpecError,
    },
}

/// Reads a result's `settings.spec` leniently: a spec this build cannot
/// read (written by another version of inferbench) leaves the rest of the
/// result readable, as `None`; `inferbench rerun` reads the file's spec
/// itself and says what is wrong with it.
pub fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Spec>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// Every command's spec, tagged by the command that runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Spec {
    /// `inferbench inproc`: llama.cpp in this process.
    Inproc(InprocSpec),
    /// `inferbench http` against one server.
    Http(HttpSpec),
    /// `inferbench http` with several `--url` or `--rounds`: targets in turns.
    Rounds(RoundsSpec),
    /// `inferbench contrast`: in-process and served, the same token ids.
    Contrast(ContrastSpec),
}

impl Spec {
    /// Every check the command line makes, for a spec from anywhere.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            Spec::Inproc(s) => s.validate(),
            Spec::Http(s) => s.validate(),
            Spec::Rounds(s) => s.validate(),
            Spec::Contrast(s) => s.validate(),
        }
    }

    /// The command's name: `inproc`, `http`, `rounds` or `contrast`.
    pub fn command(&self) -> &'static str {
        match self {
            Spec::Inproc(_) => "inproc",
            Spec::Http(_) => "http",
            Spec::Rounds(_) => "rounds",
            Spec::Contrast(_) => "contrast",
        }
    }

    /// The spec as TOML, the form a person edits.
    pub fn to_toml(&self) -> String {
        // A spec is a table of tables, strings, numbers and booleans: TOML
        // holds all of them, and `None` fields are left out.
        toml::to_string(self).unwrap_or_else(|e| format!("# not representable as TOML: {e}\n"))
    }

    /// Parses a spec from TOML, or from JSON when the text starts with `{`,
    /// refusing unknown keys and checking it as the command line does.
    /// `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Spec, SpecFileError> {
        let parse_error = |message: String| SpecFileError::Parse {
            path: path.to_path_buf(),
            message: message.trim().to_string(),
        };
        let value: serde_json::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?
        } else {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
            serde_json::to_value(table).map_err(|e| parse_error(e.to_string()))?
        };
        let spec = Spec::from_value(value, path)?;
        spec.validate().map_err(|source| SpecFileError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(spec)
    }

    /// The spec of a parsed file, its command's struct read on its own so
    /// that every key it does not know is seen (serde cannot report them
    /// through an internally tagged enum).
    fn from_value(mut value: serde_json::Value, path: &Path) -> Result<Spec, SpecFileError> {
        let parse_error = |message: String| SpecFileError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let command =
            match value.as_object_mut().map(|m| m.remove("command")) {
                Some(Some(serde_json::Value::String(c))) => c,
                Some(_) => return Err(parse_error(
                    "no command key: command = \"inproc\", \"http\", \"rounds\" or \"contrast\""
                        .into(),
                )),
                None => return Err(parse_error("a spec is a table of keys".into())),
            };
        fn strict<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
            path: &Path,
        ) -> Result<T, SpecFileError> {
            let mut unknown = Vec::new();
            let parsed = serde_ignored::deserialize(value, |p| {
                // `?` marks an Option's inside: not part of the key a person wrote.
                unknown.push(p.to_string().replace(".?", ""))
            })
            .map_err(|e| SpecFileError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            match unknown.into_iter().next() {
                Some(key) => Err(SpecFileError::UnknownKey {
                    path: path.to_path_buf(),
                    key,
                }),
                None => Ok(parsed),
            }
        }
        Ok(match command.as_str() {
            "inproc" => Spec::Inproc(strict(value, path)?),
            "http" => Spec::Http(strict(value, path)?),
            "rounds" => Spec::Rounds(strict(value, path)?),
            "contrast" => Spec::Contrast(strict(value, path)?),
            other => {
                return Err(parse_error(format!(
                "command = \"{other}\" is not a spec's command: inproc, http, rounds or contrast"
            )))
            }
        })
    }

    /// Reads a spec file (TOML, or JSON).
    pub fn read(path: &Path) -> Result<Spec, SpecFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Spec::parse(&text, path)
    }

    /// The spec a result file recorded (`settings.spec`), from any mode's
    /// result.
    pub fn from_result_file(path: &Path) -> Result<Spec, SpecFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| SpecFileError::Parse {
                path: path.to_path_buf(),
                message: format!("not a result file (JSON): {e}"),
            })?;
        match value.get("settings").and_then(|s| s.get("spec")) {
            Some(spec) if !spec.is_null() => Spec::parse(&spec.to_string(), path),
            _ => Err(SpecFileError::NoSpec {
                path: path.to_path_buf(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
