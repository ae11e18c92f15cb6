//! llama.cpp's and ggml's log: silenced or printed, its warnings and errors
//! kept for the message of a failure llama.cpp only logs, and every line
//! kept while a context is made (the buffers it reports).

use inferbench_core::schema::LlamaBuffers;

use super::model::cstr_to_string;

/// Whether llama.cpp's log is kept from the terminal (`Runtime::get(quiet)`).
pub(super) static LOG_QUIET: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// llama.cpp's last warnings and errors, for the message of an error whose
/// cause llama.cpp only logs (a context it refuses returns null).
static LOG_PROBLEMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Problems kept at most: the message of the failure at hand is the last.
const LOG_PROBLEMS_KEPT: usize = 8;

/// Whether llama.cpp's informational lines are kept too, in
/// [`LOG_CAPTURED`]: only while a context is made, never in a timed call.
static LOG_CAPTURE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The lines llama.cpp logged while [`LOG_CAPTURE`] was set.
static LOG_CAPTURED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Runs `f` with llama.cpp's log lines kept, and returns them beside its
/// value.
pub(super) fn capturing_log<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    if let Ok(mut kept) = LOG_CAPTURED.lock() {
        kept.clear();
    }
    LOG_CAPTURE.store(true, std::sync::atomic::Ordering::Relaxed);
    let value = f();
    LOG_CAPTURE.store(false, std::sync::atomic::Ordering::Relaxed);
    let lines = LOG_CAPTURED
        .lock()
        .map(|mut kept| std::mem::take(&mut *kept))
        .unwrap_or_default();
    (value, lines)
}

/// The buffers llama.cpp reports as it makes a context, from its log lines
/// ("llama_kv_cache:        CPU KV buffer size =     3.75 MiB"), each kind
/// summed over devices and caches. MiB with two decimals: exact to 5 KiB.
pub fn buffers_from_log(lines: &[String]) -> Option<LlamaBuffers> {
    let mut buffers = LlamaBuffers::default();
    let mut any = false;
    for line in lines {
        let Some((head, tail)) = line.split_once(" buffer size = ") else {
            continue;
        };
        let Some(mib) = tail
            .trim()
            .strip_suffix("MiB")
            .and_then(|v| v.trim().parse::<f64>().ok())
        else {
            continue;
        };
        let bytes = (mib * 1024.0 * 1024.0).round() as u64;
        let slot = match head.split_whitespace().last() {
            Some("KV") => &mut buffers.kv_bytes,
            Some("compute") => &mut buffers.compute_bytes,
            Some("output") => &mut buffers.output_bytes,
            _ => continue,
        };
        *slot = Some(slot.unwrap_or(0) + bytes);
        any = true;
    }
    any.then_some(buffers)
}

/// llama.cpp's and ggml's log callback: prints unless quiet, and keeps the
/// warnings and errors, and every line while a context is made.
pub(super) unsafe extern "C" fn record_log(
    level: llama_cpp_sys_2::ggml_log_level,
    text: *const std::os::raw::c_char,
    _user_data: *mut std::os::raw::c_void,
) {
    let quiet = LOG_QUIET.load(std::sync::atomic::Ordering::Relaxed);
    let problem = level == llama_cpp_sys_2::GGML_LOG_LEVEL_WARN
        || level == llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR;
    let capture = LOG_CAPTURE.load(std::sync::atomic::Ordering::Relaxed);
    // Quiet and no problem (the usual case, and the one inside timed
    // calls): nothing to copy, no lock taken.
    if quiet && !problem && !capture {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the call.
    let line = unsafe { cstr_to_string(text) };
    if !quiet {
        eprint!("{line}");
    }
    if capture {
        if let Ok(mut kept) = LOG_CAPTURED.lock() {
            kept.push(line.trim().to_string());
        }
    }
    if problem {
        if let Ok(mut kept) = LOG_PROBLEMS.lock() {
            if kept.len() == LOG_PROBLEMS_KEPT {
                kept.remove(0);
            }
            kept.push(line.trim().to_string());
        }
    }
}

/// llama.cpp's warnings and errors since the last call, oldest first.
pub fn take_llama_problems() -> Vec<String> {
    LOG_PROBLEMS
        .lock()
        .map(|mut kept| std::mem::take(&mut *kept))
        .unwrap_or_default()
}
