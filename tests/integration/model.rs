use crate::util::*;

#[test]
fn tiny_model_is_byte_identical_on_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    for path in [&a, &b] {
        let out = bin()
            .args(["model", "tiny", "--out"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(sha256(&a), sha256(&b));
    // The library writes the same bytes as the command.
    assert_eq!(sha256(&a), sha256(tiny_model()));
}

#[test]
fn tiny_model_reads_back_with_candle_too() {
    // Our validator and candle's reader must agree on the file we write.
    let mut f = std::fs::File::open(tiny_model()).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    let ours = inferbench_models::GgufFile::open(tiny_model()).unwrap();
    assert_eq!(content.tensor_infos.len(), ours.tensors.len());
    assert_eq!(content.tensor_data_offset, ours.data_offset);
}

#[test]
fn inspect_tiny_model() {
    let out = bin()
        .args(["model", "inspect"])
        .arg(tiny_model())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "architecture:   llama",
        "layers:         2",
        "context length: 4096",
        "quantization:   Q8_0",
        "F32 x5",
        "Q8_0 x16",
        "name:           inferbench-tiny",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }

    let out = bin()
        .args(["model", "inspect", "--json"])
        .arg(tiny_model())
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let size = std::fs::metadata(tiny_model()).unwrap().len();
    assert_eq!(summary["file_size_bytes"], size);
    assert_eq!(summary["tensor_count"], 21);
    // Parameters: embeddings and output (n_vocab × 64 each), 2 norms of 64
    // per layer plus the output norm, and per layer q (64×64), k and v
    // (32×64 each), o (64×64), gate, up, down (128×64 each).
    let vocab = summary["vocab_size"].as_u64().unwrap();
    let per_layer = 64 + 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64;
    assert_eq!(summary["parameters"], 2 * vocab * 64 + 64 + 2 * per_layer);
}

#[test]
fn inspect_refuses_broken_files_before_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let tiny = std::fs::read(tiny_model()).unwrap();
    let cases = [
        (dir.path().join("missing.gguf"), "cannot read"),
        (
            write("text.gguf", b"this is not a model at all"),
            "not a GGUF file",
        ),
        (write("empty.gguf", b""), "too short"),
        (write("half.gguf", &tiny[..tiny.len() / 2]), "truncated"),
        (write("header-only.gguf", &tiny[..200]), "truncated"),
        (
            write("type99.gguf", &handmade_gguf(99, 32, 128)),
            "unsupported tensor type id 99",
        ),
        (
            write("short-data.gguf", &handmade_gguf(0, 32, 64)),
            "truncated: tensor 't'",
        ),
        // Regression: one F32 tensor of 2^62 elements, whose byte size
        // wrapped to 0 in release builds, so that its data "lay inside" a
        // 224-byte file and `model inspect` reported 4.6 billion parameters.
        (
            write("wrapping-size.gguf", &handmade_gguf(0, 1 << 62, 0)),
            "overflow",
        ),
    ];
    for (path, needle) in cases {
        let out = bin()
            .args(["model", "inspect"])
            .arg(&path)
            .output()
            .unwrap();
        assert_clean_failure(&out, 1, needle);
        assert!(
            stderr(&out).contains(&path.display().to_string()),
            "path not named: {}",
            stderr(&out)
        );
    }
    // A type candle cannot read but llama.cpp can (IQ4_XS) is accepted.
    let iq4 = write("iq4xs.gguf", &handmade_gguf(23, 256, 136));
    let out = bin().args(["model", "inspect"]).arg(&iq4).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("IQ4_XS x1"));
}
