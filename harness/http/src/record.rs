//! What the client records of each request: the record a point counts
//! and `--requests-log` writes, one line per request, and the finished
//! request the load generator hands over.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::client::{Failure, Outcome, RequestTag};

/// Where a request's output token count came from, best first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage.completion_tokens`.
    Usage,
    /// The `--tokenizer` applied to the generated text.
    Tokenizer,
    /// The count of chunks that carried generated text.
    Chunks,
}

impl TokenSource {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Tokenizer => "tokenizer",
            TokenSource::Chunks => "chunks",
        }
    }
}

/// One line of `http --requests-log`: the index of the point in the result
/// file's `points`, then the request's record (`R`: a [`RequestRecord`] or a
/// reference to one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestLogLine<R> {
    /// Index of the request's point in the result file's `points`.
    pub point: usize,
    /// The request's record, its fields beside `point` on the same line.
    #[serde(flatten)]
    pub record: R,
}

/// The JSON Schema of one `--requests-log` line (committed as
/// `schema/requests-log.schema.json`).
pub fn requests_log_schema() -> serde_json::Value {
    crate::schema::files::finish(
        schemars::schema_for!(RequestLogLine<RequestRecord>),
        &crate::schema::files::schema_id("requests-log"),
        "inferbench requests log line",
        false,
    )
}

/// One request as the requests log records it. Times in ms, relative to the
/// point's start unless named otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestRecord {
    /// The request's unit of work in the point (a conversation's turns
    /// share it), within its batch: with `extension` the pair is unique.
    pub index: u64,
    /// The batch added to the point after its first (`--until-precise`, or
    /// a search's probe extended), from 1: its own prompt stream, whose
    /// item `index` the request sent (absent in the first batch).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extension: Option<u8>,
    /// Multi-turn workloads: the request's turn, from 1.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub turn: Option<u32>,
    /// Shared-prefix workloads: the request's group.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix_group: Option<u64>,
    /// Shared-prefix workloads: whether it is its group's first request.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_of_group: Option<bool>,
    /// Open loop: when the request was due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_ms: Option<f64>,
    /// When the request was sent (its last attempt, when it was retried).
    pub sent_ms: f64,
    /// Open loop: from when the request was due to when it was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_lag_ms: Option<f64>,
    /// It waited for a free slot under the in-flight cap.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub late: bool,
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why it failed; absent for a success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Time to first token: from the send to the first content chunk;
    /// absent for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Open loop: from when the request was due to its first content chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_from_scheduled_ms: Option<f64>,
    /// From the send to the last content chunk; absent for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
    /// `(e2e − ttft) / (output_tokens − 1)`; absent for a failure or fewer
    /// than two output tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// Arrival of each content chunk, relative to the send.
    pub content_ms: Vec<f64>,
    /// Chunks parsed, with or without text.
    pub chunks: u64,
    /// Chunks with empty text (vLLM's partial UTF-8 tokens), which time
    /// nothing.
    pub empty_chunks: u64,
    /// Sent again after a kept-alive connection closed before any response.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub retries: u32,
    /// Prompt length the workload asked for, in tokens.
    pub input_tokens_requested: u32,
    /// Prompt tokens the server's usage reports; absent when it sent none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Prompt tokens the server says it served from its prefix cache.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cached_prompt_tokens: Option<u64>,
    /// Output tokens counted, by the best source available; absent for a
    /// failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Where `output_tokens` came from; absent for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens_source: Option<TokenSource>,
    /// Why generation stopped (`length`, `stop`), as the server said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// The response's id as the server sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// llama.cpp's server: its own account of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<serde_json::Value>,
}

impl RequestRecord {
    /// What the request's outcome alone says; its place in the point (index,
    /// tags, times against the point's start), its prompt length asked for
    /// and its measured figures are the accumulator's to fill.
    pub(crate) fn of_outcome(o: &Outcome) -> RequestRecord {
        RequestRecord {
            index: 0,
            extension: None,
            turn: None,
            prefix_group: None,
            first_of_group: None,
            scheduled_ms: None,
            sent_ms: 0.0,
            schedule_lag_ms: None,
            late: false,
            ok: o.failure.is_none(),
            failure: o.failure.clone(),
            ttft_ms: None,
            ttft_from_scheduled_ms: None,
            e2e_ms: None,
            tpot_ms: None,
            content_ms: Vec::new(),
            chunks: o.chunks,
            empty_chunks: o.empty_chunks,
            retries: o.retries,
            input_tokens_requested: 0,
            input_tokens: o.usage.and_then(|u| u.prompt_tokens),
            cached_prompt_tokens: None,
            output_tokens: None,
            output_tokens_source: None,
            finish_reason: o.finish_reason.clone(),
            response_id: o.response_id.clone(),
            server_timings: o.server_timings.clone(),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A finished request as the load generator hands it over.
#[derive(Debug, Clone)]
pub struct Completed {
    /// The request's unit of work in the point (a conversation's turns
    /// share it).
    pub index: u64,
    /// Open loop: when the request was due; `None` in a closed loop and for
    /// a conversation's later turns.
    pub scheduled: Option<Instant>,
    /// It waited for a free slot under the in-flight cap.
    pub late: bool,
    /// Prompt length the workload asked for, in tokens.
    pub input_tokens_requested: u32,
    /// Where the request sits in its workload's structure.
    pub tag: RequestTag,
    /// Everything the client observed of it.
    pub outcome: Outcome,
}
