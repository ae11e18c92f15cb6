//! From finished requests to a result point: one [`RequestRecord`] per
//! request (the requests log), accumulated into the point's statistics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::chunk::Usage;
use super::client::{Failure, Outcome, RequestTag};
use super::timeline::{Timeline, TimelineRequest};
use super::tokenizer::Tokenizer;
use crate::metrics;
use crate::schema::{
    ClientCost, ConversationCounts, HttpPoint, LoadDescription, PartStats, PromptCacheUse,
    PromptTokenCheck, RequestCounts, Slo, TokenDiscrepancy,
};
use crate::stats::Distribution;

/// What a point says that the reader must not miss: cached prompt tokens in
/// a workload built to be cache-free, a server counting prompts otherwise
/// than they were sent.
pub fn point_notes(point: &HttpPoint, token_ids: bool) -> Vec<String> {
    let mut notes = Vec::new();
    let label = point.load.label();
    if let Some(cache) = &point.prompt_cache {
        if cache.requests_hit > 0 && cache.cached_fraction >= CACHE_WARNING_FRACTION {
            notes.push(format!(
                "{label}: the server served {} of {} prompt tokens ({:.1}%) from its cache beyond the BOS, in {} of {} requests \
                 ({}), although no two requests of this run share more than a BOS: its TTFT measures \
                 that cache, not prefill. Another client, or an earlier run with the same --prompt-seed, \
                 sent these prompts before.",
                cache.unintended_cached_tokens,
                cache.prompt_tokens,
                100.0 * cache.cached_fraction,
                cache.requests_hit,
                cache.requests_reporting,
                cache.source,
            ));
        }
    }
    // Text prompts are counted in words, an estimate; token ids are exact.
    if let Some(check) = point.prompt_token_check.as_ref().filter(|_| token_ids) {
        if check.requests_differing > 0 {
            let how = if (check.mean_server_minus_sent - 1.0).abs() < 1e-9
                && check.requests_differing == check.requests_compared
            {
                " (one more in every request: it adds a BOS token to each prompt)".to_string()
            } else {
                String::new()
            };
            notes.push(format!(
                "{label}: the server counted the prompt otherwise than sent in {} of {} requests, \
                 {:+.2} tokens on average{how}",
                check.requests_differing, check.requests_compared, check.mean_server_minus_sent,
            ));
        }
    }
    notes
}

pub use super::client::INTENDED_SHARED_PREFIX;
pub use crate::record::{
    requests_log_schema, Completed, RequestLogLine, RequestRecord, TokenSource,
};

/// Cached tokens beyond the BOS up to which a request's prompt may share its
/// start with an earlier one by chance: random-word prompts draw from 73
/// words, so two of them start with the same word one time in 73, the same
/// three words about once in 390,000 pairs. A request counts as answered
/// from the cache from this many tokens on; a re-sent prompt shares all of
/// them.
pub const CHANCE_OVERLAP: u64 = 4;

/// A point whose cached prompt tokens beyond the BOS reach this share of its
/// prompt tokens measured the server's prompt cache, not its prefill. (Two
/// random-word prompts that happen to start with the same word share two
/// tokens, far below it; a re-sent prompt is far above.)
pub const CACHE_WARNING_FRACTION: f64 = 0.01;

/// Where a server says how many prompt tokens it served from its cache.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CacheSource {
    /// OpenAI's `usage.prompt_tokens_details.cached_tokens` (llama-server;
    /// vLLM with `--enable-prompt-tokens-details`).
    Usage,
    /// llama-server's `timings.cache_n`.
    Timings,
}

impl CacheSource {
    /// The field the count is read from, as a point's `prompt_cache.source`
    /// names it.
    pub fn name(self) -> &'static str {
        match self {
            CacheSource::Usage => "usage.prompt_tokens_details.cached_tokens",
            CacheSource::Timings => "timings.cache_n",
        }
    }
}

