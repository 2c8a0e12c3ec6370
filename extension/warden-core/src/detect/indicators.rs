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

use super::threads::KeptThreads;
use crate::features::{idx, is_mining_port, is_shell};
use crate::redact;
use crate::schema::Class;
use crate::schema::Indicator;
use crate::schema::{EndGauges, ExecHow, Observation, PolicyVerdict};
use crate::words;

/// Most executables and destinations remembered as familiar.
const MAX_FAMILIAR: usize = 256;
/// Most evidence items kept per indicator.
const MAX_EVIDENCE: usize = 2;
/// Invocations in which a new environment must repeat a program, shell command or
/// destination, in at least half its invocations since, before it counts as a habit (see
/// [`Familiar::note_invocation`]).
pub const HABIT_REPEATS: u8 = 3;
/// Invocations after which something seen becomes a habit however sparse it is.
pub const HABIT_ALWAYS: u32 = 8;
/// Consecutive invocations, the first included, that a destination first contacted in the
/// middle of an environment's life must be contacted in to be `beaconing`. A function's own
/// occasional partner (called by one request in three, say) rarely makes such a run right
/// after it first appears; a planted beacon does at every thaw.
pub const BEACON_RUN: u32 = 3;
/// The run that makes a beacon of a destination whose first contact came with or right after
/// a thread the runtime kept (see [`KeptThreads`]): the thread is the plant, the second
/// contact in a row its cadence.
pub const BACKED_BEACON_RUN: u32 = 2;
/// Most candidate habits tracked at once.
const MAX_CANDIDATES: usize = 512;
/// Invocations after which something one quiet invocation taught, and no invocation showed
/// again, is forgotten: one low-score invocation does not make a destination or a program
/// familiar for ever (a C2 contacted once, quietly, is news again when it comes back).
pub const FORGET_AFTER: u64 = 50;

impl Indicator {
    /// The class it points to.
    pub fn class(self) -> Class {
        match self {
            Indicator::ShellSpawned | Indicator::UnknownBinary => Class::CommandInjection,
            Indicator::ExecFromTmp => Class::Dropper,
            Indicator::LeftRunning | Indicator::StillRunning => Class::Persistence,
            Indicator::MiningPort => Class::CryptoMining,
            // A shell and a connection in one invocation say "injected command that talks
            // out"; only a shell wired to the socket is a reverse shell.
            Indicator::ShellWithConnection | Indicator::ReconCommand => Class::CommandInjection,
            Indicator::ShellOverSocket => Class::ReverseShell,
            Indicator::ReturningDestination | Indicator::Beaconing | Indicator::RuntimePatched => {
                Class::Persistence
            }
            Indicator::ListenerOpened => Class::Anomaly,
            Indicator::CredentialAccess | Indicator::CredentialsSent => Class::CredentialTheft,
            Indicator::BurnedToTimeout => Class::DenialOfWallet,
            Indicator::OversizedResponse => Class::ExfiltrationResponse,
            Indicator::UnknownDestination => Class::ExfiltrationEgress,
            Indicator::ErrorBurst => Class::Probing,
            Indicator::Tamper => Class::Tamper,
            Indicator::ExecFromMemory => Class::Dropper,
            // Named by what was refused (see `detector::weighted`).
            Indicator::PolicyViolation => Class::Anomaly,
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
            Indicator::ShellOverSocket => 0.97,
            Indicator::ReconCommand => 0.9,
            Indicator::ReturningDestination => 0.85,
            // Above the alert threshold on its own, and above an unknown destination's
            // weight so that the class follows the cadence.
            Indicator::Beaconing => 0.7,
            Indicator::Tamper => 0.9,
            Indicator::ExecFromMemory => 0.95,
            Indicator::PolicyViolation => 0.9,
            // Above every other indicator an attack that sends credentials also fires (a
            // shell, a new destination), so that the class follows what was taken.
            Indicator::CredentialsSent => 0.99,
            // Above the threshold on its own, below what names another class that burns CPU
            // (a mining port).
            Indicator::BurnedToTimeout => 0.6,
            // Above the threshold on its own: the response is the whole of the attack.
            Indicator::OversizedResponse => 0.6,
            // Above the threshold on its own: nothing else shows the plant.
            Indicator::RuntimePatched => 0.85,
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
            Indicator::ShellOverSocket => idx::SHELLS,
            Indicator::ReconCommand => idx::NEW_PROCESSES,
            Indicator::ReturningDestination | Indicator::Beaconing => idx::NEW_ENDPOINTS,
            // No feature counts tampering; the evidence names it.
            Indicator::Tamper => idx::STATUS_ERROR,
            Indicator::ExecFromMemory => idx::EXEC_FROM_TMP,
            Indicator::PolicyViolation => idx::NEW_ENDPOINTS,
            Indicator::CredentialsSent => idx::NET_TX,
            Indicator::BurnedToTimeout => idx::CPU_MS,
            Indicator::OversizedResponse => idx::PRODUCED,
            // Code left behind to run later, like a process left running; no feature counts
            // it, so the explanation names the indicator itself (see
            // [`Indicator::unfeatured`]).
            Indicator::RuntimePatched => idx::LEFT_RUNNING,
        }
    }

