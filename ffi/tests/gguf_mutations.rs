//! The promise that a model file is validated completely before llama.cpp
//! sees it, tested the way an attacker or a bad disk would: seeded random
//! mutations of a real GGUF header (truncations, bit flips, huge counts,
//! huge dims, bad type ids, spliced and deleted bytes). Every mutant must
//! give a clean error or be a file llama.cpp loads; none may panic, and
//! reading one may allocate no more than a fixed bound whatever it declares.
//! Also: every file of the committed corpus of the nastiest cases is refused.
//!
//! One test function: the allocation counter is process-wide.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use inferbench_ffi::{LoadedModel, Runtime};
use inferbench_models::{write_tiny_model, GgufFile, TinySpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Most that reading one header may allocate: its 64 KiB read buffer, the
/// metadata and the tensor table of a model this size, with room to spare.
const ALLOCATION_BOUND: usize = 16 << 20;

/// Mutants per run (`INFERBENCH_MUTANTS` for a longer hunt).
fn mutants() -> u64 {
    std::env::var("INFERBENCH_MUTANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000)
}

/// Values that break arithmetic: the largest integers, powers of two near
/// overflow, zero.
const NASTY: [u64; 8] = [
    u64::MAX,
    1 << 63,
    1 << 62,
    (1 << 62) + 1,
    1 << 40,
    1 << 32,
    u32::MAX as u64,
    0,
];

fn mutate(tiny: &[u8], header_len: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = tiny.to_vec();
    let at = |rng: &mut ChaCha8Rng, width: usize| rng.random_range(0..header_len - width);
    match rng.random_range(0..7) {
        0 => b.truncate(rng.random_range(0..b.len())),
        1 => {
            for _ in 0..rng.random_range(1..=8) {
                let i = at(rng, 1);
                b[i] ^= 1 << rng.random_range(0..8);
            }
        }
        2 => {
            let i = at(rng, 8);
            let v = NASTY[rng.random_range(0..NASTY.len())];
            b[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        3 => {
            let i = at(rng, 4);
            let v: u32 = rng.random();
            b[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        4 => {
            // The tensor count (at 8) or the metadata count (at 16).
            let i = if rng.random() { 8 } else { 16 };
            let v = NASTY[rng.random_range(0..NASTY.len())];
            b[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        5 => {
            let i = at(rng, 1);
            let n = rng.random_range(1..32);
            let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            b.splice(i..i, junk);
        }
        _ => {
            let i = at(rng, 1);
            let n = rng.random_range(1..64).min(header_len - i);
            b.drain(i..i + n);
        }
    }
    b
}

type Opened = std::thread::Result<Result<GgufFile, String>>;

/// Opens `path` with the counter reset; the peak allocated above the base.
fn open_counted(path: &Path) -> (Opened, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let opened = std::panic::catch_unwind(|| {
        GgufFile::open(path)
            .and_then(|f| f.summary().map(|_| f))
            .map_err(|e| e.to_string())
    });
    (opened, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

#[test]
fn mutated_headers_give_a_clean_error_or_a_file_llama_cpp_loads() {
    let dir = tempfile::tempdir().unwrap();
    let tiny_path = dir.path().join("tiny.gguf");
    write_tiny_model(&tiny_path, &TinySpec::default()).unwrap();
    let tiny = std::fs::read(&tiny_path).unwrap();
    let header_len = GgufFile::open(&tiny_path).unwrap().data_offset as usize;
    let runtime = Runtime::get(true).unwrap();

    let mut rng = ChaCha8Rng::seed_from_u64(0x6767_7566);
    let (mut refused, mut loaded, mut llama_refused) = (0, 0, 0);
    let mut worst = 0;
    let path = dir.path().join("mutant.gguf");
    let count = mutants();
    for i in 0..count {
        let bytes = mutate(&tiny, header_len, &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        let (opened, peak) = open_counted(&path);
        worst = worst.max(peak);
        assert!(
            peak <= ALLOCATION_BOUND,
            "mutant {i}: reading it allocated {peak} bytes"
        );
        match opened {
            Err(_) => panic!("mutant {i} made the reader panic"),
            Ok(Err(message)) => {
                assert!(message.contains("mutant.gguf"), "mutant {i}: {message}");
                refused += 1;
            }
            // Accepted: llama.cpp must load it or refuse it, never abort
            // the process (which would end this test).
            Ok(Ok(_)) => match LoadedModel::load(runtime, &path, 0) {
                Ok(_) => loaded += 1,
                Err(_) => llama_refused += 1,
            },
        }
    }
    eprintln!(
        "{count} mutants: {refused} refused by the reader, {loaded} loaded by llama.cpp, \
         {llama_refused} refused by llama.cpp; peak allocation {worst} bytes"
    );
    assert!(
        refused > count / 4 && loaded > 0,
        "the mutations are too mild or too harsh"
    );

    // The corpus: each file is refused, with the reason its manifest gives.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/corpus");
    let manifest = std::fs::read_to_string(corpus.join("EXPECTED.txt")).unwrap();
    let mut cases = 0;
    for line in manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (file, needle) = line.split_once('\t').expect("FILE<TAB>EXPECTED");
        let (opened, peak) = open_counted(&corpus.join(file));
        assert!(peak <= ALLOCATION_BOUND, "{file}: {peak} bytes");
        match opened {
            Ok(Err(message)) => assert!(message.contains(needle), "{file}: {message}"),
            Ok(Ok(_)) => panic!("{file} was accepted"),
            Err(_) => panic!("{file} made the reader panic"),
        }
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} corpus files");
}
