//! The tiny model: a llama-architecture GGUF with random weights, generated
//! deterministically so that every run on every machine gets the same bytes.
//! It makes the default run and the test suite independent of any download,
//! while still exercising llama.cpp's real loader, tokenizer and kernels.

use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// Why writing the tiny model failed.
#[derive(Debug, thiserror::Error)]
pub enum TinyModelError {
    /// Creating, writing, syncing or renaming the file failed.
    #[error("writing tiny model {path}: {cause}")]
    Io {
        /// The model's destination path.
        path: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// candle failed to build, quantize or serialize the tensors.
    #[error("building tiny model tensors: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Hyperparameters of the tiny model. The defaults are what `model tiny`
/// writes and what every command uses when no model is given.
#[derive(Debug, Clone, PartialEq)]
pub struct TinySpec {
    /// Embedding length (hidden size), `llama.embedding_length`.
    pub embedding: usize,
    /// Transformer blocks, `llama.block_count`.
    pub layers: usize,
    /// Attention heads; each head has `embedding / heads` dimensions.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` for grouped-query attention).
    pub kv_heads: usize,
    /// Hidden size of each block's feed-forward network, `llama.feed_forward_length`.
    pub feed_forward: usize,
    /// Training context length in tokens, `llama.context_length`.
    pub context_length: u32,
    /// Seed of the weights: each tensor's SplitMix64 stream starts at `seed` xor a hash of its name.
    pub seed: u64,
}

impl Default for TinySpec {
    fn default() -> Self {
        TinySpec {
            embedding: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            feed_forward: 128,
            context_length: 4096,
            seed: 20_261_122,
        }
    }
}

// SentencePiece token types, as llama.cpp's `llama_token_type`.
const TOKEN_NORMAL: i32 = 1;
const TOKEN_UNKNOWN: i32 = 2;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_BYTE: i32 = 6;

/// Word pieces beyond the byte fallback, so that ordinary text tokenizes into
/// multi-byte pieces as it would with a real SentencePiece vocabulary.
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "model",
    "token",
    "bench",
    "latency",
    "throughput",
    "batch",
    "decode",
    "prefill",
    "server",
    "engine",
    "time",
    "fast",
];

/// SplitMix64: tiny, well distributed, and fixed forever, unlike a crate's
/// RNG whose stream may change between versions and break determinism.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn next_signed_unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// FNV-1a, to give each tensor its own stream independent of write order.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Vocab {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
}

fn vocabulary() -> Vocab {
    let mut v = Vocab {
        tokens: Vec::new(),
        scores: Vec::new(),
        types: Vec::new(),
    };
    let mut push = |token: String, score: f32, kind: i32| {
        v.tokens.push(token);
        v.scores.push(score);
        v.types.push(kind);
    };
    push("<unk>".into(), 0.0, TOKEN_UNKNOWN);
    push("<s>".into(), 0.0, TOKEN_CONTROL);
    push("</s>".into(), 0.0, TOKEN_CONTROL);
    for byte in 0..=255u8 {
        push(format!("<0x{byte:02X}>"), 0.0, TOKEN_BYTE);
    }
    // Scores rank merges: shorter pieces score higher so the merge order is
    // well defined, and every piece is reachable from its letters.
    let mut score = -1.0f32;
    let mut next_score = || {
        score -= 1.0;
        score
    };
    push("\u{2581}".into(), next_score(), TOKEN_NORMAL);
    for letter in 'a'..='z' {
        push(letter.to_string(), next_score(), TOKEN_NORMAL);
    }
    for letter in 'a'..='z' {
        push(format!("\u{2581}{letter}"), next_score(), TOKEN_NORMAL);
    }
    for word in WORDS {
        push(format!("\u{2581}{word}"), next_score(), TOKEN_NORMAL);
    }
    v
}

