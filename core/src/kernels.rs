//! What the device itself executed during one engine call, from its own
//! activity records (on NVIDIA GPUs: CUPTI's kernel, copy and memset
//! records, see `inferbench_ffi::cupti`), as opposed to the host's window
//! around the call, whichever clock reads that window.
//!
//! The window is the engine call: from just before the call into the
//! engine until it returned synchronized, read on the same clock as the
//! records. Within it:
//!
//! ```text
//! call ─┬─ first-kernel delay ─┬─ kernel ─ gap ─ kernel ─ … ─ kernel ─┬─ tail ─┬ return
//!       │ (graph building,     │   busy = union of the kernel        │ (sync, │
//!       │  launches)           │   intervals; gaps = the rest of     │ logits │
//!       │                      │   the span between them)            │ copy)  │
//! ```
//!
//! so `window = first_kernel_delay + busy + idle_gaps + tail`, exactly.

use std::time::Duration;

/// What one activity record was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    /// A kernel execution.
    Kernel,
    /// A memory copy (host to device, device to host or within the device).
    Copy,
    /// A memset (device memory filled with a value).
    Memset,
}

/// One record: an interval of device work, in nanoseconds on the records' clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceWork {
    /// What the device did.
    pub kind: WorkKind,
    /// When the work started, in ns on the records' clock.
    pub start_ns: u64,
    /// When the work ended, in ns on the records' clock.
    pub end_ns: u64,
}

/// The device's account of one engine call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelActivity {
    /// The call's window on the records' clock.
    pub window: Duration,
    /// Kernels that started inside the window.
    pub kernels: u32,
    /// The union of the kernel intervals: time at least one kernel ran.
    pub busy: Duration,
    /// Between the first kernel's start and the last kernel's end, the time
    /// no kernel ran.
    pub idle_gaps: Duration,
    /// From the call to the first kernel's start; `None` without kernels.
    pub first_kernel_delay: Option<Duration>,
    /// From the last kernel's end to the call's return; `None` without kernels.
    pub tail: Option<Duration>,
    /// Copies and memsets in the window, and the union of their intervals
    /// (they may overlap kernels).
    pub copies: u32,
    /// The union of the copy and memset intervals, clipped to the window.
    pub copy_busy: Duration,
}

/// Union length of intervals, each clipped to `[lo, hi]`.
fn union_ns(intervals: &[(u64, u64)], lo: u64, hi: u64) -> u64 {
    crate::intervals::union_length(
        intervals
            .iter()
            .map(|&(start, end)| (start.clamp(lo, hi), end.clamp(lo, hi))),
    )
}

impl KernelActivity {
    /// The account of the call from `window_start_ns` to `window_end_ns`,
    /// given the records that started inside it (others are ignored; a
    /// record ending after the window, which a synchronized call should
    /// not leave, is clipped to it).
    pub fn from_records(window_start_ns: u64, window_end_ns: u64, records: &[DeviceWork]) -> Self {
        let (lo, hi) = (window_start_ns, window_end_ns.max(window_start_ns));
        let inside = |w: &&DeviceWork| (lo..=hi).contains(&w.start_ns);
        let kernels: Vec<(u64, u64)> = records
            .iter()
            .filter(inside)
            .filter(|w| w.kind == WorkKind::Kernel)
            .map(|w| (w.start_ns, w.end_ns.min(hi)))
            .collect();
        let copies: Vec<(u64, u64)> = records
            .iter()
            .filter(inside)
            .filter(|w| w.kind != WorkKind::Kernel)
            .map(|w| (w.start_ns, w.end_ns.min(hi)))
            .collect();
        let busy_ns = union_ns(&kernels, lo, hi);
        let first = kernels.iter().map(|k| k.0).min();
        let last = kernels.iter().map(|k| k.1.max(k.0)).max();
        let ns = Duration::from_nanos;
        let (idle_gaps, first_kernel_delay, tail) = match (first, last) {
            (Some(first), Some(last)) => (
                ns((last - first).saturating_sub(busy_ns)),
                Some(ns(first - lo)),
                Some(ns(hi - last)),
            ),
            _ => (Duration::ZERO, None, None),
        };
        KernelActivity {
            window: ns(hi - lo),
            kernels: u32::try_from(kernels.len()).unwrap_or(u32::MAX),
            busy: ns(busy_ns),
            idle_gaps,
            first_kernel_delay,
            tail,
            copies: u32::try_from(copies.len()).unwrap_or(u32::MAX),
            copy_busy: ns(union_ns(&copies, lo, hi)),
        }
    }

    /// `busy / window`: the fraction of the call the device computed.
    pub fn busy_fraction(&self) -> Option<f64> {
        (!self.window.is_zero()).then(|| self.busy.as_secs_f64() / self.window.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(start_ns: u64, end_ns: u64) -> DeviceWork {
        DeviceWork {
            kind: WorkKind::Kernel,
            start_ns,
            end_ns,
        }
    }

    #[test]
    fn busy_is_the_union_and_the_window_splits_exactly() {
        // Window 100..1100. Kernels: 150..300, 250..400 (overlap), 420..500,
        // 430..450 (nested), 900..1000. Union: 250 + 80 + 100 = 430.
        let records = [
            kernel(900, 1000),
            kernel(150, 300),
            kernel(420, 500),
            kernel(250, 400),
            kernel(430, 450),
            DeviceWork {
                kind: WorkKind::Copy,
                start_ns: 1000,
                end_ns: 1050,
            },
        ];
        let a = KernelActivity::from_records(100, 1100, &records);
        let ns = Duration::from_nanos;
        assert_eq!(a.window, ns(1000));
        assert_eq!(a.kernels, 5);
        assert_eq!(a.busy, ns(430));
        assert_eq!(a.first_kernel_delay, Some(ns(50)));
        assert_eq!(a.tail, Some(ns(100)));
        // Span 150..1000 = 850, minus 430 busy.
        assert_eq!(a.idle_gaps, ns(420));
        assert_eq!(
            a.first_kernel_delay.unwrap() + a.busy + a.idle_gaps + a.tail.unwrap(),
            a.window
        );
        assert_eq!((a.copies, a.copy_busy), (1, ns(50)));
        assert!((a.busy_fraction().unwrap() - 0.43).abs() < 1e-12);
    }

    #[test]
    fn records_outside_the_window_belong_to_other_calls() {
        let records = [kernel(10, 90), kernel(200, 300), kernel(1200, 1300)];
        let a = KernelActivity::from_records(100, 1100, &records);
        assert_eq!(a.kernels, 1);
        assert_eq!(a.busy, Duration::from_nanos(100));
        // A kernel still running at the return is clipped to the window.
        let a = KernelActivity::from_records(100, 250, &[kernel(200, 300)]);
        assert_eq!(a.busy, Duration::from_nanos(50));
        assert_eq!(a.tail, Some(Duration::ZERO));
    }

    #[test]
    fn a_call_without_kernels_has_no_delay_and_no_busy_time() {
        let a = KernelActivity::from_records(100, 600, &[]);
        assert_eq!(a.kernels, 0);
        assert_eq!(a.busy, Duration::ZERO);
        assert_eq!((a.first_kernel_delay, a.tail), (None, None));
        assert_eq!(a.busy_fraction(), Some(0.0));
        // A reversed window is empty, not a panic.
        let a = KernelActivity::from_records(600, 100, &[kernel(600, 700)]);
        assert_eq!(a.window, Duration::ZERO);
        assert_eq!(a.busy_fraction(), None);
    }
}
