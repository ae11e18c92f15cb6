//! The panels' data: distributions (CDFs), the contrast's layers, the
//! telemetry over a sweep, a point over time and the request timeline.

use inferbench_harness::contrast::{ContrastResult, Layer};
use inferbench_harness::http::point::RequestRecord;
use inferbench_harness::schema::telemetry::{MeanMax, TelemetrySummary};
use inferbench_harness::schema::timeline::{TimeSlice, TimeSlices};
use inferbench_harness::schema::{HttpPoint, HttpResult};
use inferbench_harness::stats::{Distribution, Stats};

use super::*;

/// The CDF of a kept histogram; `None` for files from before histograms.
pub fn cdf_points(stats: &Stats) -> Option<Vec<(f64, f64)>> {
    let distribution = Distribution::from_stats(stats).ok()?;
    let buckets = distribution.buckets();
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    if total == 0 {
        return None;
    }
    let mut seen = 0u64;
    let mut points = vec![(stats.min, 0.0)];
    for (value, count) in buckets {
        seen += count;
        points.push((
            value.clamp(stats.min, stats.max),
            seen as f64 / total as f64,
        ));
    }
    Some(points)
}

/// One panel per metric, one line per point: `points` is (label, metric
/// name → stats).
pub fn cdf_panels(points: &[(String, [Option<&Stats>; 3])]) -> Option<Vec<CdfPanel>> {
    let metrics = ["TTFT", "ITL", "E2E"];
    let panels: Vec<CdfPanel> = metrics
        .iter()
        .enumerate()
        .map(|(m, metric)| CdfPanel {
            title: metric.to_string(),
            metric: metric.to_string(),
            lines: points
                .iter()
                .filter_map(|(label, stats)| {
                    Some(CdfLine {
                        label: label.clone(),
                        points: cdf_points(stats[m]?)?,
                    })
                })
                .collect(),
        })
        .collect();
    panels.iter().any(|p| !p.lines.is_empty()).then_some(panels)
}

/// Stacked bars of the layers per concurrency: TTFT and per-token time.
pub fn contrast_panels(result: &ContrastResult) -> Option<Vec<ContrastPanel>> {
    if result.shapes.is_empty() {
        return None;
    }
    let panel = |metric: &str, title: &str, ttft: bool| ContrastPanel {
        title: title.into(),
        metric: metric.into(),
        bars: result
            .shapes
            .iter()
            .map(|shape| {
                let median = |layer: Layer| {
                    let row = shape.layers.iter().find(|r| r.layer == layer)?;
                    let s = if ttft {
                        &row.ttft_ms
                    } else {
                        &row.per_token_ms
                    };
                    p50(s)
                };
                let overhead = |upper: Layer| {
                    let o = shape.overheads.iter().find(|o| o.upper == upper)?;
                    let d = if ttft { &o.ttft } else { &o.per_token };
                    d.as_ref()
                        .map(|d| (d.difference_ci.low, d.difference_ci.high))
                };
                let mut segments = Vec::new();
                let mut below = 0.0;
                for layer in [Layer::Engine, Layer::Server, Layer::Client] {
                    let Some(top) = median(layer) else { continue };
                    let ci = if layer == Layer::Engine {
                        None
                    } else {
                        overhead(layer).map(|(lo, hi)| (below + lo, below + hi))
                    };
                    segments.push(Segment {
                        layer: layer.title().to_string(),
                        bottom: below,
                        top,
                        ci,
                    });
                    below = top;
                }
                StackedBar {
                    label: format!("{}", shape.sequences),
                    segments,
                }
            })
            .collect(),
    };
    Some(vec![
        panel("TTFT", "time to first token", true),
        panel("per-token time", "time per output token", false),
    ])
}

/// One telemetry reading of a point: (mean, max).
type Reading<'a> = dyn Fn(&TelemetrySummary) -> Option<(f64, f64)> + 'a;

