//! What a person reads: a llama-bench-like table on stdout, one row per
//! point as it finishes (the CSV of the same points: `points_table`).

use std::path::Path;

use inferbench_harness::schema::telemetry::PointEnergy;
use inferbench_harness::schema::validity::{JudgedPoint, Validity};
use inferbench_harness::schema::{
    HostInfo, HttpPoint, HttpResult, InprocPoint, InprocResult, Provenance, ResultFile,
};
use inferbench_harness::stats::Stats;

use crate::table::Table;

/// The last line of a run: where its result is, and whether it is partial.
pub fn print_result_path(path: &Path, partial: bool) {
    eprintln!(
        "results: {}{}",
        path.display(),
        if partial { " (partial)" } else { "" }
    );
}

/// The run's verdict, one line under its table.
pub fn print_run_verdict<S, P: JudgedPoint>(result: &ResultFile<S, P>) {
    println!("run verdict: {}", result.judged().line());
}

pub use crate::result_files::{default_result_path, make_parent_dir, save_failed, save_result};

/// Width of a grid setting's column.
const SETTING_WIDTH: usize = 12;

/// The columns a grid's varying settings add before the in-process ones.
fn grid_header(varying: &[&str]) -> (Vec<String>, Vec<usize>) {
    let header = varying
        .iter()
        .map(|s| s.to_string())
        .chain(INPROC_HEADER.iter().map(|s| s.to_string()))
        .collect();
    let widths = varying
        .iter()
        .map(|s| s.len().max(SETTING_WIDTH))
        .chain(INPROC_WIDTHS)
        .collect();
    (header, widths)
}

/// A point's cells in a grid: its varying settings, then the in-process
/// columns.
fn grid_cells(p: &InprocPoint, varying: &[&str]) -> Vec<String> {
    varying
        .iter()
        .map(|name| p.config.as_ref().map_or("-".into(), |c| c.value(name)))
        .chain(inproc_cells(p))
        .collect()
}

/// Provenance, ceilings and the table's header (with a column for each
/// grid setting in `varying`).
pub fn print_header(provenance: &Provenance, varying: &[&str]) {
    let e = &provenance.engine;
    if let Some(m) = &provenance.model {
        println!(
            "model: {} ({}, {}, {:.1}M params, {:.1} MiB)",
            m.name.as_deref().unwrap_or(&m.path),
            m.architecture,
            m.quantization,
            m.parameters as f64 / 1e6,
            m.file_size_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "engine: {} {} via {} | backend {} | threads {}/{} | host {} ({} cores)",
        e.name,
        e.version,
        e.bindings,
        e.backend,
        e.threads.unwrap_or(0),
        e.threads_batch.unwrap_or(0),
        provenance.host.cpu_model,
        provenance.host.logical_cores,
    );
    if let Some(c) = ceilings(&provenance.host) {
        println!("ceilings: {c}");
    }
    println!();
    let (header, widths) = grid_header(varying);
    print_rule(&header, &widths);
}

/// The limits the rooflines are judged against, as measured before the
/// points: "memory 31.2 GB/s (stream-triad, 2 threads) | f32 FMA 178.9
/// GFLOP/s (2 threads)" on a CPU, the GPU's copy and nominal bandwidth on a
/// GPU. `None` when nothing was probed (served runs, older files).
pub fn ceilings(host: &HostInfo) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(b) = &host.memory_bandwidth {
        parts.push(format!(
            "memory {:.1} GB/s (stream-triad, {} threads)",
            b.best_gb_s, b.threads
        ));
    }
    if let Some(c) = &host.compute_peak {
        parts.push(format!(
            "f32 FMA {:.1} GFLOP/s ({} threads)",
            c.best_gflop_s, c.threads
        ));
    }
    if let Some(d) = &host.device_memory_bandwidth {
        let copy = d.copy.as_ref().map_or_else(
            || "no copy probe".to_string(),
            |c| format!("copy {:.0} GB/s", c.best_gb_s),
        );
        let nominal = d.nominal.as_ref().map_or_else(String::new, |n| {
            format!(
                ", nominal {:.0} GB/s ({} MHz × 2 × {} bits, {})",
                n.gb_s, n.memory_clock_mhz, n.bus_width_bits, n.source
            )
        });
        parts.push(format!("{} memory: {copy}{nominal}", d.device));
    }
    (!parts.is_empty()).then(|| parts.join(" | "))
}

