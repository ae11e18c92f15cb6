//! Any bytes as a GGUF file: the reader must refuse them cleanly or accept
//! a file whose every size and offset it checked, never panic or allocate
//! without bound. Seed with `models/corpus/` and the tiny model:
//! `cargo fuzz run gguf ../models/corpus`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader takes a path (it reads the header and seeks over the data),
    // so each input is written to a per-process file in memory-backed /dev/shm.
    let path = std::env::temp_dir().join(format!("inferbench-fuzz-{}.gguf", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = inferbench_models::GgufFile::open(&path);
    }
});
