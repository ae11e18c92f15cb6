//! Every point as one row of named columns: the CSV files (`--csv`) and the
//! campaign database (`campaign collect`) are the same table, so that a
//! column added here reaches both.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use inferbench_harness::schema::telemetry::PointEnergy;
use inferbench_harness::schema::{EngineConfig, HttpPoint, InprocPoint};
use inferbench_harness::stats::Stats;

/// Named columns and one row of cells per point; an empty cell is a value
/// the point does not have.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointsTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl PointsTable {
    fn with_columns(columns: impl IntoIterator<Item = String>) -> PointsTable {
        PointsTable {
            columns: columns.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    /// RFC 4180: a cell holding a comma, a quote or a line break is quoted,
    /// its quotes doubled (llama.cpp's messages and model paths can hold them).
    pub fn csv(&self) -> String {
        let field = |s: &String| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.clone()
            }
        };
        let mut out = String::new();
        for line in std::iter::once(&self.columns).chain(&self.rows) {
            out.push_str(&line.iter().map(field).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// Mean, p50 and p99 of a metric, or three empty cells.
fn stats_cells(row: &mut Vec<String>, stats: Option<&Stats>) {
    match stats {
        Some(s) => row.extend([s.mean.to_string(), s.p50.to_string(), s.p99.to_string()]),
        None => row.extend([String::new(), String::new(), String::new()]),
    }
}

fn stats_columns(columns: &mut Vec<String>, name: &str) {
    for stat in ["mean", "p50", "p99"] {
        columns.push(format!("{name}_{stat}"));
    }
}

/// A named metric of a point, for the CSV columns.
type MetricColumn = (&'static str, fn(&InprocPoint) -> Option<&Stats>);

/// A number read from a point, empty in the CSV when absent.
type PointValue = fn(&InprocPoint) -> Option<f64>;

/// Where each point stands against the machine's limits, and how busy the
/// GPU's kernels kept it (empty where unknown).
const ROOFLINE_COLUMNS: [(&str, PointValue); 8] = [
    ("decode_achieved_gb_s", |p| {
        p.roofline.as_ref().map(|r| r.achieved_gb_s)
    }),
    ("decode_bandwidth_gb_s", |p| {
        p.roofline.as_ref().and_then(|r| r.bandwidth_gb_s)
    }),
    ("decode_fraction_of_bandwidth", |p| {
        p.roofline.as_ref().and_then(|r| r.fraction_of_bandwidth)
    }),
    ("prefill_achieved_gflop_s", |p| {
        p.prefill_roofline.as_ref().map(|r| r.achieved_gflop_s)
    }),
    ("prefill_peak_gflop_s", |p| {
        p.prefill_roofline.as_ref().and_then(|r| r.peak_gflop_s)
    }),
    ("prefill_fraction_of_peak", |p| {
        p.prefill_roofline.as_ref().and_then(|r| r.fraction_of_peak)
    }),
    ("decode_kernel_busy_over_host", |p| {
        p.kernel_timing
            .as_ref()
            .and_then(|k| k.decode_step.as_ref())
            .and_then(|d| d.busy_over_host)
    }),
    ("prefill_kernel_busy_over_host", |p| {
        p.kernel_timing
            .as_ref()
            .and_then(|k| k.prefill.as_ref())
            .and_then(|d| d.busy_over_host)
    }),
];

/// The engine configuration's columns, in llama.cpp's names.
type ConfigColumn = (&'static str, fn(&EngineConfig) -> String);

const CONFIG_COLUMNS: [ConfigColumn; 13] = [
    ("model", |c| c.model.clone()),
    ("n_gpu_layers", |c| c.n_gpu_layers.to_string()),
    ("use_mmap", |c| c.use_mmap.to_string()),
    ("n_threads", |c| c.n_threads.to_string()),
    ("n_threads_batch", |c| c.n_threads_batch.to_string()),
    ("n_ctx", |c| c.n_ctx.to_string()),
    ("n_batch", |c| c.n_batch.to_string()),
    ("n_ubatch", |c| c.n_ubatch.to_string()),
    ("n_seq_max", |c| c.n_seq_max.to_string()),
    ("flash_attn", |c| c.flash_attn.clone()),
    ("type_k", |c| c.type_k.clone()),
    ("type_v", |c| c.type_v.clone()),
    ("offload_kqv", |c| c.offload_kqv.to_string()),
];

const INPROC_METRICS: [MetricColumn; 10] = [
    ("ttft_ms", |p| p.ttft_ms.as_ref()),
    ("itl_ms", |p| p.itl_ms.as_ref()),
    ("tpot_ms", |p| p.tpot_ms.as_ref()),
    ("e2e_ms", |p| p.e2e_ms.as_ref()),
    ("prefill_ms", |p| p.prefill_ms.as_ref()),
    ("decode_step_ms", |p| p.decode_step_ms.as_ref()),
    ("sample_ms", |p| p.sample_ms.as_ref()),
    ("prefill_tok_s", |p| p.prefill_tok_s.as_ref()),
    ("decode_tok_s", |p| p.decode_tok_s.as_ref()),
    ("throughput_tok_s", |p| p.throughput_tok_s.as_ref()),
];

/// The energy columns closing both tables (empty where not measured).
const ENERGY_COLUMNS: [&str; 5] = [
    "energy_j",
    "joules_per_output_token",
    "output_tokens_per_joule",
    "average_power_w",
    "energy_source",
];

fn energy_cells(row: &mut Vec<String>, energy: Option<&PointEnergy>) {
    match energy {
        Some(e) => row.extend([
            e.joules.to_string(),
            opt(e.joules_per_output_token),
            opt(e.output_tokens_per_joule),
            e.average_power_w.to_string(),
            format!("{} {}", e.device, e.source),
        ]),
        None => row.extend(ENERGY_COLUMNS.map(|_| String::new())),
    }
}

/// One row per in-process point: its shape, then mean, p50 and p99 of every
/// metric, then the roofline and kernel columns; the columns added later
/// come after every older one, so that scripts reading by position still work.
pub fn inproc(points: &[InprocPoint]) -> PointsTable {
    let mut columns: Vec<String> = ["prompt_tokens", "gen_tokens", "batch", "complete", "runs"]
        .map(String::from)
        .into();
    for (name, _) in &INPROC_METRICS {
        stats_columns(&mut columns, name);
    }
    columns.push("harness_over_engine_decode_step".into());
    columns.extend(ROOFLINE_COLUMNS.iter().map(|(name, _)| name.to_string()));
    columns.extend(["depth".into(), "depth_fill_ms_p50".into()]);
    columns.extend(CONFIG_COLUMNS.iter().map(|(name, _)| name.to_string()));
    columns.extend(
        [
            "kv_cache_bytes",
            "peak_rss_bytes",
            "error",
            "llama_kv_bytes",
            "llama_compute_bytes",
            "llama_output_bytes",
        ]
        .map(String::from),
    );
    columns.extend(ENERGY_COLUMNS.map(String::from));
    let mut table = PointsTable::with_columns(columns);
    for p in points {
        let mut row = vec![
            p.prompt_tokens.to_string(),
            p.gen_tokens.to_string(),
            p.batch.to_string(),
            p.complete.to_string(),
            p.runs.to_string(),
        ];
        for (_, get) in &INPROC_METRICS {
            stats_cells(&mut row, get(p));
        }
        row.push(opt(p
            .engine_counters
            .as_ref()
            .and_then(|c| c.harness_over_engine_decode_step)));
        row.extend(ROOFLINE_COLUMNS.iter().map(|(_, get)| opt(get(p))));
        row.push(p.depth.to_string());
        row.push(opt(p.depth_fill_ms.as_ref().map(|s| s.p50)));
        row.extend(
            CONFIG_COLUMNS
                .iter()
                .map(|(_, get)| p.config.as_ref().map_or_else(String::new, get)),
        );
        let memory = p.memory.as_ref();
        row.push(opt(memory.and_then(|m| m.kv_cache_bytes)));
        row.push(opt(memory.and_then(|m| m.peak_rss_bytes)));
        row.push(p.error.clone().unwrap_or_default());
        let buffers = memory.and_then(|m| m.llama_buffers);
        row.push(opt(buffers.and_then(|b| b.kv_bytes)));
        row.push(opt(buffers.and_then(|b| b.compute_bytes)));
        row.push(opt(buffers.and_then(|b| b.output_bytes)));
        energy_cells(&mut row, p.energy.as_ref());
        table.rows.push(row);
    }
    table
}

/// A named metric of an HTTP point, for the CSV columns.
type HttpMetricColumn = (&'static str, fn(&HttpPoint) -> Option<&Stats>);

const HTTP_METRICS: [HttpMetricColumn; 5] = [
    ("ttft_ms", |p| p.ttft_ms.as_ref()),
    ("ttft_from_scheduled_ms", |p| {
        p.ttft_from_scheduled_ms.as_ref()
    }),
    ("itl_ms", |p| p.itl_ms.as_ref()),
    ("tpot_ms", |p| p.tpot_ms.as_ref()),
    ("e2e_ms", |p| p.e2e_ms.as_ref()),
];

/// One row per served point, older columns first (as [`inproc`]).
pub fn http(points: &[HttpPoint]) -> PointsTable {
    let mut columns: Vec<String> = [
        "load",
        "concurrency",
        "rate",
        "complete",
        "total",
        "succeeded",
        "failed",
        "late",
    ]
    .map(String::from)
    .into();
    for (name, _) in &HTTP_METRICS {
        stats_columns(&mut columns, name);
    }
    columns.extend(
        [
            "output_tok_s",
            "request_s",
            "input_tok_s",
            "goodput_req_s",
            "duration_s",
            "client_cpu_percent",
        ]
        .map(String::from),
    );
    columns.extend(ENERGY_COLUMNS.map(String::from));
    stats_columns(&mut columns, "e2e_from_scheduled_ms");
    columns.extend(["steady_state_s", "steady_output_tok_s", "steady_request_s"].map(String::from));
    let mut table = PointsTable::with_columns(columns);
    for p in points {
        let mut row = vec![
            p.load.kind.name().to_string(),
            opt(p.load.concurrency),
            opt(p.load.rate),
            p.complete.to_string(),
            p.requests.total.to_string(),
            p.requests.succeeded.to_string(),
            p.requests.failed.to_string(),
            p.late_requests.to_string(),
        ];
        for (_, get) in &HTTP_METRICS {
            stats_cells(&mut row, get(p));
        }
        row.extend([
            p.output_throughput_tok_s.to_string(),
            p.request_throughput_req_s.to_string(),
            p.input_throughput_tok_s.to_string(),
            opt(p.goodput_req_s),
            p.duration_s.to_string(),
            opt(p.client.cpu_percent),
        ]);
        energy_cells(&mut row, p.energy.as_ref());
        stats_cells(&mut row, p.e2e_from_scheduled_ms.as_ref());
        match &p.steady_state {
            Some(s) => row.extend([
                s.duration_s.to_string(),
                s.output_throughput_tok_s.to_string(),
                s.request_throughput_req_s.to_string(),
            ]),
            None => row.extend([String::new(), String::new(), String::new()]),
        }
        table.rows.push(row);
    }
    table
}

/// One row per time slice of every served point (`point` is its index).
pub fn http_slices(points: &[HttpPoint]) -> PointsTable {
    let mut table = PointsTable::with_columns(
        [
            "point",
            "load",
            "concurrency",
            "rate",
            "slice",
            "start_s",
            "duration_s",
            "requests",
            "failed",
            "ttft_metric",
            "ttft_p50_ms",
            "ttft_p99_ms",
            "tpot_p50_ms",
            "tpot_p99_ms",
            "output_tok_s",
            "request_s",
        ]
        .map(String::from),
    );
    for (i, p) in points.iter().enumerate() {
        let Some(slices) = &p.slices else { continue };
        for (k, s) in slices.slices.iter().enumerate() {
            table.rows.push(vec![
                i.to_string(),
                p.load.kind.name().to_string(),
                opt(p.load.concurrency),
                opt(p.load.rate),
                k.to_string(),
                s.start_s.to_string(),
                s.duration_s.to_string(),
                s.requests.to_string(),
                s.failed.to_string(),
                slices.ttft_metric.to_string(),
                opt(s.ttft_p50_ms),
                opt(s.ttft_p99_ms),
                opt(s.tpot_p50_ms),
                opt(s.tpot_p99_ms),
                s.output_throughput_tok_s.to_string(),
                s.request_throughput_req_s.to_string(),
            ]);
        }
    }
    table
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("writing CSV {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing CSV {}", path.display()))
}

/// `--csv` of an in-process run.
pub fn write_csv(path: &Path, points: &[InprocPoint]) -> Result<()> {
    write_file(path, &inproc(points).csv())
}

/// `--csv` of a served run, and its time slices beside it.
pub fn write_http_csv(path: &Path, points: &[HttpPoint]) -> Result<()> {
    write_file(path, &http(points).csv())?;
    if points.iter().any(|p| p.slices.is_some()) {
        write_file(&slices_csv_path(path), &http_slices(points).csv())?;
    }
    Ok(())
}

/// Where the time slices go beside `--csv FILE.csv`: FILE.slices.csv.
pub fn slices_csv_path(csv: &Path) -> PathBuf {
    let stem = csv
        .file_stem()
        .map_or_else(|| "points".into(), |s| s.to_string_lossy().into_owned());
    csv.with_file_name(format!("{stem}.slices.csv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_commas_or_quotes_are_quoted_once() {
        let table = PointsTable {
            columns: vec!["a".into(), "error".into()],
            rows: vec![
                vec!["1".into(), String::new()],
                vec!["2".into(), "failed, \"out of memory\"".into()],
            ],
        };
        assert_eq!(
            table.csv(),
            "a,error\n1,\n2,\"failed, \"\"out of memory\"\"\"\n"
        );
    }

    #[test]
    fn every_row_has_a_cell_per_column() {
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/campaign/tiny-results");
        let mut seen = 0;
        for entry in std::fs::read_dir(&example).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json")
                && path.file_name().is_some_and(|n| n != "compare.json")
            {
                let inferbench_harness::schema::AnyResult::Inproc(r) =
                    inferbench_harness::schema::AnyResult::read(&path).unwrap()
                else {
                    panic!("{} is not an in-process result", path.display())
                };
                let t = inproc(&r.points);
                assert_eq!(t.rows.len(), r.points.len());
                assert!(t.rows.iter().all(|row| row.len() == t.columns.len()));
                seen += 1;
            }
        }
        assert_eq!(seen, 4);
    }
}
