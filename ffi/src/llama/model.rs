//! The llama.cpp library, initialised once, and the models it loads.

use std::ffi::CStr;
use std::path::Path;
use std::sync::OnceLock;

use inferbench_core::engine::PromptVocab;
use inferbench_core::schema::DeviceNames;
use inferbench_models::{GgufFile, ModelSummary};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;
use llama_cpp_2::LlamaBackendDeviceType;

use super::log::{record_log, LOG_QUIET};
use super::EngineError;

/// The initialised llama.cpp library. `llama_backend_init` may run only once
/// per process, so there is one `Runtime`, shared by everything that needs it.
#[derive(Debug)]
pub struct Runtime {
    pub(super) backend: LlamaBackend,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// `llama_model_desc` of a loaded model, e.g. "gemma3 270M Q4_K - Medium".
///
/// The bindings expose no accessor for it nor the model's pointer, and
/// llama.cpp fills the description only in a full load (a vocabulary-only
/// load leaves it empty; a metadata-only `no_alloc` load aborts on mapped
/// files), so the pointer is read through the wrapper's layout: `LlamaModel`
/// is `#[repr(transparent)]` over llama-cpp-2's `Ptr`, itself
/// `#[repr(transparent)]` over `NonNull<llama_model>` (llama-cpp-2 is pinned
/// to =0.1.160, where that holds; the size check below fails the build if
/// the wrapper grows). The pointer is used only when llama.cpp's size and
/// parameter count through it agree with the wrapper's own accessors.
fn model_description(model: &LlamaModel) -> Option<String> {
    const _: () = assert!(
        std::mem::size_of::<LlamaModel>()
            == std::mem::size_of::<*mut llama_cpp_sys_2::llama_model>()
    );
    // SAFETY: by the layout above, a `&LlamaModel` points at the model's
    // non-null `*mut llama_model`, valid while the borrow lasts. The calls
    // only read the model; `buf` is large enough for any description and
    // llama_model_desc writes at most `buf.len()` bytes, NUL included.
    unsafe {
        let raw = *(model as *const LlamaModel).cast::<*mut llama_cpp_sys_2::llama_model>();
        if raw.is_null()
            || llama_cpp_sys_2::llama_model_size(raw) != model.size()
            || llama_cpp_sys_2::llama_model_n_params(raw) != model.n_params()
        {
            return None;
        }
        let mut buf = [0 as std::ffi::c_char; 256];
        let written = llama_cpp_sys_2::llama_model_desc(raw, buf.as_mut_ptr(), buf.len());
        (written > 0).then(|| cstr_to_string(buf.as_ptr()))
    }
}

impl Runtime {
    /// The process's runtime, initialised on first use. With `quiet`,
    /// llama.cpp's and ggml's logs are silenced (decided on first call only).
    pub fn get(quiet: bool) -> Result<&'static Runtime, EngineError> {
        RUNTIME
            .get_or_init(|| {
                let backend = LlamaBackend::init().map_err(|e| e.to_string())?;
                LOG_QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
                // SAFETY: `record_log` is a valid `ggml_log_callback` for the
                // whole process (a plain function, no user data); llama.cpp
                // keeps the pointer and calls it from any thread, which the
                // function allows (a mutex guards what it keeps).
                unsafe { llama_cpp_sys_2::llama_log_set(Some(record_log), std::ptr::null_mut()) };
                Ok(Runtime { backend })
            })
            .as_ref()
            .map_err(|e| EngineError::Backend(e.clone()))
    }

    /// ggml's version and commit as compiled in.
    pub fn ggml_version(&self) -> String {
        // SAFETY: both return pointers to static NUL-terminated strings
        // compiled into ggml; they are never freed or mutated.
        let (version, commit) = unsafe {
            (
                cstr_to_string(llama_cpp_sys_2::ggml_version()),
                cstr_to_string(llama_cpp_sys_2::ggml_commit()),
            )
        };
        format!("ggml {version} ({commit})")
    }

