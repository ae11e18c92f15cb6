//! Reading one response's event stream: each chunk timestamped as it is
//! parsed, every failure classified, every buffer bounded.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::failure::{body_failure, failure, Failure, FailureClass};
use super::request::Outcome;
use crate::chunk::Chunk;
use crate::sse::{Event, EventParser};
use inferbench_core::error_chain;

/// How long the client waits, after `[DONE]`, for the body's end.
const DRAIN_AFTER_DONE: Duration = Duration::from_millis(50);

/// Reads an event stream to its end into `outcome`: each content chunk's
/// arrival, the text, usage, timings and finish reason; any failure
/// classified. Generic over the byte stream so that tests feed it bytes
/// split anywhere.
pub async fn read_events<S, B, E>(
    body: S,
    outcome: &mut Outcome,
    timeout: Duration,
) -> Result<(), Failure>
where
    S: futures_util::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::error::Error + 'static,
{
    // Each chunk is stamped with the arrival of the bytes that completed
    // it, taken before SSE and JSON parsing, so that parsing costs no
    // accuracy.
    let mut body = body;
    let mut parser = EventParser::default();
    // One timer for stall detection, re-armed only when it fires, so that
    // a chunk costs no timer registration on the client's hot path.
    let mut last_data = Instant::now();
    let stall = tokio::time::sleep(timeout);
    tokio::pin!(stall);
    let mut done = false;
    'pieces: loop {
        let next = tokio::select! {
            biased;
            next = body.next() => next,
            () = &mut stall => {
                let quiet_until = last_data + timeout;
                if Instant::now() >= quiet_until {
                    return Err(failure(
                        FailureClass::Stall,
                        format!("no data for {timeout:?} after {} chunks", outcome.chunks),
                    ));
                }
                stall.as_mut().reset(quiet_until.into());
                continue;
            }
        };
        let piece = match next {
            None => {
                if let Some(event) = parser.finish() {
                    done = take_event(outcome, event, Instant::now())?;
                }
                break;
            }
            Some(Ok(ref piece)) => piece.as_ref(),
            Some(Err(e)) => {
                let (class, what) = body_failure(&e);
                return Err(failure(
                    class,
                    format!(
                        "{what} after {} chunks: {}",
                        outcome.chunks,
                        error_chain(&e)
                    ),
                ));
            }
        };
        let now = Instant::now();
        let mut pos = 0;
        while let Some(event) = parser.next_event(piece, &mut pos).map_err(|e| {
            failure(
                FailureClass::MalformedSse,
                format!("after {} chunks: {e}", outcome.chunks),
            )
        })? {
            last_data = now;
            if take_event(outcome, event, now)? {
                done = true;
                break 'pieces;
            }
        }
    }
    if done {
        // A body dropped before its end takes its connection with it, and
        // the next request would pay for a new handshake: read the end,
        // which a server sends right after [DONE].
        let _ = tokio::time::timeout(DRAIN_AFTER_DONE, async {
            while body.next().await.is_some() {}
        })
        .await;
    }
    if !done && outcome.finish_reason.is_none() {
        return Err(failure(
            FailureClass::StreamCut,
            format!(
                "stream ended after {} chunks without [DONE] or a finish_reason",
                outcome.chunks
            ),
        ));
    }
    if outcome.content_times.is_empty() {
        return Err(failure(
            FailureClass::ZeroTokens,
            format!("{} chunks, none with generated text", outcome.chunks),
        ));
    }
    Ok(())
}

/// One event, whose bytes arrived at `now`, into the outcome; true at
/// `[DONE]`.
fn take_event(outcome: &mut Outcome, event: Event<'_>, now: Instant) -> Result<bool, Failure> {
    let data = std::str::from_utf8(event.data).map_err(|e| {
        failure(
            FailureClass::MalformedSse,
            format!("after {} chunks: data is not UTF-8: {e}", outcome.chunks),
        )
    })?;
    if event.event == b"error" {
        return Err(failure(FailureClass::ServerError, data.to_string()));
    }
    if data.trim() == "[DONE]" {
        return Ok(true);
    }
    let chunk = Chunk::parse(data).map_err(|e| {
        let shown: String = data.chars().take(120).collect();
        failure(FailureClass::MalformedJson, format!("{e} in data: {shown}"))
    })?;
    if let Some(error) = chunk.error {
        return Err(failure(FailureClass::ServerError, error));
    }
    outcome.chunks += 1;
    if chunk.has_content() {
        outcome.content_times.push(now);
        if let (Some(text), Some(piece)) = (outcome.text.as_mut(), chunk.text.as_deref()) {
            text.push_str(piece);
        }
    } else if chunk.text.is_some() {
        outcome.empty_chunks += 1;
    }
    if let Some(reason) = chunk.finish_reason {
        outcome.finish_reason = Some(reason.into_owned());
    }
    if chunk.usage.is_some() {
        outcome.usage = chunk.usage;
    }
    if chunk.timings.is_some() {
        outcome.server_timings = chunk.timings;
    }
    if outcome.system_fingerprint.is_none() {
        outcome.system_fingerprint = chunk.system_fingerprint.map(Cow::into_owned);
    }
    if outcome.response_id.is_none() {
        outcome.response_id = chunk.id.map(Cow::into_owned);
    }
    Ok(false)
}

