//! Load generation: a closed loop (N requests always in flight) or an open
//! loop (requests sent on an absolute schedule drawn from the seed, however
//! the server keeps up). An open loop never skips a request and never lets
//! the schedule drift: a request that cannot go on time (the in-flight cap
//! is reached) waits, is counted late, and its lag is reported.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};

use super::arrival::{schedule, Arrival};
use super::client::{ChatMessage, HttpClient, Prompt, RequestSpec, RequestTag};
use super::point::Completed;
use super::workload::{Job, Turn, Workload};
use crate::schema::{ArrivalKind, LoadDescription, LoadKind};
use inferbench_core::spec::Shard;
use inferbench_core::workload::PromptStream;

/// How a point loads the server: a closed loop, an open loop, or a trace's
/// own schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Closed loop: each request (or conversation) sent as soon as one
    /// finishes, `concurrency` always in flight.
    Closed {
        /// Requests (or conversations) kept in flight (`--concurrency`).
        concurrency: u32,
    },
    /// Open loop on an absolute schedule drawn from the point's seed.
    Open {
        /// Mean rate, in requests (or conversations) per second (`--rate`).
        rate: f64,
        /// The process the gaps between sends are drawn from.
        arrival: Arrival,
        /// Most requests in flight at once (`--max-inflight`): one due
        /// beyond it waits and counts as late.
        max_inflight: u32,
    },
    /// Open loop on a trace's own send times (the workload's), at `speed`.
    Trace {
        /// Replay speed (`--trace-speed`): 2 sends the trace twice as fast.
        speed: f64,
        /// Most requests in flight at once (`--max-inflight`): one due
        /// beyond it waits and counts as late.
        max_inflight: u32,
    },
}

impl Load {
    /// What the result file says of this load: the one place a point's load
    /// is described, for every kind.
    pub fn describe(&self) -> LoadDescription {
        let none = LoadDescription {
            kind: LoadKind::Closed,
            concurrency: None,
            rate: None,
            arrival: None,
            burstiness: None,
            max_inflight: None,
            trace_speed: None,
        };
        match *self {
            Load::Closed { concurrency } => LoadDescription {
                concurrency: Some(concurrency),
                ..none
            },
            Load::Open {
                rate,
                arrival,
                max_inflight,
            } => {
                let (arrival, burstiness) = match arrival {
                    Arrival::Poisson => (ArrivalKind::Poisson, None),
                    Arrival::Gamma { burstiness } => (ArrivalKind::Gamma, Some(burstiness)),
                    Arrival::Constant => (ArrivalKind::Constant, None),
                };
                LoadDescription {
                    kind: LoadKind::Open,
                    rate: Some(rate),
                    arrival: Some(arrival),
                    burstiness,
                    max_inflight: Some(max_inflight),
                    ..none
                }
            }
            Load::Trace {
                speed,
                max_inflight,
            } => LoadDescription {
                kind: LoadKind::Trace,
                max_inflight: Some(max_inflight),
                trace_speed: Some(speed),
                ..none
            },
        }
    }
}

/// When a point stops issuing requests: after `num_requests`, after
/// `duration`, or at whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests to issue (conversations, for a multi-turn workload); `None`:
    /// no count limit.
    pub num_requests: Option<u64>,
    /// How long after the point's start requests are issued; `None`: no time
    /// limit. At least one of the two is set.
    pub duration: Option<Duration>,
}

/// One point's load: what to send, how, and from when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPlan {
    /// How requests are sent.
    pub load: Load,
    /// When the point stops issuing them.
    pub limits: Limits,
    /// Seed of the arrival schedule.
    pub seed: u64,
    /// Where request `i` of the point comes from: item `i` of this stream.
    pub prompts: PromptStream,
    /// The point's time zero: schedules and records count from here.
    pub start: Instant,
    /// `--shard I/N`: the load and the limits are the whole load's; this
    /// run sends only its part of it (request k when k mod N = I; in a
    /// closed loop its share of the streams).
    pub shard: Option<Shard>,
}

/// How a point's load ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointEnd {
    /// Whether an interrupt (Ctrl-C, SIGTERM) cut the point short.
    pub interrupted: bool,
    /// Requests in flight at the interrupt, abandoned.
    pub cancelled: u64,
}