    /// The name an explanation gives it when no feature of the vector shows it: its credit
    /// goes to [`Indicator::feature`] for the score, but the invocation did not move that
    /// feature (docs/findings.md, "Explanation").
    pub fn unfeatured(self) -> Option<&'static str> {
        match self {
            Indicator::RuntimePatched => Some("runtime_patched"),
            _ => None,
        }
    }
}

/// What the function is known to run and talk to: learned from invocations that raised
/// nothing, from habits (see [`Familiar::note_invocation`]), or given (profile,
/// `WARDEN_KNOWN_EXES`).
#[derive(Debug, Clone, Default)]
pub struct Familiar {
    exes: HashSet<String>,
    /// Shell command lines the function runs, as [`command_shape`]s: a shell is familiar
    /// only with a command of a known shape, so text injected into a known command line
    /// still counts as a new shell.
    shell_shapes: HashSet<String>,
    destinations: HashSet<SocketAddr>,
    /// Functions of the language runtime the function replaces (at init, or habitually).
    patched: HashSet<String>,
    /// Programs, shell shapes and destinations seen but not yet habits.
    candidates: HashMap<Habit, Candidate>,
    /// What invocations with a hard indicator did: never learned.
    tainted: HashSet<Habit>,
    /// The class of the finding that tainted a destination: what a later contact to it most
    /// likely is (the attack again, or what it left behind).
    taint_classes: HashMap<SocketAddr, Class>,
    /// Invocations noted so far.
    invocations: u64,
    /// Taught at once by one quiet invocation ([`Familiar::learn`]) and seen in no other
    /// since: habit → the invocation that taught it. Forgotten after [`FORGET_AFTER`].
    taught_once: HashMap<Habit, u64>,
    /// The function runs shells whose command lines could not be read (too short-lived).
    runs_shells: bool,
    /// Threads the runtime keeps between invocations, and when that rose.
    kept_threads: KeptThreads,
    /// The request id of the invocation last noted ([`Familiar::note_threads_kept`]).
    last_request: Option<String>,
}

/// One thing a function may do again and again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Habit {
    /// A program, by executable path.
    Program(String),
    /// A shell command, by [`command_shape`]; empty when the command line was not seen.
    Shell(String),
    /// A remote address and port.
    Destination(SocketAddr),
    /// A function of the language runtime the function replaces, by name (`console.log`):
    /// some code patches lazily or per request.
    Patched(String),
}

/// A destination that appeared in the middle of an environment's life and has been
/// contacted in every invocation since: a function's own partners show from its first
/// invocation (or come and go with its requests), while a planted beacon starts late and
/// then calls out at every thaw. Such a destination is learned only after
/// [`HABIT_ALWAYS`] invocations, not [`HABIT_REPEATS`], and each one meanwhile is
/// `beaconing` (docs/detection.md, "Habits").
fn beacon_like(habit: &Habit, c: &Candidate, now: u64) -> bool {
    matches!(habit, Habit::Destination(_)) && c.first > 1 && u64::from(c.seen) == now - c.first + 1
}

/// How often a candidate habit has been seen.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Invocations it was seen in.
    seen: u32,
    /// The environment's invocation number when it was first seen.
    first: u64,
}

impl Habit {
    /// The habits an invocation's evidence shows (each once).
    pub fn of(evidence: &[Observation]) -> Vec<Habit> {
        let mut out: Vec<Habit> = Vec::new();
        for obs in evidence {
            let habit = match obs {
                Observation::Process {
                    exe,
                    cmdline,
                    alive_at_end: false,
                    ..
                } if is_shell(exe) => Habit::Shell(command_shape(cmdline)),
                // A shell seen without its command line: "runs shells", shape unknown.
                Observation::Program { exe } if is_shell(exe) => Habit::Shell(String::new()),
                Observation::Process {
                    exe,
                    alive_at_end: false,
                    ..
                } if !exe.is_empty() => Habit::Program(exe.clone()),
                Observation::Program { exe } => Habit::Program(exe.clone()),
                Observation::Endpoint {
                    addr,
                    listen: false,
                    ..
                }
                | Observation::Connect { addr, .. }
                | Observation::Send { addr, .. } => Habit::Destination(*addr),
                Observation::Exec { target, argv, .. } if is_shell(target) => {
                    Habit::Shell(command_shape(argv))
                }
                Observation::Exec { target, .. } if !target.is_empty() => {
                    Habit::Program(target.clone())
                }
                Observation::Patched { name, .. } => Habit::Patched(name.clone()),
                _ => continue,
            };
            if !out.contains(&habit) {
                out.push(habit);
            }
        }
        out
    }
}