/// The prompt tokens the server says it took from its cache, if it says.
pub fn cached_prompt_tokens(
    usage: Option<&Usage>,
    timings: Option<&serde_json::Value>,
) -> Option<(u64, CacheSource)> {
    usage
        .and_then(|u| u.prompt_tokens_details)
        .and_then(|d| d.cached_tokens)
        .map(|n| (n, CacheSource::Usage))
        .or_else(|| {
            timings
                .and_then(|t| t.get("cache_n"))
                .and_then(serde_json::Value::as_u64)
                .map(|n| (n, CacheSource::Timings))
        })
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

/// Accumulates one point.
#[derive(Debug)]
pub struct HttpAccumulator {
    start: Instant,
    /// The wall clock at `start`, for the point's window in Unix time.
    start_wall: std::time::SystemTime,
    cpu_start: Option<cpu_time::ProcessTime>,
    slo: Slo,
    counts: RequestCounts,
    late: u64,
    slo_met: u64,
    first_send: Option<Instant>,
    last_done: Option<Instant>,
    ttft: Distribution,
    ttft_from_scheduled: Distribution,
    e2e_from_scheduled: Distribution,
    itl: Distribution,
    tpot: Distribution,
    e2e: Distribution,
    schedule_lag: Distribution,
    input_tokens: Distribution,
    output_tokens: Distribution,
    per_request_tok_s: Distribution,
    server_prompt_ms: Distribution,
    server_per_token_ms: Distribution,
    output_tokens_total: u64,
    input_tokens_total: u64,
    sources: BTreeMap<String, u64>,
    discrepancy: TokenDiscrepancy,
    empty_chunks: u64,
    fingerprint: Option<String>,
    tokenizer: Option<Arc<Tokenizer>>,
    cache: PromptCacheUse,
    prompt_check: PromptTokenCheck,
    prompt_difference_sum: i64,
    /// Multi-turn workloads, by turn; shared-prefix ones, first of a group
    /// against the later ones.
    turns: BTreeMap<u32, Breakdown>,
    group_places: BTreeMap<&'static str, Breakdown>,
    conversations_done: u64,
    conversations_cut: u64,
    timeline: Timeline,
}

/// TTFT and prompt figures of one part of a point (a turn, a place in a
/// group).
#[derive(Debug, Clone)]
struct Breakdown {
    requests: u64,
    succeeded: u64,
    ttft: Distribution,
    input_tokens: Distribution,
    cached_tokens: Distribution,
}

impl Breakdown {
    fn new() -> Breakdown {
        Breakdown {
            requests: 0,
            succeeded: 0,
            ttft: Distribution::milliseconds(),
            input_tokens: Distribution::counts(),
            cached_tokens: Distribution::counts(),
        }
    }

    fn result(&self, label: String) -> PartStats {
        PartStats {
            part: label,
            requests: self.requests,
            succeeded: self.succeeded,
            ttft_ms: self.ttft.stats(),
            input_tokens: self.input_tokens.stats(),
            cached_prompt_tokens: self.cached_tokens.stats(),
        }
    }
}

impl HttpAccumulator {
    /// An empty point whose time zero is `start`, its requests checked
    /// against `slo` for goodput; the client's CPU time counts from now.
    pub fn new(start: Instant, slo: Slo) -> Self {
        let ms = Distribution::milliseconds;
        HttpAccumulator {
            start,
            // The wall clock at `start` itself, however long ago it was taken.
            start_wall: std::time::SystemTime::now() - start.elapsed(),
            cpu_start: cpu_time::ProcessTime::try_now().ok(),
            slo,
            counts: RequestCounts::default(),
            late: 0,
            slo_met: 0,
            first_send: None,
            last_done: None,
            ttft: ms(),
            ttft_from_scheduled: ms(),
            e2e_from_scheduled: ms(),
            itl: ms(),
            tpot: ms(),
            e2e: ms(),
            schedule_lag: ms(),
            input_tokens: Distribution::counts(),
            output_tokens: Distribution::counts(),
            per_request_tok_s: Distribution::per_second(),
            server_prompt_ms: ms(),
            server_per_token_ms: ms(),
            output_tokens_total: 0,
            input_tokens_total: 0,
            sources: BTreeMap::new(),
            discrepancy: TokenDiscrepancy::default(),
            empty_chunks: 0,
            fingerprint: None,
            tokenizer: None,
            cache: PromptCacheUse::default(),
            prompt_check: PromptTokenCheck::default(),
            prompt_difference_sum: 0,
            turns: BTreeMap::new(),
            group_places: BTreeMap::new(),
            conversations_done: 0,
            conversations_cut: 0,
            timeline: Timeline::new(start, None),
        }
    }

    /// Slices the point every `slice` (`--slice`) instead of by its length.
    pub fn with_slices(mut self, slice: Option<Duration>) -> Self {
        if slice.is_some() {
            self.timeline = Timeline::new(self.start, slice);
        }
        self
    }

    /// The breakdowns a request belongs to, by its tag.
    fn parts(&mut self, tag: RequestTag) -> Vec<&mut Breakdown> {
        let mut parts = Vec::new();
        if let Some(turn) = tag.turn {
            parts.push(self.turns.entry(turn).or_insert_with(Breakdown::new));
        }
        if tag.prefix_group.is_some() {
            let place = if tag.first_of_group { "first" } else { "later" };
            parts.push(
                self.group_places
                    .entry(place)
                    .or_insert_with(Breakdown::new),
            );
        }
        parts
    }

    /// Counts output tokens with the server's tokenizer when it sends no usage
    /// (the client must keep the generated text).
    pub fn with_tokenizer(mut self, tokenizer: Option<Arc<Tokenizer>>) -> Self {
        self.tokenizer = tokenizer;
        self
    }

    /// The server's build (`system_fingerprint`), from the first request
    /// that named one; `None` until one did.
    pub fn system_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Counts one finished request into the point's statistics (a failed
    /// one only in the counts) and returns its record for the requests log.
    #[expect(
        clippy::expect_used,
        reason = "a successful request has at least one content chunk: one without is classified zero_tokens"
    )]
    pub fn add(&mut self, c: Completed) -> RequestRecord {
        let o = c.outcome;
        let sent_ms = ms_between(self.start, o.sent);
        let schedule_lag_ms = c.scheduled.map(|s| ms_between(s, o.sent));
        self.counts.total += 1;
        self.counts.retried += u64::from(o.retries);
        if c.late {
            self.late += 1;
        }
        if let Some(lag) = schedule_lag_ms {
            self.schedule_lag.record(lag);
        }
        self.first_send = Some(self.first_send.map_or(o.sent, |f| f.min(o.sent)));
        let content_ms: Vec<f64> = o
            .content_times
            .iter()
            .map(|t| ms_between(o.sent, *t))
            .collect();
        let tag = c.tag;
        for part in self.parts(tag) {
            part.requests += 1;
        }
        if tag.turn.is_some() {
            match (&o.failure, tag.last_turn) {
                (Some(_), _) => self.conversations_cut += 1,
                (None, true) => self.conversations_done += 1,
                (None, false) => {}
            }
        }
        let mut record = RequestRecord {
            index: c.index,
            turn: tag.turn,
            prefix_group: tag.prefix_group,
            first_of_group: tag.prefix_group.map(|_| tag.first_of_group),
            scheduled_ms: c.scheduled.map(|s| ms_between(self.start, s)),
            sent_ms,
            schedule_lag_ms,
            late: c.late,
            input_tokens_requested: c.input_tokens_requested,
            content_ms,
            ..RequestRecord::of_outcome(&o)
        };
        if self.fingerprint.is_none() {
            self.fingerprint = o.system_fingerprint.clone();
        }
        if let Some(failure) = &o.failure {
            self.count_failure(failure, o.sent, c.scheduled);
            return record;
        }

        self.counts.succeeded += 1;
        let last = *o.content_times.last().expect("success has content");
        self.last_done = Some(self.last_done.map_or(last, |l| l.max(last)));
        let (output_tokens, source) = self.count_output_tokens(&o);
        self.empty_chunks += o.empty_chunks;

        let ttft = record.content_ms[0];
        let e2e = *record.content_ms.last().expect("non-empty");
        self.ttft.record(ttft);
        self.e2e.record(e2e);
        for gap in metrics::inter_token_gaps(&record.content_ms) {
            self.itl.record(gap);
        }
        let tpot = metrics::tpot_ms(e2e, ttft, output_tokens);
        if let Some(tpot) = tpot {
            self.tpot.record(tpot);
        }
        let ttft_from_scheduled = c.scheduled.map(|s| ms_between(s, o.content_times[0]));
        if let Some(t) = ttft_from_scheduled {
            self.ttft_from_scheduled.record(t);
        }
        let e2e_from_scheduled = c
            .scheduled
            .zip(o.content_times.last())
            .map(|(s, last)| ms_between(s, *last));
        if let Some(e) = e2e_from_scheduled {
            self.e2e_from_scheduled.record(e);
        }
        self.timeline.add(&TimelineRequest {
            sent: o.sent,
            scheduled: c.scheduled,
            ended: last,
            content_times: &o.content_times,
            output_tokens,
            ttft_ms: Some(ttft_from_scheduled.unwrap_or(ttft)),
            tpot_ms: tpot,
        });
        let input = record
            .input_tokens
            .unwrap_or(u64::from(c.input_tokens_requested));
        record.cached_prompt_tokens = self.count_cache(&o, input, tag.intended_shared);
        if let Some(seen) = record.input_tokens {
            self.check_prompt(seen, u64::from(c.input_tokens_requested));
        }
        self.count_success_in_parts(tag, ttft, input, record.cached_prompt_tokens);
        self.count_sizes(input, output_tokens, e2e);
        if let Some(t) = &o.server_timings {
            self.count_server_timings(t);
        }
        // Under an open loop the user waits from when the request was due.
        let ttft_seen = ttft_from_scheduled.unwrap_or(ttft);
        let e2e_seen = e2e_from_scheduled.unwrap_or(e2e);
        if !self.slo.is_empty() && self.meets_slo(ttft_seen, tpot, e2e_seen) {
            self.slo_met += 1;
        }
        record.ttft_ms = Some(ttft);
        record.ttft_from_scheduled_ms = ttft_from_scheduled;
        record.e2e_ms = Some(e2e);
        record.tpot_ms = tpot;
        record.output_tokens = Some(output_tokens);
        record.output_tokens_source = Some(source);
        record
    }

    /// A successful request in the turn and prefix-group breakdowns it
    /// belongs to.
    fn count_success_in_parts(
        &mut self,
        tag: RequestTag,
        ttft: f64,
        input: u64,
        cached: Option<u64>,
    ) {
        for part in self.parts(tag) {
            part.succeeded += 1;
            part.ttft.record(ttft);
            part.input_tokens.record(input as f64);
            if let Some(n) = cached {
                part.cached_tokens.record(n as f64);
            }
        }
    }

    /// llama.cpp's server's own account of a request: its prompt time and
    /// its time per output token.
    fn count_server_timings(&mut self, timings: &serde_json::Value) {
        if let Some(v) = timings.get("prompt_ms").and_then(|v| v.as_f64()) {
            self.server_prompt_ms.record(v.max(0.0));
        }
        if let Some(v) = timings
            .get("predicted_per_token_ms")
            .and_then(|v| v.as_f64())
        {
            self.server_per_token_ms.record(v.max(0.0));
        }
    }

    /// A successful request's prompt and output sizes, and its own output
    /// rate.
    fn count_sizes(&mut self, input: u64, output_tokens: u64, e2e_ms: f64) {
        self.input_tokens.record(input as f64);
        self.input_tokens_total += input;
        self.output_tokens.record(output_tokens as f64);
        self.output_tokens_total += output_tokens;
        if e2e_ms > 0.0 {
            self.per_request_tok_s
                .record(output_tokens as f64 / (e2e_ms / 1e3));
        }
    }

    /// Counts a failed request: in the counts and the time slices only.
    fn count_failure(&mut self, failure: &Failure, sent: Instant, scheduled: Option<Instant>) {
        self.timeline.add(&TimelineRequest {
            sent,
            scheduled,
            ended: Instant::now(),
            content_times: &[],
            output_tokens: 0,
            ttft_ms: None,
            tpot_ms: None,
        });
        self.counts.failed += 1;
        *self
            .counts
            .failed_by_class
            .entry(failure.class.name().to_string())
            .or_insert(0) += 1;
    }

    /// A successful request's output tokens, by the best count available
    /// (the server's usage, else the tokenizer's, else the content chunks),
    /// compared with the next best.
    fn count_output_tokens(&mut self, o: &Outcome) -> (u64, TokenSource) {
        let counts: Vec<(u64, TokenSource)> = [
            o.usage
                .and_then(|u| u.completion_tokens)
                .map(|n| (n, TokenSource::Usage)),
            self.tokenizer
                .as_ref()
                .zip(o.text.as_deref())
                .map(|(t, text)| (t.count(text) as u64, TokenSource::Tokenizer)),
            Some((o.content_times.len() as u64, TokenSource::Chunks)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (output_tokens, source) = counts[0];
        if let Some(&(other, against)) = counts.get(1) {
            let d = &mut self.discrepancy;
            if d.against.is_empty() {
                d.against = format!("{}_vs_{}", source.name(), against.name());
            }
            d.requests_compared += 1;
            if output_tokens != other {
                d.requests_differing += 1;
                d.total_abs_difference += output_tokens.abs_diff(other);
            }
        }
        *self.sources.entry(source.name().to_string()).or_insert(0) += 1;
        (output_tokens, source)
    }

    /// Counts what the server says it served from its prefix cache for a
    /// request of `input` prompt tokens, of which `intended_shared` the
    /// workload means to share: the cached tokens, when the server says.
    fn count_cache(
        &mut self,
        o: &Outcome,
        input: u64,
        intended_shared: Option<u64>,
    ) -> Option<u64> {
        let (cached, source) = cached_prompt_tokens(o.usage.as_ref(), o.server_timings.as_ref())?;
        let cache = &mut self.cache;
        cache.requests_reporting += 1;
        cache.cached_tokens += cached;
        cache.prompt_tokens += input;
        // A share the workload intends (a group's prefix, a conversation's
        // history) is not a repeat.
        let unintended = intended_shared.map_or(0, |intended| cached.saturating_sub(intended));
        if unintended >= CHANCE_OVERLAP {
            cache.requests_hit += 1;
            cache.unintended_cached_tokens += unintended;
        }
        if cache.source.is_empty() {
            cache.source = source.name().to_string();
        }
        Some(cached)
    }

    /// Compares the prompt tokens the server counted with those sent.
    fn check_prompt(&mut self, seen: u64, sent: u64) {
        let check = &mut self.prompt_check;
        check.requests_compared += 1;
        if seen != sent {
            check.requests_differing += 1;
        }
        self.prompt_difference_sum += seen as i64 - sent as i64;
    }

    /// Whether a request met every objective (a TPOT that cannot be known,
    /// one output token, meets its objective).
    fn meets_slo(&self, ttft: f64, tpot: Option<f64>, e2e: f64) -> bool {
        let meets = |limit: Option<f64>, value: Option<f64>| match (limit, value) {
            (Some(limit), Some(value)) => value <= limit,
            (Some(_), None) | (None, _) => true,
        };
        meets(self.slo.ttft_ms, Some(ttft))
            && meets(self.slo.tpot_ms, tpot)
            && meets(self.slo.e2e_ms, Some(e2e))
    }

    /// The point as the result file holds it, from every request added so
    /// far: `load` as described, `complete` false for a snapshot taken while
    /// it runs or a point cut short, `cancelled` the requests abandoned at an
    /// interrupt.
    pub fn finish(&self, load: LoadDescription, complete: bool, cancelled: u64) -> HttpPoint {
        let window = match (self.first_send, self.last_done) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        };
        let secs = window.as_secs_f64();
        let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
        let cpu_s = self
            .cpu_start
            .and_then(|start| start.try_elapsed().ok())
            .map(|d| d.as_secs_f64());
        let wall_s = self.start.elapsed().as_secs_f64();
        let mut counts = self.counts.clone();
        counts.cancelled = cancelled;
        let steady_state = self.timeline.steady_state(&load);
        let slices = self
            .timeline
            .slices(if self.ttft_from_scheduled.count() > 0 {
                "ttft_from_scheduled_ms"
            } else {
                "ttft_ms"
            });
        let mut point = HttpPoint {
            load,
            complete,
            requests: counts,
            late_requests: self.late,
            schedule_lag_ms: self.schedule_lag.stats(),
            ttft_ms: self.ttft.stats(),
            ttft_from_scheduled_ms: self.ttft_from_scheduled.stats(),
            e2e_from_scheduled_ms: self.e2e_from_scheduled.stats(),
            itl_ms: self.itl.stats(),
            tpot_ms: self.tpot.stats(),
            e2e_ms: self.e2e.stats(),
            input_tokens: self.input_tokens.stats(),
            output_tokens: self.output_tokens.stats(),
            output_tokens_source: self.sources.clone(),
            token_count_discrepancy: (self.discrepancy.requests_compared > 0)
                .then(|| self.discrepancy.clone()),
            empty_chunks: self.empty_chunks,
            duration_s: secs,
            first_send_unix_s: self.first_send.and_then(|first| {
                let wall = self.start_wall + first.saturating_duration_since(self.start);
                wall.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs_f64())
            }),
            output_throughput_tok_s: per_sec(self.output_tokens_total as f64),
            request_throughput_req_s: per_sec(self.counts.succeeded as f64),
            input_throughput_tok_s: per_sec(self.input_tokens_total as f64),
            per_request_output_tok_s: self.per_request_tok_s.stats(),
            goodput_req_s: (!self.slo.is_empty()).then(|| per_sec(self.slo_met as f64)),
            slo_met: (!self.slo.is_empty()).then_some(self.slo_met),
            server_prompt_ms: self.server_prompt_ms.stats(),
            server_predicted_per_token_ms: self.server_per_token_ms.stats(),
            prompt_cache: (self.cache.requests_reporting > 0).then(|| PromptCacheUse {
                cached_fraction: self.cache.unintended_cached_tokens as f64
                    / self.cache.prompt_tokens.max(1) as f64,
                ..self.cache.clone()
            }),
            prompt_token_check: (self.prompt_check.requests_compared > 0).then(|| {
                PromptTokenCheck {
                    mean_server_minus_sent: self.prompt_difference_sum as f64
                        / self.prompt_check.requests_compared as f64,
                    ..self.prompt_check.clone()
                }
            }),
            client: ClientCost {
                cpu_s,
                cpu_percent: cpu_s.map(|c| 100.0 * c / wall_s.max(1e-9)),
                cpu_ms_per_output_token: cpu_s
                    .filter(|_| self.output_tokens_total > 0)
                    .map(|c| c * 1e3 / self.output_tokens_total as f64),
                preconnected: None,
                connections_opened: None,
            },
            telemetry: None,
            server_metrics: None,
            num_requests_planned: None,
            duration_planned_s: None,
            prompt_stream: None,
            turns: (!self.turns.is_empty()).then(|| {
                self.turns
                    .iter()
                    .map(|(turn, b)| b.result(turn.to_string()))
                    .collect()
            }),
            conversations: (!self.turns.is_empty()).then(|| ConversationCounts {
                completed: self.conversations_done,
                cut_short: self.conversations_cut,
                per_s: per_sec(self.conversations_done as f64),
            }),
            prefix_groups: (!self.group_places.is_empty()).then(|| {
                ["first", "later"]
                    .iter()
                    .filter_map(|place| {
                        self.group_places
                            .get(place)
                            .map(|b| b.result((*place).to_string()))
                    })
                    .collect()
            }),
            validity: None,
            slo_verdict: None,
            precision: None,
            energy: None,
            steady_state,
            slices,
            start: None,
        };
        point.validity = Some(point.assess());
        point.slo_verdict = point.judge_slo(&self.slo);
        point
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::chunk::Chunk;

    /// The final chunk llama-server (0.5.0, 0c1e570) sent, serving Gemma 3
    /// 270M, for a 6-token prompt sent a second time (captured here with
    /// curl; scripts/servers/SSE-SAMPLES.md). Gemma's sliding-window
    /// attention keeps it from reusing more than the BOS.
    const LLAMA_SERVER_REPEATED: &str = r#"{"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"created":1796168732,"model":"gemma-3-270m-q4_k_m","system_fingerprint":"b1-0c1e570","object":"text_completion","usage":{"completion_tokens":4,"prompt_tokens":6,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":1}},"id":"chatcmpl-85KzLVzPJVQW8yqyENNYqOp8HjQ4IkAK","timings":{"cache_n":1,"prompt_n":5,"prompt_ms":3662.017,"prompt_per_token_ms":732.4033999999999,"prompt_per_second":1.3653677740982633,"predicted_n":4,"predicted_ms":5583.839,"predicted_per_token_ms":1861.2796666666666,"predicted_per_second":0.5372647742888003}}"#;

    #[test]
    fn cached_tokens_from_usage_first_then_timings() {
        let c = Chunk::parse(LLAMA_SERVER_REPEATED).unwrap();
        assert_eq!(
            cached_prompt_tokens(c.usage.as_ref(), c.timings.as_ref()),
            Some((1, CacheSource::Usage))
        );
        // Without usage details, llama-server's timings say the same.
        let mut usage = c.usage.unwrap();
        usage.prompt_tokens_details = None;
        assert_eq!(
            cached_prompt_tokens(Some(&usage), c.timings.as_ref()),
            Some((1, CacheSource::Timings))
        );
        // vLLM's usage-only chunk, with --enable-prompt-tokens-details.
        let vllm = Chunk::parse(
            r#"{"id":"cmpl-1","object":"text_completion","choices":[],"usage":{"prompt_tokens":129,"total_tokens":193,"completion_tokens":64,"prompt_tokens_details":{"cached_tokens":128}}}"#,
        )
        .unwrap();
        assert_eq!(
            cached_prompt_tokens(vllm.usage.as_ref(), None),
            Some((128, CacheSource::Usage))
        );
        // A server that says nothing: absent, never zero.
        let silent =
            Chunk::parse(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7}}"#)
                .unwrap();
        assert_eq!(cached_prompt_tokens(silent.usage.as_ref(), None), None);
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use crate::schema::LoadKind;

    fn completed(scheduled: Instant, sent: Instant, late: bool) -> Completed {
        let mut outcome = Outcome::new(sent, 3, false);
        outcome.content_times = (1..=3)
            .map(|k| sent + Duration::from_millis(10 * k))
            .collect();
        outcome.chunks = 3;
        Completed {
            index: 0,
            scheduled: Some(scheduled),
            late,
            input_tokens_requested: 8,
            tag: RequestTag::default(),
            outcome,
        }
    }

    fn open_load() -> LoadDescription {
        LoadDescription {
            kind: LoadKind::Open,
            concurrency: None,
            rate: Some(10.0),
            arrival: None,
            burstiness: None,
            max_inflight: None,
            trace_speed: None,
        }
    }

    /// E2E and TTFT from the intended send time equal those from the send
    /// when the client kept its schedule, and exceed them by the lag when it
    /// did not; TPOT, a difference of the two, is the same either way.
    #[test]
    fn latency_from_the_schedule_adds_exactly_the_lag() {
        let t0 = Instant::now();
        let mut on_time = HttpAccumulator::new(t0, Slo::default());
        on_time.add(completed(t0, t0, false));
        let p = on_time.finish(open_load(), true, 0);
        let (e2e, from_schedule) = (p.e2e_ms.unwrap(), p.e2e_from_scheduled_ms.unwrap());
        assert_eq!(e2e.p50, from_schedule.p50);
        assert_eq!(
            p.ttft_ms.unwrap().p50,
            p.ttft_from_scheduled_ms.unwrap().p50
        );

        let mut lagging = HttpAccumulator::new(t0, Slo::default());
        lagging.add(completed(t0, t0 + Duration::from_millis(25), true));
        let p = lagging.finish(open_load(), true, 0);
        let (e2e, from_schedule) = (p.e2e_ms.unwrap(), p.e2e_from_scheduled_ms.unwrap());
        assert!(
            (from_schedule.p50 - e2e.p50 - 25.0).abs() < 0.1,
            "{from_schedule:?} {e2e:?}"
        );
        let ttft_lag = p.ttft_from_scheduled_ms.unwrap().p50 - p.ttft_ms.unwrap().p50;
        assert!((ttft_lag - 25.0).abs() < 0.1, "{ttft_lag}");
        assert!((p.tpot_ms.unwrap().p50 - 10.0).abs() < 0.1);
    }
}
