//! A served point in the result format of `vllm bench serve --save-result`
//! (vLLM 0.32, `vllm/benchmarks/serve.py`: the keys it writes without
//! `--save-detailed`), so that scripts written for vLLM's files read
//! inferbench's. The statistics are inferbench's own (the point's HDR
//! percentiles; `std_*` is the sample standard deviation where vLLM's
//! numpy takes the population one); what vLLM computes from every request
//! (`latencies`, `queue_times`, the peak output tokens and requests in any
//! one second) is computed the same way from the point's requests.

use serde_json::{json, Map, Value};

use crate::http::point::RequestRecord;
use crate::schema::{ArrivalKind, HttpPoint, HttpSettings};
use crate::stats::{Distribution, Stats};

/// The keys vLLM 0.32 writes for a generation benchmark without
/// `--save-detailed` and without `--metadata`, `--ramp-up-strategy`,
/// speculative decoding or probes; the closed loop (vLLM's
/// `--max-concurrency`) adds [`CLOSED_LOOP_KEYS`].
pub const VLLM_KEYS: &[&str] = &[
    "date",
    "endpoint_type",
    "backend",
    "label",
    "model_id",
    "tokenizer_id",
    "num_prompts",
    "request_rate",
    "burstiness",
    "max_concurrency",
    "duration",
    "completed",
    "failed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "latencies",
    "queue_times",
    "max_output_tokens_per_s",
    "max_concurrent_requests",
    "rtfx",
    "mean_ttft_ms",
    "median_ttft_ms",
    "std_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "std_itl_ms",
    "p99_itl_ms",
    "mean_e2el_ms",
    "median_e2el_ms",
    "std_e2el_ms",
    "p99_e2el_ms",
];

/// Added by vLLM when `--max-concurrency` is set: the wait of each request
/// for a free slot (all of a closed loop's requests arrive at once).
pub const CLOSED_LOOP_KEYS: &[&str] = &[
    "mean_client_queue_time_ms",
    "median_client_queue_time_ms",
    "std_client_queue_time_ms",
    "p99_client_queue_time_ms",
];

/// What vLLM computes from every request of a point, gathered as its
/// requests finish.
#[derive(Debug, Clone, Default)]
pub struct VllmExport {
    /// Successful requests: send and end, seconds from the point's start.
    spans: Vec<(f64, f64)>,
    /// Arrival of every content chunk of a successful request, seconds
    /// from the point's start (f32: a millisecond's precision for a day).
    token_times: Vec<f32>,
    /// End-to-end latency of every request (failed ones: 0), seconds.
    latencies: Vec<f64>,
    /// Send minus arrival of every request, seconds: in a closed loop from
    /// the point's start (vLLM's requests all arrive at once), in an open
    /// loop from the scheduled time.
    queue_times: Vec<f64>,
    queue_ms: Option<Distribution>,
}

impl VllmExport {
    /// An empty export for one point, recording queue times in ms.
    pub fn new() -> VllmExport {
        VllmExport {
            queue_ms: Some(Distribution::milliseconds()),
            ..VllmExport::default()
        }
    }

    /// Records one finished request of the point; a failed one adds only its
    /// queue time and a latency of 0.
    pub fn add(&mut self, r: &RequestRecord) {
        let sent_s = r.sent_ms / 1e3;
        let queue_s = match r.scheduled_ms {
            Some(scheduled) => (r.sent_ms - scheduled).max(0.0) / 1e3,
            None => sent_s,
        };
        self.queue_times.push(queue_s);
        self.latencies.push(if r.ok {
            r.e2e_ms.unwrap_or(0.0) / 1e3
        } else {
            0.0
        });
        if r.ok {
            if let Some(q) = self.queue_ms.as_mut() {
                q.record(queue_s * 1e3);
            }
            let e2e_s = r.e2e_ms.unwrap_or(0.0) / 1e3;
            self.spans.push((sent_s, sent_s + e2e_s));
            self.token_times
                .extend(r.content_ms.iter().map(|c| (sent_s + c / 1e3) as f32));
        }
    }