impl Familiar {
    /// Notes one scored invocation's habits, whatever its score: the rule that lets a new
    /// environment learn a function that shells out (or forks helpers, or calls a partner)
    /// by design, while it is still reporting it (docs/detection.md, "Habits").
    ///
    /// - An invocation with a hard indicator teaches nothing. What the hard indicators point
    ///   at (`hard_evidence`), and the destinations it contacted that were neither familiar
    ///   nor seen in an ordinary invocation before, are tainted: never learned, and a tainted
    ///   destination contacted again is itself an indicator.
    /// - Otherwise each program, shell shape and destination it shows counts once. One seen
    ///   in [`HABIT_REPEATS`] invocations, in at least half of the environment's invocations
    ///   since it first appeared, becomes familiar; so does one seen in [`HABIT_ALWAYS`]
    ///   invocations however sparse. An attack repeated now and then among ordinary
    ///   invocations stays below the share, and each repeat is reported.
    pub fn note_invocation(&mut self, evidence: &[Observation], hard_evidence: &[Observation]) {
        self.invocations += 1;
        let now = self.invocations;
        let hard = !hard_evidence.is_empty();
        let named = Habit::of(hard_evidence);
        self.forget_stale(now);
        for habit in Habit::of(evidence) {
            if hard {
                // Something one quiet invocation taught, back with an attack, is trusted no
                // more: forgotten, to be learned again only by repetition. It is tainted only
                // when the attack's hard evidence names it: the function's own partner, called
                // as usual by an invocation an attack ran in, must not be reported for ever.
                let taught_once = self.taught_once.remove(&habit).is_some();
                if taught_once {
                    self.forget(&habit);
                }
                let new_destination = matches!(habit, Habit::Destination(_))
                    && !taught_once
                    && !self.knows(&habit)
                    && !self.candidates.contains_key(&habit);
                if (named.contains(&habit) || new_destination) && self.tainted.len() < MAX_FAMILIAR
                {
                    self.candidates.remove(&habit);
                    self.tainted.insert(habit);
                }
                continue;
            }
            // Seen again: no longer something one invocation taught.
            self.taught_once.remove(&habit);
            // A destination learned at once from a quiet invocation keeps its count while it
            // is a candidate: its cadence is what tells a beacon.
            if self.tainted.contains(&habit)
                || (self.knows(&habit) && !self.candidates.contains_key(&habit))
            {
                continue;
            }
            if self.candidates.len() >= MAX_CANDIDATES && !self.candidates.contains_key(&habit) {
                continue;
            }
            let c = self.candidates.entry(habit.clone()).or_insert(Candidate {
                seen: 0,
                first: now,
            });
            c.seen += 1;
            let span = now - c.first + 1;
            let habitual = c.seen >= u32::from(HABIT_REPEATS)
                && u64::from(c.seen) * 2 >= span
                && !beacon_like(&habit, c, now);
            if habitual || c.seen >= HABIT_ALWAYS {
                self.candidates.remove(&habit);
                self.add(&habit);
            }
        }
        self.note_thaw_contacts(evidence);
    }

    /// Forgets what one quiet invocation taught more than [`FORGET_AFTER`] invocations ago
    /// and nothing showed since. Its count as a candidate stays: what keeps coming back,
    /// however rarely, still becomes a habit after [`HABIT_ALWAYS`] sightings.
    fn forget_stale(&mut self, now: u64) {
        if self.taught_once.is_empty() {
            return;
        }
        let stale: Vec<Habit> = self
            .taught_once
            .iter()
            .filter(|(_, &at)| now.saturating_sub(at) > FORGET_AFTER)
            .map(|(h, _)| h.clone())
            .collect();
        for habit in stale {
            self.taught_once.remove(&habit);
            self.forget(&habit);
        }
    }

    fn forget(&mut self, habit: &Habit) {
        match habit {
            Habit::Program(exe) => {
                self.exes.remove(exe);
            }
            Habit::Shell(shape) => {
                self.shell_shapes.remove(shape);
            }
            Habit::Destination(addr) => {
                self.destinations.remove(addr);
            }
            Habit::Patched(name) => {
                self.patched.remove(name);
            }
        }
    }

    /// Whether a habit is already familiar.
    pub fn knows(&self, habit: &Habit) -> bool {
        match habit {
            Habit::Program(exe) => self.knows_exe(exe),
            Habit::Shell(shape) if shape.is_empty() => self.runs_shells,
            Habit::Shell(shape) => self.shell_shapes.contains(shape),
            Habit::Destination(addr) => self.destinations.contains(addr),
            Habit::Patched(name) => self.patched.contains(name),
        }
    }

    /// Whether a habit is still being counted (not yet familiar, or learned at once from a
    /// quiet invocation and still watched for a beacon's cadence).
    pub fn is_candidate(&self, habit: &Habit) -> bool {
        self.candidates.contains_key(habit)
    }

    /// Whether contacting `addr` now makes a beacon's cadence: it was first contacted after
    /// the environment's first invocation, in every invocation since, and this is the
    /// [`BEACON_RUN`]th in a row or later (see [`beacon_like`]); it has not become a habit
    /// meanwhile.
    pub fn is_beaconing(&self, addr: &SocketAddr) -> bool {
        let habit = Habit::Destination(*addr);
        let Some(c) = self.candidates.get(&habit) else {
            return false;
        };
        // A thread kept from just before the first contact is the plant: a shorter run tells
        // its cadence (see [`KeptThreads::backs`]).
        let backed = self.kept_threads.backs(c.first);
        let run = if backed {
            BACKED_BEACON_RUN
        } else {
            BEACON_RUN
        };
        // Seen in every invocation up to the last one; this one is the next.
        c.first > 1 && c.seen + 1 >= run && u64::from(c.seen) == self.invocations - c.first + 1
    }

