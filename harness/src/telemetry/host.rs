//! Host and process readings: `/proc/stat` for the host's CPU, sysinfo for
//! memory and this process.

use std::time::Instant;

use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One host reading, as the sampler records it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostSample {
    /// All CPUs' busy share since the last reading, 0–100 (from `/proc/stat`;
    /// `None` on the first reading or off Linux).
    pub host_cpu_percent: Option<f64>,
    /// Host memory used over total, 0–100.
    pub host_memory_percent: Option<f64>,
    /// This process's CPU time over wall time since the last reading, in
    /// percent of one core (up to 100 × logical cores).
    pub process_cpu_percent: Option<f64>,
    /// This process's resident memory, bytes.
    pub process_rss_bytes: Option<f64>,
}

/// Busy and total jiffies of all CPUs together, from the first line of
/// `/proc/stat` ("cpu  user nice system idle iowait irq softirq steal guest
/// guest_nice"). Idle is idle + iowait; guest time is already counted in
/// user and nice, so it is not added again.
pub(super) fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
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
pub(super) fn cpu_percent_between(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
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
pub(super) struct HostReader {
    system: System,
    pub(super) logical_cores: u32,
    pid: Option<Pid>,
    last_stat: Option<(u64, u64)>,
    last_process_cpu: Option<(u64, Instant)>,
}

impl HostReader {
    pub(super) fn new() -> Self {
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

    pub(super) fn read(&mut self) -> HostSample {
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