/// Raises `cancel` once `interrupt` is set (polled: the flag is set from a
/// signal handler, which cannot wake tasks), until `stop` is set.
fn watch_interrupt(interrupt: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(interrupt.load(Ordering::Relaxed));
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if interrupt.load(Ordering::Relaxed) {
                let _ = tx.send(true);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    rx
}

async fn cancelled(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Holds one conversation: each turn sent after the previous reply (and the
/// think time after it), carrying the whole history with the server's own
/// replies. Only the first turn is on an open loop's schedule. A failed
/// turn ends the conversation. False when interrupted.
async fn converse(
    client: &HttpClient,
    index: u64,
    turns: Vec<Turn>,
    scheduled: Option<Instant>,
    late: bool,
    tx: &mpsc::UnboundedSender<Option<Completed>>,
    cancel: watch::Receiver<bool>,
) -> bool {
    let mut history: Vec<ChatMessage> = Vec::with_capacity(turns.len() * 2);
    let mut history_tokens = 0u32;
    let last = turns.len();
    for (k, turn) in turns.into_iter().enumerate() {
        history.push(ChatMessage {
            role: "user".into(),
            content: turn.user,
        });
        let spec = RequestSpec {
            prompt: Prompt::Chat(history.clone()),
            max_tokens: turn.max_tokens,
            input_tokens_requested: history_tokens.saturating_add(turn.input_tokens),
            tag: RequestTag {
                turn: Some(k as u32 + 1),
                last_turn: k + 1 == last,
                // A later turn repeats the history on purpose.
                intended_shared: (k == 0).then_some(super::client::INTENDED_SHARED_PREFIX),
                ..RequestTag::default()
            },
        };
        let first = k == 0;
        let outcome = tokio::select! {
            outcome = client.send(&spec) => outcome,
            _ = cancelled(cancel.clone()) => {
                let _ = tx.send(None);
                return false;
            }
        };
        let failed = outcome.failure.is_some();
        let reply = outcome.text.clone().unwrap_or_default();
        let reply_tokens = outcome
            .usage
            .and_then(|u| u.completion_tokens)
            .map_or(outcome.content_times.len() as u32, |n| n as u32);
        let _ = tx.send(Some(Completed {
            index,
            scheduled: if first { scheduled } else { None },
            late: first && late,
            input_tokens_requested: spec.input_tokens_requested,
            tag: spec.tag,
            outcome,
        }));
        if failed {
            return true;
        }
        history.push(ChatMessage {
            role: "assistant".into(),
            content: reply,
        });
        history_tokens = spec.input_tokens_requested.saturating_add(reply_tokens);
        if k + 1 < last && !turn.think.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(turn.think) => {}
                _ = cancelled(cancel.clone()) => return false,
            }
        }
    }
    true
}

/// Sends a point's jobs (a request, or a conversation's turns) and hands
/// what finished to `tx` as it finishes, `None` for a request abandoned at
/// an interrupt. Requests are built by the callers before they are due:
/// building one (with a tokenizer, several encodings of a long prompt) must
/// never count as schedule lag or latency.
#[derive(Clone)]
struct JobRunner {
    client: Arc<HttpClient>,
    cancel: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Option<Completed>>,
}

impl JobRunner {
    /// One job; false when it was interrupted.
    async fn run(&self, index: u64, job: Job, scheduled: Option<Instant>, late: bool) -> bool {
        match job {
            Job::One(spec) => {
                let done = tokio::select! {
                    outcome = self.client.send(&spec) => Some(Completed {
                        index,
                        scheduled,
                        late,
                        input_tokens_requested: spec.input_tokens_requested,
                        tag: spec.tag,
                        outcome,
                    }),
                    _ = cancelled(self.cancel.clone()) => None,
                };
                let finished = done.is_some();
                let _ = self.tx.send(done);
                finished
            }
            Job::Conversation(turns) => {
                converse(
                    &self.client,
                    index,
                    turns,
                    scheduled,
                    late,
                    &self.tx,
                    self.cancel.clone(),
                )
                .await
            }
        }
    }
}

/// What every task of a point shares: the runner, the workload and its
/// prompt stream, this shard's part, and when the point stops (a request
/// count, a deadline, an interrupt). The point's requests are all in once
/// every clone of it (each holding the runner's sender) has ended.
#[derive(Clone)]
struct PointTasks {
    runner: JobRunner,
    workload: Arc<Workload>,
    prompts: PromptStream,
    interrupt: Arc<AtomicBool>,
    shard: Option<Shard>,
    max: u64,
    deadline: Option<Instant>,
}

impl PointTasks {
    fn time_left(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
    }

    /// A closed loop: each stream sends its next request as soon as its
    /// last one finished.
    fn spawn_closed(self, concurrency: u32) {
        let next = Arc::new(AtomicU64::new(0));
        let streams = self.shard.map_or(concurrency, |s| s.share(concurrency));
        for _ in 0..streams {
            let (tasks, next) = (self.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    if tasks.interrupt.load(Ordering::Relaxed) || !tasks.time_left() {
                        break;
                    }
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let index = tasks.shard.map_or(j, |s| s.global(j));
                    if index >= tasks.max {
                        break;
                    }
                    let job = tasks.workload.job(&tasks.prompts, index);
                    if !tasks.runner.run(index, job, None, false).await
                        || tasks.runner.tx.is_closed()
                    {
                        break;
                    }
                }
            });
        }
    }

    /// An open loop or a trace: each request sent when due, `offsets` from
    /// `start`, at most this shard's share of `max_inflight` in flight; one
    /// that waits for a slot is late.
    fn spawn_open(
        self,
        offsets: Box<dyn Iterator<Item = Duration> + Send>,
        max_inflight: u32,
        start: Instant,
        duration: Option<Duration>,
    ) {
        let cap = self
            .shard
            .map_or(max_inflight, |s| s.share(max_inflight).max(1));
        let slots = Arc::new(Semaphore::new(cap as usize));
        tokio::spawn(async move {
            for (index, offset) in offsets.enumerate() {
                let index = index as u64;
                if index >= self.max || duration.is_some_and(|d| offset >= d) {
                    break;
                }
                // The whole load's schedule, drawn the same on every
                // shard; each sends only its own requests of it.
                if self.shard.is_some_and(|s| !s.owns(index)) {
                    continue;
                }
                let due = start + offset;
                let job = self.workload.job(&self.prompts, index);
                tokio::time::sleep_until(due.into()).await;
                if self.interrupt.load(Ordering::Relaxed) {
                    break;
                }
                let (permit, late) = match slots.clone().try_acquire_owned() {
                    Ok(permit) => (permit, false),
                    Err(_) => match slots.clone().acquire_owned().await {
                        Ok(permit) => (permit, true),
                        Err(_) => break,
                    },
                };
                let runner = self.runner.clone();
                tokio::spawn(async move {
                    runner.run(index, job, Some(due), late).await;
                    drop(permit);
                });
            }
        });
    }
}

