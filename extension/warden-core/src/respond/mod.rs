//! Automated responses: a finding plus the policy (`WARDEN_RESPONSE`) become actions, which
//! are taken (or, with `WARDEN_DRY_RUN`, only decided) and recorded in the finding's
//! `actions` before it is written. See docs/responses.md.
//!
//! - `kill` ([`procs`]): the evidence processes and their descendants, at once; never the
//!   runtime, another extension, Warden or their ancestors.
//! - `recycle` ([`recycle`]): a plan (dropped files, leftover processes) carried out by
//!   `pipeline::recycle` when the invocation has ended, followed by an extension error that
//!   makes Lambda replace the environment.
//! - `throttle` ([`throttle`]): reserved concurrency 0, rate-limited, in its own task.

pub mod lockdown;
pub mod procs;
pub mod recycle;
pub mod throttle;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::procs::{kill_tree, targets, ticks_at, Platform, ProcTable, Protected, Tree};
use self::recycle::{Plan, RecycleGate};
use self::throttle::Throttle;
use crate::clock::unix_ms;
use crate::config::{Config, ResponsePolicy};
use crate::health::{Counter, Health};
use crate::redact;
use crate::schema::Action;
use crate::schema::ActionRecord;
use crate::schema::Finding;
use crate::schema::{ActionOutcome, ActionTarget};
use crate::schema::{Observation, TmpAction};
use crate::sources::procfs::reader::ticks_per_sec;

/// What the responder shares with the lifecycle.
#[derive(Debug, Default, Clone)]
pub struct Shared {
    /// The runtime and extensions, captured at the first INVOKE.
    pub platform: Arc<Platform>,
    /// The pending recycle.
    pub gate: Arc<RecycleGate>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Responder {
    policy: ResponsePolicy,
    dry_run: bool,
    proc_root: PathBuf,
    scratch: PathBuf,
    self_pid: u32,
    shared: Shared,
    throttle: Throttle,
    health: Arc<Health>,
}

impl Responder {
    /// The responder the settings ask for; `None` when the policy is alert only.
    pub fn from_config(config: &Config, health: Arc<Health>, shared: &Shared) -> Option<Responder> {
        let o = &config.outputs;
        if o.response.rules.is_empty() {
            return None;
        }
        Some(Responder {
            policy: o.response.clone(),
            dry_run: o.dry_run,
            proc_root: config.proc_root.clone(),
            scratch: config.tmp_dir.clone(),
            self_pid: std::process::id(),
            shared: shared.clone(),
            throttle: Throttle::new(
                &config.lambda.function_name,
                Duration::from_secs(o.throttle_interval_s),
                o.aws.clone(),
                health.clone(),
            ),
            health,
        })
    }

    /// Decides, takes and records the policy's actions for `f` (in `f.actions`).
    pub fn respond(&mut self, f: &mut Finding) {
        for action in self.policy.actions_for(f.severity) {
            let records = match action {
                Action::Kill => self.kill(f),
                Action::Recycle => vec![self.recycle(f)],
                Action::Throttle => vec![self.throttle(f)],
                // Decided by the environment's risk (`lockdown`), never by a severity.
                Action::Lockdown => Vec::new(),
            };
            for r in &records {
                self.count(r);
            }
            f.actions.extend(records);
        }
    }

    fn count(&self, r: &ActionRecord) {
        count_action(&self.health, r);
    }

    fn kill(&mut self, f: &Finding) -> Vec<ActionRecord> {
        let now = unix_ms();
        let evidence = evidence_processes(f);
        if evidence.is_empty() {
            return vec![record(
                Action::Kill,
                None,
                ActionOutcome::Skipped,
                "no process in the evidence",
                now,
            )];
        }
        let table = ProcTable::read(&self.proc_root);
        let protected = Protected::new(&table, self.self_pid, &self.shared.platform);
        let roots: Vec<u32> = evidence.iter().map(|(pid, _)| *pid).collect();
        let not_after = ticks_at(&self.proc_root, f.time_unix_ms, ticks_per_sec());
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        for t in targets(&table, &protected, &roots, not_after) {
            match t {
                Ok(tree) => {
                    let exe = exe_of(&evidence, tree.root);
                    out.push(self.kill_one(&tree, &protected, exe, now));
                }
                Err((pid, why)) => skipped.push(format!("{pid}: {}", why.reason())),
            }
        }
        if out.is_empty() {
            let reason = format!("no target qualifies ({})", skipped.join("; "));
            out.push(record(
                Action::Kill,
                None,
                ActionOutcome::Skipped,
                &reason,
                now,
            ));
        }
        out
    }

    fn kill_one(&self, tree: &Tree, protected: &Protected, exe: String, now: u64) -> ActionRecord {
        let target = Some(ActionTarget::Process {
            pid: tree.root,
            exe: redact::redact_evidence(&exe).text,
            descendants: tree.descendants.clone(),
        });
        if self.dry_run {
            return record(
                Action::Kill,
                target,
                ActionOutcome::DryRun,
                "dry run: process tree not killed",
                now,
            );
        }
        match kill_tree(&self.proc_root, tree, protected) {
            Ok(killed) => {
                let reason = format!("SIGKILL sent to {} process(es)", killed.len());
                record(Action::Kill, target, ActionOutcome::Taken, &reason, now)
            }
            Err(e) => record(
                Action::Kill,
                target,
                ActionOutcome::Failed,
                &e.to_string(),
                now,
            ),
        }
    }

