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
    BatchCurve, BatchPoint, CdfPanel, ContrastPanel, Figure, LoadFigure, LoadPoint, OverTimePanel,
    ParetoSeries, Plot, TelemetryPanel, Timeline,
};

mod curves;
mod panels;

use curves::{batch, load_curves, pareto};
use panels::{cdf, contrast, over_time, telemetry, timeline};

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
