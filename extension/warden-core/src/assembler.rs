//! The invocation assembler: joins INVOKE snapshots, telemetry and observations by request
//! id and emits one [`FeatureRecord`] per invocation, plus one for the init phase.
//!
//! Invocation N is *closed* by the snapshot at INVOKE N+1 (or at SHUTDOWN); it is
//! *emitted* once its `platform.report` has arrived, or when `report_wait` of awake time
//! has passed since it closed. Time is passed in (`now`, awake time since start), so the
//! logic is deterministic under test.
//!
//! Records exist only for request ids an INVOKE announced; the platform's first figures for
//! a request are kept; what contradicts either is reported as tampering ([`provenance`]).

mod provenance;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::health::{Counter, Health};
use crate::schema::CounterDelta;
use crate::schema::LogStats;
use crate::schema::Observation;
use crate::schema::{
    FeatureRecord, ObservationCounts, PlatformFigures, RecordKind, MAX_EVIDENCE, SCHEMA_VERSION,
};
use crate::schema::{ShutdownReason, Status, TamperKind};
use crate::sources::procfs::CounterSnapshot;
use crate::sources::telemetry::events::{Phase, TelemetryEvent};
use provenance::{from_platform, request_of, Firsts, Held, HeldTelemetry, Verdict};

pub use provenance::ANNOUNCE_WINDOW;

/// How many emitted request ids are remembered to recognise late telemetry.
const RECENT: usize = 64;

/// Fixed inputs of the assembler.
#[derive(Debug, Clone)]
pub struct AssemblerConfig {
    /// Wait for late platform telemetry after an invocation closed.
    pub report_wait: Duration,
    /// Most invocations held at once.
    pub max_pending: usize,
    /// USER_HZ for CPU ticks.
    pub ticks_per_sec: u64,
    /// Function name for the records.
    pub function_name: String,
    /// Function version for the records.
    pub function_version: String,
    /// Scratch directory, to spot executables run from it.
    pub tmp_dir: String,
    /// Where /proc is, to name processes that outlive invocations.
    pub proc_root: std::path::PathBuf,
}

/// Most still-running processes named in one record.
const MAX_STILL_RUNNING: usize = 2;

/// What is known so far about one record.
#[derive(Debug, Default)]
struct Pending {
    kind: Option<RecordKind>,
    request_id: Option<String>,
    seq: u64,
    start_unix_ms: u64,
    start: Option<CounterSnapshot>,
    end: Option<CounterSnapshot>,
    /// Awake time at which the record was closed (or first heard of, for telemetry-only).
    since: Option<Duration>,
    complete: bool,
    status: Option<Status>,
    error_type: Option<String>,
    initialization_type: Option<String>,
    platform: PlatformFigures,
    log: LogStats,
    extension_log_lines: u64,
    unknown_telemetry: u64,
    observed: ObservationCounts,
    evidence: Vec<Observation>,
    evidence_dropped: u64,
    sampler_ticks: u64,
    unnamed_tasks: u64,
    firsts: Firsts,
}

