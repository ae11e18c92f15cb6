//! Sharded loads on real distributed engines, as two-node clusters on this
//! one machine: Ray (`ray.cluster_utils`, from `scripts/dist/install`'s
//! venv) and Slurm (two `slurmd` under one `slurmctld`,
//! `scripts/dist/local-slurm`). Every daemon a test starts is stopped, on
//! success and on failure. Where the engines are not installed the tests
//! say so and pass, except under CI, whose `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use inferbench_test_support::mock::MockServer;
use serde_json::Value;

use crate::shards::{prompts, server, server_peak};
use crate::util::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the test may run: the engine is installed, or it is skipped
/// with a message (a failure under CI).
fn available(what: &str, present: bool) -> bool {
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is not installed: .ci/run runs scripts/dist/install"
        );
        eprintln!("skipped: {what} is not installed (scripts/dist/install)");
    }
    present
}

fn ray_python() -> PathBuf {
    std::env::var_os("INFERBENCH_DIST_VENV")
        .map_or_else(|| repo().join(".cache/dist/venv"), PathBuf::from)
        .join("bin/python")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const OPEN_LOOP: [&str; 13] = [
    "--rate",
    "20",
    "--arrival",
    "poisson",
    "--num-requests",
    "200",
    "--workload",
    "fixed:16:3",
    "--ignore-eos",
    "--warmup",
    "0",
    "--seed",
    "7",
];

/// The merged file a script printed last (`merged: PATH`), checked.
fn merged_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}\n{}", stdout(o), stderr(o));
    let out = stdout(o);
    let last = out.lines().last().unwrap_or_default();
    let path = last
        .strip_prefix("merged: ")
        .unwrap_or_else(|| panic!("no merged path last: {out}"));
    let merged = read_json(Path::new(path));
    assert_valid_result(&merged);
    merged
}