/// The columns of the in-process table, terminal and report alike.
pub const INPROC_HEADER: [&str; 14] = [
    "pp",
    "tg",
    "B",
    "prefill tok/s",
    "decode tok/s",
    "total tok/s",
    "TTFT p50 ms",
    "ITL p50 ms",
    "ITL p99 ms",
    "E2E p50 ms",
    "step/llama",
    "BW %",
    "prefill % peak",
    "GPU busy %",
];
const INPROC_WIDTHS: [usize; 14] = [10, 5, 4, 13, 12, 11, 11, 10, 10, 10, 10, 5, 14, 10];

/// The columns of the served table.
pub const HTTP_HEADER: [&str; 12] = [
    "load",
    "ok/failed",
    "TTFT p50 ms",
    "TTFT p99 ms",
    "ITL p50 ms",
    "ITL p99 ms",
    "TPOT p50 ms",
    "E2E p50 ms",
    "out tok/s",
    "req/s",
    "goodput/s",
    "client CPU",
];
const HTTP_WIDTHS: [usize; 12] = [12, 9, 11, 11, 10, 10, 11, 10, 9, 8, 9, 10];

/// The columns a run with `--server-metrics` adds: the server's own queue
/// time, the requests it kept waiting and its KV-cache use, beside the
/// client's TTFT.
pub const SERVER_HEADER: [&str; 3] = ["queue mean ms", "waiting max", "KV % max"];
const SERVER_WIDTHS: [usize; 3] = [13, 11, 8];

fn http_header(with_server: bool) -> (Vec<String>, Vec<usize>) {
    let mut header: Vec<String> = HTTP_HEADER.map(String::from).to_vec();
    let mut widths = HTTP_WIDTHS.to_vec();
    if with_server {
        header.extend(SERVER_HEADER.map(String::from));
        widths.extend(SERVER_WIDTHS);
    }
    (header, widths)
}

/// The server-metrics cells of a point: "-" for what its server does not
/// expose.
fn server_cells(p: &HttpPoint) -> [String; 3] {
    let headline = p.server_metrics.as_ref().map(|m| &m.headline);
    let or_dash = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    [
        or_dash(
            // The mean is exact (sum over count); bucket quantiles are only
            // as fine as the server's buckets.
            headline
                .and_then(|h| h.queue_time_ms.as_ref())
                .and_then(|q| q.mean),
            3,
        ),
        or_dash(
            headline
                .and_then(|h| h.requests_waiting.as_ref())
                .map(|g| g.max),
            0,
        ),
        or_dash(
            headline
                .and_then(|h| h.kv_cache_percent.as_ref())
                .map(|g| g.max),
            1,
        ),
    ]
}

/// A header and its rule, each column right-aligned to its width.
fn print_rule(header: &[String], widths: &[usize]) {
    println!("{}", padded_row(header, widths));
    let rule: Vec<String> = widths.iter().map(|&w| format!("{:->w$}", ":")).collect();
    println!("{}", padded_row(&rule, widths));
}

fn padded_row(cells: &[String], widths: &[usize]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, &w)| format!("{c:>w$}"))
        .collect();
    format!("| {} |", cells.join(" | "))
}

fn cell<'a>(
    stats: impl Into<Option<&'a Stats>>,
    pick: fn(&Stats) -> f64,
    decimals: usize,
) -> String {
    stats
        .into()
        .map_or_else(|| "-".into(), |s| format!("{:.*}", decimals, pick(s)))
}

