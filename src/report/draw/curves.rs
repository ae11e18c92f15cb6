//! The curves: the batch curve, served latency against load, the Pareto
//! view.

use super::*;

/// A batch-curve point's label, top line first: the batch and the decode
/// step's share of the memory bandwidth, then what else was measured (the
/// prefill's share of the compute peak, the kernels' busy fraction).
pub(super) fn batch_point_label(p: &BatchPoint) -> Vec<String> {
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

pub(super) fn batch<DB: DrawingBackend>(
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
pub(super) fn anchored_label(
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

pub(super) fn load_curves<DB: DrawingBackend>(
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
        let values = |p: &LoadPoint| panel_values(p, pick);
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
        let top = padded(ys.0, ys.1, true).end;
        load_markers(&mut *chart, name, slo, fig.max_rate.as_ref(), top)?;
        legend(&mut *chart, SeriesLabelPosition::UpperLeft, 13)?;
    }
    Ok(())
}

/// A load panel's p50 and p99: TTFT (`pick` 0) or TPOT.
fn panel_values(p: &LoadPoint, pick: usize) -> (Option<f64>, Option<f64>) {
    if pick == 0 {
        (p.ttft_p50, p.ttft_p99)
    } else {
        (p.tpot_p50, p.tpot_p99)
    }
}

/// The SLO's limit across a load panel and the highest rate found, up to
/// `top`.
fn load_markers<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    name: &str,
    slo: Option<f64>,
    max_rate: Option<&(f64, String)>,
    top: f64,
) -> DrawResult<DB> {
    let x_range = chart.x_range();
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
    if let Some((x, label)) = max_rate {
        chart.draw_series(DashedLineSeries::new(
            [(*x, 0.0), (*x, top)],
            8,
            5,
            BLACK.stroke_width(2),
        ))?;
        chart.draw_series([anchored_label(label.clone(), (*x, top), &BLACK, VPos::Top)])?;
    }
    Ok(())
}

pub(super) fn pareto<DB: DrawingBackend>(
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
