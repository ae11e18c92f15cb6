//! Drawing the figures with plotters, on any backend: SVG for the page and
//! `--plots`, PNG for `--format png`. Every data point is a filled circle of
//! radius [`POINT_RADIUS`] (served points of the Pareto view: a triangle), so
//! that what was drawn can be counted in the SVG.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::element::PathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::figures::{
    BatchCurve, BatchPoint, CdfPanel, ContrastPanel, Figure, LoadFigure, OverTimePanel,
    ParetoSeries, Plot, TelemetryPanel, Timeline,
};

pub const WIDTH: u32 = 1200;
pub const POINT_RADIUS: i32 = 4;
const FONT: &str = "sans-serif";

/// Tableau 10: distinguishable, and readable in grey print.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Text is measured and rasterized with DejaVu Sans, compiled in: the
/// figures look the same on every machine and no font is looked up.
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a known-good font: registering cannot fail.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

pub fn height(figure: &Figure) -> u32 {
    match &figure.plot {
        Plot::Cdf(_) | Plot::OverTime(_) => 460,
        Plot::Telemetry(panels) => 300 * panels.len().div_ceil(2) as u32 + 60,
        Plot::Timeline(t) => (200 + 4 * t.requests.len() as u32).clamp(420, 900),
        _ => 640,
    }
}

pub fn svg(figure: &Figure) -> Result<String, String> {
    register_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height(figure))).into_drawing_area();
        draw(figure, &root).map_err(|e| format!("drawing {}: {e}", figure.id))?;
        root.present()
            .map_err(|e| format!("drawing {}: {e}", figure.id))?;
    }
    Ok(out)
}

pub fn png(figure: &Figure, path: &std::path::Path) -> Result<(), String> {
    register_fonts();
    let root = BitMapBackend::new(path, (WIDTH, height(figure))).into_drawing_area();
    draw(figure, &root).map_err(|e| format!("drawing {}: {e}", figure.id))?;
    root.present()
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn draw<DB: DrawingBackend>(figure: &Figure, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(&figure.title, (FONT, 20).into_font().style(FontStyle::Bold))?;
    match &figure.plot {
        Plot::Batch(curves) => batch(&root, curves),
        Plot::Load(load) => load_curves(&root, load),
        Plot::Pareto(series) => pareto(&root, series),
        Plot::Cdf(panels) => {
            let areas = root.split_evenly((1, panels.len().max(1)));
            for (panel, area) in panels.iter().zip(&areas) {
                cdf(area, panel)?;
            }
            Ok(())
        }
        Plot::Contrast(panels) => {
            let areas = root.split_evenly((1, panels.len().max(1)));
            for (panel, area) in panels.iter().zip(&areas) {
                contrast(area, panel)?;
            }
            Ok(())
        }
        Plot::Telemetry(panels) => {
            let rows = panels.len().div_ceil(2).max(1);
            let areas = root.split_evenly((rows, 2));
            for (panel, area) in panels.iter().zip(&areas) {
                telemetry(area, panel)?;
            }
            Ok(())
        }
        Plot::Timeline(t) => timeline(&root, t),
        Plot::OverTime(panels) => {
            let areas = root.split_evenly((1, panels.len().max(1)));
            for (panel, area) in panels.iter().zip(&areas) {
                over_time(area, panel)?;
            }
            Ok(())
        }
    }
}

fn over_time<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &OverTimePanel,
) -> DrawResult<DB> {
    let xs = min_max(
        panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0)),
    )
    .unwrap_or((0.0, 1.0));
    let ys = min_max(
        panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1)),
    )
    .unwrap_or((0.0, 1.0));
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(&panel.title, (FONT, 15))
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(padded(0.0, xs.1, true), padded(ys.0, ys.1, true))?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT_MESH)
        .bold_line_style(BOLD_MESH)
        .x_labels(6)
        .max_light_lines(2)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc("time in the point, s")
        .y_desc(panel.unit.as_str())
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()?;
    for line in &panel.lines {
        let c = color(line.point);
        let style = c.stroke_width(2);
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(
                    line.points.iter().copied(),
                    6,
                    4,
                    style,
                ))?
                .label(&line.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        } else {
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), style))?
                .label(&line.label)
                .legend(legend_box(c));
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 11)?;
    Ok(())
}

