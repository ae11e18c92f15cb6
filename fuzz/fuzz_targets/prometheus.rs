//! Any text as a server's `/metrics`: parsed readings or an error, never a
//! panic, and the summary of scrapes of it stays finite-or-absent.
#![no_main]

use std::time::{Duration, Instant};

use inferbench_harness::http::server_metrics::{parse, Aggregator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let t0 = Instant::now();
    let mut acc = Aggregator::new("fuzz", Duration::from_secs(1));
    for k in 0..3 {
        acc.add(t0 + Duration::from_secs(k), parse(text));
    }
    let _ = acc.summary();
});
