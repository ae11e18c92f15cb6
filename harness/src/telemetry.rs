//! Background telemetry: a thread that samples the host (CPU, memory), this
//! process (CPU, resident memory) and, through a [`GpuProbe`], the GPUs, at a
//! fixed interval while a measurement point runs, and summarises what it saw
//! as mean and max per metric.
//!
//! Definitions (each sample covers the time since the previous one):
//! - `host_cpu_percent`: busy time of all logical CPUs over their total time,
//!   0–100 (100 = every core busy). Linux only, from `/proc/stat`; absent
//!   elsewhere. sysinfo's own figure is not used because sysinfo ignores CPU
//!   refreshes closer than 200 ms apart, which at 10 Hz would repeat stale
//!   values.
//! - `process_cpu_percent`: this process's user + system CPU time over wall
//!   time, 0–100 × logical cores (as `top` shows it), from sysinfo's
//!   accumulated CPU time, counted in 10 ms ticks (so noisy over one 100 ms
//!   sample, capped at 100 × cores, unbiased in the mean). It includes the
//!   sampler thread itself (reading a few `/proc` files per sample).
//! - `host_memory_percent`: used memory (total − available) over total, 0–100.
//! - `process_rss_bytes`: this process's resident set size.
//! - GPU metrics: whatever the probe reports for each device index, at the
//!   moment of the sample (utilisation is the driver's own average over its
//!   sampling window).
//!
//! The CPU figures need a start: the thread takes a baseline reading when it
//! starts, then the first sample one interval later. When the sampler is
//! stopped more than half an interval after the last sample, a last sample
//! covers that remainder, so a point shorter than one interval still gets
//! one sample if it lasts at least half an interval.
//!
//! A metric some samples lack (a driver that reports power only sometimes)
//! is averaged over the samples that have it. A metric no sample had is
//! absent from the summary, never zero; with no GPU probe there is no `gpus`
//! field at all.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One reading of one GPU. Each field is `None` when the driver does not
/// report it (or reported an error for it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GpuSample {
    /// The device index the probe uses (NVML's index for the NVML probe).
    pub index: u32,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub utilization_percent: Option<f64>,
    pub power_watts: Option<f64>,
    pub temperature_c: Option<f64>,
    pub graphics_clock_mhz: Option<f64>,
    pub memory_clock_mhz: Option<f64>,
}

/// What a probe knows of one GPU that does not change during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_total_bytes: Option<u64>,
}

/// A source of GPU readings (NVML in `inferbench-ffi`, a fake in tests).
/// It runs on the sampler's thread, hence `Send`.
pub trait GpuProbe: Send {
    /// One reading of every GPU. Must not block for long: it is called once
    /// per interval.
    fn sample(&mut self) -> Vec<GpuSample>;
    /// The GPUs this probe reads.
    fn describe(&self) -> Vec<GpuDevice>;
}

/// How often to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryConfig {
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

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry interval must be at least 1 ms, got {0:?}")]
    Interval(Duration),
    #[error("starting the telemetry thread: {0}")]
    Spawn(std::io::Error),
    #[error("the telemetry thread panicked")]
    Panicked,
}

/// Mean and maximum of one metric over the samples that had it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanMax {
    pub mean: f64,
    pub max: f64,
}

/// One GPU's metrics over a sampling period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSummary {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Samples in which the probe reported this GPU.
    pub samples: u64,
    /// The largest total the driver reported (it does not change).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_used_bytes: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub utilization_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub power_watts: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub temperature_c: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub graphics_clock_mhz: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_clock_mhz: Option<MeanMax>,
}

/// Telemetry of one sampling period (one measurement point), for the result
/// file. Definitions: see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySummary {
    /// The configured interval between samples.
    pub interval_ms: f64,
    /// Wall time from start to stop.
    pub duration_ms: f64,
    pub samples: u64,
    /// Logical CPUs of the host: the scale of `process_cpu_percent`.
    pub logical_cores: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_cpu_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_memory_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_cpu_percent: Option<MeanMax>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_rss_bytes: Option<MeanMax>,
    /// Absent when there was no GPU probe; one entry per GPU index otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpus: Option<Vec<GpuSummary>>,
}

