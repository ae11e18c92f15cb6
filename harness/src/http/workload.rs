//! What the HTTP mode sends: prompt and output lengths, fixed, from a named
//! distribution, or from a ShareGPT file; each request reproducible from the
//! seed and its index alone, whatever order requests are made in.

use std::path::{Path, PathBuf};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::client::RequestSpec;
use super::tokenizer::Tokenizer;

/// A token-length distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Length {
    Fixed {
        tokens: u32,
    },
    /// Lognormal with this median and log-space sigma, clipped to [min, max].
    LogNormal {
        median: f64,
        sigma: f64,
        min: u32,
        max: u32,
    },
}

impl Length {
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
    pub prompt: String,
    pub input_tokens_estimate: u32,
    pub output_tokens: u32,
}

/// What to send, and optionally the server's tokenizer to make prompt
/// lengths exact.
#[derive(Debug, Clone)]
pub struct Workload {
    source: Source,
    tokenizer: Option<Arc<Tokenizer>>,
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
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("--workload {spec}: {message}")]
    Spec { spec: String, message: String },
    #[error("--workload sharegpt:{path}: {message}")]
    ShareGpt { path: PathBuf, message: String },
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
        })
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

    pub fn name(&self) -> String {
        match &self.source {
            Source::Lengths { name, .. } => name.clone(),
            Source::ShareGpt { path, .. } => format!("sharegpt:{}", path.display()),
        }
    }

    /// Request `index` of the stream `seed`: the same whatever else is asked.
    pub fn request(&self, seed: u64, index: u64) -> RequestSpec {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        match &self.source {
            Source::Lengths { input, output, .. } => {
                let input_tokens = input.sample(&mut rng);
                let max_tokens = output.sample(&mut rng).max(1);
                let prompt = match &self.tokenizer {
                    Some(t) => exact_text(&mut rng, input_tokens, t),
                    None => synthetic_text(&mut rng, input_tokens),
                };
                RequestSpec {
                    prompt,
                    max_tokens,
                    input_tokens_requested: input_tokens,
                }
            }
            Source::ShareGpt { conversations, .. } => {
                let c = conversations.choose(&mut rng).expect("non-empty");
                let input_tokens = self
                    .tokenizer
                    .as_ref()
                    .map_or(c.input_tokens_estimate, |t| t.count(&c.prompt) as u32);
                RequestSpec {
                    prompt: c.prompt.clone(),
                    max_tokens: c.output_tokens.max(1),
                    input_tokens_requested: input_tokens,
                }
            }
        }
    }
}

