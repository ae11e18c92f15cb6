//! A spec made ready to run: its workload prepared, its server connected,
//! its result begun.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use inferbench_core::schema::shard::{ClockSync, ShardRun};
use inferbench_core::schema::{
    EngineInfo, FixedLengths, HttpResult, HttpSettings, LoadDescription, Mode, ModelInfo,
    Provenance, ServerInfo,
};
use inferbench_core::spec::{HttpSpec, Spec};
use inferbench_http::client::{ClientConfig, Endpoint, HttpClient, TlsOptions};
use inferbench_http::fd_limit;
use inferbench_http::load::Load;
use inferbench_http::runtime::ClientRuntime;
use inferbench_http::server_metrics;
use inferbench_http::tokenizer::Tokenizer;
use inferbench_http::workload::{Workload, WorkloadError};

use super::session::{self, Sweep};
use super::{
    check_start_at, host_name, loads, now_rfc3339, prompt_seed, LimitsPlan, MetricsPlan,
    PointSampler, Resume, ServedError, SweepObserver, TokenPrompts, VllmExportPlan,
};

/// What [`Ready::connect`] needs beside the spec.
#[derive(Default)]
pub struct ConnectInputs {
    /// The key sent as a bearer token (read from `spec.api_key_env` by the
    /// caller, so that it never passes through a file).
    pub api_key: Option<String>,
    /// Prompts of token ids instead of text (`--token-ids-from`).
    pub tokens: Option<TokenPrompts>,
    /// The prompt seed of a resumed file, used unless the spec names one.
    pub resumed_prompt_seed: Option<u64>,
}

/// A spec whose workload is ready to send and whose server answered:
/// nothing written yet.
pub struct Ready {
    spec: HttpSpec,
    loads: Vec<(Load, LoadDescription)>,
    workload: Arc<Workload>,
    tokenizer: Option<Arc<Tokenizer>>,
    token_model: Option<ModelInfo>,
    limits: LimitsPlan,
    prompt_seed: u64,
    runtime: ClientRuntime,
    client: Arc<HttpClient>,
    config: ClientConfig,
    models: serde_json::Value,
    metrics: Option<MetricsPlan>,
    notes: Vec<String>,
    requests_log: Option<Box<dyn Write>>,
}

/// What [`Ready::start`] needs beside the provenance.
pub struct StartInputs {
    /// A partial result to continue, read by [`Resume::read`], and its path.
    pub resume: Option<(Resume, PathBuf)>,
    /// Samples the machine around each point.
    pub telemetry: Option<Box<dyn PointSampler>>,
    /// `--export-vllm`: each point in vLLM's format.
    pub export_vllm: Option<PathBuf>,
    /// Set from outside (a signal): the point in flight stops, the run ends.
    pub interrupt: Arc<AtomicBool>,
    /// The host clock's synchronization, recorded with a shard.
    pub clock: Option<ClockSync>,
}

impl Ready {
    /// Prepares the spec's workload (its tokenizer and token ids applied)
    /// and connects: the server's model list read (the model to request
    /// taken from it unless named), its metrics endpoint checked. Warnings
    /// (a file-descriptor limit close to the load, metrics not there) go to
    /// `observer` and, where they concern the result, to its notes.
    pub fn connect(
        spec: &HttpSpec,
        inputs: ConnectInputs,
        observer: &mut dyn SweepObserver,
    ) -> Result<Ready, ServedError> {
        check_start_at(spec.start_at)?;
        let prepared = prepare(spec, inputs.tokens)?;
        let prompt_seed = prompt_seed(spec, inputs.resumed_prompt_seed);
        // A trace runs whole unless told otherwise.
        let limits = LimitsPlan::new(
            spec,
            prepared
                .trace_length
                .unwrap_or(inferbench_core::spec::DEFAULT_NUM_REQUESTS),
        );
        // One descriptor per connection: refuse a concurrency the limit cannot hold.
        if let Some(warning) = fd_limit::check(prepared.loads.iter().map(|(load, _)| *load))? {
            observer.warning(&warning);
        }
        let keep_text = prepared.tokenizer.is_some() || prepared.workload.is_multi_turn();
        let (runtime, client, config, models) = connect(spec, inputs.api_key, keep_text)?;
        let mut notes = Vec::new();
        let metrics = metrics_plan(spec, &client, &config, &mut notes);
        for note in &notes {
            observer.warning(note);
        }
        Ok(Ready {
            spec: spec.clone(),
            loads: prepared.loads,
            workload: Arc::new(prepared.workload),
            tokenizer: prepared.tokenizer,
            token_model: prepared.token_model,
            limits,
            prompt_seed,
            runtime,
            client,
            config,
            models,
            metrics,
            notes,
            requests_log: None,
        })
    }

    /// Streams every measured request to `path` as a JSON line
    /// (`--requests-log`), the file created now.
    pub fn with_requests_log(mut self, path: &Path) -> Result<Ready, ServedError> {
        let file =
            std::fs::File::create(path).map_err(|source| ServedError::RequestsLogCreate {
                path: path.to_path_buf(),
                source,
            })?;
        self.requests_log = Some(Box::new(std::io::BufWriter::new(file)));
        Ok(self)
    }

