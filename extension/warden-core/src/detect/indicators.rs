//! Indicators: behaviour that is suspicious without any statistics. They are fed one
//! observation at a time (the sampler's, in real time) and again from a finished record's
//! evidence, so both paths see the same thing.
//!
//! What the evidence can show: new processes (exe, cmdline, parent), execs, processes left
//! running, programs run from the program directories (however short-lived: named by the
//! file watch, without a command line), new connections and listeners, /tmp file activity.
//! What it cannot: file reads (so reading `/proc/self/environ` is seen only when it
//! appears in a command line), payloads, and the command lines of processes that start and
//! end between two sampler ticks.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use crate::features::{idx, is_mining_port, is_shell};
use crate::redact;
use crate::schema::Class;
use crate::schema::Indicator;
use crate::schema::Observation;

/// Most executables and destinations remembered as familiar.
const MAX_FAMILIAR: usize = 256;
/// Most evidence items kept per indicator.
const MAX_EVIDENCE: usize = 2;
/// Invocations in which a new environment must repeat a program or shell command (and
/// nothing else) before it counts as a habit (see [`Familiar::note_repeated`]).
pub const HABIT_REPEATS: u8 = 3;

impl Indicator {
    /// The class it points to.
    pub fn class(self) -> Class {
        match self {
            Indicator::ShellSpawned | Indicator::UnknownBinary => Class::CommandInjection,
            Indicator::ExecFromTmp => Class::Dropper,
            Indicator::LeftRunning | Indicator::StillRunning => Class::Persistence,
            Indicator::MiningPort => Class::CryptoMining,
            Indicator::ShellWithConnection => Class::ReverseShell,
            Indicator::ListenerOpened => Class::Anomaly,
            Indicator::CredentialAccess => Class::CredentialTheft,
            Indicator::UnknownDestination => Class::ExfiltrationEgress,
            Indicator::ErrorBurst => Class::Probing,
        }
    }

    /// Its weight in the score (0..1). "Unknown" means less before the function's habits
    /// are learned.
    pub fn weight(self, warmed: bool) -> f32 {
        match self {
            Indicator::ShellSpawned => 0.9,
            Indicator::UnknownBinary if warmed => 0.7,
            Indicator::UnknownBinary => 0.25,
            Indicator::ExecFromTmp => 0.95,
            Indicator::LeftRunning | Indicator::StillRunning => 0.85,
            Indicator::MiningPort => 0.8,
            Indicator::ShellWithConnection => 0.95,
            Indicator::ListenerOpened => 0.8,
            Indicator::CredentialAccess => 0.9,
            Indicator::UnknownDestination if warmed => 0.3,
            Indicator::UnknownDestination => 0.15,
            Indicator::ErrorBurst => 0.8,
        }
    }

    /// The vector feature it is explained by.
    pub fn feature(self) -> usize {
        match self {
            Indicator::ShellSpawned => idx::SHELLS,
            Indicator::UnknownBinary | Indicator::CredentialAccess => idx::NEW_PROCESSES,
            Indicator::ExecFromTmp => idx::EXEC_FROM_TMP,
            Indicator::LeftRunning => idx::LEFT_RUNNING,
            Indicator::StillRunning => idx::FOREIGN_PROCESSES,
            Indicator::MiningPort => idx::MINING_PORTS,
            Indicator::ShellWithConnection | Indicator::UnknownDestination => idx::NEW_ENDPOINTS,
            Indicator::ListenerOpened => idx::LISTENERS,
            Indicator::ErrorBurst => idx::STATUS_ERROR,
        }
    }
}

