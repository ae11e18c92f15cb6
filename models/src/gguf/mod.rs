//! A GGUF reader that validates a file completely: header, metadata, tensor
//! table, and that every tensor's data lies inside the file.
//!
//! candle-core writes our tiny model, but its reader knows only the tensor
//! types candle can compute with; llama.cpp accepts many more (the IQ and
//! FP4 families are common in user files), so validation keeps its own table
//! of every type the vendored ggml knows.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;

mod cost;
mod read;

pub use cost::{DecodeTraffic, PrefillCompute};
use read::{check_hyperparameters, check_vocabulary, Cursor};

const GGUF_MAGIC: [u8; 4] = *b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;
/// ggml's element and byte counts are int64_t: larger ones wrap there.
const MAX_COUNT: u64 = i64::MAX as u64;
/// Tensor-table entries reserved ahead (the largest models have a few
/// thousand); more grow as they are read.
const MAX_RESERVED_TENSORS: u64 = 1 << 14;

/// Why a file is not a GGUF file llama.cpp can safely be given.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened, sized or read (other than ending early).
    #[error("{path}: cannot read: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file does not start with `GGUF`.
    #[error("{path}: not a GGUF file (bad magic {found:02x?}, expected \"GGUF\")")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Its first four bytes.
        found: [u8; 4],
    },
    /// The header declares a GGUF version other than 2 or 3.
    #[error("{path}: GGUF version {version} is not supported (llama.cpp reads versions 2 and 3)")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version the header declares.
        version: u32,
    },
    /// The file ends early, or breaks a rule of GGUF or one llama.cpp
    /// takes on trust (counts, duplicates, dims, alignment, vocabulary,
    /// hyperparameters).
    #[error("{path}: truncated or corrupt GGUF: {what}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        what: String,
    },
    /// A tensor's type id is none the vendored ggml knows.
    #[error("{path}: tensor '{tensor}' has unsupported tensor type id {type_id}")]
    UnsupportedTensorType {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The type id it declares.
        type_id: u32,
    },
    /// A tensor's data would extend past the end of the file.
    #[error("{path}: truncated: tensor '{tensor}' needs bytes up to {needed_end}, but the file is {file_size} bytes")]
    TruncatedTensorData {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// Byte offset in the file where its data would end (`u64::MAX` on overflow).
        needed_end: u64,
        /// Size of the file, in bytes.
        file_size: u64,
    },
    /// A metadata key the reader needs (`general.architecture`) is absent or
    /// of the wrong type.
    #[error("{path}: metadata key '{key}' is required but missing")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
}

/// A ggml tensor type as stored in GGUF files, with its block geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GgmlType {
    /// ggml's `enum ggml_type` value, as GGUF stores it.
    pub id: u32,
    /// ggml's name for the type, e.g. "Q4_K".
    pub name: &'static str,
    /// Elements per block.
    pub block_size: u64,
    /// Bytes per block.
    pub block_bytes: u64,
}