/// Which invocation an event belongs to (see [`Assembler::date`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dating<'a> {
    /// The invocation in flight (or init, before the first).
    Open,
    /// The init phase: before the first invocation started (or before the earliest start
    /// still remembered).
    Init,
    /// An earlier invocation, by request id.
    Earlier(&'a str),
    /// Between an earlier invocation (by request id) and the one in flight, until the earlier
    /// one's `runtimeDone` comes.
    Undecided(&'a str),
}

/// When an invocation ran, on the platform's clock (Unix ms).
#[derive(Debug)]
struct Dated {
    request_id: String,
    start: u64,
    /// When the runtime was done with it, once its `runtimeDone` came.
    end: Option<u64>,
}

/// The assembler; see the module docs.
#[derive(Debug)]
pub struct Assembler {
    cfg: AssemblerConfig,
    health: Arc<Health>,
    init: Option<Pending>,
    pending: Vec<Pending>,
    /// Request id of the invocation in flight (INVOKE seen, not yet closed).
    open: Option<String>,
    /// Where function logs go: the last `platform.start` in the telemetry stream.
    log_owner: Option<String>,
    /// The last invocations' request ids, starts and ends, to date late events.
    starts: VecDeque<Dated>,
    /// Request ids emitted, with the platform figures they got.
    recent: VecDeque<(String, Firsts)>,
    /// Telemetry for ids not announced (yet).
    held: HeldTelemetry,
    /// Tampering noticed since the pipeline last asked, for real-time observers, with the
    /// request id of the record it went to.
    tampers: Vec<(Option<String>, Observation)>,
    /// Tampering already reported for the record in flight (each kind and id once).
    tamper_seen: Vec<(TamperKind, Option<String>)>,
    baseline: Option<Vec<u32>>,
    /// Foreign pids at the last record's end (sorted): one still there at the next end has
    /// outlived an invocation.
    last_foreign: Vec<u32>,
    /// The same for the record before it.
    earlier_foreign: Vec<u32>,
    /// Processes the next invocation started before its INVOKE's snapshot (the runtime got
    /// the event when Warden did), as the sampler judged them: not the closing record's.
    started_by_next: Vec<u32>,
    seq: u64,
    ready: Vec<FeatureRecord>,
}

impl Assembler {
    /// An assembler whose init record starts from `snapshot` (taken when Warden started).
    pub fn new(
        mut cfg: AssemblerConfig,
        health: Arc<Health>,
        snapshot: CounterSnapshot,
        unix_ms: u64,
    ) -> Assembler {
        if !cfg.tmp_dir.ends_with('/') {
            cfg.tmp_dir.push('/');
        }
        let init = Pending {
            kind: Some(RecordKind::Init),
            start_unix_ms: unix_ms,
            start: Some(snapshot),
            ..Pending::default()
        };
        Assembler {
            cfg,
            health,
            init: Some(init),
            pending: Vec::new(),
            open: None,
            log_owner: None,
            starts: VecDeque::with_capacity(RECENT),
            recent: VecDeque::with_capacity(RECENT),
            held: HeldTelemetry::default(),
            tampers: Vec::new(),
            tamper_seen: Vec::new(),
            baseline: None,
            last_foreign: Vec::new(),
            earlier_foreign: Vec::new(),
            started_by_next: Vec::new(),
            seq: 0,
            ready: Vec::new(),
        }
    }

    /// The request id of the invocation in flight.
    pub fn open_request(&self) -> Option<&str> {
        self.open.as_deref()
    }

    /// The invocation an event stamped `unix_ms` happened in, when that is not the one in
    /// flight: an invocation still waiting for its telemetry that had started by then and
    /// the next had not. Events reach Warden late when it was slowed or stopped, by which
    /// time a later invocation may be in flight. `None` also while it is undecided (see
    /// [`Assembler::date`]).
    pub fn earlier_request_at(&self, unix_ms: u64) -> Option<&str> {
        match self.date(unix_ms) {
            Dating::Earlier(id) => Some(id),
            Dating::Init | Dating::Open | Dating::Undecided(_) => None,
        }
    }

    /// Whether an event stamped `unix_ms` and dated to the invocation in flight
    /// ([`Dating::Open`]) happened before that invocation started: in the gap before it,
    /// nearer its thaw.
    pub fn before_open_start(&self, unix_ms: u64) -> bool {
        self.open_pending()
            .is_some_and(|p| unix_ms < p.start_unix_ms)
    }

    /// Which invocation an event stamped `unix_ms` belongs to. One stamped before the start
    /// of the invocation in flight belongs to the one that had started by then, unless it
    /// fell in the gap after that one's runtime was done: the environment is frozen between a
    /// response and the next invocation, so what happened in the gap happened at one of its
    /// edges, the runtime's last moments before the freeze or the thaw that began the
    /// invocation in flight (a planted timer fires at once, a moment before the platform's
    /// start), whichever it is nearer. Until the earlier invocation's `runtimeDone` says
    /// when it was done, that is undecided (invocations can also follow each other without
    /// a gap).
    pub fn date(&self, unix_ms: u64) -> Dating<'_> {
        let Some(open_start) = self.open_pending().map(|p| p.start_unix_ms) else {
            return Dating::Open;
        };
        if unix_ms >= open_start {
            return Dating::Open;
        }
        let earlier = self
            .starts
            .iter()
            .filter(|d| d.start <= unix_ms)
            .max_by_key(|d| d.start);
        // Before every invocation's start: the init phase (a runtime or an agent setting
        // itself up). Its record may be out already: then it is dropped, not blamed on an
        // invocation.
        if earlier.is_none() {
            return Dating::Init;
        }
        let Some(earlier) = earlier.filter(|d| Some(d.request_id.as_str()) != self.open.as_deref())
        else {
            return Dating::Open;
        };
        let id = earlier.request_id.as_str();
        match earlier.end {
            Some(end) if unix_ms > end && open_start - unix_ms < unix_ms - end => Dating::Open,
            Some(_) => Dating::Earlier(id),
            // Its record is out: only a real-time finding can still name it.
            None if !self.is_pending(id) => Dating::Earlier(id),
            None => Dating::Undecided(id),
        }
    }

    /// Notes when the runtime was done with an invocation: its `runtimeDone`'s time, else its
    /// start plus the runtime's duration.
    pub fn note_end(&mut self, r: &crate::sources::telemetry::events::RuntimeDone) {
        let Some(d) = self
            .starts
            .iter_mut()
            .find(|d| d.request_id == r.request_id)
        else {
            return;
        };
        let end = r
            .time_unix_ms
            .or_else(|| r.duration_ms.map(|ms| d.start + ms.max(0.0).ceil() as u64));
        if d.end.is_none() {
            d.end = end.filter(|&e| e >= d.start);
        }
    }

    /// When the runtime was done with the invocation in flight, once its `runtimeDone` came.
    pub fn open_end_unix_ms(&self) -> Option<u64> {
        let open = self.open.as_deref()?;
        self.starts
            .iter()
            .rev()
            .find(|d| d.request_id == open)
            .and_then(|d| d.end)
    }

    /// Whether `request_id`'s record still waits to be emitted (it can take evidence).
    pub fn is_pending(&self, request_id: &str) -> bool {
        self.pending
            .iter()
            .any(|p| p.request_id.as_deref() == Some(request_id))
    }

    fn open_pending(&self) -> Option<&Pending> {
        let id = self.open.as_deref()?;
        self.pending
            .iter()
            .find(|p| p.request_id.as_deref() == Some(id))
    }

    /// Records waiting for telemetry (the init record included).
    pub fn pending_len(&self) -> usize {
        self.pending.len() + usize::from(self.init.is_some())
    }

    /// Whether a record other than the one in flight waits for telemetry or its timeout:
    /// only then does the pipeline need its housekeeping timer.
    pub fn waiting(&self) -> bool {
        self.init.is_some()
            || !self.held.is_empty()
            || self
                .pending
                .iter()
                .any(|p| p.request_id.as_deref() != self.open.as_deref())
    }

    /// INVOKE: closes the previous invocation (or init) with `snapshot`, opens a new one.
    pub fn invoke(
        &mut self,
        request_id: &str,
        snapshot: CounterSnapshot,
        unix_ms: u64,
        now: Duration,
    ) {
        self.close_open(&snapshot, now, None, false);
        if self.baseline.is_none() {
            // What runs at the first INVOKE is the platform's, except what the init phase
            // left running (reported with the init record): that has outlived a phase
            // already, so it is still running at the first invocation's end.
            let left = self.left_by_init();
            let mut base = snapshot.pids.clone();
            base.retain(|p| left.binary_search(p).is_err());
            self.baseline = Some(base);
            self.last_foreign = left;
        }
        self.seq += 1;
        let seq = self.seq;
        let p = self.entry(request_id, now);
        p.kind = Some(RecordKind::Invoke);
        p.seq = seq;
        p.start_unix_ms = unix_ms;
        p.start = Some(snapshot);
        p.since = None;
        self.open = Some(request_id.to_string());
        if self.starts.len() >= RECENT {
            self.starts.pop_front();
        }
        self.starts.push_back(Dated {
            request_id: request_id.to_string(),
            start: unix_ms,
            end: None,
        });
        self.tamper_seen.clear();
        if let Some(held) = self.held.take(request_id) {
            for event in held.events {
                self.apply(event, now);
            }
        }
        self.evict_over_cap(now);
    }

    /// SHUTDOWN: closes what is open. `reason` (timeout, failure) stands in for a missing
    /// runtimeDone status.
    pub fn shutdown(&mut self, reason: &ShutdownReason, snapshot: CounterSnapshot, now: Duration) {
        let status = match reason {
            ShutdownReason::Timeout => Some(Status::Timeout),
            ShutdownReason::Failure => Some(Status::Failure),
            _ => None,
        };
        // Lambda stops the runtime before SHUTDOWN; Warden's own recycle comes before that.
        let runtime_stopped = reason.runtime_stopped();
        self.close_open(&snapshot, now, status, runtime_stopped);
    }

    fn close_open(
        &mut self,
        snapshot: &CounterSnapshot,
        now: Duration,
        status: Option<Status>,
        runtime_stopped: bool,
    ) {
        let target = match self.open.take() {
            Some(id) => self
                .pending
                .iter_mut()
                .find(|p| p.request_id.as_deref() == Some(id.as_str())),
            None => self.init.as_mut().filter(|p| p.end.is_none()),
        };
        let started_by_next = std::mem::take(&mut self.started_by_next);
        if let Some(p) = target {
            let end = match (&p.start, runtime_stopped) {
                (Some(start), true) => snapshot.without_stopped_runtime(start),
                _ => snapshot.clone(),
            };
            p.end = Some(end.without_processes(&started_by_next));
            p.since = Some(now);
            if p.status.is_none() {
                p.status = status;
            }
        }
    }

    /// The processes the next invocation started before the snapshot that closes the one in
    /// flight (see [`crate::sources::sampler::Sampler::carried_to_next`]): the closing
    /// record's gauges leave them out. Used by the next [`Assembler::invoke`] only.
    pub fn started_by_next(&mut self, pids: &[u32]) {
        self.started_by_next = pids.to_vec();
    }

    /// Adds one sampler or /tmp observation to the record in flight (or to init).
    pub fn observe(&mut self, obs: Observation) {
        let Some(p) = current(&self.open, &mut self.pending, &mut self.init) else {
            return;
        };
        p.observed.count(&obs, &self.cfg.tmp_dir);
        if !keep_evidence(&mut p.evidence, obs) {
            p.evidence_dropped += 1;
            self.health.add(Counter::ObservationsDropped, 1);
        }
    }

    /// Adds an observation to the record of `request_id` while it waits for telemetry (or
    /// to the one in flight when that record is gone).
    pub fn observe_for(&mut self, request_id: &str, obs: Observation) {
        let tmp_dir = &self.cfg.tmp_dir;
        match self
            .pending
            .iter_mut()
            .find(|p| p.request_id.as_deref() == Some(request_id))
        {
            Some(p) => {
                p.observed.count(&obs, tmp_dir);
                if !keep_evidence(&mut p.evidence, obs) {
                    p.evidence_dropped += 1;
                    self.health.add(Counter::ObservationsDropped, 1);
                }
            }
            None => self.observe(obs),
        }
    }

    /// Adds an observation dated to the init phase ([`Dating::Init`]) to the init record, or
    /// counts it dropped when that record is out.
    pub fn observe_init(&mut self, obs: Observation) {
        let Some(init) = self.init.as_mut() else {
            self.health.add(Counter::ObservationsDropped, 1);
            return;
        };
        init.observed.count(&obs, &self.cfg.tmp_dir);
        if !keep_evidence(&mut init.evidence, obs) {
            init.evidence_dropped += 1;
            self.health.add(Counter::ObservationsDropped, 1);
        }
    }

    /// Adds observations reported when an invocation ends (processes left running): they
    /// belong to the invocation being closed, so call this before [`Assembler::invoke`].
    pub fn observe_end(&mut self, obs: Vec<Observation>) {
        for o in obs {
            self.observe(o);
        }
    }

    /// Sampler bookkeeping for the record in flight.
    pub fn sampler_stats(&mut self, ticks: u64, unnamed_tasks: u64) {
        if let Some(p) = current(&self.open, &mut self.pending, &mut self.init) {
            p.sampler_ticks += ticks;
            p.unnamed_tasks = unnamed_tasks;
        }
    }

    fn entry(&mut self, request_id: &str, now: Duration) -> &mut Pending {
        let index = match self
            .pending
            .iter()
            .position(|p| p.request_id.as_deref() == Some(request_id))
        {
            Some(i) => i,
            None => {
                self.pending.push(Pending {
                    kind: Some(RecordKind::Invoke),
                    request_id: Some(request_id.to_string()),
                    since: Some(now),
                    ..Pending::default()
                });
                self.pending.len() - 1
            }
        };
        &mut self.pending[index]
    }

    /// The record for telemetry about `request_id`; `None` (counted) if already emitted.
    fn for_request(&mut self, request_id: &str, _now: Duration) -> Option<&mut Pending> {
        if self.recent.iter().any(|(r, _)| r == request_id) {
            self.health.add(Counter::TelemetryLate, 1);
            return None;
        }
        self.pending
            .iter_mut()
            .find(|p| p.request_id.as_deref() == Some(request_id))
    }

    /// Whether an INVOKE announced `request_id` (its record is pending or was emitted).
    fn announced(&self, request_id: &str) -> bool {
        self.pending
            .iter()
            .any(|p| p.request_id.as_deref() == Some(request_id))
            || self.recent.iter().any(|(r, _)| r == request_id)
    }

    /// Whether a `runtimeDone` or `report` may set the request's figures: only the first one
    /// does; a different later one is reported.
    fn first_figures(&mut self, event: &TelemetryEvent) -> bool {
        let Some(id) = request_of(event).map(str::to_string) else {
            return true;
        };
        let firsts = match self
            .pending
            .iter_mut()
            .find(|p| p.request_id.as_deref() == Some(id.as_str()))
        {
            Some(p) => &mut p.firsts,
            None => match self.recent.iter_mut().find(|(r, _)| *r == id) {
                Some((_, f)) => f,
                None => return true,
            },
        };
        match firsts.check(event) {
            Verdict::Apply => true,
            Verdict::Duplicate => {
                self.health.add(Counter::TelemetryLate, 1);
                false
            }
            Verdict::Overwrite => {
                self.tamper(TamperKind::PlatformOverwrite, Some(id));
                false
            }
        }
    }

    /// Warden was stopped while `request_id` ran (the pipeline tells a stop from a freeze):
    /// tampering, reported in that invocation's record.
    pub fn stopped(&mut self, request_id: &str) {
        self.tamper(TamperKind::Stopped, Some(request_id.to_string()));
    }

    /// Reports tampering: into the record of the request it names when that is pending, else
    /// the record in flight (or the last one), and for real-time observers
    /// ([`Assembler::take_tampers`]); each kind and id once per record.
    fn tamper(&mut self, what: TamperKind, request_id: Option<String>) {
        self.health.note(
            Counter::TelemetryTamper,
            format_args!("tampering: {}", what.as_str()),
        );
        let key = (what, request_id);
        if self.tamper_seen.contains(&key) {
            return;
        }
        let obs = Observation::Tamper {
            what: key.0,
            request_id: key.1.clone(),
        };
        let named = key.1.clone();
        self.tamper_seen.push(key);
        let target = named.filter(|id| {
            self.pending
                .iter()
                .any(|p| p.request_id.as_deref() == Some(id.as_str()))
        });
        match target {
            Some(id) => {
                self.observe_for(&id, obs.clone());
                self.tampers.push((Some(id), obs));
            }
            None => {
                self.tampers.push((self.open.clone(), obs.clone()));
                match current(&self.open, &mut self.pending, &mut self.init) {
                    Some(_) => self.observe(obs),
                    None => {
                        if let Some(p) = self.pending.last_mut() {
                            p.evidence.push(obs);
                        }
                    }
                }
            }
        }
    }

    /// Tampering noticed since the last call, with the request id of the record it went to,
    /// for the real-time observers (the records already carry it).
    pub fn take_tampers(&mut self) -> Vec<(Option<String>, Observation)> {
        std::mem::take(&mut self.tampers)
    }

    /// Telemetry held for an id no INVOKE announced: the platform did not send it for this
    /// environment. The function's log lines still count, for the record in flight.
    fn give_up(&mut self, held: Held) {
        if held.events.iter().any(from_platform) {
            self.tamper(TamperKind::UnknownRequest, Some(held.id));
        }
        for event in held.events {
            if let TelemetryEvent::FunctionLog { stats, .. } = event {
                if let Some(p) = current(&self.open, &mut self.pending, &mut self.init) {
                    p.log.add(&stats);
                }
            }
        }
    }

    fn log_target(&mut self, request_id: Option<&str>, now: Duration) -> Option<&mut Pending> {
        match request_id.or(self.log_owner.as_deref()).map(str::to_string) {
            Some(id) => self.for_request(&id, now),
            None => self.init.as_mut(),
        }
    }

    /// Adds one telemetry event. Events for a request id not announced yet are held for
    /// [`ANNOUNCE_WINDOW`] (its INVOKE may be on its way).
    pub fn telemetry(&mut self, event: TelemetryEvent, now: Duration) {
        if let Some(id) = request_of(&event) {
            if !self.announced(id) {
                let id = id.to_string();
                if let Some(evicted) = self.held.hold(&id, event, now) {
                    self.give_up(evicted);
                }
                return;
            }
        }
        self.apply(event, now);
    }

    fn apply(&mut self, event: TelemetryEvent, now: Duration) {
        if !self.first_figures(&event) {
            return;
        }
        match event {
            TelemetryEvent::Forged => self.tamper(TamperKind::ForgedTelemetry, None),
            TelemetryEvent::Start { request_id } => {
                self.for_request(&request_id, now);
                self.log_owner = Some(request_id);
            }
            TelemetryEvent::RuntimeDone(r) => {
                self.note_end(&r);
                if let Some(p) = self.for_request(&r.request_id, now) {
                    p.status = Some(r.status);
                    p.error_type = r.error_type.or(p.error_type.take());
                    let f = &mut p.platform;
                    f.runtime_duration_ms = r.duration_ms;
                    f.produced_bytes = r.produced_bytes;
                    f.response_latency_ms = r.response_latency_ms;
                    f.response_duration_ms = r.response_duration_ms;
                    f.runtime_overhead_ms = r.runtime_overhead_ms;
                }
            }
            TelemetryEvent::Report(r) => {
                if let Some(p) = self.for_request(&r.request_id, now) {
                    if r.status != Status::Unknown {
                        p.status = Some(r.status);
                    }
                    p.error_type = r.error_type.or(p.error_type.take());
                    let f = &mut p.platform;
                    f.duration_ms = Some(r.duration_ms);
                    f.billed_duration_ms = r.billed_duration_ms;
                    f.memory_size_mb = r.memory_size_mb;
                    f.max_memory_used_mb = r.max_memory_used_mb;
                    f.init_duration_ms = r.init_duration_ms;
                    f.restore_duration_ms = r.restore_duration_ms;
                    p.complete = true;
                }
            }
            TelemetryEvent::FunctionLog { request_id, stats } => {
                if let Some(p) = self.log_target(request_id.as_deref(), now) {
                    p.log.add(&stats);
                }
            }
            TelemetryEvent::ExtensionLog { stats } => {
                if let Some(p) = self.log_target(None, now) {
                    p.extension_log_lines += stats.lines;
                }
            }
            TelemetryEvent::Unknown { .. } => {
                if let Some(p) = self.log_target(None, now) {
                    p.unknown_telemetry += 1;
                }
            }
            TelemetryEvent::LogsDropped { records, .. } => {
                self.health.note(
                    Counter::TelemetryDropped,
                    format_args!("Lambda dropped {records} telemetry records (subscriber lagging)"),
                );
                self.health
                    .add(Counter::TelemetryDropped, records.saturating_sub(1));
            }
            event => self.phase_event(event),
        }
    }

    fn phase_event(&mut self, event: TelemetryEvent) {
        let Some(init) = self.init.as_mut() else {
            // A phase event after init was emitted (an init retried at invoke): counted.
            self.health.add(Counter::TelemetryLate, 1);
            return;
        };
        match event {
            TelemetryEvent::PhaseStart {
                initialization_type,
                ..
            } => {
                init.initialization_type = initialization_type.or(init.initialization_type.take());
            }
            TelemetryEvent::PhaseRuntimeDone {
                status, error_type, ..
            } => {
                init.status = Some(status);
                init.error_type = error_type;
            }
            TelemetryEvent::PhaseReport {
                phase,
                status,
                error_type,
                duration_ms,
            } => {
                if status != Status::Unknown {
                    init.status = Some(status);
                }
                init.error_type = error_type.or(init.error_type.take());
                match phase {
                    Phase::Init => init.platform.duration_ms = duration_ms,
                    Phase::Restore => init.platform.restore_duration_ms = duration_ms,
                }
                init.complete = true;
            }
            _ => {}
        }
    }

    fn evict_over_cap(&mut self, now: Duration) {
        while self.pending.len() > self.cfg.max_pending {
            let oldest = self.pending.remove(0);
            self.health.note(
                Counter::PendingDropped,
                format_args!(
                    "more than {} invocations pending; emitting the oldest early",
                    self.cfg.max_pending
                ),
            );
            self.emit(oldest, now);
        }
    }

    /// Emits what is ready: complete and closed, or waited long enough.
    pub fn poll(&mut self, now: Duration) -> Vec<FeatureRecord> {
        for held in self.held.expired(now) {
            self.give_up(held);
        }
        let wait = self.cfg.report_wait;
        let due = |p: &Pending| {
            let closed = p.end.is_some() || p.start.is_none();
            let waited = p.since.is_some_and(|s| now.saturating_sub(s) >= wait);
            closed && (p.complete || waited)
        };
        if self.init.as_ref().is_some_and(due) {
            if let Some(init) = self.init.take() {
                self.emit(init, now);
            }
        }
        let mut i = 0;
        while i < self.pending.len() {
            if due(&self.pending[i])
                && self.open.as_deref() != self.pending[i].request_id.as_deref()
            {
                let p = self.pending.remove(i);
                self.emit(p, now);
            } else {
                i += 1;
            }
        }
        std::mem::take(&mut self.ready)
    }

    /// Emits everything, complete or not (SHUTDOWN after the last wait).
    pub fn flush(&mut self, now: Duration) -> Vec<FeatureRecord> {
        // No INVOKE comes any more: what is still held was never announced.
        for held in self.held.drain() {
            self.give_up(held);
        }
        if let Some(init) = self.init.take() {
            self.emit(init, now);
        }
        for p in std::mem::take(&mut self.pending) {
            self.emit(p, now);
        }
        self.open = None;
        std::mem::take(&mut self.ready)
    }

    /// True when nothing waits for telemetry any more.
    pub fn settled(&self) -> bool {
        self.init.as_ref().is_none_or(|p| p.complete) && self.pending.iter().all(|p| p.complete)
    }

    fn emit(&mut self, p: Pending, _now: Duration) {
        if let Some(id) = &p.request_id {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((id.clone(), p.firsts));
        }
        self.health.add(Counter::RecordsEmitted, 1);
        if !p.complete {
            self.health.add(Counter::RecordsIncomplete, 1);
        }
        let record = self.build(p);
        self.ready.push(record);
    }

    fn build(&mut self, p: Pending) -> FeatureRecord {
        let counters = match (&p.start, &p.end) {
            (Some(s), Some(e)) => e.delta_since(s, self.cfg.ticks_per_sec),
            _ => CounterDelta::default(),
        };
        let mut platform = p.platform;
        if let (Some(d), Some(r)) = (platform.duration_ms, platform.runtime_duration_ms) {
            platform.post_runtime_ms = Some((d - r).max(0.0));
        }
        let gauges = p.end.as_ref().map(|e| {
            let foreign = self.foreign(&e.pids);
            let persisting = foreign
                .iter()
                .filter(|p| self.last_foreign.binary_search(p).is_ok())
                .count() as u32;
            let foreign_processes = foreign.len() as u32;
            self.earlier_foreign = std::mem::replace(&mut self.last_foreign, foreign);
            (foreign_processes, persisting, e)
        });
        let mut evidence = p.evidence;
        let persisting = if gauges.is_some() {
            self.persisting()
        } else {
            Vec::new()
        };
        for &pid in persisting.iter().take(MAX_STILL_RUNNING) {
            if evidence.len() < crate::schema::MAX_EVIDENCE {
                evidence.push(self.still_running(pid));
            }
        }
        let gauges =
            gauges.map(
                |(foreign_processes, persisting_processes, e)| crate::schema::EndGauges {
                    processes: e.processes,
                    foreign_processes,
                    persisting_processes,
                    threads: e.threads,
                    open_fds: e.open_fds,
                    rss_kb: e.rss_kb,
                    rss_peak_kb: e.rss_peak_kb,
                    tmp_bytes: e.tmp.bytes,
                    tmp_files: e.tmp.files,
                    warden_rss_kb: e.own_rss_kb,
                },
            );
        FeatureRecord {
            warden_schema: SCHEMA_VERSION,
            kind: p.kind.unwrap_or(RecordKind::Invoke),
            request_id: p.request_id,
            function_name: self.cfg.function_name.clone(),
            function_version: self.cfg.function_version.clone(),
            seq: p.seq,
            cold: p.seq == 1,
            start_unix_ms: p.start_unix_ms,
            complete: p.complete,
            status: p.status.unwrap_or(Status::Unknown),
            error_type: p.error_type,
            initialization_type: p.initialization_type,
            platform,
            log: p.log,
            extension_log_lines: p.extension_log_lines,
            unknown_telemetry: p.unknown_telemetry,
            counters,
            gauges: gauges.unwrap_or_default(),
            observed: p.observed,
            unnamed_tasks: p.unnamed_tasks,
            sampler_ticks: p.sampler_ticks,
            evidence,
            evidence_dropped: p.evidence_dropped,
        }
    }

    /// Pids of the processes the init record says were left running, sorted.
    fn left_by_init(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .init
            .iter()
            .flat_map(|p| p.evidence.iter())
            .filter_map(|o| match o {
                Observation::Process {
                    pid,
                    alive_at_end: true,
                    ..
                } => Some(*pid),
                _ => None,
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Foreign pids of the last two record ends: processes that outlived an invocation.
    fn persisting(&self) -> Vec<u32> {
        self.last_foreign
            .iter()
            .copied()
            .filter(|p| self.earlier_foreign.binary_search(p).is_ok())
            .collect()
    }

    fn still_running(&self, pid: u32) -> Observation {
        use crate::sources::procfs::reader::{read_cmdline, read_exe};
        let dir = self.cfg.proc_root.join(pid.to_string());
        Observation::StillRunning {
            pid,
            exe: read_exe(&dir.join("exe")).unwrap_or_default(),
            cmdline: read_cmdline(&dir.join("cmdline"), &mut Vec::new()).unwrap_or_default(),
        }
    }

    /// Live pids that were not there at the first INVOKE, sorted.
    fn foreign(&self, pids: &[u32]) -> Vec<u32> {
        let mut out: Vec<u32> = match &self.baseline {
            Some(base) => pids
                .iter()
                .copied()
                .filter(|p| base.binary_search(p).is_err())
                .collect(),
            None => Vec::new(),
        };
        out.sort_unstable();
        out
    }
}

/// The record in flight: the open invocation, or init before the first INVOKE.
fn current<'a>(
    open: &Option<String>,
    pending: &'a mut [Pending],
    init: &'a mut Option<Pending>,
) -> Option<&'a mut Pending> {
    match open {
        Some(id) => pending
            .iter_mut()
            .find(|p| p.request_id.as_deref() == Some(id.as_str())),
        None => init.as_mut(),
    }
}

/// Keeps `obs` in a record's evidence, at most [`MAX_EVIDENCE`] items: once full, a /tmp
/// file's activity gives way to anything else (a function that writes many files, or one
/// that writes them to push an attack out of its record, keeps its processes, calls and
/// reads in). False when something was dropped, `obs` or the item it replaced.
fn keep_evidence(evidence: &mut Vec<Observation>, obs: Observation) -> bool {
    if evidence.len() < MAX_EVIDENCE {
        evidence.push(obs);
        return true;
    }
    if matches!(obs, Observation::TmpFile { .. }) {
        return false;
    }
    if let Some(i) = evidence
        .iter()
        .position(|o| matches!(o, Observation::TmpFile { .. }))
    {
        evidence.remove(i);
        evidence.push(obs);
    }
    false
}

#[cfg(test)]
mod tests;
