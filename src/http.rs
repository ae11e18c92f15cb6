//! `inferbench http`: an OpenAI-compatible server under closed- or open-loop
//! load, one point per concurrency or rate, the result file rewritten after
//! every point and every second during one, the requests log streamed.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use inferbench_core::early_stopping::CONFIDENCE;
use inferbench_harness::engine::PromptVocab;
use inferbench_harness::http::arrival::Arrival;
use inferbench_harness::http::client::{ClientConfig, Endpoint, HttpClient, TlsOptions};
use inferbench_harness::http::fd_limit;
use inferbench_harness::http::load::{run_point, Limits, Load, PointPlan};
use inferbench_harness::http::point::{point_notes, HttpAccumulator, RequestLogLine};
use inferbench_harness::http::runtime::ClientRuntime;
use inferbench_harness::http::server_metrics::{self, Sampler};
use inferbench_harness::http::tokenizer::Tokenizer;
use inferbench_harness::http::workload::Workload;
use inferbench_harness::plan::{call_slo, search_max, ProbeVerdict};
use inferbench_harness::precision;
use inferbench_harness::schema::shard::{PointStart, ShardRun};
use inferbench_harness::schema::validity::Precision;
use inferbench_harness::schema::ProbeCalls;
use inferbench_harness::schema::{
    EngineInfo, FixedLengths, HttpPoint, HttpResult, HttpSettings, LoadDescription,
    MaxConcurrencySearch, MaxRateSearch, Mode, ModelInfo, ResultWriter, RunStatus, ServerInfo, Slo,
    SCHEMA_VERSION,
};
use inferbench_harness::stats::HistogramInfo;
use inferbench_harness::vllm_export::VllmExport;
use inferbench_harness::workload::{Phase, PromptStream};

use inferbench_core::spec::{HttpSpec, PrecisionTarget, Shard, Spec};

use crate::cli::{usage, Outputs, PerLoad};
use crate::progress::PointProgress;
use crate::telemetry::PointTelemetry;
use crate::{interrupt, provenance, terminal};

/// How often a point in flight is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The sweep's loads: the closed-loop points, then the open-loop ones (a
/// rate search's first probe standing for the open loop).
fn loads(spec: &HttpSpec) -> Vec<(Load, LoadDescription)> {
    let rates = spec
        .find_max_rate
        .map(|start| vec![start])
        .or_else(|| spec.rate.clone())
        .unwrap_or_default();
    let open = rates.into_iter().map(|rate| Load::Open {
        rate,
        arrival: spec.arrival,
        max_inflight: spec.max_inflight,
    });
    // Both given: the closed-loop points, then the open-loop ones, in one
    // sweep (as an engine-against-engine comparison wants both).
    let concurrencies = match (
        &spec.concurrency,
        spec.rate.is_none() && spec.find_max_rate.is_none(),
    ) {
        (Some(c), _) => c.clone(),
        (None, true) => vec![1],
        (None, false) => Vec::new(),
    };
    concurrencies
        .into_iter()
        .map(|concurrency| Load::Closed { concurrency })
        .chain(open)
        .map(|load| (load, load.describe()))
        .collect()
}

/// Token-id prompts: the vocabulary they are drawn from and the model file
/// it belongs to.
#[derive(Clone)]
pub struct TokenPrompts {
    pub vocab: PromptVocab,
    pub model: ModelInfo,
}

impl TokenPrompts {
    /// Reads the vocabulary of `path` through llama.cpp (no weights).
    pub fn load(path: &Path) -> Result<TokenPrompts> {
        if !path.is_file() {
            bail!("--token-ids-from {}: no such file", path.display());
        }
        let runtime = inferbench_ffi::Runtime::get(true)?;
        let loaded = inferbench_ffi::LoadedModel::load_vocab(runtime, path)
            .with_context(|| format!("--token-ids-from {}", path.display()))?;
        Ok(TokenPrompts {
            vocab: loaded.prompt_vocab(),
            model: provenance::model_info(path, &loaded)?,
        })
    }
}

/// What a finished sweep leaves: its result (also on disk) and the exit
/// status the `http` command would give.
pub struct Sweep {
    pub result: HttpResult,
    pub exit: ExitCode,
}

