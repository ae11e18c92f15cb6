//! Where every prompt of a run comes from: one stream per (seed, point,
//! phase), one prompt per index of the stream, reproducible from those alone
//! whatever order prompts are made in.
//!
//! Servers cache prompt prefixes (llama-server's slots and host cache, vLLM's
//! prefix cache): a prompt sent twice in one run is served from cache the
//! second time, and measures the cache instead of the prefill. So no two
//! requests of a run share a stream position: not two points of a sweep, not
//! two probes of a search, not a warm-up and a measured request. The
//! in-process engine draws its batches from the same streams, so that a
//! served run can send the very token ids the in-process run decoded:
//! sequence `s` of measured run `r` at batch `B` is index `r × B + s`.

use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::engine::{PromptVocab, TokenId};

/// The part of a point a prompt belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The runs or requests that enter the statistics.
    Measured,
    /// Warm-up runs or requests, never counted.
    Warmup,
    /// The requests a search adds to a probe the early-stopping rule left
    /// undecided: its `n`-th extension (from 1), each a stream of its own.
    Extension(u8),
}

/// The prompts of one phase of one point of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptStream {
    /// Draws the shape of each item: its lengths.
    pub seed: u64,
    /// Draws the content of each item: token ids, words, which conversation.
    /// Equal to `seed` unless a run draws content anew (`http` does, so
    /// that a repeated run is not served from a cache the last one filled,
    /// while its lengths stay the same).
    pub content_seed: u64,
    /// The point's position in the run (a sweep's level, a search's probe).
    pub point: u32,
    /// Warm-up or measured: the two never share a prompt.
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    TokenIds = 0,
    Text = 1,
    Lengths = 2,
    Shared = 3,
}

impl PromptStream {
    /// The stream of `phase` at point `point`, lengths and content both drawn
    /// from `seed`.
    pub fn new(seed: u64, point: u32, phase: Phase) -> Self {
        PromptStream {
            seed,
            content_seed: seed,
            point,
            phase,
        }
    }

    /// The same stream with its content (token ids, text, shared blocks)
    /// drawn from `content_seed`; its lengths still come from `seed`.
    pub fn with_content_seed(self, content_seed: u64) -> Self {
        PromptStream {
            content_seed,
            ..self
        }
    }

    /// The ChaCha8 key: seed, point, phase and purpose side by side, so that
    /// two streams can never share a key (no hashing, no collisions).
    fn rng(&self, index: u64, purpose: Purpose) -> ChaCha8Rng {
        let seed = match purpose {
            Purpose::Lengths => self.seed,
            Purpose::TokenIds | Purpose::Text | Purpose::Shared => self.content_seed,
        };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..12].copy_from_slice(&self.point.to_le_bytes());
        key[12] = match self.phase {
            Phase::Measured => 0,
            Phase::Warmup => 1,
            Phase::Extension(n) => 2u8.saturating_add(n),
        };
        key[13] = purpose as u8;
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(index);
        rng
    }

    /// The generator of item `index`'s token ids.
    pub fn token_rng(&self, index: u64) -> ChaCha8Rng {
        self.rng(index, Purpose::TokenIds)
    }

    /// The generator of item `index`'s text (words, a conversation).
    pub fn text_rng(&self, index: u64) -> ChaCha8Rng {
        self.rng(index, Purpose::Text)
    }

    /// The generator of shared block `block`'s content: the prefix of a
    /// group of requests, a trace's hashed block. Its own purpose, so a
    /// block never repeats an item's own content; the point in the key, so
    /// two points never share a block.
    pub fn shared_rng(&self, block: u64) -> ChaCha8Rng {
        self.rng(block, Purpose::Shared)
    }

    /// The generator of item `index`'s lengths.
    pub fn lengths_rng(&self, index: u64) -> ChaCha8Rng {
        self.rng(index, Purpose::Lengths)
    }
}

/// The vocabulary has no ordinary token, so no synthetic prompt can be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model's vocabulary has no ordinary token to build a synthetic prompt from (every token is a control, unused or end-of-generation token)")]
pub struct NoOrdinaryTokens;

/// Prompt `index` of `stream`: exactly `prompt_tokens` tokens, BOS first when
/// the model wants one (as a tokenized real prompt would start), then tokens
/// drawn uniformly from the vocabulary's ordinary tokens. ChaCha8 is
/// value-stable across `rand` versions: the same stream gives the same ids.
pub fn synthetic_prompt(
    vocab: &PromptVocab,
    prompt_tokens: u32,
    stream: &PromptStream,
    index: u64,
) -> Result<Vec<TokenId>, NoOrdinaryTokens> {
    if vocab.ordinary.is_empty() {
        return Err(NoOrdinaryTokens);
    }
    let mut rng = stream.token_rng(index);
    let mut prompt = Vec::with_capacity(prompt_tokens as usize);
    if let (Some(bos), true) = (vocab.bos, prompt_tokens > 0) {
        prompt.push(bos);
    }
    while prompt.len() < prompt_tokens as usize {
        prompt.push(*vocab.ordinary.choose(&mut rng).ok_or(NoOrdinaryTokens)?);
    }
    Ok(prompt)
}

