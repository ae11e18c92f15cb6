//! Timing engine steps on the GPU's own clock with CUDA events, through
//! `cudarc`'s driver API. libcuda is loaded at run time (cudarc's
//! `dynamic-loading`), so the binary builds and runs without the CUDA
//! toolkit or a driver; [`DeviceTimer::probe`] then says why there is no
//! device clock instead of failing.
//!
//! # What the device time is, and what makes it correct
//!
//! llama.cpp's CUDA backend runs its kernels on its own streams, created
//! non-blocking, in the device's primary context (the one the CUDA runtime
//! uses, and the one [`DeviceTimer`] retains). Events here are recorded on
//! the legacy default stream, which does *not* order with non-blocking
//! streams. So the events cannot bracket llama.cpp's kernels by stream
//! order; [`DeviceTimer::time`] brackets them by host order instead:
//!
//! 1. the context is synchronized (the device is idle), then the start
//!    event is recorded *and waited for*, so its timestamp is taken before
//!    any of `f`'s work can begin;
//! 2. `f` runs. **It must end with a full synchronize of its work**
//!    (`llama_decode` then `llama_synchronize`, which waits on every stream
//!    of every backend): that is what puts all of its GPU work before the
//!    end event;
//! 3. the end event is recorded and waited for.
//!
//! The device time is therefore the GPU clock's span of the whole window
//! `f` ran in: kernels, the gaps between launches, and llama.cpp's host-side
//! graph building before its first launch. It is not kernel-only time. It
//! should agree with the host clock (the harness's `Instant` around the same
//! call) to within the few microseconds the event round trips add; a ratio
//! far from 1 means one of the clocks cannot be trusted. Resolution of
//! `cuEventElapsedTime`: about half a microsecond.
//!
//! # Which CUDA version cudarc is built for
//!
//! cudarc's `cuda-12080` feature: the driver-API symbols it binds (cuInit,
//! cuDevicePrimaryCtxRetain, cuEventCreate/Record/Synchronize/ElapsedTime,
//! cuDriverGetVersion, cuDeviceGetName, ...) are exported by every driver
//! from CUDA 12.x on, including 13.x drivers, which keep the old symbols for
//! binary compatibility. A `cuda-13xxx` feature would bind
//! `cuEventElapsedTime_v2`, absent from drivers before 12.8. A missing
//! symbol makes cudarc panic when first called; [`DeviceTimer::probe`] calls
//! every function the timer uses once, under `catch_unwind`, so such a
//! driver is reported as unavailable rather than crashing a run later.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use cudarc::driver::{result, sys, CudaContext, CudaEvent, CudaStream, DriverError};

/// Why timing one call with CUDA events failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceTimerError {
    /// A CUDA driver call failed while synchronizing, recording or reading the events.
    #[error("CUDA event timing on {device}: {op}: {cause}")]
    Driver {
        /// The device, e.g. "CUDA0 (NVIDIA H100 80GB HBM3)".
        device: String,
        /// What was being done, e.g. "recording the end event".
        op: &'static str,
        /// The driver's error.
        cause: DriverError,
    },
    /// `cuEventElapsedTime` returned a negative or non-finite time.
    #[error("CUDA event timing on {device}: elapsed time {ms} ms is not a duration")]
    BadElapsed {
        /// The device, e.g. "CUDA0 (NVIDIA H100 80GB HBM3)".
        device: String,
        /// The elapsed time the driver reported, in ms.
        ms: f32,
    },
}

/// CUDA events that time work on one device. Create with [`DeviceTimer::probe`].
pub struct DeviceTimer {
    ctx: Arc<CudaContext>,
    /// The legacy default stream of the primary context.
    stream: Arc<CudaStream>,
    start: CudaEvent,
    end: CudaEvent,
    device: String,
}

/// Whether GPU timing is possible here.
pub enum DeviceTimerStatus {
    /// A timer whose one empty measurement succeeded.
    Available(DeviceTimer),
    /// Why not, for the result file (e.g. "libcuda not found: host timing only").
    Unavailable {
        /// The reason, ending in ": host timing only".
        reason: String,
    },
}

impl std::fmt::Debug for DeviceTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTimer")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DeviceTimerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceTimerStatus::Available(t) => f.debug_tuple("Available").field(t).finish(),
            DeviceTimerStatus::Unavailable { reason } => f
                .debug_struct("Unavailable")
                .field("reason", reason)
                .finish(),
        }
    }
}

