//! The validated settings of one sandbox run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the function is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// `python -m awslambdaric HANDLER`, as the managed Python runtime does.
    Python,
    /// `bootstrap` in the function directory (custom runtime, e.g. Rust on `lambda_runtime`).
    Provided,
}

/// Everything a run needs, with host paths made absolute.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub layers: Vec<PathBuf>,
    /// (name, host path) of every extension executable, in start order.
    pub extensions: Vec<(String, PathBuf)>,
    pub function: PathBuf,
    pub runtime: RuntimeKind,
    pub handler: String,
    pub memory_mb: u64,
    pub timeout_s: u64,
    /// `None` reads events from stdin.
    pub events: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub function_name: String,
    pub pause_ms: u64,
    pub host_link: bool,
    pub forwards: Vec<u16>,
    pub shares: Vec<PathBuf>,
    pub python: PathBuf,
    pub isolate: bool,
    pub quiet: bool,
}
