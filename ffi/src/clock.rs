//! The kernel's view of its clock's synchronization (`adjtimex`, read
//! only): shards of one load start on their own hosts' wall clocks, and how
//! far those clocks may be apart bounds how well the starts line up.

use inferbench_core::schema::shard::ClockSync;

/// `adjtimex`'s return when the clock is not synchronized.
#[cfg(target_os = "linux")]
const TIME_ERROR: libc::c_int = 5;

/// The clock's state now; `None` where the kernel does not say (not Linux,
/// or a call refused).
#[cfg(target_os = "linux")]
pub fn sync_state() -> Option<ClockSync> {
    // SAFETY: `timex` is plain data, zeroed is a valid value, and with
    // `modes` 0 the call only reads the kernel's state into it.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable `timex` for the call's duration.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return None;
    }
    Some(ClockSync {
        synchronized: state != TIME_ERROR && t.status & libc::STA_UNSYNC == 0,
        max_error_ms: t.maxerror as f64 / 1e3,
        est_error_ms: t.esterror as f64 / 1e3,
    })
}

/// Elsewhere the kernel is not asked.
#[cfg(not(target_os = "linux"))]
pub fn sync_state() -> Option<ClockSync> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_reports_an_error_bound() {
        let state = sync_state().expect("Linux answers adjtimex");
        assert!(state.max_error_ms >= 0.0 && state.est_error_ms >= 0.0);
        // An unsynchronized clock's maximum error is the kernel's ceiling
        // (16 s), never below the estimate.
        assert!(state.max_error_ms >= state.est_error_ms, "{state:?}");
    }
}