/// A range from `lo` to `hi` with a margin, never empty.
fn padded(lo: f64, hi: f64, from_zero: bool) -> std::ops::Range<f64> {
    let lo = if from_zero { lo.min(0.0) } else { lo };
    let span = (hi - lo).abs().max(hi.abs() * 0.1).max(1e-9);
    let low = if from_zero && lo >= 0.0 {
        0.0
    } else {
        lo - span * 0.06
    };
    low..hi + span * 0.08
}

fn min_max(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Tick labels with no more digits than they need: 8000, 12.5, 0.25.
fn tick(v: &f64) -> String {
    let a = v.abs();
    let text = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

const LIGHT_MESH: RGBColor = RGBColor(238, 238, 238);
const BOLD_MESH: RGBColor = RGBColor(205, 205, 205);

/// A whisker from `lo` to `hi` with caps, vertical at `x` or horizontal at `y`.
fn whisker_v(
    x: f64,
    lo: f64,
    hi: f64,
    cap: f64,
    style: ShapeStyle,
) -> [PathElement<(f64, f64)>; 3] {
    [
        PathElement::new(vec![(x, lo), (x, hi)], style),
        PathElement::new(vec![(x - cap, lo), (x + cap, lo)], style),
        PathElement::new(vec![(x - cap, hi), (x + cap, hi)], style),
    ]
}

fn whisker_h(
    y: f64,
    lo: f64,
    hi: f64,
    cap: f64,
    style: ShapeStyle,
) -> [PathElement<(f64, f64)>; 3] {
    [
        PathElement::new(vec![(lo, y), (hi, y)], style),
        PathElement::new(vec![(lo, y - cap), (lo, y + cap)], style),
        PathElement::new(vec![(hi, y - cap), (hi, y + cap)], style),
    ]
}

type XyChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A full-width chart of two linear axes, its mesh and axis labels drawn.
fn xy_chart<'a, DB: DrawingBackend + 'a>(
    root: &'a DrawingArea<DB, Shift>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &str,
    y_desc: &str,
) -> Result<XyChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(root)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT_MESH)
        .bold_line_style(BOLD_MESH)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;
    Ok(chart)
}

/// The legend box every figure draws.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    size: u32,
) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, size))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

fn legend_box(c: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
}

