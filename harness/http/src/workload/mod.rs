//! What the HTTP mode sends: prompt and output lengths, fixed, from a named
//! distribution, or from a ShareGPT file; prompts as text or as token ids
//! drawn from a model's vocabulary exactly as the in-process mode draws them;
//! each request reproducible from its prompt stream and index alone, whatever
//! order requests are made in ([`inferbench_core::workload`]).

use std::path::PathBuf;

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::client::{ChatMessage, Prompt, RequestSpec, RequestTag};
use super::tokenizer::Tokenizer;
pub use super::trace::{Trace, TraceError};

mod source;

use crate::engine::PromptVocab;
use inferbench_core::workload::{synthetic_prompt, NoOrdinaryTokens, PromptStream};
use source::*;

/// A token-length distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Length {
    /// Always the same length.
    Fixed {
        /// The length in tokens.
        tokens: u32,
    },
    /// Lognormal with this median and log-space sigma, clipped to [min, max].
    LogNormal {
        /// The median length in tokens.
        median: f64,
        /// The standard deviation of the length's logarithm.
        sigma: f64,
        /// The shortest length drawn, in tokens.
        min: u32,
        /// The longest length drawn, in tokens.
        max: u32,
    },
}

impl Length {
    #[expect(
        clippy::expect_used,
        reason = "the presets' medians and sigmas are positive constants"
    )]
    fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
        match *self {
            Length::Fixed { tokens } => tokens,
            Length::LogNormal {
                median,
                sigma,
                min,
                max,
            } => {
                let d = LogNormal::new(median.ln(), sigma).expect("valid lognormal");
                (d.sample(rng).round() as u32).clamp(min, max)
            }
        }
    }

    /// A lognormal around `median` with the spread seen in real traffic,
    /// clipped to an eighth and four times the median.
    fn around(median: u32) -> Length {
        Length::LogNormal {
            median: f64::from(median),
            sigma: 0.6,
            min: (median / 8).max(1),
            max: median * 4,
        }
    }
}

/// One ShareGPT conversation reduced to what a request needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The human turn's text, sent as the prompt.
    pub prompt: String,
    /// Its length in tokens, estimated at four characters a token.
    pub input_tokens_estimate: u32,
    /// The reply's length, estimated the same way: the request's output
    /// length.
    pub output_tokens: u32,
}

/// What to send, and optionally the server's tokenizer to make prompt
/// lengths exact.
#[derive(Debug, Clone)]
pub struct Workload {
    source: Source,
    tokenizer: Option<Arc<Tokenizer>>,
    token_ids: Option<Arc<PromptVocab>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Lengths {
        name: String,
        input: Length,
        output: Length,
    },
    ShareGpt {
        path: PathBuf,
        conversations: Vec<Conversation>,
    },
    /// `shared-prefix:G:R:P:S:OUT`: groups of R requests whose prompts
    /// share their first P tokens and end in S distinct ones.
    SharedPrefix(SharedPrefix),
    /// Conversations of several turns, each turn carrying the history.
    MultiTurn {
        name: String,
        conversations: MultiTurnSource,
    },
    /// A request trace replayed on its own timestamps.
    Trace(Arc<Trace>),
}

/// G groups (then G more, as long as requests are asked for), each of R
/// requests sharing the first P prompt tokens, with S distinct ones after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedPrefix {
    /// Groups whose requests take turns (G); after G × R requests, G new
    /// groups begin.
    pub groups: u32,
    /// Requests per group (R).
    pub per_group: u32,
    /// Tokens a group's prompts share from their start, a token-id prompt's
    /// BOS among them (P).
    pub prefix_tokens: u32,
    /// Tokens after the prefix, each request's own (S).
    pub suffix_tokens: u32,
    /// Tokens each request generates at most (OUT).
    pub output_tokens: u32,
}

impl SharedPrefix {
    /// Request `index`'s group and place in it. The groups take turns
    /// (request 0 of every group, then request 1 of every group, ...), so
    /// each group's first request comes before its others at any load.
    pub fn place(&self, index: u64) -> (u64, u64) {
        let round = u64::from(self.groups) * u64::from(self.per_group);
        let (generation, within) = (index / round, index % round);
        let groups = u64::from(self.groups);
        (generation * groups + within % groups, within / groups)
    }
}