impl Source {
    fn parse(spec: &str) -> Result<Source, WorkloadError> {
        let bad = |message: String| WorkloadError::Spec {
            spec: spec.to_string(),
            message,
        };
        let lengths = |name: &str, input, output| Source::Lengths {
            name: name.to_string(),
            input,
            output,
        };
        let fixed = |tokens| Length::Fixed { tokens };
        Ok(match spec {
            "short" => lengths(spec, fixed(10), fixed(100)),
            "medium" => lengths(spec, fixed(100), fixed(300)),
            "long" => lengths(spec, fixed(200), fixed(500)),
            "chat" => lengths(spec, Length::around(500), Length::around(200)),
            "code" => lengths(spec, Length::around(1500), Length::around(500)),
            "long-qa" => lengths(spec, Length::around(16_000), Length::around(300)),
            "summarization" => lengths(spec, Length::around(4000), Length::around(150)),
            _ => {
                if let Some(rest) = spec.strip_prefix("fixed:") {
                    let parts: Vec<&str> = rest.split(':').collect();
                    let [input, output] = parts.as_slice() else {
                        return Err(bad("expected fixed:IN:OUT, e.g. fixed:128:64".into()));
                    };
                    let parse = |s: &str, what: &str| {
                        s.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                            bad(format!("{what} tokens '{s}' is not a positive integer"))
                        })
                    };
                    lengths(
                        spec,
                        fixed(parse(input, "input")?),
                        fixed(parse(output, "output")?),
                    )
                } else if let Some(path) = spec.strip_prefix("sharegpt:") {
                    Self::sharegpt(Path::new(path))?
                } else {
                    return Err(bad(
                        "unknown workload; use fixed:IN:OUT, short, medium, long, chat, code, \
                         long-qa, summarization or sharegpt:PATH"
                            .into(),
                    ));
                }
            }
        })
    }

    fn sharegpt(path: &Path) -> Result<Source, WorkloadError> {
        let err = |message: String| WorkloadError::ShareGpt {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let data: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
        let items = data
            .as_array()
            .ok_or_else(|| err("expected a JSON array of conversations".into()))?;
        let mut conversations = Vec::new();
        for item in items {
            let Some(turns) = item.get("conversations").and_then(|c| c.as_array()) else {
                continue;
            };
            let value = |i: usize| {
                turns
                    .get(i)
                    .and_then(|t| t.get("value"))
                    .and_then(|v| v.as_str())
            };
            let from = |i: usize| {
                turns
                    .get(i)
                    .and_then(|t| t.get("from"))
                    .and_then(|v| v.as_str())
            };
            // The first human turn is the prompt, the reply after it gives the
            // output length.
            let Some(first_human) = (0..turns.len()).find(|&i| from(i) == Some("human")) else {
                continue;
            };
            let (Some(prompt), Some(reply)) = (value(first_human), value(first_human + 1)) else {
                continue;
            };
            if prompt.trim().is_empty() || reply.trim().is_empty() {
                continue;
            }
            conversations.push(Conversation {
                prompt: prompt.to_string(),
                input_tokens_estimate: estimate_tokens(prompt),
                output_tokens: estimate_tokens(reply),
            });
        }
        if conversations.is_empty() {
            return Err(err(
                "no conversation with a human turn followed by a reply".into()
            ));
        }
        Ok(Source::ShareGpt {
            path: path.to_path_buf(),
            conversations,
        })
    }
}

fn random_words(rng: &mut ChaCha8Rng, n: u32) -> Vec<&'static str> {
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect()
}

/// About `tokens` tokens of text: random common words, so no two requests
/// share a prefix a server could cache.
fn synthetic_text(rng: &mut ChaCha8Rng, tokens: u32) -> String {
    random_words(rng, tokens).join(" ")
}

/// Exactly `tokens` tokens by `tokenizer` where words allow it: start from
/// one word a token, then add or drop words by the difference until the
/// count matches (a few rounds; words are one or two tokens each).
fn exact_text(rng: &mut ChaCha8Rng, tokens: u32, tokenizer: &Tokenizer) -> String {
    let mut words = random_words(rng, tokens);
    for _ in 0..16 {
        let count = tokenizer.count(&words.join(" ")) as i64;
        let diff = i64::from(tokens) - count;
        match diff {
            0 => break,
            d if d > 0 => words.extend(random_words(rng, d as u32)),
            d => {
                let drop = ((-d) as usize).min(words.len().saturating_sub(1)).max(1);
                if words.len() <= 1 {
                    break;
                }
                words.truncate(words.len() - drop);
            }
        }
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_presets() {
        let w = Workload::parse("fixed:12:34").unwrap();
        let r = w.request(1, 0);
        assert_eq!((r.input_tokens_requested, r.max_tokens), (12, 34));
        assert_eq!(r.prompt.split(' ').count(), 12);
        let r = Workload::parse("medium").unwrap().request(1, 5);
        assert_eq!((r.input_tokens_requested, r.max_tokens), (100, 300));
    }

    #[test]
    fn requests_are_reproducible_and_distinct() {
        let w = Workload::parse("chat").unwrap();
        assert_eq!(w.request(9, 3), w.request(9, 3));
        assert_ne!(w.request(9, 3).prompt, w.request(9, 4).prompt);
        assert_ne!(w.request(9, 3).prompt, w.request(10, 3).prompt);
    }

    #[test]
    fn distributions_are_clipped_around_their_median() {
        let w = Workload::parse("code").unwrap();
        let inputs: Vec<u32> = (0..2000)
            .map(|i| w.request(1, i).input_tokens_requested)
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
        let r = w.request(0, 0);
        assert_eq!(r.prompt, "What is up?");
        assert_eq!(r.max_tokens, 6); // 24 characters / 4
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
