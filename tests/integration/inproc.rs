use serde_json::Value;

use crate::util::*;

fn count(point: &Value, metric: &str) -> u64 {
    point[metric]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("{metric} has no count: {}", point[metric]))
}

#[test]
fn sweep_on_tiny_model_writes_exactly_the_requested_points() {
    let dir = tempfile::tempdir().unwrap();
    let (out, csv) = (dir.path().join("r.json"), dir.path().join("r.csv"));
    let o = bin()
        .args([
            "inproc",
            "--prompt-tokens",
            "16,40",
            "--gen-tokens",
            "5",
            "--batch",
            "1,3",
        ])
        .args(["--runs", "2", "--warmup", "1", "--threads", "2", "--model"])
        .arg(tiny_model())
        .arg("--out")
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["mode"], "inproc");
    assert_eq!(r["status"], "complete");
    assert_eq!(r["partial"], false);
    assert_eq!(r["provenance"]["engine"]["name"], "llama.cpp");
    assert_eq!(r["provenance"]["engine"]["threads"], 2);
    assert_eq!(r["provenance"]["model"]["sha256"], sha256(tiny_model()));
    assert_eq!(r["provenance"]["model"]["quantization"], "Q8_0");
    assert!(r["provenance"]["engine"]["cpu_features"]
        .as_str()
        .unwrap()
        .contains("CPU"));
    // Energy per token: RAPL where the kernel has it, else absent with the
    // reason in the notes.
    let notes = r["provenance"]["engine"]["notes"].to_string();
    if std::path::Path::new("/sys/class/powercap").exists() {
        assert!(
            r["points"][0].get("energy").is_some()
                || notes.contains("energy per token not measured"),
            "{notes}"
        );
    } else {
        assert!(r["points"][0].get("energy").is_none());
        assert!(
            notes.contains("energy per token not measured: GPUs not read")
                || notes.contains("energy per token not measured: no GPU read through NVML"),
            "{notes}"
        );
        assert!(
            notes.contains("/sys/class/powercap does not exist"),
            "{notes}"
        );
    }
    // On the CPU there are no kernels to trace, and the file says so.
    assert_eq!(
        r["provenance"]["engine"]["kernel_timing"],
        serde_json::json!({"available": false, "detail": "no layers on a GPU"})
    );

    let points = r["points"].as_array().unwrap();
    let shapes: Vec<(u64, u64)> = points
        .iter()
        .map(|p| {
            (
                p["prompt_tokens"].as_u64().unwrap(),
                p["batch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shapes, [(16, 1), (16, 3), (40, 1), (40, 3)]);
    assert!(points.iter().all(|p| p.get("kernel_timing").is_none()));
    // The roofline: the same weights every step, the KV growing with the
    // batch and the prompt, against a bandwidth measured before the points.
    let bandwidth = r["provenance"]["host"]["memory_bandwidth"]["best_gb_s"]
        .as_f64()
        .expect("a bandwidth probe on a CPU run");
    assert!(bandwidth > 0.0);
    let roof = |i: usize, k: &str| points[i]["roofline"][k].as_u64().unwrap();
    let weights: u64 = inferbench_models::GgufFile::open(tiny_model())
        .unwrap()
        .tensors
        .iter()
        .filter(|t| t.name != "token_embd.weight")
        .map(|t| t.byte_size())
        .sum();
    assert_eq!(
        roof(0, "weight_bytes"),
        weights,
        "every weight once, the embedding at its rows"
    );
    assert_eq!(roof(1, "kv_bytes"), 3 * roof(0, "kv_bytes"));
    assert!(roof(2, "kv_bytes") > roof(0, "kv_bytes"));
    for p in points {
        let f = p["roofline"]["fraction_of_bandwidth"].as_f64().unwrap();
        assert!(f > 0.0 && f.is_finite(), "{p}");
    }
    // The prefill roofline: the FLOPs the model's tensors and attention
    // shape give, over the prefill's p50, against an FMA peak measured
    // before the points.
    let peak = &r["provenance"]["host"]["compute_peak"];
    let peak_gflop_s = peak["best_gflop_s"]
        .as_f64()
        .expect("a compute probe on a CPU run");
    assert!(peak_gflop_s > 0.0 && peak_gflop_s.is_finite(), "{peak}");
    assert_eq!(peak["threads"], 2);
    let compute = inferbench_models::GgufFile::open(tiny_model())
        .unwrap()
        .prefill_compute();
    for p in points {
        let roof = &p["prefill_roofline"];
        let (pp, b) = (
            p["prompt_tokens"].as_u64().unwrap() as u32,
            p["batch"].as_u64().unwrap() as u32,
        );
        let flops = roof["flops"].as_u64().unwrap();
        assert_eq!(flops, compute.flops(pp, b), "{roof}");
        assert_eq!(roof["prefill_ms_p50"], p["prefill_ms"]["p50"]);
        let ms = roof["prefill_ms_p50"].as_f64().unwrap();
        let achieved = roof["achieved_gflop_s"].as_f64().unwrap();
        assert!(
            (achieved - flops as f64 / ms / 1e6).abs() <= 1e-9 * achieved,
            "{roof}"
        );
        assert_eq!(roof["peak_gflop_s"].as_f64(), Some(peak_gflop_s));
        let f = roof["fraction_of_peak"].as_f64().unwrap();
        assert!(f > 0.0 && f.is_finite(), "{roof}");
        assert!((f - achieved / peak_gflop_s).abs() <= 1e-9 * f, "{roof}");
    }
    let prefill_flops = |i: usize| points[i]["prefill_roofline"]["flops"].as_u64().unwrap();
    assert_eq!(
        prefill_flops(1),
        3 * prefill_flops(0),
        "three prompts of 16"
    );
    assert!(prefill_flops(2) > prefill_flops(0));
    for p in points {
        let (pp, b) = (
            p["prompt_tokens"].as_u64().unwrap(),
            p["batch"].as_u64().unwrap(),
        );
        let (runs, gen) = (2, 5);
        assert_eq!(p["complete"], true);
        assert_eq!(p["runs"], runs);
        assert_eq!(p["warmup_runs"], 1);
        assert_eq!(p["gen_tokens"], gen);
        assert_eq!(p["tokens"]["prompt"], runs * b * pp);
        assert_eq!(p["tokens"]["generated"], runs * b * gen);
        // Per run: one prefill, gen − 1 decode steps, gen samples.
        assert_eq!(count(p, "prefill_ms"), runs);
        assert_eq!(count(p, "decode_step_ms"), runs * (gen - 1));
        assert_eq!(count(p, "sample_ms"), runs * gen);
        // Per sequence: one TTFT, E2E and TPOT per run, gen − 1 ITLs.
        assert_eq!(count(p, "ttft_ms"), runs * b);
        assert_eq!(count(p, "e2e_ms"), runs * b);
        assert_eq!(count(p, "tpot_ms"), runs * b);
        assert_eq!(count(p, "itl_ms"), runs * b * (gen - 1));
        assert_eq!(count(p, "prefill_tok_s"), runs);
        // llama.cpp's own counters saw the same decode steps.
        let engine = &p["engine_counters"];
        assert_eq!(engine["decode_step_ms"]["count"], runs * (gen - 1));
        assert!(engine["harness_over_engine_decode_step"].as_f64().unwrap() > 0.0);
        // TTFT includes prefill; E2E includes TTFT.
        assert!(p["ttft_ms"]["min"].as_f64().unwrap() >= p["prefill_ms"]["min"].as_f64().unwrap());
        assert!(p["e2e_ms"]["min"].as_f64().unwrap() >= p["ttft_ms"]["min"].as_f64().unwrap());
        assert!(p["device_timing"].is_null());
        // Host telemetry sampled; no GPU on this machine, so no `gpus` at all.
        assert!(p["telemetry"]["logical_cores"].as_u64().unwrap() >= 1);
        assert!(p["telemetry"].get("gpus").is_none());
    }

    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4, "{csv}");
    assert!(lines[0].starts_with("prompt_tokens,gen_tokens,batch,complete,runs,ttft_ms_mean"));
    assert!(lines[2].starts_with("16,5,3,true,2,"), "{}", lines[2]);
    // The roofline columns carry the file's numbers; no GPU, no kernel columns.
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = |row: usize, name: &str| -> String {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
        lines[row].split(',').nth(i).unwrap().to_string()
    };
    for (row, p) in points.iter().enumerate() {
        // serde_json's default float parsing may differ from Rust's in the
        // last bit: equal to a relative 1e-12.
        let same = |name: &str, json: &Value| {
            let csv = column(row + 1, name).parse::<f64>().unwrap();
            let json = json.as_f64().unwrap();
            assert!(
                (csv - json).abs() <= 1e-12 * json.abs(),
                "{name}: {csv} vs {json}"
            );
        };
        same(
            "decode_fraction_of_bandwidth",
            &p["roofline"]["fraction_of_bandwidth"],
        );
        same("decode_bandwidth_gb_s", &p["roofline"]["bandwidth_gb_s"]);
        same(
            "prefill_fraction_of_peak",
            &p["prefill_roofline"]["fraction_of_peak"],
        );
        assert_eq!(column(row + 1, "decode_kernel_busy_over_host"), "");
    }
    assert_eq!(points[0]["roofline"]["bandwidth_source"], "stream-triad");

    // The table a person reads: one row per point.
    let table = stdout(&o);
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains(" 5 |"))
            .count(),
        4,
        "{table}"
    );
}

