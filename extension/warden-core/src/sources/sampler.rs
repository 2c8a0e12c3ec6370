//! The in-flight sampler: names what counters cannot — new processes and new remote
//! endpoints — while an invocation runs.
//!
//! Each tick is cheap when nothing happened: one read of `/proc/loadavg` (has the pid
//! allocator moved?) and of the four socket tables. New pids are probed directly by
//! number instead of listing /proc. A process that starts and exits between two ticks is
//! counted by the pid counter but cannot be named; the tick interval trades cost for that.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::procfs::parse::{parse_last_pid, parse_snmp};
use super::procfs::parse::{Snmp, Socket, TCP_LISTEN};
use super::procfs::reader::{boot_ms, ticks_per_sec, HotFile};
use super::procfs::{own_traffic, Probe, ProcReader, ProcessInfo};
use crate::schema::{Observation, Proto};

/// Reads again of processes caught without executable or command line (mid-exec), in one
/// end pass whatever their number (a process can also hide its executable for good: not
/// dumpable), and the wait before each: an exec completes in well under a millisecond.
const MID_EXEC_TRIES: usize = 4;
const MID_EXEC_WAIT: Duration = Duration::from_micros(250);

/// Most pids probed in one tick (a fork bomb must not make a tick expensive).
pub const MAX_PROBES_PER_TICK: u32 = 64;
/// Most processes remembered as the runtime's lineage.
const MAX_LINEAGE: usize = 256;
/// Most sockets remembered; beyond it, closed sockets are forgotten (see `forget_closed`).
pub const MAX_SEEN_SOCKETS: usize = 4096;
/// Shortest time between two reads of the socket tables. Reading /proc/net/tcp walks the
/// kernel's whole connection hash table (milliseconds on a large host, whatever the number
/// of sockets), so the tables are read only after /proc/net/snmp shows new socket
/// activity, and at most this often.
pub const MIN_TABLE_GAP: Duration = Duration::from_millis(50);
/// Start times have a resolution of one clock tick (10 ms): a process that started up to
/// this long before the runtime finished may be the next invocation's.
const START_SLACK_MS: u64 = 10;
/// Processes whose guard exec time is remembered; beyond, the table starts afresh.
const MAX_EXEC_TIMES: usize = 4096;
/// How old a guard exec time may be and still say which process it was (pids are reused).
const EXEC_TIME_TRUSTED_MS: u64 = 10_000;

/// Endpoints that belong to the platform, not to the function.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    /// The Runtime/Extensions API address.
    pub runtime_api: Option<SocketAddr>,
    /// Warden's telemetry listener port (its accepted connections are the platform's).
    pub telemetry_port: Option<u16>,
    /// Warden makes connections of its own (AWS destinations, throttle): leave the sockets
    /// Warden holds out of what the function is said to open.
    pub own_sockets: bool,
}

