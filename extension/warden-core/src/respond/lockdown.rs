//! Lockdown: predict and prevent. The precursors of an attack (a recon command, a read of a
//! credential source, a burst of errors, a call the policy refused or reported, tampering
//! with Warden) raise the environment's risk, one point per kind and invocation. At the risk
//! `WARDEN_LOCKDOWN` sets, Warden writes what the function is known to do (the destinations
//! and programs it has made habits, see `detect::indicators::Familiar`) into the lockdown page
//! and sets the page's flag: from then on the in-process guard refuses every other egress and
//! exec, in every guarded process, until the environment is recycled. The finding that
//! crossed the threshold says so in its audit trail (docs/responses.md, "Lockdown").
//!
//! The page is created empty at start, before the runtime starts, so that every guarded
//! process maps it when it loads the guard (see crate `warden-policy`).

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where the page goes (the guard looks there): the environment's /tmp.
pub use warden_policy::lockdown::DIR as PAGE_DIR;
use warden_policy::lockdown::{empty_page, file_name, Known, FLAG_OFFSET, LOCKED};

use crate::clock::unix_ms;
use crate::schema::{Action, ActionOutcome, ActionRecord, Finding, Indicator};

/// The indicators that are precursors, each worth one point per invocation.
pub const PRECURSORS: [Indicator; 5] = [
    Indicator::ReconCommand,
    Indicator::CredentialAccess,
    Indicator::ErrorBurst,
    Indicator::PolicyViolation,
    Indicator::Tamper,
];
/// Most precursor sightings named in the audit trail.
const MAX_NAMED: usize = 8;

/// The page file, created at start.
#[derive(Debug)]
pub struct LockdownPage {
    path: PathBuf,
    file: File,
}

impl LockdownPage {
    /// Creates the page for the guard socket `socket_name` in `tmp_dir`, empty and open. A
    /// file already there (left by an earlier process, or planted) is replaced; the new one
    /// is created exclusively, so a planted link is not followed.
    pub fn create(tmp_dir: &Path, socket_name: &str) -> io::Result<LockdownPage> {
        let name = String::from_utf8_lossy(&file_name(socket_name.as_bytes())).into_owned();
        let path = tmp_dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)?;
        file.write_all_at(&empty_page(), 0)?;
        Ok(LockdownPage { path, file })
    }

    /// Where the page is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what is known, then sets the flag: a guard that sees the flag set finds the
    /// table whole.
    fn lock(&self, known: &Known) -> io::Result<()> {
        self.file
            .write_all_at(&known.table_bytes(), Known::table_offset() as u64)?;
        self.file
            .write_all_at(&LOCKED.to_le_bytes(), FLAG_OFFSET as u64)
    }

    /// Whether the flag is set (tests, and the audit trail's honesty).
    pub fn is_locked(&self) -> bool {
        let mut flag = [0u8; 8];
        self.file
            .read_exact_at(&mut flag, FLAG_OFFSET as u64)
            .is_ok()
            && u64::from_le_bytes(flag) == LOCKED
    }
}

/// The environment's risk, and the lockdown once it is reached.
#[derive(Debug)]
pub struct Lockdown {
    threshold: u32,
    dry_run: bool,
    page: Option<LockdownPage>,
    seen: HashSet<(Indicator, String)>,
    named: Vec<String>,
    done: bool,
}

impl Lockdown {
    /// Locks down at risk `threshold` through `page` (`None`: the page could not be created,
    /// and the lockdown is recorded as failed).
    pub fn new(threshold: u32, dry_run: bool, page: Option<LockdownPage>) -> Lockdown {
        Lockdown {
            threshold: threshold.max(1),
            dry_run,
            page,
            seen: HashSet::new(),
            named: Vec::new(),
            done: false,
        }
    }

    /// The risk so far.
    pub fn risk(&self) -> u32 {
        self.seen.len() as u32
    }

    /// Counts `f`'s precursors; when they bring the risk to the threshold, locks the
    /// environment down (`known` says what stays allowed) and returns the audit record for
    /// `f`. Once locked down, nothing more.
    pub fn observe(&mut self, f: &Finding, known: impl FnOnce() -> Known) -> Option<ActionRecord> {
        if self.done {
            return None;
        }
        let invocation = f.request_id.as_deref().unwrap_or("init");
        for indicator in f.indicators.iter().filter(|i| PRECURSORS.contains(i)) {
            if self.seen.insert((*indicator, invocation.to_string()))
                && self.named.len() < MAX_NAMED
            {
                self.named.push(format!(
                    "{} in {}",
                    indicator_name(*indicator),
                    short(invocation)
                ));
            }
        }
        if self.risk() < self.threshold {
            return None;
        }
        self.done = true;
        let known = known();
        let why = format!(
            "risk {} of {} ({})",
            self.risk(),
            self.threshold,
            self.named.join(", ")
        );
        let what = format!(
            "unknown egress and exec refused in every guarded process until the environment is recycled; known: {} destinations, {} programs{}",
            known.destinations(),
            known.programs(),
            if known.left_out() > 0 {
                format!(" ({} habits left out: page full)", known.left_out())
            } else {
                String::new()
            }
        );
        let (outcome, reason) = match &self.page {
            _ if self.dry_run => (
                ActionOutcome::DryRun,
                format!("dry run: {why}; would be: {what}"),
            ),
            None => (
                ActionOutcome::Failed,
                format!("{why}; no lockdown page (the guard cannot be told)"),
            ),
            Some(page) => match page.lock(&known) {
                Ok(()) => (ActionOutcome::Taken, format!("{why}: {what}")),
                Err(e) => (
                    ActionOutcome::Failed,
                    format!("{why}; writing the page: {e}"),
                ),
            },
        };
        Some(ActionRecord {
            action: Action::Lockdown,
            target: None,
            outcome,
            reason,
            time_unix_ms: unix_ms(),
        })
    }
}

fn indicator_name(i: Indicator) -> String {
    serde_json::to_value(i)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The first 8 characters of a request id: enough to tell invocations apart in a sentence.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests;