/// One host reading, as the sampler records it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostSample {
    pub host_cpu_percent: Option<f64>,
    pub host_memory_percent: Option<f64>,
    pub process_cpu_percent: Option<f64>,
    pub process_rss_bytes: Option<f64>,
}

/// Running mean and max of one metric. Non-finite values are ignored.
#[derive(Debug, Clone, Copy, Default)]
struct Gauge {
    sum: f64,
    max: f64,
    count: u64,
}

impl Gauge {
    fn add(&mut self, value: Option<f64>) {
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return;
        };
        self.max = if self.count == 0 { v } else { self.max.max(v) };
        self.sum += v;
        self.count += 1;
    }

    fn summary(&self) -> Option<MeanMax> {
        // Rounding in the sum can put the mean of equal values a hair above
        // them (0.1 three times: 0.10000000000000002); it cannot truly
        // exceed the max.
        (self.count > 0).then(|| MeanMax {
            mean: (self.sum / self.count as f64).min(self.max),
            max: self.max,
        })
    }
}

#[derive(Debug, Clone, Default)]
struct GpuAccumulator {
    name: Option<String>,
    samples: u64,
    memory_total_bytes: Option<u64>,
    memory_used_bytes: Gauge,
    utilization_percent: Gauge,
    power_watts: Gauge,
    temperature_c: Gauge,
    graphics_clock_mhz: Gauge,
    memory_clock_mhz: Gauge,
}

/// Mean and max per metric, per GPU index. The sampler thread fills one;
/// it is public so that aggregation can be tested without threads or clocks.
#[derive(Debug, Clone)]
pub struct Accumulator {
    interval: Duration,
    logical_cores: u32,
    samples: u64,
    host_cpu_percent: Gauge,
    host_memory_percent: Gauge,
    process_cpu_percent: Gauge,
    process_rss_bytes: Gauge,
    /// `None` when there is no GPU probe.
    gpus: Option<BTreeMap<u32, GpuAccumulator>>,
}

impl Accumulator {
    /// `gpus` is the probe's description, or `None` without a probe.
    pub fn new(interval: Duration, logical_cores: u32, gpus: Option<&[GpuDevice]>) -> Self {
        let gpus = gpus.map(|devices| {
            devices
                .iter()
                .map(|d| {
                    let acc = GpuAccumulator {
                        name: Some(d.name.clone()),
                        memory_total_bytes: d.memory_total_bytes,
                        ..GpuAccumulator::default()
                    };
                    (d.index, acc)
                })
                .collect()
        });
        Accumulator {
            interval,
            logical_cores,
            samples: 0,
            host_cpu_percent: Gauge::default(),
            host_memory_percent: Gauge::default(),
            process_cpu_percent: Gauge::default(),
            process_rss_bytes: Gauge::default(),
            gpus,
        }
    }

    /// Adds one sample: the host reading and the GPU readings taken with it
    /// (ignored when the accumulator was made without a probe).
    pub fn add(&mut self, host: &HostSample, gpus: &[GpuSample]) {
        self.samples += 1;
        self.host_cpu_percent.add(host.host_cpu_percent);
        self.host_memory_percent.add(host.host_memory_percent);
        self.process_cpu_percent.add(host.process_cpu_percent);
        self.process_rss_bytes.add(host.process_rss_bytes);
        let Some(accs) = self.gpus.as_mut() else {
            return;
        };
        for g in gpus {
            let acc = accs.entry(g.index).or_default();
            acc.samples += 1;
            acc.memory_total_bytes = match (acc.memory_total_bytes, g.memory_total_bytes) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            acc.memory_used_bytes
                .add(g.memory_used_bytes.map(|b| b as f64));
            acc.utilization_percent.add(g.utilization_percent);
            acc.power_watts.add(g.power_watts);
            acc.temperature_c.add(g.temperature_c);
            acc.graphics_clock_mhz.add(g.graphics_clock_mhz);
            acc.memory_clock_mhz.add(g.memory_clock_mhz);
        }
    }