/// A whole-number range, drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The smallest value, included.
    pub min: u32,
    /// The largest value, included (equal to `min` for a single number).
    pub max: u32,
}

impl Range {
    fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
        rng.random_range(self.min..=self.max)
    }

    fn parse(s: &str, what: &str) -> Result<Range, String> {
        let positive = |v: &str| {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{what} '{v}' is not a positive integer"))
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (min, max) = (positive(a)?, positive(b)?);
                if min > max {
                    return Err(format!("{what} range '{s}' runs backwards"));
                }
                Ok(Range { min, max })
            }
            None => {
                let n = positive(s)?;
                Ok(Range { min: n, max: n })
            }
        }
    }
}

/// A think time: fixed, or uniform between two durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThinkTime {
    /// The shortest think time.
    pub min: std::time::Duration,
    /// The longest (equal to `min` for a fixed think time).
    pub max: std::time::Duration,
}

impl ThinkTime {
    fn sample(&self, rng: &mut ChaCha8Rng) -> std::time::Duration {
        if self.max <= self.min {
            return self.min;
        }
        let (a, b) = (self.min.as_secs_f64(), self.max.as_secs_f64());
        std::time::Duration::from_secs_f64(rng.random_range(a..=b))
    }

    fn parse(s: &str) -> Result<ThinkTime, String> {
        let one = |v: &str| {
            humantime::parse_duration(v.trim())
                .map_err(|_| format!("think time '{v}' is not a duration like 500ms or 2s"))
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (min, max) = (one(a)?, one(b)?);
                if min > max {
                    return Err(format!("think time range '{s}' runs backwards"));
                }
                Ok(ThinkTime { min, max })
            }
            None => {
                let d = one(s)?;
                Ok(ThinkTime { min: d, max: d })
            }
        }
    }
}

/// Where conversations come from.
#[derive(Debug, Clone, PartialEq)]
pub enum MultiTurnSource {
    /// `multiturn:TURNS:IN:OUT[:THINK]`: synthetic conversations of random
    /// words.
    Synthetic {
        /// Turns per conversation, drawn per conversation.
        turns: Range,
        /// Tokens of each user message, drawn per turn.
        input: Range,
        /// Tokens each reply may have, drawn per turn.
        output: Range,
        /// Pause after each reply before the next turn, drawn per turn.
        think: ThinkTime,
    },
    /// Every human turn of each ShareGPT conversation, the reply after it
    /// giving that turn's output length.
    ShareGpt {
        /// The ShareGPT file.
        path: PathBuf,
        /// Each conversation's answered human turns, in order.
        conversations: Vec<Vec<Conversation>>,
        /// Pause after each reply before the next turn, drawn per turn.
        think: ThinkTime,
    },
}

/// One turn of a conversation to hold: what the user says, and how long
/// the reply may be.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The user message's text.
    pub user: String,
    /// Tokens of the user message alone (estimated at four characters a
    /// token for ShareGPT); the request's prompt adds the history's.
    pub input_tokens: u32,
    /// Tokens the reply may have (`max_tokens`).
    pub max_tokens: u32,
    /// Pause after this turn's reply, before the next turn.
    pub think: std::time::Duration,
}

/// What a point's unit of work is: one request, or one conversation of
/// several turns that must go in order, each after the previous reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// One request.
    One(RequestSpec),
    /// A conversation's turns, in order.
    Conversation(Vec<Turn>),
}

