//! What each figure shows, taken from result files: plain data, drawn by
//! [`super::draw`]. One builder per figure; each returns nothing when its
//! inputs hold nothing to draw.

use inferbench_harness::knee::{knee, CurvePoint};
use inferbench_harness::schema::{HttpResult, InprocPoint, InprocResult, LoadKind, Provenance};
use inferbench_harness::stats::Stats;

mod panels;

pub use panels::*;

#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem under `--plots`, and the page's anchor.
    pub id: String,
    pub title: String,
    /// What the figure shows and what its numbers include.
    pub caption: String,
    pub plot: Plot,
}

#[derive(Debug, Clone)]
pub enum Plot {
    Batch(Vec<BatchCurve>),
    Load(LoadFigure),
    Pareto(Vec<ParetoSeries>),
    Cdf(Vec<CdfPanel>),
    Contrast(Vec<ContrastPanel>),
    Telemetry(Vec<TelemetryPanel>),
    Timeline(Timeline),
    OverTime(Vec<OverTimePanel>),
}

/// One metric over a point's time slices.
#[derive(Debug, Clone)]
pub struct OverTimePanel {
    pub title: String,
    pub unit: String,
    pub lines: Vec<OverTimeLine>,
}

/// One point's statistic, slice by slice.
#[derive(Debug, Clone)]
pub struct OverTimeLine {
    pub label: String,
    /// The point's colour: its p50 and p99 lines share it.
    pub point: usize,
    /// A p99 (drawn dashed) rather than a p50 or a rate.
    pub dashed: bool,
    /// (middle of the slice, s; value).
    pub points: Vec<(f64, f64)>,
}

impl Plot {
    #[cfg(test)]
    /// Data points drawn as markers (circles, or triangles for served
    /// Pareto points), for the tests that count them in the SVG.
    pub fn markers(&self) -> usize {
        match self {
            Plot::Batch(curves) => curves.iter().map(|c| c.points.len()).sum(),
            Plot::Load(f) => f
                .series
                .iter()
                .flat_map(|s| &s.points)
                .map(|p| {
                    [p.ttft_p50, p.ttft_p99, p.tpot_p50, p.tpot_p99]
                        .iter()
                        .filter(|v| v.is_some())
                        .count()
                })
                .sum(),
            Plot::Pareto(series) => series.iter().map(|s| s.points.len()).sum(),
            _ => 0,
        }
    }

