//! Which figures a report holds, each with its title and caption, from
//! the builders of [`super::figures`].

use inferbench_harness::schema::telemetry::TelemetrySummary;
use inferbench_harness::schema::{HttpResult, InprocResult};
use inferbench_harness::stats::Stats;

use super::figures::{
    batch_curves, cdf_panels, contrast_panels, describe, load_figure, over_time_panels,
    pareto_http, pareto_inproc, telemetry_panels, timeline, Figure, ParetoSeries, Plot,
};
use super::Source;

/// Every figure the sources hold, in the page's order.
pub fn figures(sources: &[Source], logs: &[super::RequestLog]) -> Vec<Figure> {
    let mut out = Vec::new();
    let inproc = super::inproc_results(sources);
    let http = super::http_results(sources);
    batch_figure(&inproc, &mut out);
    load_figures(&http, &mut out);
    pareto_figure(&inproc, &http, &mut out);
    cdf_figures(&inproc, &http, &mut out);
    over_time_figures(&http, &mut out);
    contrast_figures(sources, &mut out);
    telemetry_figures(&inproc, &http, &mut out);
    timeline_figures(logs, &mut out);
    out
}

/// The batch curve of the in-process files, with each curve's knee.
fn batch_figure(inproc: &[(String, &InprocResult)], out: &mut Vec<Figure>) {
    let curves = batch_curves(inproc);
    if !curves.is_empty() {
        let knees: Vec<String> = curves
            .iter()
            .map(|c| match c.knee {
                Some(k) => format!("{}: knee at B={}", c.label, c.points[k].batch),
                None => format!("{}: no knee within the sweep", c.label),
            })
            .collect();
        out.push(Figure {
            id: "batch-curve".into(),
            title: format!("Batch curve: {}", inproc.first().map_or(String::new(), |(_, r)| describe(&r.provenance))),
            caption: format!(
                "Aggregate decode throughput against the latency of each step, one point per batch size B (sequences decoding together), one curve per prompt length. The knee (Kneedle: the point farthest above the line from the first point to the last, both axes normalized) is where more batching starts to cost more latency than it buys throughput. Where the file has it, each label gives the decode step's share of the measured memory bandwidth (bytes it must read over its time). {}.",
                knees.join("; ")
            ),
            plot: Plot::Batch(curves),
        });
    }
}

/// Served latency and goodput against the load, closed and open loops apart.
fn load_figures(http: &[(String, &HttpResult)], out: &mut Vec<Figure>) {
    for (open, id, kind) in [
        (false, "load-closed", "closed loop"),
        (true, "load-open", "open loop"),
    ] {
        if let Some(fig) = load_figure(http, open) {
            out.push(Figure {
                id: id.into(),
                title: format!(
                    "Served, {kind}: {}",
                    http.first().map_or(String::new(), |(_, r)| describe(&r.provenance))
                ),
                caption: format!(
                    "TTFT and TPOT p50 (solid) and p99 (dashed) against {}; {}goodput (requests meeting every SLO per second) as bars on the right axis when an SLO was given{}.",
                    fig.x_desc,
                    if open { "TTFT counted from each request's intended send time (coordinated omission corrected); " } else { "" },
                    if fig.max_rate.is_some() { "; the dashed vertical line is the --find-max-rate or --find-max-concurrency answer" } else { "" }
                ),
                plot: Plot::Load(fig),
            });
        }
    }
}

/// Speed per user against total output, in-process and served on the same axes.
fn pareto_figure(
    inproc: &[(String, &InprocResult)],
    http: &[(String, &HttpResult)],
    out: &mut Vec<Figure>,
) {
    let mut pareto: Vec<ParetoSeries> = Vec::new();
    pareto.extend(inproc.iter().flat_map(|(l, r)| pareto_inproc(l, r)));
    pareto.extend(http.iter().filter_map(|(l, r)| pareto_http(l, r)));
    if !pareto.is_empty() {
        out.push(Figure {
            id: "pareto".into(),
            title: format!(
                "Pareto: speed per user against total output, {}",
                inproc
                    .first()
                    .map(|(_, r)| &r.provenance)
                    .or(http.first().map(|(_, r)| &r.provenance))
                    .map_or(String::new(), |p| p.host.cpu_model.trim().to_string())
            ),
            caption: "Each point one load level: up and to the right is better. In-process points (circles) and served ones (triangles) on the same axes: the distance between them at the same load is the cost of serving.".into(),
            plot: Plot::Pareto(pareto),
        });
    }
}

