//! Carrying out a `recycle` response: when the invocation that asked for it has ended, take
//! its closing reading, remove what the attack left (files, processes), have the pipeline emit
//! the last record and deliver what is queued, then report an extension error so that Lambda
//! replaces the execution environment (docs/responses.md).
//!
//! The lifecycle holds each INVOKE on [`Recycler::hold`] while a recycle policy is set; the
//! decision itself (the plan) is the responder's, in `respond::recycle`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::{Command, SHUTDOWN_MARGIN};
use crate::clock::unix_ms;
use crate::redact::{redact, redact_evidence};
use crate::respond::recycle::{clean, report_exit, Cleaned, Plan};
use crate::respond::Shared;
use crate::schema::ShutdownReason;
use crate::sources::procfs::{CounterSnapshot, ProcReader};
use crate::sources::scratch::ScratchProbe;

/// Yields after a runtimeDone before a held INVOKE looks for a pending recycle.
const SETTLE_YIELDS: usize = 4;
/// Longest a recycle waits for the last record and queued findings to go out.
const RECYCLE_FLUSH: Duration = Duration::from_millis(500);
/// Beyond the flush's own deadline, for the pipeline to answer.
const FLUSH_SLACK: Duration = Duration::from_millis(100);

/// Carries out a pending recycle when an invocation has ended (see `respond::recycle`).
#[derive(Debug)]
pub struct Recycler {
    responses: Shared,
    runtime_api: String,
    tmp_dir: PathBuf,
    proc_root: PathBuf,
    /// Request ids whose `platform.runtimeDone` has arrived, newest last.
    done: watch::Receiver<VecDeque<String>>,
    /// Tells the lifecycle loop to end.
    recycled: Arc<Notify>,
    /// Set once a recycle has begun: the pipeline ending then does not end Warden first.
    recycling: Arc<AtomicBool>,
    /// The pipeline, told to flush before Warden exits.
    commands: mpsc::Sender<Command>,
}

impl Recycler {
    /// Holds INVOKE `request_id` until its runtimeDone (or its deadline), then recycles if
    /// asked to. Without telemetry a pending recycle is carried out at once, at the start of
    /// the next event.
    pub async fn hold(
        self: Arc<Self>,
        request_id: String,
        deadline_ms: u64,
    ) -> Result<(), Infallible> {
        if self.responses.gate.holding() {
            let left = Duration::from_millis(deadline_ms.saturating_sub(unix_ms()));
            let mut done = self.done.clone();
            let ended = done.wait_for(|ids| ids.iter().any(|id| *id == request_id));
            let _ = tokio::time::timeout(left, ended).await;
            // Let the pipeline handle the batch that carried the runtimeDone first.
            for _ in 0..SETTLE_YIELDS {
                tokio::task::yield_now().await;
            }
        }
        if let Some(plan) = self.responses.gate.take() {
            self.recycling.store(true, Ordering::SeqCst);
            // The invocation's closing reading, before the clean-up changes what it reads.
            let snapshot = std::panic::catch_unwind(|| {
                ProcReader::new(&self.proc_root, std::process::id())
                    .snapshot(&ScratchProbe::new(&self.tmp_dir))
            })
            .unwrap_or_default();
            let cleaned = clean(
                &plan,
                &self.tmp_dir,
                &self.proc_root,
                &self.responses.platform,
            );
            self.flush(snapshot).await;
            self.exit(plan, cleaned).await;
            // Never back to /event/next: the lifecycle loop ends the process.
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    /// Has the pipeline emit the last record and deliver what is queued, as at SHUTDOWN
    /// (bounded): the environment ends with Warden's exit.
    async fn flush(&self, snapshot: CounterSnapshot) {
        let (flushed, done) = oneshot::channel();
        let deadline_ms = unix_ms() + (RECYCLE_FLUSH + SHUTDOWN_MARGIN).as_millis() as u64;
        let command = Command::Shutdown {
            reason: ShutdownReason::Recycle,
            deadline_ms,
            snapshot,
            flushed: Some(flushed),
        };
        if self.commands.send(command).await.is_ok() {
            let _ = tokio::time::timeout(RECYCLE_FLUSH + FLUSH_SLACK, done).await;
        }
    }

    async fn exit(&self, plan: Plan, c: Cleaned) {
        // The log line leaves the environment: paths are redacted as evidence is.
        let removed: Vec<String> = c
            .removed
            .iter()
            .map(|p| redact_evidence(&p.to_string_lossy()).text)
            .collect();
        crate::warn!(
            "recycle for {}: removed {:?}, killed {:?}{}; asking Lambda for a new environment",
            plan.findings.join(", "),
            removed,
            c.killed,
            if c.errors.is_empty() {
                String::new()
            } else {
                format!(", problems: {}", redact(&c.errors.join("; ")).text)
            }
        );
        let message = format!(
            "Warden recycles the execution environment after finding(s) {}",
            plan.findings.join(", ")
        );
        match self.responses.gate.extension_id() {
            Some(id) => match report_exit(&self.runtime_api, id, &message).await {
                Ok(status) => crate::debug!("exit/error answered {status}"),
                Err(e) => crate::warn!("reporting the recycle exit failed: {e}"),
            },
            None => crate::warn!("no extension id: exiting without reporting the error"),
        }
        self.recycled.notify_one();
    }
}

impl Recycler {
    /// A recycler for the environment whose Extensions API is at `runtime_api`. `done` lists
    /// the request ids whose `platform.runtimeDone` has arrived; `recycled` is notified when
    /// Warden has reported the exit; `recycling` is set once a recycle has begun; `commands`
    /// reaches the pipeline.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        responses: Shared,
        runtime_api: String,
        tmp_dir: PathBuf,
        proc_root: PathBuf,
        done: watch::Receiver<VecDeque<String>>,
        recycled: Arc<Notify>,
        recycling: Arc<AtomicBool>,
        commands: mpsc::Sender<Command>,
    ) -> Recycler {
        Recycler {
            responses,
            runtime_api,
            tmp_dir,
            proc_root,
            done,
            recycled,
            recycling,
            commands,
        }
    }
}