/// When each request of an open loop or a trace is due, from the point's
/// start.
fn arrival_offsets(
    load: Load,
    seed: u64,
    workload: &Workload,
) -> Box<dyn Iterator<Item = Duration> + Send> {
    match load {
        Load::Open { rate, arrival, .. } => Box::new(schedule(arrival, rate, seed)),
        Load::Trace { speed, .. } => Box::new(
            workload
                .trace()
                .map_or_else(Vec::new, |t| t.schedule(speed))
                .into_iter(),
        ),
        Load::Closed { .. } => Box::new(std::iter::empty()),
    }
}

/// Runs one point, handing every finished request to `on_done` as it
/// finishes (on this task, in completion order).
pub async fn run_point(
    client: Arc<HttpClient>,
    workload: Arc<Workload>,
    plan: PointPlan,
    interrupt: Arc<AtomicBool>,
    mut on_done: impl FnMut(Completed),
) -> PointEnd {
    let PointPlan {
        load,
        limits,
        seed,
        prompts,
        start,
        shard,
    } = plan;
    assert!(
        limits.num_requests.is_some() || limits.duration.is_some(),
        "a point needs a request count or a duration"
    );
    let stop_watch = Arc::new(AtomicBool::new(false));
    let cancel = watch_interrupt(interrupt.clone(), stop_watch.clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Completed>>();
    let tasks = PointTasks {
        runner: JobRunner { client, cancel, tx },
        workload,
        prompts,
        interrupt: interrupt.clone(),
        shard,
        max: limits.num_requests.unwrap_or(u64::MAX),
        deadline: limits.duration.map(|d| start + d),
    };
    match load {
        Load::Closed { concurrency } => tasks.spawn_closed(concurrency),
        Load::Open { max_inflight, .. } | Load::Trace { max_inflight, .. } => {
            let offsets = arrival_offsets(load, seed, &tasks.workload);
            tasks.spawn_open(offsets, max_inflight, start, limits.duration);
        }
    }

    let mut end = PointEnd {
        interrupted: false,
        cancelled: 0,
    };
    while let Some(done) = rx.recv().await {
        match done {
            Some(completed) => on_done(completed),
            None => end.cancelled += 1,
        }
    }
    stop_watch.store(true, Ordering::Relaxed);
    end.interrupted = interrupt.load(Ordering::Relaxed);
    end
}