    pub fn summary(&self, duration: Duration) -> TelemetrySummary {
        let gpus = self.gpus.as_ref().map(|accs| {
            accs.iter()
                .map(|(&index, a)| GpuSummary {
                    index,
                    name: a.name.clone(),
                    samples: a.samples,
                    memory_total_bytes: a.memory_total_bytes,
                    memory_used_bytes: a.memory_used_bytes.summary(),
                    utilization_percent: a.utilization_percent.summary(),
                    power_watts: a.power_watts.summary(),
                    temperature_c: a.temperature_c.summary(),
                    graphics_clock_mhz: a.graphics_clock_mhz.summary(),
                    memory_clock_mhz: a.memory_clock_mhz.summary(),
                })
                .collect()
        });
        TelemetrySummary {
            interval_ms: self.interval.as_secs_f64() * 1e3,
            duration_ms: duration.as_secs_f64() * 1e3,
            samples: self.samples,
            logical_cores: self.logical_cores,
            host_cpu_percent: self.host_cpu_percent.summary(),
            host_memory_percent: self.host_memory_percent.summary(),
            process_cpu_percent: self.process_cpu_percent.summary(),
            process_rss_bytes: self.process_rss_bytes.summary(),
            gpus,
        }
    }
}

/// Busy and total jiffies of all CPUs together, from the first line of
/// `/proc/stat` ("cpu  user nice system idle iowait irq softirq steal guest
/// guest_nice"). Idle is idle + iowait; guest time is already counted in
/// user and nice, so it is not added again.
fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if values.len() < 4 {
        return None;
    }
    let total: u64 = values.iter().sum();
    let idle = values[3] + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Host CPU % between two `/proc/stat` readings.
fn cpu_percent_between(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let busy = after.0.checked_sub(before.0)?;
    let total = after.1.checked_sub(before.1)?;
    (total > 0).then(|| (busy as f64 / total as f64 * 100.0).clamp(0.0, 100.0))
}

fn read_proc_stat() -> Option<(u64, u64)> {
    if cfg!(target_os = "linux") {
        parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
    } else {
        None
    }
}

/// Reads the host and this process; remembers the previous CPU readings so
/// that each sample's CPU figures cover the time since the last one.
struct HostReader {
    system: System,
    logical_cores: u32,
    pid: Option<Pid>,
    last_stat: Option<(u64, u64)>,
    last_process_cpu: Option<(u64, Instant)>,
}