/// The distributions of TTFT, ITL and E2E of every file.
fn cdf_figures(
    inproc: &[(String, &InprocResult)],
    http: &[(String, &HttpResult)],
    out: &mut Vec<Figure>,
) {
    for (i, (label, r)) in inproc.iter().enumerate() {
        let points: Vec<(String, [Option<&Stats>; 3])> = r
            .points
            .iter()
            .map(|p| {
                (
                    format!("P={} B={}", p.prompt_tokens, p.batch),
                    [p.ttft_ms.as_ref(), p.itl_ms.as_ref(), p.e2e_ms.as_ref()],
                )
            })
            .collect();
        if let Some(panels) = cdf_panels(&points) {
            out.push(Figure {
                id: format!("cdf-inproc-{i}"),
                title: format!("Distributions, in-process: {label} ({})", describe(&r.provenance)),
                caption: "Cumulative distributions of TTFT (prefill + first sample, per sequence), ITL (decode step + sample) and E2E, from the HDR histograms kept in the file (exact to 3 significant figures).".into(),
                plot: Plot::Cdf(panels),
            });
        }
    }
    for (i, (label, r)) in http.iter().enumerate() {
        let points: Vec<(String, [Option<&Stats>; 3])> = r
            .points
            .iter()
            .map(|p| {
                (
                    p.load.label(),
                    [p.ttft_ms.as_ref(), p.itl_ms.as_ref(), p.e2e_ms.as_ref()],
                )
            })
            .collect();
        if let Some(panels) = cdf_panels(&points) {
            out.push(Figure {
                id: format!("cdf-http-{i}"),
                title: format!("Distributions, served: {label} ({})", describe(&r.provenance)),
                caption: "Cumulative distributions of TTFT, ITL and E2E as the client saw them, from the HDR histograms kept in the file.".into(),
                plot: Plot::Cdf(panels),
            });
        }
    }
}

/// Served points over time, slice by slice.
fn over_time_figures(http: &[(String, &HttpResult)], out: &mut Vec<Figure>) {
    for (i, (label, r)) in http.iter().enumerate() {
        if let Some(panels) = over_time_panels(r) {
            let slice_s = r
                .points
                .iter()
                .find_map(|p| p.slices.as_ref())
                .map_or(0.0, |s| s.slice_s);
            out.push(Figure {
                id: format!("over-time-{i}"),
                title: format!("Over time, served: {label} ({})", describe(&r.provenance)),
                caption: format!(
                    "Each point's requests in slices of {slice_s} s by the time they were sent (due, under an open loop): TTFT and TPOT p50 (solid) and p99 (dashed) of each slice, to 2 significant figures, and the output tokens that arrived during it per second; time from each point's start. A point whose first slice differs from its last (Mann-Whitney p < 0.01 and a change of 5% or more) warmed up or drifted: its verdict says so."
                ),
                plot: Plot::OverTime(panels),
            });
        }
    }
}

/// Each contrast's layers, load by load.
fn contrast_figures(sources: &[Source], out: &mut Vec<Figure>) {
    for (i, s) in sources.iter().enumerate() {
        if let super::Input::Contrast(c) = &s.input {
            if let Some(panels) = contrast_panels(c) {
                out.push(Figure {
                    id: format!("contrast-{i}"),
                    title: format!(
                        "Contrast: {} ({})",
                        std::path::Path::new(&c.settings.model)
                            .file_name()
                            .map_or(c.settings.model.clone(), |n| n.to_string_lossy().into_owned()),
                        s.label
                    ),
                    caption: "Each bar one load (in-process batch B beside served concurrency B): the engine's median, then what the server adds inside itself, then what the client sees over HTTP; whiskers: the 95% bootstrap interval of each layer's difference of medians.".into(),
                    plot: Plot::Contrast(panels),
                });
            }
        }
    }
}

/// The telemetry of every file's points.
fn telemetry_figures(
    inproc: &[(String, &InprocResult)],
    http: &[(String, &HttpResult)],
    out: &mut Vec<Figure>,
) {
    for (i, (label, r)) in inproc.iter().enumerate() {
        let points: Vec<(String, Option<&TelemetrySummary>)> = r
            .points
            .iter()
            .map(|p| {
                (
                    format!("{}×{}", p.prompt_tokens, p.batch),
                    p.telemetry.as_ref(),
                )
            })
            .collect();
        if let Some(panels) = telemetry_panels(&points) {
            out.push(Figure {
                id: format!("telemetry-inproc-{i}"),
                title: format!("Telemetry, in-process: {label} ({})", describe(&r.provenance)),
                caption: "Per point (prompt × batch): mean and maximum of the readings taken 10 times a second while the measured runs ran.".into(),
                plot: Plot::Telemetry(panels),
            });
        }
    }
    for (i, (label, r)) in http.iter().enumerate() {
        let points: Vec<(String, Option<&TelemetrySummary>)> = r
            .points
            .iter()
            .map(|p| (p.load.label(), p.telemetry.as_ref()))
            .collect();
        if let Some(panels) = telemetry_panels(&points) {
            out.push(Figure {
                id: format!("telemetry-http-{i}"),
                title: format!("Telemetry, client side: {label} ({})", describe(&r.provenance)),
                caption: "Per point: the client host's and the client process's readings (the server's own, when on another machine, are not seen).".into(),
                plot: Plot::Telemetry(panels),
            });
        }
    }
}

/// One bar per request of every point of every request log.
fn timeline_figures(logs: &[super::RequestLog], out: &mut Vec<Figure>) {
    for (li, log) in logs.iter().enumerate() {
        for (point, records) in &log.points {
            let t = timeline(records);
            let shown = t.requests.len();
            let load = log
                .loads
                .get(*point)
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            out.push(Figure {
                id: format!("timeline-{li}-{point}"),
                title: format!("Requests of point {point}{load}: {}", log.label),
                caption: format!(
                    "One bar per request in the order sent: grey while it waited behind its schedule (the in-flight cap), orange from send to first token, blue until its last token; red: failed.{}",
                    if records.len() > shown { format!(" The first {shown} of {} requests.", records.len()) } else { String::new() }
                ),
                plot: Plot::Timeline(t),
            });
        }
    }
}