pub fn inproc_cells(p: &InprocPoint) -> Vec<String> {
    // Files written before validity was kept are judged as they are read.
    let validity = p.validity.clone().unwrap_or_else(|| p.assess());
    let ratio = p
        .engine_counters
        .as_ref()
        .and_then(|c| c.harness_over_engine_decode_step)
        .map_or_else(|| "-".into(), |r| format!("{r:.4}"));
    let mean = |s: &Stats| s.mean;
    let p50 = |s: &Stats| s.p50;
    // At a depth, llama-bench's way: pp512 @ d4096.
    let prompt = if p.depth > 0 {
        format!("{}@d{}", p.prompt_tokens, p.depth)
    } else {
        p.prompt_tokens.to_string()
    };
    vec![
        prompt,
        p.gen_tokens.to_string(),
        p.batch.to_string(),
        cell(&p.prefill_tok_s, mean, 1),
        cell(&p.decode_tok_s, mean, 1),
        cell(&p.throughput_tok_s, mean, 1),
        cell(&p.ttft_ms, p50, 3),
        cell(&p.itl_ms, p50, 3),
        percentile_cell(p.itl_ms.as_ref(), Some(&validity), "itl_ms", 3),
        cell(&p.e2e_ms, p50, 2),
        ratio,
        // The decode step's share of the memory bandwidth it must use.
        p.roofline
            .as_ref()
            .and_then(|r| r.fraction_of_bandwidth)
            .map_or_else(|| "-".into(), |f| format!("{:.0}", 100.0 * f)),
        // The prefill's share of the f32 FMA peak.
        p.prefill_roofline
            .as_ref()
            .and_then(|r| r.fraction_of_peak)
            .map_or_else(|| "-".into(), |f| format!("{:.0}", 100.0 * f)),
        // The decode step's kernel busy time over its host time (CUPTI).
        p.kernel_timing
            .as_ref()
            .and_then(|k| k.decode_step.as_ref())
            .and_then(|d| d.busy_over_host)
            .map_or_else(|| "-".into(), |f| format!("{:.0}", 100.0 * f)),
    ]
}

/// One point's row, under [`print_header`]'s columns.
pub fn print_row(p: &InprocPoint, varying: &[&str]) {
    let (_, widths) = grid_header(varying);
    println!(
        "{}{}",
        padded_row(&grid_cells(p, varying), &widths),
        match (&p.error, p.complete) {
            (Some(e), _) => format!(" (failed: {e})"),
            (None, false) => " (incomplete)".into(),
            (None, true) => String::new(),
        },
    );
    if let Some(line) = verdict_line(p.validity.as_ref()).filter(|_| p.error.is_none()) {
        println!("  {line}");
    }
    if let Some(precision) = &p.precision {
        println!("  {}", precision_line(precision, "runs"));
    }
    if let Some(line) = energy_line(p.energy.as_ref()) {
        println!("  {line}");
    }
}

/// The in-process table of a whole result, as the terminal printed it: a
/// column for each grid setting its points differ in.
pub fn inproc_table(result: &InprocResult) -> Table {
    let varying = inferbench_harness::schema::varying_settings(&result.points);
    let (header, _) = grid_header(&varying);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new("in-process points", &header, varying.len());
    for p in &result.points {
        let mut cells = grid_cells(p, &varying);
        let batch = varying.len() + 2;
        match (&p.error, p.complete) {
            (Some(e), _) => cells[batch].push_str(&format!(" (failed: {e})")),
            (None, false) => cells[batch].push_str(" (incomplete)"),
            (None, true) => {}
        }
        t.rows.push(cells);
    }
    t
}

pub fn print_http_header(result: &HttpResult) {
    let s = &result.settings;
    println!(
        "server: {} {} | model {} | workload {} | client threads {}{} | host {} ({} cores)",
        s.url,
        s.endpoint,
        s.model,
        s.workload,
        s.client_threads,
        if s.busy_poll { " (busy poll)" } else { "" },
        result.provenance.host.cpu_model,
        result.provenance.host.logical_cores,
    );
    println!();
    let (header, widths) = http_header(s.server_metrics.is_some());
    print_rule(&header, &widths);
}

