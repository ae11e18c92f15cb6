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
use inferbench_harness::http::load::{run_point, Limits, Load, PointEnd, PointPlan};
use inferbench_harness::http::point::{point_notes, Completed, HttpAccumulator, RequestLogLine};
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
};
use inferbench_harness::vllm_export::VllmExport;
use inferbench_harness::workload::{Phase, PromptStream};

use inferbench_core::spec::{HttpSpec, PrecisionTarget, Shard, Spec};

use crate::cli::{usage, Outputs, PerLoad};
use crate::progress::PointProgress;
use crate::telemetry::PointTelemetry;
use crate::{interrupt, provenance, terminal};

mod limits;
mod plans;
mod recorder;
mod resume;
mod session;

use limits::LimitsPlan;
use plans::{MetricsPlan, PrecisionPlan, VllmExportPlan};
use recorder::{PointRecorder, PointSetup};
use resume::Resume;
use session::Session;

/// How often a point in flight is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Extensions of one probe at most (each a prompt stream of its own).
const MAX_EXTENSIONS: u8 = 200;

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
    check_start_at(spec.start_at)?;
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
    let prompt_seed = prompt_seed(spec, resume.as_ref());
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

    let (writer, log) = open_outputs(&out_path, outputs.requests_log.as_deref())?;

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
    let settings = settings(
        spec,
        &config,
        &workload,
        &limits,
        prompt_seed,
        metrics.as_ref().map(|m| m.url.clone()),
    );
    let mut result = new_result(spec, prov, settings, run_notes);
    let (kept, next_point) = match (resume, &outputs.resume) {
        (Some(resume), Some(path)) => {
            resume.take_into(path, &mut result, (!searching).then_some(&loads[..]))?
        }
        _ => (Default::default(), 0),
    };
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
    if let Err(e) = session.run(spec, &loads) {
        let e = terminal::save_failed(&session.writer, &mut session.result, e);
        terminal::print_result_path(&out_path, true);
        return Err(e);
    }
    session.finish(&out_path, planned, outputs.csv.as_deref())
}

/// `--start-at` must be ahead: a shard that starts late would measure a
/// window the others do not.
fn check_start_at(start_at: Option<f64>) -> Result<()> {
    let Some(start_at) = start_at else {
        return Ok(());
    };
    let now = unix_now();
    if start_at <= now {
        return Err(usage(format!(
            "--start-at {start_at}: that time is already past (now {now:.3}); give every shard the same time ahead, e.g. $(( $(date +%s) + 30 ))"
        )));
    }
    Ok(())
}

/// The result's writer (its directory made) and the `--requests-log` file.
fn open_outputs(
    out_path: &Path,
    requests_log: Option<&Path>,
) -> Result<(ResultWriter, Option<BufWriter<std::fs::File>>)> {
    terminal::make_parent_dir("--out", out_path)?;
    let log = match requests_log {
        Some(path) => Some(BufWriter::new(std::fs::File::create(path).with_context(
            || format!("--requests-log {}: cannot create", path.display()),
        )?)),
        None => None,
    };
    Ok((ResultWriter::new(out_path), log))
}

/// The seed of the prompts' content: `--prompt-seed`, else the resumed
/// file's, else (sharded) one every shard derives alike from what they
/// share, so that shards draw one load's prompts; else a fresh one.
fn prompt_seed(spec: &HttpSpec, resume: Option<&Resume>) -> u64 {
    let shared_seed = spec
        .start_at
        .filter(|_| spec.shard.is_some())
        .map(|t| spec.seed ^ t.to_bits().rotate_left(17));
    spec.prompt_seed
        .or(resume.and_then(|r| r.prompt_seed))
        .or(shared_seed)
        .unwrap_or_else(rand_seed)
}

/// The result file as a run starts: running, no point yet.
fn new_result(
    spec: &HttpSpec,
    prov: inferbench_harness::schema::Provenance,
    settings: HttpSettings,
    notes: Vec<String>,
) -> HttpResult {
    HttpResult {
        shard: spec.shard.zip(spec.start_at).map(|(s, start_at)| ShardRun {
            index: s.index,
            count: s.count,
            start_at_unix_s: start_at,
            point_interval_s: spec.point_interval.map(|d| d.as_secs_f64()),
            clock: inferbench_ffi::clock::sync_state(),
            host: host_name(),
        }),
        ..HttpResult::running(Mode::Http, prov, settings, notes, provenance::now_rfc3339())
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

fn save(writer: &ResultWriter, result: &mut HttpResult, csv: Option<&Path>) -> Result<()> {
    terminal::save_result(writer, result, csv, crate::points_table::write_http_csv)
}
