//! Request traces for replay: one JSON object per line, as the public
//! Mooncake traces are written (`{"timestamp": 27482, "input_length": 6955,
//! "output_length": 52, "hash_ids": [46, 47, ...]}`): the send time in
//! milliseconds from the trace's start, the prompt and output lengths in
//! tokens, and optionally the hash of each 512-token block of the prompt, so
//! that requests sharing a prefix in production share it in the replay.
//! `session_id` (or `conversation_id`) is kept when present.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Tokens per hashed block, as the Mooncake traces hash them.
pub const BLOCK_TOKENS: u32 = 512;

/// Most lines a trace may have: its entries are held in memory.
pub const MAX_ENTRIES: usize = 10_000_000;

/// One request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// Send time from the trace's first request.
    pub at: Duration,
    /// Prompt length in tokens (`input_length`), 1 to 10^7.
    pub input_tokens: u32,
    /// Tokens to generate (`output_length`), 1 to 10^7.
    pub output_tokens: u32,
    /// The hash of each leading [`BLOCK_TOKENS`]-token block of the prompt,
    /// at most one per block: requests sharing a hash share that block's
    /// tokens. Empty when the trace has none.
    pub hash_ids: Vec<u64>,
    /// The line's `session_id` (or `conversation_id`) as text; `None` when
    /// absent.
    pub session: Option<String>,
}

/// A trace read from its file, its requests in send order.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its requests, one per non-blank line, never empty.
    pub entries: Vec<TraceEntry>,
    /// Tokens per hashed block ([`BLOCK_TOKENS`]).
    pub block_tokens: u32,
}

/// A trace file that cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file as a whole: unreadable, without any request, or with more
    /// than [`MAX_ENTRIES`].
    #[error("--workload trace:{}: {message}", path.display())]
    Read {
        /// The trace file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One line: not a trace entry's JSON, a timestamp that is negative or
    /// goes backwards, a length out of range, or more hash ids than blocks.
    #[error("--workload trace:{}: line {line}: {message}", path.display())]
    Line {
        /// The trace file.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

#[derive(Deserialize)]
struct Line {
    timestamp: f64,
    input_length: u64,
    output_length: u64,
    #[serde(default)]
    hash_ids: Vec<u64>,
    #[serde(default, alias = "conversation_id")]
    session_id: Option<serde_json::Value>,
}

impl Trace {
    /// Reads a JSONL trace. Timestamps need not start at zero (the first
    /// one is the origin) but must not go backwards.
    pub fn read(path: &Path) -> Result<Trace, TraceError> {
        let read = |message: String| TraceError::Read {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        let mut entries = Vec::new();
        let mut origin = None;
        let mut previous = f64::NEG_INFINITY;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let bad = |message: String| TraceError::Line {
                path: path.to_path_buf(),
                line: line_no,
                message,
            };
            if raw.trim().is_empty() {
                continue;
            }
            if entries.len() >= MAX_ENTRIES {
                return Err(read(format!("more than {MAX_ENTRIES} requests")));
            }
            let line: Line = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
            if !(line.timestamp.is_finite() && line.timestamp >= 0.0) {
                return Err(bad(format!(
                    "timestamp {} is not a time in milliseconds",
                    line.timestamp
                )));
            }
            if line.timestamp < previous {
                return Err(bad(format!(
                    "timestamp {} comes before the line above's {previous}",
                    line.timestamp
                )));
            }
            previous = line.timestamp;
            let tokens = |v: u64, what: &str| {
                u32::try_from(v)
                    .ok()
                    .filter(|n| (1..=10_000_000).contains(n))
                    .ok_or_else(|| bad(format!("{what} {v} is not a token count from 1 to 10^7")))
            };
            let input_tokens = tokens(line.input_length, "input_length")?;
            let output_tokens = tokens(line.output_length, "output_length")?;
            let blocks = u64::from(input_tokens).div_ceil(u64::from(BLOCK_TOKENS));
            if line.hash_ids.len() as u64 > blocks {
                return Err(bad(format!(
                    "{} hash_ids for {input_tokens} tokens: at most one per {BLOCK_TOKENS}-token block",
                    line.hash_ids.len()
                )));
            }
            let origin = *origin.get_or_insert(line.timestamp);
            entries.push(TraceEntry {
                at: Duration::from_secs_f64((line.timestamp - origin) / 1e3),
                input_tokens,
                output_tokens,
                hash_ids: line.hash_ids,
                session: line.session_id.map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }),
            });
        }
        if entries.is_empty() {
            return Err(read("no request in the file".into()));
        }
        Ok(Trace {
            path: path.to_path_buf(),
            entries,
            block_tokens: BLOCK_TOKENS,
        })
    }

    /// Send times at `speed` (2: twice as fast).
    pub fn schedule(&self, speed: f64) -> Vec<Duration> {
        self.entries
            .iter()
            .map(|e| Duration::from_secs_f64(e.at.as_secs_f64() / speed))
            .collect()
    }

    /// The trace's length in time at `speed`.
    pub fn span(&self, speed: f64) -> Duration {
        self.entries.last().map_or(Duration::ZERO, |e| {
            Duration::from_secs_f64(e.at.as_secs_f64() / speed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_mooncake_lines_from_their_first_timestamp() {
        let (_d, path) = write(
            "{\"timestamp\": 1000, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [1, 2]}\n\
             \n{\"timestamp\": 1250, \"input_length\": 10, \"output_length\": 3, \"session_id\": 7}\n",
        );
        let t = Trace::read(&path).unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0].at, Duration::ZERO);
        assert_eq!(t.entries[1].at, Duration::from_millis(250));
        assert_eq!(t.entries[0].hash_ids, vec![1, 2]);
        assert_eq!(t.entries[1].session.as_deref(), Some("7"));
        assert_eq!(t.schedule(2.0)[1], Duration::from_millis(125));
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, needle) in [
            ("{\"timestamp\": 5}\n", "line 1"),
            (
                "{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1}\n{\"timestamp\": 4, \"input_length\": 1, \"output_length\": 1}\n",
                "line 2: timestamp 4 comes before",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 1}\n",
                "input_length 0",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [1, 2]}\n",
                "2 hash_ids for 10 tokens",
            ),
            ("\n", "no request"),
        ] {
            let (_d, path) = write(text);
            let e = Trace::read(&path).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
