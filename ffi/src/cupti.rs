//! What the GPU executed in each engine call, from NVIDIA's profiling
//! interface (CUPTI): its activity API records every kernel, copy and memset
//! with start and end timestamps taken on the device, whatever stream
//! llama.cpp launched them on and whether or not they ran inside a CUDA
//! graph. [`KernelTracer::activity`] turns the records of one call into a
//! [`KernelActivity`]: busy time (the union of kernel intervals), kernel
//! count, idle gaps, the delay from the call to the first kernel.
//!
//! # Why not cudarc's CUPTI bindings
//!
//! cudarc 0.19 has them (feature `cupti`), but its loader looks for the
//! library only under the names of the CUDA version it was built for
//! (`libcupti.so.12` here), on the loader's path, and panics when it finds
//! none; its error type's `Display` panics too when the library cannot
//! describe an error. CUPTI ships beside the toolkit (`extras/CUPTI/lib64`,
//! rarely on the loader's path) and with the version's own soname
//! (`libcupti.so.13` for CUDA 13). So this module loads the library itself,
//! from `INFERBENCH_CUPTI` or the usual places, and binds the seven
//! functions it calls; a missing library, a missing symbol, a missing
//! driver or a refusal by CUPTI each becomes a reason in the result file.
//!
//! # Clocks
//!
//! Record timestamps and `cuptiGetTimestamp` share one nanosecond timebase,
//! so the call's window is read with `cuptiGetTimestamp` just inside the
//! host clock's window, and a record belongs to the call when it started
//! inside that window. The records of a synchronized call are complete when
//! it returns; they are flushed after the host clock has stopped, so the
//! flush costs the measurement nothing. Tracing itself adds CUPTI's own
//! cost per launch to the host time; `--no-kernel-timing` measures without it.

use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use inferbench_core::kernels::{DeviceWork, KernelActivity, WorkKind};
use libloading::Library;

use crate::cuda::{libcuda_present, no_panic};

/// `CUptiResult`: 0 is success.
type CuptiResult = u32;
const CUPTI_SUCCESS: CuptiResult = 0;
/// `CUPTI_ERROR_MAX_LIMIT_REACHED`: the buffer has no more records.
const CUPTI_ERROR_MAX_LIMIT_REACHED: CuptiResult = 12;
/// `CUPTI_ERROR_INVALID_KIND`, returned at a buffer's end by some versions.
const CUPTI_ERROR_INVALID_KIND: CuptiResult = 21;

/// `CUpti_ActivityKind` values (cupti_activity.h; stable since CUDA 5).
const KIND_MEMCPY: u32 = 1;
const KIND_MEMSET: u32 = 2;
const KIND_KERNEL: u32 = 3;
const KIND_CONCURRENT_KERNEL: u32 = 10;
/// Kernels traced without serializing them (CONCURRENT_KERNEL, not KERNEL,
/// which would make kernels of different streams run one after another).
const TRACED_KINDS: [u32; 3] = [KIND_CONCURRENT_KERNEL, KIND_MEMCPY, KIND_MEMSET];
/// `CUPTI_ACTIVITY_FLAG_FLUSH_FORCED`: deliver buffers even if not full.
const FLUSH_FORCED: u32 = 1;

/// The start of every record this module reads. Kernel records
/// (`CUpti_ActivityKernel4` … `13`: kind, cacheConfig, sharedMemoryConfig,
/// registersPerThread, two partitioned-cache configs), copy records
/// (`CUpti_ActivityMemcpy5`, `6`: kind, four u8 fields, bytes) and memset
/// records (`CUpti_ActivityMemset4`: kind, value, bytes) all keep `start`
/// at byte 16 and `end` at byte 24; a test checks it against cudarc's
/// bindgen output of NVIDIA's headers.
#[repr(C)]
#[derive(Clone, Copy)]
struct RecordTimes {
    kind: u32,
    _fields: [u32; 3],
    start: u64,
    end: u64,
}

type BufferRequested =
    unsafe extern "C" fn(buffer: *mut *mut u8, size: *mut usize, max_records: *mut usize);
type BufferCompleted = unsafe extern "C" fn(
    context: *mut c_void,
    stream_id: u32,
    buffer: *mut u8,
    size: usize,
    valid_size: usize,
);

