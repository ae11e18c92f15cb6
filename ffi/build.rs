//! Records how llama.cpp was compiled, for result provenance: the CMake
//! build type and flags llama-cpp-sys-2 used, read from its CMake cache
//! (llama-cpp-sys-2 names its install dir in DEP_LLAMA_GGML_CMAKE_DIR, whose
//! grandparent is the build's OUT_DIR).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_GGML_CMAKE_DIR");
    let Some(cmake_dir) = std::env::var_os("DEP_LLAMA_GGML_CMAKE_DIR").map(PathBuf::from) else {
        return;
    };
    let Some(out_dir) = cmake_dir.parent().and_then(|lib| lib.parent()) else {
        return;
    };
    let cache = out_dir.join("build").join("CMakeCache.txt");
    println!("cargo:rerun-if-changed={}", cache.display());
    let Ok(text) = std::fs::read_to_string(&cache) else {
        return;
    };
    // Lines are `NAME:TYPE=VALUE`.
    let value = |name: &str| {
        text.lines()
            .find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.split(':').next()? == name).then(|| value.trim().to_string())
            })
            .unwrap_or_default()
    };
    let build_type = value("CMAKE_BUILD_TYPE");
    let flags = |lang: &str| {
        let base = value(&format!("CMAKE_{lang}_FLAGS"));
        let typed = value(&format!("CMAKE_{lang}_FLAGS_{}", build_type.to_uppercase()));
        [base, typed]
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    // .cargo/config.toml compiles llama.cpp as its own tools are; a build
    // older than that setting keeps its objects until cleaned.
    if build_type == "Release" && !flags("C").contains("-fPIE") {
        println!(
            "cargo:warning=llama.cpp was compiled with -fPIC (prefill 3-4% slower than llama.cpp's own tools); run `cargo clean --release -p llama-cpp-sys-2` to rebuild it with .cargo/config.toml's flags"
        );
    }
    println!("cargo:rustc-env=INFERBENCH_LLAMA_BUILD_TYPE={build_type}");
    println!("cargo:rustc-env=INFERBENCH_LLAMA_C_FLAGS={}", flags("C"));
    println!(
        "cargo:rustc-env=INFERBENCH_LLAMA_CXX_FLAGS={}",
        flags("CXX")
    );
    println!(
        "cargo:rustc-env=INFERBENCH_LLAMA_GGML_NATIVE={}",
        value("GGML_NATIVE")
    );
}