impl HostReader {
    fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
        let logical_cores = (system.cpus().len() as u32).max(1);
        let mut reader = HostReader {
            system,
            logical_cores,
            pid: sysinfo::get_current_pid().ok(),
            last_stat: None,
            last_process_cpu: None,
        };
        reader.read(); // the baseline
        reader
    }

    fn read(&mut self) -> HostSample {
        let stat = read_proc_stat();
        let host_cpu_percent = match (self.last_stat, stat) {
            (Some(before), Some(after)) => cpu_percent_between(before, after),
            _ => None,
        };
        self.last_stat = stat;

        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let total = self.system.total_memory();
        let host_memory_percent =
            (total > 0).then(|| self.system.used_memory() as f64 / total as f64 * 100.0);

        let (mut process_cpu_percent, mut process_rss_bytes) = (None, None);
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            let now = Instant::now();
            if let Some(process) = self.system.process(pid) {
                process_rss_bytes = Some(process.memory() as f64);
                let cpu_ms = process.accumulated_cpu_time();
                if let Some((last_ms, last_at)) = self.last_process_cpu {
                    let wall_ms = now.duration_since(last_at).as_secs_f64() * 1e3;
                    if wall_ms > 0.0 {
                        // CPU time is counted in scheduler ticks (10 ms),
                        // so a short window can overshoot by a tick: cap at
                        // every core busy, as sysinfo does.
                        let percent = cpu_ms.saturating_sub(last_ms) as f64 / wall_ms * 100.0;
                        let cap = 100.0 * f64::from(self.logical_cores);
                        process_cpu_percent = Some(percent.min(cap));
                    }
                }
                self.last_process_cpu = Some((cpu_ms, now));
            }
        }
        HostSample {
            host_cpu_percent,
            host_memory_percent,
            process_cpu_percent,
            process_rss_bytes,
        }
    }
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
    let mut acc = Accumulator::new(interval, host.logical_cores, devices.as_deref());
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
                    sample(&mut acc, &mut host, gpu.as_mut());
                }
                break;
            }
        }
        sample(&mut acc, &mut host, gpu.as_mut());
        last = Instant::now();
        // Keep the cadence; if a sample overran, skip the ticks it missed.
        next += interval;
        while next <= last {
            next += interval;
        }
    }
    (acc, gpu)
}

