//! Flags into specs: every check a spec makes, made once the flags are
//! parsed, so that a bad combination exits 2 before anything is loaded.
//! What a flag says about where to write goes into [`Outputs`], not the spec.

use std::path::PathBuf;

use inferbench_core::spec::{
    Arrival, ContrastSpec, Endpoint, HttpSpec, InprocSpec, RoundsSpec, Sampler, Spec, SpecError,
};

use super::{ArrivalArg, ContrastArgs, EndpointArg, HttpArgs, InprocArgs, SamplerArg, UsageError};

/// Where a run writes, apart from what it measures.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The result file (`--out`); absent: results/<command>-<time>.json.
    pub out: Option<PathBuf>,
    /// One CSV row per point (`--csv`).
    pub csv: Option<PathBuf>,
    /// One JSON line per request (`http --requests-log`).
    pub requests_log: Option<PathBuf>,
    /// vLLM-format copies of each point (`http --export-vllm`).
    pub export_vllm: Option<PathBuf>,
    /// The partial result to continue (`http --resume`).
    pub resume: Option<PathBuf>,
    /// Show llama.cpp's own log (`--verbose`).
    pub verbose: bool,
}

impl From<SpecError> for UsageError {
    fn from(e: SpecError) -> UsageError {
        UsageError(e.to_string())
    }
}

impl From<SamplerArg> for Sampler {
    fn from(s: SamplerArg) -> Sampler {
        match s {
            SamplerArg::Greedy => Sampler::Greedy,
            SamplerArg::LlamaGreedy => Sampler::LlamaGreedy,
        }
    }
}

impl InprocArgs {
    /// The spec these flags ask for, checked.
    pub fn spec(&self) -> Result<InprocSpec, UsageError> {
        let spec = InprocSpec {
            model: self.model.clone(),
            threads: self.threads.as_ref().map_or(Vec::new(), |t| t.0.clone()),
            n_gpu_layers: self.n_gpu_layers.0.clone(),
            prompt_tokens: self.prompt_tokens.0.clone(),
            gen_tokens: self.gen_tokens,
            batch: self.batch.0.clone(),
            depth: self.depth.0.clone(),
            warmup: self.warmup,
            runs: self.runs,
            seed: self.seed,
            ubatch: self.ubatch.0.clone(),
            n_batch: self.n_batch.as_ref().map_or(Vec::new(), |b| b.0.clone()),
            flash_attn: self.flash_attn.0.clone(),
            cache_type_k: self.cache_type_k.0.clone(),
            cache_type_v: self.cache_type_v.0.clone(),
            mmap: self.mmap.0.clone(),
            kv_offload: self
                .no_kv_offload
                .as_ref()
                .map_or(vec![true], |n| n.0.iter().map(|off| !off).collect()),
            kv_unified: self.kv_unified,
            sampler: self.sampler.into(),
            telemetry: !self.no_telemetry,
            kernel_timing: !self.no_kernel_timing,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Where these flags write.
    pub fn outputs(&self) -> Outputs {
        Outputs {
            out: self.out.clone(),
            csv: self.csv.clone(),
            verbose: self.verbose,
            ..Outputs::default()
        }
    }
}

impl HttpArgs {
    /// The spec these flags ask for, checked: one server's, or rounds over
    /// several `--url` (or `--rounds` above 1).
    pub fn spec(&self) -> Result<Spec, UsageError> {
        let http = self.http_spec(self.url())?;
        if self.urls.len() == 1 && self.rounds == 1 {
            return Ok(Spec::Http(http));
        }
        if self.csv.is_some() {
            return Err(UsageError(
                "--csv writes one run's points; with rounds, each run's own file is written beside --out".into(),
            ));
        }
        if self.resume.is_some() {
            return Err(UsageError(
                "--resume continues one run's file; rounds write a file per run".into(),
            ));
        }
        let rounds = RoundsSpec {
            targets: self.urls.clone(),
            rounds: self.rounds,
            http,
        };
        rounds.validate()?;
        Ok(Spec::Rounds(rounds))
    }

    fn arrival(&self) -> Result<Arrival, UsageError> {
        Ok(match (self.arrival, self.burstiness) {
            (ArrivalArg::Gamma, Some(burstiness)) => Arrival::Gamma { burstiness },
            (ArrivalArg::Gamma, None) => {
                return Err(UsageError(
                    "--arrival gamma needs --burstiness (1.0 is Poisson)".into(),
                ))
            }
            (_, Some(_)) => {
                return Err(UsageError(
                    "--burstiness applies to --arrival gamma only".into(),
                ))
            }
            (ArrivalArg::Poisson, None) => Arrival::Poisson,
            (ArrivalArg::Constant, None) => Arrival::Constant,
        })
    }

    fn http_spec(&self, url: &str) -> Result<HttpSpec, UsageError> {
        let spec = HttpSpec {
            url: url.to_string(),
            endpoint: match self.endpoint {
                EndpointArg::Completions => Endpoint::Completions,
                EndpointArg::Chat => Endpoint::Chat,
            },
            model: self.model.clone(),
            api_key_env: self.api_key_env.clone(),
            concurrency: self.concurrency.as_ref().map(|c| c.0.clone()),
            rate: self.rate.as_ref().map(|r| r.0.clone()),
            find_max_rate: self.find_max_rate,
            find_max_concurrency: self.find_max_concurrency,
            arrival: self.arrival()?,
            max_inflight: self.max_inflight,
            num_requests: self.num_requests.clone(),
            duration: self.duration.clone(),
            trace_speed: self.trace_speed,
            warmup: self.warmup,
            workload: self.workload.clone(),
            seed: self.seed,
            prompt_seed: self.prompt_seed,
            token_ids_from: self.token_ids_from.clone(),
            ignore_eos: self.ignore_eos,
            slo: self.slo.map(super::SloSpec::to_slo),
            timeout: self.timeout,
            tokenizer: self.tokenizer.clone(),
            gpu_telemetry: self.gpu_telemetry,
            server_metrics: self.server_metrics.clone(),
            server_metrics_interval: self.server_metrics_interval,
            telemetry: !self.no_telemetry,
            client_threads: self.client_threads,
            busy_poll: self.busy_poll,
            preconnect: !self.no_preconnect,
            ca_cert: self.ca_cert.clone(),
            insecure: self.insecure,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Where these flags write.
    pub fn outputs(&self) -> Outputs {
        Outputs {
            out: self.out.clone(),
            csv: self.csv.clone(),
            requests_log: self.requests_log.clone(),
            export_vllm: self.export_vllm.clone(),
            resume: self.resume.clone(),
            verbose: false,
        }
    }
}

impl ContrastArgs {
    /// The spec these flags ask for, checked.
    pub fn spec(&self) -> Result<ContrastSpec, UsageError> {
        let spec = ContrastSpec {
            model: self.model.clone(),
            server: self.server.clone(),
            url: self.url.clone(),
            served_model: self.served_model.clone(),
            prompt_tokens: self.prompt_tokens,
            gen_tokens: self.gen_tokens,
            concurrency: self.concurrency.0.clone(),
            requests: self.requests,
            warmup: self.warmup,
            threads: self.threads,
            seed: self.seed,
            n_gpu_layers: self.n_gpu_layers,
            sampler: self.sampler.into(),
            timeout: self.timeout,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Where these flags write.
    pub fn outputs(&self) -> Outputs {
        Outputs {
            out: self.out.clone(),
            verbose: self.verbose,
            ..Outputs::default()
        }
    }
}