#[test]
fn default_model_is_the_generated_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("r.json");
    let o = bin()
        .env("INFERBENCH_CACHE_DIR", &cache)
        .args([
            "inproc", "-p", "8", "-n", "2", "-b", "2", "-r", "1", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let generated = cache.join("inferbench-tiny-v1.gguf");
    assert_eq!(sha256(&generated), sha256(tiny_model()));
    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["provenance"]["model"]["name"], "inferbench-tiny");
    assert_eq!(r["points"].as_array().unwrap().len(), 1);
}

#[test]
fn single_generated_token_has_null_decode_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args([
            "inproc", "-p", "8", "-n", "1", "-b", "1", "-r", "2", "--model",
        ])
        .arg(tiny_model())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let p = &r["points"][0];
    assert!(p["itl_ms"].is_null() && p["tpot_ms"].is_null() && p["decode_tok_s"].is_null());
    assert_eq!(count(p, "ttft_ms"), 2);
}

#[test]
fn gpu_layers_without_a_gpu_fall_back_to_the_host_clock_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bin()
        .args([
            "inproc",
            "-p",
            "8",
            "-n",
            "3",
            "-b",
            "1",
            "-r",
            "1",
            "--n-gpu-layers",
            "-1",
            "--no-telemetry",
            "--no-kernel-timing",
        ])
        .arg("--model")
        .arg(tiny_model())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&out);
    assert_valid_result(&r);
    let e = &r["provenance"]["engine"];
    assert_eq!(e["timing_source"], "host");
    assert_eq!(e["gpu_layers_requested"], -1);
    assert_eq!(e["gpu_layers_offloaded"], 0);
    assert_eq!(e["backend"], "CPU");
    let notes = e["notes"].to_string();
    assert!(notes.contains("host timing only"), "{notes}");
    assert!(r["points"][0]["telemetry"].is_null(), "--no-telemetry");
    assert!(r["points"][0]["device_timing"].is_null());
    // Nothing offloaded: no kernels to trace, whatever --no-kernel-timing says.
    assert_eq!(e["kernel_timing"]["available"], false);
    assert_eq!(e["kernel_timing"]["detail"], "no layers on a GPU");
    assert!(r["points"][0].get("kernel_timing").is_none());
    // The layers stayed on the CPU: its bandwidth is the ceiling, not a GPU's.
    let host = &r["provenance"]["host"];
    assert!(host["memory_bandwidth"]["best_gb_s"].as_f64().unwrap() > 0.0);
    assert!(host.get("device_memory_bandwidth").is_none(), "{host}");
    assert_eq!(
        r["points"][0]["roofline"]["bandwidth_source"],
        "stream-triad"
    );
}

