//! Ctrl-C and SIGTERM: the first asks the run to stop after the step in
//! flight, keeping every measurement taken; the second exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the handler (once) and returns the flag runners poll.
pub fn flag() -> &'static AtomicBool {
    INSTALLED.get_or_init(|| {
        let result = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: exiting without saving");
                std::process::exit(i32::from(crate::EXIT_INTERRUPTED));
            }
            eprintln!("\ninterrupted: finishing the step in flight and saving results (Ctrl-C again to quit now)");
        });
        if let Err(e) = result {
            eprintln!("warning: cannot install the Ctrl-C handler ({e}); Ctrl-C will lose the run in flight");
        }
    });
    &INTERRUPTED
}
