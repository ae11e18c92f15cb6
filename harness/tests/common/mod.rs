//! What the library tests share.

use inferbench_core::schema::ToolInfo;

/// The tool as a test's result names it.
pub fn tool_info() -> ToolInfo {
    ToolInfo {
        name: "inferbench".into(),
        version: "test".into(),
        git_commit: None,
        git_dirty: None,
        build_profile: "test".into(),
        target: "test".into(),
        target_cpu: None,
        features: Vec::new(),
        rustc: None,
    }
}