/// Event flags for timing: `CU_EVENT_DEFAULT` records timestamps. cudarc's
/// `new_event(None)` would give `CU_EVENT_DISABLE_TIMING`, whose events make
/// `cuEventElapsedTime` fail. Not `BLOCKING_SYNC`: spinning on the event
/// returns sooner than sleeping, and the wait is outside the host clock's
/// window anyway.
fn timing_event_flags() -> sys::CUevent_flags {
    sys::CUevent_flags::CU_EVENT_DEFAULT
}

/// cuEventElapsedTime's milliseconds as a `Duration`.
fn elapsed_to_duration(ms: f32) -> Option<Duration> {
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(f64::from(ms) / 1e3))
}

/// True when libcuda can be loaded. cudarc panics on first use without it.
pub(crate) fn libcuda_present() -> bool {
    // SAFETY: `is_culib_present` dlopens libcuda (running its library
    // initialisers, which is what makes loading a library unsafe) and closes
    // it again. libcuda is NVIDIA's driver library, meant to be loaded into
    // any process; a library of that name that misbehaves on load is outside
    // what any check here could guard against.
    unsafe { sys::is_culib_present() }
}

/// Runs `f`, turning a panic (cudarc panics when the driver lacks a symbol
/// it binds) into an error message.
pub(crate) fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(format!("{what}: the CUDA driver is unusable ({msg})"))
        }
    }
}

impl DeviceTimer {
    /// A timer on CUDA device 0, the one llama.cpp uses first.
    pub fn probe() -> DeviceTimerStatus {
        Self::probe_device(0)
    }

    /// A timer on CUDA device `ordinal`, after checking that timing works
    /// there (one empty measurement). Never panics.
    pub fn probe_device(ordinal: usize) -> DeviceTimerStatus {
        if !libcuda_present() {
            return DeviceTimerStatus::Unavailable {
                reason: "libcuda not found: host timing only".into(),
            };
        }
        match no_panic("probing CUDA event timing", || Self::open(ordinal)) {
            Ok(timer) => DeviceTimerStatus::Available(timer),
            Err(reason) => DeviceTimerStatus::Unavailable {
                reason: format!("{reason}: host timing only"),
            },
        }
    }

    fn open(ordinal: usize) -> Result<DeviceTimer, String> {
        let ctx =
            CudaContext::new(ordinal).map_err(|e| format!("opening CUDA device {ordinal}: {e}"))?;
        let device = match ctx.name() {
            Ok(name) => format!("CUDA{ordinal} ({name})"),
            Err(_) => format!("CUDA{ordinal}"),
        };
        let event = |which: &str| {
            ctx.new_event(Some(timing_event_flags()))
                .map_err(|e| format!("creating the {which} event on {device}: {e}"))
        };
        let (start, end) = (event("start")?, event("end")?);
        let mut timer = DeviceTimer {
            stream: ctx.default_stream(),
            ctx,
            start,
            end,
            device,
        };
        // Every driver function `time` uses, once: a driver that lacks one
        // fails here, under catch_unwind, not in the middle of a run.
        let ((), elapsed) = timer.time(|| ());
        elapsed.map_err(|e| e.to_string())?;
        Ok(timer)
    }

    /// The device, e.g. "CUDA0 (NVIDIA H100 80GB HBM3)".
    pub fn device(&self) -> &str {
        &self.device
    }

    fn driver(&self, op: &'static str) -> impl FnOnce(DriverError) -> DeviceTimerError + '_ {
        move |source| DeviceTimerError::Driver {
            device: self.device.clone(),
            op,
            cause: source,
        }
    }

    /// Runs `f` between two CUDA events and returns its result with the GPU
    /// clock's time from the first event to the second.
    ///
    /// `f` must finish all the GPU work it starts before returning (for
    /// llama.cpp: `llama_decode` then `llama_synchronize`): the end event is
    /// on another stream and only host order puts it after that work. See the
    /// module documentation. `f`'s result is returned even when timing fails.
    pub fn time<R>(&mut self, f: impl FnOnce() -> R) -> (R, Result<Duration, DeviceTimerError>) {
        // Device idle, then the start timestamp taken, before f starts.
        let before = self
            .ctx
            .synchronize()
            .map_err(self.driver("synchronizing the context before the start event"))
            .and_then(|()| {
                self.start
                    .record(&self.stream)
                    .map_err(self.driver("recording the start event"))
            })
            .and_then(|()| {
                self.start
                    .synchronize()
                    .map_err(self.driver("waiting for the start event"))
            });
        let value = f();
        // Correct only because f ended with a full synchronize: see above.
        let elapsed = before.and_then(|()| self.stop());
        (value, elapsed)
    }

    fn stop(&self) -> Result<Duration, DeviceTimerError> {
        self.end
            .record(&self.stream)
            .map_err(self.driver("recording the end event"))?;
        self.end
            .synchronize()
            .map_err(self.driver("waiting for the end event"))?;
        let ms = self
            .start
            .elapsed_ms(&self.end)
            .map_err(self.driver("reading the elapsed time"))?;
        elapsed_to_duration(ms).ok_or_else(|| DeviceTimerError::BadElapsed {
            device: self.device.clone(),
            ms,
        })
    }
}

/// The CUDA driver and its devices, for provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaDriverInfo {
    /// The CUDA version the driver supports, e.g. "13.0".
    pub driver_version: String,
    /// Device names by ordinal.
    pub device_names: Vec<String>,
}

