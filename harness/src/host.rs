//! Facts about the machine a result was measured on.

use sysinfo::System;

use crate::schema::HostInfo;

/// Reads the host's CPU, core counts, memory and OS.
pub fn host_info() -> HostInfo {
    let mut sys = System::new();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    sys.refresh_memory();
    let cpu_model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown".into());
    HostInfo {
        cpu_model,
        logical_cores: sys.cpus().len() as u32,
        physical_cores: physical_cores(),
        memory_bytes: sys.total_memory(),
        os: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.to_string()),
        memory_bandwidth: None,
        compute_peak: None,
        device_memory_bandwidth: None,
        kernel: System::kernel_version(),
    }
}

/// Physical cores, the right default thread count for llama.cpp: its
/// kernels gain nothing from SMT siblings and lose to their contention.
pub fn physical_cores() -> Option<u32> {
    System::physical_core_count().map(|n| n as u32)
}

/// Resets the kernel's record of this process's peak resident memory
/// (VmHWM), so that the next [`peak_rss_bytes`] reads the peak from now on.
/// False where the kernel does not allow it (then the peak is the one
/// since the process started).
pub fn reset_peak_rss() -> bool {
    // Linux 4.0+: writing 5 to clear_refs resets the peak RSS.
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
