//! The provenance block every result carries: what was measured, with what
//! build of what, on which machine.

use std::path::Path;

use anyhow::Result;
use inferbench_ffi::{LlamaEngine, LlamaOptions, LoadedModel, Runtime};
use inferbench_harness::schema::{EngineInfo, ModelInfo, Provenance, ToolInfo};

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub fn tool_info() -> ToolInfo {
    ToolInfo {
        name: env!("CARGO_PKG_NAME").into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_commit: non_empty(env!("INFERBENCH_GIT_COMMIT")),
        git_dirty: match env!("INFERBENCH_GIT_DIRTY") {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        build_profile: env!("INFERBENCH_PROFILE").into(),
        target: env!("INFERBENCH_TARGET").into(),
        target_cpu: non_empty(env!("INFERBENCH_TARGET_CPU")),
        features: env!("INFERBENCH_FEATURES")
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        rustc: non_empty(env!("INFERBENCH_RUSTC")),
    }
}

pub fn llama_engine_info(
    runtime: &Runtime,
    model: &LoadedModel,
    engine: &LlamaEngine,
    options: &LlamaOptions,
) -> EngineInfo {
    let offloaded = model.gpu_layers_offloaded(runtime);
    let mut notes = engine.timing_notes().to_vec();
    if let Some(cuda) = inferbench_ffi::cuda::cuda_driver_info() {
        notes.push(format!(
            "CUDA driver {} ({})",
            cuda.driver_version,
            cuda.device_names.join(", ")
        ));
    }
    if let Ok(nvml) = inferbench_ffi::nvml::NvmlProbe::new() {
        if let Some(v) = nvml.driver_version() {
            notes.push(format!("NVIDIA driver {v}"));
        }
    }
    EngineInfo {
        name: "llama.cpp".into(),
        version: runtime.ggml_version(),
        bindings: format!(
            "llama-cpp-2 {} (llama-cpp-sys-2 {})",
            env!("INFERBENCH_LLAMA_CPP_2"),
            env!("INFERBENCH_LLAMA_CPP_SYS_2")
        ),
        backend: if offloaded > 0 { "GPU" } else { "CPU" }.into(),
        cpu_features: Some(runtime.system_info()),
        devices: runtime.devices(),
        threads: Some(options.threads),
        threads_batch: Some(options.threads_batch),
        gpu_layers_requested: Some(model.gpu_layers_requested),
        gpu_layers_offloaded: Some(offloaded),
        timing_source: engine.timing_source().into(),
        kernel_timing: Some(engine.kernel_timing()),
        build: inferbench_ffi::llama::engine_build(),
        device_names: Some(runtime.device_names()),
        notes,
    }
}

pub fn model_info(path: &Path, model: &LoadedModel) -> Result<ModelInfo> {
    let s = &model.summary;
    Ok(ModelInfo {
        path: path.display().to_string(),
        sha256: Some(crate::model::sha256_file(path)?),
        file_size_bytes: s.file_size_bytes,
        name: s.name.clone(),
        architecture: s.architecture.clone(),
        parameters: s.parameters,
        layers: s.layers,
        context_length: s.context_length,
        quantization: s.quantization.clone(),
        tensor_types: s.tensor_types.clone(),
    })
}

/// The wall clock as results date themselves (the served runner's, one place).
pub use inferbench_harness::served::now_rfc3339;

pub fn provenance(engine: EngineInfo, model: Option<ModelInfo>) -> Provenance {
    Provenance {
        tool: tool_info(),
        engine,
        host: inferbench_harness::host::host_info(),
        model,
        server: None,
        timestamp: now_rfc3339(),
    }
}
