//! In-process points as rows of llama.cpp's `llama-bench` (b11434,
//! `tools/llama-bench/llama-bench.cpp`: its `test::get_fields`, values and
//! JSON, JSONL, CSV and SQL printers), so that llama.cpp's own
//! `scripts/compare-llama-bench.py` compares an `inproc` run with a
//! `llama-bench` run of the same cells, or two `inproc` runs.
//!
//! What a row measures, as llama-bench does:
//! - a `pp` row (n_prompt = P, n_gen = 0, n_depth = D): one sample per run,
//!   the prefill of the P-token prompt after D tokens of depth;
//!   avg_ts = P / time;
//! - a `tg` row (n_prompt = 0, n_gen = the decode steps): one sample per
//!   run, the sum of its decode steps, each synchronized, sampling excluded;
//!   avg_ts = steps / time. inferbench decodes after the prompt, so the row's
//!   depth is D + P (llama-bench's `tg N @ d(D+P)`), and its steps are
//!   `gen_tokens` − 1 (the first token comes from the prefill).
//!
//! Only batch-1 points have rows: llama-bench has no batch of sequences
//! (llama.cpp's `llama-batched-bench` measures those).

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde_json::{Number, Value};
use thiserror::Error;

use crate::schema::{EngineConfig, InprocPoint, InprocResult, RunSamples};

/// llama-bench's fields in its order (`test::get_fields`); its JSON adds
/// `samples_ns` and `samples_ts` after them.
pub const FIELDS: [&str; 42] = [
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "cpu_mask",
    "cpu_strict",
    "poll",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "n_cpu_moe",
    "split_mode",
    "main_gpu",
    "no_kv_offload",
    "flash_attn",
    "devices",
    "tensor_split",
    "tensor_buft_overrides",
    "load_mode",
    "lazy_mode",
    "embeddings",
    "no_op_offload",
    "no_host",
    "repack",
    "fit_target",
    "fit_min_ctx",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
];

/// How llama-bench types a field (`test::get_field_type`): it decides the
/// JSON value and the SQL column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Text,
    Bool,
    Int,
    Float,
}

fn field_type(field: &str) -> FieldType {
    match field {
        "build_number" | "n_batch" | "n_ubatch" | "n_threads" | "poll" | "model_size"
        | "model_n_params" | "n_gpu_layers" | "main_gpu" | "n_prompt" | "n_gen" | "n_depth"
        | "avg_ns" | "stddev_ns" | "no_op_offload" | "n_cpu_moe" | "fit_target" | "fit_min_ctx"
        | "flash_attn" => FieldType::Int,
        "no_kv_offload" | "cpu_strict" | "embeddings" | "no_host" | "repack" => FieldType::Bool,
        "avg_ts" | "stddev_ts" => FieldType::Float,
        _ => FieldType::Text,
    }
}

/// What tells an export's rows apart from llama-bench's own in
/// `compare-llama-bench.py`, which compares by `build_commit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLabel {
    /// The rows' `build_commit`.
    pub commit: String,
    /// The rows' `build_number`: the engine's llama.cpp build number where
    /// known, else 0, as llama.cpp records an unknown one.
    pub number: u64,
}

impl BuildLabel {
    /// `ib` and the first five hex digits of inferbench's own commit:
    /// seven characters, as long as llama.cpp's short commits, because
    /// `compare-llama-bench.py` cuts every `build_commit` to the shortest
    /// one in its input, and a label made of llama-bench's commit and a
    /// suffix would then read as llama-bench itself.
    pub fn for_tool_commit(tool_commit: Option<&str>) -> BuildLabel {
        let short: String = tool_commit.unwrap_or("").chars().take(5).collect();
        BuildLabel {
            commit: if short.len() == 5 {
                format!("ib{short}")
            } else {
                "ibnogit".into()
            },
            number: 0,
        }
    }
}

/// One row: llama-bench's fields as the strings its `get_values` gives,
/// and the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Values of [`FIELDS`], in order, as llama-bench's `get_values` writes
    /// them.
    pub values: Vec<String>,
    /// The samples, ns.
    pub samples_ns: Vec<u64>,
    /// The samples as tokens/s.
    pub samples_ts: Vec<f64>,
}

impl Row {
    /// The value of `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        FIELDS
            .iter()
            .position(|f| *f == field)
            .map(|i| self.values[i].as_str())
    }
}

/// The rows of a result and what was left out of them, and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export {
    /// One row per (point, test), in the points' order: pp, then tg.
    pub rows: Vec<Row>,
    /// Points that have no row, each with its reason.
    pub left_out: Vec<String>,
}

