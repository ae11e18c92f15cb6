use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferbench"));
    // Even with backtraces asked for, a user error must print none.
    cmd.env("RUST_BACKTRACE", "1");
    cmd.env("INFERBENCH_CACHE_DIR", shared_dir().join("cache"));
    cmd
}

/// A directory shared by the tests of this process.
pub fn shared_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// The tiny model, written once per test process.
pub fn tiny_model() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = shared_dir().join("tiny.gguf");
        inferbench_models::write_tiny_model(&path, &inferbench_models::TinySpec::default())
            .expect("tiny model");
        path
    })
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the failure a user should see: the exit code, a message naming
/// `needle`, and no panic.
pub fn assert_clean_failure(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in stderr: {err}");
    assert!(!err.contains("panicked"), "panic in stderr: {err}");
    assert!(
        !err.contains("stack backtrace"),
        "backtrace in stderr: {err}"
    );
}

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("schema file");
    serde_json::from_str(&text).expect("schema is JSON")
}

fn assert_valid(validator: &jsonschema::Validator, what: &str, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} violates the schema:\n{}",
        errors.join("\n")
    );
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::options()
        .build(&schema(name))
        .expect("schema compiles")
}

/// What is wrong with a result file against the committed JSON Schema.
pub fn result_errors(result: &Value) -> Vec<String> {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA
        .get_or_init(|| validator("result.schema.json"))
        .iter_errors(result)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// Validates `result` against the committed JSON Schema.
pub fn assert_valid_result(result: &Value) {
    let errors = result_errors(result);
    assert!(
        errors.is_empty(),
        "result violates the schema:\n{}",
        errors.join("\n")
    );
}

/// What is wrong with `compare --out`'s file against its schema.
pub fn comparison_errors(comparison: &Value) -> Vec<String> {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA
        .get_or_init(|| validator("compare.schema.json"))
        .iter_errors(comparison)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// Validates a `contrast` result file.
pub fn assert_valid_contrast(contrast: &Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| validator("contrast.schema.json"));
    assert_valid(validator, "contrast", contrast);
}

/// Validates an `http --rounds` file.
pub fn assert_valid_rounds(rounds: &Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| validator("rounds.schema.json"));
    assert_valid(validator, "rounds", rounds);
}

/// Validates one line of `--requests-log`.
pub fn assert_valid_requests_log_line(line: &Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| validator("requests-log.schema.json"));
    assert_valid(validator, "requests log line", line);
}

/// Validates `plan --out`'s file.
pub fn assert_valid_plan(plan: &Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| validator("plan.schema.json"));
    assert_valid(validator, "plan", plan);
}

pub fn assert_valid_comparison(comparison: &Value) {
    let errors = comparison_errors(comparison);
    assert!(
        errors.is_empty(),
        "comparison violates the schema:\n{}",
        errors.join("\n")
    );
}

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("read");
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A minimal GGUF v3 file with one metadata key and one tensor of the given
/// ggml type id, its data section `data_len` bytes long.
pub fn handmade_gguf(type_id: u32, elements: u64, data_len: usize) -> Vec<u8> {
    let mut b = Vec::new();
    let string = |b: &mut Vec<u8>, s: &str| {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    };
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata
    string(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    string(&mut b, "llama");
    string(&mut b, "t");
    b.extend(1u32.to_le_bytes());
    b.extend(elements.to_le_bytes());
    b.extend(type_id.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend(std::iter::repeat_n(0u8, data_len));
    b
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("child").id()
    }

    pub fn wait_with_output(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("child")
            .wait_with_output()
            .expect("wait")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
