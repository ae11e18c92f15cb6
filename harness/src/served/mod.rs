//! A served run from its spec: the loads of an [`HttpSpec`], its workload
//! prepared, the server connected, then every point measured in turn (or a
//! search's probes), kept from a resumed file where one is given, each
//! extended while a rule asks for more requests.
//!
//! The runner writes nothing and prints nothing: it reports what happens
//! through a [`SweepObserver`] (the terminal and its progress bar, a test's
//! recorder), which also saves the result whenever the runner says it
//! should. The binary parses, prints and writes files.
//!
//! ```text
//! let ready = Ready::connect(&spec, ConnectInputs { .. }, &mut observer)?;
//! let mut sweep = ready.start(provenance, StartInputs { .. })?;
//! observer.save(sweep.result_mut(), true)?;                    // the first file
//! sweep.run(&mut observer)?;                                   // points, saves
//! let finished = sweep.finish(&mut observer)?;                 // the final save
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use inferbench_core::engine::PromptVocab;
use inferbench_core::schema::{HttpPoint, HttpResult, LoadDescription, ModelInfo};
use inferbench_core::spec::HttpSpec;
use inferbench_http::client::ClientError;
use inferbench_http::fd_limit::FdLimitError;
use inferbench_http::load::Load;
use inferbench_http::record::RequestRecord;
use inferbench_http::tokenizer::TokenizerError;
use inferbench_http::workload::WorkloadError;

mod limits;
mod plans;
mod ready;
mod recorder;
mod resume;
pub mod rounds;
mod search;
mod session;

use limits::LimitsPlan;
use plans::{MetricsPlan, PrecisionPlan, VllmExportPlan};
pub use ready::{client_engine_info, ConnectInputs, Ready, StartInputs};
pub use resume::Resume;
pub use search::SEARCH_CRITERION;
pub use session::{Finished, Sweep};

/// How often a point in flight is saved.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Extensions of one probe at most (each a prompt stream of its own).
pub const MAX_EXTENSIONS: u8 = 200;

pub use crate::telemetry::PointSampler;
pub use crate::SaveError;