/// Sampler state; see the module docs.
#[derive(Debug)]
pub struct Sampler {
    reader: ProcReader,
    loadavg: HotFile,
    snmp: HotFile,
    exclusions: Exclusions,
    last_pid: Option<u32>,
    known: HashSet<u32>,
    tracked: HashMap<u32, String>,
    /// The runtime's lineage, pid → executable: the processes alive when the first
    /// invocation started (what the platform started at init) and their forks that still run
    /// the parent's executable. An exec leaves it.
    lineage: HashMap<u32, String>,
    seen_sockets: HashSet<u64>,
    /// Connections (local, remote) present in the socket tables at their last read, open or
    /// closing: a closed connection has no inode, so it is told from an old one by its
    /// addresses. Pruned to the tables at each read, so bounded by them.
    seen_connections: HashSet<(SocketAddr, SocketAddr)>,
    /// Times closed sockets were forgotten at the cap, since last taken.
    evictions: u64,
    reported: HashSet<(Proto, SocketAddr, bool)>,
    sockets: Vec<(Proto, Socket)>,
    unnamed: u64,
    /// Socket activity counters at the last table read.
    activity: Option<(u64, u64, u64)>,
    /// New activity seen but the tables not read yet (rate limit).
    tables_due: bool,
    last_table_read: Option<Instant>,
    primed: bool,
    /// Sampling the init phase: between Warden's start and the first INVOKE.
    in_init: bool,
    /// The process that started Warden, the runtime and the other extensions (Lambda's
    /// init): its children are the platform's, not the function's.
    platform_pid: Option<u32>,
    /// Processes the platform started (the runtime, extensions) seen since Warden started.
    platform_started: HashSet<u32>,
    /// When the invocation in flight finished (its runtimeDone time), once known.
    ended_at: Option<u64>,
    /// Started by the next invocation before its INVOKE was handled: reported there.
    carried: Vec<u32>,
    /// When the next invocation started (unix ms), once its INVOKE is being handled and
    /// this one's end is not known: the last pass leaves what started since to it.
    next_start: Option<u64>,
    /// The environment is shutting down: the platform has ended the runtime, so what the
    /// runtime's loop forked after its last response is an orphan now (see
    /// [`Sampler::came_after`]).
    shutting_down: bool,
    /// Seen by that last pass but started by the next invocation: reported at its begin.
    early: Vec<ProcessInfo>,
    /// Alive at the INVOKE, not known before, and the previous invocation's end time
    /// not known yet: see [`Sampler::resolve`].
    undecided: Vec<(ProcessInfo, u64)>,
    /// When each recent process was known to exist (unix ms, to the millisecond): the guard
    /// saw it exec, or a pass found it. Sharper than a start time from /proc (10 ms ticks)
    /// where a process began right at an invocation's edge.
    exec_times: HashMap<u32, u64>,
    ticks_per_sec: u64,
}

impl Sampler {
    /// A sampler reading `proc_root`, leaving Warden (`self_pid`) out.
    pub fn new(proc_root: &Path, self_pid: u32, exclusions: Exclusions) -> Sampler {
        Sampler {
            reader: ProcReader::new(proc_root, self_pid),
            loadavg: HotFile::open(&proc_root.join("loadavg")),
            snmp: HotFile::open(&proc_root.join("net/snmp")),
            exclusions,
            last_pid: None,
            known: HashSet::new(),
            tracked: HashMap::new(),
            lineage: HashMap::new(),
            seen_sockets: HashSet::new(),
            seen_connections: HashSet::new(),
            evictions: 0,
            reported: HashSet::new(),
            sockets: Vec::with_capacity(64),
            unnamed: 0,
            activity: None,
            tables_due: false,
            last_table_read: None,
            primed: false,
            in_init: false,
            platform_pid: None,
            platform_started: HashSet::new(),
            ended_at: None,
            carried: Vec::new(),
            next_start: None,
            shutting_down: false,
            early: Vec::new(),
            undecided: Vec::new(),
            exec_times: HashMap::new(),
            ticks_per_sec: ticks_per_sec(),
        }
    }

    /// Starts sampling the init phase, when Warden starts (before the runtime does, on
    /// Lambda). What runs now is the lineage and the baseline; from here on, the processes
    /// `platform_pid` starts are the runtime's (and the other extensions'), and so are the
    /// forks and execs of a start-up script it runs (a `bootstrap` that runs its language
    /// runtime without `exec`). Anything else the init phase starts is judged with the
    /// init record, and what it leaves running is reported there (see [`Sampler::finish`]).
    pub fn start_init(&mut self, live: &[u32], last_pid: Option<u32>, platform_pid: Option<u32>) {
        self.known.extend(live.iter().copied());
        self.last_pid = last_pid;
        self.platform_pid = platform_pid;
        self.primed = true;
        self.in_init = true;
        self.prime_lineage(live);
        if let Some(platform) = platform_pid {
            for &pid in live {
                if let Some(info) = self.reader.process(pid).filter(|p| p.ppid == platform) {
                    // Followed through its execs (see `exec_changes`).
                    self.tracked.insert(pid, info.exe);
                    self.platform_started.insert(pid);
                }
            }
        }
        self.read_tables();
        self.seen_sockets
            .extend(self.sockets.iter().map(|(_, s)| s.inode));
        self.seen_connections
            .extend(self.sockets.iter().map(|(_, s)| (s.local, s.remote)));
        self.activity = self.snmp_activity();
    }