/// A batch-curve point's label, top line first: the batch and the decode
/// step's share of the memory bandwidth, then what else was measured (the
/// prefill's share of the compute peak, the kernels' busy fraction).
pub fn batch_point_label(p: &BatchPoint) -> Vec<String> {
    let percent = |f: f64| format!("{:.0}%", 100.0 * f);
    let mut first = format!("B={}", p.batch);
    if let Some(f) = p.bandwidth_fraction {
        first.push_str(&format!(" · {} BW", percent(f)));
    }
    let second: Vec<String> = [
        p.prefill_peak_fraction
            .map(|f| format!("prefill {} peak", percent(f))),
        p.kernel_busy_fraction
            .map(|f| format!("{} busy", percent(f))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if second.is_empty() {
        vec![first]
    } else {
        vec![first, second.join(" · ")]
    }
}

fn batch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[BatchCurve],
) -> DrawResult<DB> {
    let xs = min_max(
        curves
            .iter()
            .flat_map(|c| c.points.iter().flat_map(|p| [p.latency_p50, p.latency_p99])),
    )
    .unwrap_or((0.0, 1.0));
    let ys =
        min_max(curves.iter().flat_map(|c| c.points.iter().map(|p| p.tok_s))).unwrap_or((0.0, 1.0));
    let mut chart = xy_chart(
        root,
        padded(xs.0, xs.1, false),
        padded(ys.0, ys.1, true),
        "inter-token latency per step, ms (p50; whisker to p99): decode step + sampling",
        "aggregate decode tok/s (p50 of runs)",
    )?;
    for (i, curve) in curves.iter().enumerate() {
        let c = color(i);
        let line: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (p.latency_p50, p.tok_s))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))?
            .label(&curve.label)
            .legend(legend_box(c));
        let cap = (ys.1 - ys.0).max(1.0) * 0.008;
        chart.draw_series(curve.points.iter().flat_map(|p| {
            whisker_h(
                p.tok_s,
                p.latency_p50,
                p.latency_p99,
                cap,
                c.stroke_width(1),
            )
        }))?;
        chart.draw_series(
            line.iter()
                .map(|&xy| Circle::new(xy, POINT_RADIUS, c.filled())),
        )?;
        chart.draw_series(curve.points.iter().flat_map(|p| {
            let lines = batch_point_label(p);
            let above = lines.len() as i32;
            lines.into_iter().enumerate().map(move |(i, line)| {
                EmptyElement::at((p.latency_p50, p.tok_s))
                    + Text::new(
                        line,
                        (-8, -8 - 14 * (above - i as i32)),
                        (FONT, 13).into_font().color(&c),
                    )
            })
        }))?;
        if let Some(k) = curve.knee.and_then(|k| curve.points.get(k)) {
            chart.draw_series([Circle::new((k.latency_p50, k.tok_s), 11, c.stroke_width(2))])?;
            chart.draw_series([EmptyElement::at((k.latency_p50, k.tok_s))
                + Text::new(
                    format!("knee: B={}", k.batch),
                    (14, 6),
                    (FONT, 15).into_font().style(FontStyle::Bold).color(&c),
                )])?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight, 14)?;
    Ok(())
}

/// A label starting at `at`, above it (`VPos::Bottom`) or below it
/// (`VPos::Top`).
fn anchored_label(
    text: String,
    at: (f64, f64),
    color: &RGBColor,
    v: VPos,
) -> Text<'static, (f64, f64), String> {
    Text::new(
        text,
        at,
        (FONT, 13)
            .into_font()
            .color(color)
            .pos(Pos::new(HPos::Left, v)),
    )
}

