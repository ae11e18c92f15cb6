//! `inferbench report` as a user runs it: the committed example results in,
//! figures and one HTML page out, the page opened by a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{assert_clean_failure, bin, stderr};

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(path)
}

fn examples() -> Vec<PathBuf> {
    [
        "pictures/gemma-inproc.json",
        "pictures/gemma-llama-server.json",
        "pictures/gemma-llama-server-open-loop.json",
        "contrast/gemma-llama-server-b11434.json",
    ]
    .iter()
    .map(|p| example(p))
    .collect()
}

fn report(dir: &Path, extra: &[&str]) -> std::process::Output {
    bin()
        .arg("report")
        .args(examples())
        .arg("--requests-log")
        .arg(example(
            "pictures/gemma-llama-server-open-loop.requests.jsonl",
        ))
        .arg("--html")
        .arg(dir.join("report.html"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn report_writes_the_page_and_every_figure_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let svg_dir = dir.path().join("svg");
    let o = report(dir.path(), &["--plots", svg_dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svgs: Vec<PathBuf> = std::fs::read_dir(&svg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for name in [
        "batch-curve",
        "load-closed",
        "load-open",
        "pareto",
        "contrast-3",
    ] {
        assert!(
            svg_dir.join(format!("{name}.svg")).exists(),
            "{name}.svg missing: {svgs:?}"
        );
    }
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    // The page holds every figure written as a file, inline.
    assert_eq!(page.matches("<svg").count(), svgs.len());
    // Percentiles from too few requests (these runs are short) are greyed.
    assert!(
        page.contains("<td class=\"num short\""),
        "no greyed percentile"
    );
    assert!(page.contains("td.short { color: #999; }"));
    assert!(page.contains("Greyed, with *"));

    let png_dir = dir.path().join("png");
    let o = report(
        dir.path(),
        &["--plots", png_dir.to_str().unwrap(), "--format", "png"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let batch = std::fs::read(png_dir.join("batch-curve.png")).unwrap();
    assert_eq!(&batch[..8], b"\x89PNG\r\n\x1a\n");
    assert!(non_white_fraction(&batch) > 0.02, "the PNG is drawn");
}

/// Share of pixels that are not white: a blank page or figure reads 0.
fn non_white_fraction(png: &[u8]) -> f64 {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let total = pixels.len();
    let coloured = buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 240))
        .count();
    coloured as f64 / total.max(1) as f64
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            found
                .status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
        })
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn a_real_browser_renders_the_page_offline() {
    let Some(browser) = chromium() else {
        // CI installs chromium (.ci/run): there, its absence is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium to render the report"
        );
        eprintln!("skipped: no chromium on this machine (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = report(dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = dir.path().join("report.html");
    let url = format!("file://{}", page.display());

    let dom = headless(&browser, &dir.path().join("profile"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom_text.contains("<title>inferbench report:"),
        "no title in the DOM: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for section in ["files", "warnings", "provenance", "tables", "figures"] {
        assert!(
            dom_text.contains(&format!("<section id=\"{section}\">")),
            "section {section} missing from the rendered DOM"
        );
    }
    assert!(dom_text.contains("<figure id=\"batch-curve\">"));

    let shot = dir.path().join("shot.png");
    let o = headless(&browser, &dir.path().join("profile"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2400")
        .arg(&url)
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(
        non_white_fraction(&png) > 0.01,
        "the rendered page is blank"
    );
}

#[test]
fn report_names_the_file_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let o = bin().arg("report").arg(&missing).output().unwrap();
    assert_clean_failure(&o, 1, "missing.json");

    let not_json = dir.path().join("notes.json");
    std::fs::write(&not_json, "hello").unwrap();
    let o = bin().arg("report").arg(&not_json).output().unwrap();
    assert_clean_failure(&o, 1, "notes.json: not JSON");

    let not_result = dir.path().join("other.json");
    std::fs::write(&not_result, "{\"a\": 1}").unwrap();
    let o = bin().arg("report").arg(&not_result).output().unwrap();
    assert_clean_failure(&o, 1, "other.json is not an inferbench result file");

    let bad_log = dir.path().join("log.jsonl");
    std::fs::write(&bad_log, "not json\n").unwrap();
    let o = bin()
        .arg("report")
        .arg(example("pictures/gemma-inproc.json"))
        .arg("--requests-log")
        .arg(&bad_log)
        .arg("--html")
        .arg(dir.path().join("r.html"))
        .output()
        .unwrap();
    assert_clean_failure(&o, 1, "log.jsonl line 1");
    assert!(!dir.path().join("r.html").exists());
}
