//! Any bytes as a server's event stream, split into pieces where the input
//! says: the client's stream reader must end with content or a classified
//! failure, never panic, and hold no more than its line and event bounds.
#![no_main]

use std::time::{Duration, Instant};

use inferbench_harness::http::client::{read_events, Outcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size: the same stream cut every way.
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let size = usize::from(cut).max(1);
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(size).map(|c| Ok(c.to_vec())).collect();
    let mut outcome = Outcome::new(Instant::now(), 0, true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _ = rt.block_on(read_events(
        futures_util::stream::iter(pieces),
        &mut outcome,
        Duration::from_secs(5),
    ));
});