/// The engine grid: every list expanded, each point carrying its whole
/// configuration and its memory, the cell llama.cpp refuses up front
/// skipped with its reason, one it fails on recorded with its error.
#[test]
fn engine_grid_records_every_cell_and_skips_the_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.json");
    let csv = dir.path().join("grid.csv");
    let o = bin()
        .args(["inproc", "--model"])
        .arg(tiny_model())
        .args([
            "-p", "16", "-n", "3", "-b", "1,2", "-r", "1", "--warmup", "0", "-t", "1",
        ])
        .args([
            "--fa",
            "off,on",
            "--ctv",
            "f16,q8_0",
            "--ubatch",
            "8,512",
            "--no-telemetry",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs flash attention, which is off"),
        "{}",
        stderr(&o)
    );
    // The varying settings are columns of the table.
    let table = stdout(&o);
    for column in ["ubatch", "flash_attn", "cache_type_v"] {
        assert!(table.contains(column), "{table}");
    }
    assert!(!table.contains("cache_type_k"), "{table}");
    let r = read_json(&out);
    assert_valid_result(&r);
    assert!(r["notes"].as_array().unwrap().iter().any(|n| n
        .as_str()
        .unwrap()
        .contains("flash_attn=off cache_type_v=q8_0 skipped")));
    // 2 ubatch x 2 fa x 2 ctv, less the 2 cells of q8_0 V without fa: 6
    // cells, each of 2 batch sizes, in order.
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 12);
    let cell = |p: &Value| {
        let c = &p["config"];
        format!(
            "{} {} {} B{}",
            c["flash_attn"].as_str().unwrap(),
            c["type_v"].as_str().unwrap(),
            c["n_ubatch"],
            p["batch"]
        )
    };
    let cells: Vec<String> = points.iter().map(cell).collect();
    assert_eq!(
        &cells[..4],
        ["off f16 8 B1", "off f16 8 B2", "on f16 8 B1", "on f16 8 B2"]
    );
    // ubatch 512 is clamped to the prefill (16 or 32 tokens): what llama.cpp got.
    assert_eq!(cells[6], "off f16 16 B1");
    assert_eq!(cells[7], "off f16 32 B2");
    let gguf = inferbench_models::GgufFile::open(tiny_model()).unwrap();
    let traffic = gguf.decode_traffic();
    for p in points {
        let c = &p["config"];
        // Every parameter llama.cpp was given is there, not only the varied ones.
        assert_eq!(c["n_threads"], 1);
        assert_eq!(c["n_gpu_layers"], 0);
        assert_eq!(c["type_k"], "f16");
        assert_eq!(c["use_mmap"], true);
        assert_eq!(c["offload_kqv"], true);
        // llama-bench's and llama-server's choice, not the library default.
        assert_eq!(c["swa_full"], false);
        assert_eq!(c["n_seq_max"], p["batch"]);
        let m = &p["memory"];
        assert!(m["model_bytes"].as_u64().unwrap() > 0);
        assert!(m["peak_rss_bytes"].as_u64().unwrap() > 0);
        let v_bytes = match c["type_v"].as_str().unwrap() {
            "f16" => 2 * traffic.v_row_elements,
            "q8_0" => traffic.v_row_elements / 32 * 34,
            other => panic!("{other}"),
        };
        let per_cell = traffic.layers * (2 * traffic.k_row_elements + v_bytes);
        assert_eq!(
            m["kv_cache_bytes"].as_u64().unwrap(),
            c["n_ctx"].as_u64().unwrap() * per_cell,
            "{p}"
        );
        // A cell llama.cpp could not run is a point with its error, no data.
        if p.get("error").is_some() {
            assert_eq!(p["runs"], 0);
            assert!(p["ttft_ms"].is_null());
            assert!(p["error"].as_str().unwrap().contains("llama.cpp"));
            continue;
        }
        assert_eq!(p["runs"], 1);
        // llama.cpp's own account of the cache, to its log's 0.01 MiB, and
        // of the compute and output buffers, as it made the context.
        let buffers = &m["llama_buffers"];
        let reported = buffers["kv_bytes"].as_u64().unwrap() as i64;
        let computed = m["kv_cache_bytes"].as_u64().unwrap() as i64;
        assert!(
            (reported - computed).abs() <= 5243,
            "{reported} vs {computed}"
        );
        assert!(buffers["compute_bytes"].as_u64().unwrap() > 0);
        assert!(buffers["output_bytes"].is_u64());
    }
    let lines: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 13);
    assert!(
        lines[0].ends_with(
            ",kv_cache_bytes,peak_rss_bytes,error,llama_kv_bytes,llama_compute_bytes,llama_output_bytes,\
             energy_j,joules_per_output_token,output_tokens_per_joule,average_power_w,energy_source"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(",flash_attn,type_k,type_v,"),
        "{}",
        lines[0]
    );

    // The spec records the lists, and runs again.
    assert_eq!(
        r["settings"]["spec"]["flash_attn"],
        serde_json::json!(["off", "on"])
    );
    assert_eq!(
        r["settings"]["spec"]["cache_type_v"],
        serde_json::json!(["f16", "q8_0"])
    );
}