    #[cfg(test)]
    /// Names in the legend(s), one per series.
    pub fn series_labels(&self) -> Vec<String> {
        match self {
            Plot::Batch(c) => c.iter().map(|c| c.label.clone()).collect(),
            Plot::Load(f) => f.series.iter().map(|s| s.label.clone()).collect(),
            Plot::Pareto(s) => s.iter().map(|s| s.label.clone()).collect(),
            Plot::Cdf(panels) => panels
                .iter()
                .flat_map(|p| p.lines.iter().map(|l| l.label.clone()))
                .collect(),
            Plot::Contrast(panels) => panels
                .first()
                .and_then(|p| p.bars.first())
                .map(|b| b.segments.iter().map(|s| s.layer.clone()).collect())
                .unwrap_or_default(),
            Plot::Telemetry(panels) => panels
                .iter()
                .flat_map(|p| p.series.iter().map(|s| s.name.clone()))
                .collect(),
            Plot::Timeline(_) => Vec::new(),
            Plot::OverTime(panels) => panels
                .iter()
                .flat_map(|p| p.lines.iter().map(|l| l.label.clone()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BatchCurve {
    pub label: String,
    pub points: Vec<BatchPoint>,
    /// Index into `points`.
    pub knee: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchPoint {
    pub batch: u32,
    /// The decode step's share of the memory bandwidth, when measured.
    pub bandwidth_fraction: Option<f64>,
    /// The prefill's share of the compute peak, when measured.
    pub prefill_peak_fraction: Option<f64>,
    /// The decode steps' kernel busy time over their host time (CUPTI).
    pub kernel_busy_fraction: Option<f64>,
    pub latency_p50: f64,
    pub latency_p99: f64,
    pub tok_s: f64,
}

#[derive(Debug, Clone)]
pub struct LoadFigure {
    pub series: Vec<LoadSeries>,
    pub x_desc: String,
    pub open_loop: bool,
    pub slo_ttft_ms: Option<f64>,
    pub slo_tpot_ms: Option<f64>,
    /// Where `--find-max-rate`'s answer lies on the x axis, and its label.
    pub max_rate: Option<(f64, String)>,
}

#[derive(Debug, Clone)]
pub struct LoadSeries {
    pub label: String,
    pub points: Vec<LoadPoint>,
}

#[derive(Debug, Clone, Copy)]
pub struct LoadPoint {
    pub x: f64,
    pub ttft_p50: Option<f64>,
    pub ttft_p99: Option<f64>,
    pub tpot_p50: Option<f64>,
    pub tpot_p99: Option<f64>,
    pub goodput: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct ParetoSeries {
    pub label: String,
    pub served: bool,
    pub points: Vec<ParetoPoint>,
}

#[derive(Debug, Clone)]
pub struct ParetoPoint {
    pub total: f64,
    pub per_user: f64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct CdfPanel {
    pub title: String,
    pub metric: String,
    pub lines: Vec<CdfLine>,
}

#[derive(Debug, Clone)]
pub struct CdfLine {
    pub label: String,
    /// (value, fraction of values at or below it), ascending.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct ContrastPanel {
    pub title: String,
    pub metric: String,
    pub bars: Vec<StackedBar>,
}

#[derive(Debug, Clone)]
pub struct StackedBar {
    pub label: String,
    pub segments: Vec<Segment>,
}

/// One layer of a stacked bar: from the layer below's median to this
/// one's; `ci`: the interval of the difference, placed on `bottom`.
#[derive(Debug, Clone)]
pub struct Segment {
    pub layer: String,
    pub bottom: f64,
    pub top: f64,
    pub ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct TelemetryPanel {
    pub title: String,
    pub unit: String,
    pub points: Vec<String>,
    pub series: Vec<TelemetrySeries>,
}

#[derive(Debug, Clone)]
pub struct TelemetrySeries {
    pub name: String,
    /// (mean, max) per point; `None` where the reading was absent.
    pub values: Vec<Option<(f64, f64)>>,
}

#[derive(Debug, Clone)]
pub struct Timeline {
    pub requests: Vec<TimelineRequest>,
}

#[derive(Debug, Clone, Copy)]
pub struct TimelineRequest {
    pub scheduled_ms: Option<f64>,
    pub sent_ms: f64,
    pub first_token_ms: Option<f64>,
    pub end_ms: f64,
    pub ok: bool,
}

/// The most requests a timeline draws; beyond, the first ones sent.
pub const TIMELINE_MAX_REQUESTS: usize = 400;

/// "Gemma 3 270m (Q4_K_M) on llama.cpp CPU, Intel Xeon, 2 threads".
pub fn describe(p: &Provenance) -> String {
    let model = p
        .model
        .as_ref()
        .map(|m| {
            format!(
                "{} ({})",
                m.name.clone().unwrap_or_else(|| m.path.clone()),
                m.quantization
            )
        })
        .or_else(|| p.server.as_ref().map(|s| s.model.clone()))
        .unwrap_or_else(|| "unknown model".into());
    let engine = match &p.server {
        Some(s) => format!("server at {}", s.url),
        None => format!("{} {}", p.engine.name, p.engine.backend),
    };
    let threads = match (&p.server, p.engine.threads) {
        (None, Some(t)) => format!(", {t} threads"),
        _ => String::new(),
    };
    format!("{model} on {engine}, {}{threads}", p.host.cpu_model.trim())
}

fn p50<'a>(s: impl Into<Option<&'a Stats>>) -> Option<f64> {
    s.into().map(|s| s.p50)
}

fn p99<'a>(s: impl Into<Option<&'a Stats>>) -> Option<f64> {
    s.into().map(|s| s.p99)
}

/// Latency of a batch-curve point: the inter-token latency (decode step
/// and sampling), else the bare decode step (older files).
fn step_latency(p: &InprocPoint) -> Option<(f64, f64)> {
    let s = p.itl_ms.as_ref().or(p.decode_step_ms.as_ref())?;
    Some((s.p50, s.p99))
}

/// One curve per (file, prompt length), points by batch size.
pub fn batch_curves(sources: &[(String, &InprocResult)]) -> Vec<BatchCurve> {
    let mut curves = Vec::new();
    for (label, r) in sources {
        // A curve per prompt length, depth and cell of an engine grid.
        let varying = inferbench_harness::schema::varying_settings(&r.points);
        let curve_of = |p: &InprocPoint| {
            let mut name = format!("P={}", p.prompt_tokens);
            if p.depth > 0 {
                name.push_str(&format!(" d={}", p.depth));
            }
            if let Some(c) = &p.config {
                for setting in &varying {
                    name.push_str(&format!(" {setting}={}", c.value(setting)));
                }
            }
            name
        };
        let mut names: Vec<String> = Vec::new();
        for p in &r.points {
            let name = curve_of(p);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for curve in names {
            let mut points: Vec<BatchPoint> = r
                .points
                .iter()
                .filter(|p| curve_of(p) == curve)
                .filter_map(|p| {
                    let (latency_p50, latency_p99) = step_latency(p)?;
                    Some(BatchPoint {
                        batch: p.batch,
                        bandwidth_fraction: p
                            .roofline
                            .as_ref()
                            .and_then(|r| r.fraction_of_bandwidth),
                        prefill_peak_fraction: p
                            .prefill_roofline
                            .as_ref()
                            .and_then(|r| r.fraction_of_peak),
                        kernel_busy_fraction: p
                            .kernel_timing
                            .as_ref()
                            .and_then(|k| k.decode_step.as_ref())
                            .and_then(|d| d.busy_over_host),
                        latency_p50,
                        latency_p99,
                        tok_s: p50(&p.decode_tok_s)?,
                    })
                })
                .collect();
            points.sort_by_key(|p| p.batch);
            if points.is_empty() {
                continue;
            }
            let knee = knee(
                &points
                    .iter()
                    .map(|p| CurvePoint {
                        latency_ms: p.latency_p50,
                        throughput: p.tok_s,
                    })
                    .collect::<Vec<_>>(),
            );
            let name = if sources.len() > 1 {
                format!("{label}: {curve}")
            } else {
                curve
            };
            curves.push(BatchCurve {
                label: name,
                points,
                knee,
            });
        }
    }
    curves
}

/// Closed-loop points (x: concurrency) or open-loop ones (x: achieved
/// request rate) of every served file.
pub fn load_figure(sources: &[(String, &HttpResult)], open_loop: bool) -> Option<LoadFigure> {
    let mut series = Vec::new();
    let mut max_rate = None;
    for (label, r) in sources {
        let points: Vec<LoadPoint> = r
            .points
            .iter()
            .filter(|p| (p.load.kind == LoadKind::Open) == open_loop)
            .filter(|p| p.requests.succeeded > 0)
            .filter_map(|p| {
                let x = if open_loop {
                    p.request_throughput_req_s
                } else {
                    f64::from(p.load.concurrency?)
                };
                let ttft = p.ttft_judged_ms();
                Some(LoadPoint {
                    x,
                    ttft_p50: p50(ttft),
                    ttft_p99: p99(ttft),
                    tpot_p50: p50(&p.tpot_ms),
                    tpot_p99: p99(&p.tpot_ms),
                    goodput: p.goodput_req_s,
                })
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let mut points = points;
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        if let (false, Some(best)) = (
            open_loop,
            r.max_concurrency.as_ref().and_then(|s| s.max_concurrency),
        ) {
            max_rate = Some((
                f64::from(best),
                format!("max concurrency meeting the SLO: {best}"),
            ));
        }
        if let (true, Some(search)) = (open_loop, &r.max_rate) {
            if let Some(best) = search.max_rate {
                let achieved = r
                    .points
                    .iter()
                    .find(|p| p.load.rate == Some(best))
                    .map_or(best, |p| p.request_throughput_req_s);
                max_rate = Some((
                    achieved,
                    format!("max rate meeting the SLO: {best} req/s offered"),
                ));
            }
        }
        series.push(LoadSeries {
            label: label.clone(),
            points,
        });
    }
    if series.is_empty() {
        return None;
    }
    let slo = sources.iter().find_map(|(_, r)| r.settings.slo);
    Some(LoadFigure {
        series,
        x_desc: if open_loop {
            "achieved request rate, req/s".into()
        } else {
            "concurrency (requests in flight)".into()
        },
        open_loop,
        slo_ttft_ms: slo.and_then(|s| s.ttft_ms),
        slo_tpot_ms: slo.and_then(|s| s.tpot_ms),
        max_rate,
    })
}

/// One series per prompt length, in batch order.
pub fn pareto_inproc(label: &str, r: &InprocResult) -> Vec<ParetoSeries> {
    let mut lengths: Vec<u32> = r.points.iter().map(|p| p.prompt_tokens).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let several = lengths.len() > 1;
    lengths
        .into_iter()
        .filter_map(|length| {
            let mut points: Vec<(u32, ParetoPoint)> = r
                .points
                .iter()
                .filter(|p| p.prompt_tokens == length)
                .filter_map(|p| {
                    Some((
                        p.batch,
                        ParetoPoint {
                            total: p50(&p.throughput_tok_s)?,
                            per_user: 1000.0 / p50(&p.tpot_ms).filter(|t| *t > 0.0)?,
                            label: p.level().label(),
                        },
                    ))
                })
                .collect();
            points.sort_by_key(|(b, _)| *b);
            (!points.is_empty()).then(|| ParetoSeries {
                label: if several {
                    format!("{label}: P={length}")
                } else {
                    label.to_string()
                },
                served: false,
                points: points.into_iter().map(|(_, p)| p).collect(),
            })
        })
        .collect()
}

pub fn pareto_http(label: &str, r: &HttpResult) -> Option<ParetoSeries> {
    let points: Vec<ParetoPoint> = r
        .points
        .iter()
        .filter(|p| p.requests.succeeded > 0)
        .filter_map(|p| {
            Some(ParetoPoint {
                total: p.output_throughput_tok_s,
                per_user: 1000.0 / p50(&p.tpot_ms).filter(|t| *t > 0.0)?,
                label: p.load.label(),
            })
        })
        .collect();
    (!points.is_empty()).then(|| ParetoSeries {
        label: label.into(),
        served: true,
        points,
    })
}
