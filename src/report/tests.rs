//! Figures and the page, drawn from the committed example results and
//! checked from the outside: each SVG parsed as XML, its markers and legend
//! entries counted against the raw JSON of the files it came from.

use std::path::{Path, PathBuf};

use super::figures::{Figure, Plot};
use super::{draw, html, read_log, read_sources, Source};

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(path)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const INPROC: &str = "pictures/gemma-inproc.json";
const HTTP: &str = "pictures/gemma-llama-server.json";
const OPEN_LOOP: &str = "pictures/gemma-llama-server-open-loop.json";
const REQUESTS: &str = "pictures/gemma-llama-server-open-loop.requests.jsonl";
const CONTRAST: &str = "contrast/gemma-llama-server-b11434.json";
const COMPARE: &str = "h100/serve-compare.json";
const GPU_BATCH: &str = "h100/gemma-batch.json";

fn all_sources() -> (Vec<Source>, Vec<super::RequestLog>) {
    let files: Vec<PathBuf> = [INPROC, HTTP, OPEN_LOOP, CONTRAST, COMPARE, GPU_BATCH]
        .iter()
        .map(|p| example(p))
        .collect();
    let sources = read_sources(&files).unwrap();
    let logs = vec![read_log(&example(REQUESTS), &[]).unwrap()];
    (sources, logs)
}

/// Data markers: filled circles of the data radius, and triangles.
fn markers(doc: &roxmltree::Document) -> usize {
    let r = draw::POINT_RADIUS.to_string();
    doc.descendants()
        .filter(|n| {
            (n.has_tag_name("circle")
                && n.attribute("r") == Some(r.as_str())
                && n.attribute("fill") != Some("none"))
                || n.has_tag_name("polygon")
        })
        .count()
}

fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

fn figure<'a>(figures: &'a [Figure], id: &str) -> &'a Figure {
    figures
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no figure {id}: {:?}", ids(figures)))
}

fn ids(figures: &[Figure]) -> Vec<&str> {
    figures.iter().map(|f| f.id.as_str()).collect()
}

/// Points of a result file (a contrast's part when `part` is given) that
/// have the metric, read from the raw JSON.
fn points_with(value: &serde_json::Value, metric: &str) -> usize {
    value["points"]
        .as_array()
        .map_or(0, |p| p.iter().filter(|p| !p[metric].is_null()).count())
}

#[test]
fn every_figure_parses_as_svg_and_names_each_series() {
    let (sources, logs) = all_sources();
    let figures = super::catalog::figures(&sources, &logs);
    assert!(figures.len() >= 10, "{:?}", ids(&figures));
    for f in &figures {
        let svg = draw::svg(f).unwrap();
        let doc =
            roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: not XML: {e}", f.id));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{}", f.id);
        let texts = texts(&doc);
        assert!(texts.iter().any(|t| t == &f.title), "{}: no title", f.id);
        for label in f.plot.series_labels() {
            assert!(
                texts.iter().any(|t| t.starts_with(&label)),
                "{}: series {label:?} not in the legend: {texts:?}",
                f.id
            );
        }
        if f.plot.markers() > 0 {
            assert_eq!(markers(&doc), f.plot.markers(), "{}", f.id);
        }
    }
}

/// Each point of the batch curve names its share of the bandwidth and of
/// the compute peak, as the result file holds them.
#[test]
fn the_batch_curve_labels_each_point_with_its_roofline() {
    let path = example("roofline/gemma-epyc.json");
    let sources = read_sources(std::slice::from_ref(&path)).unwrap();
    let figures = super::catalog::figures(&sources, &[]);
    let doc_text = draw::svg(figure(&figures, "batch-curve")).unwrap();
    let doc = roxmltree::Document::parse(&doc_text).unwrap();
    let texts = texts(&doc);
    let raw = json(&path);
    let points = raw["points"].as_array().unwrap();
    assert!(!points.is_empty());
    let percent = |v: &serde_json::Value| format!("{:.0}%", 100.0 * v.as_f64().unwrap());
    for p in points {
        let first = format!(
            "B={} · {} BW",
            p["batch"],
            percent(&p["roofline"]["fraction_of_bandwidth"])
        );
        let second = format!(
            "prefill {} peak",
            percent(&p["prefill_roofline"]["fraction_of_peak"])
        );
        assert!(texts.contains(&first), "{first:?} not in {texts:?}");
        assert!(texts.contains(&second), "{second:?} not in {texts:?}");
    }
}

#[test]
fn the_batch_curve_has_a_point_per_measured_batch_and_marks_a_knee() {
    let (sources, logs) = all_sources();
    let figures = super::catalog::figures(&sources, &logs);
    let f = figure(&figures, "batch-curve");
    let inproc = json(&example(INPROC));
    let contrast = json(&example(CONTRAST));
    let gpu = json(&example(GPU_BATCH));
    let expected = points_with(&inproc, "decode_tok_s")
        + points_with(&contrast["inproc"], "decode_tok_s")
        + points_with(&gpu, "decode_tok_s");
    let doc_text = draw::svg(f).unwrap();
    let doc = roxmltree::Document::parse(&doc_text).unwrap();
    assert_eq!(markers(&doc), expected);
    // One curve per (file, prompt length): 128 and 512 in the CPU sweep.
    let Plot::Batch(curves) = &f.plot else {
        panic!("not a batch curve")
    };
    assert_eq!(curves.len(), 2 + 1 + 1, "{:?}", f.plot.series_labels());
    assert!(curves[0].knee.is_some(), "Gemma P=128 on CPU has a knee");
    let knee_labels = texts(&doc)
        .into_iter()
        .filter(|t| t.starts_with("knee: B="))
        .count();
    assert_eq!(
        knee_labels,
        curves.iter().filter(|c| c.knee.is_some()).count()
    );
}