/// Bad `--llama-bench-out` paths and failed writes.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The file's extension names no format llama-bench writes.
    #[error("{path}: the extension must be .json, .jsonl, .csv or .sql (llama-bench's -o json, jsonl, csv, sql)")]
    Format {
        /// The path as given.
        path: String,
    },
    /// The file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The path as given.
        path: String,
        /// What the filesystem said.
        source: io::Error,
    },
}

/// llama-bench's output formats that `compare-llama-bench.py` reads (SQL
/// through `sqlite3`, as llama-bench's own `-o sql | sqlite3 FILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `-o json`: one array of objects.
    Json,
    /// `-o jsonl`: one object per line.
    Jsonl,
    /// `-o csv`: a header, then every value quoted.
    Csv,
    /// `-o sql`: `CREATE TABLE IF NOT EXISTS llama_bench` and one INSERT per row.
    Sql,
}

impl Format {
    /// The format `path`'s extension names.
    pub fn of_path(path: &Path) -> Result<Format, ExportError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Ok(Format::Json),
            Some("jsonl") => Ok(Format::Jsonl),
            Some("csv") => Ok(Format::Csv),
            Some("sql") => Ok(Format::Sql),
            _ => Err(ExportError::Format {
                path: path.display().to_string(),
            }),
        }
    }
}

/// The rows of `result`'s batch-1 points that were measured.
pub fn rows(result: &InprocResult, build: &BuildLabel) -> Export {
    let mut export = Export::default();
    let devices = result.provenance.engine.device_names.as_ref();
    let test_time = test_time(&result.started_at);
    for point in &result.points {
        let name = format!(
            "pp{} tg{} B{} d{}",
            point.prompt_tokens, point.gen_tokens, point.batch, point.depth
        );
        let why_not = if point.error.is_some() {
            Some("llama.cpp failed on it")
        } else if point.batch != 1 {
            Some("llama-bench has no batch of sequences (llama-batched-bench measures those)")
        } else if point.config.is_none() || point.run_samples.is_none() {
            Some("its file predates per-run samples")
        } else if point.runs == 0 {
            Some("no run was measured")
        } else {
            None
        };
        if let Some(why) = why_not {
            export.left_out.push(format!("{name}: {why}"));
            continue;
        }
        let (Some(config), Some(samples)) = (&point.config, &point.run_samples) else {
            continue;
        };
        let cell = Cell {
            build,
            devices: devices.map(|d| {
                (
                    d.cpu_info.as_str(),
                    d.gpu_info.as_str(),
                    d.backends.as_str(),
                )
            }),
            config,
            test_time: &test_time,
        };
        export.rows.extend(point_rows(&cell, point, samples));
    }
    export
}

/// What every row of one point shares.
struct Cell<'a> {
    build: &'a BuildLabel,
    devices: Option<(&'a str, &'a str, &'a str)>,
    config: &'a EngineConfig,
    test_time: &'a str,
}

fn point_rows(cell: &Cell<'_>, point: &InprocPoint, samples: &RunSamples) -> Vec<Row> {
    let mut rows = Vec::new();
    if point.prompt_tokens > 0 && !samples.prefill_ns.is_empty() {
        rows.push(row(
            cell,
            (point.prompt_tokens, 0, point.depth),
            &samples.prefill_ns,
        ));
    }
    if samples.decode_steps > 0 && !samples.decode_ns.is_empty() {
        let depth = point.depth + point.prompt_tokens;
        rows.push(row(
            cell,
            (0, samples.decode_steps, depth),
            &samples.decode_ns,
        ));
    }
    rows
}