/// A workload that cannot be read, or cannot go with the other flags.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The spec does not parse: an unknown name, the wrong number of parts,
    /// a count that is not a positive integer, a range that runs backwards,
    /// a think time that is not a duration.
    #[error("--workload {spec}: {message}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
    /// A ShareGPT file that cannot be read, is not a JSON array of
    /// conversations, or has no human turn followed by a reply.
    #[error("--workload sharegpt:{path}: {message}")]
    ShareGpt {
        /// The ShareGPT file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `--token-ids-from`'s vocabulary has no ordinary token to draw
    /// prompts from.
    #[error("token-id prompts: {0}")]
    NoOrdinaryTokens(NoOrdinaryTokens),
    /// Token-id prompts asked of a workload that sends its own text
    /// (ShareGPT); the workload's name.
    #[error("token-id prompts are synthetic: --workload {0} sends its own text")]
    TokenIdsNeedSynthetic(String),
    /// A multi-turn workload without the chat endpoint, or with token-id
    /// prompts; the workload's name.
    #[error("--workload {0}: a conversation carries its history as chat messages; use --endpoint chat (and no --token-ids-from)")]
    NeedsChat(String),
    /// A trace file that cannot be replayed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

// By hand, not `#[from]`: the message shows the cause once.
impl From<NoOrdinaryTokens> for WorkloadError {
    fn from(e: NoOrdinaryTokens) -> Self {
        WorkloadError::NoOrdinaryTokens(e)
    }
}

/// Words that are one token each in the common BPE and SentencePiece
/// vocabularies (with their leading space), so that N words make about N
/// tokens. The server's usage reports the exact count.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "people", "year",
    "way", "day", "man", "thing", "world", "life", "hand", "part", "child", "eye", "place", "work",
    "week", "case", "point", "number", "group", "problem", "fact", "water", "house",
];

/// Roughly four characters a token, for text whose tokens were not counted.
fn estimate_tokens(text: &str) -> u32 {
    (text.chars().count() as u32).div_ceil(4).max(1)
}

impl Workload {
    /// `fixed:IN:OUT`, a preset (`short`, `medium`, `long`), a distribution
    /// (`chat`, `code`, `long-qa`, `summarization`), or `sharegpt:PATH`.
    pub fn parse(spec: &str) -> Result<Workload, WorkloadError> {
        Ok(Workload {
            source: Source::parse(spec)?,
            tokenizer: None,
            token_ids: None,
        })
    }

    /// Sends prompts as token-id arrays drawn from `vocab` exactly as the
    /// in-process mode draws them (BOS first when the model wants one), so
    /// that a served run decodes the very ids an in-process run decoded.
    pub fn with_token_ids(mut self, vocab: PromptVocab) -> Result<Workload, WorkloadError> {
        match self.source {
            Source::ShareGpt { .. } => {
                return Err(WorkloadError::TokenIdsNeedSynthetic(self.name()))
            }
            Source::MultiTurn { .. } => return Err(WorkloadError::NeedsChat(self.name())),
            _ => {}
        }
        if vocab.ordinary.is_empty() {
            return Err(NoOrdinaryTokens.into());
        }
        self.token_ids = Some(Arc::new(vocab));
        Ok(self)
    }

    /// True when prompts go as token ids.
    pub fn sends_token_ids(&self) -> bool {
        self.token_ids.is_some()
    }