/// Runs one server's spec, its token-id prompts read first.
pub fn run_spec(spec: &HttpSpec, outputs: &Outputs) -> Result<ExitCode> {
    let tokens = match &spec.token_ids_from {
        Some(path) => Some(TokenPrompts::load(path)?),
        None => None,
    };
    Ok(sweep(spec, outputs, tokens)?.exit)
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

fn prepare(spec: &HttpSpec, tokens: Option<TokenPrompts>) -> Result<Prepared> {
    let mut loads = loads(spec);
    if tokens.is_some() && spec.endpoint == Endpoint::Chat {
        return Err(usage(
            "--token-ids-from sends token ids on /v1/completions; a chat message is text (drop --endpoint chat)",
        ));
    }
    let tokenizer = match &spec.tokenizer {
        Some(path) => Some(Arc::new(Tokenizer::from_file(path)?)),
        None => None,
    };
    let mut workload = Workload::parse(&spec.workload).map_err(|e| usage(e.to_string()))?;
    workload
        .check_endpoint(spec.endpoint == Endpoint::Chat)
        .map_err(|e| usage(e.to_string()))?;
    let trace_length = workload.trace().map(|t| t.entries.len() as u64);
    if trace_length.is_some() {
        if spec.concurrency.is_some() || spec.rate.is_some() || spec.searching() {
            return Err(usage(
                "--workload trace: replays the trace on its own send times; drop --concurrency, --rate and the searches (--trace-speed scales the times)",
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
        workload = workload.with_token_ids(vocab).context("--token-ids-from")?;
    }
    Ok(Prepared {
        loads,
        workload,
        tokenizer,
        token_model,
        trace_length,
    })
}

/// The client, connected: the server's model list read (and the model
/// to request taken from it unless named), its metrics endpoint checked.
struct Connected {
    runtime: ClientRuntime,
    client: Arc<HttpClient>,
    config: ClientConfig,
    models: serde_json::Value,
    metrics: Option<MetricsPlan>,
    notes: Vec<String>,
}

/// `keep_text`: keep each reply's text (a tokenizer counts it, or a
/// conversation's history carries the server's own replies).
fn connect(spec: &HttpSpec, api_key: Option<String>, keep_text: bool) -> Result<Connected> {
    let runtime = ClientRuntime::new(spec.client_threads, spec.busy_poll)
        .context("starting the client runtime")?;
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
            .with_context(|| {
                format!(
                    "{}: /v1/models lists no model id; name one with --model",
                    probe.url("/v1/models")
                )
            })?;
    }
    let client = Arc::new(HttpClient::new(config.clone())?);
    let mut run_notes = Vec::new();
    let metrics = match &spec.server_metrics {
        None => None,
        Some(url) => {
            let url = if url.is_empty() {
                probe.url("/metrics")
            } else {
                url.clone()
            };
            match server_metrics::probe(&config, &url) {
                Ok(_) => Some(MetricsPlan {
                    url,
                    interval: spec.server_metrics_interval,
                    config: config.clone(),
                }),
                Err(e) => {
                    let note = format!(
                        "--server-metrics: {e}; the run goes on without the server's metrics \
                         (llama-server exposes them with --metrics)"
                    );
                    eprintln!("warning: {note}");
                    run_notes.push(note);
                    None
                }
            }
        }
    };

    Ok(Connected {
        runtime,
        client,
        config,
        models,
        metrics,
        notes: run_notes,
    })
}

/// The client as the result's engine: what measured, with which clock.
fn client_engine_info(spec: &HttpSpec) -> EngineInfo {
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

/// Runs every point of `spec` against the server, writing the result file
/// as it goes. Any error after the file was first written leaves it final,
/// `failed` with the error.
pub fn sweep(spec: &HttpSpec, outputs: &Outputs, tokens: Option<TokenPrompts>) -> Result<Sweep> {
    if let Some(start_at) = spec.start_at {
        let now = unix_now();
        if start_at <= now {
            return Err(usage(format!(
                "--start-at {start_at}: that time is already past (now {now:.3}); give every shard the same time ahead, e.g. $(( $(date +%s) + 30 ))"
            )));
        }
    }
    let Prepared {
        loads,
        workload,
        tokenizer,
        token_model,
        trace_length,
    } = prepare(spec, tokens)?;
    let resume = match &outputs.resume {
        Some(path) => Some(Resume::read(path)?),
        None => None,
    };
    // Shards draw one load's prompts: the same content seed on every shard,
    // from what they share, unless given.
    let shared_seed = spec
        .start_at
        .filter(|_| spec.shard.is_some())
        .map(|t| spec.seed ^ t.to_bits().rotate_left(17));
    let prompt_seed = spec
        .prompt_seed
        .or(resume.as_ref().and_then(|r| r.prompt_seed))
        .or(shared_seed)
        .unwrap_or_else(rand_seed);
    let workload = Arc::new(workload);
    let searching = spec.searching();
    // A trace runs whole unless told otherwise.
    let limits = LimitsPlan::new(
        spec,
        trace_length.unwrap_or(inferbench_core::spec::DEFAULT_NUM_REQUESTS),
    );
    let api_key = std::env::var(&spec.api_key_env)
        .ok()
        .filter(|k| !k.is_empty());
    let slo = spec.slo;
    let out_path = outputs
        .out
        .clone()
        .or_else(|| outputs.resume.clone())
        .unwrap_or_else(|| terminal::default_result_path("http"));
    // One descriptor per connection: refuse a concurrency the limit cannot hold.
    let fd_check = fd_limit::check(loads.iter().map(|(load, _)| *load));
    fd_check
        .map_err(|e| usage(e.to_string()))?
        .inspect(|w| eprintln!("warning: {w}"));

    let Connected {
        runtime,
        client,
        config,
        models,
        metrics,
        notes: run_notes,
    } = connect(
        spec,
        api_key,
        tokenizer.is_some() || workload.is_multi_turn(),
    )?;

    if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: creating {}", out_path.display(), dir.display()))?;
    }
    let writer = ResultWriter::new(&out_path);
    let log = match &outputs.requests_log {
        Some(path) => Some(BufWriter::new(std::fs::File::create(path).with_context(
            || format!("--requests-log {}: cannot create", path.display()),
        )?)),
        None => None,
    };

    let mut engine = client_engine_info(spec);
    let (telemetry, telemetry_note) = PointTelemetry::new(spec.telemetry, spec.gpu_telemetry);
    engine.notes.extend(telemetry_note);
    let mut prov = provenance::provenance(engine, token_model);
    prov.server = Some(ServerInfo {
        url: spec.url.clone(),
        endpoint: spec.endpoint.path().into(),
        model: config.model.clone(),
        models,
        system_fingerprint: None,
    });
    let mut result = HttpResult {
        schema_version: SCHEMA_VERSION,
        mode: Mode::Http,
        partial: true,
        status: RunStatus::Running,
        error: None,
        started_at: provenance::now_rfc3339(),
        updated_at: provenance::now_rfc3339(),
        provenance: prov,
        settings: settings(
            spec,
            &config,
            &workload,
            &limits,
            prompt_seed,
            metrics.as_ref().map(|m| m.url.clone()),
        ),
        histogram: HistogramInfo::current(),
        points: Vec::new(),
        max_rate: None,
        max_concurrency: None,
        notes: run_notes,
        validity: None,
        shard: spec.shard.zip(spec.start_at).map(|(s, start_at)| ShardRun {
            index: s.index,
            count: s.count,
            start_at_unix_s: start_at,
            point_interval_s: spec.point_interval.map(|d| d.as_secs_f64()),
            clock: inferbench_ffi::clock::sync_state(),
            host: host_name(),
        }),
        shards: None,
    };
    let mut kept = std::collections::VecDeque::new();
    let mut next_point = 0;
    if let (Some(resume), Some(path)) = (resume, &outputs.resume) {
        resume.check_settings(path, &result.settings)?;
        if !searching {
            resume.check_loads(path, &loads)?;
        }
        next_point = resume.next_stream;
        result.notes.push(format!(
            "resumed from {}: {} finished points kept, the rest measured on prompt streams from {} on",
            path.display(),
            resume.points.len(),
            next_point
        ));
        kept = resume.points.into();
    }
    if let Err(e) = save(&writer, &mut result, outputs.csv.as_deref()) {
        return Err(terminal::save_failed(&writer, &mut result, e));
    }
    terminal::print_http_header(&result);

    let planned = (!searching).then_some(loads.len());
    let mut session = Session {
        runtime,
        client,
        workload,
        limits,
        position: 0,
        seed: spec.seed,
        prompt_seed,
        next_point,
        kept,
        warmup: spec.warmup,
        slo: slo.unwrap_or_default(),
        max_requests_per_probe: spec.max_requests_per_probe,
        called_by_estimate: 0,
        precision: spec.until_precise.clone().map(|targets| PrecisionPlan {
            targets,
            max_requests: spec.max_requests,
            max_duration: spec.max_duration,
        }),
        slice: spec.slice,
        shard: spec.shard,
        start_at: spec.start_at,
        point_interval: spec.point_interval,
        interrupt: interrupt::flag(),
        writer,
        csv: outputs.csv.clone(),
        log,
        result,
        failed_requests: 0,
        tokenizer,
        telemetry,
        metrics,
        export_vllm: outputs.export_vllm.clone().map(|path| VllmExportPlan {
            path,
            one_point: planned == Some(1),
        }),
    };
    let measured = match (spec.find_max_rate, spec.find_max_concurrency) {
        (_, Some(start)) => search_max_concurrency(&mut session, start)
            .map(|search| session.result.max_concurrency = Some(search)),
        (Some(start_rate), None) => {
            let Load::Open { arrival, .. } = loads[0].0 else {
                unreachable!("--find-max-rate implies an open loop")
            };
            search_max_rate(&mut session, start_rate, arrival, spec.max_inflight)
                .map(|search| session.result.max_rate = Some(search))
        }
        (None, None) => loads.iter().try_for_each(|(load, description)| {
            if !session.interrupted() {
                session.measure(*load, description, None)?;
            }
            Ok(())
        }),
    };
    if let Err(e) = measured {
        let e = terminal::save_failed(&session.writer, &mut session.result, e);
        terminal::print_result_path(&out_path, true);
        return Err(e);
    }
    session.finish(&out_path, planned, outputs.csv.as_deref())
}

/// The finished part of a partial result file, to be continued.
struct Resume {
    settings: HttpSettings,
    prompt_seed: Option<u64>,
    /// Its completely measured points, in order.
    points: Vec<HttpPoint>,
    /// The first prompt stream no point of the file (nor a warm-up of a point
    /// that never finished) can have used.
    next_stream: u32,
}

impl Resume {
    fn read(path: &Path) -> Result<Resume> {
        let file = match inferbench_harness::schema::AnyResult::read(path)
            .with_context(|| format!("--resume {}", path.display()))?
        {
            inferbench_harness::schema::AnyResult::Http(r) => r,
            inferbench_harness::schema::AnyResult::Inproc(_) => {
                return Err(usage(format!(
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
    fn check_settings(&self, path: &Path, now: &HttpSettings) -> Result<()> {
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
                return Err(usage(format!(
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
    fn check_loads(&self, path: &Path, loads: &[(Load, LoadDescription)]) -> Result<()> {
        if self.points.len() > loads.len() {
            return Err(usage(format!(
                "--resume {}: it has {} finished points, this run plans {}",
                path.display(),
                self.points.len(),
                loads.len()
            )));
        }
        for (i, (point, (_, planned))) in self.points.iter().zip(loads).enumerate() {
            if point.load != *planned {
                return Err(usage(format!(
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

/// How long each point runs: `--num-requests` and `--duration`, each one
/// value for all points, one per load level, or a multiple of the load.
struct LimitsPlan {
    counts: Option<PerLoad<u64>>,
    durations: Option<PerLoad<Duration>>,
}

impl LimitsPlan {
    /// The limits `spec` asks for (its lists checked against its loads by
    /// [`HttpSpec::validate`]); `default_count` when neither is given.
    fn new(spec: &HttpSpec, default_count: u64) -> LimitsPlan {
        let counts = spec.num_requests.clone().or(if spec.duration.is_none() {
            Some(PerLoad::All(default_count))
        } else {
            None
        });
        LimitsPlan {
            counts,
            durations: spec.duration.clone(),
        }
    }

    /// The limits of the point at `position` of the sweep.
    fn at(&self, position: usize, load: Load) -> Limits {
        let size = match load {
            Load::Closed { concurrency } => f64::from(concurrency),
            Load::Open { rate, .. } => rate,
            Load::Trace { .. } => 1.0,
        };
        Limits {
            num_requests: self
                .counts
                .as_ref()
                .and_then(|c| c.at(position, size, |n| (n.ceil() as u64).max(1))),
            duration: self
                .durations
                .as_ref()
                .and_then(|d| d.at(position, size, Duration::from_secs_f64)),
        }
    }

    fn same_count(&self) -> Option<u64> {
        match self.counts {
            Some(PerLoad::All(n)) => Some(n),
            _ => None,
        }
    }

    fn same_duration(&self) -> Option<Duration> {
        match self.durations {
            Some(PerLoad::All(d)) => Some(d),
            _ => None,
        }
    }

    fn count_spec(&self) -> Option<String> {
        match &self.counts {
            Some(PerLoad::Each(list)) => Some(
                list.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(PerLoad::TimesLoad(k)) => Some(format!("{k}x")),
            _ => None,
        }
    }

    fn duration_spec(&self) -> Option<String> {
        match &self.durations {
            Some(PerLoad::Each(list)) => Some(
                list.iter()
                    .map(|d| humantime::format_duration(*d).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        }
    }
}

/// Local time as vLLM dates its results, `%Y%m%d-%H%M%S` (UTC here).
fn vllm_date() -> String {
    let rfc = provenance::now_rfc3339();
    // 2026-12-02T05:25:07Z -> 20261202-052507
    let digits: String = rfc.chars().take(19).filter(char::is_ascii_digit).collect();
    if digits.len() == 14 {
        format!("{}-{}", &digits[..8], &digits[8..])
    } else {
        digits
    }
}

/// A prompt seed nobody chose: the clock's nanoseconds and the process id.
/// The wall clock, Unix seconds.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where this shard ran: the scheduler's node name when one says
/// (`INFERBENCH_NODE`, Slurm's `SLURMD_NODENAME`), else the host name.
fn host_name() -> String {
    ["INFERBENCH_NODE", "SLURMD_NODENAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Sleeps until the wall clock reads `at` (Unix seconds): coarsely, in
/// steps that notice an interrupt, then spinning the last two milliseconds,
/// since a sleep may wake late. False when interrupted first.
fn sleep_until_unix(at: f64, interrupt: &AtomicBool) -> bool {
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return false;
        }
        let coarse = at - unix_now() - 0.002;
        if coarse <= 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_secs_f64(coarse.min(0.05)));
    }
    while unix_now() < at {
        std::hint::spin_loop();
    }
    true
}

pub fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Everything the points of one run share.
struct Session {
    runtime: ClientRuntime,
    client: Arc<HttpClient>,
    workload: Arc<Workload>,
    limits: LimitsPlan,
    /// Points measured (or kept from --resume) so far: the next one's place
    /// in the sweep, for per-load request counts.
    position: usize,
    seed: u64,
    prompt_seed: u64,
    /// Points measured or attempted so far: the next point's prompt streams.
    next_point: u32,
    /// Finished points of the `--resume` file still to be taken, in order.
    kept: std::collections::VecDeque<HttpPoint>,
    warmup: u64,
    slo: Slo,
    /// `--max-requests-per-probe`: how far an undecided probe is extended.
    max_requests_per_probe: Option<u64>,
    /// Probes called by their point estimate so far.
    called_by_estimate: u32,
    /// `--until-precise`: every point grows until its statistics are precise.
    precision: Option<PrecisionPlan>,
    /// `--slice`: each point's time slices.
    slice: Option<Duration>,
    /// `--shard`: this run's part of the load.
    shard: Option<Shard>,
    /// `--start-at`, Unix seconds: when the first point starts.
    start_at: Option<f64>,
    /// `--point-interval`: point p starts at `start_at` + p × it.
    point_interval: Option<Duration>,
    interrupt: Arc<AtomicBool>,
    writer: ResultWriter,
    csv: Option<std::path::PathBuf>,
    log: Option<BufWriter<std::fs::File>>,
    result: HttpResult,
    failed_requests: u64,
    tokenizer: Option<Arc<Tokenizer>>,
    telemetry: PointTelemetry,
    metrics: Option<MetricsPlan>,
    export_vllm: Option<VllmExportPlan>,
}

/// `--until-precise` and its caps.
struct PrecisionPlan {
    targets: Vec<PrecisionTarget>,
    max_requests: Option<u64>,
    max_duration: Option<Duration>,
}

impl PrecisionPlan {
    /// The cap on a point that started with `first` requests.
    fn max_requests(&self, first: u64) -> u64 {
        self.max_requests.unwrap_or_else(|| {
            first
                .saturating_mul(20)
                .max(precision::observations_needed(&self.targets))
        })
    }
}

/// Where each point goes in vLLM's result format (`--export-vllm`).
struct VllmExportPlan {
    path: std::path::PathBuf,
    /// The run measures one point: it goes to `path` itself.
    one_point: bool,
}

impl VllmExportPlan {
    /// `out.json` for a one-point run, else `out.c8.json`, `out.rate2.json`.
    fn path_for(&self, load: &LoadDescription) -> std::path::PathBuf {
        if self.one_point {
            return self.path.clone();
        }
        let tag = match (load.concurrency, load.rate) {
            (Some(c), _) => format!("c{c}"),
            (_, Some(r)) => format!("rate{r}"),
            _ => "point".into(),
        };
        let stem = self
            .path
            .file_stem()
            .map_or_else(|| "vllm".into(), |s| s.to_string_lossy().into_owned());
        let ext = self
            .path
            .extension()
            .map_or_else(|| "json".into(), |e| e.to_string_lossy().into_owned());
        self.path.with_file_name(format!("{stem}.{tag}.{ext}"))
    }
}

/// Where and how often the server's metrics are scraped.
struct MetricsPlan {
    url: String,
    interval: Duration,
    config: ClientConfig,
}

impl Session {
    /// The final status, file and exit status of a sweep that ran to its
    /// end (or was interrupted): `planned` points, or a search's (`None`).
    fn finish(self, out_path: &Path, planned: Option<usize>, csv: Option<&Path>) -> Result<Sweep> {
        let searching = planned.is_none();
        let Session {
            interrupt,
            writer,
            mut result,
            failed_requests,
            ..
        } = self;
        let interrupted = interrupt.load(Ordering::Relaxed);
        result.status = if interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        result.partial = interrupted
            || planned.is_some_and(|n| result.points.len() != n)
            || result.points.iter().any(|p| !p.complete);
        save(&writer, &mut result, csv)?;
        terminal::print_run_verdict(&result);
        terminal::print_result_path(out_path, result.partial);
        let exit = if interrupted {
            ExitCode::from(crate::exit::INTERRUPTED)
        } else if failed_requests > 0 && !searching {
            eprintln!("{failed_requests} requests failed (see failed_by_class in the result)");
            ExitCode::from(crate::exit::REQUESTS_FAILED)
        } else {
            ExitCode::SUCCESS
        };
        Ok(Sweep { result, exit })
    }

    /// How the search's probes were called so far.
    fn probe_calls(&self) -> ProbeCalls {
        ProbeCalls {
            called_by_estimate: Some(self.called_by_estimate),
            confidence: Some(CONFIDENCE),
            max_requests_per_probe: self.max_requests_per_probe,
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    /// One probe of a search; `None` once interrupted. It is called by the
    /// early-stopping rule, extended while the rule leaves it undecided (up
    /// to `--max-requests-per-probe`), and called by its point estimate if
    /// it still is.
    fn probe(&mut self, load: Load) -> Result<Option<ProbeVerdict>> {
        if self.interrupted() {
            return Ok(None);
        }
        let point = self.measure(load, &load.describe(), self.max_requests_per_probe)?;
        if !point.complete {
            return Ok(Some(ProbeVerdict::Incomplete));
        }
        let call = call_slo(&point, &self.slo);
        if call.by_estimate {
            self.called_by_estimate += 1;
        }
        Ok(Some(if call.met {
            ProbeVerdict::Met
        } else {
            ProbeVerdict::Missed
        }))
    }

    /// Sharded: waits for point `slot`'s start on the wall clock, every
    /// shard's the same; a point whose slot has passed (its warm-up or the
    /// previous point ran past it) starts at once and says so.
    fn wait_for_slot(
        &mut self,
        slot: usize,
        load: Load,
        description: &LoadDescription,
    ) -> Option<PointStart> {
        let start_at = self.start_at?;
        let shard = self.shard?;
        let share = shard.share(match load {
            Load::Closed { concurrency } => concurrency,
            Load::Open { max_inflight, .. } | Load::Trace { max_inflight, .. } => max_inflight,
        });
        let interval = self.point_interval.map_or(0.0, |d| d.as_secs_f64());
        let planned = start_at + slot as f64 * interval;
        let overran = unix_now() > planned;
        // Interrupted while waiting, the point starts at once and stops.
        if !overran {
            sleep_until_unix(planned, &self.interrupt);
        }
        let lag_ms = (unix_now() - planned) * 1e3;
        if overran {
            let note = format!(
                "{}: started {lag_ms:.0} ms after its slot at {planned:.3} (the warm-up or the previous point ran past it; raise --point-interval or --start-at): its window may not line up with the other shards'",
                description.label()
            );
            eprintln!("warning: {note}");
            self.result.notes.push(note);
        }
        Some(PointStart {
            planned_unix_s: planned,
            lag_ms,
            overran_slot: overran,
            share,
        })
    }

    /// Runs the warm-up requests of a point. `Some(message)` when every one
    /// failed: the server cannot serve this load at all, and measuring it
    /// would only count failures.
    fn run_warmup(&self, load: Load, prompts: PromptStream) -> Option<String> {
        // Sharded, every shard sends `warmup` requests of its own: the
        // warm-up is the whole load's N times as many, each shard its part.
        let shards = self.shard.map_or(1, |s| s.count);
        let count = self.warmup * u64::from(shards);
        let concurrency = match load {
            Load::Closed { concurrency } => concurrency,
            Load::Open { .. } | Load::Trace { .. } => shards,
        };
        let plan = PointPlan {
            load: Load::Closed {
                concurrency: concurrency.min(count as u32).max(shards),
            },
            limits: Limits {
                num_requests: Some(count),
                duration: None,
            },
            seed: self.seed,
            prompts,
            start: Instant::now(),
            shard: self.shard,
        };
        let mut failures = Vec::new();
        let mut successes = 0;
        self.runtime.block_on(run_point(
            self.client.clone(),
            self.workload.clone(),
            plan,
            self.interrupt.clone(),
            |c| match c.outcome.failure {
                Some(f) => failures.push(format!("{}: {}", f.class.name(), f.message)),
                None => successes += 1,
            },
        ));
        (successes == 0 && !failures.is_empty()).then(|| {
            format!(
                "all {} warm-up requests failed; first: {}",
                failures.len(),
                failures[0]
            )
        })
    }

    /// Warm-up, then one measured point: logged, saved every second while it
    /// runs, appended to the result and saved when it ends. `extend_to`: a
    /// search's probe, extended with fresh requests (up to that many in
    /// all) while the early-stopping rule leaves it undecided.
    fn measure(
        &mut self,
        load: Load,
        description: &LoadDescription,
        extend_to: Option<u64>,
    ) -> Result<HttpPoint> {
        if let Some(kept) = self.kept.pop_front() {
            if kept.load != *description {
                bail!(
                    "--resume: the file's point {} is {}, where this run measures {}",
                    self.result.points.len() + 1,
                    kept.load.label(),
                    description.label()
                );
            }
            self.position += 1;
            self.failed_requests += kept.requests.failed;
            terminal::print_http_row(&kept, self.metrics.is_some());
            println!("  (kept from the resumed file)");
            self.result.points.push(kept.clone());
            save(&self.writer, &mut self.result, self.csv.as_deref())?;
            return Ok(kept);
        }
        let stream_index = self.next_point;
        self.next_point += 1;
        let (seed, prompt_seed) = (self.seed, self.prompt_seed);
        let stream = move |phase| {
            PromptStream::new(seed, stream_index, phase).with_content_seed(prompt_seed)
        };
        if self.warmup > 0 {
            let warm = self.run_warmup(load, stream(Phase::Warmup));
            if let Some(message) = warm {
                bail!("{}: warm-up failed: {message}", description.label());
            }
        }
        let preconnected = self.result.settings.preconnect.then(|| {
            // An open loop's in-flight count is not known ahead: a second's
            // arrivals is a fair guess; later ones open their own.
            let connections = match load {
                Load::Closed { concurrency } => {
                    self.shard.map_or(concurrency, |s| s.share(concurrency))
                }
                Load::Open {
                    rate, max_inflight, ..
                } => (rate.ceil() as u32).clamp(1, max_inflight),
                Load::Trace { max_inflight, .. } => 8.min(max_inflight),
            };
            self.runtime.block_on(self.client.preconnect(connections))
        });
        let limits = self.limits.at(self.position, load);
        let slot = self.position;
        self.position += 1;
        let point_index = self.result.points.len();
        // Its first scrape, the baseline of every counter, is taken before
        // the point's first request.
        let sampler = self
            .metrics
            .as_ref()
            .and_then(|m| Sampler::start(&m.config, &m.url, m.interval).ok());
        let connects_before = self.client.connects().started();
        let start_against_slot = self.wait_for_slot(slot, load, description);
        let start = Instant::now();
        let plan = PointPlan {
            load,
            limits,
            seed: self.seed,
            prompts: stream(Phase::Measured),
            start,
            shard: self.shard,
        };
        let mut acc = HttpAccumulator::new(start, self.slo)
            .with_tokenizer(self.tokenizer.clone())
            .with_slices(self.slice);
        let mut last_save = Instant::now();
        let mut io_error: Option<anyhow::Error> = None;
        let (result, writer, log) = (&self.result, &self.writer, &mut self.log);
        // A shard sends its part of the load's requests.
        let first = limits
            .num_requests
            .map(|n| self.shard.map_or(n, |s| s.count_of(n)));
        let mut progress = PointProgress::new(description.label(), first);
        let mut vllm = self.export_vllm.as_ref().map(|_| VllmExport::new());
        self.telemetry.start();
        let mut segment = plan;
        let mut sent = first;
        let mut extension = 0u8;
        let mut stopped_by = "interrupted";
        let end = loop {
            let end = self.runtime.block_on(run_point(
                self.client.clone(),
                self.workload.clone(),
                segment,
                self.interrupt.clone(),
                |completed| {
                    let mut record = acc.add(completed);
                    record.extension = (extension > 0).then_some(extension);
                    progress.record(&record);
                    if let Some(v) = vllm.as_mut() {
                        v.add(&record);
                    }
                    if let (Some(log), None) = (log.as_mut(), io_error.as_ref()) {
                        let line = RequestLogLine {
                            point: point_index,
                            record: &record,
                        };
                        let written = serde_json::to_writer(&mut *log, &line)
                            .map_err(anyhow::Error::new)
                            .and_then(|()| writeln!(log).map_err(anyhow::Error::new));
                        if let Err(e) = written {
                            io_error = Some(e.context("writing --requests-log"));
                        }
                    }
                    if last_save.elapsed() >= SAVE_EVERY && io_error.is_none() {
                        let mut snapshot = result.clone();
                        snapshot
                            .points
                            .push(acc.finish(description.clone(), false, 0));
                        if let Err(e) = save(writer, &mut snapshot, None) {
                            io_error = Some(e);
                        }
                        if let Some(log) = log.as_mut() {
                            let _ = log.flush();
                        }
                        last_save = Instant::now();
                    }
                },
            ));
            // A probe the rule leaves undecided gets the requests it needs
            // (a quarter more at least, so that it is not extended request
            // by request), each prompt fresh; under --until-precise a point
            // grows until its statistics are precise, or a cap.
            let snapshot = || acc.finish(description.clone(), true, 0);
            let more = match (extend_to, &self.precision, first, sent) {
                _ if end.interrupted || extension >= MAX_EXTENSIONS => None,
                (Some(cap), _, _, Some(n)) => snapshot()
                    .judge_slo(&self.slo)
                    .and_then(|v| v.more_needed)
                    .map(|more| more.max(n / 4).min(cap.saturating_sub(n)))
                    .filter(|&more| more > 0),
                (None, Some(plan), Some(first), Some(n)) => {
                    let checks = precision::check(&snapshot(), &plan.targets);
                    let cap = plan.max_requests(first);
                    let out_of_time = plan.max_duration.is_some_and(|d| start.elapsed() >= d);
                    stopped_by = match precision::more_needed(&checks, n) {
                        None => "precise",
                        Some(_) if n >= cap => "max_requests",
                        Some(_) if out_of_time => "max_duration",
                        Some(_) => "",
                    };
                    precision::more_needed(&checks, n)
                        .map(|more| more.min(cap.saturating_sub(n)))
                        .filter(|&more| more > 0 && !out_of_time)
                }
                _ => None,
            };
            let (Some(more), Some(n)) = (more, sent) else {
                break end;
            };
            extension += 1;
            sent = Some(n + more);
            progress.extend(more);
            segment = PointPlan {
                load,
                limits: Limits {
                    num_requests: Some(more),
                    // The time cap bounds the extension too.
                    duration: self
                        .precision
                        .as_ref()
                        .and_then(|p| p.max_duration)
                        .map(|d| d.saturating_sub(start.elapsed())),
                },
                seed: self.seed,
                prompts: stream(Phase::Extension(extension)),
                start: Instant::now(),
                shard: self.shard,
            };
        };
        let telemetry = self.telemetry.stop();
        let server_metrics = sampler.map(Sampler::stop);
        progress.finish();
        // A write that failed during the point fails the run, after the
        // point is kept: a run never loses what it measured.
        let mut io_error = io_error;
        if let (Some(log), None) = (self.log.as_mut(), io_error.as_ref()) {
            if let Err(e) = log.flush() {
                io_error = Some(anyhow::Error::new(e).context("writing --requests-log"));
            }
        }
        let mut point = acc.finish(description.clone(), !end.interrupted, end.cancelled);
        point.prompt_stream = Some(stream_index);
        point.start = start_against_slot;
        point.num_requests_planned = sent;
        if let (Some(plan), Some(first)) = (&self.precision, first) {
            let targets = precision::check(&point, &plan.targets);
            point.precision = Some(Precision {
                reached: targets.iter().all(|t| t.met),
                stopped_by: if end.interrupted {
                    "interrupted"
                } else {
                    stopped_by
                }
                .into(),
                requests: point.requests.succeeded + point.requests.failed,
                max_requests: plan.max_requests(first),
                max_duration_s: plan.max_duration.map(|d| d.as_secs_f64()),
                targets,
            });
        }
        point.duration_planned_s = limits.duration.map(|d| d.as_secs_f64());
        point.energy = telemetry.as_ref().and_then(|t| {
            let output_tokens = point
                .output_tokens
                .as_ref()
                .map_or(0, |s| (s.mean * s.count as f64).round() as u64);
            t.energy_per_token(output_tokens)
        });
        point.telemetry = telemetry;
        point.server_metrics = server_metrics;
        point.client.preconnected = preconnected;
        point.client.connections_opened = Some(self.client.connects().started() - connects_before);
        if let Some(server) = self.result.provenance.server.as_mut() {
            if server.system_fingerprint.is_none() {
                server.system_fingerprint = acc.system_fingerprint().map(str::to_string);
            }
        }
        self.failed_requests += point.requests.failed;
        terminal::print_http_row(&point, self.metrics.is_some());
        for note in point_notes(&point, self.workload.sends_token_ids()) {
            eprintln!("warning: {note}");
            self.result.notes.push(note);
        }
        if point.requests.total > 0 {
            self.result.points.push(point.clone());
        }
        save(&self.writer, &mut self.result, self.csv.as_deref())?;
        if let Some(e) = io_error {
            return Err(e);
        }
        if let (Some(plan), Some(v)) = (&self.export_vllm, &vllm) {
            let path = plan.path_for(&point.load);
            let json = v.finish(&point, &self.result.settings, &vllm_date());
            let text = serde_json::to_string_pretty(&json).context("--export-vllm")?;
            std::fs::write(&path, text)
                .with_context(|| format!("--export-vllm {}: cannot write", path.display()))?;
        }
        Ok(point)
    }
}

/// Probes that bracket the highest rate meeting the SLO at p99
/// ([`search_max`]). Every probe uses the same seed, so the search repeats
/// exactly against a server that behaves the same.
fn search_max_rate(
    session: &mut Session,
    start_rate: f64,
    arrival: Arrival,
    max_inflight: u32,
) -> Result<MaxRateSearch> {
    let found = search_max(start_rate, false, |rate| {
        let load = Load::Open {
            rate,
            arrival,
            max_inflight,
        };
        session.probe(load)
    })?;
    terminal::print_search(
        "highest rate",
        found.best.map(|r| format!("{r} req/s")),
        found.failing.map(|r| format!("{r} req/s")),
        found.probes,
        session.called_by_estimate,
    );
    Ok(MaxRateSearch {
        max_rate: found.best,
        lowest_failing_rate: found.failing,
        probes: found.probes,
        calls: session.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

/// Probes that bracket the highest concurrency meeting the SLO at p99, as
/// [`search_max_rate`] does for rates, on whole numbers of requests in flight.
fn search_max_concurrency(session: &mut Session, start: u32) -> Result<MaxConcurrencySearch> {
    // Whole-number searches probe whole numbers from 1 up.
    let whole = |load: f64| load as u32;
    let found = search_max(f64::from(start), true, |concurrency| {
        session.probe(Load::Closed {
            concurrency: whole(concurrency),
        })
    })?;
    terminal::print_search(
        "highest concurrency",
        found.best.map(|c| format!("c={}", whole(c))),
        found.failing.map(|c| format!("c={}", whole(c))),
        found.probes,
        session.called_by_estimate,
    );
    Ok(MaxConcurrencySearch {
        max_concurrency: found.best.map(whole),
        lowest_failing_concurrency: found.failing.map(whole),
        probes: found.probes,
        calls: session.probe_calls(),
        criterion: SEARCH_CRITERION.into(),
    })
}

const SEARCH_CRITERION: &str = "p99 of every --slo objective within its limit at 99% confidence by MLPerf LoadGen's early-stopping rule, a failed request over every limit; a probe the rule leaves undecided (after any extension up to --max-requests-per-probe) is called by its point estimate: p99 within every limit and no failed request";

/// Extensions of one probe at most (each a prompt stream of its own).
const MAX_EXTENSIONS: u8 = 200;

fn save(writer: &ResultWriter, result: &mut HttpResult, csv: Option<&Path>) -> Result<()> {
    terminal::save_result(writer, result, csv, crate::points_table::write_http_csv)
}