/// The functions of libcupti this module calls, and the library they live in.
struct Api {
    path: String,
    register_callbacks:
        unsafe extern "C" fn(Option<BufferRequested>, Option<BufferCompleted>) -> CuptiResult,
    enable: unsafe extern "C" fn(kind: u32) -> CuptiResult,
    disable: unsafe extern "C" fn(kind: u32) -> CuptiResult,
    flush_all: unsafe extern "C" fn(flag: u32) -> CuptiResult,
    next_record:
        unsafe extern "C" fn(buffer: *mut u8, valid: usize, record: *mut *mut u8) -> CuptiResult,
    timestamp: unsafe extern "C" fn(timestamp: *mut u64) -> CuptiResult,
    result_string:
        unsafe extern "C" fn(result: CuptiResult, text: *mut *const c_char) -> CuptiResult,
    // Last: the function pointers above point into it.
    _library: Library,
}

impl Api {
    fn load(path: &Path) -> Result<Api, String> {
        // SAFETY: loading runs the library's initialisers. libcupti is
        // NVIDIA's profiling library, built to be loaded into any CUDA
        // process; which file is loaded is the user's choice
        // (INFERBENCH_CUPTI) or the toolkit's standard location.
        let library = unsafe { Library::new(path) }.map_err(|e| with_source(&e))?;
        macro_rules! symbol {
            ($name:literal) => {
                // SAFETY: the type is the function's signature in cupti.h
                // (cupti_activity.h, cupti_result.h), with enums as their
                // 32-bit values and CUcontext as a pointer; the pointer is
                // used only while `library`, kept in the same `Api`, is loaded.
                *unsafe { library.get($name) }.map_err(|e| {
                    format!(
                        "{}: {}",
                        String::from_utf8_lossy(&$name[..$name.len() - 1]),
                        with_source(&e)
                    )
                })?
            };
        }
        Ok(Api {
            path: path.display().to_string(),
            register_callbacks: symbol!(b"cuptiActivityRegisterCallbacks\0"),
            enable: symbol!(b"cuptiActivityEnable\0"),
            disable: symbol!(b"cuptiActivityDisable\0"),
            flush_all: symbol!(b"cuptiActivityFlushAll\0"),
            next_record: symbol!(b"cuptiActivityGetNextRecord\0"),
            timestamp: symbol!(b"cuptiGetTimestamp\0"),
            result_string: symbol!(b"cuptiGetResultString\0"),
            _library: library,
        })
    }

    /// CUPTI's name for a result code, e.g. "CUPTI_ERROR_NOT_INITIALIZED".
    fn describe(&self, result: CuptiResult) -> String {
        let mut text: *const c_char = std::ptr::null();
        // SAFETY: `text` is a valid place for the returned pointer, which
        // CUPTI points at a static string (or leaves alone on failure).
        let ok = unsafe { (self.result_string)(result, &mut text) } == CUPTI_SUCCESS;
        if ok && !text.is_null() {
            // SAFETY: on success the pointer is a NUL-terminated static string.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        } else {
            format!("CUPTI error {result}")
        }
    }

    fn check(&self, what: &str, result: CuptiResult) -> Result<(), String> {
        if result == CUPTI_SUCCESS {
            Ok(())
        } else {
            Err(format!("{what}: {}", self.describe(result)))
        }
    }

    fn now(&self) -> Option<u64> {
        let mut t = 0u64;
        // SAFETY: `t` is a valid, writable u64.
        (unsafe { (self.timestamp)(&mut t) } == CUPTI_SUCCESS).then_some(t)
    }
}

/// libloading's message and the loader's own (its `source`), e.g. "dlopen
/// failed: libcupti.so: cannot open shared object file: No such file or directory".
fn with_source(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// Where libcupti is looked for, in order: `INFERBENCH_CUPTI` when set
/// (and then nothing else), else the loader's path under each soname, then
/// the toolkit's `extras/CUPTI/lib64` under `CUDA_HOME`, `CUDA_PATH` and
/// `/usr/local/cuda`.
fn candidates(explicit: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path];
    }
    const NAMES: [&str; 3] = ["libcupti.so", "libcupti.so.13", "libcupti.so.12"];
    let mut paths: Vec<PathBuf> = NAMES.iter().map(PathBuf::from).collect();
    let roots = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from)
        .chain([PathBuf::from("/usr/local/cuda")]);
    for root in roots {
        let dir = root.join("extras/CUPTI/lib64");
        paths.extend(NAMES.iter().map(|n| dir.join(n)));
    }
    paths
}

