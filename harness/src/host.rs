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