impl GgmlType {
    /// The table of the vendored ggml (ggml.h `enum ggml_type`, sizes from
    /// `ggml-common.h`). Ids missing here were removed from ggml.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        let (name, block_size, block_bytes) = match id {
            0 => ("F32", 1, 4),
            1 => ("F16", 1, 2),
            2 => ("Q4_0", 32, 18),
            3 => ("Q4_1", 32, 20),
            6 => ("Q5_0", 32, 22),
            7 => ("Q5_1", 32, 24),
            8 => ("Q8_0", 32, 34),
            9 => ("Q8_1", 32, 36),
            10 => ("Q2_K", 256, 84),
            11 => ("Q3_K", 256, 110),
            12 => ("Q4_K", 256, 144),
            13 => ("Q5_K", 256, 176),
            14 => ("Q6_K", 256, 210),
            15 => ("Q8_K", 256, 292),
            16 => ("IQ2_XXS", 256, 66),
            17 => ("IQ2_XS", 256, 74),
            18 => ("IQ3_XXS", 256, 98),
            19 => ("IQ1_S", 256, 50),
            20 => ("IQ4_NL", 32, 18),
            21 => ("IQ3_S", 256, 110),
            22 => ("IQ2_S", 256, 82),
            23 => ("IQ4_XS", 256, 136),
            24 => ("I8", 1, 1),
            25 => ("I16", 1, 2),
            26 => ("I32", 1, 4),
            27 => ("I64", 1, 8),
            28 => ("F64", 1, 8),
            29 => ("IQ1_M", 256, 56),
            30 => ("BF16", 1, 2),
            34 => ("TQ1_0", 256, 54),
            35 => ("TQ2_0", 256, 66),
            39 => ("MXFP4", 32, 17),
            40 => ("NVFP4", 64, 36),
            41 => ("Q1_0", 128, 18),
            42 => ("Q2_0", 64, 18),
            _ => return None,
        };
        Some(GgmlType {
            id,
            name,
            block_size,
            block_bytes,
        })
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A metadata value. Arrays keep their elements so that vocabularies can be
/// checked; strings are decoded lossily, as llama.cpp tolerates bad UTF-8.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// GGUF value type 0: `uint8`.
    U8(u8),
    /// GGUF value type 1: `int8`.
    I8(i8),
    /// GGUF value type 2: `uint16`.
    U16(u16),
    /// GGUF value type 3: `int16`.
    I16(i16),
    /// GGUF value type 4: `uint32`.
    U32(u32),
    /// GGUF value type 5: `int32`.
    I32(i32),
    /// GGUF value type 6: `float32`.
    F32(f32),
    /// GGUF value type 7: `bool`, one byte that must be 0 or 1.
    Bool(bool),
    /// GGUF value type 8: a length-prefixed string, decoded lossily as UTF-8.
    String(String),
    /// GGUF value type 9: an array of one element type (arrays do not nest).
    Array(Vec<MetaValue>),
    /// GGUF value type 10: `uint64`.
    U64(u64),
    /// GGUF value type 11: `int64`.
    I64(i64),
    /// GGUF value type 12: `float64`.
    F64(f64),
}

impl MetaValue {
    /// The value of any integer type, when it is non-negative; `None` for
    /// negative integers and every other type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The string, when the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, when the value is an array.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One entry of a GGUF file's tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    /// The type its data is stored in.
    pub ggml_type: GgmlType,
    /// Relative to the start of the tensor data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Saturating: a validated tensor's count never overflows
    /// ([`GgufFile::open`] refuses those), an unvalidated one cannot wrap.
    pub fn elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Bytes of the tensor's data (saturating, as [`Self::elements`]).
    pub fn byte_size(&self) -> u64 {
        (self.elements() / self.ggml_type.block_size).saturating_mul(self.ggml_type.block_bytes)
    }
}

/// A GGUF file whose header, metadata and tensor table were read and checked.
#[derive(Debug, Clone)]
pub struct GgufFile {
    /// The file read.
    pub path: PathBuf,
    /// The GGUF format version (2 or 3).
    pub version: u32,
    /// Size of the file, in bytes.
    pub file_size: u64,
    /// Every metadata key with its value.
    pub metadata: BTreeMap<String, MetaValue>,
    /// The tensor table, in file order.
    pub tensors: Vec<TensorInfo>,
    /// Byte offset in the file of the tensor data section (the end of the
    /// tensor table, aligned to `general.alignment`, default 32); tensor
    /// offsets are relative to it.
    pub data_offset: u64,
}

/// What a person (and a result file's provenance) wants to know of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The file's path, as given.
    pub path: String,
    /// `general.name`; `None` when absent.
    pub name: Option<String>,
    /// `general.architecture` (e.g. "llama", "gemma3").
    pub architecture: String,
    /// Parameters: the elements of every tensor, summed.
    pub parameters: u64,
    /// `{architecture}.block_count`; `None` when absent.
    pub layers: Option<u64>,
    /// Training context length in tokens, `{architecture}.context_length`; `None` when absent.
    pub context_length: Option<u64>,
    /// `{architecture}.embedding_length`; `None` when absent.
    pub embedding_length: Option<u64>,
    /// Entries of `tokenizer.ggml.tokens`; `None` without a vocabulary.
    pub vocab_size: Option<u64>,
    /// From `general.file_type` when present, else the type holding the most bytes.
    pub quantization: String,
    /// Tensor type name to tensor count.
    pub tensor_types: BTreeMap<String, u64>,
    /// Tensors in the tensor table.
    pub tensor_count: u64,
    /// Size of the file, in bytes.
    pub file_size_bytes: u64,
    /// The GGUF format version (2 or 3).
    pub gguf_version: u32,
}

