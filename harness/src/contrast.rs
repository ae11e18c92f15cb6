//! The contrast: one model, the same token ids, in-process and served, split
//! into layers so that what the server, its HTTP stack and the network cost
//! is a number with an interval.
//!
//! Layers, per shape (B sequences in-process against concurrency B served):
//! - **engine in-process**: TTFT = prefill + first sample; per token = TPOT,
//!   the mean of a sequence's decode steps with their samples.
//! - **inside the server** (llama.cpp's server, from its per-request
//!   `timings`): TTFT = `prompt_ms`, its prompt evaluation up to the first
//!   token; per token = `predicted_per_token_ms`. Servers that send no
//!   timings have no such row.
//! - **at the client over HTTP**: TTFT from sending the request to the first
//!   content chunk; per token = TPOT.
//!
//! Each layer's overhead over the one below is the difference of medians
//! with a bootstrap interval ([`crate::significance`]), each side drawing as
//! many independent values as it has: a served request is one, an
//! in-process run one (its B sequences share every step).

use std::path::Path;

use crate::http::point::point_notes;
use crate::schema::{AnyResult, HttpPoint, HttpResult, InprocPoint, InprocResult, ReadError};
use crate::significance::{median_difference, MedianDifference, Sample};
use crate::stats::Stats;

pub use crate::schema::contrast::{
    ContrastResult, ContrastSettings, ContrastShape, Layer, LayerRow, Overhead,
    CONTRAST_SCHEMA_VERSION,
};

fn sample(stats: Option<&Stats>, independent: u64) -> Option<Sample> {
    let distribution = stats?.distribution().ok()?;
    Sample::from_distribution(&distribution, independent)
}

fn difference(
    lower: Option<&Stats>,
    lower_n: u64,
    upper: Option<&Stats>,
    upper_n: u64,
    level: f64,
    resamples: u32,
    seed: u64,
) -> Option<MedianDifference> {
    Some(median_difference(
        &sample(lower, lower_n)?,
        &sample(upper, upper_n)?,
        level,
        resamples,
        seed,
    ))
}

/// The layer table of one shape.
pub fn contrast_shape(
    inproc: &InprocPoint,
    served: &HttpPoint,
    level: f64,
    resamples: u32,
    seed: u64,
) -> ContrastShape {
    let runs = u64::from(inproc.runs);
    let requests = served.requests.succeeded;
    let engine = LayerRow {
        layer: Layer::Engine,
        ttft_ms: inproc.ttft_ms.clone(),
        per_token_ms: inproc.tpot_ms.clone(),
        source: "inproc ttft_ms (prefill + first sample), tpot_ms (decode step + sample)".into(),
        independent_values: runs,
    };
    let has_server =
        served.server_prompt_ms.is_some() || served.server_predicted_per_token_ms.is_some();
    let server = has_server.then(|| LayerRow {
        layer: Layer::Server,
        ttft_ms: served.server_prompt_ms.clone(),
        per_token_ms: served.server_predicted_per_token_ms.clone(),
        source: "server timings: prompt_ms, predicted_per_token_ms".into(),
        independent_values: requests,
    });
    let client = LayerRow {
        layer: Layer::Client,
        ttft_ms: served.ttft_ms.clone(),
        per_token_ms: served.tpot_ms.clone(),
        source: "http ttft_ms, tpot_ms".into(),
        independent_values: requests,
    };
    let overhead = |lower: &LayerRow, upper: &LayerRow, salt: u64| Overhead {
        upper: upper.layer,
        lower: lower.layer,
        ttft: difference(
            lower.ttft_ms.as_ref(),
            lower.independent_values,
            upper.ttft_ms.as_ref(),
            upper.independent_values,
            level,
            resamples,
            seed ^ salt,
        ),
        per_token: difference(
            lower.per_token_ms.as_ref(),
            lower.independent_values,
            upper.per_token_ms.as_ref(),
            upper.independent_values,
            level,
            resamples,
            seed ^ (salt << 8),
        ),
    };
    let mut overheads = Vec::new();
    if let Some(server) = &server {
        overheads.push(overhead(&engine, server, 1));
        overheads.push(overhead(server, &client, 2));
    }
    overheads.push(overhead(&engine, &client, 3));

    let mut notes = Vec::new();
    if inproc.batch > 1 {
        notes.push(format!(
            "in-process, the {} prompts of a batch are prefilled together; the server receives its requests one by one and may prefill them apart",
            inproc.batch
        ));
    }
    if served.requests.failed > 0 {
        notes.push(format!(
            "{} of {} served requests failed and are left out",
            served.requests.failed, served.requests.total
        ));
    }
    // The served run's own warnings: cached prompt tokens, prompt counts
    // that differ from the token ids sent.
    notes.extend(point_notes(served, true));
    if server.is_none() {
        notes.push("the server sends no per-request timings: no row inside the server".into());
    }
    let mut layers = vec![engine];
    layers.extend(server);
    layers.push(client);
    ContrastShape {
        prompt_tokens: inproc.prompt_tokens,
        gen_tokens: inproc.gen_tokens,
        sequences: inproc.batch,
        layers,
        overheads,
        inproc_output_tok_s: inproc.throughput_tok_s.as_ref().map(|s| s.p50),
        served_output_tok_s: (served.requests.succeeded > 0)
            .then_some(served.output_throughput_tok_s),
        notes,
    }
}

