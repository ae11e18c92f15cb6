use std::path::Path;
use std::time::Duration;

use super::Slo;
use super::*;

fn every_kind() -> Vec<Spec> {
    let http = HttpSpec {
        url: "http://127.0.0.1:8000".into(),
        concurrency: Some(vec![1, 8]),
        rate: Some(vec![0.5, 2.0]),
        arrival: Arrival::Gamma { burstiness: 0.25 },
        num_requests: Some(PerLoad::Each(vec![5, 6, 7, 8])),
        duration: Some(PerLoad::All(Duration::from_millis(1500))),
        prompt_seed: Some(7),
        slo: Some(Slo {
            ttft_ms: Some(500.0),
            tpot_ms: None,
            e2e_ms: Some(10_000.0),
        }),
        ca_cert: vec!["ca.pem".into()],
        server_metrics: Some(String::new()),
        ..HttpSpec::default()
    };
    vec![
        Spec::Inproc(InprocSpec::default()),
        Spec::Inproc(InprocSpec {
            until_precise: Some(vec![PrecisionTarget {
                metric: PreciseMetric::Itl,
                statistic: PreciseStatistic::P90,
                within_percent: 3.0,
            }]),
            max_runs: Some(400),
            max_duration: Some(Duration::from_secs(600)),
            ..InprocSpec::default()
        }),
        Spec::Inproc(InprocSpec {
            model: vec!["m.gguf".into(), "n.gguf".into()],
            threads: vec![3],
            n_gpu_layers: vec![-1],
            depth: vec![0, 4096],
            flash_attn: vec![FlashAttn::Off, FlashAttn::On],
            cache_type_k: vec![CacheType::F16, CacheType::Q8_0],
            cache_type_v: vec![CacheType::Q4_0, CacheType::F16],
            n_batch: vec![2048],
            mmap: vec![false, true],
            kv_offload: vec![false],
            prompt_tokens: vec![16, 512],
            batch: vec![1, 64],
            sampler: Sampler::LlamaGreedy,
            telemetry: false,
            swa_full: true,
            ..InprocSpec::default()
        }),
        Spec::Http(http.clone()),
        Spec::Http(HttpSpec {
            duration: None,
            num_requests: Some(PerLoad::All(50)),
            until_precise: Some(vec![
                PrecisionTarget {
                    metric: PreciseMetric::Ttft,
                    statistic: PreciseStatistic::P50,
                    within_percent: 2.0,
                },
                PrecisionTarget {
                    metric: PreciseMetric::Tpot,
                    statistic: PreciseStatistic::P99,
                    within_percent: 0.5,
                },
            ]),
            max_requests: Some(5000),
            max_duration: Some(Duration::from_secs(90)),
            ..http.clone()
        }),
        Spec::Http(HttpSpec {
            find_max_concurrency: Some(4),
            max_requests_per_probe: Some(2000),
            concurrency: None,
            rate: None,
            num_requests: Some(PerLoad::TimesLoad(2.5)),
            duration: None,
            endpoint: Endpoint::Chat,
            ..http.clone()
        }),
        Spec::Rounds(RoundsSpec {
            targets: vec!["http://a".into(), "http://b".into()],
            rounds: 3,
            http: HttpSpec {
                num_requests: None,
                ..http
            },
        }),
        Spec::Contrast(ContrastSpec {
            server: Some(ServerLaunch {
                path: Some("/opt/llama-server".into()),
            }),
            ..ContrastSpec::default()
        }),
        Spec::Contrast(ContrastSpec {
            url: Some("http://127.0.0.1:9".into()),
            threads: Some(2),
            ..ContrastSpec::default()
        }),
    ]
}

#[test]
fn every_spec_survives_toml_and_json() {
    for spec in every_kind() {
        spec.validate().unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        let toml = spec.to_toml();
        let back =
            Spec::parse(&toml, Path::new("x.toml")).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert_eq!(back, spec, "TOML:\n{toml}");
        let json = serde_json::to_string(&spec).expect("JSON");
        let back = Spec::parse(&json, Path::new("x.json")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, spec, "JSON: {json}");
    }
}