/// What the function is known to run and talk to: learned from invocations that raised
/// nothing, or given (profile, `WARDEN_KNOWN_EXES`).
#[derive(Debug, Clone, Default)]
pub struct Familiar {
    exes: HashSet<String>,
    /// Shell command lines the function runs, as [`command_shape`]s: a shell is familiar
    /// only with a command of a known shape, so text injected into a known command line
    /// still counts as a new shell.
    shell_shapes: HashSet<String>,
    destinations: HashSet<SocketAddr>,
    /// Programs and shell shapes reported but repeated, with their invocation counts.
    repeats: HashMap<String, u8>,
    /// The function runs shells whose command lines could not be read (too short-lived).
    runs_shells: bool,
}

impl Familiar {
    /// A new environment without a profile reports every program and shell command it has
    /// not seen. When an invocation raised nothing but that, its programs and shapes are
    /// counted here, and one repeated in [`HABIT_REPEATS`] invocations becomes familiar: a
    /// function that shells out by design stops being reported after a few invocations,
    /// while each of those (and every command of another shape) was reported. The detector
    /// calls this only during the baseline's warm-up.
    pub fn note_repeated(&mut self, evidence: &[Observation]) {
        let mut keys: Vec<(bool, String)> = Vec::new();
        for obs in evidence {
            let key = match obs {
                Observation::Process {
                    exe,
                    cmdline,
                    alive_at_end: false,
                    ..
                } if is_shell(exe) => (true, command_shape(cmdline)),
                // A shell seen without its command line: "runs shells", shape unknown.
                Observation::Program { exe } if is_shell(exe) => (true, String::new()),
                Observation::Process {
                    exe,
                    alive_at_end: false,
                    ..
                } => (false, exe.clone()),
                Observation::Program { exe } if !is_shell(exe) => (false, exe.clone()),
                _ => continue,
            };
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for (shell, key) in keys {
            if self.repeats.len() >= MAX_FAMILIAR && !self.repeats.contains_key(&key) {
                continue;
            }
            let n = self.repeats.entry(key.clone()).or_default();
            *n = n.saturating_add(1);
            if *n >= HABIT_REPEATS {
                if shell && key.is_empty() {
                    self.runs_shells = true;
                } else if shell {
                    self.add_shell_shape(&key);
                } else {
                    self.add_exe(&key);
                }
            }
        }
    }

    /// Adds an executable (full path, or a base name that matches any directory).
    pub fn add_exe(&mut self, exe: &str) {
        // An unreadable executable is not an identity.
        if !exe.is_empty() && self.exes.len() < MAX_FAMILIAR {
            self.exes.insert(exe.to_string());
        }
    }

    /// Whether `exe` is familiar, by full path or base name.
    pub fn knows_exe(&self, exe: &str) -> bool {
        let base = exe.rsplit('/').next().unwrap_or(exe);
        self.exes.contains(exe) || self.exes.contains(base)
    }

    /// Adds a shell command shape (see [`command_shape`]).
    pub fn add_shell_shape(&mut self, shape: &str) {
        if !shape.is_empty() && self.shell_shapes.len() < MAX_FAMILIAR {
            self.shell_shapes.insert(shape.to_string());
        }
    }

    /// Whether a shell running `cmdline` is familiar: the shell itself was declared known,
    /// or the function runs commands of this shape.
    pub fn knows_shell(&self, exe: &str, cmdline: &str) -> bool {
        // A shell caught while it exits has no command line left: for a function known to
        // run shell commands, nothing says this one is different.
        let unreadable =
            cmdline.trim().is_empty() && (self.runs_shells || !self.shell_shapes.is_empty());
        unreadable || self.knows_exe(exe) || self.shell_shapes.contains(&command_shape(cmdline))
    }

    /// Executables (not shells) known, sorted.
    pub fn exes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.exes.iter().cloned().collect();
        v.sort();
        v
    }