    /// The init phase ended when the first INVOKE arrived (unix ms): a process started
    /// before that and still running was left by init; one started after is the first
    /// invocation's.
    pub fn end_init_at(&mut self, unix_ms: u64) {
        if self.in_init {
            self.ended_at = Some(unix_ms);
        }
    }

    /// Whether `exe` is what a process of the runtime's lineage runs: during init, a
    /// program the file watch saw run under that name is the runtime starting.
    pub fn is_lineage_exe(&self, exe: &str) -> bool {
        self.lineage.values().any(|e| e == exe)
    }

    /// Whether the init phase is being sampled (the first INVOKE has not come yet).
    pub fn sampling_init(&self) -> bool {
        self.in_init
    }

    /// Ends the previous invocation. Processes alive now that were not there when it
    /// started are judged by their start time (or when a pass found them) against the next
    /// invocation's start, or without it the runtime's end (`runtimeDone`): started before,
    /// they were left running by it (reported with `alive_at_end`); started after, the next
    /// invocation started them before Warden handled its INVOKE (the runtime gets the event
    /// at the same time as the extensions) and they are reported there by
    /// [`Sampler::begin`]. Without the end time yet, they wait for
    /// [`Sampler::resolve`]. `live` is the sorted pid list of the closing snapshot.
    pub fn finish(&mut self, live: &[u32], out: &mut Vec<Observation>) {
        self.carried.clear();
        // Never resolved (the runtimeDone was lost): they outlived a whole invocation.
        for (info, _) in std::mem::take(&mut self.undecided) {
            self.tracked.insert(info.pid, info.exe);
        }
        // Before the first invocation there is no baseline: everything alive is the
        // platform, the runtime and the extensions, not something an invocation left.
        if !self.primed {
            return;
        }
        let offset = boot_to_unix_ms();
        let mut retries = MID_EXEC_TRIES;
        for &pid in live {
            if self.in_init && self.lineage.contains_key(&pid) {
                // The runtime and what it forked to start: not something init left behind.
                continue;
            }
            let tracked = self.tracked.contains_key(&pid);
            if self.known.contains(&pid) && !tracked {
                continue;
            }
            let Probe::Process(info) = self.probe_named(pid, &mut retries) else {
                continue;
            };
            if info.exited {
                // A helper that exited as the invocation ended and was not reaped yet: it
                // was not left running (its exe and command line are gone with it).
                continue;
            }
            let started = offset.map(|o| o + info.start_ticks * 1000 / self.ticks_per_sec.max(1));
            // The next invocation's start when known: between the runtime's end and then the
            // runtime works on no invocation, so what it started in between (and a pass saw
            // then) is the closing one's.
            match (started, self.next_start.or(self.ended_at)) {
                (Some(s), Some(end)) if self.came_after(&info, s, end) => self.carried.push(pid),
                (Some(s), None) => self.undecided.push((info, s)),
                _ => out.push(process(info, false, true, false)),
            }
        }
    }

    /// The processes judged started by the next invocation before Warden handled its
    /// INVOKE: found by a pass after the thaw, or by [`Sampler::finish`] by their start
    /// time; [`Sampler::begin`] reports them.
    pub fn carried_to_next(&self) -> Vec<u32> {
        self.early
            .iter()
            .map(|info| info.pid)
            .chain(self.carried.iter().copied())
            .collect()
    }

    /// Probes `pid`, again a few times over a millisecond when it shows no executable or no
    /// command line while it runs: a process caught in the middle of an exec has neither, or
    /// still its parent's executable and no command line yet, for a moment. Unnamed it would
    /// count as left running (a runtime's loop starting its next long poll of the Runtime API
    /// as the invocation ends); named by its parent's executable, a bash runtime's fork on
    /// its way to `jq` would be a shell of unknown command. `retries` is what is left of the
    /// pass's budget.
    fn probe_named(&mut self, pid: u32, retries: &mut usize) -> Probe {
        let mut probe = self.reader.probe(pid);
        while *retries > 0 {
            match &probe {
                Probe::Process(info)
                    if (info.exe.is_empty() || info.cmdline.is_empty()) && !info.exited =>
                {
                    *retries -= 1;
                    std::thread::sleep(MID_EXEC_WAIT);
                    probe = self.reader.probe(pid);
                }
                _ => break,
            }
        }
        probe
    }

