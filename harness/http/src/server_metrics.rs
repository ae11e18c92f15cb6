//! The server's own view of a point: its Prometheus `/metrics` text endpoint
//! sampled about once a second while the point runs, on a thread and runtime
//! of its own (so a slow scrape never delays a request or its timestamps),
//! summarized per point: gauges as mean and max, counters as their change and
//! rate over the point, histograms as the change of their buckets over the
//! point with bucket-estimated quantiles (as Prometheus' `histogram_quantile`
//! estimates them). Every series is kept under the server's own name and
//! labels; a metric the server does not expose is absent, never zero.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::client::{ClientConfig, HttpClient};
use crate::schema::server_metrics::{
    CounterSummary, GaugeSummary, HistogramSummary, ServerHeadline, ServerMetricsSummary,
};
use prom_text_format_parser::{Scrape, ScrapeParseError, Type, ValueType};

/// One series' reading in one scrape.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Gauge(f64),
    Counter(f64),
    /// Cumulative buckets (upper bound, count), ascending, `+Inf` last.
    Histogram {
        buckets: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    },
}

/// One scrape, its series keyed `name{label="value",...}` (labels sorted;
/// the name alone when a series has none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    series: BTreeMap<String, Reading>,
}

/// Why a scrape of the metrics endpoint gave no readings.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The endpoint could not be fetched: no client or runtime could be
    /// built, no answer, or an error status.
    #[error("{url}: {message}")]
    Fetch {
        /// The metrics URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The answer is not Prometheus text.
    #[error("{url}: not Prometheus text: {message}")]
    Parse {
        /// The metrics URL.
        url: String,
        /// Where and how the text fails to parse.
        message: String,
    },
}

fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let mut labels = labels.to_vec();
    labels.sort_unstable();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// Parses Prometheus text. Untyped samples count as gauges; a summary's sum
