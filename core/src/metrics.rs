//! The one place that defines the request-level latency metrics, for the
//! in-process and the HTTP mode alike.
//!
//! For one request (one sequence in-process) let `t0` be its send time (the
//! start of prefill in-process), `t1 < … < tn` the arrival times of the
//! chunks that carry generated content (n ≥ 1; a chunk with empty text, as
//! vLLM sends for a partial UTF-8 token, carries none), and `N` its output
//! token count. Then:
//!
//! | ours | formula | vLLM `bench serve` | GuideLLM | NVIDIA AIPerf |
//! |---|---|---|---|---|
//! | TTFT | `t1 − t0` | TTFT | time_to_first_token | time_to_first_token |
//! | ITL | each `t(k+1) − tk`, pooled over requests | ITL | (none: its "ITL" is our TPOT) | (its "inter_token_latency" is our TPOT) |
//! | TPOT | `(E2E − TTFT) / (N − 1)`, N ≥ 2 | TPOT | time_per_output_token | inter_token_latency |
//! | E2E | `tn − t0` | E2EL | request_latency | request_latency |
//!
//! Under an open-loop schedule each request also has an intended send time
//! `ts ≤ t0`; `TTFT from schedule = t1 − ts` is the coordinated-omission-
//! corrected TTFT, and `t0 − ts` is the schedule lag.
//!
//! ITL and TPOT differ when one chunk carries several tokens: ITL then sees
//! one long gap where TPOT averages over the tokens. Both are reported.

/// TPOT in ms: `(e2e − ttft) / (tokens − 1)`; `None` for fewer than two tokens.
pub fn tpot_ms(e2e_ms: f64, ttft_ms: f64, output_tokens: u64) -> Option<f64> {
    (output_tokens >= 2).then(|| (e2e_ms - ttft_ms).max(0.0) / (output_tokens - 1) as f64)
}

/// The gaps between consecutive content arrivals, in the unit of the input.
pub fn inter_token_gaps(content_times: &[f64]) -> impl Iterator<Item = f64> + '_ {
    content_times.windows(2).map(|w| (w[1] - w[0]).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpot_needs_two_tokens() {
        assert_eq!(tpot_ms(100.0, 10.0, 1), None);
        assert_eq!(tpot_ms(100.0, 10.0, 0), None);
        assert_eq!(tpot_ms(100.0, 10.0, 10), Some(10.0));
    }

    #[test]
    fn gaps_between_arrivals() {
        let gaps: Vec<f64> = inter_token_gaps(&[10.0, 12.5, 20.0]).collect();
        assert_eq!(gaps, [2.5, 7.5]);
        assert_eq!(inter_token_gaps(&[3.0]).count(), 0);
    }
}
