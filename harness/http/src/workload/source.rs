//! Where a workload's prompts come from: fixed lengths, length
//! distributions, ShareGPT files, conversations, traces; and the text
//! made to a length, in words or in a tokenizer's tokens.

use std::path::Path;

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::*;

impl Source {
    pub(super) fn parse(spec: &str) -> Result<Source, WorkloadError> {
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
                } else if let Some(rest) = spec.strip_prefix("shared-prefix:") {
                    let parts: Vec<&str> = rest.split(':').collect();
                    let [g, r, p, s, out] = parts.as_slice() else {
                        return Err(bad(
                            "expected shared-prefix:GROUPS:PER_GROUP:PREFIX:SUFFIX:OUT, e.g. shared-prefix:4:8:512:64:32"
                                .into(),
                        ));
                    };
                    let n = |v: &str, what: &str| {
                        v.parse::<u32>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad(format!("{what} '{v}' is not a positive integer")))
                    };
                    Source::SharedPrefix(SharedPrefix {
                        groups: n(g, "groups")?,
                        per_group: n(r, "requests per group")?,
                        prefix_tokens: n(p, "prefix tokens")?,
                        suffix_tokens: n(s, "suffix tokens")?,
                        output_tokens: n(out, "output tokens")?,
                    })
                } else if let Some(rest) = spec.strip_prefix("multiturn:") {
                    let parts: Vec<&str> = rest.split(':').collect();
                    let (turns, input, output, think) = match parts.as_slice() {
                        [t, i, o] => (t, i, o, "0s"),
                        [t, i, o, think] => (t, i, o, *think),
                        _ => return Err(bad(
                            "expected multiturn:TURNS:IN:OUT[:THINK], each a number or a range \
                                 (multiturn:2-5:64-256:32:500ms-2s)"
                                .into(),
                        )),
                    };
                    Source::MultiTurn {
                        name: spec.to_string(),
                        conversations: MultiTurnSource::Synthetic {
                            turns: Range::parse(turns, "turns").map_err(bad)?,
                            input: Range::parse(input, "input tokens").map_err(bad)?,
                            output: Range::parse(output, "output tokens").map_err(bad)?,
                            think: ThinkTime::parse(think).map_err(bad)?,
                        },
                    }
                } else if let Some(rest) = spec.strip_prefix("sharegpt-multiturn:") {
                    // A path may hold colons; a think time is the last part
                    // only when it reads as one.
                    let (path, think) = match rest.rsplit_once(':') {
                        Some((path, t)) if ThinkTime::parse(t).is_ok() => {
                            (path, ThinkTime::parse(t).map_err(bad)?)
                        }
                        _ => (rest, ThinkTime::parse("0s").map_err(bad)?),
                    };
                    Source::MultiTurn {
                        name: spec.to_string(),
                        conversations: Self::sharegpt_turns(Path::new(path), think)?,
                    }
                } else if let Some(path) = spec.strip_prefix("trace:") {
                    Source::Trace(Arc::new(Trace::read(Path::new(path))?))
                } else {
                    return Err(bad(
                        "unknown workload; use fixed:IN:OUT, short, medium, long, chat, code, \
                         long-qa, summarization, sharegpt:PATH, shared-prefix:G:R:P:S:OUT, \
                         multiturn:TURNS:IN:OUT[:THINK], sharegpt-multiturn:PATH[:THINK] or trace:PATH.jsonl"
                            .into(),
                    ));
                }
            }
        })
    }

    /// The first human turn of every ShareGPT conversation that has it
    /// answered: the prompt, and the reply's length as the output length.
    pub(super) fn sharegpt(path: &Path) -> Result<Source, WorkloadError> {
        let conversations: Vec<Conversation> = read_sharegpt(path)?
            .into_iter()
            .filter(|c| c.first_human_answered)
            .filter_map(|c| c.turns.into_iter().next())
            .collect();
        if conversations.is_empty() {
            return Err(WorkloadError::ShareGpt {
                path: path.to_path_buf(),
                message: "no conversation whose first human turn is followed by a reply".into(),
            });
        }
        Ok(Source::ShareGpt {
            path: path.to_path_buf(),
            conversations,
        })
    }

    /// Every ShareGPT conversation with at least one human turn followed by
    /// a reply: all such turns, in order.
    pub(super) fn sharegpt_turns(
        path: &Path,
        think: ThinkTime,
    ) -> Result<MultiTurnSource, WorkloadError> {
        let conversations = read_sharegpt(path)?.into_iter().map(|c| c.turns).collect();
        Ok(MultiTurnSource::ShareGpt {
            path: path.to_path_buf(),
            conversations,
            think,
        })
    }
}

