//! One request as the runners hand it to the client, and what came of it.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::failure::Failure;
use crate::chunk::Usage;

/// Prompt tokens a synthetic workload shares between requests on purpose:
/// the BOS token every prompt starts with. More than this from a server's
/// cache means the workload repeated itself.
pub const INTENDED_SHARED_PREFIX: u64 = 1;

/// What a request asks the server to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Text, sent as `"prompt"` (completions) or as one user message (chat).
    Text(String),
    /// Token ids, sent as `"prompt": [ids]` (completions only): the server
    /// evaluates exactly these, with no tokenizer in between.
    TokenIds(Vec<i32>),
    /// A conversation so far, oldest message first (chat only): a later
    /// turn of a multi-turn workload carries the whole history.
    Chat(Vec<ChatMessage>),
}

/// One message of a chat conversation, as the chat endpoint takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it: `user`, or `assistant` for the server's own replies.
    pub role: String,
    /// The message's text.
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
    /// Whether it is its conversation's last turn (false outside
    /// multi-turn workloads).
    pub last_turn: bool,
    /// Shared-prefix workloads: its group, and whether it is the group's
    /// first request.
    pub prefix_group: Option<u64>,
    /// Whether it is its prefix group's first request (false outside
    /// shared-prefix workloads).
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
            intended_shared: Some(INTENDED_SHARED_PREFIX),
        }
    }
}

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    /// What the server is to continue.
    pub prompt: Prompt,
    /// Tokens to generate at most (`max_tokens`; also `min_tokens` with
    /// `ignore_eos`).
    pub max_tokens: u32,
    /// Prompt length the workload asked for (the server's usage says what it saw).
    pub input_tokens_requested: u32,
    /// Where the request sits in its workload's structure.
    pub tag: RequestTag,
}

/// Everything observed of one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When the request went out (restarted when it is sent again).
    pub sent: Instant,
    /// When the response headers arrived; `None` when none did.
    pub headers_at: Option<Instant>,
    /// Arrival of every chunk that carried generated text.
    pub content_times: Vec<Instant>,
    /// Chunks parsed, with or without text (`[DONE]` not counted).
    pub chunks: u64,
    /// Chunks whose text was empty (vLLM's partial UTF-8 tokens): they
    /// carry no content and time nothing.
    pub empty_chunks: u64,
    /// The generated text, when the client keeps it (`keep_text`); `None`
    /// otherwise.
    pub text: Option<String>,
    /// The server's token counts, from the last chunk that carried them;
    /// `None` when it sent none (llama-cpp-python while streaming).
    pub usage: Option<Usage>,
    /// Why generation stopped (`length`, `stop`), as the server said.
    pub finish_reason: Option<String>,
    /// llama-server's own `timings` object, as it sent it; `None` from
    /// other servers.
    pub server_timings: Option<Value>,
    /// The server's build, from the first chunk that names one.
    pub system_fingerprint: Option<String>,
    /// The response's id (`cmpl-…`), from the first chunk that has one.
    pub response_id: Option<String>,
    /// Times the request was sent again because a kept-alive connection
    /// closed before any response (0 or 1).
    pub retries: u32,
    /// Why the request failed; `None` for a success.
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
