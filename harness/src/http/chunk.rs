//! One streamed chunk of an OpenAI-compatible response, as the servers we
//! know send it. Only what measurement needs is read; unknown fields are
//! ignored, so any compatible server parses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// OpenAI's `prompt_tokens_details`: llama-server always sends it, vLLM
    /// with `--enable-prompt-tokens-details`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens the server took from its prefix cache instead of
    /// evaluating them.
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    /// `/v1/completions`.
    #[serde(default)]
    text: Option<String>,
    /// `/v1/chat/completions`.
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawChunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    /// llama.cpp's server: its own prompt and generation timings.
    #[serde(default)]
    timings: Option<Value>,
    #[serde(default)]
    system_fingerprint: Option<String>,
    /// Some servers report a failure inside the stream.
    #[serde(default)]
    error: Option<Value>,
}

/// What a chunk tells the client.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chunk {
    pub id: Option<String>,
    /// Generated text of the first choice; `None` when the chunk has no
    /// choice at all (vLLM's usage-only chunk).
    pub text: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub timings: Option<Value>,
    pub system_fingerprint: Option<String>,
    pub error: Option<String>,
}

impl Chunk {
    /// Parses the JSON of one `data:` line.
    pub fn parse(data: &str) -> Result<Chunk, serde_json::Error> {
        let raw: RawChunk = serde_json::from_str(data)?;
        let first = raw.choices.into_iter().next();
        let (text, finish_reason) = match first {
            Some(choice) => {
                let text = choice
                    .text
                    .or_else(|| {
                        choice.delta.map(|d| {
                            let mut s = d.content.unwrap_or_default();
                            s.push_str(&d.reasoning_content.unwrap_or_default());
                            s
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
