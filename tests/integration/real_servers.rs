//! Opt-in: `inferbench http` against the real servers that
//! `scripts/servers/install-*` installed, each started by its
//! `scripts/servers/start-*` on 127.0.0.1 with the Gemma 3 270M GGUF.
//! Enabled by INFERBENCH_REAL_SERVERS=1 (slow: vLLM takes minutes to start);
//! servers not installed are reported and skipped.

use std::path::Path;
use std::process::Command;

use crate::util::*;

struct Server {
    name: &'static str,
    /// What must exist under .cache/servers for it to be installed.
    installed: &'static str,
    /// Usage arrives (llama-cpp-python sends none while streaming).
    sends_usage: bool,
    /// llama.cpp's server reports its own timings.
    sends_timings: bool,
}

const SERVERS: &[Server] = &[
    Server {
        name: "llama-server",
        installed: "llama-server/bin/llama-server",
        sends_usage: true,
        sends_timings: true,
    },
    Server {
        name: "llama-cpp-python",
        installed: "llama-cpp-python/venv/bin/python",
        sends_usage: false,
        sends_timings: false,
    },
    Server {
        name: "vllm",
        installed: "vllm/venv/bin/python",
        sends_usage: true,
        sends_timings: false,
    },
];

struct Running(String);

impl Drop for Running {
    fn drop(&mut self) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let _ = Command::new(root.join("scripts/servers/stop-server"))
            .arg(&self.0)
            .status();
    }
}

#[test]
fn each_installed_real_server_is_measured() {
    if std::env::var("INFERBENCH_REAL_SERVERS").as_deref() != Ok("1") {
        eprintln!("real-server test not enabled (set INFERBENCH_REAL_SERVERS=1)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut measured = 0;
    for server in SERVERS {
        if !root.join(".cache/servers").join(server.installed).exists() {
            eprintln!(
                "{}: not installed, skipped (scripts/servers/install-{})",
                server.name, server.name
            );
            continue;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let start = Command::new(root.join(format!("scripts/servers/start-{}", server.name)))
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(
            start.status.success(),
            "{}: {}",
            server.name,
            String::from_utf8_lossy(&start.stderr)
        );
        let _running = Running(String::from_utf8_lossy(&start.stdout).trim().to_string());

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.json");
        for endpoint in ["completions", "chat"] {
            let o = bin()
                .args([
                    "http",
                    "--url",
                    &format!("http://127.0.0.1:{port}"),
                    "--endpoint",
                    endpoint,
                ])
                .args([
                    "--concurrency",
                    "1,2",
                    "--num-requests",
                    "4",
                    "--warmup",
                    "1",
                ])
                .args([
                    "--workload",
                    "fixed:32:16",
                    "--ignore-eos",
                    "--timeout",
                    "120s",
                ])
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{} {endpoint}: {}",
                server.name,
                stderr(&o)
            );
            let r = read_json(&out);
            assert_valid_result(&r);
            for p in r["points"].as_array().unwrap() {
                assert_eq!(p["requests"]["succeeded"], 4, "{} {endpoint}", server.name);
                assert_eq!(p["ttft_ms"]["count"], 4);
                let source = if server.sends_usage {
                    "usage"
                } else {
                    "chunks"
                };
                assert_eq!(
                    p["output_tokens_source"][source], 4,
                    "{} {endpoint}: {}",
                    server.name, p["output_tokens_source"]
                );
                if server.sends_usage {
                    // --ignore-eos is honoured: every request generated 16.
                    assert_eq!(
                        p["output_tokens"]["mean"], 16.0,
                        "{} {endpoint}",
                        server.name
                    );
                    assert!(p["input_tokens"]["mean"].as_f64().unwrap() >= 32.0);
                }
                if server.sends_timings && endpoint == "completions" {
                    assert_eq!(p["server_prompt_ms"]["count"], 4, "{}", server.name);
                }
            }
        }
        measured += 1;
    }
    assert!(
        measured > 0,
        "INFERBENCH_REAL_SERVERS=1 but no server is installed"
    );
}
