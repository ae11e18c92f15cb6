//! The in-process engine's settings, as llama.cpp users turn them
//! (llama-bench's knobs), and the grid a spec's lists expand to.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Flash attention (`--flash-attn`, llama-bench's `-fa`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttn {
    /// Never.
    Off,
    /// Always (llama.cpp refuses a context whose device cannot).
    On,
    /// Where the device supports it: llama.cpp's default.
    #[default]
    Auto,
}

impl FlashAttn {
    /// The name flags and results use.
    pub fn name(self) -> &'static str {
        match self {
            FlashAttn::Off => "off",
            FlashAttn::On => "on",
            FlashAttn::Auto => "auto",
        }
    }
}

impl std::str::FromStr for FlashAttn {
    type Err = String;

    /// `off`, `on`, `auto`, or llama-bench's `0`, `1`, `-1`.
    fn from_str(s: &str) -> Result<FlashAttn, String> {
        match s.trim() {
            "off" | "0" => Ok(FlashAttn::Off),
            "on" | "1" => Ok(FlashAttn::On),
            "auto" | "-1" => Ok(FlashAttn::Auto),
            other => Err(format!("'{other}' is not off, on or auto")),
        }
    }
}

/// An element type of the KV cache (`--cache-type-k`, `--cache-type-v`):
/// the types llama.cpp's tools accept for it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum CacheType {
    /// 32-bit float.
    #[serde(rename = "f32")]
    F32,
    /// 16-bit float: llama.cpp's default.
    #[default]
    #[serde(rename = "f16")]
    F16,
    /// bfloat16.
    #[serde(rename = "bf16")]
    Bf16,
    /// 8-bit blocks of 32.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// 4-bit blocks of 32.
    #[serde(rename = "q4_0")]
    Q4_0,
    /// 4-bit blocks of 32 with a minimum.
    #[serde(rename = "q4_1")]
    Q4_1,
    /// 4-bit non-linear blocks of 32.
    #[serde(rename = "iq4_nl")]
    Iq4Nl,
    /// 5-bit blocks of 32.
    #[serde(rename = "q5_0")]
    Q5_0,
    /// 5-bit blocks of 32 with a minimum.
    #[serde(rename = "q5_1")]
    Q5_1,
}

impl CacheType {
    /// Every type, in the order `--help` lists them.
    pub const ALL: [CacheType; 9] = [
        CacheType::F32,
        CacheType::F16,
        CacheType::Bf16,
        CacheType::Q8_0,
        CacheType::Q4_0,
        CacheType::Q4_1,
        CacheType::Iq4Nl,
        CacheType::Q5_0,
        CacheType::Q5_1,
    ];

    /// ggml's name of the type, as llama-bench prints it.
    pub fn name(self) -> &'static str {
        match self {
            CacheType::F32 => "f32",
            CacheType::F16 => "f16",
            CacheType::Bf16 => "bf16",
            CacheType::Q8_0 => "q8_0",
            CacheType::Q4_0 => "q4_0",
            CacheType::Q4_1 => "q4_1",
            CacheType::Iq4Nl => "iq4_nl",
            CacheType::Q5_0 => "q5_0",
            CacheType::Q5_1 => "q5_1",
        }
    }

    /// Bytes of one block and elements per block, as ggml stores the type.
    pub fn block(self) -> (u64, u64) {
        match self {
            CacheType::F32 => (4, 1),
            CacheType::F16 | CacheType::Bf16 => (2, 1),
            CacheType::Q8_0 => (34, 32),
            CacheType::Q4_0 | CacheType::Iq4Nl => (18, 32),
            CacheType::Q4_1 => (20, 32),
            CacheType::Q5_0 => (22, 32),
            CacheType::Q5_1 => (24, 32),
        }
    }

    /// Bytes `elements` values take (whole blocks).
    pub fn bytes(self, elements: u64) -> u64 {
        let (bytes, per_block) = self.block();
        elements.div_ceil(per_block) * bytes
    }

    /// Quantized (block) types, which llama.cpp accepts for V only with
    /// flash attention.
    pub fn is_quantized(self) -> bool {
        self.block().1 > 1
    }
}

impl std::str::FromStr for CacheType {
    type Err = String;

    fn from_str(s: &str) -> Result<CacheType, String> {
        let s = s.trim();
        CacheType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = CacheType::ALL.iter().map(|t| t.name()).collect();
                format!("'{s}' is not a cache type: {}", names.join(", "))
            })
    }
}

/// One cell of the engine grid: everything llama.cpp is given that a spec
/// can vary, one value each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineSettings {
    /// The GGUF file; `None`: the tiny generated model.
    pub model: Option<PathBuf>,
    /// Layers offloaded to a GPU, -1 for all.
    pub n_gpu_layers: i32,
    /// Map the model file instead of reading it.
    pub mmap: bool,
    /// Threads; `None`: the machine's physical cores.
    pub threads: Option<u32>,
    /// Tokens per compute graph (n_ubatch).
    pub ubatch: u32,
    /// Tokens per llama_decode call (n_batch); `None`: the point's whole
    /// prefill, so that it is one call.
    pub n_batch: Option<u32>,
    /// Flash attention.
    pub flash_attn: FlashAttn,
    /// The K cache's element type.
    pub cache_type_k: CacheType,
    /// The V cache's element type.
    pub cache_type_v: CacheType,
    /// Keep the KV cache (and its attention) on the GPU with offloaded layers.
    pub kv_offload: bool,
}

impl EngineSettings {
    /// Why llama.cpp would refuse this cell before it is tried, if it would.
    pub fn invalid(&self) -> Option<String> {
        (self.cache_type_v.is_quantized() && self.flash_attn == FlashAttn::Off).then(|| {
            format!(
                "a quantized V cache ({}) needs flash attention, which is off: llama.cpp refuses it",
                self.cache_type_v.name()
            )
        })
    }

    /// The model and how it is loaded: cells that share these share one load.
    pub fn load_key(&self) -> (Option<&PathBuf>, i32, bool) {
        (self.model.as_ref(), self.n_gpu_layers, self.mmap)
    }

    /// `name=value` of each setting in `names` (the ones that vary in a
    /// grid), for labels.
    pub fn label(&self, names: &[&str]) -> String {
        names
            .iter()
            .map(|name| format!("{name}={}", self.value(name)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One setting's value as text, by its spec key.
    pub fn value(&self, name: &str) -> String {
        match name {
            "model" => self.model.as_ref().map_or("tiny".into(), |m| {
                m.file_name().map_or(m.display().to_string(), |f| {
                    f.to_string_lossy().into_owned()
                })
            }),
            "n_gpu_layers" => self.n_gpu_layers.to_string(),
            "mmap" => u8::from(self.mmap).to_string(),
            "threads" => self.threads.map_or("auto".into(), |t| t.to_string()),
            "ubatch" => self.ubatch.to_string(),
            "n_batch" => self.n_batch.map_or("auto".into(), |b| b.to_string()),
            "flash_attn" => self.flash_attn.name().into(),
            "cache_type_k" => self.cache_type_k.name().into(),
            "cache_type_v" => self.cache_type_v.name().into(),
            "kv_offload" => u8::from(self.kv_offload).to_string(),
            _ => String::new(),
        }
    }
}