/// "13.0" from cuDriverGetVersion's 13000.
fn format_driver_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// The CUDA driver's version and devices, or `None` without a usable driver
/// (no libcuda, no device, or a driver too old for cudarc). Never panics.
/// Creates no context, so it takes no GPU memory.
pub fn cuda_driver_info() -> Option<CudaDriverInfo> {
    if !libcuda_present() {
        return None;
    }
    no_panic("reading the CUDA driver", || {
        result::init().map_err(|e| e.to_string())?;
        let mut version = 0i32;
        // SAFETY: the driver is initialised (cuInit succeeded above) and
        // `version` is a valid, writable int for the call to fill in.
        unsafe { sys::cuDriverGetVersion(&mut version) }
            .result()
            .map_err(|e| e.to_string())?;
        let count = result::device::get_count().map_err(|e| e.to_string())?;
        let device_names = (0..count)
            .map(|i| {
                result::device::get(i)
                    .and_then(result::device::get_name)
                    .unwrap_or_else(|e| format!("CUDA{i} (name unavailable: {e})"))
            })
            .collect();
        Ok(CudaDriverInfo {
            driver_version: format_driver_version(version),
            device_names,
        })
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_created_with_timing_enabled() {
        let flags = timing_event_flags() as u32;
        assert_eq!(
            flags & sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32,
            0
        );
    }

    #[test]
    fn elapsed_milliseconds_become_durations() {
        assert_eq!(elapsed_to_duration(1.5), Some(Duration::from_micros(1500)));
        assert_eq!(elapsed_to_duration(0.0), Some(Duration::ZERO));
        assert_eq!(elapsed_to_duration(-0.001), None);
        assert_eq!(elapsed_to_duration(f32::NAN), None);
        assert_eq!(elapsed_to_duration(f32::INFINITY), None);
    }

    #[test]
    fn driver_versions_are_formatted_like_nvidia_smi() {
        assert_eq!(format_driver_version(13000), "13.0");
        assert_eq!(format_driver_version(12080), "12.8");
        assert_eq!(format_driver_version(12020), "12.2");
    }

    #[test]
    fn panics_in_the_driver_become_reasons() {
        let err = no_panic::<()>("probing", || panic!("Missing symbol cuX")).unwrap_err();
        assert!(
            err.contains("probing") && err.contains("Missing symbol cuX"),
            "{err}"
        );
        assert_eq!(no_panic("x", || Ok::<_, String>(3)), Ok(3));
    }

    /// On a machine with libcuda and a GPU, the timer must work and time
    /// something real; elsewhere it must say why not, without panicking.
    #[test]
    fn probe_reports_unavailable_without_a_driver_and_works_with_one() {
        match DeviceTimer::probe() {
            DeviceTimerStatus::Unavailable { reason } => {
                assert!(reason.ends_with("host timing only"), "{reason}");
                if !libcuda_present() {
                    assert_eq!(reason, "libcuda not found: host timing only");
                    assert_eq!(cuda_driver_info(), None);
                }
            }
            DeviceTimerStatus::Available(mut timer) => {
                let ((), t) = timer.time(|| std::thread::sleep(Duration::from_millis(20)));
                let t = t.unwrap();
                assert!(t >= Duration::from_millis(15), "{t:?} on {timer:?}");
                let info = cuda_driver_info().expect("driver info beside a working timer");
                assert!(!info.device_names.is_empty());
            }
        }
    }
}
