//! One streamed chunk of an OpenAI-compatible response, as the servers we
//! know send it. Only what measurement needs is read; unknown fields are
//! ignored, so any compatible server parses.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A response's token counts, as the server reports them in `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt as the server tokenized it.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Tokens the server generated for this response.
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// OpenAI's `prompt_tokens_details`: llama-server always sends it, vLLM
    /// with `--enable-prompt-tokens-details`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// OpenAI's breakdown of the prompt tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens the server took from its prefix cache instead of
    /// evaluating them.
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

// Strings borrow from the event's data where they hold no escape, so that a
// streamed chunk costs no allocation for its id, text or finish reason: this
// runs once per token on the client's hot path.
#[derive(Debug, Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct Choice<'a> {
    /// `/v1/completions`.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    /// `/v1/chat/completions`.
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

/// The first element of a JSON array, the others read and dropped: a chunk's
/// `choices` without a vector to hold them.
#[derive(Debug)]
struct FirstOf<T>(Option<T>);

impl<T> Default for FirstOf<T> {
    fn default() -> Self {
        FirstOf(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FirstOf<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = FirstOf<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstOf(first))
            }
        }
        deserializer.deserialize_seq(Visitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: FirstOf<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    /// llama.cpp's server: its own prompt and generation timings.
    #[serde(default)]
    timings: Option<Value>,
    #[serde(default, borrow)]
    system_fingerprint: Option<Cow<'a, str>>,
    /// Some servers report a failure inside the stream.
    #[serde(default)]
    error: Option<Value>,
}

/// What a chunk tells the client, its strings borrowed from the event's
/// data where they can be.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chunk<'a> {
    /// The response's id (`cmpl-…`), which every chunk of it repeats.
    pub id: Option<Cow<'a, str>>,
    /// Generated text of the first choice; `None` when the chunk has no
    /// choice at all (vLLM's usage-only chunk).
    pub text: Option<Cow<'a, str>>,
    /// Why generation stopped (`length`, `stop`), on the last chunk only.
    pub finish_reason: Option<Cow<'a, str>>,
    /// Token counts, on the last chunk (or vLLM's usage-only chunk).
    pub usage: Option<Usage>,
    /// llama-server's own `timings` object, as it sent it.
    pub timings: Option<Value>,
    /// The server's build (`system_fingerprint`), when it names one.
    pub system_fingerprint: Option<Cow<'a, str>>,
    /// A failure the server reported inside the stream.
    pub error: Option<String>,
}

impl<'a> Chunk<'a> {
    /// Parses the JSON of one `data:` line.
    pub fn parse(data: &'a str) -> Result<Chunk<'a>, serde_json::Error> {
        let raw: RawChunk<'a> = serde_json::from_str(data)?;
        let (text, finish_reason) = match raw.choices.0 {
            Some(choice) => {
                let text = choice
                    .text
                    .or_else(|| {
                        choice
                            .delta
                            .map(|d| match (d.content, d.reasoning_content) {
                                (Some(content), None) => content,
                                (None, Some(reasoning)) => reasoning,
                                (content, reasoning) => {
                                    let mut s = content.unwrap_or_default().into_owned();
                                    s.push_str(&reasoning.unwrap_or_default());
                                    Cow::Owned(s)
                                }
                            })
                    })
                    .unwrap_or_default();
                (Some(text), choice.finish_reason)
            }
            None => (None, None),
        };
        Ok(Chunk {
            id: raw.id,
            text,
            finish_reason,
            usage: raw.usage,
            timings: raw.timings,
            system_fingerprint: raw.system_fingerprint,
            error: raw.error.map(|e| error_message(&e)),
        })
    }

    /// True when the chunk carries generated text: what TTFT and ITL count.
    pub fn has_content(&self) -> bool {
        self.text.as_deref().is_some_and(|t| !t.is_empty())
    }
}

/// The human part of an OpenAI-style error object (`{"error": {"message": …}}`
/// or a bare string), else the JSON itself.
pub fn error_message(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| o.get("error").map(error_message))
            .unwrap_or_else(|| error.to_string()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_chunk_with_llama_cpp_usage_and_timings() {
        let c = Chunk::parse(
            r#"{"choices":[{"text":" world","index":0,"finish_reason":"length"}],
                "usage":{"completion_tokens":16,"prompt_tokens":5,"total_tokens":21},
                "timings":{"prompt_ms":12.5,"predicted_per_token_ms":14.0},"id":"cmpl-1"}"#,
        )
        .unwrap();
        assert!(c.has_content());
        assert_eq!(c.text.as_deref(), Some(" world"));
        assert_eq!(c.finish_reason.as_deref(), Some("length"));
        assert_eq!(c.usage.unwrap().completion_tokens, Some(16));
        assert_eq!(c.timings.unwrap()["prompt_ms"], 12.5);
        assert_eq!(c.id.as_deref(), Some("cmpl-1"));
    }

    #[test]
    fn chat_delta_and_vllm_usage_only_chunk() {
        let c =
            Chunk::parse(r#"{"choices":[{"delta":{"role":"assistant","content":"Hi"}}]}"#).unwrap();
        assert_eq!(c.text.as_deref(), Some("Hi"));
        let usage =
            Chunk::parse(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7}}"#)
                .unwrap();
        assert!(!usage.has_content());
        assert_eq!(usage.text, None);
        assert_eq!(usage.usage.unwrap().prompt_tokens, Some(3));
    }

    #[test]
    fn escaped_text_reasoning_and_later_choices() {
        let c = Chunk::parse(r#"{"choices":[{"text":"a\"b\u00e9"},{"text":"second"}]}"#).unwrap();
        assert_eq!(c.text.as_deref(), Some("a\"b\u{e9}"));
        let c = Chunk::parse(r#"{"choices":[{"delta":{"content":"x","reasoning_content":"y"}}]}"#)
            .unwrap();
        assert_eq!(c.text.as_deref(), Some("xy"));
        let c = Chunk::parse(r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#).unwrap();
        assert_eq!(c.text.as_deref(), Some("think"));
        assert!(Chunk::parse(r#"{"choices":{"text":"x"}}"#).is_err());
    }

    #[test]
    fn empty_text_is_not_content() {
        let c = Chunk::parse(r#"{"choices":[{"text":"","finish_reason":null}]}"#).unwrap();
        assert_eq!(c.text.as_deref(), Some(""));
        assert!(!c.has_content());
    }

    #[test]
    fn in_stream_errors_and_malformed_json() {
        let c = Chunk::parse(r#"{"error":{"message":"out of memory","code":500}}"#).unwrap();
        assert_eq!(c.error.as_deref(), Some("out of memory"));
        assert!(Chunk::parse("{not json").is_err());
    }
}