/// One row of `(n_prompt, n_gen, n_depth)` over `samples_ns`.
fn row(cell: &Cell<'_>, (n_prompt, n_gen, n_depth): (u32, u32, u32), samples_ns: &[u64]) -> Row {
    let c = cell.config;
    let (cpu_info, gpu_info, backends) = cell.devices.unwrap_or(("", "", "CPU"));
    let tokens = f64::from(n_prompt + n_gen);
    let samples_ts: Vec<f64> = samples_ns
        .iter()
        .map(|&t| 1e9 * tokens / t as f64)
        .collect();
    let flash_attn = match c.flash_attn.as_str() {
        "on" => 1,
        "off" => 0,
        _ => -1,
    };
    let flag = |b: bool| u8::from(b).to_string();
    let values = vec![
        cell.build.commit.clone(),
        cell.build.number.to_string(),
        cpu_info.to_string(),
        gpu_info.to_string(),
        backends.to_string(),
        c.model.clone(),
        c.model_type.clone().unwrap_or_else(|| "unknown".into()),
        c.model_size.unwrap_or(0).to_string(),
        c.model_n_params.unwrap_or(0).to_string(),
        c.n_batch.to_string(),
        c.n_ubatch.to_string(),
        c.n_threads.to_string(),
        // ggml's default threadpool, which a context without one of its
        // own computes on: no CPU mask, not strict, polling level 50.
        "0x0".into(),
        flag(false),
        "50".into(),
        c.type_k.clone(),
        c.type_v.clone(),
        c.n_gpu_layers.to_string(),
        "0".into(),
        "layer".into(),
        "0".into(),
        flag(!c.offload_kqv),
        flash_attn.to_string(),
        "auto".into(),
        "0.00".into(),
        "none".into(),
        if c.use_mmap { "mmap" } else { "none" }.into(),
        "auto".into(),
        flag(false),
        "0".into(),
        flag(false),
        // llama.cpp's default `use_extra_bufts`: weights repacked.
        flag(true),
        "0".into(),
        "0".into(),
        n_prompt.to_string(),
        n_gen.to_string(),
        n_depth.to_string(),
        cell.test_time.to_string(),
        integer_mean(samples_ns).to_string(),
        integer_stdev(samples_ns).to_string(),
        cpp_fixed(mean(&samples_ts)),
        cpp_fixed(stdev(&samples_ts)),
    ];
    debug_assert_eq!(values.len(), FIELDS.len());
    Row {
        values,
        samples_ns: samples_ns.to_vec(),
        samples_ts,
    }
}

/// The result's start as llama-bench's `test_time` (`%FT%TZ`, seconds).
fn test_time(started_at: &str) -> String {
    humantime::parse_rfc3339_weak(started_at.trim_end_matches('Z'))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|_| started_at.to_string())
}

