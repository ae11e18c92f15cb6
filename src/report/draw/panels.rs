//! The panels: distributions, the contrast's layers, telemetry, requests
//! over time and one bar per request.

use super::*;

pub(super) fn over_time<DB: DrawingBackend>(
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

pub(super) fn cdf<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &CdfPanel,
) -> DrawResult<DB> {
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

pub(super) fn cdf_lines<'a, DB, X>(
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
pub(super) fn category_label(labels: &[String]) -> impl Fn(&f64) -> String + '_ {
    move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

pub(super) fn contrast<DB: DrawingBackend>(
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

pub(super) fn telemetry<DB: DrawingBackend>(
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

pub(super) fn timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    t: &Timeline,
) -> DrawResult<DB> {
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