    /// Shell command shapes known, sorted.
    pub fn shell_shapes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.shell_shapes.iter().cloned().collect();
        v.sort();
        v
    }

    /// Whether the destination is familiar.
    pub fn knows_destination(&self, addr: &SocketAddr) -> bool {
        self.destinations.contains(addr)
    }

    /// Learns what an accepted invocation did.
    pub fn learn(&mut self, evidence: &[Observation]) {
        for obs in evidence {
            match obs {
                Observation::Process { exe, cmdline, .. } if is_shell(exe) => {
                    self.add_shell_shape(&command_shape(cmdline))
                }
                Observation::Process { exe, .. } => self.add_exe(exe),
                // A shell's habits are its command shapes, which a program event lacks.
                Observation::Program { exe } if !is_shell(exe) => self.add_exe(exe),
                Observation::Endpoint {
                    addr,
                    listen: false,
                    ..
                } if self.destinations.len() < MAX_FAMILIAR => {
                    self.destinations.insert(*addr);
                }
                _ => {}
            }
        }
    }
}

/// One indicator fired in an invocation, with its (redacted) evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Which.
    pub indicator: Indicator,
    /// Times it matched in the invocation.
    pub count: u32,
    /// The observations that made it fire (redacted), at most two.
    pub evidence: Vec<Observation>,
}

/// Indicator state of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    shell: Option<Observation>,
    unfamiliar_endpoint: Option<Observation>,
    /// Every indicator fired so far, once each, in firing order.
    pub hits: Vec<Hit>,
}

impl Tracker {
    /// Feeds one observation; returns the indicators that fired for the first time.
    pub fn feed(
        &mut self,
        obs: &Observation,
        familiar: &Familiar,
        tmp_prefix: &str,
    ) -> Vec<Indicator> {
        let (clean, credential_hint) = redact::observation(obs);
        let mut fired = Vec::new();
        match obs {
            Observation::Process {
                exe,
                cmdline,
                exec,
                alive_at_end,
                ..
            } => {
                if *alive_at_end {
                    self.hit(Indicator::LeftRunning, &[&clean], &mut fired);
                } else {
                    self.process(
                        exe, cmdline, *exec, &clean, familiar, tmp_prefix, &mut fired,
                    );
                }
                if credential_hint {
                    self.hit(Indicator::CredentialAccess, &[&clean], &mut fired);
                }
            }
            Observation::Endpoint { listen: true, .. } => {
                self.hit(Indicator::ListenerOpened, &[&clean], &mut fired);
            }
            Observation::Endpoint { addr, .. } => {
                if is_mining_port(addr.port()) {
                    self.hit(Indicator::MiningPort, &[&clean], &mut fired);
                }
                if !familiar.knows_destination(addr) {
                    self.hit(Indicator::UnknownDestination, &[&clean], &mut fired);
                    if let Some(shell) = self.shell.clone() {
                        self.hit(
                            Indicator::ShellWithConnection,
                            &[&shell, &clean],
                            &mut fired,
                        );
                    }
                    self.unfamiliar_endpoint.get_or_insert(clean);
                }
            }
            Observation::Program { exe } => {
                // Judged like a process whose command line could not be read: a shell by
                // the function's shell habits, any other program by its familiarity.
                self.process(exe, "", true, &clean, familiar, tmp_prefix, &mut fired);
                if credential_hint {
                    self.hit(Indicator::CredentialAccess, &[&clean], &mut fired);
                }
            }
            Observation::StillRunning { .. } => {
                self.hit(Indicator::StillRunning, &[&clean], &mut fired);
            }
            Observation::TmpFile { .. } => {}
        }
        fired
    }

    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        exe: &str,
        cmdline: &str,
        exec: bool,
        clean: &Observation,
        familiar: &Familiar,
        tmp_prefix: &str,
        fired: &mut Vec<Indicator>,
    ) {
        // A process that was gone before its executable could be read: its command line
        // names it if it was read; with neither, there is nothing to judge.
        let exe = match exe {
            "" => cmdline.split(' ').next().unwrap_or(""),
            named => named,
        };
        if exe.is_empty() {
            return;
        }
        if exe.starts_with(tmp_prefix) || (is_interpreter(exe) && script_in(cmdline, tmp_prefix)) {
            self.hit(Indicator::ExecFromTmp, &[clean], fired);
        }
        if is_shell(exe) {
            if !familiar.knows_shell(exe, cmdline) {
                self.hit(Indicator::ShellSpawned, &[clean], fired);
            }
            if let Some(endpoint) = self.unfamiliar_endpoint.clone() {
                self.hit(Indicator::ShellWithConnection, &[clean, &endpoint], fired);
            }
            self.shell.get_or_insert_with(|| clean.clone());
        } else if !familiar.knows_exe(exe)
            && !exe.starts_with(tmp_prefix)
            && (exec || !is_runtime(exe))
        {
            self.hit(Indicator::UnknownBinary, &[clean], fired);
        }
    }

    fn hit(&mut self, indicator: Indicator, evidence: &[&Observation], fired: &mut Vec<Indicator>) {
        if let Some(h) = self.hits.iter_mut().find(|h| h.indicator == indicator) {
            h.count += 1;
            return;
        }
        self.hits.push(Hit {
            indicator,
            count: 1,
            evidence: evidence
                .iter()
                .take(MAX_EVIDENCE)
                .map(|o| (*o).clone())
                .collect(),
        });
        fired.push(indicator);
    }

    /// Records an indicator that comes from outside the evidence (the detector's history).
    pub fn add(&mut self, indicator: Indicator) {
        self.hit(indicator, &[], &mut Vec::new());
    }

    /// The hit for an indicator, if it fired.
    pub fn get(&self, indicator: Indicator) -> Option<&Hit> {
        self.hits.iter().find(|h| h.indicator == indicator)
    }
}

