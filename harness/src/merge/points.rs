//! One served point from its parts: the counts added up, the windows
//! joined, the distributions merged exactly.

use super::*;

/// One served point from the same load's points of several files.
pub(crate) fn merge_http_points(
    parts: &[(&str, &HttpPoint)],
    notes: &mut Vec<String>,
) -> Result<HttpPoint, MergeError> {
    let label = parts[0].1.load.label();
    let stats = |name: &str, get: fn(&HttpPoint) -> Option<&Stats>| {
        let v: Vec<(&str, Option<&Stats>)> = parts.iter().map(|(f, p)| (*f, get(p))).collect();
        merge_stats(&v, &format!("{label} {name}"))
    };
    let mut counts = HttpCounts::new(parts[0].1);
    for (i, (_, p)) in parts.iter().enumerate() {
        counts.add(i, p);
    }
    let HttpCounts {
        requests,
        late,
        empty,
        slo_met,
        any_slo,
        sources,
        discrepancy,
        cache,
        check,
        cpu_s,
        windows,
        all_timed,
    } = counts;
    if !all_timed {
        notes.push(format!(
            "{label}: a file without point windows (older than first_send_unix_s): its window is counted apart from the others, as for runs one after another"
        ));
    }
    let duration_s = union_length(windows);
    let per_sec = |n: f64| {
        if duration_s > 0.0 {
            n / duration_s
        } else {
            0.0
        }
    };
    let output_tokens = stats("output_tokens", |p| p.output_tokens.as_ref())?;
    let input_tokens = stats("input_tokens", |p| p.input_tokens.as_ref())?;
    let output_total = total(&output_tokens);
    let first = parts[0].1;
    Ok(HttpPoint {
        load: first.load.clone(),
        complete: parts.iter().all(|(_, p)| p.complete),
        late_requests: late,
        schedule_lag_ms: stats("schedule_lag_ms", |p| p.schedule_lag_ms.as_ref())?,
        ttft_ms: stats("ttft_ms", |p| p.ttft_ms.as_ref())?,
        ttft_from_scheduled_ms: stats("ttft_from_scheduled_ms", |p| {
            p.ttft_from_scheduled_ms.as_ref()
        })?,
        e2e_from_scheduled_ms: stats("e2e_from_scheduled_ms", |p| {
            p.e2e_from_scheduled_ms.as_ref()
        })?,
        itl_ms: stats("itl_ms", |p| p.itl_ms.as_ref())?,
        tpot_ms: stats("tpot_ms", |p| p.tpot_ms.as_ref())?,
        e2e_ms: stats("e2e_ms", |p| p.e2e_ms.as_ref())?,
        output_tokens_source: sources,
        token_count_discrepancy: discrepancy,
        empty_chunks: empty,
        duration_s,
        first_send_unix_s: parts
            .iter()
            .filter_map(|(_, p)| p.first_send_unix_s)
            .min_by(f64::total_cmp)
            .filter(|_| all_timed),
        output_throughput_tok_s: per_sec(output_total),
        request_throughput_req_s: per_sec(requests.succeeded as f64),
        input_throughput_tok_s: per_sec(total(&input_tokens)),
        per_request_output_tok_s: stats("per_request_output_tok_s", |p| {
            p.per_request_output_tok_s.as_ref()
        })?,
        goodput_req_s: any_slo.then(|| per_sec(slo_met as f64)),
        slo_met: any_slo.then_some(slo_met),
        server_prompt_ms: stats("server_prompt_ms", |p| p.server_prompt_ms.as_ref())?,
        server_predicted_per_token_ms: stats("server_predicted_per_token_ms", |p| {
            p.server_predicted_per_token_ms.as_ref()
        })?,
        prompt_cache: cache.map(|c| PromptCacheUse {
            cached_fraction: c.unintended_cached_tokens as f64 / c.prompt_tokens.max(1) as f64,
            ..c
        }),
        prompt_token_check: check.map(|(c, sum)| PromptTokenCheck {
            mean_server_minus_sent: sum / c.requests_compared.max(1) as f64,
            ..c
        }),
        client: client_cost(cpu_s, duration_s, output_total),
        input_tokens,
        output_tokens,
        requests,
        // Samples of separate runs are not one time series.
        telemetry: None,
        server_metrics: None,
        num_requests_planned: None,
        duration_planned_s: None,
        prompt_stream: None,
        turns: None,
        conversations: None,
        prefix_groups: None,
        validity: None,
        slo_verdict: None,
        precision: None,
        energy: None,
        // Each file's window is its own: slices and steady windows do not
        // add up across files.
        steady_state: None,
        slices: None,
        start: None,
    })
    .map(|mut point: HttpPoint| {
        point.validity = Some(point.assess());
        point
    })
}