    /// Notes the threads kept at the end of the invocation just noted
    /// ([`Familiar::note_invocation`]).
    pub fn note_threads_kept(&mut self, request_id: Option<&str>, gauges: &EndGauges) {
        self.kept_threads.note(self.invocations, request_id, gauges);
        self.last_request = request_id.map(str::to_string);
    }

    /// Notes the destinations the invocation just noted ([`Familiar::note_invocation`])
    /// contacted for the first time as the environment thawed, before it started: the
    /// invocation before left something to call them (see [`KeptThreads::note_plant`]).
    fn note_thaw_contacts(&mut self, evidence: &[Observation]) {
        let now = self.invocations;
        let first_at_thaw = evidence.iter().any(|obs| {
            matches!(obs, Observation::Connect { addr, at_thaw: true, .. }
                if self
                    .candidates
                    .get(&Habit::Destination(*addr))
                    .is_some_and(|c| c.first == now && c.seen == 1))
        });
        if let (true, Some(before)) = (first_at_thaw, self.last_request.as_deref()) {
            self.kept_threads.note_plant(now - 1, before);
        }
    }

    /// The invocation whose kept thread came right before `addr`'s first contact (see
    /// [`KeptThreads`]), unless it is `current`; named once.
    pub fn take_thread_rise_before(
        &mut self,
        addr: &SocketAddr,
        current: Option<&str>,
    ) -> Option<String> {
        let first = self.candidates.get(&Habit::Destination(*addr))?.first;
        self.kept_threads.take_request(first - 1, current)
    }

    /// Whether an invocation with a hard indicator contacted this destination.
    pub fn is_tainted_destination(&self, addr: &SocketAddr) -> bool {
        self.tainted.contains(&Habit::Destination(*addr))
    }

    /// Names the tainted destinations of `evidence` that have no class yet with `class`, the
    /// class of the finding their invocation made (see [`Familiar::note_invocation`]).
    pub fn name_taints(&mut self, evidence: &[Observation], class: Class) {
        if matches!(class, Class::Anomaly | Class::Probing | Class::Tamper) {
            return;
        }
        for habit in Habit::of(evidence) {
            if let Habit::Destination(addr) = habit {
                if self.tainted.contains(&habit) && self.taint_classes.len() < MAX_FAMILIAR {
                    self.taint_classes.entry(addr).or_insert(class);
                }
            }
        }
    }

    /// The class of the finding that tainted `addr`, if it had one.
    pub fn taint_class(&self, addr: &SocketAddr) -> Option<Class> {
        self.taint_classes.get(addr).copied()
    }

    fn add(&mut self, habit: &Habit) {
        match habit {
            Habit::Program(exe) => self.add_exe(exe),
            Habit::Shell(shape) if shape.is_empty() => self.runs_shells = true,
            Habit::Shell(shape) => self.add_shell_shape(shape),
            Habit::Destination(addr) => {
                if self.destinations.len() < MAX_FAMILIAR {
                    self.destinations.insert(*addr);
                }
            }
            Habit::Patched(name) => {
                if self.patched.len() < MAX_FAMILIAR {
                    self.patched.insert(name.clone());
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
        let base = words::base_name(exe);
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
        let unreadable = cmdline.trim().is_empty() && self.runs_shells();
        unreadable
            || self.knows_exe(exe)
            || self.shell_shapes.contains(&command_shape(cmdline))
            || self.runs_only_known_programs(cmdline)
    }

    /// A function that runs shell commands by habit, running one whose every command is a
    /// program it runs by habit: a variant of its own work whose shape had too few readings to
    /// be learned (a short shell is caught with its command line now and then). What such a
    /// command may also do is judged on its own: recon commands, /tmp, sockets, destinations.
    fn runs_only_known_programs(&self, cmdline: &str) -> bool {
        if !self.runs_shells() {
            return false;
        }
        let programs = command_programs(cmdline);
        !programs.is_empty()
            && programs
                .iter()
                .all(|p| !is_shell(p) && self.knows_program_named(p))
    }

    /// Whether a program the function runs by habit is called `name` as a command line calls
    /// it: a path, or a base name found on the `PATH`.
    fn knows_program_named(&self, name: &str) -> bool {
        if name.contains('/') {
            return self.exes.contains(name);
        }
        self.exes.iter().any(|e| words::base_name(e) == name)
    }

    /// Executables (not shells) known, sorted.
    pub fn exes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.exes.iter().cloned().collect();
        v.sort();
        v
    }

    /// Destinations known, sorted.
    pub fn destinations(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.destinations.iter().copied().collect();
        v.sort();
        v
    }

    /// Whether the function runs shell commands by habit (of known shapes, or unreadable).
    pub fn runs_shells(&self) -> bool {
        self.runs_shells || !self.shell_shapes.is_empty()
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

    /// Learns what an accepted invocation did. What only this invocation showed is taught
    /// provisionally: forgotten unless another invocation shows it within [`FORGET_AFTER`]
    /// (see [`Familiar::note_invocation`]).
    pub fn learn(&mut self, evidence: &[Observation]) {
        for obs in evidence {
            let habit = Habit::of(std::slice::from_ref(obs)).into_iter().next();
            if habit.as_ref().is_some_and(|h| self.tainted.contains(h)) {
                continue;
            }
            if let Some(h) = habit.filter(|h| self.taught_once_now(h)) {
                if self.taught_once.len() < MAX_CANDIDATES {
                    self.taught_once.insert(h, self.invocations);
                }
            }
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
                }
                | Observation::Connect { addr, .. }
                | Observation::Send { addr, .. }
                    if self.destinations.len() < MAX_FAMILIAR =>
                {
                    self.destinations.insert(*addr);
                }
                Observation::Exec { target, argv, .. } if is_shell(target) => {
                    self.add_shell_shape(&command_shape(argv))
                }
                Observation::Exec { target, .. } => self.add_exe(target),
                Observation::Patched { name, .. } => self.add(&Habit::Patched(name.clone())),
                _ => {}
            }
        }
    }
}

impl Familiar {
    /// Whether learning `habit` now would teach it from this invocation alone: it is not
    /// familiar yet, and no other invocation showed it (as a candidate seen more than once).
    fn taught_once_now(&self, habit: &Habit) -> bool {
        let once = self.candidates.get(habit).is_none_or(|c| c.seen <= 1);
        !self.knows(habit) && once && !matches!(habit, Habit::Shell(shape) if shape.is_empty())
    }
}

/// One indicator fired in an invocation, with its evidence (as observed: the detector writes
/// redacted copies into findings and keeps these for the responders).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Which.
    pub indicator: Indicator,
    /// Times it matched in the invocation.
    pub count: u32,
    /// The observations that made it fire (raw), at most two.
    pub evidence: Vec<Observation>,
}