    /// Peak output tokens in one second and peak requests active in one
    /// second, with vLLM's one-second buckets from the first successful send.
    fn peaks(&self) -> (f64, u64) {
        let Some(start) = self.spans.iter().map(|s| s.0).reduce(f64::min) else {
            return (0.0, 0);
        };
        let end = self.spans.iter().map(|s| s.1).fold(start, f64::max);
        let seconds = (end - start).ceil() as usize + 1;
        let mut tokens = vec![0u64; seconds];
        let mut active = vec![0u64; seconds];
        for &t in &self.token_times {
            let bucket = (f64::from(t) - start).floor();
            if bucket >= 0.0 && (bucket as usize) < seconds {
                tokens[bucket as usize] += 1;
            }
        }
        for &(s, e) in &self.spans {
            let (first, last) = (
                (s - start) as usize,
                ((e - start) as usize).min(seconds - 1),
            );
            for slot in &mut active[first..=last] {
                *slot += 1;
            }
        }
        (
            tokens.iter().copied().max().unwrap_or(0) as f64,
            active.iter().copied().max().unwrap_or(0),
        )
    }

    /// The vLLM result object of `point`. `date` as vLLM writes it
    /// (`%Y%m%d-%H%M%S`).
    pub fn finish(&self, point: &HttpPoint, settings: &HttpSettings, date: &str) -> Value {
        let mut out = Map::new();
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_string(), v);
        };
        let backend = if settings.endpoint.contains("chat") {
            "openai-chat"
        } else {
            "openai"
        };
        put("date", json!(date));
        put("endpoint_type", json!(backend));
        put("backend", json!(backend));
        put("label", Value::Null);
        put("model_id", json!(settings.model));
        put(
            "tokenizer_id",
            json!(settings.tokenizer.as_deref().unwrap_or(&settings.model)),
        );
        put("num_prompts", json!(point.requests.total));
        let closed = point.load.concurrency.is_some();
        put(
            "request_rate",
            match point.load.rate {
                Some(r) => json!(r),
                None => json!("inf"),
            },
        );
        put(
            "burstiness",
            json!(match point.load.arrival {
                Some(ArrivalKind::Gamma) => point.load.burstiness.unwrap_or(1.0),
                _ => 1.0,
            }),
        );
        put("max_concurrency", json!(point.load.concurrency));
        let total = |s: &Option<Stats>| s.as_ref().map_or(0.0, |s| s.mean * s.count as f64);
        let (input, output) = (total(&point.input_tokens), total(&point.output_tokens));
        let duration = point.duration_s;
        let per_s = |v: f64| if duration > 0.0 { v / duration } else { 0.0 };
        put("duration", json!(duration));
        put("completed", json!(point.requests.succeeded));
        put("failed", json!(point.requests.failed));
        put("total_input_tokens", json!(input.round() as u64));
        put("total_output_tokens", json!(output.round() as u64));
        put("request_throughput", json!(point.request_throughput_req_s));
        put("request_goodput", json!(point.goodput_req_s));
        put("output_throughput", json!(point.output_throughput_tok_s));
        put("total_token_throughput", json!(per_s(input + output)));
        put("latencies", json!(self.latencies));
        put("queue_times", json!(self.queue_times));
        let (max_tokens, max_active) = self.peaks();
        put("max_output_tokens_per_s", json!(max_tokens));
        put("max_concurrent_requests", json!(max_active));
        put("rtfx", json!(0.0));
        let queue = self.queue_ms.as_ref().and_then(Distribution::stats);
        let mut metrics = vec![
            ("ttft", &point.ttft_ms),
            ("tpot", &point.tpot_ms),
            ("itl", &point.itl_ms),
            ("e2el", &point.e2e_ms),
        ];
        if closed {
            metrics.push(("client_queue_time", &queue));
        }
        for (name, stats) in metrics {
            // vLLM writes 0 for a metric with no value.
            let (mean, median, std, p99) = stats
                .as_ref()
                .map_or((0.0, 0.0, 0.0, 0.0), |s| (s.mean, s.p50, s.std, s.p99));
            put(&format!("mean_{name}_ms"), json!(mean));
            put(&format!("median_{name}_ms"), json!(median));
            put(&format!("std_{name}_ms"), json!(std));
            put(&format!("p99_{name}_ms"), json!(p99));
        }
        Value::Object(out)
    }
}