/// and count as counters (`NAME_sum`, `NAME_count`), its quantiles (already
/// quantiles over the server's own window) are left out.
pub fn parse(text: &str) -> Result<Readings, String> {
    let scrape = Scrape::parse(text).map_err(|e| match e {
        ScrapeParseError::Parse(message) => message,
        ScrapeParseError::Collect(errors) => errors
            .iter()
            .map(|m| {
                format!(
                    "lines {}-{}: {}",
                    m.line_no.start + 1,
                    m.line_no.end,
                    m.error
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    })?;
    let mut series = BTreeMap::new();
    for metric in scrape.metrics {
        match metric.kind {
            Type::Histogram => {
                let mut by_labels: BTreeMap<String, Reading> = BTreeMap::new();
                for sample in &metric.samples {
                    let mut le = None;
                    let labels: Vec<(&str, &str)> = sample
                        .labels
                        .iter()
                        .filter(|l| {
                            if l.key == "le" {
                                le = Some(l.value.as_str());
                                false
                            } else {
                                true
                            }
                        })
                        .map(|l| (l.key.as_str(), l.value.as_str()))
                        .collect();
                    let value = parse_float(&sample.value.value)?;
                    let entry = by_labels
                        .entry(series_key(&metric.name, &labels))
                        .or_insert(Reading::Histogram {
                            buckets: Vec::new(),
                            sum: 0.0,
                            count: 0.0,
                        });
                    let Reading::Histogram {
                        buckets,
                        sum,
                        count,
                    } = entry
                    else {
                        continue;
                    };
                    match sample.value.value_type {
                        ValueType::Sample => {
                            let bound = le
                                .ok_or_else(|| format!("{}: a bucket without `le`", metric.name))?;
                            buckets.push((parse_float(bound)?, value));
                        }
                        ValueType::Sum => *sum = value,
                        ValueType::Count => *count = value,
                    }
                }
                for (key, mut reading) in by_labels {
                    if let Reading::Histogram { buckets, .. } = &mut reading {
                        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    }
                    series.insert(key, reading);
                }
            }
            kind => {
                for sample in &metric.samples {
                    let labels: Vec<(&str, &str)> = sample
                        .labels
                        .iter()
                        .map(|l| (l.key.as_str(), l.value.as_str()))
                        .collect();
                    let value = parse_float(&sample.value.value)?;
                    let (name, reading) = match (kind, sample.value.value_type) {
                        (Type::Counter, _) => (metric.name.clone(), Reading::Counter(value)),
                        (Type::Summary, ValueType::Sum) => {
                            (format!("{}_sum", metric.name), Reading::Counter(value))
                        }
                        (Type::Summary, ValueType::Count) => {
                            (format!("{}_count", metric.name), Reading::Counter(value))
                        }
                        (Type::Summary, ValueType::Sample) => continue,
                        _ => (metric.name.clone(), Reading::Gauge(value)),
                    };
                    series.insert(series_key(&name, &labels), reading);
                }
            }
        }
    }
    Ok(Readings { series })
}

/// A float as Go's ParseFloat writes it (`+Inf`, `NaN` included).
fn parse_float(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

/// Running statistics of one gauge.
#[derive(Debug, Clone, Copy)]
struct GaugeAcc {
    sum: f64,
    max: f64,
    min: f64,
    n: u64,
}

impl GaugeAcc {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.max = self.max.max(v);
        self.min = self.min.min(v);
        self.n += 1;
    }

    fn summary(&self) -> GaugeSummary {
        GaugeSummary {
            mean: self.sum / self.n as f64,
            max: self.max,
            min: self.min,
            samples: self.n,
        }
    }
}

/// Folds a point's scrapes into its summary, holding only the first scrape,
/// the latest and a running account of each gauge: memory stays flat
/// however long the point.
#[derive(Debug, Clone)]
pub struct Aggregator {
    url: String,
    interval: Duration,
    first: Option<(Instant, Readings)>,
    last: Option<(Instant, Readings)>,
    /// Gauges of the scrapes between the first and the current last, which
    /// is only counted once a later one comes (the final, idle scrape never
    /// is).
    gauges: BTreeMap<String, GaugeAcc>,
    scrapes: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Aggregator {
    /// No scrape yet of `url`, sampled every `interval` (both recorded in
    /// the summary).
    pub fn new(url: &str, interval: Duration) -> Aggregator {
        Aggregator {
            url: url.to_string(),
            interval,
            first: None,
            last: None,
            gauges: BTreeMap::new(),
            scrapes: 0,
            failed: 0,
            first_error: None,
        }
    }

    /// Folds in one scrape taken at `at`, or counts it failed (the first
    /// failure's message is kept).
    pub fn add(&mut self, at: Instant, scraped: Result<Readings, String>) {
        let readings = match scraped {
            Ok(r) => r,
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
                return;
            }
        };
        self.scrapes += 1;
        if self.first.is_none() {
            self.first = Some((at, readings));
            return;
        }
        // The previous last was taken while the point ran: count its gauges.
        if let Some((_, previous)) = self.last.replace((at, readings)) {
            for (key, reading) in &previous.series {
                if let Reading::Gauge(v) = reading {
                    if v.is_finite() {
                        self.gauges
                            .entry(key.clone())
                            .or_insert(GaugeAcc {
                                sum: 0.0,
                                max: f64::NEG_INFINITY,
                                min: f64::INFINITY,
                                n: 0,
                            })
                            .add(*v);
                    }
                }
            }
        }
    }

    /// The point's summary: gauges over the scrapes taken while it ran,
    /// counters and histograms as their change from the first scrape to the
    /// last.
    pub fn summary(&self) -> ServerMetricsSummary {
        let gauges: BTreeMap<String, GaugeSummary> = self
            .gauges
            .iter()
            .map(|(k, g)| (k.clone(), g.summary()))
            .collect();
        let mut counters = BTreeMap::new();
        let mut histograms = BTreeMap::new();
        let mut window_s = 0.0;
        if let (Some((t0, first)), Some((t1, last))) = (&self.first, &self.last) {
            window_s = t1.duration_since(*t0).as_secs_f64();
            for (key, reading) in &last.series {
                match (reading, first.series.get(key)) {
                    (Reading::Counter(now), before) => {
                        // A counter born during the point started at zero.
                        let before = match before {
                            Some(Reading::Counter(b)) => *b,
                            _ => 0.0,
                        };
                        let delta = now - before;
                        if delta >= 0.0 && delta.is_finite() {
                            counters.insert(
                                key.clone(),
                                CounterSummary {
                                    delta,
                                    per_s: if window_s > 0.0 {
                                        delta / window_s
                                    } else {
                                        0.0
                                    },
                                },
                            );
                        }
                    }
                    (
                        Reading::Histogram {
                            buckets,
                            sum,
                            count,
                        },
                        before,
                    ) => {
                        let (b_buckets, b_sum, b_count) = match before {
                            Some(Reading::Histogram {
                                buckets,
                                sum,
                                count,
                            }) => (buckets.as_slice(), *sum, *count),
                            _ => (&[][..], 0.0, 0.0),
                        };
                        if let Some(h) =
                            histogram_change(buckets, *sum, *count, b_buckets, b_sum, b_count)
                        {
                            histograms.insert(key.clone(), h);
                        }
                    }
                    _ => {}
                }
            }
        }
        let headline = headline(&gauges, &counters, &histograms);
        ServerMetricsSummary {
            url: self.url.clone(),
            interval_ms: self.interval.as_secs_f64() * 1e3,
            window_s,
            scrapes: self.scrapes,
            failed_scrapes: self.failed,
            first_error: self.first_error.clone(),
            gauges,
            counters,
            histograms,
            headline,
        }
    }
}

/// The observations between two readings of one histogram.
fn histogram_change(
    now: &[(f64, f64)],
    sum: f64,
    count: f64,
    before: &[(f64, f64)],
    before_sum: f64,
    before_count: f64,
) -> Option<HistogramSummary> {
    let count = count - before_count;
    if count < 0.0 || !count.is_finite() {
        return None;
    }
    let earlier = |bound: f64| {
        before
            .iter()
            .find(|(b, _)| *b == bound)
            .map_or(0.0, |(_, c)| *c)
    };
    let buckets: Vec<(f64, f64)> = now
        .iter()
        .map(|&(bound, c)| (bound, (c - earlier(bound)).max(0.0)))
        .collect();
    let sum = sum - before_sum;
    let q = |q: f64| bucket_quantile(&buckets, q);
    Some(HistogramSummary {
        count,
        sum,
        mean: (count > 0.0).then(|| sum / count),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p50_bucket: bucket_of(&buckets, 0.5),
        p99_bucket: bucket_of(&buckets, 0.99),
    })
}

/// The bucket the `q` quantile falls in: its lower bound and its upper one
/// (none for `+Inf`).
pub fn bucket_of(buckets: &[(f64, f64)], q: f64) -> Option<(f64, Option<f64>)> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let mut lower = 0.0;
    for &(bound, count) in buckets {
        if count >= q * total {
            return Some((lower, bound.is_finite().then_some(bound)));
        }
        lower = bound;
    }
    None
}

pub use crate::quantile::prometheus_bucket as bucket_quantile;

/// Series whose name (before the labels) is `name`.
fn named<'a, T>(map: &'a BTreeMap<String, T>, name: &'a str) -> impl Iterator<Item = &'a T> + 'a {
    map.iter()
        .filter(move |(k, _)| {
            k.as_str() == name || k.strip_prefix(name).is_some_and(|r| r.starts_with('{'))
        })
        .map(|(_, v)| v)
}

/// One gauge for `name` summed over its label sets (several engines, or
/// models), scaled; absent when the server has no such gauge.
fn gauge_total(
    gauges: &BTreeMap<String, GaugeSummary>,
    names: &[&str],
    scale: f64,
) -> Option<GaugeSummary> {
    names.iter().find_map(|name| {
        let parts: Vec<&GaugeSummary> = named(gauges, name).collect();
        (!parts.is_empty()).then(|| GaugeSummary {
            mean: parts.iter().map(|g| g.mean).sum::<f64>() * scale,
            max: parts.iter().map(|g| g.max).sum::<f64>() * scale,
            min: parts.iter().map(|g| g.min).sum::<f64>() * scale,
            samples: parts.iter().map(|g| g.samples).min().unwrap_or(0),
        })
    })
}

fn counter_total(counters: &BTreeMap<String, CounterSummary>, name: &str) -> Option<f64> {
    let parts: Vec<f64> = named(counters, name).map(|c| c.delta).collect();
    (!parts.is_empty()).then(|| parts.iter().sum())
}

/// A histogram in ms from one in seconds: the first label set (engines
/// rarely run several) scaled by 1000.
fn histogram_ms(
    histograms: &BTreeMap<String, HistogramSummary>,
    name: &str,
) -> Option<HistogramSummary> {
    let h = named(histograms, name).find(|h| h.count > 0.0)?;
    let ms = |v: Option<f64>| v.map(|v| v * 1e3);
    Some(HistogramSummary {
        count: h.count,
        sum: h.sum * 1e3,
        mean: ms(h.mean),
        p50: ms(h.p50),
        p90: ms(h.p90),
        p99: ms(h.p99),
        p50_bucket: h.p50_bucket.map(|(lo, hi)| (lo * 1e3, hi.map(|v| v * 1e3))),
        p99_bucket: h.p99_bucket.map(|(lo, hi)| (lo * 1e3, hi.map(|v| v * 1e3))),
    })
}

fn headline(
    gauges: &BTreeMap<String, GaugeSummary>,
    counters: &BTreeMap<String, CounterSummary>,
    histograms: &BTreeMap<String, HistogramSummary>,
) -> ServerHeadline {
    let hits = counter_total(counters, "vllm:prefix_cache_hits")
        .or_else(|| counter_total(counters, "vllm:prefix_cache_hits_total"));
    let queries = counter_total(counters, "vllm:prefix_cache_queries")
        .or_else(|| counter_total(counters, "vllm:prefix_cache_queries_total"));
    ServerHeadline {
        requests_running: gauge_total(
            gauges,
            &["vllm:num_requests_running", "llamacpp:requests_processing"],
            1.0,
        ),
        requests_waiting: gauge_total(
            gauges,
            &["vllm:num_requests_waiting", "llamacpp:requests_deferred"],
            1.0,
        ),
        kv_cache_percent: gauge_total(
            gauges,
            &[
                "vllm:kv_cache_usage_perc",
                "vllm:gpu_cache_usage_perc",
                "llamacpp:kv_cache_usage_ratio",
            ],
            100.0,
        ),
        queue_time_ms: histogram_ms(histograms, "vllm:request_queue_time_seconds"),
        server_ttft_ms: histogram_ms(histograms, "vllm:time_to_first_token_seconds"),
        preemptions: counter_total(counters, "vllm:num_preemptions")
            .or_else(|| counter_total(counters, "vllm:num_preemptions_total")),
        prefix_cache_hit_rate: match (hits, queries) {
            (Some(h), Some(q)) if q > 0.0 => Some(h / q),
            _ => None,
        },
    }
}

/// Fetches and parses one scrape.
async fn scrape(client: &HttpClient, url: &str) -> Result<Readings, MetricsError> {
    let text = client
        .get_text(url)
        .await
        .map_err(|e| MetricsError::Fetch {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    parse(&text).map_err(|message| MetricsError::Parse {
        url: url.to_string(),
        message,
    })
}

/// Scrapes `url` once, on a runtime of its own: whether the endpoint is
/// there before a run relies on it.
pub fn probe(config: &ClientConfig, url: &str) -> Result<Readings, MetricsError> {
    let fetch = |message: String| MetricsError::Fetch {
        url: url.to_string(),
        message,
    };
    let client = HttpClient::new(config.clone()).map_err(|e| fetch(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fetch(e.to_string()))?;
    rt.block_on(scrape(&client, url))
}

/// Samples `/metrics` on its own thread while a point runs.
pub struct Sampler {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Aggregator>,
}

impl Sampler {
    /// Takes the first scrape before returning (the baseline of every
    /// counter), then one every `interval` until [`Sampler::stop`].
    pub fn start(config: &ClientConfig, url: &str, interval: Duration) -> std::io::Result<Sampler> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (config, url) = (config.clone(), url.to_string());
        let thread = std::thread::Builder::new()
            .name("server-metrics".into())
            .spawn(move || {
                let mut acc = Aggregator::new(&url, interval);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        acc.add(Instant::now(), Err(e.to_string()));
                        let _ = ready_tx.send(());
                        return acc;
                    }
                };
                let client = match HttpClient::new(config) {
                    Ok(c) => c,
                    Err(e) => {
                        acc.add(Instant::now(), Err(e.to_string()));
                        let _ = ready_tx.send(());
                        return acc;
                    }
                };
                let take = |acc: &mut Aggregator| {
                    let scraped = rt
                        .block_on(scrape(&client, &url))
                        .map_err(|e| e.to_string());
                    acc.add(Instant::now(), scraped);
                };
                take(&mut acc);
                let _ = ready_tx.send(());
                let mut next = Instant::now() + interval;
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    match stop_rx.recv_timeout(wait) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            take(&mut acc);
                            next += interval;
                        }
                        // Stopped (or the owner is gone): the closing scrape.
                        _ => {
                            take(&mut acc);
                            return acc;
                        }
                    }
                }
            })?;
        let _ = ready_rx.recv();
        Ok(Sampler {
            stop: stop_tx,
            thread,
        })
    }

    /// Takes the closing scrape and returns the point's summary.
    pub fn stop(self) -> ServerMetricsSummary {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(acc) => acc.summary(),
            Err(_) => {
                let mut acc = Aggregator::new("", Duration::ZERO);
                acc.add(Instant::now(), Err("the sampler thread panicked".into()));
                acc.summary()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 100.0
# HELP vllm:request_queue_time_seconds Histogram of time spent in WAITING phase for request.
# TYPE vllm:request_queue_time_seconds histogram
vllm:request_queue_time_seconds_sum{engine="0",model_name="m"} 0.5
vllm:request_queue_time_seconds_bucket{engine="0",le="0.01",model_name="m"} 2.0
vllm:request_queue_time_seconds_bucket{engine="0",le="0.1",model_name="m"} 4.0
vllm:request_queue_time_seconds_bucket{engine="0",le="+Inf",model_name="m"} 5.0
vllm:request_queue_time_seconds_count{engine="0",model_name="m"} 5.0
"#;

    #[test]
    fn parses_names_with_colons_labels_and_histograms() {
        let r = parse(VLLM).unwrap();
        assert_eq!(
            r.series[r#"vllm:num_requests_running{engine="0",model_name="m"}"#],
            Reading::Gauge(3.0)
        );
        assert_eq!(
            r.series[r#"vllm:prompt_tokens_total{engine="0",model_name="m"}"#],
            Reading::Counter(100.0)
        );
        let Reading::Histogram {
            buckets,
            sum,
            count,
        } = &r.series[r#"vllm:request_queue_time_seconds{engine="0",model_name="m"}"#]
        else {
            panic!("not a histogram")
        };
        assert_eq!(buckets, &[(0.01, 2.0), (0.1, 4.0), (f64::INFINITY, 5.0)]);
        assert_eq!((*sum, *count), (0.5, 5.0));
    }

    /// `/metrics` of llama-server b11434 (`--metrics`) and of vLLM CPU
    /// 0.32.0, each taken during a c=1 point of Gemma 3 270M (captured here
    /// with curl).
    const LLAMA_SERVER_SAMPLE: &str =
        include_str!("../../../scripts/servers/metrics-llama-server.txt");
    const VLLM_SAMPLE: &str = include_str!("../../../scripts/servers/metrics-vllm.txt");

    #[test]
    fn parses_what_the_real_servers_expose() {
        let l = parse(LLAMA_SERVER_SAMPLE).unwrap();
        assert_eq!(
            l.series["llamacpp:requests_processing"],
            Reading::Gauge(1.0)
        );
        assert!(matches!(l.series["llamacpp:prompt_tokens_total"], Reading::Counter(n) if n > 0.0));
        assert!(matches!(
            l.series["llamacpp:tokens_predicted_seconds_total"],
            Reading::Counter(_)
        ));
        let v = parse(VLLM_SAMPLE).unwrap();
        let key = |name: &str| format!("{name}{{engine=\"0\",model_name=\"gemma-3-270m-q4_k_m\"}}");
        assert_eq!(
            v.series[&key("vllm:num_requests_running")],
            Reading::Gauge(1.0)
        );
        assert!(
            matches!(v.series[&key("vllm:kv_cache_usage_perc")], Reading::Gauge(f) if f > 0.0 && f < 1.0)
        );
        assert!(
            matches!(v.series[&key("vllm:prompt_tokens_total")], Reading::Counter(n) if n > 0.0)
        );
        let Reading::Histogram { buckets, count, .. } =
            &v.series[&key("vllm:request_queue_time_seconds")]
        else {
            panic!("queue time is a histogram")
        };
        assert_eq!(buckets[0].0, 0.3);
        assert_eq!(buckets.last().unwrap().0, f64::INFINITY);
        assert_eq!(buckets.last().unwrap().1, *count);
        // A whole summary over the two real scrapes: every vLLM headline
        // figure found under vLLM's own names.
        let t0 = Instant::now();
        let mut acc = Aggregator::new("u", Duration::from_secs(1));
        for k in 0..3 {
            acc.add(t0 + Duration::from_secs(k), parse(VLLM_SAMPLE));
        }
        let h = acc.summary().headline;
        assert_eq!(h.requests_running.unwrap().max, 1.0);
        assert_eq!(h.requests_waiting.unwrap().max, 0.0);
        assert!(h.kv_cache_percent.unwrap().max > 0.0);
        assert_eq!(h.preemptions, Some(0.0));
        assert!(
            h.queue_time_ms.is_none(),
            "no observation between equal scrapes"
        );
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let b = [(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(&b, 0.5), Some(1.0));
        assert_eq!(bucket_quantile(&b, 0.25), Some(0.5));
        assert_eq!(bucket_quantile(&b, 0.75), Some(1.5));
        let tail = [(1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(&tail, 0.99), Some(1.0));
        assert_eq!(bucket_quantile(&[(1.0, 0.0)], 0.5), None);
        assert_eq!(bucket_of(&b, 0.75), Some((1.0, Some(2.0))));
        assert_eq!(bucket_of(&tail, 0.99), Some((1.0, None)));
    }

    #[test]
    fn counters_and_histograms_change_over_the_point_gauges_exclude_idle_scrapes() {
        let t0 = Instant::now();
        let mut acc = Aggregator::new("u", Duration::from_secs(1));
        let at = |s: u64| t0 + Duration::from_secs(s);
        let text = |running: f64, prompt: f64, b: [f64; 3], sum: f64| {
            format!(
                "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running {running}\n\
                 # TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total {prompt}\n\
                 # TYPE vllm:request_queue_time_seconds histogram\n\
                 vllm:request_queue_time_seconds_bucket{{le=\"0.01\"}} {}\n\
                 vllm:request_queue_time_seconds_bucket{{le=\"0.1\"}} {}\n\
                 vllm:request_queue_time_seconds_bucket{{le=\"+Inf\"}} {}\n\
                 vllm:request_queue_time_seconds_sum {sum}\n\
                 vllm:request_queue_time_seconds_count {}\n",
                b[0], b[1], b[2], b[2]
            )
        };
        acc.add(at(0), parse(&text(0.0, 100.0, [2.0, 4.0, 5.0], 0.5)));
        acc.add(at(1), parse(&text(4.0, 150.0, [2.0, 6.0, 7.0], 0.7)));
        acc.add(at(2), Err("connection refused".into()));
        acc.add(at(3), parse(&text(2.0, 300.0, [2.0, 8.0, 9.0], 0.9)));
        acc.add(at(4), parse(&text(0.0, 400.0, [12.0, 18.0, 19.0], 1.5)));
        let s = acc.summary();
        assert_eq!((s.scrapes, s.failed_scrapes), (4, 1));
        assert_eq!(s.first_error.as_deref(), Some("connection refused"));
        assert_eq!(s.window_s, 4.0);
        let g = &s.gauges["vllm:num_requests_running"];
        assert_eq!((g.mean, g.max, g.min, g.samples), (3.0, 4.0, 2.0, 2));
        let c = &s.counters["vllm:prompt_tokens_total"];
        assert_eq!((c.delta, c.per_s), (300.0, 75.0));
        let h = &s.histograms["vllm:request_queue_time_seconds"];
        assert_eq!(h.count, 14.0);
        assert!((h.sum - 1.0).abs() < 1e-12);
        // 10 of the 14 new observations fell below 10 ms.
        assert!(h.p50.unwrap() < 0.01);
        let q = s.headline.queue_time_ms.as_ref().unwrap();
        assert!((q.mean.unwrap() - 1000.0 / 14.0).abs() < 1e-9);
        assert_eq!(s.headline.requests_running.as_ref().unwrap().max, 4.0);
        assert!(s.headline.kv_cache_percent.is_none(), "absent, not zero");
    }

    #[test]
    fn a_counter_that_went_backwards_is_left_out() {
        let t0 = Instant::now();
        let mut acc = Aggregator::new("u", Duration::from_secs(1));
        let c = |v: f64| parse(&format!("# TYPE x_total counter\nx_total {v}\n"));
        acc.add(t0, c(50.0));
        acc.add(t0 + Duration::from_secs(1), c(3.0));
        assert!(acc.summary().counters.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "{{{",
            "x{a=\"1\" 2",
            "# TYPE h histogram\nh_bucket{le=\"zz\"} 1\n",
        ] {
            let _ = parse(text);
        }
    }
}