impl GgufFile {
    /// Reads and validates the file at `path`. Only the header and tensor
    /// table are read; tensor data is checked to lie within the file.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            cause: source,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_size = file.seek(SeekFrom::End(0)).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut cursor = Cursor {
            reader: BufReader::with_capacity(1 << 16, file),
            path,
            file_size,
            position: 0,
        };

        if file_size < 4 {
            return Err(
                cursor.malformed(format!("{file_size} bytes is too short for a GGUF header"))
            );
        }
        let magic: [u8; 4] = cursor.bytes("magic")?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic {
                path: path.to_path_buf(),
                found: magic,
            });
        }
        let version = cursor.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            });
        }
        // Minimum on-disk sizes: a tensor entry is at least 8 (name length)
        // + 4 (dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes, a metadata
        // entry at least 8 + 4 + 1.
        let tensor_count = cursor.length("tensor count", 32)?;
        let kv_count = cursor.length("metadata count", 13)?;

        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = cursor.string("metadata key")?;
            let type_id = cursor.u32(&key)?;
            let value = cursor.value(type_id, &key, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(cursor.malformed(format!("metadata key '{key}' appears twice")));
            }
        }

        check_vocabulary(&metadata).map_err(|what| cursor.malformed(what))?;
        check_hyperparameters(&metadata).map_err(|what| cursor.malformed(what))?;

        // The count is bounded by the bytes left, but a large file could
        // still declare millions: reserve only what a real model needs.
        let mut tensors = Vec::with_capacity(tensor_count.min(MAX_RESERVED_TENSORS) as usize);
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..tensor_count {
            let name = cursor.string("tensor name")?;
            if !names.insert(name.clone()) {
                return Err(cursor.malformed(format!("tensor '{name}' appears twice")));
            }
            let n_dims = cursor.u32(&name)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(cursor.malformed(format!("tensor '{name}' has {n_dims} dimensions")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(cursor.u64(&name)?);
            }
            let type_id = cursor.u32(&name)?;
            let ggml_type =
                GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnsupportedTensorType {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    type_id,
                })?;
            let offset = cursor.u64(&name)?;
            // ggml counts elements and bytes in int64_t and size_t: both
            // must fit, or its own arithmetic wraps.
            let elements = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n <= MAX_COUNT)
                .ok_or_else(|| {
                    cursor.malformed(format!("tensor '{name}': dims {dims:?} overflow"))
                })?;
            (elements / ggml_type.block_size)
                .checked_mul(ggml_type.block_bytes)
                .filter(|&n| n <= MAX_COUNT)
                .ok_or_else(|| {
                    cursor.malformed(format!(
                        "tensor '{name}': dims {dims:?} of {ggml_type} overflow a byte count"
                    ))
                })?;
            if dims[0] % ggml_type.block_size != 0 {
                return Err(cursor.malformed(format!(
                    "tensor '{name}': row of {} elements is not a multiple of the {ggml_type} block size {}",
                    dims[0], ggml_type.block_size
                )));
            }
            if elements == 0 {
                return Err(cursor.malformed(format!("tensor '{name}' has no elements")));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
            });
        }

        let alignment = match metadata
            .get("general.alignment")
            .and_then(MetaValue::as_u64)
        {
            Some(a) if a.is_power_of_two() => a,
            Some(a) => {
                return Err(cursor.malformed(format!("general.alignment {a} is not a power of two")))
            }
            None => DEFAULT_ALIGNMENT,
        };
        let data_offset = cursor
            .position
            .div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or_else(|| cursor.malformed(format!("general.alignment {alignment} overflows")))?;
        for t in &tensors {
            if t.offset % alignment != 0 {
                return Err(cursor.malformed(format!(
                    "tensor '{}': offset {} is not aligned to {alignment}",
                    t.name, t.offset
                )));
            }
            let needed_end = data_offset
                .checked_add(t.offset)
                .and_then(|start| start.checked_add(t.byte_size()))
                .unwrap_or(u64::MAX);
            if needed_end > file_size {
                return Err(GgufError::TruncatedTensorData {
                    path: path.to_path_buf(),
                    tensor: t.name.clone(),
                    needed_end,
                    file_size,
                });
            }
        }

        Ok(GgufFile {
            path: path.to_path_buf(),
            version,
            file_size,
            metadata,
            tensors,
            data_offset,
        })
    }

    /// The metadata value of `key`, if the file has it.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// `general.architecture` (e.g. "llama"); [`GgufError::MissingKey`] when
    /// it is absent or not a string.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.get("general.architecture")
            .and_then(MetaValue::as_str)
            .ok_or_else(|| GgufError::MissingKey {
                path: self.path.clone(),
                key: "general.architecture".into(),
            })
    }

    /// An architecture-scoped integer such as `llama.block_count`.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let arch = self.architecture().ok()?;
        self.get(&format!("{arch}.{suffix}"))
            .and_then(MetaValue::as_u64)
    }

    /// What one decode step must read from memory, from the tensor table
    /// and the attention shape (see [`DecodeTraffic`]).
    /// Parameters: the elements of every tensor, summed.
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::elements).sum()
    }

    /// The model's summary; fails with [`GgufError::MissingKey`] without
    /// `general.architecture`.
    pub fn summary(&self) -> Result<ModelSummary, GgufError> {
        let architecture = self.architecture()?.to_string();
        let mut tensor_types = BTreeMap::new();
        let mut bytes_by_type: BTreeMap<&str, u64> = BTreeMap::new();
        for t in &self.tensors {
            *tensor_types
                .entry(t.ggml_type.name.to_string())
                .or_insert(0) += 1;
            *bytes_by_type.entry(t.ggml_type.name).or_insert(0) += t.byte_size();
        }
        let dominant = bytes_by_type
            .iter()
            .max_by_key(|(_, bytes)| **bytes)
            .map(|(name, _)| name.to_string())
            .unwrap_or_default();
        let quantization = self
            .get("general.file_type")
            .and_then(MetaValue::as_u64)
            .and_then(file_type_name)
            .map(str::to_string)
            .unwrap_or(dominant);
        Ok(ModelSummary {
            path: self.path.display().to_string(),
            name: self
                .get("general.name")
                .and_then(MetaValue::as_str)
                .map(str::to_string),
            layers: self.arch_u64("block_count"),
            context_length: self.arch_u64("context_length"),
            embedding_length: self.arch_u64("embedding_length"),
            vocab_size: self
                .get("tokenizer.ggml.tokens")
                .and_then(MetaValue::as_array)
                .map(|a| a.len() as u64),
            parameters: self.parameter_count(),
            quantization,
            tensor_count: self.tensors.len() as u64,
            tensor_types,
            file_size_bytes: self.file_size,
            gguf_version: self.version,
            architecture,
        })
    }
}