/// The shards of an open loop of 200 requests sent exactly the prompts of
/// an unsharded run of the same seeds, none twice, each from its start.
fn check_open_loop(merged: &Value, sharded: &MockServer, dir: &Path) {
    assert_eq!(merged["points"][0]["requests"]["succeeded"], 200);
    assert_eq!(merged["shards"]["count"], 2);
    for f in merged["shards"]["files"].as_array().unwrap() {
        let shard = read_json(Path::new(f.as_str().unwrap()));
        let start = shard["shard"]["start_at_unix_s"].as_f64().unwrap();
        assert!(shard["points"][0]["first_send_unix_s"].as_f64().unwrap() >= start);
    }
    let single = server(5);
    let prompt_seed = merged["settings"]["prompt_seed"]
        .as_u64()
        .unwrap()
        .to_string();
    let o = bin()
        .args(["http", "--url", &single.url()])
        .args(OPEN_LOOP)
        .args(["--prompt-seed", &prompt_seed])
        .arg("--out")
        .arg(dir.join("unsharded.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let sent = prompts(sharded);
    assert_eq!(sent, prompts(&single), "the unsharded run's prompts");
    let mut distinct = sent.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 200, "no prompt twice");
}

#[test]
fn ray_shards_run_on_two_nodes_and_send_the_unsharded_load() {
    let python = ray_python();
    if !available("ray", python.exists()) {
        return;
    }
    let s = server(5);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = Command::new(&python)
        .arg(repo().join("scripts/dist/ray-shards"))
        .args(["--shards", "2", "--local-nodes", "2", "--start-delay", "12"])
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_inferbench"))
        .arg("--results-dir")
        .arg(dir.path())
        .args(["--", "--url", &s.url()])
        .args(OPEN_LOOP)
        .output()
        .unwrap();
    eprintln!(
        "ray-shards took {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        stderr(&o)
    );
    let merged = merged_of(&o);
    let placed = read_json(&dir.path().join("shards.json"));
    let nodes: Vec<&str> = placed["shards"]
        .as_array()
        .unwrap_or_else(|| placed.as_array().unwrap())
        .iter()
        .map(|s| s["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 2);
    assert_ne!(nodes[0], nodes[1], "one shard per node");
    // Each shard's file names its node, and the merge lists them.
    let hosts = merged["shards"]["hosts"].as_array().unwrap();
    assert_ne!(hosts[0], hosts[1], "{hosts:?}");
    check_open_loop(&merged, &s, dir.path());
}

/// Stops the local Slurm cluster however the test ends.
struct LocalSlurm {
    dir: PathBuf,
    conf: String,
}

impl LocalSlurm {
    fn start(dir: &Path) -> LocalSlurm {
        let o = Command::new(repo().join("scripts/dist/local-slurm"))
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        // Built first, so that a failed start stops what it started.
        let mut cluster = LocalSlurm {
            dir: dir.to_path_buf(),
            conf: String::new(),
        };
        assert!(o.status.success(), "{}", stderr(&o));
        let conf = stdout(&o)
            .lines()
            .find_map(|l| l.strip_prefix("export SLURM_CONF=").map(str::to_string))
            .expect("local-slurm prints SLURM_CONF");
        cluster.conf = conf;
        cluster
    }
}

impl Drop for LocalSlurm {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/dist/local-slurm"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

#[test]
fn slurm_shards_split_open_and_closed_loops_over_two_nodes() {
    if !available("slurm", Path::new("/usr/sbin/slurmctld").exists()) {
        return;
    }
    if !is_root() {
        // slurmd runs its jobs as their users: only root can start one.
        eprintln!("skipped: a local Slurm cluster needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let cluster = LocalSlurm::start(&dir.path().join("cluster"));
    eprintln!("local slurm up in {:.1} s", started.elapsed().as_secs_f64());
    let shards = |results: &str, args: &[&str]| {
        let o = Command::new(repo().join("scripts/dist/slurm-shards"))
            .env("SLURM_CONF", &cluster.conf)
            .args(["-N", "2", "--start-delay", "8"])
            .arg("--binary")
            .arg(env!("CARGO_BIN_EXE_inferbench"))
            .arg("--results-dir")
            .arg(dir.path().join(results))
            .arg("--")
            .args(args)
            .output()
            .unwrap();
        let merged = merged_of(&o);
        let placed = read_json(&dir.path().join(results).join("shards.json"));
        let nodes: Vec<String> = placed["shards"]
            .as_array()
            .unwrap_or_else(|| placed.as_array().unwrap())
            .iter()
            .map(|s| s["node"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(nodes, ["n1", "n2"], "one shard per node");
        assert_eq!(merged["shards"]["hosts"], serde_json::json!(["n1", "n2"]));
        merged
    };

    let open = server(5);
    let mut args = vec!["--url", open.url().leak()];
    args.extend(OPEN_LOOP);
    let merged = shards("open", &args);
    check_open_loop(&merged, &open, dir.path());

    // Closed loop c=5 over 2 shards: 3 and 2 streams, 5 at the server.
    let closed = server(40);
    let merged = shards(
        "closed",
        &[
            "--url",
            closed.url().leak(),
            "--concurrency",
            "5",
            "--num-requests",
            "40",
            "--workload",
            "fixed:16:3",
            "--ignore-eos",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(merged["points"][0]["requests"]["succeeded"], 40);
    let shares: Vec<u64> = merged["shards"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            read_json(Path::new(f.as_str().unwrap()))["points"][0]["start"]["share"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(shares, [3, 2]);
    assert_eq!(
        server_peak(&closed),
        5,
        "the server's largest in-flight count"
    );

    // A campaign as a job array: one cell run by hand, the array runs only
    // the other.
    let campaign_dir = dir.path().join("campaign");
    std::fs::create_dir_all(&campaign_dir).unwrap();
    let file = campaign_dir.join("tiny.toml");
    std::fs::write(
        &file,
        crate::campaign::TINY.replace("batch = [1, 2]", "batch = [1]"),
    )
    .unwrap();
    let ids = crate::campaign::ids(&file);
    assert_eq!(ids.len(), 2);
    let o = crate::campaign::campaign(&["run", "--cell", &ids[0]], &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let result = |id: &str| campaign_dir.join("res").join(format!("{id}.json"));
    let before = std::fs::metadata(result(&ids[0]))
        .unwrap()
        .modified()
        .unwrap();
    let o = Command::new(repo().join("scripts/dist/slurm-campaign"))
        .env("SLURM_CONF", &cluster.conf)
        .env("INFERBENCH_CACHE_DIR", shared_dir().join("cache"))
        .arg(&file)
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_inferbench"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "submitting 1 cells (0 GPUs each) as array 0-0: {}",
            ids[1]
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(read_json(&result(&ids[1]))["status"], "complete");
    let after = std::fs::metadata(result(&ids[0]))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "the cell already done did not run again");
    assert!(stdout(&o).contains("2 done"), "{}", stdout(&o));
}

/// The cells that ask for GPUs go in an array of their own with `--gres`;
/// `--gres` given to the script replaces the cells' own. (A dry run: this
/// machine's Slurm has no GPUs to give.)
#[test]
fn slurm_campaign_asks_for_the_gpus_each_cell_wants() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpus.toml");
    std::fs::write(
        &file,
        crate::campaign::TINY.replace("batch = [1, 2]", "batch = [1]")
            + "[[cells]]\nname = \"offloaded\"\nn_gpu_layers = [-1]\ngpus = 2\n",
    )
    .unwrap();
    let ids = crate::campaign::ids(&file);
    assert_eq!(ids.len(), 3);
    let o = crate::campaign::campaign(&["status", "--todo", "--gpus"], &file);
    assert_eq!(
        stdout(&o),
        format!("{} 0\n{} 0\n{} 2\n", ids[0], ids[1], ids[2])
    );
    let dry_run = |extra: &[&str]| {
        let o = Command::new(repo().join("scripts/dist/slurm-campaign"))
            .arg(&file)
            .arg("--binary")
            .arg(env!("CARGO_BIN_EXE_inferbench"))
            .arg("--dry-run")
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        stdout(&o).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let lines = dry_run(&[]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("--array=0-1 ")
            && !lines[0].contains("--gres")
            && lines[0].ends_with(&format!("# cells: {} {}", ids[0], ids[1])),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("--array=0-0 ")
            && lines[1].contains("--gres=gpu:2")
            && lines[1].ends_with(&format!("# cells: {}", ids[2])),
        "{lines:?}"
    );
    let lines = dry_run(&["--gres", "gpu:h100:1", "--parallel", "1"]);
    assert!(
        lines
            .iter()
            .all(|l| l.contains("--gres=gpu:h100:1") && l.contains("%1")),
        "{lines:?}"
    );
    // Nothing ran.
    let o = crate::campaign::campaign(&["status", "--todo"], &file);
    assert_eq!(stdout(&o).lines().count(), 3);
}