#[test]
fn a_short_file_takes_the_command_lines_defaults() {
    let spec = Spec::parse(
        "command = \"inproc\"\nbatch = [2]\n",
        Path::new("short.toml"),
    )
    .expect("parses");
    assert_eq!(
        spec,
        Spec::Inproc(InprocSpec {
            batch: vec![2],
            ..InprocSpec::default()
        })
    );
    let spec = Spec::parse(
        "command = \"http\"\nurl = \"http://h\"\nnum_requests = 12\ntimeout = \"2s\"\n",
        Path::new("short.toml"),
    )
    .expect("parses");
    let Spec::Http(http) = spec else {
        panic!("not http")
    };
    assert_eq!(http.num_requests, Some(PerLoad::All(12)));
    assert_eq!(http.timeout, Duration::from_secs(2));
    assert_eq!(http.workload, "fixed:128:64");
}

#[test]
fn swa_full_is_written_only_when_on_so_that_campaign_ids_stay() {
    let off = serde_json::to_value(InprocSpec::default()).unwrap();
    assert!(off.get("swa_full").is_none(), "{off}");
    let on = serde_json::to_value(InprocSpec {
        swa_full: true,
        ..InprocSpec::default()
    })
    .unwrap();
    assert_eq!(on["swa_full"], true);
    let back: InprocSpec = serde_json::from_value(on).unwrap();
    assert!(back.swa_full);
}

#[test]
fn an_unknown_key_is_named() {
    let err = Spec::parse(
        "command = \"inproc\"\nbatches = [2]\n",
        Path::new("typo.toml"),
    )
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "typo.toml: unknown key batches (see `inferbench schema spec`)"
    );
    let err = Spec::parse(
        "{\"command\": \"http\", \"url\": \"http://h\", \"slo\": {\"ttft\": 5}}",
        Path::new("typo.json"),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("unknown key slo.ttft"), "{err}");
}

#[test]
fn a_spec_is_checked_as_the_command_line_checks_it() {
    let cases: Vec<(&str, &str)> = vec![
        ("command = \"inproc\"\nbatch = [2, 2]\n", "--batch: the batch list repeats 2"),
        ("command = \"inproc\"\nbatch = []\n", "--batch: the batch list is empty"),
        ("command = \"inproc\"\nruns = 0\n", "--runs: must be at least 1"),
        ("command = \"inproc\"\nthreads = [0]\n", "--threads: 0 is not in 1..=1024"),
        ("command = \"inproc\"\nn_gpu_layers = [-2]\n", "--n-gpu-layers"),
        ("command = \"inproc\"\ndepth = [0, 0]\n", "--depth: the depth list repeats 0"),
        ("command = \"inproc\"\ncache_type_k = [\"q3_k\"]\n", "unknown variant `q3_k`"),
        (
            "command = \"inproc\"\nflash_attn = [\"off\"]\ncache_type_v = [\"q8_0\"]\n",
            "every cell of the grid is invalid: a quantized V cache (q8_0) needs flash attention",
        ),
        ("command = \"inproc\"\nmmap = []\n", "--mmap: the list is empty"),
        ("command = \"http\"\n", "--url: no server URL given"),
        (
            "command = \"http\"\nurl = \"u\"\nrate = [1.0, -1.0]\n",
            "--rate: '-1' in the rate list is not a positive rate",
        ),
        (
            "command = \"http\"\nurl = \"u\"\nfind_max_rate = 1.0\n",
            "--find-max-rate: a search needs --slo",
        ),
        (
            "command = \"http\"\nurl = \"u\"\nconcurrency = [1, 2]\nnum_requests = \"5,6,7\"\n",
            "--num-requests: 3 values for 2 load levels",
        ),
        (
            "command = \"http\"\nurl = \"u\"\narrival = { process = \"gamma\", burstiness = 0.0 }\n",
            "--burstiness: 0 is outside 0.001 to 1000",
        ),
        (
            "command = \"http\"\nurl = \"u\"\nendpoint = \"chat\"\ntoken_ids_from = \"m.gguf\"\n",
            "--token-ids-from: sends token ids",
        ),
        ("command = \"http\"\nurl = \"u\"\ntimeout = \"0s\"\n", "'0s' is zero"),
        ("command = \"http\"\nurl = \"u\"\nnum_requests = \"0\"\n", "'0' is not a positive request count"),
        ("command = \"contrast\"\n", "--server: give --server llama-server"),
        (
            "command = \"contrast\"\nurl = \"u\"\nserver = \"llama-server\"\n",
            "--server: give --server or --url, not both",
        ),
        ("command = \"contrast\"\nserver = \"vllm\"\n", "inferbench starts llama.cpp's server only"),
        (
            "command = \"rounds\"\ntargets = []\nrounds = 1\n[http]\nurl = \"u\"\n",
            "--url: no target given",
        ),
        ("command = \"bench\"\n", "command = \"bench\" is not a spec's command"),
        ("batch = [1]\n", "no command key"),
    ];
    for (text, needle) in cases {
        let err = Spec::parse(text, Path::new("s.toml")).expect_err(text);
        let message = err.to_string();
        assert!(message.starts_with("s.toml: "), "{message}");
        assert!(message.contains(needle), "{text}: {message}");
    }
}

