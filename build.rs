//! Embeds what a result's provenance needs to know about this build: the
//! tool's git commit (and whether the tree was dirty), the profile, target
//! and target CPU, the rustc version, the enabled features, and the versions
//! of the llama.cpp bindings as locked in Cargo.lock.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn locked_version(lock: &str, name: &str) -> String {
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .map(|i| {
            let rest = &lock[i + needle.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| if s.is_empty() { "false" } else { "true" })
        .unwrap_or("");
    println!("cargo:rustc-env=INFERBENCH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=INFERBENCH_GIT_DIRTY={dirty}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");

    let env = |k: &str| std::env::var(k).unwrap_or_default();
    println!("cargo:rustc-env=INFERBENCH_PROFILE={}", env("PROFILE"));
    println!("cargo:rustc-env=INFERBENCH_TARGET={}", env("TARGET"));
    let target_cpu = env("CARGO_ENCODED_RUSTFLAGS")
        .split('\x1f')
        .find_map(|f| f.split("target-cpu=").nth(1).map(str::to_string))
        .unwrap_or_default();
    println!("cargo:rustc-env=INFERBENCH_TARGET_CPU={target_cpu}");
    let features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase()))
        .collect();
    println!("cargo:rustc-env=INFERBENCH_FEATURES={}", features.join(","));
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=INFERBENCH_RUSTC={rustc}");

    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    println!(
        "cargo:rustc-env=INFERBENCH_LLAMA_CPP_2={}",
        locked_version(&lock, "llama-cpp-2")
    );
    println!(
        "cargo:rustc-env=INFERBENCH_LLAMA_CPP_SYS_2={}",
        locked_version(&lock, "llama-cpp-sys-2")
    );
    println!("cargo:rerun-if-changed=Cargo.lock");
}