/// llama-bench's `avg` over `uint64_t`: the integer mean, rounded down.
fn integer_mean(v: &[u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
    (sum / v.len() as u128) as u64
}

/// llama-bench's `stdev` over `uint64_t`: the sample standard deviation
/// computed in integers (each division rounds down) before the square root.
fn integer_stdev(v: &[u64]) -> u64 {
    let n = v.len() as u128;
    if n <= 1 {
        return 0;
    }
    let mean = u128::from(integer_mean(v));
    let sq_sum: u128 = v.iter().map(|&x| u128::from(x) * u128::from(x)).sum();
    let variance = (sq_sum / (n - 1)).saturating_sub(mean * mean * n / (n - 1));
    (variance as f64).sqrt() as u64
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// llama-bench's `stdev` over doubles (the sample standard deviation).
fn stdev(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    if v.len() <= 1 {
        return 0.0;
    }
    let m = mean(v);
    let sq_sum: f64 = v.iter().map(|x| x * x).sum();
    (sq_sum / (n - 1.0) - m * m * n / (n - 1.0)).max(0.0).sqrt()
}

/// `std::to_string(double)`: fixed, six decimals.
fn cpp_fixed(x: f64) -> String {
    format!("{x:.6}")
}

/// The row as llama-bench's JSON object, in its field order (a map would
/// sort them): fields typed as it types them, then `samples_ns` and
/// `samples_ts`.
fn json_members(row: &Row) -> Vec<(&'static str, Value)> {
    let mut members: Vec<(&'static str, Value)> = FIELDS
        .iter()
        .zip(&row.values)
        .map(|(field, value)| {
            let typed = match field_type(field) {
                FieldType::Text => Value::String(value.clone()),
                FieldType::Bool => Value::Bool(value != "0"),
                FieldType::Int => value
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(value.clone())),
                FieldType::Float => value
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map_or(Value::Null, Value::Number),
            };
            (*field, typed)
        })
        .collect();
    members.push(("samples_ns", Value::from(row.samples_ns.clone())));
    members.push((
        "samples_ts",
        Value::Array(
            row.samples_ts
                .iter()
                .filter_map(|&t| Number::from_f64(t).map(Value::Number))
                .collect(),
        ),
    ));
    members
}

/// `"name": value` pairs joined by `separator`.
fn json_object(row: &Row, separator: &str) -> String {
    json_members(row)
        .iter()
        .map(|(name, value)| format!("\"{name}\": {value}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The rows in `format`, as llama-bench would print them.
pub fn render(rows: &[Row], format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Json => {
            let objects: Vec<String> = rows
                .iter()
                .map(|row| format!("  {{\n    {}\n  }}", json_object(row, ",\n    ")))
                .collect();
            out = format!("[\n{}\n]\n", objects.join(",\n"));
        }
        Format::Jsonl => {
            for row in rows {
                let _ = writeln!(out, "{{{}}}", json_object(row, ", "));
            }
        }
        Format::Csv => {
            out.push_str(&FIELDS.join(","));
            out.push('\n');
            for row in rows {
                let quoted: Vec<String> = row
                    .values
                    .iter()
                    .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
                    .collect();
                out.push_str(&quoted.join(","));
                out.push('\n');
            }
        }
        Format::Sql => {
            out.push_str("CREATE TABLE IF NOT EXISTS llama_bench (\n");
            for (i, field) in FIELDS.iter().enumerate() {
                let column = match field_type(field) {
                    FieldType::Text => "TEXT",
                    FieldType::Bool | FieldType::Int => "INTEGER",
                    FieldType::Float => "REAL",
                };
                let comma = if i + 1 < FIELDS.len() { "," } else { "" };
                let _ = writeln!(out, "  {field} {column}{comma}");
            }
            out.push_str(");\n\n");
            for row in rows {
                let values: Vec<String> = row
                    .values
                    .iter()
                    .map(|v| format!("'{}'", v.replace('\'', "''")))
                    .collect();
                let _ = writeln!(
                    out,
                    "INSERT INTO llama_bench ({}) VALUES ({});",
                    FIELDS.join(", "),
                    values.join(", ")
                );
            }
        }
    }
    out
}

/// Writes `rows` to `path` in the format its extension names, whole or
/// not at all (a temporary file renamed over it).
pub fn write(path: &Path, rows: &[Row]) -> Result<(), ExportError> {
    let format = Format::of_path(path)?;
    let failed = |source| ExportError::Write {
        path: path.display().to_string(),
        source,
    };
    inferbench_core::atomic_file::write_whole(path, |tmp| std::fs::write(tmp, render(rows, format)))
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_statistics_round_as_llama_bench_does() {
        assert_eq!(integer_mean(&[1, 2]), 1);
        assert_eq!(integer_mean(&[]), 0);
        // Σx² = 5, /1 = 5; mean 1, 1·1·2/1 = 2; √3 = 1.73 → 1.
        assert_eq!(integer_stdev(&[1, 2]), 1);
        assert_eq!(integer_stdev(&[7]), 0);
        assert_eq!(integer_stdev(&[1000, 1000, 1000]), 0);
        // Σx² = 1e6+4e6+9e6 = 14e6, /2 = 7e6; mean 2000, 4e6·3/2 = 6e6; √1e6.
        assert_eq!(integer_stdev(&[1000, 2000, 3000]), 1000);
    }

    #[test]
    fn float_statistics_are_sample_ones() {
        assert!((stdev(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert_eq!(stdev(&[4.0]), 0.0);
        assert_eq!(cpp_fixed(2.5), "2.500000");
    }

    #[test]
    fn build_label_is_seven_characters() {
        let label = BuildLabel::for_tool_commit(Some("d0a705f1234"));
        assert_eq!(label.commit, "ibd0a70");
        assert_eq!(BuildLabel::for_tool_commit(None).commit.len(), 7);
        assert_eq!(BuildLabel::for_tool_commit(Some("")).commit, "ibnogit");
    }

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(Format::of_path(Path::new("a.json")).unwrap(), Format::Json);
        assert_eq!(
            Format::of_path(Path::new("a.jsonl")).unwrap(),
            Format::Jsonl
        );
        assert_eq!(Format::of_path(Path::new("a.csv")).unwrap(), Format::Csv);
        assert_eq!(Format::of_path(Path::new("a.sql")).unwrap(), Format::Sql);
        let err = Format::of_path(Path::new("dir/a.sqlite")).unwrap_err();
        assert!(
            err.to_string().starts_with("dir/a.sqlite: the extension"),
            "{err}"
        );
    }

    #[test]
    fn every_field_has_its_llama_bench_type() {
        assert_eq!(field_type("flash_attn"), FieldType::Int);
        assert_eq!(field_type("no_kv_offload"), FieldType::Bool);
        assert_eq!(field_type("avg_ts"), FieldType::Float);
        assert_eq!(field_type("type_k"), FieldType::Text);
        assert_eq!(field_type("load_mode"), FieldType::Text);
    }
}