fn load_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &LoadFigure,
) -> DrawResult<DB> {
    let panels = root.split_evenly((1, 2));
    let xs =
        min_max(fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.x))).unwrap_or((0.0, 1.0));
    let x_range = padded(xs.0, xs.1, true);
    for (panel, (name, slo, pick)) in panels.iter().zip([
        ("TTFT", fig.slo_ttft_ms, 0usize),
        ("TPOT", fig.slo_tpot_ms, 1),
    ]) {
        let values = |p: &super::figures::LoadPoint| {
            if pick == 0 {
                (p.ttft_p50, p.ttft_p99)
            } else {
                (p.tpot_p50, p.tpot_p99)
            }
        };
        let ys = min_max(
            fig.series
                .iter()
                .flat_map(|s| {
                    s.points
                        .iter()
                        .flat_map(|p| <[Option<f64>; 2]>::from(values(p)))
                })
                .flatten()
                .chain(slo),
        )
        .unwrap_or((0.0, 1.0));
        // Goodput's bars go with the TTFT panel.
        let goodput = pick == 0
            && fig
                .series
                .iter()
                .any(|s| s.points.iter().any(|p| p.goodput.is_some()));
        let g_max = min_max(
            fig.series
                .iter()
                .flat_map(|s| s.points.iter().filter_map(|p| p.goodput)),
        )
        .map_or(1.0, |g| g.1.max(1e-3));
        let mut chart = ChartBuilder::on(panel)
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .right_y_label_area_size(if goodput { 64 } else { 0 })
            .caption(
                format!(
                    "{name} p50 (solid) and p99 (dashed){}",
                    if pick == 0 && fig.open_loop {
                        ", from the intended send time"
                    } else {
                        ""
                    }
                ),
                (FONT, 15),
            )
            .build_cartesian_2d(x_range.clone(), padded(ys.0, ys.1, true))?
            .set_secondary_coord(x_range.clone(), 0.0..g_max * 1.15);
        chart
            .configure_mesh()
            .light_line_style(LIGHT_MESH)
            .bold_line_style(BOLD_MESH)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc(fig.x_desc.as_str())
            .y_desc(format!("{name}, ms"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        if goodput {
            chart
                .configure_secondary_axes()
                .y_label_formatter(&tick)
                .y_desc("goodput, req/s (bars)")
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 14))
                .draw()?;
        }
        let width = (x_range.end - x_range.start) / 60.0;
        for (i, s) in fig.series.iter().enumerate() {
            let c = color(i);
            let p50: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.x, values(p).0?)))
                .collect();
            let p99: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.x, values(p).1?)))
                .collect();
            chart
                .draw_series(LineSeries::new(p50.clone(), c.stroke_width(2)))?
                .label(&s.label)
                .legend(legend_box(c));
            chart.draw_series(DashedLineSeries::new(p99.clone(), 6, 4, c.stroke_width(2)))?;
            chart.draw_series(
                p50.iter()
                    .chain(&p99)
                    .map(|&xy| Circle::new(xy, POINT_RADIUS, c.filled())),
            )?;
            if goodput {
                let offset = width * (i as f64 - (fig.series.len() as f64 - 1.0) / 2.0);
                chart.draw_secondary_series(s.points.iter().filter_map(|p| {
                    let g = p.goodput?;
                    Some(Rectangle::new(
                        [
                            (p.x + offset - width / 2.0, 0.0),
                            (p.x + offset + width / 2.0, g),
                        ],
                        c.mix(0.35).filled(),
                    ))
                }))?;
            }
        }
        if let Some(limit) = slo {
            chart.draw_series(DashedLineSeries::new(
                [(x_range.start, limit), (x_range.end, limit)],
                10,
                6,
                RED.stroke_width(2),
            ))?;
            chart.draw_series([anchored_label(
                format!("SLO {name} p99 ≤ {limit} ms"),
                (x_range.start, limit),
                &RED,
                VPos::Bottom,
            )])?;
        }
        if let Some((x, label)) = &fig.max_rate {
            let top = padded(ys.0, ys.1, true).end;
            chart.draw_series(DashedLineSeries::new(
                [(*x, 0.0), (*x, top)],
                8,
                5,
                BLACK.stroke_width(2),
            ))?;
            chart.draw_series([anchored_label(label.clone(), (*x, top), &BLACK, VPos::Top)])?;
        }
        legend(&mut *chart, SeriesLabelPosition::UpperLeft, 13)?;
    }
    Ok(())
}

fn pareto<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[ParetoSeries],
) -> DrawResult<DB> {
    let xs =
        min_max(series.iter().flat_map(|s| s.points.iter().map(|p| p.total))).unwrap_or((0.0, 1.0));
    let ys = min_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.per_user)),
    )
    .unwrap_or((0.0, 1.0));
    let mut chart = xy_chart(
        root,
        padded(xs.0, xs.1, true),
        padded(ys.0, ys.1, true),
        "total output tok/s (in-process: B × G / E2E; served: output tokens over the point's window)",
        "tok/s per user (1000 / TPOT p50)",
    )?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let mut line: Vec<(f64, f64)> = s.points.iter().map(|p| (p.total, p.per_user)).collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))?
            .label(format!(
                "{}{}",
                s.label,
                match (s.served, s.label.ends_with(')')) {
                    (_, true) => "",
                    (true, false) => " (served)",
                    (false, false) => " (in-process)",
                }
            ))
            .legend(legend_box(c));
        if s.served {
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| TriangleMarker::new((p.total, p.per_user), 7, c.filled())),
            )?;
        } else {
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((p.total, p.per_user), POINT_RADIUS, c.filled())),
            )?;
        }
        chart.draw_series(s.points.iter().map(|p| {
            EmptyElement::at((p.total, p.per_user))
                + Text::new(p.label.clone(), (8, -16), (FONT, 12).into_font().color(&c))
        }))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
    Ok(())
}