/// Host, process and GPU readings per point, where the file has them.
pub fn telemetry_panels(
    points: &[(String, Option<&TelemetrySummary>)],
) -> Option<Vec<TelemetryPanel>> {
    if points.iter().all(|(_, t)| t.is_none()) {
        return None;
    }
    let labels: Vec<String> = points.iter().map(|(l, _)| l.clone()).collect();
    let pair = |m: Option<&MeanMax>, scale: f64| m.map(|m| (m.mean * scale, m.max * scale));
    let series =
        |name: &str, get: &dyn Fn(&TelemetrySummary) -> Option<(f64, f64)>| TelemetrySeries {
            name: name.into(),
            values: points.iter().map(|(_, t)| t.and_then(get)).collect(),
        };
    let present = |s: &TelemetrySeries| s.values.iter().any(Option::is_some);
    let mut panels = Vec::new();
    let cpu: Vec<TelemetrySeries> = [
        series("host CPU", &|t| pair(t.host_cpu_percent.as_ref(), 1.0)),
        // The process's reading is per core (200% = two cores busy).
        series("this process", &|t| {
            pair(
                t.process_cpu_percent.as_ref(),
                1.0 / f64::from(t.logical_cores.max(1)),
            )
        }),
    ]
    .into_iter()
    .filter(present)
    .collect();
    if !cpu.is_empty() {
        panels.push(TelemetryPanel {
            title: "CPU (100% = every logical core)".into(),
            unit: "percent".into(),
            points: labels.clone(),
            series: cpu,
        });
    }
    let rss = series("process resident memory", &|t| {
        pair(t.process_rss_bytes.as_ref(), 1.0 / (1024.0 * 1024.0))
    });
    if present(&rss) {
        panels.push(TelemetryPanel {
            title: "memory".into(),
            unit: "MiB".into(),
            points: labels.clone(),
            series: vec![rss],
        });
    }
    let gpu = |t: &TelemetrySummary| t.gpus.as_ref().and_then(|g| g.first().cloned());
    let gpu_panels: [(&str, &str, &Reading<'_>); 3] = [
        ("GPU 0 utilization", "percent", &|t| {
            gpu(t).and_then(|g| pair(g.utilization_percent.as_ref(), 1.0))
        }),
        ("GPU 0 power", "W", &|t| {
            gpu(t).and_then(|g| pair(g.power_watts.as_ref(), 1.0))
        }),
        ("GPU 0 memory used", "GiB", &|t| {
            gpu(t).and_then(|g| pair(g.memory_used_bytes.as_ref(), 1.0 / (1u64 << 30) as f64))
        }),
    ];
    for (title, unit, get) in gpu_panels {
        let s = series(title, get);
        if present(&s) {
            panels.push(TelemetryPanel {
                title: title.into(),
                unit: unit.into(),
                points: labels.clone(),
                series: vec![s],
            });
        }
    }
    (!panels.is_empty()).then_some(panels)
}

/// TTFT, TPOT and output throughput slice by slice, one line per point
/// that has slices (p50 solid, p99 dashed); `None` when none has.
pub fn over_time_panels(r: &HttpResult) -> Option<Vec<OverTimePanel>> {
    let sliced: Vec<(usize, &HttpPoint, &TimeSlices)> = r
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.slices.as_ref().map(|s| (i, p, s)))
        .collect();
    if sliced.is_empty() {
        return None;
    }
    // (slice, the slices' length): a rate over the last slice's few
    // milliseconds says nothing, so rates skip slices under half a slice.
    type Pick = fn(&TimeSlice, f64) -> Option<f64>;
    let panel = |title: &str, unit: &str, stats: &[(&str, bool, Pick)]| OverTimePanel {
        title: title.into(),
        unit: unit.into(),
        lines: sliced
            .iter()
            .flat_map(|&(i, p, s)| {
                stats.iter().map(move |&(name, dashed, pick)| OverTimeLine {
                    label: format!("{} {name}", p.load.label()),
                    point: i,
                    dashed,
                    points: s
                        .slices
                        .iter()
                        .filter_map(|t| {
                            pick(t, s.slice_s).map(|v| (t.start_s + t.duration_s / 2.0, v))
                        })
                        .collect(),
                })
            })
            .filter(|l| !l.points.is_empty())
            .collect(),
    };
    let ttft_title = if sliced[0].2.ttft_metric == "ttft_from_scheduled_ms" {
        "TTFT from the intended send"
    } else {
        "TTFT"
    };
    Some(vec![
        panel(
            ttft_title,
            "ms",
            &[
                ("p50", false, |t, _| t.ttft_p50_ms),
                ("p99", true, |t, _| t.ttft_p99_ms),
            ],
        ),
        panel(
            "TPOT",
            "ms",
            &[
                ("p50", false, |t, _| t.tpot_p50_ms),
                ("p99", true, |t, _| t.tpot_p99_ms),
            ],
        ),
        panel(
            "Output throughput",
            "tokens/s",
            &[("", false, |t, slice_s| {
                (t.duration_s >= slice_s / 2.0).then_some(t.output_throughput_tok_s)
            })],
        ),
    ])
}

pub fn timeline(records: &[RequestRecord]) -> Timeline {
    let mut requests: Vec<TimelineRequest> = records
        .iter()
        .map(|r| TimelineRequest {
            scheduled_ms: r.scheduled_ms,
            sent_ms: r.sent_ms,
            first_token_ms: r.ttft_ms.map(|t| r.sent_ms + t),
            end_ms: r.e2e_ms.map_or(r.sent_ms, |e| r.sent_ms + e),
            ok: r.ok,
        })
        .collect();
    requests.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
    requests.truncate(TIMELINE_MAX_REQUESTS);
    Timeline { requests }
}