/// llama.cpp's `enum llama_ftype` names, as `general.file_type` stores them.
pub fn file_type_name(file_type: u64) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<u64>| v.map_or_else(|| "unknown".to_string(), |v| v.to_string());
        writeln!(f, "file:           {}", self.path)?;
        if let Some(name) = &self.name {
            writeln!(f, "name:           {name}")?;
        }
        writeln!(f, "architecture:   {}", self.architecture)?;
        writeln!(
            f,
            "parameters:     {} ({})",
            self.parameters,
            human_count(self.parameters)
        )?;
        writeln!(f, "layers:         {}", opt(self.layers))?;
        writeln!(f, "context length: {}", opt(self.context_length))?;
        writeln!(f, "embedding:      {}", opt(self.embedding_length))?;
        writeln!(f, "vocabulary:     {}", opt(self.vocab_size))?;
        writeln!(f, "quantization:   {}", self.quantization)?;
        let types: Vec<String> = self
            .tensor_types
            .iter()
            .map(|(t, n)| format!("{t} x{n}"))
            .collect();
        writeln!(
            f,
            "tensors:        {} ({})",
            self.tensor_count,
            types.join(", ")
        )?;
        writeln!(
            f,
            "file size:      {} bytes ({:.1} MiB)",
            self.file_size_bytes,
            self.file_size_bytes as f64 / (1024.0 * 1024.0)
        )?;
        write!(f, "gguf version:   {}", self.gguf_version)
    }
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}
