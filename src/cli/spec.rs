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
    /// llama-bench rows of the batch-1 points (`inproc --llama-bench-out`).
    pub llama_bench_out: Option<PathBuf>,
    /// Their `build_commit` (`--llama-bench-commit`); absent: inferbench's.
    pub llama_bench_commit: Option<String>,
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
            until_precise: self.until_precise.as_ref().map(|p| p.0.clone()),
            max_runs: self.max_runs,
            max_duration: self.max_duration,
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
            swa_full: self.swa_full,
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
            llama_bench_out: self.llama_bench_out.clone(),
            llama_bench_commit: self.llama_bench_commit.clone(),
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
            max_requests_per_probe: self.max_requests_per_probe,
            until_precise: self.until_precise.as_ref().map(|p| p.0.clone()),
            max_requests: self.max_requests,
            max_duration: self.max_duration,
            slice: self.slice,
            shard: self.shard,
            start_at: self.start_at,
            point_interval: self.point_interval,
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
            ..Outputs::default()
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::{CommandFactory, Parser};

    use super::super::{Cli, Command};
    use super::*;

    /// clap checks its own definitions only in debug builds; the tests run
    /// in release.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn spec_of(args: &[&str]) -> Spec {
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            Command::Inproc(a) => Spec::Inproc(a.spec().expect("inproc spec")),
            Command::Http(a) => a.spec().expect("http spec"),
            Command::Contrast(a) => Spec::Contrast(a.spec().expect("contrast spec")),
            other => panic!("not a measuring command: {other:?}"),
        }
    }

    /// Flags → spec → TOML → spec gives the same spec, for every measuring
    /// command, flags of every kind included.
    #[test]
    fn every_commands_spec_survives_its_file() {
        let cases: [&[&str]; 5] = [
            &["inferbench", "inproc"],
            &[
                "inferbench",
                "inproc",
                "-m",
                "a.gguf,b.gguf",
                "-t",
                "1,2",
                "-p",
                "16,32",
                "-d",
                "0,512",
                "-b",
                "1,4",
                "--fa",
                "off,on",
                "--ctk",
                "q8_0",
                "--ctv",
                "f16,q4_0",
                "--mmap",
                "0,1",
                "--no-kv-offload",
                "--n-batch",
                "4096",
                "--ubatch",
                "128,256",
                "-g",
                "-1",
                "--sampler",
                "llama-greedy",
                "--no-telemetry",
            ],
            &[
                "inferbench",
                "http",
                "--url",
                "http://127.0.0.1:9",
                "--concurrency",
                "1,8",
                "--rate",
                "0.5,2",
                "--arrival",
                "gamma",
                "--burstiness",
                "0.5",
                "--num-requests",
                "5,6,7,8",
                "--duration",
                "30s",
                "--slo",
                "ttft=500ms,e2e=10s",
                "--timeout",
                "20s",
                "--prompt-seed",
                "7",
                "--ignore-eos",
                "--endpoint",
                "chat",
                "--server-metrics",
            ],
            &[
                "inferbench",
                "http",
                "--url",
                "http://a:1",
                "--url",
                "http://b:2",
                "--rounds",
                "3",
                "--concurrency",
                "2",
                "--num-requests",
                "4x",
            ],
            &[
                "inferbench",
                "contrast",
                "--server",
                "llama-server=/opt/ls",
                "-c",
                "1,2",
                "-p",
                "64",
                "-n",
                "8",
                "-t",
                "2",
                "--requests",
                "9",
                "--timeout",
                "90s",
            ],
        ];
        for args in cases {
            let spec = spec_of(args);
            let toml = spec.to_toml();
            let back = Spec::parse(&toml, Path::new("x.toml")).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, spec, "{args:?}\n{toml}");
        }
        let Spec::Rounds(rounds) = spec_of(cases[3]) else {
            panic!("two --url make rounds")
        };
        assert_eq!(rounds.targets, ["http://a:1", "http://b:2"]);
        let Spec::Inproc(grid) = spec_of(cases[1]) else {
            panic!("inproc")
        };
        assert_eq!(grid.kv_offload, [false]);
        assert_eq!(grid.configurations().len(), 2 * 2 * 2 * 2 * 2 * 2);
    }

    #[test]
    fn combinations_clap_cannot_see_exit_2_naming_the_flag() {
        let refused: [(&[&str], &str); 4] = [
            (
                &["inferbench", "http", "--url", "u", "--arrival", "gamma"],
                "--arrival gamma needs --burstiness",
            ),
            (
                &[
                    "inferbench",
                    "http",
                    "--url",
                    "u",
                    "--concurrency",
                    "1,2",
                    "--num-requests",
                    "3,4,5",
                ],
                "--num-requests: 3 values for 2 load levels",
            ),
            (
                &[
                    "inferbench",
                    "http",
                    "--url",
                    "a",
                    "--url",
                    "b",
                    "--csv",
                    "x.csv",
                ],
                "--csv writes one run's points",
            ),
            (
                &["inferbench", "inproc", "--fa", "off", "--ctv", "q8_0"],
                "every cell of the grid is invalid",
            ),
        ];
        for (args, needle) in refused {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let err = match cli.command {
                Command::Inproc(a) => a.spec().map(|_| ()).expect_err("refused"),
                Command::Http(a) => a.spec().map(|_| ()).expect_err("refused"),
                other => panic!("{other:?}"),
            };
            assert!(err.0.contains(needle), "{args:?}: {}", err.0);
        }
    }
}