    /// Whether each point scrapes the server's metrics (asked for, and the
    /// endpoint answered).
    pub fn scrapes_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    /// The model file of token-id prompts, for the provenance.
    pub fn token_model(&self) -> Option<&ModelInfo> {
        self.token_model.as_ref()
    }

    /// The result as the run starts (the server and the settings recorded,
    /// a resumed file's finished points taken and checked against this
    /// run): a sweep ready to run, nothing saved yet.
    pub fn start(self, mut prov: Provenance, inputs: StartInputs) -> Result<Sweep, ServedError> {
        let spec = &self.spec;
        prov.server = Some(ServerInfo {
            url: spec.url.clone(),
            endpoint: spec.endpoint.path().into(),
            model: self.config.model.clone(),
            models: self.models,
            system_fingerprint: None,
        });
        let settings = settings(
            spec,
            &self.config,
            &self.workload,
            &self.limits,
            self.prompt_seed,
            self.metrics.as_ref().map(|m| m.url.clone()),
        );
        let mut result = new_result(spec, prov, settings, self.notes, inputs.clock);
        let searching = spec.searching();
        let (kept, next_point) = match inputs.resume {
            Some((resume, path)) => {
                resume.take_into(&path, &mut result, (!searching).then_some(&self.loads[..]))?
            }
            None => (Default::default(), 0),
        };
        let planned = (!searching).then_some(self.loads.len());
        Ok(Sweep::new(session::Parts {
            spec: self.spec.clone(),
            loads: self.loads,
            runtime: self.runtime,
            client: self.client,
            workload: self.workload,
            limits: self.limits,
            prompt_seed: self.prompt_seed,
            next_point,
            kept,
            interrupt: inputs.interrupt,
            log: self.requests_log,
            result,
            tokenizer: self.tokenizer,
            telemetry: inputs.telemetry,
            metrics: self.metrics,
            export_vllm: inputs.export_vllm.map(|path| VllmExportPlan {
                path,
                one_point: planned == Some(1),
            }),
        }))
    }
}

/// The workload of a spec, ready to send: its loads (one, for a trace),
/// with its tokenizer and token-id vocabulary applied.
struct Prepared {
    loads: Vec<(Load, LoadDescription)>,
    workload: Workload,
    tokenizer: Option<Arc<Tokenizer>>,
    token_model: Option<ModelInfo>,
    trace_length: Option<u64>,
}

fn prepare(spec: &HttpSpec, tokens: Option<TokenPrompts>) -> Result<Prepared, ServedError> {
    let usage = |e: WorkloadError| ServedError::Usage(e.to_string());
    let mut loads = loads(spec);
    if tokens.is_some() && spec.endpoint == Endpoint::Chat {
        return Err(ServedError::Usage(
            "--token-ids-from sends token ids on /v1/completions; a chat message is text (drop --endpoint chat)".into(),
        ));
    }
    let tokenizer = match &spec.tokenizer {
        Some(path) => Some(Arc::new(Tokenizer::from_file(path)?)),
        None => None,
    };
    let mut workload = Workload::parse(&spec.workload).map_err(usage)?;
    workload
        .check_endpoint(spec.endpoint == Endpoint::Chat)
        .map_err(usage)?;
    let trace_length = workload.trace().map(|t| t.entries.len() as u64);
    if trace_length.is_some() {
        if spec.concurrency.is_some() || spec.rate.is_some() || spec.searching() {
            return Err(ServedError::Usage(
                "--workload trace: replays the trace on its own send times; drop --concurrency, --rate and the searches (--trace-speed scales the times)".into(),
            ));
        }
        let load = Load::Trace {
            speed: spec.trace_speed,
            max_inflight: spec.max_inflight,
        };
        loads = vec![(load, load.describe())];
    }
    if let Some(t) = &tokenizer {
        workload = workload.with_tokenizer(t.clone());
    }
    let (token_vocab, token_model) = match tokens {
        Some(t) => (Some(t.vocab), Some(t.model)),
        None => (None, None),
    };
    if let Some(vocab) = token_vocab {
        workload = workload
            .with_token_ids(vocab)
            .map_err(ServedError::TokenIds)?;
    }
    Ok(Prepared {
        loads,
        workload,
        tokenizer,
        token_model,
        trace_length,
    })
}

/// The client, connected, and the server's model list. `keep_text`: keep
/// each reply's text (a tokenizer counts it, or a conversation's history
/// carries the server's own replies).
fn connect(
    spec: &HttpSpec,
    api_key: Option<String>,
    keep_text: bool,
) -> Result<
    (
        ClientRuntime,
        Arc<HttpClient>,
        ClientConfig,
        serde_json::Value,
    ),
    ServedError,