/// Every shape both runs measured, in-process batch B against concurrency B.
pub fn contrast_table(
    inproc: &InprocResult,
    http: &HttpResult,
    level: f64,
    resamples: u32,
    seed: u64,
) -> Vec<ContrastShape> {
    inproc
        .points
        .iter()
        .filter_map(|ip| {
            let served = http
                .points
                .iter()
                .find(|hp| hp.load.concurrency == Some(ip.batch))?;
            Some(contrast_shape(
                ip,
                served,
                level,
                resamples,
                seed ^ u64::from(ip.batch),
            ))
        })
        .collect()
}

/// What makes the two sides differ beyond the server itself, for the file's
/// notes: two llama.cpp builds, two model files.
pub fn like_for_like_notes(inproc: &InprocResult, http: &HttpResult) -> Vec<String> {
    let mut notes = Vec::new();
    let engine = &inproc.provenance.engine;
    let fingerprint = http
        .provenance
        .server
        .as_ref()
        .and_then(|s| s.system_fingerprint.clone())
        .unwrap_or_else(|| "unknown".into());
    notes.push(format!(
        "in-process llama.cpp: {} via {}{}; served: {} (system_fingerprint {fingerprint}). Unless both are the same llama.cpp commit built the same way, the engine-to-server difference includes the difference between the two builds",
        engine.version,
        engine.bindings,
        engine
            .build
            .as_ref()
            .map(|b| format!(", CMake {} {}", b.cmake_build_type, b.cxx_flags))
            .unwrap_or_default(),
        http.provenance
            .server
            .as_ref()
            .map_or("unknown server".into(), |s| s.url.clone()),
    ));
    let hashes = (
        inproc
            .provenance
            .model
            .as_ref()
            .and_then(|m| m.sha256.clone()),
        http.provenance
            .model
            .as_ref()
            .and_then(|m| m.sha256.clone()),
    );
    if let (Some(a), Some(b)) = &hashes {
        if a != b {
            notes.push(format!(
                "the token ids were drawn from a model file (sha256 {b}) other than the one measured in-process ({a})"
            ));
        }
    }
    notes
}

/// The result files in `path`: the file itself, or a contrast file's two
/// runs (named `PATH#inproc` and `PATH#http`), so that `compare` can set a
/// contrast beside other results.
pub fn read_sources(path: &Path) -> Result<Vec<(String, AnyResult)>, ReadError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let is_contrast = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v.get("mode").and_then(|m| m.as_str()) == Some("contrast"));
    if !is_contrast {
        return Ok(vec![(name, AnyResult::read(path)?)]);
    }
    let contrast: ContrastResult =
        serde_json::from_str(&text).map_err(|e| ReadError::NotAResult {
            path: path.to_path_buf(),
            message: format!("a contrast file that does not parse: {e}"),
        })?;
    let mut sources = Vec::new();
    if let Some(r) = contrast.inproc {
        sources.push((format!("{name}#inproc"), AnyResult::Inproc(Box::new(r))));
    }
    if let Some(r) = contrast.http {
        sources.push((format!("{name}#http"), AnyResult::Http(Box::new(r))));
    }
    if sources.is_empty() {
        return Err(ReadError::NotAResult {
            path: path.to_path_buf(),
            message: "a contrast file with neither run (it failed before measuring)".into(),
        });
    }
    Ok(sources)
}