    fn recycle(&mut self, f: &Finding) -> ActionRecord {
        let now = unix_ms();
        let plan = self.recycle_plan(f);
        let target = Some(ActionTarget::Environment {
            // The audit trail is written: redacted, like the evidence.
            files: plan
                .files
                .iter()
                .map(|p| redact::redact_evidence(&p.to_string_lossy()).text)
                .collect(),
            pids: plan.pids.iter().copied().collect(),
        });
        if self.dry_run {
            return record(
                Action::Recycle,
                target,
                ActionOutcome::DryRun,
                "dry run: environment kept",
                now,
            );
        }
        let when = if self.shared.gate.holding() {
            "when this invocation has ended"
        } else {
            "at the next event (no telemetry to see the end of this one)"
        };
        self.shared.gate.request(plan);
        let reason = format!("clean-up and environment reset scheduled {when}");
        record(Action::Recycle, target, ActionOutcome::Taken, &reason, now)
    }

    fn recycle_plan(&self, f: &Finding) -> Plan {
        let mut plan = Plan {
            findings: vec![f.id.clone()],
            ..Plan::default()
        };
        // Raw evidence: a redacted path (a payload under a long random name) names no file.
        for e in &f.raw_evidence {
            match e {
                Observation::TmpFile { path, action, .. } if *action != TmpAction::Deleted => {
                    let p = PathBuf::from(path);
                    if recycle::inside(&p, &self.scratch) {
                        plan.files.insert(p);
                    }
                }
                // An executable opened under the scratch dir (the file watch sees the exec
                // before any tick names the process).
                Observation::Program { exe } => {
                    let p = PathBuf::from(exe);
                    if recycle::inside(&p, &self.scratch) {
                        plan.files.insert(p);
                    }
                }
                Observation::Process {
                    pid, exe, cmdline, ..
                }
                | Observation::StillRunning { pid, exe, cmdline }
                    if *pid != self.self_pid =>
                {
                    plan.pids.insert(*pid);
                    // A payload run from the scratch dir: its binary, or the script given
                    // to an interpreter.
                    let named = std::iter::once(exe.as_str()).chain(cmdline.split_whitespace());
                    for p in named.map(PathBuf::from) {
                        if recycle::inside(&p, &self.scratch) {
                            plan.files.insert(p);
                        }
                    }
                }
                _ => {}
            }
        }
        plan
    }

    fn throttle(&mut self, f: &Finding) -> ActionRecord {
        let now = unix_ms();
        let target = Some(ActionTarget::Function {
            function_name: f.function_name.clone(),
        });
        if self.dry_run {
            let reason = match self.throttle.check(Instant::now()) {
                Ok(()) => "dry run: reserved concurrency not changed".to_string(),
                Err(e) => format!("dry run: would be skipped: {e}"),
            };
            return record(
                Action::Throttle,
                target,
                ActionOutcome::DryRun,
                &reason,
                now,
            );
        }
        match self.throttle.issue(Instant::now()) {
            Ok(()) => record(
                Action::Throttle,
                target,
                ActionOutcome::Taken,
                "requested: PutFunctionConcurrency 0 (result logged when it arrives)",
                now,
            ),
            Err(e @ throttle::ThrottleError::TooSoon(..)) => record(
                Action::Throttle,
                target,
                ActionOutcome::Skipped,
                &e.to_string(),
                now,
            ),
            Err(e) => record(
                Action::Throttle,
                target,
                ActionOutcome::Failed,
                &e.to_string(),
                now,
            ),
        }
    }
}

fn record(
    action: Action,
    target: Option<ActionTarget>,
    outcome: ActionOutcome,
    reason: &str,
    now: u64,
) -> ActionRecord {
    ActionRecord {
        action,
        target,
        outcome,
        reason: reason.to_string(),
        time_unix_ms: now,
    }
}

/// Evidence processes (pid, raw exe), first mention first, without repeats.
fn evidence_processes(f: &Finding) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for e in &f.raw_evidence {
        let (Observation::Process { pid, exe, .. } | Observation::StillRunning { pid, exe, .. }) =
            e
        else {
            continue;
        };
        if !out.iter().any(|(p, _)| p == pid) {
            out.push((*pid, exe.clone()));
        }
    }
    out
}

fn exe_of(evidence: &[(u32, String)], pid: u32) -> String {
    evidence
        .iter()
        .find(|(p, _)| *p == pid)
        .map(|(_, e)| e.clone())
        .unwrap_or_default()
}

/// Counts one audit record in the health counters.
pub(crate) fn count_action(health: &Health, r: &ActionRecord) {
    match r.outcome {
        ActionOutcome::Taken => {
            health.add(Counter::ResponsesTaken, 1);
            health.add(
                match r.action {
                    Action::Kill => Counter::ResponseKill,
                    Action::Recycle => Counter::ResponseRecycle,
                    Action::Throttle => Counter::ResponseThrottle,
                    Action::Lockdown => Counter::ResponseLockdown,
                },
                1,
            );
        }
        ActionOutcome::DryRun => health.add(Counter::ResponsesDryRun, 1),
        ActionOutcome::Failed => health.add(Counter::ResponsesFailed, 1),
        ActionOutcome::Skipped => health.add(Counter::ResponsesSkipped, 1),
    }
}

#[cfg(test)]
mod tests;
