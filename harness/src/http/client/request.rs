//! One request as the runners hand it to the client, and what came of it.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::failure::Failure;
use crate::http::chunk::Usage;

/// What a request asks the server to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    /// Token ids, sent as `"prompt": [ids]` (completions only): the server
    /// evaluates exactly these, with no tokenizer in between.
    TokenIds(Vec<i32>),
    /// A conversation so far, oldest message first (chat only): a later
    /// turn of a multi-turn workload carries the whole history.
    Chat(Vec<ChatMessage>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Where a request sits in a workload's structure, for the figures that
/// split a point by it. Default: an independent request, meant to share
/// only the BOS with any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTag {
    /// Multi-turn workloads: its turn, from 1, and whether it is its
    /// conversation's last.
    pub turn: Option<u32>,
    pub last_turn: bool,
    /// Shared-prefix workloads: its group, and whether it is the group's
    /// first request.
    pub prefix_group: Option<u64>,
    pub first_of_group: bool,
    /// Prompt tokens the workload means this request to share with earlier
    /// ones (beyond this, a server's cached tokens mean the run repeated
    /// itself); `None`: any share is intended (a conversation's history, a
    /// trace's shared blocks).
    pub intended_shared: Option<u64>,
}

impl Default for RequestTag {
    fn default() -> Self {
        RequestTag {
            turn: None,
            last_turn: false,
            prefix_group: None,
            first_of_group: false,
            intended_shared: Some(crate::http::point::INTENDED_SHARED_PREFIX),
        }
    }
}

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub prompt: Prompt,
    pub max_tokens: u32,
    /// Prompt length the workload asked for (the server's usage says what it saw).
    pub input_tokens_requested: u32,
    pub tag: RequestTag,
}

/// Everything observed of one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub sent: Instant,
    pub headers_at: Option<Instant>,
    /// Arrival of every chunk that carried generated text.
    pub content_times: Vec<Instant>,
    pub chunks: u64,
    pub empty_chunks: u64,
    pub text: Option<String>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub server_timings: Option<Value>,
    pub system_fingerprint: Option<String>,
    pub response_id: Option<String>,
    /// Times the request was sent again because a kept-alive connection
    /// closed before any response (0 or 1).
    pub retries: u32,
    pub failure: Option<Failure>,
}

impl Outcome {
    /// Nothing observed yet of a request sent at `sent`: room for
    /// `expected_chunks` arrivals, and the text kept when `keep_text`.
    pub fn new(sent: Instant, expected_chunks: usize, keep_text: bool) -> Outcome {
        Outcome {
            sent,
            headers_at: None,
            content_times: Vec::with_capacity(expected_chunks),
            chunks: 0,
            empty_chunks: 0,
            text: keep_text.then(String::new),
            usage: None,
            finish_reason: None,
            server_timings: None,
            system_fingerprint: None,
            response_id: None,
            retries: 0,
            failure: None,
        }
    }
}