    /// Counts prompt tokens with the server's tokenizer, so that synthetic
    /// prompts have exactly the requested length.
    pub fn with_tokenizer(mut self, tokenizer: Arc<Tokenizer>) -> Workload {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// `(input, output)` tokens when every request asks for the same lengths.
    pub fn fixed_lengths(&self) -> Option<(u32, u32)> {
        match &self.source {
            Source::Lengths {
                input: Length::Fixed { tokens: input },
                output: Length::Fixed { tokens: output },
                ..
            } => Some((*input, *output)),
            _ => None,
        }
    }

    /// The workload as `--workload` spells it (with its file's path for
    /// ShareGPT and traces), as the result's settings record it.
    pub fn name(&self) -> String {
        match &self.source {
            Source::Lengths { name, .. } | Source::MultiTurn { name, .. } => name.clone(),
            Source::ShareGpt { path, .. } => format!("sharegpt:{}", path.display()),
            Source::SharedPrefix(p) => format!(
                "shared-prefix:{}:{}:{}:{}:{}",
                p.groups, p.per_group, p.prefix_tokens, p.suffix_tokens, p.output_tokens
            ),
            Source::Trace(t) => format!("trace:{}", t.path.display()),
        }
    }

    /// True when a unit of work is a conversation (chat endpoint, the
    /// replies' text kept for the history).
    pub fn is_multi_turn(&self) -> bool {
        matches!(self.source, Source::MultiTurn { .. })
    }

    /// The shared-prefix shape, for a shared-prefix workload.
    pub fn shared_prefix(&self) -> Option<SharedPrefix> {
        match self.source {
            Source::SharedPrefix(p) => Some(p),
            _ => None,
        }
    }

    /// The trace of a `trace:` workload.
    pub fn trace(&self) -> Option<&Arc<Trace>> {
        match &self.source {
            Source::Trace(t) => Some(t),
            _ => None,
        }
    }

    /// Checks the workload against the endpoint it will be sent to.
    pub fn check_endpoint(&self, chat: bool) -> Result<(), WorkloadError> {
        if self.is_multi_turn() && !chat {
            return Err(WorkloadError::NeedsChat(self.name()));
        }
        Ok(())
    }

    /// Unit of work `index` of `stream`: a request, or a conversation.
    pub fn job(&self, stream: &PromptStream, index: u64) -> Job {
        match &self.source {
            Source::MultiTurn { conversations, .. } => {
                Job::Conversation(conversation(conversations, stream, index))
            }
            _ => Job::One(self.request(stream, index)),
        }
    }

    /// `tokens` tokens of content from `rng`: token ids from the vocabulary
    /// (no BOS), or words.
    fn content(&self, rng: &mut ChaCha8Rng, tokens: u32) -> Content {
        match &self.token_ids {
            Some(vocab) => Content::Ids(
                (0..tokens)
                    .filter_map(|_| vocab.ordinary.choose(rng).copied())
                    .collect(),
            ),
            None => Content::Words(random_words(rng, tokens)),
        }
    }

    /// A prompt of these pieces in order, behind the BOS the model wants
    /// (token ids; a text prompt gets its BOS from the server).
    fn assemble(&self, pieces: Vec<Content>) -> Prompt {
        match &self.token_ids {
            Some(vocab) => {
                let mut ids: Vec<i32> = vocab.bos.into_iter().collect();
                for piece in pieces {
                    if let Content::Ids(p) = piece {
                        ids.extend(p);
                    }
                }
                Prompt::TokenIds(ids)
            }
            None => {
                let words: Vec<&str> = pieces
                    .into_iter()
                    .flat_map(|p| match p {
                        Content::Words(w) => w,
                        Content::Ids(_) => Vec::new(),
                    })
                    .collect();
                Prompt::Text(words.join(" "))
            }
        }
    }

    /// BOS tokens a token-id prompt starts with (text: the server's own).
    fn bos_tokens(&self) -> u32 {
        self.token_ids
            .as_ref()
            .map_or(0, |v| u32::from(v.bos.is_some()))
    }

    /// Request `index` of `stream`: the same whatever else is asked.
    #[expect(
        clippy::expect_used,
        reason = "with_token_ids refuses a vocabulary without ordinary tokens; parse refuses an empty ShareGPT file"
    )]
    pub fn request(&self, stream: &PromptStream, index: u64) -> RequestSpec {
        match &self.source {
            Source::Lengths { input, output, .. } => {
                let mut lengths = stream.lengths_rng(index);
                let input_tokens = input.sample(&mut lengths);
                let max_tokens = output.sample(&mut lengths).max(1);
                let mut rng = stream.text_rng(index);
                let prompt = match (&self.token_ids, &self.tokenizer) {
                    (Some(vocab), _) => Prompt::TokenIds(
                        synthetic_prompt(vocab, input_tokens, stream, index)
                            .expect("checked non-empty in with_token_ids"),
                    ),
                    (None, Some(t)) => Prompt::Text(exact_text(&mut rng, input_tokens, t)),
                    (None, None) => Prompt::Text(synthetic_text(&mut rng, input_tokens)),
                };
                RequestSpec {
                    prompt,
                    max_tokens,
                    input_tokens_requested: input_tokens,
                    tag: RequestTag::default(),
                }
            }
            Source::ShareGpt { conversations, .. } => {
                let c = conversations
                    .choose(&mut stream.text_rng(index))
                    .expect("non-empty");
                let input_tokens = self
                    .tokenizer
                    .as_ref()
                    .map_or(c.input_tokens_estimate, |t| t.count(&c.prompt) as u32);
                RequestSpec {
                    prompt: Prompt::Text(c.prompt.clone()),
                    max_tokens: c.output_tokens.max(1),
                    input_tokens_requested: input_tokens,
                    tag: RequestTag::default(),
                }
            }
            Source::SharedPrefix(p) => {
                let (group, place) = p.place(index);
                // The first P tokens (BOS among them, for token ids) are the
                // group's; the S after them the request's own.
                let shared = p.prefix_tokens.saturating_sub(self.bos_tokens());
                let prefix = self.content(&mut stream.shared_rng(group), shared);
                let suffix = self.content(&mut stream.text_rng(index), p.suffix_tokens);
                RequestSpec {
                    prompt: self.assemble(vec![prefix, suffix]),
                    max_tokens: p.output_tokens,
                    input_tokens_requested: shared + self.bos_tokens() + p.suffix_tokens,
                    tag: RequestTag {
                        prefix_group: Some(group),
                        first_of_group: place == 0,
                        intended_shared: Some(if place == 0 {
                            super::client::INTENDED_SHARED_PREFIX
                        } else {
                            u64::from(p.prefix_tokens) + super::client::INTENDED_SHARED_PREFIX
                        }),
                        ..RequestTag::default()
                    },
                }
            }
            Source::Trace(trace) => {
                let entry = &trace.entries[(index as usize) % trace.entries.len()];
                let body = entry.input_tokens.saturating_sub(self.bos_tokens());
                let pieces = if entry.hash_ids.is_empty() {
                    vec![self.content(&mut stream.text_rng(index), body)]
                } else {
                    // Block k of the prompt is the content of its hash id,
                    // so requests that share hash ids share those blocks.
                    let mut left = body;
                    let mut pieces = Vec::with_capacity(entry.hash_ids.len() + 1);
                    for &h in &entry.hash_ids {
                        let n = left.min(trace.block_tokens);
                        left -= n;
                        pieces.push(self.content(&mut stream.shared_rng(h), n));
                    }
                    if left > 0 {
                        pieces.push(self.content(&mut stream.text_rng(index), left));
                    }
                    pieces
                };
                RequestSpec {
                    prompt: self.assemble(pieces),
                    max_tokens: entry.output_tokens.max(1),
                    input_tokens_requested: body + self.bos_tokens(),
                    tag: RequestTag {
                        intended_shared: if entry.hash_ids.is_empty() {
                            Some(super::client::INTENDED_SHARED_PREFIX)
                        } else {
                            None
                        },
                        ..RequestTag::default()
                    },
                }
            }
            // One request of a conversation workload: its first turn.
            Source::MultiTurn { conversations, .. } => {
                let turns = conversation(conversations, stream, index);
                let first = &turns[0];
                RequestSpec {
                    prompt: Prompt::Chat(vec![ChatMessage {
                        role: "user".into(),
                        content: first.user.clone(),
                    }]),
                    max_tokens: first.max_tokens,
                    input_tokens_requested: first.input_tokens,
                    tag: RequestTag {
                        turn: Some(1),
                        last_turn: turns.len() == 1,
                        ..RequestTag::default()
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use inferbench_core::workload::Phase;

    fn stream(seed: u64) -> PromptStream {
        PromptStream::new(seed, 0, Phase::Measured)
    }

    fn text(r: &RequestSpec) -> &str {
        match &r.prompt {
            Prompt::Text(t) => t,
            _ => panic!("expected text"),
        }
    }

    #[test]
    fn fixed_and_presets() {
        let w = Workload::parse("fixed:12:34").unwrap();
        let r = w.request(&stream(1), 0);
        assert_eq!((r.input_tokens_requested, r.max_tokens), (12, 34));
        assert_eq!(text(&r).split(' ').count(), 12);
        let r = Workload::parse("medium").unwrap().request(&stream(1), 5);
        assert_eq!((r.input_tokens_requested, r.max_tokens), (100, 300));
    }

    #[test]
    fn requests_are_reproducible_and_distinct() {
        let w = Workload::parse("chat").unwrap();
        assert_eq!(w.request(&stream(9), 3), w.request(&stream(9), 3));
        assert_ne!(
            w.request(&stream(9), 3).prompt,
            w.request(&stream(9), 4).prompt
        );
        assert_ne!(
            w.request(&stream(9), 3).prompt,
            w.request(&stream(10), 3).prompt
        );
        let other_point = PromptStream::new(9, 1, Phase::Measured);
        assert_ne!(
            w.request(&stream(9), 3).prompt,
            w.request(&other_point, 3).prompt
        );
    }

    #[test]
    fn token_id_prompts_are_the_in_process_prompts() {
        let vocab = PromptVocab {
            bos: Some(2),
            ordinary: (10..5000).collect(),
        };
        let w = Workload::parse("fixed:16:4")
            .unwrap()
            .with_token_ids(vocab.clone())
            .unwrap();
        let s = PromptStream::new(3, 2, Phase::Measured);
        // Requests 4..8 of a served point are in-process run 1 at batch 4.
        let batch = inferbench_core::workload::batch_prompts(&vocab, 4, 16, &s, 1).unwrap();
        for (k, ids) in batch.iter().enumerate() {
            assert_eq!(
                w.request(&s, 4 + k as u64).prompt,
                Prompt::TokenIds(ids.clone())
            );
        }
        assert_eq!(w.request(&s, 4).input_tokens_requested, 16);
        let sharegpt_refused = Workload {
            source: Source::ShareGpt {
                path: "x.json".into(),
                conversations: vec![],
            },
            tokenizer: None,
            token_ids: None,
        }
        .with_token_ids(vocab);
        assert!(matches!(
            sharegpt_refused,
            Err(WorkloadError::TokenIdsNeedSynthetic(_))
        ));
    }

    #[test]
    fn distributions_are_clipped_around_their_median() {
        let w = Workload::parse("code").unwrap();
        let inputs: Vec<u32> = (0..2000)
            .map(|i| w.request(&stream(1), i).input_tokens_requested)
            .collect();
        assert!(inputs.iter().all(|&n| (187..=6000).contains(&n)));
        let mut sorted = inputs.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        assert!((1350..=1650).contains(&median), "median {median}");
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (spec, needle) in [
            ("fixed:1", "fixed:IN:OUT"),
            ("fixed:0:5", "input tokens '0'"),
            ("fixed:a:5", "'a'"),
            ("nonsense", "unknown workload"),
            ("sharegpt:/nonexistent.json", "/nonexistent.json"),
        ] {
            let e = Workload::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn sharegpt_first_human_turn_and_reply_length() {
        let dir = std::env::temp_dir().join(format!("ib-sharegpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.json");
        std::fs::write(
            &path,
            r#"[{"conversations":[{"from":"system","value":"x"},{"from":"human","value":"What is up?"},{"from":"gpt","value":"Not much at all, thanks."}]},
                {"conversations":[{"from":"human","value":"only a question"}]}]"#,
        )
        .unwrap();
        let w = Workload::parse(&format!("sharegpt:{}", path.display())).unwrap();
        let r = w.request(&stream(0), 0);
        assert_eq!(text(&r), "What is up?");
        assert_eq!(r.max_tokens, 6); // 24 characters / 4
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn ids(r: &RequestSpec) -> Vec<i32> {
        match &r.prompt {
            Prompt::TokenIds(ids) => ids.clone(),
            other => panic!("expected token ids, got {other:?}"),
        }
    }

    fn common_prefix(a: &[i32], b: &[i32]) -> usize {
        a.iter().zip(b).take_while(|(x, y)| x == y).count()
    }

    #[test]
    fn shared_prefix_groups_share_exactly_p_tokens_and_nothing_else() {
        let vocab = PromptVocab {
            bos: Some(2),
            ordinary: (10..50_000).collect(),
        };
        let w = Workload::parse("shared-prefix:3:4:32:8:5")
            .unwrap()
            .with_token_ids(vocab)
            .unwrap();
        let s = stream(11);
        let requests: Vec<RequestSpec> = (0..24).map(|i| w.request(&s, i)).collect();
        for (i, a) in requests.iter().enumerate() {
            assert_eq!(ids(a).len(), 40, "P + S tokens, BOS among the P");
            assert_eq!(a.input_tokens_requested, 40);
            assert_eq!(a.max_tokens, 5);
            for b in &requests[i + 1..] {
                let shared = common_prefix(&ids(a), &ids(b));
                if a.tag.prefix_group == b.tag.prefix_group {
                    assert_eq!(shared, 32, "{:?} {:?}", a.tag, b.tag);
                } else {
                    assert_eq!(shared, 1, "only the BOS across groups");
                }
            }
        }
        // Groups take turns; the second round of 12 starts new groups.
        let groups: Vec<u64> = requests
            .iter()
            .map(|r| r.tag.prefix_group.unwrap())
            .collect();
        assert_eq!(&groups[..6], &[0, 1, 2, 0, 1, 2]);
        assert_eq!(&groups[12..15], &[3, 4, 5]);
        let firsts: Vec<bool> = requests.iter().map(|r| r.tag.first_of_group).collect();
        assert_eq!(firsts.iter().filter(|f| **f).count(), 6);
        assert!(firsts[..3].iter().all(|f| *f) && !firsts[3]);
        // Another point draws other groups: no prefix carries over.
        let other = PromptStream::new(11, 1, Phase::Measured);
        assert_eq!(
            common_prefix(&ids(&w.request(&other, 0)), &ids(&requests[0])),
            1
        );
    }

    #[test]
    fn conversations_are_reproducible_and_parsed_with_ranges() {
        let w = Workload::parse("multiturn:2-4:16-32:8:100ms-200ms").unwrap();
        assert!(w.is_multi_turn());
        assert!(w.check_endpoint(false).is_err());
        let job = |i| match w.job(&stream(3), i) {
            Job::Conversation(turns) => turns,
            Job::One(_) => panic!("a conversation"),
        };
        assert_eq!(job(5), job(5));
        assert_ne!(job(5), job(6));
        for i in 0..50 {
            let turns = job(i);
            assert!((2..=4).contains(&turns.len()));
            for t in turns {
                assert!((16..=32).contains(&t.input_tokens));
                assert_eq!(t.user.split(' ').count() as u32, t.input_tokens);
                assert_eq!(t.max_tokens, 8);
                assert!((100..=200).contains(&t.think.as_millis()));
            }
        }
        for (spec, needle) in [
            ("multiturn:3:8", "multiturn:TURNS:IN:OUT"),
            ("multiturn:4-2:8:8", "runs backwards"),
            ("multiturn:2:8:8:soon", "think time 'soon'"),
        ] {
            let e = Workload::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn trace_blocks_with_the_same_hash_are_the_same_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(
            &path,
            "{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 4, \"hash_ids\": [7, 8, 9]}\n\
             {\"timestamp\": 10, \"input_length\": 600, \"output_length\": 4, \"hash_ids\": [7, 5]}\n\
             {\"timestamp\": 20, \"input_length\": 600, \"output_length\": 4}\n",
        )
        .unwrap();
        let vocab = PromptVocab {
            bos: Some(2),
            ordinary: (10..50_000).collect(),
        };
        let w = Workload::parse(&format!("trace:{}", path.display()))
            .unwrap()
            .with_token_ids(vocab)
            .unwrap();
        let s = stream(4);
        let (a, b, c) = (w.request(&s, 0), w.request(&s, 1), w.request(&s, 2));
        assert_eq!(
            (ids(&a).len(), ids(&b).len(), ids(&c).len()),
            (1100, 600, 600)
        );
        // BOS and the first block (hash 7) in common, then different blocks.
        assert_eq!(common_prefix(&ids(&a), &ids(&b)), 1 + 512);
        assert_eq!(common_prefix(&ids(&a), &ids(&c)), 1);
        assert_eq!(a.tag.intended_shared, None);
        assert_eq!(c.tag.intended_shared, Some(1));
        assert_eq!(a.max_tokens, 4);
    }

    #[test]
    fn sharegpt_multiturn_holds_every_human_turn_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(
            &path,
            r#"[{"conversations":[{"from":"human","value":"first question"},{"from":"gpt","value":"an answer of some length"},
                                  {"from":"human","value":"second one"},{"from":"gpt","value":"ok"},
                                  {"from":"human","value":"unanswered"}]}]"#,
        )
        .unwrap();
        let w = Workload::parse(&format!("sharegpt-multiturn:{}:250ms", path.display())).unwrap();
        let Job::Conversation(turns) = w.job(&stream(0), 0) else {
            panic!("a conversation")
        };
        let users: Vec<&str> = turns.iter().map(|t| t.user.as_str()).collect();
        assert_eq!(users, ["first question", "second one"]);
        assert_eq!(turns[0].max_tokens, 6, "24 characters of reply / 4");
        assert!(turns
            .iter()
            .all(|t| t.think == std::time::Duration::from_millis(250)));
        assert!(Workload::parse("sharegpt-multiturn:/no/such.json").is_err());
    }
}