pub fn http_cells(p: &HttpPoint) -> Vec<String> {
    // Files written before validity was kept are judged as they are read.
    let validity = p.validity.clone().unwrap_or_else(|| p.assess());
    let p50 = |s: &Stats| s.p50;
    let ttft = p.ttft_judged_ms();
    vec![
        p.load.label(),
        format!("{}/{}", p.requests.succeeded, p.requests.failed),
        cell(ttft, p50, 2),
        percentile_cell(ttft, Some(&validity), ttft_key(p), 2),
        cell(&p.itl_ms, p50, 2),
        percentile_cell(p.itl_ms.as_ref(), Some(&validity), "itl_ms", 2),
        cell(&p.tpot_ms, p50, 2),
        cell(&p.e2e_ms, p50, 1),
        format!("{:.1}", p.output_throughput_tok_s),
        format!("{:.2}", p.request_throughput_req_s),
        p.goodput_req_s
            .map_or_else(|| "-".into(), |g| format!("{g:.2}")),
        p.client
            .cpu_percent
            .map_or_else(|| "-".into(), |c| format!("{c:.1}%")),
    ]
}

/// The key of the TTFT a served point is judged by.
fn ttft_key(p: &HttpPoint) -> &'static str {
    if p.ttft_from_scheduled_ms.is_some() {
        "ttft_from_scheduled_ms"
    } else {
        "ttft_ms"
    }
}

/// `http_5xx 2, stall 1`: a point's failed requests by class.
pub fn failure_classes(p: &HttpPoint) -> String {
    let classes: Vec<String> = p
        .requests
        .failed_by_class
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    classes.join(", ")
}

/// What the terminal prints under a served point's row: failures by class,
/// requests that waited for the in-flight cap.
/// A percentile's cell, marked `*` when the point has too few observations
/// for it by the early-stopping rule (its verdict line says how many).
fn percentile_cell(
    stats: Option<&Stats>,
    validity: Option<&Validity>,
    metric: &str,
    decimals: usize,
) -> String {
    let mut text = cell(stats, |s| s.p99, decimals);
    if stats.is_some() && validity.is_some_and(|v| v.lacks(metric, "p99")) {
        text.push('*');
    }
    text
}

/// A search's answer: the highest load that met the SLO, the lowest that
/// did not, and how many probes were called by their point estimate.
pub fn print_search(
    what: &str,
    best: Option<String>,
    failing: Option<String>,
    probes: u32,
    by_estimate: u32,
) {
    let best = best.unwrap_or_else(|| "none met it".to_string());
    let failing = failing.map_or_else(
        || "none missed it".to_string(),
        |f| format!("{f} missed it"),
    );
    println!("{what} meeting the SLO: {best} ({failing}; {probes} probes)");
    if by_estimate > 0 {
        println!(
            "  {by_estimate} of the probes called by their point estimate: too few requests for the SLO's p99 at 99% confidence (459 with none over a limit); --max-requests-per-probe extends them"
        );
    }
}

/// `--until-precise`: each statistic with its interval's half-width, and
/// why the point stopped.
fn precision_line(p: &inferbench_harness::schema::validity::Precision, unit: &str) -> String {
    let targets: Vec<String> = p
        .targets
        .iter()
        .map(|t| match (t.value, t.half_width_percent) {
            (Some(v), Some(h)) => format!(
                "{} {v:.2} ±{h:.2}% (target {}%{})",
                t.statistic,
                t.target_percent,
                match t.observations_needed {
                    _ if t.met => String::new(),
                    Some(k) if p.requests < k => format!(", not reached: needs {k} {unit}"),
                    _ => ", not reached".into(),
                }
            ),
            _ => format!("{} has no value", t.statistic),
        })
        .collect();
    let how = match p.stopped_by.as_str() {
        "precise" => format!("precise after {} {unit}", p.requests),
        "max_requests" => format!("stopped at --max-requests {}", p.max_requests),
        "max_runs" => format!("stopped at --max-runs {}", p.max_requests),
        "max_duration" => format!(
            "stopped at --max-duration {}s after {} {unit}",
            p.max_duration_s.unwrap_or(0.0),
            p.requests
        ),
        other => format!("{other} after {} {unit}", p.requests),
    };
    format!("precision: {}; {how}", targets.join(", "))
}

/// The point's verdict line: "valid", or "not valid: " and its reasons.
pub fn verdict_line(validity: Option<&Validity>) -> Option<String> {
    validity.map(|v| format!("verdict: {}", v.line()))
}