    /// The previous invocation's runtimeDone arrived after its INVOKE successor: decides
    /// what [`Sampler::finish`] could not. `left` gets the previous invocation's leftovers,
    /// `started` the current invocation's own processes.
    pub fn resolve(
        &mut self,
        ended_at: u64,
        left: &mut Vec<Observation>,
        started: &mut Vec<Observation>,
    ) {
        for (info, s) in std::mem::take(&mut self.undecided) {
            if self.came_after(&info, s, ended_at) {
                self.tracked.insert(info.pid, info.exe.clone());
                let fork = self.note_fork(&info);
                started.push(process(info, false, false, fork));
            } else {
                left.push(process(info, false, true, false));
            }
        }
    }

    /// The next invocation started at `unix_ms` and the one in flight has not ended yet (its
    /// runtimeDone is still on its way): the runtime may already be working on the next one,
    /// so the last pass leaves the processes started since then to it.
    pub fn next_invocation_at(&mut self, unix_ms: u64) {
        self.next_start = Some(unix_ms);
    }

    /// The environment is shutting down (before its last [`Sampler::finish`]).
    pub fn shutting_down(&mut self) {
        self.shutting_down = true;
    }

    /// Whether `info` was started by the next invocation (see [`Sampler::next_invocation_at`]).
    fn started_by_next(&self, info: &ProcessInfo) -> bool {
        let (Some(next), Some(offset)) = (self.next_start, boot_to_unix_ms()) else {
            return false;
        };
        let started = offset + info.start_ticks * 1000 / self.ticks_per_sec.max(1);
        self.came_after(info, started, next)
    }

    /// The guard saw process `pid` exec at `unix_ms`.
    pub fn note_exec(&mut self, pid: u32, unix_ms: u64) {
        self.note_alive(pid, unix_ms);
    }

    /// Process `pid` was known to exist at `unix_ms` (its exec, or a pass that found it).
    fn note_alive(&mut self, pid: u32, unix_ms: u64) {
        if self.exec_times.len() >= MAX_EXEC_TIMES {
            self.exec_times.clear();
        }
        let at = self.exec_times.entry(pid).or_insert(unix_ms);
        *at = (*at).min(unix_ms);
    }

    /// Whether a process that started at `started` (from /proc, unix ms) came after
    /// `boundary` (the next invocation's start, or the runtime's end): no when the guard saw
    /// it exec, or a pass found it, before the boundary (recently: pids are reused). An
    /// orphan (adopted by init) never does while the runtime lives: a daemon that the
    /// invocation started forks its last process just after the response, but the next
    /// invocation's processes have a living parent, the runtime.
    fn came_after(&self, info: &ProcessInfo, started: u64, boundary: u64) -> bool {
        let exec_before = self
            .exec_times
            .get(&info.pid)
            .is_some_and(|&t| t < boundary && boundary - t < EXEC_TIME_TRUSTED_MS);
        // At shutdown the runtime is gone: its loop's helpers are orphans like a daemon's.
        let parent_alive = info.ppid > 1 || self.shutting_down;
        !exec_before && parent_alive && started + START_SLACK_MS >= boundary
    }

    /// Whether some processes wait for the previous invocation's end time.
    pub fn undecided(&self) -> bool {
        !self.undecided.is_empty()
    }

    /// The invocation in flight has ended: the runtime finished at `ended_at` (unix ms,
    /// from its runtimeDone). Also notes where the pid allocator stands.
    pub fn mark_end(&mut self, ended_at: Option<u64>) {
        self.ended_at = ended_at;
        if let Some(cur) = self.loadavg.read().and_then(|t| parse_last_pid(t).ok()) {
            self.last_pid = Some(cur);
        }
    }