/// The client's CPU over the joined window: its share of the window and its
/// cost per output token.
fn client_cost(cpu_s: Option<f64>, duration_s: f64, output_total: f64) -> ClientCost {
    ClientCost {
        cpu_s,
        cpu_percent: cpu_s
            .filter(|_| duration_s > 0.0)
            .map(|c| 100.0 * c / duration_s),
        cpu_ms_per_output_token: cpu_s
            .filter(|_| output_total > 0.0)
            .map(|c| c * 1e3 / output_total),
        preconnected: None,
        connections_opened: None,
    }
}

/// The counts of a point's parts, added up; the windows they ran in, to be
/// joined.
pub(super) struct HttpCounts {
    requests: RequestCounts,
    late: u64,
    empty: u64,
    slo_met: u64,
    any_slo: bool,
    sources: BTreeMap<String, u64>,
    discrepancy: Option<TokenDiscrepancy>,
    cache: Option<PromptCacheUse>,
    /// The check, and the sum of its differences.
    check: Option<(PromptTokenCheck, f64)>,
    cpu_s: Option<f64>,
    /// (start, length) of each part's window, s.
    windows: Vec<(f64, f64)>,
    /// Every part knows when its window started.
    all_timed: bool,
}

impl HttpCounts {
    /// Nothing counted yet, the request counts started from the first
    /// part's (which `add` does not add again).
    fn new(first: &HttpPoint) -> HttpCounts {
        let mut requests = first.requests.clone();
        requests.failed_by_class.clear();
        HttpCounts {
            requests,
            late: 0,
            empty: 0,
            slo_met: 0,
            any_slo: false,
            sources: BTreeMap::new(),
            discrepancy: None,
            cache: None,
            check: None,
            cpu_s: Some(0.0),
            windows: Vec::new(),
            all_timed: true,
        }
    }

    /// Adds part `i`.
    fn add(&mut self, i: usize, p: &HttpPoint) {
        let requests = &mut self.requests;
        if i > 0 {
            requests.total += p.requests.total;
            requests.succeeded += p.requests.succeeded;
            requests.failed += p.requests.failed;
            requests.cancelled += p.requests.cancelled;
            requests.retried += p.requests.retried;
        }
        for (class, n) in &p.requests.failed_by_class {
            *requests.failed_by_class.entry(class.clone()).or_default() += n;
        }
        self.late += p.late_requests;
        self.empty += p.empty_chunks;
        if let Some(m) = p.slo_met {
            self.slo_met += m;
            self.any_slo = true;
        }
        for (s, n) in &p.output_tokens_source {
            *self.sources.entry(s.clone()).or_default() += n;
        }
        if let Some(d) = &p.token_count_discrepancy {
            let m = self.discrepancy.get_or_insert_with(|| TokenDiscrepancy {
                against: d.against.clone(),
                ..TokenDiscrepancy::default()
            });
            m.requests_compared += d.requests_compared;
            m.requests_differing += d.requests_differing;
            m.total_abs_difference += d.total_abs_difference;
        }
        if let Some(c) = &p.prompt_cache {
            let m = self.cache.get_or_insert_with(|| PromptCacheUse {
                source: c.source.clone(),
                ..PromptCacheUse::default()
            });
            m.requests_reporting += c.requests_reporting;
            m.requests_hit += c.requests_hit;
            m.cached_tokens += c.cached_tokens;
            m.unintended_cached_tokens += c.unintended_cached_tokens;
            m.prompt_tokens += c.prompt_tokens;
        }
        if let Some(c) = &p.prompt_token_check {
            let (m, sum) = self
                .check
                .get_or_insert_with(|| (PromptTokenCheck::default(), 0.0));
            m.requests_compared += c.requests_compared;
            m.requests_differing += c.requests_differing;
            *sum += c.mean_server_minus_sent * c.requests_compared as f64;
        }
        self.cpu_s = self.cpu_s.zip(p.client.cpu_s).map(|(a, b)| a + b);
        match p.first_send_unix_s {
            Some(start) => self.windows.push((start, p.duration_s)),
            None => {
                self.all_timed = false;
                self.windows.push((i as f64 * 1e12, p.duration_s));
            }
        }
    }
}