/// Indicator state of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    shell: Option<Observation>,
    /// Processes of the invocation that list processes without printing environments
    /// (see [`lists_processes_quietly`]), by pid.
    listers: Vec<u32>,
    unfamiliar_endpoint: Option<Observation>,
    /// Every indicator fired so far, once each, in firing order.
    pub hits: Vec<Hit>,
    /// The class of the finding that tainted the first returning destination, if known.
    pub returning_class: Option<Class>,
}

impl Tracker {
    /// Notes the processes of `evidence` that list processes quietly, so that their reads of
    /// other processes' environments are judged as such whatever the evidence's order.
    pub fn note_listers(&mut self, evidence: &[Observation]) {
        for obs in evidence {
            self.note_lister(obs);
        }
    }

    fn note_lister(&mut self, obs: &Observation) {
        let (pid, exe, argv) = match obs {
            Observation::Process {
                pid, exe, cmdline, ..
            } => (*pid, exe.as_str(), cmdline.as_str()),
            Observation::Exec {
                pid,
                path,
                target,
                argv,
                ..
            } => {
                let exe = if target.is_empty() { path } else { target };
                (*pid, exe.as_str(), argv.as_str())
            }
            Observation::CredentialRead {
                pid,
                reader: Some(r),
                ..
            } => (*pid, r.exe.as_str(), r.argv.as_str()),
            _ => return,
        };
        if self.listers.len() < MAX_LISTERS
            && !self.listers.contains(&pid)
            && lists_processes_quietly(exe, argv)
        {
            self.listers.push(pid);
        }
    }

