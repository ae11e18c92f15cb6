//! Reading a GGUF file's header, metadata and tensor table, every length
//! and count checked against the file before it is trusted, and the
//! metadata llama.cpp would trip on refused.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{GgufError, MetaValue};

pub(super) struct Cursor<'a, R> {
    pub(super) reader: R,
    pub(super) path: &'a Path,
    pub(super) file_size: u64,
    pub(super) position: u64,
}

impl<'a, R: Read> Cursor<'a, R> {
    pub(super) fn malformed(&self, what: impl Into<String>) -> GgufError {
        GgufError::Malformed {
            path: self.path.to_path_buf(),
            what: what.into(),
        }
    }

    pub(super) fn remaining(&self) -> u64 {
        self.file_size.saturating_sub(self.position)
    }

    pub(super) fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.reader.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.malformed(format!(
                    "file ends at byte {} while reading {what}",
                    self.file_size
                ))
            } else {
                GgufError::Io {
                    path: self.path.to_path_buf(),
                    cause: e,
                }
            }
        })?;
        self.position += N as u64;
        Ok(buf)
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// A length prefix, refused when the rest of the file cannot hold it: a
    /// corrupt length must never turn into a huge allocation.
    pub(super) fn length(&mut self, what: &str, min_element_bytes: u64) -> Result<u64, GgufError> {
        let len = self.u64(what)?;
        if len.saturating_mul(min_element_bytes) > self.remaining() {
            return Err(self.malformed(format!(
                "{what} declares {len} elements at byte {}, more than the {} bytes left",
                self.position - 8,
                self.remaining()
            )));
        }
        Ok(len)
    }

    pub(super) fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len = self.length(what, 1)?;
        let mut buf = vec![0u8; len as usize];
        self.reader
            .read_exact(&mut buf)
            .map_err(|_| self.malformed(format!("file ends inside {what}")))?;
        self.position += len;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    pub(super) fn value(
        &mut self,
        type_id: u32,
        key: &str,
        depth: u32,
    ) -> Result<MetaValue, GgufError> {
        Ok(match type_id {
            0 => MetaValue::U8(self.bytes::<1>(key)?[0]),
            1 => MetaValue::I8(self.bytes::<1>(key)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.bytes(key)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.bytes(key)?)),
            4 => MetaValue::U32(self.u32(key)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.bytes(key)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.bytes(key)?)),
            7 => match self.bytes::<1>(key)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(self.malformed(format!("metadata '{key}': bool byte {b}"))),
            },
            8 => MetaValue::String(self.string(key)?),
            9 => {
                if depth > 0 {
                    return Err(self.malformed(format!("metadata '{key}': nested arrays")));
                }
                let element_type = self.u32(key)?;
                let len = self.length(key, 1)?;
                let mut items = Vec::with_capacity(len.min(1 << 20) as usize);
                for _ in 0..len {
                    items.push(self.value(element_type, key, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64(key)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.bytes(key)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.bytes(key)?)),
            other => {
                return Err(self.malformed(format!("metadata '{key}': unknown value type {other}")))
            }
        })
    }
}

/// What llama.cpp's vocabulary loader (llama-vocab.cpp) takes on trust and
/// aborts on, or reads out of bounds: a token list that is not strings or
/// repeats a token (`GGML_ASSERT(id_to_token.size() == token_to_id.size())`),
/// and scores or token types it reads as one f32 or i32 per token whatever
/// the file declares.
pub(super) fn check_vocabulary(metadata: &BTreeMap<String, MetaValue>) -> Result<(), String> {
    let Some(tokens) = metadata.get("tokenizer.ggml.tokens") else {
        return Ok(());
    };
    let tokens = tokens
        .as_array()
        .ok_or("tokenizer.ggml.tokens is not an array")?;
    let mut seen = std::collections::HashSet::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let token = token
            .as_str()
            .ok_or_else(|| format!("tokenizer.ggml.tokens[{i}] is not a string"))?;
        // What llama.cpp keys its token map by: the string as a C string (up
        // to its first NUL), an empty one renamed "[EMPTY_i]".
        let key = match token.split('\0').next().unwrap_or_default() {
            "" => format!("[EMPTY_{i}]"),
            text => text.to_string(),
        };
        if !seen.insert(key) {
            return Err(format!(
                "tokenizer.ggml.tokens[{i}] ({token:?}) repeats an earlier token (llama.cpp aborts on such a vocabulary)"
            ));
        }
    }
    let per_token = |key: &str, what: &str, fits: fn(&MetaValue) -> bool| {
        match metadata.get(key) {
        None => Ok(()),
        Some(MetaValue::Array(items)) if items.len() >= tokens.len() && items.iter().all(fits) => {
            Ok(())
        }
        Some(_) => Err(format!(
            "{key} must be an array of at least {} {what}, one per token (llama.cpp reads it as such)",
            tokens.len()
        )),
    }
    };
    per_token("tokenizer.ggml.scores", "f32", |v| {
        matches!(v, MetaValue::F32(_))
    })?;
    per_token("tokenizer.ggml.token_type", "i32", |v| {
        matches!(v, MetaValue::I32(_))
    })
}

/// The architecture-independent hyperparameters llama.cpp's model loader
/// (llama-model.cpp, `load_hparams`) asserts on, aborting the process.
pub(super) fn check_hyperparameters(metadata: &BTreeMap<String, MetaValue>) -> Result<(), String> {
    /// llama.cpp's LLAMA_MAX_LAYERS and LLAMA_MAX_EXPERTS.
    const MAX_LAYERS: u64 = 512;
    const MAX_EXPERTS: u64 = 1024;
    let Some(arch) = metadata
        .get("general.architecture")
        .and_then(MetaValue::as_str)
    else {
        return Ok(());
    };
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let number = |suffix: &str| -> Result<Option<u64>, String> {
        match metadata.get(&key(suffix)) {
            None => Ok(None),
            Some(MetaValue::Array(_)) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{} is not a non-negative integer", key(suffix))),
        }
    };
    if let Some(layers) = number("block_count")? {
        if !(1..=MAX_LAYERS).contains(&layers) {
            return Err(format!(
                "{} is {layers}; llama.cpp takes 1 to {MAX_LAYERS} layers",
                key("block_count")
            ));
        }
        if let Some(nextn) = number("nextn_predict_layers")? {
            if nextn > layers {
                return Err(format!(
                    "{} ({nextn}) exceeds {} ({layers})",
                    key("nextn_predict_layers"),
                    key("block_count")
                ));
            }
        }
    }
    let experts = number("expert_count")?.unwrap_or(0);
    if experts > MAX_EXPERTS {
        return Err(format!(
            "{} is {experts}; llama.cpp takes at most {MAX_EXPERTS}",
            key("expert_count")
        ));
    }
    if let Some(used) = number("expert_used_count")? {
        if used > experts || (experts > 0 && used == 0) {
            return Err(format!(
                "{} ({used}) must be 1 to {} ({experts})",
                key("expert_used_count"),
                key("expert_count")
            ));
        }
    }
    Ok(())
}