#[test]
fn a_grid_of_only_invalid_cells_is_refused() {
    let o = bin()
        .args(["inproc", "--model"])
        .arg(tiny_model())
        .args(["--fa", "off", "--ctv", "q4_0", "-r", "1"])
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "every cell of the grid is invalid");
    let o = bin().args(["inproc", "--ctk", "q3_k"]).output().unwrap();
    assert_clean_failure(&o, 2, "'q3_k' is not a cache type");
    let o = bin().args(["inproc", "--fa", "maybe"]).output().unwrap();
    assert_clean_failure(&o, 2, "'maybe' is not off, on or auto");
}

/// `inproc --until-precise`: runs are added to a point while its statistic
/// is too wide. A target no machine meets stops at `--max-runs`, every run
/// counted, the point saying why; a point with the target met says so; the
/// flags' combinations are checked before any run.
#[test]
fn until_precise_adds_runs_up_to_the_cap_and_says_why_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let o = bin()
            .arg("inproc")
            .arg("--model")
            .arg(tiny_model())
            .args([
                "--batch",
                "1,2",
                "--prompt-tokens",
                "8",
                "--gen-tokens",
                "3",
            ])
            .args(["--runs", "3", "--warmup", "0", "--threads", "1"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let r = read_json(&out);
        assert_valid_result(&r);
        (r, stdout(&o))
    };
    let (r, text) = run(
        "capped.json",
        &[
            "--until-precise",
            "ttft.p50=0.0001%,itl.p90=0.0001%",
            "--max-runs",
            "7",
        ],
    );
    for p in r["points"].as_array().unwrap() {
        assert_eq!(p["runs"], 7, "{p}");
        assert_eq!(count(p, "prefill_ms"), 7);
        let precision = &p["precision"];
        assert_eq!(precision["stopped_by"], "max_runs", "{precision}");
        assert_eq!(precision["reached"], false);
        assert_eq!(precision["requests"], 7);
        assert_eq!(precision["max_requests"], 7);
        let targets = precision["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0]["statistic"], "ttft.p50");
        assert_eq!(targets[1]["metric"], "itl_ms");
        assert!(targets[0]["half_width_percent"].as_f64().unwrap() > 0.0001);
    }
    assert!(text.contains("stopped at --max-runs 7"), "{text}");
    assert_eq!(r["settings"]["spec"]["max_runs"], 7);

    // 99%: met by the first runs, or soon after.
    let (r, _) = run("loose.json", &["--until-precise", "ttft.p50=99%"]);
    for p in r["points"].as_array().unwrap() {
        let precision = &p["precision"];
        assert_eq!(precision["stopped_by"], "precise", "{precision}");
        assert_eq!(precision["reached"], true);
        assert_eq!(precision["targets"][0]["met"], true);
        assert!(
            precision["targets"][0]["half_width_percent"]
                .as_f64()
                .unwrap()
                <= 99.0
        );
        assert_eq!(precision["requests"], p["runs"]);
    }

    for (args, needle) in [
        (vec!["--until-precise", "e2e.p50=2%"], "no E2E"),
        (vec!["--max-runs", "10"], "--until-precise"),
        (
            vec!["--until-precise", "ttft.p50=2%", "--max-runs", "2"],
            "2 is below the 3 runs",
        ),
    ] {
        let o = bin()
            .arg("inproc")
            .arg("--model")
            .arg(tiny_model())
            .args(["--runs", "3"])
            .args(&args)
            .output()
            .unwrap();
        assert_clean_failure(&o, 2, needle);
    }
}