> {
    let runtime =
        ClientRuntime::new(spec.client_threads, spec.busy_poll).map_err(ServedError::Runtime)?;
    let mut config = ClientConfig {
        base_url: spec.url.clone(),
        endpoint: spec.endpoint,
        model: spec.model.clone().unwrap_or_default(),
        api_key,
        timeout: spec.timeout,
        ignore_eos: spec.ignore_eos,
        keep_text,
        tls: TlsOptions {
            ca_certs: spec.ca_cert.clone(),
            insecure: spec.insecure,
        },
    };
    let probe = HttpClient::new(config.clone())?;
    let models = runtime.block_on(probe.models())?;
    if config.model.is_empty() {
        config.model = models["data"][0]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ServedError::NoModelId {
                url: probe.url("/v1/models"),
            })?;
    }
    let client = Arc::new(HttpClient::new(config.clone())?);
    Ok((runtime, client, config, models))
}

/// Where the server's metrics are scraped, when asked and there; a note
/// when asked and not there (the run goes on without them).
fn metrics_plan(
    spec: &HttpSpec,
    client: &HttpClient,
    config: &ClientConfig,
    notes: &mut Vec<String>,
) -> Option<MetricsPlan> {
    let url = spec.server_metrics.as_ref()?;
    let url = if url.is_empty() {
        client.url("/metrics")
    } else {
        url.clone()
    };
    match server_metrics::probe(config, &url) {
        Ok(_) => Some(MetricsPlan {
            url,
            interval: spec.server_metrics_interval,
            config: config.clone(),
        }),
        Err(e) => {
            notes.push(format!(
                "--server-metrics: {e}; the run goes on without the server's metrics \
                 (llama-server exposes them with --metrics)"
            ));
            None
        }
    }
}

/// The client as the result's engine: what measured, with which clock.
pub fn client_engine_info(spec: &HttpSpec) -> EngineInfo {
    let mut engine = EngineInfo {
        name: "openai-compatible server".into(),
        version: "unknown (see provenance.server)".into(),
        bindings: "hyper 1 (HTTP/1.1 on the client's own connections and pool), rustls 0.23; SSE parsed by inferbench".into(),
        backend: "http".into(),
        cpu_features: None,
        devices: Vec::new(),
        threads: Some(spec.client_threads),
        threads_batch: None,
        gpu_layers_requested: None,
        gpu_layers_offloaded: None,
        timing_source: "client host clock, at the arrival of each chunk's bytes".into(),
        kernel_timing: None,
        build: None,
        device_names: None,
        notes: Vec::new(),
    };
    if spec.busy_poll {
        engine.notes.push(
            "--busy-poll: the client's threads spin polling their sockets, so its CPU use reads about 100% per thread by design".into(),
        );
    }
    engine
}

/// What the result records of the run's settings: the spec's, resolved.
fn settings(
    spec: &HttpSpec,
    config: &ClientConfig,
    workload: &Workload,
    limits: &LimitsPlan,
    prompt_seed: u64,
    metrics_url: Option<String>,
) -> HttpSettings {
    HttpSettings {
        url: spec.url.clone(),
        endpoint: spec.endpoint.path().into(),
        model: config.model.clone(),
        api_key_env: spec.api_key_env.clone(),
        api_key_present: config.api_key.is_some(),
        workload: workload.name(),
        fixed_lengths: workload
            .fixed_lengths()
            .map(|(prompt_tokens, output_tokens)| FixedLengths {
                prompt_tokens,
                output_tokens,
            }),
        num_requests: limits.same_count(),
        duration_s: limits.same_duration().map(|d| d.as_secs_f64()),
        num_requests_per_load: limits.count_spec(),
        duration_per_load: limits.duration_spec(),
        warmup: spec.warmup,
        seed: spec.seed,
        prompt_seed: Some(prompt_seed),
        token_ids_from: spec
            .token_ids_from
            .as_ref()
            .map(|p| p.display().to_string()),
        ignore_eos: spec.ignore_eos,
        timeout_s: spec.timeout.as_secs_f64(),
        slo: spec.slo,
        client_threads: spec.client_threads,
        busy_poll: spec.busy_poll,
        preconnect: spec.preconnect,
        ca_certs: spec
            .ca_cert
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        insecure_tls: spec.insecure,
        tokenizer: spec.tokenizer.as_ref().map(|p| p.display().to_string()),
        server_metrics: metrics_url,
        spec: Some(Spec::Http(spec.clone())),
    }
}

/// The result file as a run starts: running, no point yet.
fn new_result(
    spec: &HttpSpec,
    prov: Provenance,
    settings: HttpSettings,
    notes: Vec<String>,
    clock: Option<ClockSync>,
) -> HttpResult {
    HttpResult {
        shard: spec.shard.zip(spec.start_at).map(|(s, start_at)| ShardRun {
            index: s.index,
            count: s.count,
            start_at_unix_s: start_at,
            point_interval_s: spec.point_interval.map(|d| d.as_secs_f64()),
            clock,
            host: host_name(),
        }),
        ..HttpResult::running(Mode::Http, prov, settings, notes, now_rfc3339())
    }
}