    /// Starts a new invocation: what is alive or open now is the baseline, except the
    /// processes it has already started (appended to `out` as new).
    pub fn begin(&mut self, live: &[u32], last_pid: Option<u32>, out: &mut Vec<Observation>) {
        self.known.clear();
        self.known.extend(live.iter().copied());
        self.tracked.clear();
        self.last_pid = last_pid;
        self.reported.clear();
        self.unnamed = 0;
        self.ended_at = None;
        self.next_start = None;
        for info in std::mem::take(&mut self.early) {
            // As it is now when still there (it may have exec'd since), else as it was seen.
            let info = match self.reader.probe(info.pid) {
                Probe::Process(now) => now,
                _ => info,
            };
            self.known.insert(info.pid);
            self.tracked.insert(info.pid, info.exe.clone());
            let fork = self.note_fork(&info);
            out.push(process(info, false, false, fork));
        }
        for pid in std::mem::take(&mut self.carried) {
            if let Probe::Process(info) = self.reader.probe(pid) {
                self.tracked.insert(pid, info.exe.clone());
                let fork = self.note_fork(&info);
                out.push(process(info, false, false, fork));
            }
        }
        // Sockets open before the first invocation are the baseline; later ones stay
        // "seen" across invocations, so a long-lived connection is reported once.
        self.lineage.retain(|pid, _| live.contains(pid));
        if self.in_init {
            self.in_init = false;
            self.platform_started.clear();
            self.refresh_lineage();
        }
        if !self.primed {
            self.primed = true;
            self.prime_lineage(live);
            self.read_tables();
            self.seen_sockets
                .extend(self.sockets.iter().map(|(_, s)| s.inode));
            self.seen_connections
                .extend(self.sockets.iter().map(|(_, s)| (s.local, s.remote)));
            self.activity = self.snmp_activity();
        }
    }

    /// Takes what runs when the first invocation starts as the runtime's lineage (Warden
    /// is not in `live`).
    fn prime_lineage(&mut self, live: &[u32]) {
        for &pid in live.iter().take(MAX_LINEAGE) {
            if let Some(exe) = self.reader.exe(pid) {
                self.lineage.insert(pid, exe);
            }
        }
    }

    /// The lineage's executables as they are now (the runtime may have exec'd since it
    /// was first seen: a `bootstrap` script that execs its interpreter).
    fn refresh_lineage(&mut self) {
        let pids: Vec<u32> = self.lineage.keys().copied().collect();
        for pid in pids {
            match self.reader.exe(pid) {
                Some(exe) => {
                    self.lineage.insert(pid, exe);
                }
                None => {
                    self.lineage.remove(&pid);
                }
            }
        }
    }

    /// During init, whether a new process is the platform's: started by it (the runtime or
    /// an extension), or started by a start-up script it runs. It joins the lineage.
    fn platform_start(&mut self, info: &ProcessInfo) -> bool {
        if !self.in_init || self.lineage.len() >= MAX_LINEAGE {
            return false;
        }
        let started = Some(info.ppid) == self.platform_pid;
        if started {
            self.platform_started.insert(info.pid);
        }
        if started || self.by_startup_script(info.ppid) {
            self.lineage.insert(info.pid, info.exe.clone());
            return true;
        }
        false
    }

    /// Whether `ppid` is a shell script the platform started (a custom runtime's
    /// `bootstrap`, or an exec wrapper): what it runs at init is how the runtime starts.
    fn by_startup_script(&mut self, ppid: u32) -> bool {
        // Read now: the parent may have exec'd its shell since the last pass.
        self.platform_started.contains(&ppid)
            && self
                .reader
                .exe(ppid)
                .is_some_and(|exe| crate::features::is_shell(&exe))
    }

    /// During init, whether an exec is the runtime starting: by a process the platform
    /// started, or by a child of its start-up script.
    fn starts_runtime(&mut self, info: &ProcessInfo) -> bool {
        self.platform_started.contains(&info.pid)
            || (self.lineage.contains_key(&info.pid) && self.by_startup_script(info.ppid))
    }

    /// Whether a new process is a fork of the runtime (its parent is in the lineage and it
    /// runs the parent's executable; a shell, also with the parent's command line: a bash
    /// runtime's `$(…)` subshell is the runtime, `bash -c …` started from it is not); if so
    /// it joins the lineage.
    fn note_fork(&mut self, info: &ProcessInfo) -> bool {
        let same_exe = !info.exe.is_empty() && self.lineage.get(&info.ppid) == Some(&info.exe);
        let fork = same_exe
            && (!crate::features::is_shell(&info.exe) || self.same_cmdline_as_parent(info));
        if fork && self.lineage.len() < MAX_LINEAGE {
            self.lineage.insert(info.pid, info.exe.clone());
        }
        fork
    }