fn sample(acc: &mut Accumulator, host: &mut HostReader, gpu: Option<&mut Box<dyn GpuProbe>>) {
    let h = host.read();
    let g = gpu.map(|g| g.sample()).unwrap_or_default();
    acc.add(&h, &g);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    fn busy(for_: Duration) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < for_ {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    #[test]
    fn host_only_sampling_reports_plausible_host_metrics_and_no_gpus() {
        let sampler = Sampler::start(TelemetryConfig::default(), None).unwrap();
        busy(Duration::from_millis(300));
        let s = sampler.stop().unwrap();
        assert!(s.samples >= 1, "{s:?}");
        assert!(s.logical_cores >= 1);
        let cores = f64::from(s.logical_cores);
        assert_eq!(s.interval_ms, 100.0);
        assert!(s.gpus.is_none());
        let mem = s.host_memory_percent.expect("host memory");
        assert!(
            mem.mean > 0.0 && mem.max <= 100.0 && mem.mean <= mem.max,
            "{mem:?}"
        );
        let pcpu = s.process_cpu_percent.expect("process cpu");
        assert!(pcpu.mean >= 0.0 && pcpu.max <= 100.0 * cores, "{pcpu:?}");
        // This thread was busy the whole time: the process used some CPU.
        assert!(pcpu.max > 0.0, "{pcpu:?}");
        let rss = s.process_rss_bytes.expect("rss");
        assert!(rss.mean > 0.0 && rss.mean <= rss.max, "{rss:?}");
        if cfg!(target_os = "linux") {
            let hcpu = s.host_cpu_percent.expect("host cpu on Linux");
            assert!((0.0..=100.0).contains(&hcpu.mean), "{hcpu:?}");
            assert!((0.0..=100.0).contains(&hcpu.max), "{hcpu:?}");
        }
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("gpus").is_none(), "{json}");
        let back: TelemetrySummary = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn zero_interval_is_refused() {
        let err = Sampler::start(
            TelemetryConfig {
                interval: Duration::ZERO,
            },
            None,
        )
        .err()
        .unwrap();
        assert!(matches!(err, TelemetryError::Interval(_)), "{err}");
    }

    #[test]
    fn gpu_aggregation_is_exact_per_index() {
        let devices = [
            GpuDevice {
                index: 0,
                name: "A".into(),
                uuid: None,
                memory_total_bytes: Some(80),
            },
            GpuDevice {
                index: 1,
                name: "B".into(),
                uuid: None,
                memory_total_bytes: None,
            },
        ];
        let mut acc = Accumulator::new(Duration::from_millis(50), 4, Some(&devices));
        let gpu0 = |util: f64, mem: u64, power: Option<f64>| GpuSample {
            index: 0,
            memory_used_bytes: Some(mem),
            memory_total_bytes: Some(80),
            utilization_percent: Some(util),
            power_watts: power,
            ..GpuSample::default()
        };
        let gpu1 = |temp: f64| GpuSample {
            index: 1,
            temperature_c: Some(temp),
            graphics_clock_mhz: Some(1000.0),
            ..GpuSample::default()
        };
        let host = HostSample {
            host_cpu_percent: Some(10.0),
            ..HostSample::default()
        };
        acc.add(&host, &[gpu0(10.0, 8, Some(100.0)), gpu1(40.0)]);
        acc.add(&host, &[gpu0(30.0, 16, None), gpu1(60.0)]);
        acc.add(&host, &[gpu0(80.0, 24, Some(300.0))]); // GPU 1 missing
        let s = acc.summary(Duration::from_millis(150));
        assert_eq!(s.samples, 3);
        assert_eq!(
            s.host_cpu_percent,
            Some(MeanMax {
                mean: 10.0,
                max: 10.0
            })
        );
        assert_eq!(s.host_memory_percent, None);
        let gpus = s.gpus.unwrap();
        assert_eq!(gpus.len(), 2);
        let (g0, g1) = (&gpus[0], &gpus[1]);
        assert_eq!(
            (g0.index, g0.name.as_deref(), g0.samples),
            (0, Some("A"), 3)
        );
        assert_eq!(
            g0.utilization_percent,
            Some(MeanMax {
                mean: 40.0,
                max: 80.0
            })
        );
        assert_eq!(
            g0.memory_used_bytes,
            Some(MeanMax {
                mean: 16.0,
                max: 24.0
            })
        );
        assert_eq!(g0.memory_total_bytes, Some(80));
        // Power was reported twice: averaged over those two, not three.
        assert_eq!(
            g0.power_watts,
            Some(MeanMax {
                mean: 200.0,
                max: 300.0
            })
        );
        assert_eq!(g0.temperature_c, None);
        assert_eq!(
            (g1.index, g1.name.as_deref(), g1.samples),
            (1, Some("B"), 2)
        );
        assert_eq!(
            g1.temperature_c,
            Some(MeanMax {
                mean: 50.0,
                max: 60.0
            })
        );
        assert_eq!(
            g1.graphics_clock_mhz,
            Some(MeanMax {
                mean: 1000.0,
                max: 1000.0
            })
        );
        assert_eq!(g1.utilization_percent, None);
        assert_eq!(g1.memory_total_bytes, None);
        // Absent, not zero, in the JSON.
        let json = serde_json::to_value(g1).unwrap();
        assert!(json.get("utilization_percent").is_none(), "{json}");
        assert!(json.get("power_watts").is_none(), "{json}");
    }

    #[test]
    fn without_probe_gpu_readings_are_ignored() {
        let mut acc = Accumulator::new(Duration::from_millis(100), 2, None);
        acc.add(
            &HostSample::default(),
            &[GpuSample {
                index: 0,
                utilization_percent: Some(50.0),
                ..GpuSample::default()
            }],
        );
        let s = acc.summary(Duration::ZERO);
        assert_eq!(s.samples, 1);
        assert!(s.gpus.is_none());
        assert!(s.host_cpu_percent.is_none());
    }

    #[test]
    fn gauge_skips_non_finite_values_and_keeps_mean_within_max() {
        let mut g = Gauge::default();
        g.add(Some(f64::NAN));
        assert_eq!(g.summary(), None);
        g.add(Some(-3.0));
        g.add(Some(f64::INFINITY));
        g.add(Some(-1.0));
        assert_eq!(
            g.summary(),
            Some(MeanMax {
                mean: -2.0,
                max: -1.0
            })
        );
        // Regression: the mean of equal values came out above them.
        let mut g = Gauge::default();
        for _ in 0..3 {
            g.add(Some(0.1));
        }
        assert_eq!(
            g.summary(),
            Some(MeanMax {
                mean: 0.1,
                max: 0.1
            })
        );
    }

    /// Reports value k on its k-th call, for GPUs 0 and 1 (GPU 1 doubled).
    struct CountingProbe {
        calls: Arc<AtomicU64>,
        dropped: Arc<AtomicBool>,
    }

    impl GpuProbe for CountingProbe {
        fn sample(&mut self) -> Vec<GpuSample> {
            let k = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            (0..2u32)
                .map(|index| GpuSample {
                    index,
                    utilization_percent: Some(k as f64 * f64::from(index + 1)),
                    ..GpuSample::default()
                })
                .collect()
        }

        fn describe(&self) -> Vec<GpuDevice> {
            (0..2)
                .map(|index| GpuDevice {
                    index,
                    name: format!("fake {index}"),
                    uuid: None,
                    memory_total_bytes: None,
                })
                .collect()
        }
    }

    impl Drop for CountingProbe {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn sampler_thread_aggregates_a_fake_probe_per_index() {
        let calls = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let probe = CountingProbe {
            calls: calls.clone(),
            dropped: dropped.clone(),
        };
        let config = TelemetryConfig {
            interval: Duration::from_millis(20),
        };
        let sampler = Sampler::start(config, Some(Box::new(probe))).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let (s, probe) = sampler.finish().unwrap();
        let n = calls.load(Ordering::SeqCst);
        assert!(n >= 1);
        assert_eq!(s.samples, n);
        let gpus = s.gpus.as_ref().unwrap();
        assert_eq!(gpus.len(), 2);
        for (i, g) in gpus.iter().enumerate() {
            let scale = (i + 1) as f64;
            assert_eq!(g.index, i as u32);
            assert_eq!(g.name.as_deref(), Some(format!("fake {i}").as_str()));
            assert_eq!(g.samples, n);
            // Values k·scale for k = 1..=n: mean (n+1)/2·scale, max n·scale.
            let u = g.utilization_percent.unwrap();
            assert_eq!(u.mean, (n + 1) as f64 / 2.0 * scale);
            assert_eq!(u.max, n as f64 * scale);
        }
        // The probe comes back for the next point, and is dropped only then.
        assert!(!dropped.load(Ordering::SeqCst));
        drop(probe);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn a_point_shorter_than_half_an_interval_still_gets_one_sample() {
        let calls = Arc::new(AtomicU64::new(0));
        let probe = CountingProbe {
            calls: calls.clone(),
            dropped: Arc::new(AtomicBool::new(false)),
        };
        let config = TelemetryConfig {
            interval: Duration::from_secs(10),
        };
        let sampler = Sampler::start(config, Some(Box::new(probe))).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let (s, _probe) = sampler.finish().unwrap();
        assert_eq!(s.samples, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let gpus = s.gpus.unwrap();
        assert!(gpus
            .iter()
            .all(|g| g.samples == 1 && g.utilization_percent.is_some()));
        assert!(s.process_rss_bytes.is_some());
    }

    #[test]
    fn dropping_a_sampler_stops_its_thread() {
        let calls = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let probe = CountingProbe {
            calls,
            dropped: dropped.clone(),
        };
        let sampler = Sampler::start(TelemetryConfig::default(), Some(Box::new(probe))).unwrap();
        drop(sampler);
        // The thread was joined, so it has returned and dropped the probe.
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn proc_stat_parsing_and_cpu_percent() {
        let text = "cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 1 2 3 4\n";
        // total = 980, idle = 800 + 20; guest (7) is not counted twice.
        assert_eq!(parse_proc_stat(text), Some((160, 980)));
        assert_eq!(parse_proc_stat("intr 1 2 3\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 2\n"), None);
        assert_eq!(cpu_percent_between((160, 980), (185, 1080)), Some(25.0));
        assert_eq!(cpu_percent_between((160, 980), (160, 980)), None);
        assert_eq!(cpu_percent_between((160, 980), (150, 1080)), None);
    }
}
