use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn ctrl_c_leaves_a_valid_partial_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    // Far more runs than the test waits for: only Ctrl-C ends it.
    let child = KillOnDrop(Some(
        bin()
            .args([
                "inproc",
                "-p",
                "8",
                "-n",
                "16",
                "-b",
                "1,2",
                "-r",
                "100000000",
                "--warmup",
                "0",
            ])
            .arg("--model")
            .arg(tiny_model())
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // The point in flight is saved every second: wait until the file holds
    // measured runs, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no measured run saved after 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
        // The file is replaced atomically, so it is whole whenever it exists.
        if !out.exists() {
            continue;
        }
        let r = read_json(&out);
        assert_valid_result(&r);
        assert_eq!(r["status"], "running");
        if r["points"][0]["runs"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(r["partial"], true);
            assert_eq!(r["points"][0]["complete"], false);
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {err}");
    assert!(err.contains("(partial)"), "{err}");

    let r = read_json(&out);
    assert_valid_result(&r);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["partial"], true);
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "only the point in flight: {r:#}");
    let p = &points[0];
    assert_eq!(p["complete"], false);
    let runs = p["runs"].as_u64().unwrap();
    assert!(runs >= 1);
    assert_eq!(p["ttft_ms"]["count"], runs);
    assert_eq!(p["itl_ms"]["count"], runs * 15);
}
