//! Ctrl-C and SIGTERM: the first asks the run to stop after the step in
//! flight, keeping every measurement taken; the second exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Processes this run started (a llama-server) that must not outlive it,
/// even when a second Ctrl-C exits without unwinding.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills `pid` if the run exits at once (second Ctrl-C); until `forget_child`.
pub fn register_child(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.push(pid);
    }
}

pub fn forget_child(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain(|&p| p != pid);
    }
}

fn kill_children() {
    let pids = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Installs the handler (once) and returns the flag runners poll.
pub fn flag() -> Arc<AtomicBool> {
    INTERRUPTED
        .get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let in_handler = flag.clone();
            let result = ctrlc::set_handler(move || {
                if in_handler.swap(true, Ordering::SeqCst) {
                    kill_children();
                    eprintln!("\ninterrupted again: exiting without saving");
                    std::process::exit(i32::from(crate::exit::INTERRUPTED));
                }
                eprintln!(
                    "\ninterrupted: finishing the step in flight and saving results (Ctrl-C again to quit now)"
                );
            });
            if let Err(e) = result {
                eprintln!("warning: cannot install the Ctrl-C handler ({e}); Ctrl-C will lose the run in flight");
            }
            flag
        })
        .clone()
}