#[test]
fn load_curves_pareto_and_timeline_match_the_files() {
    let (sources, logs) = all_sources();
    let figures = super::catalog::figures(&sources, &logs);

    // Closed loop: p50 and p99 of TTFT and TPOT per point with requests.
    let closed = figure(&figures, "load-closed");
    let served: usize = [
        json(&example(HTTP)),
        json(&example(CONTRAST))["http"].clone(),
    ]
    .iter()
    .map(|v| points_with(v, "tpot_ms"))
    .sum();
    let svg = draw::svg(closed).unwrap();
    assert_eq!(
        markers(&roxmltree::Document::parse(&svg).unwrap()),
        4 * served
    );
    assert!(svg.contains("SLO TTFT p99"), "the SLO line is drawn");

    let open = figure(&figures, "load-open");
    let Plot::Load(load) = &open.plot else {
        panic!("not a load figure")
    };
    let search = &json(&example(OPEN_LOOP))["max_rate"];
    if search["max_rate"].is_number() {
        assert!(load.max_rate.is_some(), "the max-rate answer is marked");
        assert!(draw::svg(open)
            .unwrap()
            .contains("max rate meeting the SLO"));
    }

    // Pareto: every point of every file with a TPOT, served as triangles.
    let pareto = figure(&figures, "pareto");
    let svg = draw::svg(pareto).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let triangles = doc
        .descendants()
        .filter(|n| n.has_tag_name("polygon"))
        .count();
    let open_points = points_with(&json(&example(OPEN_LOOP)), "tpot_ms");
    assert_eq!(triangles, served + open_points);

    // The timeline: one orange bar per successful request of the point.
    let log: Vec<serde_json::Value> = std::fs::read_to_string(example(REQUESTS))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok_in_point_0 = log
        .iter()
        .filter(|l| l["point"] == 0 && l["ok"] == true)
        .count();
    let timeline = figure(&figures, "timeline-0-0");
    let svg = draw::svg(timeline).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let orange = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#FF7F0E"))
        .count();
    // The legend's swatch is one more.
    assert_eq!(
        orange,
        ok_in_point_0.min(super::figures::TIMELINE_MAX_REQUESTS) + 1
    );
}

#[test]
fn cdfs_come_from_the_histograms_and_old_files_say_they_have_none() {
    let (sources, logs) = all_sources();
    let figures = super::catalog::figures(&sources, &logs);
    let inproc = json(&example(INPROC));
    let cdf = figures
        .iter()
        .find(|f| f.id.starts_with("cdf-inproc") && f.title.contains("in-process: gemma-inproc ("))
        .expect("a CDF of the CPU sweep");
    let Plot::Cdf(panels) = &cdf.plot else {
        panic!("not a CDF")
    };
    assert_eq!(panels.len(), 3);
    for p in panels {
        assert_eq!(p.lines.len(), inproc["points"].as_array().unwrap().len());
        for line in &p.lines {
            let last = line.points.last().unwrap().1;
            assert!((last - 1.0).abs() < 1e-9, "a CDF ends at 1: {last}");
            assert!(line.points.windows(2).all(|w| w[0].1 <= w[1].1));
        }
    }
    // The H100 files predate histograms: no CDF, and a warning says so.
    assert!(!figures
        .iter()
        .any(|f| f.id.starts_with("cdf") && f.title.contains(": gemma-batch (")));
    let warnings = html::warnings(&sources, &figures);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("gemma-batch") && w.contains("histograms")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("different machines")),
        "{warnings:?}"
    );
}

#[test]
fn the_page_references_nothing_outside_itself() {
    let (sources, logs) = all_sources();
    let figures = super::catalog::figures(&sources, &logs);
    let page = html::page(&sources, &logs, &figures).unwrap();
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "<object", "@import", "url(",
    ] {
        assert!(!page.contains(forbidden), "the page holds {forbidden}");
    }
    // Every attribute that could load something points inside the page.
    for attr in ["src=", "href=", "xlink:href="] {
        for (i, _) in page.match_indices(attr) {
            let value = &page[i + attr.len()..];
            assert!(
                value.starts_with("\"#"),
                "{attr} outside the page: {}",
                &value[..value.len().min(60)]
            );
        }
    }
    for f in &figures {
        assert!(page.contains(&format!("<figure id=\"{}\">", f.id)));
    }
    for section in ["files", "warnings", "provenance", "tables", "figures"] {
        assert!(page.contains(&format!("<section id=\"{section}\">")));
    }
}

#[test]
fn a_bad_requests_log_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.jsonl");
    std::fs::write(&path, "{\"point\":0}\n").unwrap();
    let e = format!("{:#}", read_log(&path, &[]).unwrap_err());
    assert!(e.contains("r.jsonl line 1"), "{e}");
    std::fs::write(&path, "\n").unwrap();
    let e = format!("{:#}", read_log(&path, &[]).unwrap_err());
    assert!(e.contains("no requests"), "{e}");
}

#[test]
fn a_rounds_file_is_drawn_as_its_pooled_targets() {
    let sources = read_sources(&[example("engines/llama-server-vs-vllm-closed.json")]).unwrap();
    let figures = super::catalog::figures(&sources, &[]);
    let f = figure(&figures, "load-closed");
    let labels = f.plot.series_labels();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels[0].contains("pooled over 3 rounds"), "{labels:?}");
    let page = html::page(&sources, &[], &figures).unwrap();
    assert!(page.contains("paired by round"));
    assert!(page.contains("<td>rounds</td>"));
}