    fn same_cmdline_as_parent(&mut self, info: &ProcessInfo) -> bool {
        match self.reader.probe(info.ppid) {
            Probe::Process(parent) => !info.cmdline.is_empty() && parent.cmdline == info.cmdline,
            _ => false,
        }
    }

    /// Pids allocated since `begin` that were gone (or threads) before they could be named.
    pub fn unnamed_tasks(&self) -> u64 {
        self.unnamed
    }

    /// One sampling pass; appends what is new to `out`.
    pub fn tick(&mut self, out: &mut Vec<Observation>) {
        self.new_pids(out);
        self.exec_changes(out);
        self.new_sockets(out);
    }

    /// The last pass of an invocation: like [`Sampler::tick`], but the socket tables are
    /// read whenever socket activity is due, [`MIN_TABLE_GAP`] or not.
    pub fn final_tick(&mut self, out: &mut Vec<Observation>) {
        self.new_pids(out);
        self.exec_changes(out);
        self.last_table_read = None;
        self.new_sockets(out);
    }

    fn new_pids(&mut self, out: &mut Vec<Observation>) {
        let Some(cur) = self.loadavg.read().and_then(|t| parse_last_pid(t).ok()) else {
            return;
        };
        let prev = self.last_pid.unwrap_or(cur);
        self.last_pid = Some(cur);
        if cur == prev {
            return;
        }
        // After a wrap only the low range is probed.
        let first = if cur > prev { prev + 1 } else { 1 };
        let first = first.max(cur.saturating_sub(MAX_PROBES_PER_TICK - 1));
        let mut retries = MID_EXEC_TRIES;
        for pid in first..=cur {
            if self.known.contains(&pid) {
                continue;
            }
            match self.probe_named(pid, &mut retries) {
                Probe::Process(info) => {
                    self.known.insert(pid);
                    if self.started_by_next(&info) {
                        // Not tracked here: the next invocation's begin reports it.
                        if self.early.len() < MAX_PROBES_PER_TICK as usize {
                            self.early.push(info);
                        }
                        continue;
                    }
                    self.tracked.insert(pid, info.exe.clone());
                    if self.platform_start(&info) {
                        continue;
                    }
                    // Alive now, so started by now: finer than /proc's 10 ms start ticks when
                    // the invocation's end is dated later (see `came_after`).
                    if let Some(now) = unix_now_ms() {
                        self.note_alive(pid, now);
                    }
                    let fork = self.note_fork(&info);
                    out.push(process(info, false, false, fork));
                }
                Probe::Thread => {}
                Probe::Gone => self.unnamed += 1,
            }
        }
    }

    /// A tracked process whose executable changed has exec'd (fork, then exec).
    fn exec_changes(&mut self, out: &mut Vec<Observation>) {
        let pids: Vec<u32> = self.tracked.keys().copied().collect();
        for pid in pids {
            let Some(exe) = self.reader.exe(pid) else {
                continue;
            };
            if self.tracked.get(&pid) == Some(&exe) {
                continue;
            }
            if let Some(info) = self.reader.process(pid) {
                self.tracked.insert(pid, info.exe.clone());
                if self.in_init && self.starts_runtime(&info) {
                    // The runtime exec'ing its way up (bootstrap → interpreter).
                    self.lineage.insert(pid, info.exe);
                    continue;
                }
                self.lineage.remove(&pid);
                out.push(process(info, true, false, false));
            }
        }
    }

    fn snmp_activity(&mut self) -> Option<(u64, u64, u64)> {
        self.snmp
            .read()
            .and_then(|t| parse_snmp(t).ok())
            .map(|s| activity(&s))
    }

    fn read_tables(&mut self) {
        self.sockets.clear();
        self.reader.sockets(&mut self.sockets);
        self.last_table_read = Some(Instant::now());
    }

