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
use super::client::{HttpClient, RequestSpec};
use super::point::Completed;
use super::workload::Workload;
use crate::workload::PromptStream;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    Closed {
        concurrency: u32,
    },
    Open {
        rate: f64,
        arrival: Arrival,
        max_inflight: u32,
    },
}

/// When a point stops issuing requests: after `num_requests`, after
/// `duration`, or at whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub num_requests: Option<u64>,
    pub duration: Option<Duration>,
}

/// One point's load: what to send, how, and from when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPlan {
    pub load: Load,
    pub limits: Limits,
    /// Seed of the arrival schedule.
    pub seed: u64,
    /// Where request `i` of the point comes from: item `i` of this stream.
    pub prompts: PromptStream,
    /// The point's time zero: schedules and records count from here.
    pub start: Instant,
}

/// How a point's load ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointEnd {
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
    } = plan;
    assert!(
        limits.num_requests.is_some() || limits.duration.is_some(),
        "a point needs a request count or a duration"
    );
    let stop_watch = Arc::new(AtomicBool::new(false));
    let cancel = watch_interrupt(interrupt.clone(), stop_watch.clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Completed>>();
    let max = limits.num_requests.unwrap_or(u64::MAX);
    let deadline = limits.duration.map(|d| start + d);
    let time_left = move || deadline.is_none_or(|d| Instant::now() < d);

    // Requests are built by the callers before they are due: building one
    // (with a tokenizer, several encodings of a long prompt) must never count
    // as schedule lag or latency.
    let send_one = {
        let client = client.clone();
        move |index: u64, spec: RequestSpec, scheduled: Option<Instant>, late: bool| {
            let client = client.clone();
            let cancel = cancel.clone();
            async move {
                tokio::select! {
                    outcome = client.send(&spec) => Some(Completed {
                        index,
                        scheduled,
                        late,
                        input_tokens_requested: spec.input_tokens_requested,
                        outcome,
                    }),
                    _ = cancelled(cancel) => None,
                }
            }
        }
    };

    match load {
        Load::Closed { concurrency } => {
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..concurrency {
                let (tx, next, send_one, interrupt, workload) = (
                    tx.clone(),
                    next.clone(),
                    send_one.clone(),
                    interrupt.clone(),
                    workload.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        if interrupt.load(Ordering::Relaxed) || !time_left() {
                            break;
                        }
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= max {
                            break;
                        }
                        let spec = workload.request(&prompts, index);
                        let done = send_one(index, spec, None, false).await;
                        let was_cancelled = done.is_none();
                        if tx.send(done).is_err() || was_cancelled {
                            break;
                        }
                    }
                });
            }
        }
        Load::Open {
            rate,
            arrival,
            max_inflight,
        } => {
            let tx = tx.clone();
            let slots = Arc::new(Semaphore::new(max_inflight as usize));
            let interrupt = interrupt.clone();
            tokio::spawn(async move {
                for (index, offset) in schedule(arrival, rate, seed).enumerate() {
                    let index = index as u64;
                    if index >= max || limits.duration.is_some_and(|d| offset >= d) {
                        break;
                    }
                    let due = start + offset;
                    let spec = workload.request(&prompts, index);
                    tokio::time::sleep_until(due.into()).await;
                    if interrupt.load(Ordering::Relaxed) {
                        break;
                    }
                    let (permit, late) = match slots.clone().try_acquire_owned() {
                        Ok(permit) => (permit, false),
                        Err(_) => match slots.clone().acquire_owned().await {
                            Ok(permit) => (permit, true),
                            Err(_) => break,
                        },
                    };
                    let (tx, send_one) = (tx.clone(), send_one.clone());
                    tokio::spawn(async move {
                        let done = send_one(index, spec, Some(due), late).await;
                        drop(permit);
                        let _ = tx.send(done);
                    });
                }
            });
        }
    }
    drop(tx);

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