#[cfg(test)]
mod read_events_tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// What a stream left in the outcome, to compare two readings.
    type Reading = (
        u64,
        u64,
        usize,
        Option<String>,
        Option<String>,
        bool,
        Option<FailureClass>,
    );

    fn outcome() -> Outcome {
        Outcome::new(Instant::now(), 0, true)
    }

    async fn read_stream<S>(body: S) -> (Reading, Option<Failure>)
    where
        S: futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Unpin,
    {
        let mut o = outcome();
        let failure = read_events(body, &mut o, Duration::from_secs(5))
            .await
            .err();
        let reading = (
            o.chunks,
            o.empty_chunks,
            o.content_times.len(),
            o.text,
            o.finish_reason,
            o.usage.is_some() && o.server_timings.is_some(),
            failure.as_ref().map(|f| f.class),
        );
        (reading, failure)
    }

    async fn read(pieces: Vec<Vec<u8>>) -> (Reading, Option<Failure>) {
        read_stream(futures_util::stream::iter(pieces.into_iter().map(Ok))).await
    }

    /// A llama-server-like stream: two content chunks, an empty one, the
    /// final chunk with usage and timings, then [DONE].
    fn stream(newline: &str) -> Vec<u8> {
        let events = [
            r#"data: {"choices":[{"text":"Hello","index":0,"finish_reason":null}],"object":"text_completion"}"#,
            r#"data: {"choices":[{"text":" wörld","index":0,"finish_reason":null}]}"#,
            r#"data: {"choices":[{"text":"","index":0,"finish_reason":null}]}"#,
            r#"data: {"choices":[{"text":"","index":0,"finish_reason":"length"}],"usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5},"timings":{"prompt_n":3,"prompt_ms":1.5,"predicted_n":2,"predicted_ms":2.0,"predicted_per_token_ms":1.0}}"#,
            "data: [DONE]",
        ];
        events
            .iter()
            .map(|e| format!("{e}{newline}{newline}"))
            .collect::<String>()
            .into_bytes()
    }

    #[tokio::test]
    async fn the_same_events_however_the_bytes_are_split() {
        for newline in ["\n", "\r\n"] {
            let body = stream(newline);
            let (whole, failure) = read(vec![body.clone()]).await;
            assert!(failure.is_none(), "{failure:?}");
            assert_eq!(whole.2, 2, "two content chunks");
            assert_eq!(whole.3.as_deref(), Some("Hello wörld"));
            assert!(whole.5, "usage and timings kept");
            // Every split into two pieces, the multi-byte 'ö' included.
            for split in 0..=body.len() {
                let (r, _) = read(vec![body[..split].to_vec(), body[split..].to_vec()]).await;
                assert_eq!(r, whole, "split at {split}");
            }
            // Random splits into many small pieces.
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            for _ in 0..500 {
                let mut pieces = Vec::new();
                let mut at = 0;
                while at < body.len() {
                    let n = rng.random_range(1..=12).min(body.len() - at);
                    pieces.push(body[at..at + n].to_vec());
                    at += n;
                }
                assert_eq!(read(pieces).await.0, whole);
            }
        }
    }

    #[tokio::test]
    async fn garbage_is_classified_never_a_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let words: [&[u8]; 8] = [
            b"data: ", b"\n", b"\n\n", b"{", b"}", b"[DONE]", b"\xff", b":",
        ];
        for _ in 0..2000 {
            let mut body = Vec::new();
            for _ in 0..rng.random_range(0..60) {
                if rng.random_bool(0.5) {
                    body.extend_from_slice(words[rng.random_range(0..words.len())]);
                } else {
                    body.push(rng.random());
                }
            }
            let (reading, failure) = read(vec![body]).await;
            // Either a classified failure, or a stream with content.
            assert!(failure.is_some() || reading.2 > 0, "{reading:?}");
        }
    }

    #[tokio::test]
    async fn invalid_utf8_is_a_malformed_stream() {
        let (_, failure) = read(vec![
            b"data: {\"choices\":[{\"text\":\"\xff\xfe\"}]}\n\n".to_vec()
        ])
        .await;
        assert_eq!(failure.map(|f| f.class), Some(FailureClass::MalformedSse));
    }

    #[tokio::test]
    async fn a_ten_megabyte_line_is_refused_at_the_bound() {
        let mut pieces = vec![b"data: ".to_vec()];
        pieces.extend((0..160).map(|_| vec![b'a'; 64 * 1024]));
        pieces.push(b"\n\n".to_vec());
        let (_, failure) = read(pieces).await;
        let failure = failure.expect("refused");
        assert_eq!(failure.class, FailureClass::MalformedSse);
        assert!(
            failure.message.contains("a line longer than"),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn a_never_ending_line_ends_with_a_failure() {
        let endless = futures_util::stream::repeat_with(|| Ok(vec![b'x'; 64 * 1024]));
        let (_, failure) = read_stream(endless).await;
        assert_eq!(failure.map(|f| f.class), Some(FailureClass::MalformedSse));
    }
}