fn cdf<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &CdfPanel) -> DrawResult<DB> {
    let xs = min_max(
        panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0)),
    )
    .unwrap_or((0.0, 1.0));
    let builder = |area| {
        let mut b = ChartBuilder::on(area);
        b.margin(12)
            .caption(&panel.title, (FONT, 15))
            .x_label_area_size(44)
            .y_label_area_size(56);
        b
    };
    // Points an order of magnitude apart (prefill of 128 and of 8192
    // tokens) are told apart on a log axis only.
    if xs.0 > 0.0 && xs.1 / xs.0 > 8.0 {
        let range = (xs.0 * 0.9..xs.1 * 1.1).log_scale();
        let mut chart = builder(area).build_cartesian_2d(range, 0.0..1.02)?;
        cdf_lines(&mut chart, panel, true)
    } else {
        let mut chart = builder(area).build_cartesian_2d(padded(xs.0, xs.1, false), 0.0..1.02)?;
        cdf_lines(&mut chart, panel, false)
    }
}

fn cdf_lines<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    panel: &CdfPanel,
    log: bool,
) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .light_line_style(LIGHT_MESH)
        .bold_line_style(BOLD_MESH)
        .x_labels(6)
        .max_light_lines(2)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(format!(
            "{}, ms{}",
            panel.metric,
            if log { " (log scale)" } else { "" }
        ))
        .y_desc("fraction ≤ x")
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()?;
    for (i, line) in panel.lines.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                c.stroke_width(2),
            ))?
            .label(&line.label)
            .legend(legend_box(c));
    }
    legend(chart, SeriesLabelPosition::LowerRight, 12)?;
    Ok(())
}

/// x labels of a category axis: the label at each integer, nothing between.
fn category_label(labels: &[String]) -> impl Fn(&f64) -> String + '_ {
    move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

fn contrast<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &ContrastPanel,
) -> DrawResult<DB> {
    let ys = min_max(panel.bars.iter().flat_map(|b| {
        b.segments
            .iter()
            .flat_map(|s| [s.bottom, s.top].into_iter().chain(s.ci.map(|c| c.1)))
    }))
    .unwrap_or((0.0, 1.0));
    let n = panel.bars.len().max(1);
    let labels: Vec<String> = panel.bars.iter().map(|b| b.label.clone()).collect();
    let formatter = category_label(&labels);
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .caption(&panel.title, (FONT, 15))
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.6..n as f64 - 0.4, padded(ys.0, ys.1, true))?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT_MESH)
        .bold_line_style(BOLD_MESH)
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&formatter)
        .x_desc("in flight (in-process B = served concurrency)")
        .y_label_formatter(&tick)
        .y_desc(format!("{}, ms (p50)", panel.metric))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let layer_names: Vec<&str> = panel
        .bars
        .first()
        .map(|b| b.segments.iter().map(|s| s.layer.as_str()).collect())
        .unwrap_or_default();
    for (li, name) in layer_names.iter().enumerate() {
        let c = color(li);
        chart
            .draw_series(panel.bars.iter().enumerate().filter_map(|(bi, b)| {
                let s = b.segments.get(li)?;
                let x = bi as f64;
                Some(Rectangle::new(
                    [
                        (x - 0.3, s.bottom.min(s.top)),
                        (x + 0.3, s.bottom.max(s.top)),
                    ],
                    c.mix(0.8).filled(),
                ))
            }))?
            .label(*name)
            .legend(legend_box(c));
    }
    for (bi, b) in panel.bars.iter().enumerate() {
        for s in &b.segments {
            if let Some((lo, hi)) = s.ci {
                chart.draw_series(whisker_v(
                    bi as f64 + 0.12,
                    lo,
                    hi,
                    0.04,
                    BLACK.stroke_width(2),
                ))?;
            }
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)?;
    Ok(())
}