/// Language runtimes: a new process running one without an exec is the runtime forking
/// itself (multiprocessing, or the moment before it execs a command, which is judged then).
const RUNTIMES: [&str; 8] = [
    "python",
    "node",
    "java",
    "ruby",
    "dotnet",
    "perl",
    "php",
    "bootstrap",
];

fn is_runtime(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    RUNTIMES.iter().any(|r| base.starts_with(r))
}

/// A command line with what varies from call to call taken out: secrets are redacted (as in
/// the records a profile is learned from), every digit becomes `0`, and a word holding a path
/// keeps only its directory (`/tmp/in/a1.bin` → `/tmp/in/*`). Shell operators, options and
/// command names stay, so an appended `; curl …` changes the shape.
pub fn command_shape(cmdline: &str) -> String {
    let redacted = redact::redact(cmdline);
    let cmdline = redacted.text.as_str();
    let mut out = String::with_capacity(cmdline.len().min(256));
    for (n, word) in cmdline.split_ascii_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        let word = match word.rfind('/') {
            // The shell's own path (`/bin/sh` or `/usr/bin/dash`) is the exe's business.
            Some(_) if n == 0 => word.rsplit('/').next().unwrap_or(word),
            Some(i) if i + 1 < word.len() => &word[..=i],
            _ => word,
        };
        for c in word.chars() {
            out.push(if c.is_ascii_digit() { '0' } else { c });
        }
        if word.ends_with('/') && n > 0 {
            out.push('*');
        }
    }
    out
}

/// Programs that run a script named on their command line: shells and language runtimes.
/// Others (`gzip -c /tmp/in.bin`) only read the files they are given.
fn is_interpreter(exe: &str) -> bool {
    const SCRIPTED: [&str; 3] = ["lua", "tclsh", "awk"];
    let base = exe.rsplit('/').next().unwrap_or(exe);
    is_shell(exe) || is_runtime(exe) || SCRIPTED.iter().any(|s| base.starts_with(s))
}

/// An interpreter given a script under the scratch directory: `sh /tmp/x`, `python3 /tmp/x.py`.
fn script_in(cmdline: &str, tmp_prefix: &str) -> bool {
    cmdline
        .split(' ')
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_some_and(|a| a.starts_with(tmp_prefix))
}

#[cfg(test)]
mod tests;