/// The steady-state window against the whole point, when it left out a
/// ramp or a drain worth saying (over 5% of the point).
fn steady_line(p: &HttpPoint) -> Option<String> {
    let s = p.steady_state.as_ref()?;
    (s.share_of_point < 0.95).then(|| {
        format!(
            "steady state {:.1} of {:.1} s ({:.0}%, in flight >= {:.1}): {:.1} tok/s, {:.2} req/s (whole window {:.1} tok/s, {:.2} req/s)",
            s.duration_s,
            p.duration_s,
            s.share_of_point * 100.0,
            s.threshold_in_flight,
            s.output_throughput_tok_s,
            s.request_throughput_req_s,
            p.output_throughput_tok_s,
            p.request_throughput_req_s
        )
    })
}

pub fn http_row_notes(p: &HttpPoint) -> Vec<String> {
    let mut notes: Vec<String> = verdict_line(p.validity.as_ref())
        .into_iter()
        .chain(p.slo_verdict.as_ref().map(|v| v.line()))
        .chain(p.precision.as_ref().map(|p| precision_line(p, "requests")))
        .chain(energy_line(p.energy.as_ref()))
        .chain(steady_line(p))
        .collect();
    if !p.requests.failed_by_class.is_empty() {
        notes.push(format!("failed: {}", failure_classes(p)));
    }
    if p.late_requests > 0 {
        notes.push(format!(
            "{} requests waited for the in-flight cap; schedule lag max {:.1} ms",
            p.late_requests,
            p.schedule_lag_ms.as_ref().map_or(0.0, |s| s.max)
        ));
    }
    let part = |label: &str, s: &inferbench_harness::schema::PartStats| {
        let ttft = s
            .ttft_ms
            .as_ref()
            .map_or_else(|| "-".into(), |t| format!("{:.2}", t.p50));
        let cached = s
            .cached_prompt_tokens
            .as_ref()
            .map_or_else(String::new, |c| format!(", cached {:.0} tok", c.mean));
        let input = s
            .input_tokens
            .as_ref()
            .map_or_else(String::new, |i| format!(", prompt {:.0} tok", i.mean));
        format!(
            "{label} {}: TTFT p50 {ttft} ms ({} ok{input}{cached})",
            s.part, s.succeeded
        )
    };
    if let Some(turns) = &p.turns {
        let parts: Vec<String> = turns.iter().map(|t| part("turn", t)).collect();
        notes.push(parts.join("; "));
    }
    if let Some(c) = &p.conversations {
        notes.push(format!(
            "conversations: {} completed ({:.3}/s), {} cut short by a failed turn",
            c.completed, c.per_s, c.cut_short
        ));
    }
    if let Some(groups) = &p.prefix_groups {
        let parts: Vec<String> = groups.iter().map(|g| part("prefix group,", g)).collect();
        notes.push(parts.join("; "));
    }
    if let Some(m) = &p.server_metrics {
        if m.scrapes == 0 {
            notes.push(format!(
                "server metrics: no scrape answered ({})",
                m.first_error.as_deref().unwrap_or("no error recorded")
            ));
        } else {
            let h = &m.headline;
            let mut parts = Vec::new();
            if let Some(g) = &h.requests_running {
                parts.push(format!("running mean {:.1} max {:.0}", g.mean, g.max));
            }
            if let Some(g) = &h.requests_waiting {
                parts.push(format!("waiting mean {:.1} max {:.0}", g.mean, g.max));
            }
            let bucket = |b: Option<(f64, Option<f64>)>| match b {
                Some((lo, Some(hi))) => format!(" in the {lo}-{hi} ms bucket"),
                Some((lo, None)) => format!(" above {lo} ms"),
                None => String::new(),
            };
            if let Some(q) = &h.queue_time_ms {
                parts.push(format!(
                    "queue mean {:.3} ms, p99{}",
                    q.mean.unwrap_or(0.0),
                    bucket(q.p99_bucket)
                ));
            }
            if let Some(t) = &h.server_ttft_ms {
                parts.push(format!(
                    "server TTFT mean {:.2} ms, p50 {:.2}{}",
                    t.mean.unwrap_or(0.0),
                    t.p50.unwrap_or(0.0),
                    bucket(t.p50_bucket)
                ));
            }
            if let Some(k) = &h.kv_cache_percent {
                parts.push(format!("KV cache mean {:.1}% max {:.1}%", k.mean, k.max));
            }
            if let Some(n) = h.preemptions {
                parts.push(format!("preemptions {n:.0}"));
            }
            if let Some(r) = h.prefix_cache_hit_rate {
                parts.push(format!("prefix-cache hits {:.1}%", 100.0 * r));
            }
            if parts.is_empty() {
                parts.push(format!(
                    "{} series, none of the known ones",
                    m.gauges.len() + m.counters.len() + m.histograms.len()
                ));
            }
            notes.push(format!(
                "server ({} scrapes): {}",
                m.scrapes,
                parts.join(", ")
            ));
        }
    }
    notes
}