    /// llama.cpp's own account of the CPU features it was built with and
    /// uses (e.g. "CPU : SSE3 = 1 | AVX512 = 1 | ...").
    pub fn system_info(&self) -> String {
        // SAFETY: llama_print_system_info returns a pointer to a static
        // buffer that stays valid until the next call; it is copied at once.
        // The backend is initialised (self exists), which it requires.
        let info = unsafe { cstr_to_string(llama_cpp_sys_2::llama_print_system_info()) };
        info.trim().trim_end_matches('|').trim().to_string()
    }

    /// Devices ggml can compute on, as "backend: description".
    pub fn devices(&self) -> Vec<String> {
        llama_cpp_2::list_llama_ggml_backend_devices()
            .into_iter()
            .map(|d| format!("{}: {} ({})", d.backend, d.description, d.name))
            .collect()
    }

    /// The devices and backends as llama.cpp's `llama-bench` names them
    /// (its `get_cpu_info`, `get_gpu_info` and `get_backend`), so that an
    /// export of inferbench's rows joins llama-bench's on the same values.
    pub fn device_names(&self) -> DeviceNames {
        let devices = llama_cpp_2::list_llama_ggml_backend_devices();
        let describe = |kinds: &[LlamaBackendDeviceType]| {
            devices
                .iter()
                .filter(|d| kinds.contains(&d.device_type))
                .map(|d| d.description.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut backends = Vec::new();
        let mut rpc_used = false;
        // SAFETY: the backend is initialised (self exists); registry indices
        // below ggml_backend_reg_count are valid, and the names they return
        // are static NUL-terminated strings owned by ggml.
        unsafe {
            for i in 0..llama_cpp_sys_2::ggml_backend_reg_count() {
                let reg = llama_cpp_sys_2::ggml_backend_reg_get(i);
                let name = cstr_to_string(llama_cpp_sys_2::ggml_backend_reg_name(reg));
                if name.starts_with("RPC") {
                    rpc_used |= llama_cpp_sys_2::ggml_backend_reg_dev_count(reg) > 0;
                } else if name != "CPU" {
                    backends.push(name);
                }
            }
        }
        if rpc_used {
            backends.push("RPC".into());
        }
        DeviceNames {
            cpu_info: describe(&[
                LlamaBackendDeviceType::Cpu,
                LlamaBackendDeviceType::Accelerator,
            ]),
            gpu_info: describe(&[
                LlamaBackendDeviceType::Gpu,
                LlamaBackendDeviceType::IntegratedGpu,
            ]),
            backends: if backends.is_empty() {
                "CPU".into()
            } else {
                backends.join(",")
            },
        }
    }

    /// True when some device other than the CPU is available.
    pub fn has_gpu(&self) -> bool {
        self.backend.supports_gpu_offload()
    }
}

/// How the linked llama.cpp was compiled, as its CMake cache said at build
/// time (`None` when the build script could not read it).
pub fn engine_build() -> Option<inferbench_core::schema::EngineBuild> {
    let build_type = option_env!("INFERBENCH_LLAMA_BUILD_TYPE").filter(|t| !t.is_empty())?;
    let native = option_env!("INFERBENCH_LLAMA_GGML_NATIVE").unwrap_or_default();
    Some(inferbench_core::schema::EngineBuild {
        cmake_build_type: build_type.to_string(),
        c_flags: option_env!("INFERBENCH_LLAMA_C_FLAGS")
            .unwrap_or_default()
            .to_string(),
        cxx_flags: option_env!("INFERBENCH_LLAMA_CXX_FLAGS")
            .unwrap_or_default()
            .to_string(),
        ggml_native: match native.to_ascii_uppercase().as_str() {
            "ON" | "TRUE" | "1" | "YES" => Some(true),
            "OFF" | "FALSE" | "0" | "NO" => Some(false),
            _ => None,
        },
    })
}

/// # Safety
/// `ptr` must be null or point to a NUL-terminated string valid for the call.
pub(super) unsafe fn cstr_to_string(ptr: *const std::os::raw::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// A model validated by inferbench's GGUF reader, then loaded by llama.cpp.
pub struct LoadedModel {
    pub(super) model: LlamaModel,
    /// The model as llama.cpp describes it (`llama_model_desc`), where it
    /// could be read.
    description: Option<String>,
    /// What inferbench's GGUF reader found in the file.
    pub summary: ModelSummary,
    /// The layers asked to be offloaded (`--n-gpu-layers`): negative means
    /// all; 0 for a vocabulary-only load.
    pub gpu_layers_requested: i32,
}

impl LoadedModel {
    /// Validates `path` completely before llama.cpp sees it: llama.cpp may
    /// abort the whole process on a malformed file.
    pub fn load(runtime: &Runtime, path: &Path, gpu_layers: i32) -> Result<Self, EngineError> {
        Self::load_with(runtime, path, gpu_layers, true)
    }

    /// [`load`](Self::load), mapping the file (`mmap`, llama.cpp's
    /// default) or reading it into memory.
    pub fn load_with(
        runtime: &Runtime,
        path: &Path,
        gpu_layers: i32,
        mmap: bool,
    ) -> Result<Self, EngineError> {
        // Negative means "all", as in llama.cpp's own tools.
        let layers = u32::try_from(gpu_layers).unwrap_or(u32::MAX);
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(layers)
            .with_use_mmap(mmap);
        Self::validate_and_load(runtime, path, &params, gpu_layers)
    }

    /// Loads only the vocabulary of `path` (no weights, no compute buffers):
    /// enough to draw the prompts an engine on this model would decode.
    pub fn load_vocab(runtime: &Runtime, path: &Path) -> Result<Self, EngineError> {
        let params = LlamaModelParams::default().with_vocab_only(true);
        Self::validate_and_load(runtime, path, &params, 0)
    }

    fn validate_and_load(
        runtime: &Runtime,
        path: &Path,
        params: &LlamaModelParams,
        gpu_layers_requested: i32,
    ) -> Result<Self, EngineError> {
        let summary = GgufFile::open(path)?.summary()?;
        let model =
            LlamaModel::load_from_file(&runtime.backend, path, params).map_err(|source| {
                EngineError::Load {
                    path: path.to_path_buf(),
                    cause: source,
                }
            })?;
        Ok(LoadedModel {
            description: model_description(&model),
            model,
            summary,
            gpu_layers_requested,
        })
    }

    /// The model as llama.cpp describes it (`llama_model_desc`, e.g.
    /// "gemma3 270M Q4_K - Medium"), as `llama-bench` records its
    /// `model_type`.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The model's parameters (`llama_model_n_params`).
    pub fn parameter_count(&self) -> u64 {
        self.model.n_params()
    }

    /// Bytes of the model's weights as llama.cpp holds them (llama_model_size).
    pub fn weight_bytes(&self) -> u64 {
        self.model.size()
    }

    /// The tokens synthetic prompts are drawn from: every token llama.cpp
    /// marks normal and that does not end generation, and the BOS token
    /// when the model adds one to a prompt.
    pub fn prompt_vocab(&self) -> PromptVocab {
        let vocab = self.model.vocab();
        let ordinary = (0..vocab.n_tokens())
            .filter(|&id| {
                let token = LlamaToken(id);
                vocab.attr(token).contains(LlamaTokenAttr::Normal) && !vocab.is_eog(token)
            })
            .collect();
        let bos = vocab.bos();
        let add_bos = vocab.should_add_bos() && bos.0 >= 0;
        PromptVocab {
            bos: add_bos.then_some(bos.0),
            ordinary,
        }
    }

    /// The context length the model was trained for, in tokens: the longest
    /// context one sequence may have.
    pub fn n_ctx_train(&self) -> u32 {
        self.model.n_ctx_train()
    }

    /// What `--n-gpu-layers -1` offloads: the model's layers and its output layer.
    pub fn offloadable_layers(&self) -> u32 {
        self.model.n_layer() + 1
    }

    /// Layers llama.cpp puts on a GPU: none without one; otherwise the
    /// requested count, capped at the model's layers plus its output layer.
    pub fn gpu_layers_offloaded(&self, runtime: &Runtime) -> u32 {
        if !runtime.has_gpu() {
            return 0;
        }
        let all = self.offloadable_layers();
        u32::try_from(self.gpu_layers_requested).map_or(all, |n| n.min(all))
    }
}