    /// Whether the socket tables should be read now: new opens or datagrams since the last
    /// read, and not read within [`MIN_TABLE_GAP`].
    fn tables_changed(&mut self) -> bool {
        if let Some(now) = self.snmp_activity() {
            if self.activity != Some(now) {
                self.activity = Some(now);
                self.tables_due = true;
            }
        }
        let rested = self
            .last_table_read
            .is_none_or(|t| t.elapsed() >= MIN_TABLE_GAP);
        self.tables_due && rested
    }

    fn new_sockets(&mut self, out: &mut Vec<Observation>) {
        if !self.tables_changed() {
            return;
        }
        self.tables_due = false;
        self.read_tables();
        if self.seen_sockets.len() > MAX_SEEN_SOCKETS {
            self.forget_closed();
        }
        if self.exclusions.own_sockets || self.in_init {
            // Marked as seen, so they are never reported as the function's endpoints (during
            // init Warden opens its own: the telemetry listener).
            own_socket_inodes(&mut self.seen_sockets);
        }
        let before = std::mem::take(&mut self.seen_connections);
        for &(proto, s) in &self.sockets {
            let tuple = (s.local, s.remote);
            self.seen_connections.insert(tuple);
            let new = if s.inode == 0 {
                // Closed (TIME_WAIT and the like): what opened it is gone, but where it went
                // is still in the table. Named once, unless it was seen open before.
                proto == Proto::Tcp
                    && !before.contains(&tuple)
                    && !own_traffic::is_own_destination(s.remote.ip())
            } else {
                self.seen_sockets.insert(s.inode) && !before.contains(&tuple)
            };
            if !new {
                continue;
            }
            let listen = proto == Proto::Tcp && s.state == TCP_LISTEN;
            let addr = if listen { s.local } else { s.remote };
            if !listen && (s.remote.ip().is_unspecified() || self.is_platform(&s)) {
                continue;
            }
            if self.reported.insert((proto, addr, listen)) {
                out.push(Observation::Endpoint {
                    proto,
                    addr,
                    listen,
                });
            }
        }
    }

    /// Forgets the sockets that are closed now. Those still open stay seen: clearing the
    /// whole set would make every long-lived socket (another extension's listener, the
    /// runtime's connections) look new. What is left is bounded by the sockets open.
    fn forget_closed(&mut self) {
        let open: HashSet<u64> = self.sockets.iter().map(|(_, s)| s.inode).collect();
        self.seen_sockets.retain(|inode| open.contains(inode));
        self.evictions += 1;
    }

    /// How many times closed sockets were forgotten at the cap since the last call.
    pub fn take_evictions(&mut self) -> u64 {
        std::mem::take(&mut self.evictions)
    }

    /// Both ends of the platform's own connections: the Runtime API and Warden's telemetry
    /// listener.
    fn is_platform(&self, s: &Socket) -> bool {
        let api = self.exclusions.runtime_api;
        let port = self.exclusions.telemetry_port;
        api == Some(s.remote)
            || api == Some(s.local)
            || port == Some(s.local.port())
            || port == Some(s.remote.port())
    }
}

/// Unix time now, in ms.
fn unix_now_ms() -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    u64::try_from(now.as_millis()).ok()
}

/// Unix ms minus boot ms now: turns a process start time into wall-clock time.
fn boot_to_unix_ms() -> Option<u64> {
    let boot = boot_ms()?;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    unix.checked_sub(boot)
}

/// Adds the inodes of the sockets this process holds (`/proc/self/fd` links `socket:[N]`).
fn own_socket_inodes(into: &mut HashSet<u64>) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in dir.flatten() {
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let link = link.to_string_lossy();
        if let Some(n) = link
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
        {
            if let Ok(inode) = n.parse() {
                into.insert(inode);
            }
        }
    }
}

/// The counters that move when a socket is opened or used for UDP.
fn activity(s: &Snmp) -> (u64, u64, u64) {
    (s.tcp_active_opens, s.tcp_passive_opens, s.udp_out_datagrams)
}

fn process(info: ProcessInfo, exec: bool, alive_at_end: bool, runtime_fork: bool) -> Observation {
    Observation::Process {
        pid: info.pid,
        ppid: info.ppid,
        exe: info.exe,
        cmdline: info.cmdline,
        exec,
        alive_at_end,
        stdio_socket: info.stdio_socket,
        runtime_fork,
    }
}

#[cfg(test)]
mod tests;