pub fn print_http_row(p: &HttpPoint, with_server: bool) {
    let mut cells = http_cells(p);
    if with_server {
        cells.extend(server_cells(p));
    }
    println!(
        "{}{}",
        padded_row(&cells, &http_header(with_server).1),
        if p.complete { "" } else { " (incomplete)" },
    );
    for note in http_row_notes(p) {
        println!("  {note}");
    }
}

/// The served table of a whole result, each point's notes in the footer.
pub fn http_table(result: &HttpResult) -> Table {
    let with_server = result.settings.server_metrics.is_some();
    let (header, _) = http_header(with_server);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new("served points", &header, 1);
    for p in &result.points {
        let mut cells = http_cells(p);
        if with_server {
            cells.extend(server_cells(p));
        }
        if !p.complete {
            cells[0].push_str(" (incomplete)");
        }
        t.footer.extend(
            http_row_notes(p)
                .into_iter()
                .map(|n| format!("{}: {n}", cells[0])),
        );
        t.rows.push(cells);
    }
    t
}

/// The terminal's energy line of a point, where it was measured.
pub fn energy_line(energy: Option<&PointEnergy>) -> Option<String> {
    let e = energy?;
    Some(format!(
        "energy: {} J/token, {} tokens/J, {:.1} W over {:.2} s ({} {}{})",
        e.joules_per_output_token
            .map_or_else(|| "-".into(), |j| format!("{j:.4}")),
        e.output_tokens_per_joule
            .map_or_else(|| "-".into(), |t| format!("{t:.2}")),
        e.average_power_w,
        e.window_s,
        e.device,
        e.source,
        if e.source == "power_integral" {
            ", estimated from power samples"
        } else {
            ""
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_harness::schema::roofline::{
        DeviceBandwidth, DeviceCopyProbe, NominalBandwidth,
    };
    use inferbench_harness::schema::AnyResult;

    fn example_host() -> HostInfo {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/roofline/gemma-epyc.json");
        AnyResult::read(&path).unwrap().provenance().host.clone()
    }

    #[test]
    fn ceilings_name_each_probe_that_ran() {
        let mut host = example_host();
        let cpu = ceilings(&host).unwrap();
        let b = host.memory_bandwidth.as_ref().unwrap();
        assert!(
            cpu.starts_with(&format!(
                "memory {:.1} GB/s (stream-triad, 2 threads)",
                b.best_gb_s
            )),
            "{cpu}"
        );
        assert!(cpu.contains(" | f32 FMA "), "{cpu}");

        host.memory_bandwidth = None;
        host.compute_peak = None;
        assert_eq!(ceilings(&host), None);
        host.device_memory_bandwidth = Some(DeviceBandwidth {
            device: "CUDA0 (NVIDIA H200)".into(),
            copy: Some(DeviceCopyProbe {
                method: String::new(),
                buffer_bytes: 1 << 30,
                repetitions: 20,
                best_gb_s: 4012.4,
                median_gb_s: 4001.0,
            }),
            nominal: Some(NominalBandwidth {
                source: "nvml".into(),
                memory_clock_mhz: 3201,
                bus_width_bits: 6144,
                gb_s: 4916.736,
            }),
            notes: Vec::new(),
        });
        assert_eq!(
            ceilings(&host).unwrap(),
            "CUDA0 (NVIDIA H200) memory: copy 4012 GB/s, nominal 4917 GB/s (3201 MHz × 2 × 6144 bits, nvml)"
        );
    }
}