/// Why a served run could not start or go on. Each names the flag or file
/// it comes from.
#[derive(Debug, thiserror::Error)]
pub enum ServedError {
    /// The spec asks for something that cannot run as given (the binary's
    /// exit 2).
    #[error("{0}")]
    Usage(String),
    /// The client's threads could not start.
    #[error("starting the client runtime")]
    Runtime(#[source] std::io::Error),
    /// The client could not be built, or the server's model list read.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `--tokenizer` could not be read.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The token-id vocabulary does not suit the workload.
    #[error("--token-ids-from")]
    TokenIds(#[source] WorkloadError),
    #[error("{url}: /v1/models lists no model id; name one with --model")]
    /// No model named, and the server lists none.
    NoModelId {
        /// The model list's URL.
        url: String,
    },
    #[error("--requests-log {}: cannot create", path.display())]
    /// The requests log could not be created.
    RequestsLogCreate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the requests log could not be written.
    #[error("writing --requests-log")]
    RequestsLog(#[source] std::io::Error),
    #[error("--resume {}", path.display())]
    /// The file to resume could not be read as a result.
    ResumeRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: inferbench_core::schema::ReadError,
    },
    #[error("{label}: warm-up failed: {message}")]
    /// Every warm-up request of a point failed: the server cannot serve
    /// the load at all.
    WarmupFailed {
        /// The point's load.
        label: String,
        /// The first failure.
        message: String,
    },
    #[error("--export-vllm {}: cannot write", path.display())]
    /// A point's vLLM-format file could not be written.
    ExportVllm {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The observer could not save the result.
    #[error("saving the result")]
    Save(#[source] SaveError),
}

impl From<FdLimitError> for ServedError {
    fn from(e: FdLimitError) -> Self {
        ServedError::Usage(e.to_string())
    }
}

/// What a served run reports as it goes. Every method but [`Self::save`]
/// has a default that ignores the event.
pub trait SweepObserver {
    /// A warning for whoever watches; the runner has already kept it among
    /// the result's notes where it belongs there.
    fn warning(&mut self, _message: &str) {}
    /// A point's measured requests start: its label and how many it plans
    /// (its shard's part), when a count bounds it.
    fn point_started(&mut self, _label: &str, _planned: Option<u64>) {}
    /// One of the point's measured requests completed (warm-ups are not
    /// reported).
    fn request_done(&mut self, _record: &RequestRecord) {}
    /// The point goes on with `more` requests (a probe the rule leaves
    /// undecided, or a point not yet precise).
    fn point_extended(&mut self, _more: u64) {}
    /// The point's requests are over.
    fn point_ended(&mut self) {}
    /// A point joins the result: measured now, or kept from the resumed
    /// file (`resumed`). A measured point without any request is reported
    /// but not kept.
    fn point_kept(&mut self, _point: &HttpPoint, _resumed: bool) {}
    /// A search is over: what it found.
    fn search_ended(&mut self, _search: &SearchReport) {}
    /// Saves the result as it stands. `whole`: after a point and at the
    /// end, with every output; otherwise a save during a point, whose last
    /// point is the one in flight.
    fn save(&mut self, result: &mut HttpResult, whole: bool) -> Result<(), SaveError>;
}

/// What a search found, worded for a reader.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchReport {
    /// "highest rate", "highest concurrency".
    pub what: &'static str,
    /// The highest load that met the SLO, if any did.
    pub best: Option<String>,
    /// The lowest load that missed it, if any did.
    pub failing: Option<String>,
    /// Probes run.
    pub probes: u32,
    /// Probes called by their point estimate (the rule left them undecided).
    pub called_by_estimate: u32,
}

/// Token-id prompts: the vocabulary they are drawn from and the model file
/// it belongs to.
#[derive(Clone)]
pub struct TokenPrompts {
    /// The token ids prompts are drawn from.
    pub vocab: PromptVocab,
    /// The model file the vocabulary was read from.
    pub model: ModelInfo,
}

/// The sweep's loads: the closed-loop points, then the open-loop ones (a
/// rate search's first probe standing for the open loop).
pub fn loads(spec: &HttpSpec) -> Vec<(Load, LoadDescription)> {
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

/// `--start-at` must be ahead: a shard that starts late would measure a
/// window the others do not.
pub(super) fn check_start_at(start_at: Option<f64>) -> Result<(), ServedError> {
    let Some(start_at) = start_at else {
        return Ok(());
    };
    let now = unix_now();
    if start_at <= now {
        return Err(ServedError::Usage(format!(
            "--start-at {start_at}: that time is already past (now {now:.3}); give every shard the same time ahead, e.g. $(( $(date +%s) + 30 ))"
        )));
    }
    Ok(())
}

/// The seed of the prompts' content: `--prompt-seed`, else the resumed
/// file's, else (sharded) one every shard derives alike from what they
/// share, so that shards draw one load's prompts; else a fresh one.
pub(super) fn prompt_seed(spec: &HttpSpec, resumed: Option<u64>) -> u64 {
    let shared_seed = spec
        .start_at
        .filter(|_| spec.shard.is_some())
        .map(|t| spec.seed ^ t.to_bits().rotate_left(17));
    spec.prompt_seed
        .or(resumed)
        .or(shared_seed)
        .unwrap_or_else(rand_seed)
}

/// The wall clock as results date themselves.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Local time as vLLM dates its results, `%Y%m%d-%H%M%S` (UTC here).
pub(super) fn vllm_date() -> String {
    let rfc = now_rfc3339();
    // 2026-12-02T05:25:07Z -> 20261202-052507
    let digits: String = rfc.chars().take(19).filter(char::is_ascii_digit).collect();
    if digits.len() == 14 {
        format!("{}-{}", &digits[..8], &digits[8..])
    } else {
        digits
    }
}

/// The wall clock, Unix seconds.
pub(super) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where this shard ran: the scheduler's node name when one says
/// (`INFERBENCH_NODE`, Slurm's `SLURMD_NODENAME`), else the host name.
pub(super) fn host_name() -> String {
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
pub(super) fn sleep_until_unix(at: f64, interrupt: &AtomicBool) -> bool {
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

/// A prompt seed nobody chose: the clock's nanoseconds and the process id.
pub fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
