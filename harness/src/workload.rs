//! Synthetic prompts of exact token counts, reproducible from a seed.

use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::{PromptVocab, TokenId};

/// Builds `sequences` prompts of exactly `prompt_tokens` tokens each, drawn
/// uniformly from the vocabulary's ordinary tokens and starting with BOS when
/// the model has one (as a tokenized real prompt would). Each sequence gets
/// its own prompt, so nothing could be shared between sequences. ChaCha8 is
/// value-stable across `rand` versions: the same seed gives the same prompts.
pub fn synthetic_prompts(
    vocab: &PromptVocab,
    sequences: u32,
    prompt_tokens: u32,
    seed: u64,
) -> Vec<Vec<TokenId>> {
    assert!(
        !vocab.ordinary.is_empty(),
        "a vocabulary without ordinary tokens"
    );
    (0..sequences)
        .map(|sequence| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(u64::from(sequence));
            let mut prompt = Vec::with_capacity(prompt_tokens as usize);
            if let (Some(bos), true) = (vocab.bos, prompt_tokens > 0) {
                prompt.push(bos);
            }
            while prompt.len() < prompt_tokens as usize {
                prompt.push(*vocab.ordinary.choose(&mut rng).expect("non-empty"));
            }
            prompt
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> PromptVocab {
        PromptVocab {
            bos: Some(1),
            ordinary: (10..100).collect(),
        }
    }

    #[test]
    fn exact_lengths_bos_first_and_only_ordinary_tokens() {
        let prompts = synthetic_prompts(&vocab(), 3, 17, 42);
        assert_eq!(prompts.len(), 3);
        for p in &prompts {
            assert_eq!(p.len(), 17);
            assert_eq!(p[0], 1);
            assert!(p[1..].iter().all(|t| (10..100).contains(t)));
        }
        assert_ne!(prompts[0], prompts[1], "sequences must differ");
    }

    #[test]
    fn reproducible_from_seed() {
        assert_eq!(
            synthetic_prompts(&vocab(), 2, 64, 7),
            synthetic_prompts(&vocab(), 2, 64, 7)
        );
        assert_ne!(
            synthetic_prompts(&vocab(), 2, 64, 7),
            synthetic_prompts(&vocab(), 2, 64, 8)
        );
    }

    #[test]
    fn no_bos_model() {
        let v = PromptVocab {
            bos: None,
            ordinary: vec![5],
        };
        assert_eq!(synthetic_prompts(&v, 1, 3, 0), vec![vec![5, 5, 5]]);
    }
}
