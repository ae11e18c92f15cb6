//! `model tiny`, `model inspect`, and where the default model lives.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use inferbench_models::{write_tiny_model, GgufFile, TinySpec};
use sha2::{Digest, Sha256};

use crate::cli::ModelCommand;

/// The tiny model's file name; the version changes whenever its bytes do.
const TINY_MODEL_FILE: &str = "inferbench-tiny-v1.gguf";

pub fn run(cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::Tiny { out } => {
            write_tiny_model(&out, &TinySpec::default())?;
            let summary = GgufFile::open(&out)?.summary()?;
            println!("{summary}");
        }
        ModelCommand::Inspect { path, json } => {
            let summary = GgufFile::open(&path)?.summary()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("{summary}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where generated and fetched models are kept: `$INFERBENCH_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/inferbench`, else `~/.cache/inferbench`.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("INFERBENCH_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("inferbench")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/inferbench")))
        .unwrap_or_else(|| PathBuf::from(".cache/inferbench"))
}

/// The model a command runs on: the one given, or the tiny model, written
/// into the cache on first use.
pub fn resolve(model: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = model {
        return Ok(path);
    }
    let path = cache_dir().join(TINY_MODEL_FILE);
    if !path.exists() {
        eprintln!("generating the tiny model at {}", path.display());
        write_tiny_model(&path, &TinySpec::default())
            .with_context(|| format!("writing the default tiny model to {}", path.display()))?;
    }
    Ok(path)
}

/// The file's sha256, for provenance.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("hashing {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("hashing {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
