//! Token counting with the server's own tokenizer (`tokenizer.json`), for
//! exact prompt lengths and for output counts when a server sends no usage.

use std::path::{Path, PathBuf};

/// A `--tokenizer` file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--tokenizer {path}: {message}")]
pub struct TokenizerError {
    /// The file as given.
    pub path: PathBuf,
    /// Why it cannot be used.
    pub message: String,
}

/// The server's tokenizer (`--tokenizer`), loaded from its `tokenizer.json`.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .finish()
    }
}

impl Tokenizer {
    /// Loads a Hugging Face `tokenizer.json`; an error names the file and
    /// says whether it is missing or not a tokenizer.
    pub fn from_file(path: &Path) -> Result<Tokenizer, TokenizerError> {
        if !path.is_file() {
            return Err(TokenizerError {
                path: path.to_path_buf(),
                message: "no such file".into(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| TokenizerError {
            path: path.to_path_buf(),
            message: format!("not a tokenizer.json: {e}"),
        })?;
        Ok(Tokenizer {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens of `text` alone, without the special tokens (BOS) a server
    /// adds around a prompt.
    pub fn count(&self, text: &str) -> usize {
        self.inner
            .encode(text, false)
            .map(|e| e.len())
            // A text the tokenizer cannot encode counts as nothing rather
            // than stopping a run; usage or chunk counts still apply.
            .unwrap_or(0)
    }
}