fn telemetry<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &TelemetryPanel,
) -> DrawResult<DB> {
    let ys = min_max(panel.series.iter().flat_map(|s| {
        s.values
            .iter()
            .flatten()
            .flat_map(|&(mean, max)| [mean, max])
    }))
    .unwrap_or((0.0, 1.0));
    let n = panel.points.len().max(1);
    let formatter = category_label(&panel.points);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(&panel.title, (FONT, 15))
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.6..n as f64 - 0.4, padded(ys.0, ys.1, true))?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT_MESH)
        .bold_line_style(BOLD_MESH)
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&formatter)
        .y_label_formatter(&tick)
        .y_desc(panel.unit.as_str())
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()?;
    let k = panel.series.len().max(1) as f64;
    let width = 0.7 / k;
    for (si, s) in panel.series.iter().enumerate() {
        let c = color(si);
        let offset = -0.35 + width * (si as f64 + 0.5);
        chart
            .draw_series(s.values.iter().enumerate().filter_map(|(pi, v)| {
                let (mean, _) = (*v)?;
                let x = pi as f64 + offset;
                Some(Rectangle::new(
                    [(x - width / 2.0, 0.0), (x + width / 2.0, mean)],
                    c.mix(0.8).filled(),
                ))
            }))?
            .label(format!("{} (mean; whisker: max)", s.name))
            .legend(legend_box(c));
        chart.draw_series(
            s.values
                .iter()
                .enumerate()
                .filter_map(|(pi, v)| {
                    let (mean, max) = (*v)?;
                    Some(whisker_v(
                        pi as f64 + offset,
                        mean,
                        max,
                        width / 4.0,
                        BLACK.stroke_width(1),
                    ))
                })
                .flatten(),
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 12)?;
    Ok(())
}

fn timeline<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, t: &Timeline) -> DrawResult<DB> {
    let x_max = t
        .requests
        .iter()
        .map(|r| r.end_ms.max(r.sent_ms))
        .fold(1.0f64, f64::max);
    let n = t.requests.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max * 1.03, -0.5..n as f64 - 0.5)?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT_MESH)
        .bold_line_style(BOLD_MESH)
        .disable_y_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&|v: &f64| {
            if (v - v.round()).abs() < 1e-6 && *v >= 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .x_desc("ms since the point started")
        .y_desc("request, in order sent")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let (wait, ttft, decode, failed) = (
        RGBColor(190, 190, 190),
        color(1),
        color(0),
        RGBColor(214, 39, 40),
    );
    let half = 0.38;
    let bar = |y: f64, a: f64, b: f64, c: RGBColor| {
        Rectangle::new([(a, y - half), (b.max(a), y + half)], c.filled())
    };
    chart
        .draw_series(t.requests.iter().enumerate().filter_map(|(i, r)| {
            let scheduled = r.scheduled_ms?;
            (r.sent_ms > scheduled).then(|| bar(i as f64, scheduled, r.sent_ms, wait))
        }))?
        .label("waiting to be sent (behind schedule)")
        .legend(legend_box(wait));
    chart
        .draw_series(
            t.requests
                .iter()
                .enumerate()
                .filter(|(_, r)| r.ok)
                .map(|(i, r)| {
                    bar(
                        i as f64,
                        r.sent_ms,
                        r.first_token_ms.unwrap_or(r.end_ms),
                        ttft,
                    )
                }),
        )?
        .label("sent to first token (TTFT)")
        .legend(legend_box(ttft));
    chart
        .draw_series(
            t.requests
                .iter()
                .enumerate()
                .filter(|(_, r)| r.ok)
                .filter_map(|(i, r)| Some(bar(i as f64, r.first_token_ms?, r.end_ms, decode))),
        )?
        .label("first to last token (decode)")
        .legend(legend_box(decode));
    chart
        .draw_series(
            t.requests
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.ok)
                .map(|(i, r)| {
                    bar(
                        i as f64,
                        r.sent_ms,
                        r.end_ms.max(r.sent_ms + x_max / 200.0),
                        failed,
                    )
                }),
        )?
        .label("failed")
        .legend(legend_box(failed));
    legend(&mut chart, SeriesLabelPosition::LowerRight, 13)?;
    Ok(())
}
