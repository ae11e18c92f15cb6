//! Exit statuses, in one place: scripts read them.

/// Bad flags or a bad spec (as clap's own errors).
pub const USAGE: u8 = 2;
/// A run that completed but had failed requests.
pub const REQUESTS_FAILED: u8 = 3;
/// A run stopped by Ctrl-C or SIGTERM (128 + SIGINT), its partial result saved.
pub const INTERRUPTED: u8 = 130;
