//! The sampling thread: one host and GPU reading per interval while a point
//! runs, summarised when it is stopped.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::aggregation::Accumulator;
use super::energy::Rapl;
use super::host::HostReader;
use crate::gpu::GpuProbe;
use crate::schema::telemetry::TelemetrySummary;

/// How often to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Time between two readings, at least 1 ms (default 100 ms).
    pub interval: Duration,
}

impl Default for TelemetryConfig {
    /// 10 Hz: fine enough to see a decode phase of a second or two, cheap
    /// enough (a few `/proc` reads and NVML queries per sample) not to
    /// disturb it.
    fn default() -> Self {
        TelemetryConfig {
            interval: Duration::from_millis(100),
        }
    }
}

/// Why the sampler could not start or could not hand back its summary.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The configured interval is under 1 ms.
    #[error("telemetry interval must be at least 1 ms, got {0:?}")]
    Interval(Duration),
    /// The sampling thread could not be started.
    #[error("starting the telemetry thread: {0}")]
    Spawn(std::io::Error),
    /// The sampling thread panicked: its samples are lost.
    #[error("the telemetry thread panicked")]
    Panicked,
}

/// What the sampler thread hands back.
type ThreadOutput = (Accumulator, Option<Box<dyn GpuProbe>>);

/// A running background sampler. [`stop`](Sampler::stop) it to get the
/// summary; dropping it stops the thread too (the summary is lost).
pub struct Sampler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<ThreadOutput>>,
    started: Instant,
}

impl Sampler {
    /// Starts sampling on a new thread. `gpu` is read on that thread; get it
    /// back from [`finish`](Sampler::finish) to reuse it for the next point.
    pub fn start(
        config: TelemetryConfig,
        gpu: Option<Box<dyn GpuProbe>>,
    ) -> Result<Sampler, TelemetryError> {
        let interval = config.interval;
        if interval < Duration::from_millis(1) {
            return Err(TelemetryError::Interval(interval));
        }
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("inferbench-telemetry".into())
            .spawn(move || run(interval, gpu, stop_rx))
            .map_err(TelemetryError::Spawn)?;
        Ok(Sampler {
            stop: Some(stop_tx),
            thread: Some(thread),
            started,
        })
    }

    /// Stops sampling and summarises.
    pub fn stop(self) -> Result<TelemetrySummary, TelemetryError> {
        self.finish().map(|(summary, _)| summary)
    }

    /// Stops sampling; returns the summary and the GPU probe, if any.
    pub fn finish(
        mut self,
    ) -> Result<(TelemetrySummary, Option<Box<dyn GpuProbe>>), TelemetryError> {
        drop(self.stop.take()); // wakes the thread: its receiver disconnects
        let thread = self.thread.take().ok_or(TelemetryError::Panicked)?;
        let (acc, probe) = thread.join().map_err(|_| TelemetryError::Panicked)?;
        Ok((acc.summary(self.started.elapsed()), probe))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    interval: Duration,
    mut gpu: Option<Box<dyn GpuProbe>>,
    stop: mpsc::Receiver<()>,
) -> ThreadOutput {
    let devices = gpu.as_ref().map(|g| g.describe());
    let mut host = HostReader::new();
    let rapl = Rapl::find(Path::new(POWERCAP)).ok();
    let mut acc = Accumulator::new(interval, host.logical_cores, devices.as_deref())
        .with_host_energy(rapl.as_ref().map(Rapl::meters).unwrap_or_default());
    let start = Instant::now();
    // The energy counters at the window's start: the first sample comes an
    // interval later.
    if let Some(g) = gpu.as_mut() {
        acc.energy_baseline(&g.sample(), 0.0);
    }
    if let Some(rapl) = &rapl {
        rapl.read(acc.host_energy_mut(), 0.0);
    }
    let mut last = Instant::now();
    let mut next = last + interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            // Stopped (or the Sampler was dropped): a last sample for the
            // remainder if it is long enough to say something, and always
            // for a point shorter than half an interval, which otherwise has
            // none (seen on an H100: 45 ms points at 100 ms had no GPU
            // readings). GPU gauges are instantaneous, and CPU% then covers
            // the whole point.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if acc.samples == 0 || last.elapsed() >= interval / 2 {
                    sample(&mut acc, &mut host, gpu.as_mut(), rapl.as_ref(), start);
                }
                break;
            }
        }
        sample(&mut acc, &mut host, gpu.as_mut(), rapl.as_ref(), start);
        last = Instant::now();
        // Keep the cadence; if a sample overran, skip the ticks it missed.
        next += interval;
        while next <= last {
            next += interval;
        }
    }
    (acc, gpu)
}

/// Where the kernel lists RAPL's counters.
pub const POWERCAP: &str = "/sys/class/powercap";

fn sample(
    acc: &mut Accumulator,
    host: &mut HostReader,
    gpu: Option<&mut Box<dyn GpuProbe>>,
    rapl: Option<&Rapl>,
    start: Instant,
) {
    let h = host.read();
    let g = gpu.map(|g| g.sample()).unwrap_or_default();
    let at_s = start.elapsed().as_secs_f64();
    acc.add_at(&h, &g, at_s);
    if let Some(rapl) = rapl {
        rapl.read(acc.host_energy_mut(), at_s);
    }
}