    /// Feeds one observation; returns the indicators that fired for the first time.
    pub fn feed(
        &mut self,
        obs: &Observation,
        familiar: &Familiar,
        tmp_prefix: &str,
    ) -> Vec<Indicator> {
        self.note_lister(obs);
        let credential_hint = redact::observation(obs).1;
        let clean = obs.clone();
        let mut fired = Vec::new();
        match obs {
            Observation::Process {
                exe,
                cmdline,
                exec,
                alive_at_end,
                stdio_socket,
                runtime_fork,
                ..
            } => {
                if *alive_at_end && !calls_runtime_api(cmdline) {
                    self.hit(Indicator::LeftRunning, &[&clean], &mut fired);
                } else if !*alive_at_end {
                    let origin = Origin {
                        exec: *exec,
                        runtime_fork: *runtime_fork,
                    };
                    self.process(
                        exe, cmdline, origin, &clean, familiar, tmp_prefix, &mut fired,
                    );
                }
                if (*stdio_socket && is_interpreter(exe)) || wires_socket(cmdline) {
                    self.hit(Indicator::ShellOverSocket, &[&clean], &mut fired);
                }
                if credential_hint || reads_environment(exe, cmdline) {
                    self.hit(Indicator::CredentialAccess, &[&clean], &mut fired);
                }
            }
            Observation::Endpoint { listen: true, .. } => {
                self.hit(Indicator::ListenerOpened, &[&clean], &mut fired);
            }
            Observation::Endpoint { addr, .. } => {
                self.destination(addr, &clean, familiar, &mut fired);
            }
            Observation::Connect { addr, verdict, .. }
            | Observation::Send { addr, verdict, .. } => {
                self.destination(addr, &clean, familiar, &mut fired);
                self.policy(*verdict, &clean, &mut fired);
            }
            Observation::Exec {
                path,
                target,
                how,
                argv,
                verdict,
                ..
            } => {
                let exe = if target.is_empty() { path } else { target };
                if matches!(how, ExecHow::Memfd | ExecHow::Deleted) {
                    self.hit(Indicator::ExecFromMemory, &[&clean], &mut fired);
                }
                let origin = Origin {
                    exec: true,
                    runtime_fork: false,
                };
                self.process(exe, argv, origin, &clean, familiar, tmp_prefix, &mut fired);
                if wires_socket(argv) {
                    self.hit(Indicator::ShellOverSocket, &[&clean], &mut fired);
                }
                if credential_hint || reads_environment(exe, argv) {
                    self.hit(Indicator::CredentialAccess, &[&clean], &mut fired);
                }
                self.policy(*verdict, &clean, &mut fired);
            }
            Observation::SecretSent { verdict, .. } => {
                // Its destination is judged by the connect that opened the socket (or, for
                // the function's response, is the Runtime API).
                self.hit(Indicator::CredentialsSent, &[&clean], &mut fired);
                self.policy(*verdict, &clean, &mut fired);
            }
            Observation::CredentialRead {
                pid,
                path,
                reader,
                verdict,
            } => {
                // `ps` reads every process's environment as it lists them: reconnaissance,
                // not a credential read, unless asked to print them. Who reads is known
                // from its exec, or from its guard's hello when its parent ran unguarded.
                let lister = self.listers.contains(pid)
                    || reader
                        .as_ref()
                        .is_some_and(|r| lists_processes_quietly(&r.exe, &r.argv));
                let listing = lister && is_process_environ(path);
                let indicator = if listing {
                    Indicator::ReconCommand
                } else {
                    Indicator::CredentialAccess
                };
                self.hit(indicator, &[&clean], &mut fired);
                self.policy(*verdict, &clean, &mut fired);
            }
            Observation::FileWrite { verdict, .. } => {
                self.policy(*verdict, &clean, &mut fired);
            }
            Observation::Signal { verdict, .. } => {
                // Aimed at Warden, it comes with a `Tamper` observation; otherwise evidence.
                self.policy(*verdict, &clean, &mut fired);
            }
            Observation::Program { exe } => {
                // Judged like a process whose command line could not be read: a shell by
                // the function's shell habits, any other program by its familiarity.
                let origin = Origin {
                    exec: true,
                    runtime_fork: false,
                };
                self.process(exe, "", origin, &clean, familiar, tmp_prefix, &mut fired);
                if credential_hint {
                    self.hit(Indicator::CredentialAccess, &[&clean], &mut fired);
                }
            }
            Observation::Patched { name, .. } => {
                if !familiar.knows(&Habit::Patched(name.clone())) {
                    self.hit(Indicator::RuntimePatched, &[&clean], &mut fired);
                }
            }
            Observation::StillRunning { .. } => {
                self.hit(Indicator::StillRunning, &[&clean], &mut fired);
            }
            Observation::TmpFile { .. } => {}
            Observation::Tamper { .. } => {
                self.hit(Indicator::Tamper, &[&clean], &mut fired);
            }
        }
        fired
    }

    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        exe: &str,
        cmdline: &str,
        origin: Origin,
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
        if is_recon(exe, cmdline) {
            self.hit(Indicator::ReconCommand, &[clean], fired);
        }
        if is_shell(exe) {
            if origin.runtime_fork && !origin.exec {
                // A shell runtime's own subshell (`$(…)`), before it runs anything.
                return;
            }
            // A shell command of a shape the function runs talks to whom its arguments say
            // (a URL whose host resolves anew): only a new shell with a new destination is
            // an injected command that talks out.
            if familiar.knows_shell(exe, cmdline) {
                return;
            }
            self.hit(Indicator::ShellSpawned, &[clean], fired);
            if let Some(endpoint) = self.unfamiliar_endpoint.clone() {
                self.hit(Indicator::ShellWithConnection, &[clean, &endpoint], fired);
            }
            self.shell.get_or_insert_with(|| clean.clone());
        } else if !familiar.knows_exe(exe)
            && !exe.starts_with(tmp_prefix)
            && (origin.exec || !origin.runtime_fork)
        {
            self.hit(Indicator::UnknownBinary, &[clean], fired);
        }
    }

    /// A connection or datagram to `addr`, seen by the sampler or the guard.
    fn destination(
        &mut self,
        addr: &SocketAddr,
        clean: &Observation,
        familiar: &Familiar,
        fired: &mut Vec<Indicator>,
    ) {
        if is_mining_port(addr.port()) {
            self.hit(Indicator::MiningPort, &[clean], fired);
        }
        if familiar.is_tainted_destination(addr) {
            self.hit(Indicator::ReturningDestination, &[clean], fired);
            if let Some(class) = familiar.taint_class(addr) {
                self.returning_class.get_or_insert(class);
            }
        } else if familiar.is_beaconing(addr) {
            self.hit(Indicator::Beaconing, &[clean], fired);
        }
        if !familiar.knows_destination(addr) {
            self.hit(Indicator::UnknownDestination, &[clean], fired);
            if let Some(shell) = self.shell.clone() {
                self.hit(Indicator::ShellWithConnection, &[&shell, clean], fired);
            }
            self.unfamiliar_endpoint
                .get_or_insert_with(|| clean.clone());
        }
    }

    /// A call the zero-trust policy forbids, reported or refused by the guard.
    fn policy(&mut self, verdict: PolicyVerdict, clean: &Observation, fired: &mut Vec<Indicator>) {
        if !verdict.is_allow() {
            self.hit(Indicator::PolicyViolation, &[clean], fired);
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

/// How a process came to be, as the sampler saw it.
#[derive(Debug, Clone, Copy)]
struct Origin {
    /// It was seen changing its executable.
    exec: bool,
    /// A fork of the runtime by lineage (multiprocessing, or the moment before it execs a
    /// command, which is judged then).
    runtime_fork: bool,
}

/// Language runtimes that run a script named on their command line. A name says what a
/// program can do, never whose it is: trust comes from lineage (`runtime_fork`).
const LANGUAGE_RUNTIMES: [&str; 7] = ["python", "node", "java", "ruby", "dotnet", "perl", "php"];

fn is_language_runtime(exe: &str) -> bool {
    let base = words::base_name(exe);
    LANGUAGE_RUNTIMES.iter().any(|r| base.starts_with(r))
}

/// A command line with what varies from call to call taken out: secrets are redacted (as in
/// the records a profile is learned from), every run of digits becomes one `0`, and a word
/// holding a path keeps only its directory (`/tmp/in/a1.bin` → `/tmp/in/*`). Shell operators,
/// options and command names stay, so an appended `; curl …` changes the shape.
pub fn command_shape(cmdline: &str) -> String {
    let redacted = redact::redact_evidence(cmdline);
    let cmdline = redacted.text.as_str();
    let mut out = String::with_capacity(cmdline.len().min(256));
    for (n, word) in cmdline.split_ascii_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        // A URL keeps its scheme and host: the path is the argument that varies.
        let url = if n > 0 { url_origin(word) } else { None };
        let word = match word.rfind('/') {
            _ if url.is_some() => url.unwrap_or(word),
            // The shell's own path (`/bin/sh` or `/usr/bin/dash`) is the exe's business.
            Some(_) if n == 0 => words::base_name(word),
            Some(i) if i + 1 < word.len() => &word[..=i],
            _ => word,
        };
        // A run of digits is one `0`: sizes, ports and addresses vary in length too.
        let mut digits = false;
        for c in word.chars() {
            if c.is_ascii_digit() {
                if !digits {
                    out.push('0');
                }
                digits = true;
            } else {
                out.push(c);
                digits = false;
            }
        }
        if (word.ends_with('/') || url.is_some()) && n > 0 {
            out.push_str(if url.is_some() { "/*" } else { "*" });
        }
    }
    out
}

/// `scheme://host[:port]` of a word that holds a URL.
fn url_origin(word: &str) -> Option<&str> {
    let (_, end) = words::url_authority(word, 0)?;
    Some(&word[..end])
}

/// Programs whose only use in a function is finding out who it runs as: recon wherever
/// they run.
const RECON_PROGRAMS: [&str; 2] = ["id", "whoami"];
/// Commands that are recon when a shell command line runs them (a script may call `uname -m`
/// through its own logic, but not next to an injected `;`).
const RECON_COMMANDS: [&str; 7] = ["id", "whoami", "uname", "hostname", "printenv", "ps", "env"];

/// A reconnaissance command: one of [`RECON_PROGRAMS`] run directly, or one of
/// A custom runtime's own call to the Runtime API (`curl …/runtime/invocation/…/response`):
/// the runtime finishes an invocation the moment the API has its response, while the helper
/// that posted it is still exiting, so it is caught "left running" at the end. Were it a
/// planted process dressed up as one, it would still be running at the next invocation and
/// reported there (`still_running`).
fn calls_runtime_api(cmdline: &str) -> bool {
    cmdline.contains("/2018-06-01/runtime/invocation/")
}

/// The programs a shell command line starts: the first word of each command (`sh -c CMD`:
/// CMD's), variable assignments skipped. Substitutions (`$(…)`, backquotes) count as commands.
fn command_programs(cmdline: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for segment in cmdline.split(|c| ";|&()`{}\n$".contains(c)) {
        let words: Vec<&str> = segment.split_ascii_whitespace().collect();
        let command = match words.as_slice() {
            [shell, "-c", rest @ ..] if is_shell(shell) => rest,
            all => all,
        };
        if let Some(first) = command.iter().find(|w| !w.contains('=')) {
            out.push(*first);
        }
    }
    out
}

/// [`RECON_COMMANDS`] where a shell command line starts a command (`…; id`, `$(whoami)`,
/// `&& uname -a`), or a search or listing of the file system root or the task root.
/// `env` counts only on its own (printing the environment), not as `env VAR=1 prog`.
fn is_recon(exe: &str, cmdline: &str) -> bool {
    let base = words::base_name(exe);
    if RECON_PROGRAMS.contains(&base) {
        return true;
    }
    if !is_shell(exe) {
        return false;
    }
    let normalised: String = cmdline
        .chars()
        .map(|c| if ";|&()`{}\n$".contains(c) { '\n' } else { c })
        .collect();
    normalised.lines().any(|segment| {
        let words: Vec<&str> = segment.split_ascii_whitespace().collect();
        // `sh -c CMD ARGS`: CMD starts a command too.
        let command = match words.as_slice() {
            [shell, "-c", rest @ ..] if is_shell(shell) => rest,
            all => all,
        };
        let Some((first, args)) = command.split_first() else {
            return false;
        };
        let name = words::base_name(first);
        match name {
            "env" => args.iter().all(|a| a.starts_with('-')),
            "find" => args.first().is_some_and(|a| *a == "/"),
            "ls" | "cat" => args
                .iter()
                .any(|a| *a == "/" || a.starts_with("/var/task") || *a == "/etc/passwd"),
            _ => RECON_COMMANDS.contains(&name),
        }
    })
}

/// Most process listers remembered in one invocation.
const MAX_LISTERS: usize = 32;

/// System programs that list processes. procps reads each process's
/// `/proc/<pid>/environ` as it goes, whatever it prints.
const PROCESS_LISTERS: [&str; 5] = ["ps", "top", "pgrep", "pkill", "pidof"];

/// A system process lister (by path: a copy elsewhere is just a program) not asked to print
/// environments (`ps e`, `ps auxe`: a BSD option word with an `e`).
fn lists_processes_quietly(exe: &str, argv: &str) -> bool {
    let system = ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"]
        .iter()
        .any(|dir| exe.starts_with(dir));
    let base = words::base_name(exe);
    if !system || !PROCESS_LISTERS.contains(&base) {
        return false;
    }
    let prints_environment = base == "ps"
        && argv.split_ascii_whitespace().skip(1).any(|word| {
            !word.starts_with('-')
                && word.chars().all(|c| c.is_ascii_alphabetic())
                && word.contains('e')
        });
    !prints_environment
}

/// `/proc/<pid>/environ` of a process named by number.
fn is_process_environ(path: &str) -> bool {
    path.strip_prefix("/proc/")
        .and_then(|rest| rest.strip_suffix("/environ"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// A program that reads the whole environment, where a function's credentials are: `env` or
/// `printenv` with no variable named, `jq` given the `env` object or `$ENV` whole, or any
/// command selecting every `AWS_` variable (`grep ^AWS_`, `startswith("AWS_")`). Reading one
/// named variable (`printenv TABLE`, `env.TABLE` in jq) is configuration, not this.
fn reads_environment(exe: &str, cmdline: &str) -> bool {
    let base = words::base_name(exe);
    let mut parts = cmdline.split_ascii_whitespace();
    let program = parts.next().map(words::base_name).unwrap_or(base);
    let args: Vec<&str> = parts.collect();
    let prints_all =
        matches!(program, "env" | "printenv") && args.iter().all(|a| a.starts_with('-'));
    let jq_env = program == "jq"
        && args.iter().any(|a| {
            let filter = a.trim_matches(|c| c == '\'' || c == '"');
            filter == "env" || filter.starts_with("env |") || filter.contains("$ENV")
        });
    let all_aws = cmdline.match_indices("AWS_").any(|(i, _)| {
        // The bare prefix: what follows is not the rest of a variable's name.
        !cmdline[i + 4..].starts_with(|c: char| c.is_ascii_uppercase())
    });
    prints_all || jq_env || all_aws
}

/// A command line that wires a program to a socket: bash's `/dev/tcp`, or netcat running
/// a program for whoever connects.
fn wires_socket(cmdline: &str) -> bool {
    let nc = cmdline
        .split_ascii_whitespace()
        .next()
        .map(words::base_name)
        .is_some_and(|w| matches!(w, "nc" | "ncat" | "netcat"));
    // A shell reads its commands from the socket (`0>&1`, `<&`, `<>`): writing to `/dev/tcp`
    // only (`cat … > /dev/tcp/h/p`) sends data, it is no shell.
    let reads_socket = ["0>&1", "0<&", "<&", "<>", "< /dev/", "</dev/"]
        .iter()
        .any(|r| cmdline.contains(r));
    ((cmdline.contains("/dev/tcp/") || cmdline.contains("/dev/udp/")) && reads_socket)
        || (nc && (cmdline.contains(" -e ") || cmdline.contains(" -c ")))
}

/// Programs that run a script named on their command line: shells and language runtimes.
/// Others (`gzip -c /tmp/in.bin`) only read the files they are given.
fn is_interpreter(exe: &str) -> bool {
    const SCRIPTED: [&str; 3] = ["lua", "tclsh", "awk"];
    let base = words::base_name(exe);
    is_shell(exe) || is_language_runtime(exe) || SCRIPTED.iter().any(|s| base.starts_with(s))
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
