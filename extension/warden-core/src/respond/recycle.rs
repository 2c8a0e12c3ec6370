//! Recycling: remove what an attack left behind and make Lambda replace the execution
//! environment, at the least harmful moment.
//!
//! A finding only records a plan here. The plan is carried out (`pipeline::recycle`) when the
//! invocation in flight has ended (its `platform.runtimeDone` has arrived), while Warden still
//! holds its INVOKE event, i.e. before it would wait for the next event: the runtime has
//! already answered, so the response is delivered, and no later invocation is affected.
//! Lambda then sees an extension error, shuts the environment down, and the next invocation
//! initialises a new one (a cold start).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

use super::procs::{kill_tree, targets, Platform, ProcTable, Protected};
use crate::sources::telemetry::subscribe::EXTENSION_ID_HEADER;

/// Extensions API path that reports an error and ends the extension.
pub const EXIT_ERROR_PATH: &str = "/2020-01-01/extension/exit/error";
/// The error type Lambda records for the reset.
pub const ERROR_TYPE: &str = "Extension.WardenRecycle";

/// What a recycle removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Files under the scratch directory that the attack created.
    pub files: BTreeSet<PathBuf>,
    /// Evidence processes (killed with their trees unless protected).
    pub pids: BTreeSet<u32>,
    /// Findings that asked for it.
    pub findings: Vec<String>,
}

/// The recycle plan shared by the responder (which fills it) and `pipeline::recycle` (which
/// carries it out).
#[derive(Debug, Default)]
pub struct RecycleGate {
    plan: Mutex<Option<Plan>>,
    /// The end of an invocation can be seen (telemetry is subscribed).
    holding: AtomicBool,
    extension_id: OnceLock<String>,
}

impl RecycleGate {
    /// Adds to the pending plan.
    pub fn request(&self, plan: Plan) {
        let mut slot = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        let pending = slot.get_or_insert_with(Plan::default);
        pending.files.extend(plan.files);
        pending.pids.extend(plan.pids);
        pending.findings.extend(plan.findings);
    }

    /// Whether a recycle waits to be carried out.
    pub fn pending(&self) -> bool {
        self.plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Takes the pending plan.
    pub fn take(&self) -> Option<Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The lifecycle can hold each INVOKE until the invocation's runtimeDone.
    pub fn set_holding(&self, on: bool) {
        self.holding.store(on, Ordering::SeqCst);
    }

    /// See [`RecycleGate::set_holding`].
    pub fn holding(&self) -> bool {
        self.holding.load(Ordering::SeqCst)
    }

    /// The id from registration, needed for the exit call.
    pub fn set_extension_id(&self, id: &str) {
        let _ = self.extension_id.set(id.to_string());
    }

    /// See [`RecycleGate::set_extension_id`].
    pub fn extension_id(&self) -> Option<&str> {
        self.extension_id.get().map(String::as_str)
    }
}

/// What the clean-up did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Files removed.
    pub removed: Vec<PathBuf>,
    /// Processes killed.
    pub killed: Vec<u32>,
    /// Problems (kept short for one log line).
    pub errors: Vec<String>,
}

/// Removes the plan's files (only plain files or links under `scratch`, never followed) and
/// kills its processes' trees (never a protected one).
pub fn clean(plan: &Plan, scratch: &Path, proc_root: &Path, platform: &Platform) -> Cleaned {
    let mut out = Cleaned::default();
    for file in &plan.files {
        if !inside(file, scratch) {
            out.errors.push(format!(
                "{} is outside {}",
                file.display(),
                scratch.display()
            ));
            continue;
        }
        match std::fs::symlink_metadata(file) {
            Ok(m) if m.is_dir() => out
                .errors
                .push(format!("{} is a directory", file.display())),
            Ok(_) => match std::fs::remove_file(file) {
                Ok(()) => out.removed.push(file.clone()),
                Err(e) => out.errors.push(format!("{}: {e}", file.display())),
            },
            Err(_) => {} // already gone
        }
    }
    let table = ProcTable::read(proc_root);
    let protected = Protected::new(&table, std::process::id(), platform);
    let roots: Vec<u32> = plan.pids.iter().copied().collect();
    for tree in targets(&table, &protected, &roots, None)
        .into_iter()
        .flatten()
    {
        match kill_tree(proc_root, &tree, &protected) {
            Ok(pids) => out.killed.extend(pids),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    out
}

/// `path` is strictly below `dir`, with no `..` on the way.
pub fn inside(path: &Path, dir: &Path) -> bool {
    path != dir
        && path.starts_with(dir)
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// Why the exit call failed.
#[derive(Debug, thiserror::Error)]
pub enum ExitError {
    /// The request could not be built.
    #[error("building the exit request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The API could not be reached.
    #[error("sending the exit request: {0}")]
    Send(#[from] hyper_util::client::legacy::Error),
}

/// The `/extension/exit/error` request.
pub fn exit_request(
    runtime_api: &str,
    extension_id: &str,
    message: &str,
) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let body = serde_json::json!({"errorMessage": message, "errorType": ERROR_TYPE});
    Request::builder()
        .method(Method::POST)
        .uri(format!("http://{runtime_api}{EXIT_ERROR_PATH}"))
        .header(EXTENSION_ID_HEADER, extension_id)
        .header("Lambda-Extension-Function-Error-Type", ERROR_TYPE)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
}

/// Tells Lambda that Warden is ending with an error; returns the HTTP status.
pub async fn report_exit(
    runtime_api: &str,
    extension_id: &str,
    message: &str,
) -> Result<u16, ExitError> {
    let request = exit_request(runtime_api, extension_id, message)?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let response = client.request(request).await?;
    Ok(response.status().as_u16())
}
