//! `inferbench contrast`'s spec.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::inproc::{check_gpu_layers, check_threads};
use super::text::{self, check_positive_list};
use super::{Sampler, SpecError};

/// llama.cpp's server, started by inferbench (`--server llama-server[=PATH]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLaunch {
    /// The binary; `None`: look in PATH, then for scripts/servers' build.
    pub path: Option<PathBuf>,
}

impl std::str::FromStr for ServerLaunch {
    type Err = String;

    fn from_str(s: &str) -> Result<ServerLaunch, String> {
        match s.split_once('=') {
            None if s == "llama-server" => Ok(ServerLaunch { path: None }),
            Some(("llama-server", path)) if !path.is_empty() => Ok(ServerLaunch {
                path: Some(PathBuf::from(path)),
            }),
            _ => Err(format!(
                "'{s}': inferbench starts llama.cpp's server only: llama-server or llama-server=PATH \
                 (for any other server, start it yourself and give --url)"
            )),
        }
    }
}

impl std::fmt::Display for ServerLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            None => f.write_str("llama-server"),
            Some(p) => write!(f, "llama-server={}", p.display()),
        }
    }
}

impl Serialize for ServerLaunch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServerLaunch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ServerLaunch, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One model, the same token ids, in-process and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ContrastSpec {
    /// GGUF model for both sides (`--model`); absent: the tiny generated model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// Start llama.cpp's server (`--server`): `llama-server` or `llama-server=PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub server: Option<ServerLaunch>,
    /// A server already running on the same model (`--url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The model id to request (`--served-model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    /// Prompt tokens per request, BOS included (`--prompt-tokens`).
    pub prompt_tokens: u32,
    /// Tokens generated per request (`--gen-tokens`), at least 2.
    pub gen_tokens: u32,
    /// Concurrencies served, each also an in-process batch size (`--concurrency`).
    pub concurrency: Vec<u32>,
    /// Measured requests per served point (`--requests`).
    pub requests: u64,
    /// Warm-up runs and requests per point (`--warmup`).
    pub warmup: u32,
    /// Threads in-process and for a started server (`--threads`); absent: physical cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Seed of the prompts, the same on both sides (`--seed`).
    pub seed: u64,
    /// Layers on a GPU, both sides (`--n-gpu-layers`).
    pub n_gpu_layers: i32,
    /// In-process sampler (`--sampler`).
    pub sampler: Sampler,
    /// Longest wait for a chunk and for the server to start (`--timeout`).
    #[serde(with = "text::serde_duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

impl Default for ContrastSpec {
    /// The command line's defaults (with no server).
    fn default() -> ContrastSpec {
        ContrastSpec {
            model: None,
            server: None,
            url: None,
            served_model: None,
            prompt_tokens: 128,
            gen_tokens: 64,
            concurrency: vec![1, 4, 8],
            requests: 32,
            warmup: 2,
            threads: None,
            seed: 0,
            n_gpu_layers: 0,
            sampler: Sampler::LlamaGreedy,
            timeout: Duration::from_secs(300),
        }
    }
}

impl ContrastSpec {
    /// The checks the command line makes, for a spec from anywhere.
    pub fn validate(&self) -> Result<(), SpecError> {
        match (&self.server, &self.url) {
            (Some(_), Some(_)) => {
                return Err(SpecError::new(
                    "--server",
                    "give --server or --url, not both",
                ))
            }
            (None, None) => {
                return Err(SpecError::new(
                    "--server",
                    "give --server llama-server (started here) or --url of a running server",
                ))
            }
            _ => {}
        }
        if self.prompt_tokens == 0 {
            return Err(SpecError::new("--prompt-tokens", "must be at least 1"));
        }
        if self.gen_tokens < 2 {
            return Err(SpecError::new(
                "--gen-tokens",
                "must be at least 2: a per-token time needs a second token",
            ));
        }
        check_positive_list("concurrency", &self.concurrency)
            .map_err(|m| SpecError::new("--concurrency", m))?;
        if self.requests == 0 {
            return Err(SpecError::new("--requests", "must be at least 1"));
        }
        check_threads(self.threads)?;
        check_gpu_layers(self.n_gpu_layers)?;
        if self.timeout.is_zero() {
            return Err(SpecError::new("--timeout", "is zero"));
        }
        Ok(())
    }
}
