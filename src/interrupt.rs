//! Ctrl-C and SIGTERM: the first asks the run to stop after the step in
//! flight, keeping every measurement taken; the second exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handler (once) and returns the flag runners poll.
pub fn flag() -> Arc<AtomicBool> {
    INTERRUPTED
        .get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let in_handler = flag.clone();
            let result = ctrlc::set_handler(move || {
                if in_handler.swap(true, Ordering::SeqCst) {
                    eprintln!("\ninterrupted again: exiting without saving");
                    std::process::exit(i32::from(crate::EXIT_INTERRUPTED));
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