/// The first candidate that loads with every symbol, or why none did.
fn load_first(candidates: &[PathBuf]) -> Result<Api, String> {
    let mut failures = Vec::new();
    for path in candidates {
        match Api::load(path) {
            Ok(api) => return Ok(api),
            Err(e) => failures.push(e),
        }
    }
    // A file that exists but will not load says more than a missing one.
    let telling = failures
        .iter()
        .find(|e| !e.contains("No such file") && !e.contains("cannot open shared object"));
    Err(match (candidates, telling) {
        ([only], _) => format!(
            "libcupti at {} (INFERBENCH_CUPTI): {}",
            only.display(),
            failures.first().map_or("", String::as_str)
        ),
        (_, Some(e)) => format!("libcupti would not load: {e}"),
        _ => "libcupti not found (on the loader's path, or in extras/CUPTI/lib64 of \
              CUDA_HOME, CUDA_PATH or /usr/local/cuda; INFERBENCH_CUPTI names the file)"
            .into(),
    })
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn api() -> Result<&'static Api, String> {
    API.get_or_init(|| {
        load_first(&candidates(
            std::env::var_os("INFERBENCH_CUPTI").map(PathBuf::from),
        ))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Records delivered by CUPTI and not yet claimed by a call.
static RECORDS: Mutex<Vec<DeviceWork>> = Mutex::new(Vec::new());
/// Buffers given back by CUPTI, reused so that a flush per step does not
/// allocate (addresses; each `BUFFER_BYTES` with `BUFFER_ALIGN`).
static FREE_BUFFERS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Buffers that could not be allocated: CUPTI drops their records.
static REFUSED_BUFFERS: AtomicU64 = AtomicU64::new(0);
static IN_USE: AtomicBool = AtomicBool::new(false);
static CALLBACKS_REGISTERED: AtomicBool = AtomicBool::new(false);

const BUFFER_BYTES: usize = 1 << 20;
/// CUPTI requires 8-byte aligned buffers.
const BUFFER_ALIGN: usize = 8;

fn buffer_layout() -> Option<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(BUFFER_BYTES, BUFFER_ALIGN).ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// CUPTI asks for a buffer to fill (on any thread). Never unwinds: it is
/// called from C.
unsafe extern "C" fn buffer_requested(
    buffer: *mut *mut u8,
    size: *mut usize,
    max_records: *mut usize,
) {
    let reused = lock(&FREE_BUFFERS).pop();
    let ptr = match (reused, buffer_layout()) {
        (Some(addr), _) => addr as *mut u8,
        // SAFETY: the layout has a non-zero size.
        (None, Some(layout)) => unsafe { std::alloc::alloc(layout) },
        (None, None) => std::ptr::null_mut(),
    };
    if ptr.is_null() {
        REFUSED_BUFFERS.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: CUPTI passes valid places for the three outputs; a null
    // buffer of size 0 tells it to drop records instead.
    unsafe {
        *buffer = ptr;
        *size = if ptr.is_null() { 0 } else { BUFFER_BYTES };
        *max_records = 0;
    }
}

/// CUPTI hands back a filled buffer: its records are kept, the buffer
/// goes back to the pool. Never unwinds: it is called from C.
unsafe extern "C" fn buffer_completed(
    _context: *mut c_void,
    _stream_id: u32,
    buffer: *mut u8,
    _size: usize,
    valid_size: usize,
) {
    if buffer.is_null() {
        return;
    }
    if let Some(Ok(api)) = API.get() {
        let mut records = lock(&RECORDS);
        let mut record: *mut u8 = std::ptr::null_mut();
        loop {
            // SAFETY: `buffer` is one CUPTI filled with `valid_size` bytes
            // of records, and `record` walks it as CUPTI directs.
            let result = unsafe { (api.next_record)(buffer, valid_size, &mut record) };
            if result != CUPTI_SUCCESS || record.is_null() {
                debug_assert!(
                    matches!(
                        result,
                        CUPTI_SUCCESS | CUPTI_ERROR_MAX_LIMIT_REACHED | CUPTI_ERROR_INVALID_KIND
                    ),
                    "cuptiActivityGetNextRecord: {result}"
                );
                break;
            }
            // SAFETY: every record starts with its kind, and the kinds
            // read here are at least `RecordTimes` long (see its doc);
            // records are 8-byte aligned but read unaligned regardless.
            let kind = unsafe { record.cast::<u32>().read_unaligned() };
            let work_kind = match kind {
                KIND_KERNEL | KIND_CONCURRENT_KERNEL => WorkKind::Kernel,
                KIND_MEMCPY => WorkKind::Copy,
                KIND_MEMSET => WorkKind::Memset,
                _ => continue,
            };
            // SAFETY: as above, a record of one of these kinds.
            let times = unsafe { record.cast::<RecordTimes>().read_unaligned() };
            records.push(DeviceWork {
                kind: work_kind,
                start_ns: times.start,
                end_ns: times.end,
            });
        }
    }
    lock(&FREE_BUFFERS).push(buffer as usize);
}

/// CUPTI's activity records of one process. At most one exists at a time
/// (the activity API is process-wide).
pub struct KernelTracer {
    api: &'static Api,
}

/// Whether kernel timing is possible here.
pub enum KernelTracerStatus {
    /// A tracer with CUPTI's kernel, copy and memset records enabled.
    Available(KernelTracer),
    /// Why not, for the result file.
    Unavailable {
        /// The reason, ending in ": no kernel timing".
        reason: String,
    },
}

impl std::fmt::Debug for KernelTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelTracer")
            .field("library", &self.api.path)
            .finish()
    }
}

impl std::fmt::Debug for KernelTracerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelTracerStatus::Available(t) => f.debug_tuple("Available").field(t).finish(),
            KernelTracerStatus::Unavailable { reason } => f
                .debug_struct("Unavailable")
                .field("reason", reason)
                .finish(),
        }
    }
}