/// The prompts of one in-process run: `sequences` prompts, indices
/// `run × sequences ..`, so that consecutive runs never repeat a prompt and
/// match requests `run × sequences ..` of a served point.
pub fn batch_prompts(
    vocab: &PromptVocab,
    sequences: u32,
    prompt_tokens: u32,
    stream: &PromptStream,
    run: u32,
) -> Result<Vec<Vec<TokenId>>, NoOrdinaryTokens> {
    let first = u64::from(run) * u64::from(sequences);
    (0..u64::from(sequences))
        .map(|s| synthetic_prompt(vocab, prompt_tokens, stream, first + s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn vocab() -> PromptVocab {
        PromptVocab {
            bos: Some(1),
            ordinary: (10..100_000).collect(),
        }
    }

    fn stream(seed: u64, point: u32, phase: Phase) -> PromptStream {
        PromptStream::new(seed, point, phase)
    }

    #[test]
    fn exact_lengths_bos_first_and_only_ordinary_tokens() {
        let prompts = batch_prompts(&vocab(), 3, 17, &stream(42, 0, Phase::Measured), 0).unwrap();
        assert_eq!(prompts.len(), 3);
        for p in &prompts {
            assert_eq!(p.len(), 17);
            assert_eq!(p[0], 1);
            assert!(p[1..].iter().all(|t| (10..100_000).contains(t)));
        }
        assert_ne!(prompts[0], prompts[1], "sequences must differ");
    }

    #[test]
    fn reproducible_from_the_stream_alone() {
        let s = stream(7, 3, Phase::Measured);
        assert_eq!(
            synthetic_prompt(&vocab(), 64, &s, 5),
            synthetic_prompt(&vocab(), 64, &s, 5)
        );
        // A batch's prompts are the stream's items, whatever asks for them.
        let batch = batch_prompts(&vocab(), 4, 64, &s, 2).unwrap();
        assert_eq!(batch[1], synthetic_prompt(&vocab(), 64, &s, 9).unwrap());
    }

    #[test]
    fn no_two_prompts_of_a_run_share_a_prefix_beyond_bos() {
        // Every point, phase and index of a run: the second and third
        // tokens already differ (from 99,990² pairs, a collision among these
        // 8,000 prompts would be a bug, not chance: p < 4e-3).
        let mut seconds = HashSet::new();
        for point in 0..5 {
            let phases = [
                Phase::Measured,
                Phase::Warmup,
                Phase::Extension(1),
                Phase::Extension(2),
            ];
            for phase in phases {
                for index in 0..400 {
                    let p = synthetic_prompt(&vocab(), 8, &stream(0, point, phase), index).unwrap();
                    assert!(
                        seconds.insert(p[1..3].to_vec()),
                        "point {point} {phase:?} index {index} repeats a prefix"
                    );
                }
            }
        }
        assert_ne!(
            synthetic_prompt(&vocab(), 8, &stream(0, 0, Phase::Measured), 0),
            synthetic_prompt(&vocab(), 8, &stream(1, 0, Phase::Measured), 0),
            "another seed, other prompts"
        );
    }

    #[test]
    fn generators_are_independent_and_content_follows_its_own_seed() {
        use rand::Rng;
        let s = stream(0, 0, Phase::Measured);
        let draws = |s: &PromptStream| -> [u64; 3] {
            [
                s.token_rng(3).random(),
                s.text_rng(3).random(),
                s.lengths_rng(3).random(),
            ]
        };
        let [t, x, l] = draws(&s);
        assert!(t != x && x != l && t != l);
        let [t2, x2, l2] = draws(&s.with_content_seed(99));
        assert_eq!(l, l2, "lengths follow the seed");
        assert!(t != t2 && x != x2, "content follows the content seed");
    }

    #[test]
    fn no_bos_model_and_empty_vocabulary() {
        let v = PromptVocab {
            bos: None,
            ordinary: vec![5],
        };
        let s = stream(0, 0, Phase::Measured);
        assert_eq!(synthetic_prompt(&v, 3, &s, 0).unwrap(), vec![5, 5, 5]);
        let empty = PromptVocab {
            bos: Some(1),
            ordinary: vec![],
        };
        assert_eq!(synthetic_prompt(&empty, 3, &s, 0), Err(NoOrdinaryTokens));
    }
}