/// One ShareGPT conversation: its human turns that a non-empty reply
/// follows, in order, and whether the first human turn is among them.
pub(super) struct ShareGptConversation {
    turns: Vec<Conversation>,
    first_human_answered: bool,
}

/// Reads a ShareGPT file (a JSON array of `{"conversations": [{"from",
/// "value"}, ...]}`), keeping the conversations with an answered human turn;
/// refuses a file without any.
pub(super) fn read_sharegpt(path: &Path) -> Result<Vec<ShareGptConversation>, WorkloadError> {
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
        let field =
            |i: usize, k: &str| turns.get(i).and_then(|t| t.get(k)).and_then(|v| v.as_str());
        let first_human = (0..turns.len()).find(|&i| field(i, "from") == Some("human"));
        let mut held = ShareGptConversation {
            turns: Vec::new(),
            first_human_answered: false,
        };
        for i in (0..turns.len()).filter(|&i| field(i, "from") == Some("human")) {
            let (Some(prompt), Some(reply)) = (field(i, "value"), field(i + 1, "value")) else {
                continue;
            };
            if prompt.trim().is_empty() || reply.trim().is_empty() {
                continue;
            }
            held.first_human_answered |= Some(i) == first_human;
            held.turns.push(Conversation {
                prompt: prompt.to_string(),
                input_tokens_estimate: estimate_tokens(prompt),
                output_tokens: estimate_tokens(reply),
            });
        }
        if !held.turns.is_empty() {
            conversations.push(held);
        }
    }
    if conversations.is_empty() {
        return Err(err(
            "no conversation with a human turn followed by a reply".into()
        ));
    }
    Ok(conversations)
}

/// Conversation `index` of `stream`: its turns, lengths and think times.
#[expect(
    clippy::expect_used,
    reason = "parse refuses a ShareGPT file without a conversation"
)]
pub(super) fn conversation(
    source: &MultiTurnSource,
    stream: &PromptStream,
    index: u64,
) -> Vec<Turn> {
    let mut lengths = stream.lengths_rng(index);
    let mut text = stream.text_rng(index);
    match source {
        MultiTurnSource::Synthetic {
            turns,
            input,
            output,
            think,
        } => (0..turns.sample(&mut lengths))
            .map(|_| {
                let input_tokens = input.sample(&mut lengths);
                Turn {
                    user: synthetic_text(&mut text, input_tokens),
                    input_tokens,
                    max_tokens: output.sample(&mut lengths),
                    think: think.sample(&mut lengths),
                }
            })
            .collect(),
        MultiTurnSource::ShareGpt {
            conversations,
            think,
            ..
        } => conversations
            .choose(&mut text)
            .expect("non-empty")
            .iter()
            .map(|c| Turn {
                user: c.prompt.clone(),
                input_tokens: c.input_tokens_estimate,
                max_tokens: c.output_tokens.max(1),
                think: think.sample(&mut lengths),
            })
            .collect(),
    }
}

/// Part of a prompt: token ids, or words.
pub(super) enum Content {
    Ids(Vec<i32>),
    Words(Vec<&'static str>),
}

pub(super) fn random_words(rng: &mut ChaCha8Rng, n: u32) -> Vec<&'static str> {
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect()
}

/// About `tokens` tokens of text: random common words, so no two requests
/// share a prefix a server could cache.
pub(super) fn synthetic_text(rng: &mut ChaCha8Rng, tokens: u32) -> String {
    random_words(rng, tokens).join(" ")
}

/// Exactly `tokens` tokens by `tokenizer` where words allow it: start from
/// one word a token, then add or drop words by the difference until the
/// count matches (a few rounds; words are one or two tokens each).
pub(super) fn exact_text(rng: &mut ChaCha8Rng, tokens: u32, tokenizer: &Tokenizer) -> String {
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