impl KernelTracer {
    /// Starts tracing kernels, copies and memsets, or says why it cannot.
    /// Never panics.
    pub fn probe() -> KernelTracerStatus {
        let unavailable = |reason: String| KernelTracerStatus::Unavailable {
            reason: format!("{reason}: no kernel timing"),
        };
        let api = match api() {
            Ok(api) => api,
            Err(reason) => return unavailable(reason),
        };
        if !libcuda_present() {
            return unavailable("libcuda not found".into());
        }
        if IN_USE.swap(true, Ordering::AcqRel) {
            return unavailable("another kernel tracer is active in this process".into());
        }
        match no_panic("starting CUPTI activity tracing", || Self::start(api)) {
            Ok(tracer) => KernelTracerStatus::Available(tracer),
            Err(reason) => {
                Self::stop(api);
                IN_USE.store(false, Ordering::Release);
                unavailable(reason)
            }
        }
    }

    fn start(api: &'static Api) -> Result<KernelTracer, String> {
        if !CALLBACKS_REGISTERED.load(Ordering::Acquire) {
            // SAFETY: both callbacks have the signatures cupti_activity.h
            // gives, never unwind, and only touch this module's statics.
            api.check("registering buffer callbacks", unsafe {
                (api.register_callbacks)(Some(buffer_requested), Some(buffer_completed))
            })?;
            CALLBACKS_REGISTERED.store(true, Ordering::Release);
        }
        for kind in TRACED_KINDS {
            // SAFETY: a plain call with an activity kind cupti_activity.h defines.
            api.check(&format!("enabling activity kind {kind}"), unsafe {
                (api.enable)(kind)
            })?;
        }
        api.now()
            .ok_or_else(|| "cuptiGetTimestamp failed".to_string())?;
        lock(&RECORDS).clear();
        Ok(KernelTracer { api })
    }

    fn stop(api: &Api) {
        for kind in TRACED_KINDS {
            // SAFETY: as in `start`; disabling a kind never enabled is harmless.
            unsafe { (api.disable)(kind) };
        }
        // SAFETY: a plain call; it delivers the remaining buffers through
        // the callbacks, which return them to the pool.
        unsafe { (api.flush_all)(FLUSH_FORCED) };
        lock(&RECORDS).clear();
    }

    /// A timestamp on the records' clock, to open or close a call's window.
    pub fn now(&self) -> Option<u64> {
        self.api.now()
    }

    /// The library in use and what it records, for the result file.
    pub fn description(&self) -> String {
        format!(
            "cupti activity records (concurrent kernels, copies, memsets; device timestamps) from {}",
            self.api.path
        )
    }

    /// Buffers CUPTI asked for and could not get: their records were
    /// dropped, so kernel counts may be short. Zero in any healthy run.
    pub fn refused_buffers(&self) -> u64 {
        REFUSED_BUFFERS.load(Ordering::Relaxed)
    }

    /// What the device executed between two [`now`](Self::now) readings
    /// around a synchronized call. Records from before the window (work
    /// outside any timed call) are discarded.
    pub fn activity(&mut self, start_ns: u64, end_ns: u64) -> Result<KernelActivity, String> {
        // SAFETY: a plain call; the callbacks it runs only touch statics.
        self.api.check("flushing activity records", unsafe {
            (self.api.flush_all)(FLUSH_FORCED)
        })?;
        let mut records = lock(&RECORDS);
        let activity = KernelActivity::from_records(start_ns, end_ns, &records);
        records.retain(|w| w.start_ns > end_ns);
        Ok(activity)
    }
}