/// Writes the tiny model to `path`, atomically: concurrent writers (tests
/// running in parallel) each write a temporary file and rename it into place.
/// The result is byte-identical for the same `spec`.
pub fn write_tiny_model(path: &Path, spec: &TinySpec) -> Result<(), TinyModelError> {
    let io = |source| TinyModelError::Io {
        path: path.display().to_string(),
        cause: source,
    };
    let vocab = vocabulary();
    let n_vocab = vocab.tokens.len();
    let head_dim = spec.embedding / spec.heads;
    let q_dim = head_dim * spec.heads;
    let kv_dim = head_dim * spec.kv_heads;

    // (name, rows, cols, type): candle shapes are (rows, cols); GGUF stores
    // them reversed, which gives the ggml shapes llama.cpp expects.
    let mut layout: Vec<(String, usize, usize, GgmlDType)> = vec![
        (
            "token_embd.weight".into(),
            n_vocab,
            spec.embedding,
            GgmlDType::Q8_0,
        ),
        (
            "output_norm.weight".into(),
            1,
            spec.embedding,
            GgmlDType::F32,
        ),
        (
            "output.weight".into(),
            n_vocab,
            spec.embedding,
            GgmlDType::Q8_0,
        ),
    ];
    for layer in 0..spec.layers {
        let name = |part: &str| format!("blk.{layer}.{part}.weight");
        layout.extend([
            (name("attn_norm"), 1, spec.embedding, GgmlDType::F32),
            (name("attn_q"), q_dim, spec.embedding, GgmlDType::Q8_0),
            (name("attn_k"), kv_dim, spec.embedding, GgmlDType::Q8_0),
            (name("attn_v"), kv_dim, spec.embedding, GgmlDType::Q8_0),
            (name("attn_output"), spec.embedding, q_dim, GgmlDType::Q8_0),
            (name("ffn_norm"), 1, spec.embedding, GgmlDType::F32),
            (
                name("ffn_gate"),
                spec.feed_forward,
                spec.embedding,
                GgmlDType::Q8_0,
            ),
            (
                name("ffn_up"),
                spec.feed_forward,
                spec.embedding,
                GgmlDType::Q8_0,
            ),
            (
                name("ffn_down"),
                spec.embedding,
                spec.feed_forward,
                GgmlDType::Q8_0,
            ),
        ]);
    }

    let mut tensors = Vec::with_capacity(layout.len());
    for (name, rows, cols, dtype) in &layout {
        let mut rng = SplitMix64(spec.seed ^ name_hash(name));
        let is_norm = *dtype == GgmlDType::F32;
        // Norm weights near one keep activations in range; matrices get a
        // 1/sqrt(fan-in) scale so logits stay finite through the layers.
        let scale = 1.0 / (*cols as f32).sqrt();
        let data: Vec<f32> = (0..rows * cols)
            .map(|_| {
                let r = rng.next_signed_unit();
                if is_norm {
                    1.0 + 0.1 * r
                } else {
                    scale * r
                }
            })
            .collect();
        let shape: Vec<usize> = if *rows == 1 {
            vec![*cols]
        } else {
            vec![*rows, *cols]
        };
        let tensor = Tensor::from_vec(data, shape, &Device::Cpu)?;
        tensors.push((name.clone(), QTensor::quantize(&tensor, *dtype)?));
    }

    let string_array =
        |items: &[String]| Value::Array(items.iter().map(|s| Value::String(s.clone())).collect());
    let u32_of = |n: usize| Value::U32(n as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String("inferbench-tiny".into())),
        // llama_ftype MOSTLY_Q8_0.
        ("general.file_type", Value::U32(7)),
        ("llama.context_length", Value::U32(spec.context_length)),
        ("llama.embedding_length", u32_of(spec.embedding)),
        ("llama.block_count", u32_of(spec.layers)),
        ("llama.feed_forward_length", u32_of(spec.feed_forward)),
        ("llama.attention.head_count", u32_of(spec.heads)),
        ("llama.attention.head_count_kv", u32_of(spec.kv_heads)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.dimension_count", u32_of(head_dim)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("llama.vocab_size", u32_of(n_vocab)),
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", string_array(&vocab.tokens)),
        (
            "tokenizer.ggml.scores",
            Value::Array(vocab.scores.iter().map(|s| Value::F32(*s)).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vocab.types.iter().map(|t| Value::I32(*t)).collect()),
        ),
        ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
        ("tokenizer.ggml.add_eos_token", Value::Bool(false)),
    ];

    let metadata_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();

    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        gguf_file::write(&mut file, &metadata_refs, &tensor_refs)?;
        let file = file.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_has_every_byte_token_and_unique_pieces() {
        let v = vocabulary();
        let bytes = v.types.iter().filter(|t| **t == TOKEN_BYTE).count();
        assert_eq!(bytes, 256);
        let mut sorted = v.tokens.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), v.tokens.len(), "duplicate pieces");
        assert_eq!(v.tokens[3 + 0x0A], "<0x0A>");
    }

    #[test]
    fn decode_traffic_counts_every_weight_but_the_embedding_and_f16_kv() {
        let dir = std::env::temp_dir().join(format!("inferbench-traffic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny.gguf");
        let spec = TinySpec::default();
        write_tiny_model(&path, &spec).unwrap();
        let gguf = crate::GgufFile::open(&path).unwrap();
        let t = gguf.decode_traffic();
        let all: u64 = gguf.tensors.iter().map(|t| t.byte_size()).sum();
        let embedding = gguf
            .tensors
            .iter()
            .find(|t| t.name == "token_embd.weight")
            .unwrap()
            .byte_size();
        assert_eq!(
            t.weight_bytes,
            all - embedding,
            "output.weight exists: the embedding is read at its rows"
        );
        // 2 layers × 2 KV heads × (16 + 16) head dims × 2 bytes.
        let head = spec.embedding / spec.heads;
        assert_eq!(
            t.kv_bytes_per_cell,
            (spec.layers * spec.kv_heads * 2 * head * 2) as u64
        );
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prefill_compute_counts_the_matrices_per_token_and_the_output_per_sequence() {
        let dir = std::env::temp_dir().join(format!("inferbench-compute-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny.gguf");
        let spec = TinySpec::default();
        write_tiny_model(&path, &spec).unwrap();
        let gguf = crate::GgufFile::open(&path).unwrap();
        let c = gguf.prefill_compute();
        std::fs::remove_dir_all(&dir).unwrap();
        // By hand from the spec: 64 wide, 4 heads of 16, 2 KV heads, 2
        // layers, 128 feed-forward. Per layer: q 64×64, k and v 32×64 each,
        // output 64×64, gate, up and down 128×64 each.
        let (d, f, kv) = (64u64, 128u64, 32u64);
        let per_layer = d * d + 2 * kv * d + d * d + 3 * f * d;
        assert_eq!(per_layer, 36_864);
        assert_eq!(c.weight_flops_per_token, 2 * 2 * per_layer);
        // output.weight exists: the embedding is a lookup, the output
        // projection (vocabulary × 64) counted once per sequence.
        let vocab = vocabulary().tokens.len() as u64;
        assert_eq!(c.output_flops_per_sequence, 2 * vocab * d);
        // 2 layers × 4 heads × (16 + 16) × 2.
        assert_eq!(c.attention_flops_per_cell, 2 * 2 * 4 * 32);
        assert_eq!(c.notes.len(), 1, "only the general note: {:?}", c.notes);
        // 3 prompts of 4 tokens: 4 tokens through the matrices, one output
        // projection and 1 + 2 + 3 + 4 = 10 cells of attention, each.
        assert_eq!(c.flops(4, 3), 3 * (4 * 147_456 + 2 * vocab * 64 + 10 * 512),);
    }

    #[test]
    fn splitmix_stream_is_fixed() {
        // Pinned so that a change to the generator, which would change every
        // tiny model, cannot go unnoticed.
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        let x = rng.next_signed_unit();
        assert!((-1.0..1.0).contains(&x));
    }
}