#[test]
fn per_load_values_read_back_as_written() {
    for text in ["100", "5,200,1500", "5x", "0.5x"] {
        let v: PerLoad<u64> = text.parse().expect(text);
        assert_eq!(v.to_string(), text);
    }
    for text in ["30s", "30s,1m", "250ms"] {
        let v: PerLoad<Duration> = text.parse().expect(text);
        assert_eq!(v.to_string(), text);
    }
    assert!("5x".parse::<PerLoad<Duration>>().is_err());
    assert_eq!(
        "5,200".parse::<PerLoad<u64>>(),
        Ok(PerLoad::Each(vec![5, 200]))
    );
    assert_eq!(
        PerLoad::Each(vec![5u64, 200]).at(1, 8.0, |k| k as u64),
        Some(200)
    );
    assert_eq!(
        PerLoad::<u64>::TimesLoad(5.0).at(0, 8.0, |k| k as u64),
        Some(40)
    );
}

#[test]
fn a_result_without_a_spec_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("inferbench-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let old = dir.join("old.json");
    std::fs::write(&old, r#"{"mode": "inproc", "settings": {"model": "m"}}"#).expect("write");
    let err = Spec::from_result_file(&old).expect_err("no spec");
    assert!(matches!(err, SpecFileError::NoSpec { .. }));
    assert!(
        err.to_string().contains("old.json: records no spec"),
        "{err}"
    );
    let new = dir.join("new.json");
    let spec = Spec::Inproc(InprocSpec::default());
    let result = serde_json::json!({"mode": "inproc", "settings": {"spec": spec}});
    std::fs::write(&new, result.to_string()).expect("write");
    assert_eq!(Spec::from_result_file(&new).expect("spec"), spec);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_schema_describes_every_command() {
    let schema = crate::schema::files::SchemaFile::Spec.generate();
    assert_eq!(schema["$id"], SPEC_SCHEMA_ID);
    let text = schema.to_string();
    for needle in [
        "inproc",
        "contrast",
        "rounds",
        "find_max_concurrency",
        "kernel_timing",
    ] {
        assert!(text.contains(needle), "{needle} missing from the schema");
    }
}

#[test]
fn the_grid_is_the_product_of_every_list_in_llama_benchs_order() {
    let spec = InprocSpec {
        model: vec!["a.gguf".into(), "b.gguf".into()],
        threads: vec![1, 2],
        flash_attn: vec![FlashAttn::Off, FlashAttn::On],
        cache_type_v: vec![CacheType::F16, CacheType::Q8_0],
        ..InprocSpec::default()
    };
    spec.validate().expect("valid: some cells are");
    let cells = spec.configurations();
    assert_eq!(cells.len(), 2 * 2 * 2 * 2);
    // The model is outermost, the V cache type innermost of these.
    let labels: Vec<String> = cells
        .iter()
        .map(|c| c.label(&["model", "threads", "flash_attn", "cache_type_v"]))
        .collect();
    assert_eq!(
        labels[0],
        "model=a.gguf threads=1 flash_attn=off cache_type_v=f16"
    );
    assert_eq!(
        labels[1],
        "model=a.gguf threads=1 flash_attn=off cache_type_v=q8_0"
    );
    assert_eq!(
        labels[2],
        "model=a.gguf threads=1 flash_attn=on cache_type_v=f16"
    );
    assert_eq!(
        labels[4],
        "model=a.gguf threads=2 flash_attn=off cache_type_v=f16"
    );
    assert_eq!(
        labels[8],
        "model=b.gguf threads=1 flash_attn=off cache_type_v=f16"
    );
    // Every cell is distinct, and every setting not listed is the default.
    let distinct: std::collections::HashSet<&String> = labels.iter().collect();
    assert_eq!(distinct.len(), cells.len());
    assert!(cells
        .iter()
        .all(|c| c.ubatch == 512 && c.cache_type_k == CacheType::F16));
    // Quantized V without flash attention: the cells llama.cpp refuses.
    let invalid: Vec<usize> = (0..cells.len())
        .filter(|&i| cells[i].invalid().is_some())
        .collect();
    assert_eq!(invalid, [1, 5, 9, 13]);
    assert_eq!(
        spec.varying(),
        ["model", "threads", "flash_attn", "cache_type_v"]
    );
    // Cells sharing a model load are neighbours.
    let loads: Vec<_> = cells.iter().map(|c| c.load_key()).collect();
    assert_eq!(loads.chunk_by(|a, b| a == b).count(), 2);
}

#[test]
fn cache_types_are_llama_cpps_with_their_block_sizes() {
    for t in CacheType::ALL {
        assert_eq!(t.name().parse::<CacheType>(), Ok(t));
        let json = serde_json::to_string(&t).expect("JSON");
        assert_eq!(json, format!("\"{}\"", t.name()));
    }
    // One cell of Gemma 3 270M's layer: 1 KV head of 256.
    assert_eq!(CacheType::F16.bytes(256), 512);
    assert_eq!(CacheType::F32.bytes(256), 1024);
    assert_eq!(CacheType::Q8_0.bytes(256), 8 * 34);
    assert_eq!(CacheType::Q4_0.bytes(256), 8 * 18);
    assert_eq!(CacheType::Q5_1.bytes(256), 8 * 24);
    assert!(CacheType::Q8_0.is_quantized() && !CacheType::Bf16.is_quantized());
    assert!("q3_k".parse::<CacheType>().is_err());
    assert_eq!("-1".parse::<FlashAttn>(), Ok(FlashAttn::Auto));
    assert_eq!("1".parse::<FlashAttn>(), Ok(FlashAttn::On));
}

#[test]
fn shards_split_streams_and_requests_without_gaps_or_overlap() {
    let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
    // 5 streams over 3 shards: 2, 2, 1.
    let streams: Vec<u32> = shards.iter().map(|s| s.share(5)).collect();
    assert_eq!(streams, [2, 2, 1]);
    // Every request of a 10-request load belongs to exactly one shard, the
    // j-th of shard I being request j·N + I, and the counts add up.
    for k in 0..10u64 {
        let owners: Vec<u32> = shards
            .iter()
            .filter(|s| s.owns(k))
            .map(|s| s.index)
            .collect();
        assert_eq!(owners.len(), 1);
        let s = shards[owners[0] as usize];
        assert_eq!(s.global(k / 3), k);
    }
    let counts: Vec<u64> = shards.iter().map(|s| s.count_of(10)).collect();
    assert_eq!(counts, [4, 3, 3]);
    assert_eq!(shards[2].label(), "2/3");
}