impl Drop for KernelTracer {
    fn drop(&mut self) {
        Self::stop(self.api);
        IN_USE.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_times_sit_where_nvidias_headers_put_them() {
        use cudarc::cupti::sys;
        use std::mem::offset_of;
        for (start, end) in [
            (
                offset_of!(sys::CUpti_ActivityKernel4, start),
                offset_of!(sys::CUpti_ActivityKernel4, end),
            ),
            (
                offset_of!(sys::CUpti_ActivityKernel9, start),
                offset_of!(sys::CUpti_ActivityKernel9, end),
            ),
            (
                offset_of!(sys::CUpti_ActivityMemcpy5, start),
                offset_of!(sys::CUpti_ActivityMemcpy5, end),
            ),
            (
                offset_of!(sys::CUpti_ActivityMemset4, start),
                offset_of!(sys::CUpti_ActivityMemset4, end),
            ),
        ] {
            assert_eq!(
                (start, end),
                (offset_of!(RecordTimes, start), offset_of!(RecordTimes, end))
            );
        }
        assert_eq!(
            sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL as u32,
            KIND_CONCURRENT_KERNEL
        );
        assert_eq!(
            sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY as u32,
            KIND_MEMCPY
        );
        assert_eq!(
            sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET as u32,
            KIND_MEMSET
        );
        assert_eq!(
            sys::CUptiResult::CUPTI_ERROR_MAX_LIMIT_REACHED as u32,
            CUPTI_ERROR_MAX_LIMIT_REACHED
        );
    }

    #[test]
    fn an_explicit_library_is_the_only_one_tried_and_named_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("libcupti.so");
        std::fs::write(&bogus, b"not a library").unwrap();
        let list = candidates(Some(bogus.clone()));
        assert_eq!(list, vec![bogus.clone()]);
        let err = load_first(&list).err().unwrap();
        assert!(
            err.contains(&bogus.display().to_string()) && err.contains("INFERBENCH_CUPTI"),
            "{err}"
        );
    }

    #[test]
    fn without_a_library_the_reason_says_where_it_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let missing = [
            dir.path().join("a/libcupti.so"),
            dir.path().join("b/libcupti.so"),
        ];
        let err = load_first(&missing).err().unwrap();
        assert!(err.starts_with("libcupti not found"), "{err}");
        assert!(err.contains("INFERBENCH_CUPTI"), "{err}");
        // The default list ends in the toolkit's own folder.
        assert!(candidates(None)
            .iter()
            .any(|p| p.starts_with("/usr/local/cuda/extras/CUPTI/lib64")));
    }

    /// With a real libcupti named by INFERBENCH_CUPTI (a GPU machine, or
    /// NVIDIA's nvidia-cuda-cupti wheel unpacked anywhere), every symbol
    /// binds and the library answers through the bindings.
    #[test]
    fn a_real_libcupti_binds_and_answers() {
        if std::env::var_os("INFERBENCH_CUPTI").is_none() {
            return;
        }
        let api = api().expect("INFERBENCH_CUPTI names a loadable libcupti");
        assert_eq!(api.describe(15), "CUPTI_ERROR_NOT_INITIALIZED");
        assert_eq!(
            api.describe(CUPTI_ERROR_MAX_LIMIT_REACHED),
            "CUPTI_ERROR_MAX_LIMIT_REACHED"
        );
        let (a, b) = (api.now().unwrap(), api.now().unwrap());
        assert!(b >= a && a > 0, "{a} {b}");
    }

    /// Where CUPTI and a GPU are, tracing starts; elsewhere (CUPTI absent,
    /// or present without a driver or GPU) the probe says why, never panics.
    #[test]
    fn probe_reports_why_not_or_traces() {
        match KernelTracer::probe() {
            KernelTracerStatus::Unavailable { reason } => {
                assert!(reason.ends_with(": no kernel timing"), "{reason}");
                if api().is_err() {
                    assert!(reason.contains("libcupti"), "{reason}");
                } else if !libcuda_present() {
                    assert!(reason.starts_with("libcuda not found"), "{reason}");
                }
            }
            KernelTracerStatus::Available(mut tracer) => {
                let start = tracer.now().unwrap();
                let end = tracer.now().unwrap();
                assert!(end >= start);
                let idle = tracer.activity(start, end).unwrap();
                assert_eq!(idle.kernels, 0, "nothing was launched: {tracer:?}");
                assert!(matches!(
                    KernelTracer::probe(),
                    KernelTracerStatus::Unavailable { reason } if reason.contains("another")
                ));
            }
        }
    }
}
