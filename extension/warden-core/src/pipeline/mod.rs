//! The pipeline task: the one place where sources, assembler and sinks meet.
//!
//! Lifecycle events arrive as [`Command`]s (with the counter snapshot already taken),
//! telemetry as parsed batches; the sampler and the file watch run inside the same task.
//! Every stage call is guarded: a panic is caught, logged once and counted, and the
//! extension carries on without that stage.

pub mod detection;
pub mod recycle;
pub mod stopped;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval, sleep, Instant, MissedTickBehavior};

use crate::assembler::{Assembler, Dating};
use crate::clock::{unix_ms, AwakeClock, HOUSEKEEPING};
use crate::health::{Counter, Health};
use crate::schema::{Observation, ShutdownReason};
use crate::sinks::Sinks;
use crate::sources::filewatch::{FileWatch, MAX_WATCHES};
use crate::sources::guard::{self, GuardCall, GuardContext, GuardEvent, GuardHealth, GuardRing};
use crate::sources::procfs::CounterSnapshot;
use crate::sources::sampler::{Sampler, MAX_SEEN_SOCKETS};
use crate::sources::telemetry::guard::{weight, QueueBytes};
use crate::sources::telemetry::TelemetryEvent;

/// Time kept free before the SHUTDOWN deadline.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_millis(300);

/// A lifecycle event with the snapshot taken when it arrived.
#[derive(Debug)]
pub enum Command {
    /// INVOKE.
    Invoke {
        /// Request id.
        request_id: String,
        /// Snapshot taken on receipt.
        snapshot: CounterSnapshot,
        /// Wall-clock receipt time, Unix ms.
        unix_ms: u64,
        /// The invocation's deadline, Unix ms (what the platform gives the runtime too).
        deadline_ms: u64,
        /// Told once the invocation is open here: the lifecycle asks for the next event only
        /// then, as the environment may be frozen as soon as it does (a short invocation
        /// would otherwise be opened only at the next thaw, and what that thaw woke dated to
        /// it).
        accepted: Option<oneshot::Sender<()>>,
    },
    /// SHUTDOWN.
    Shutdown {
        /// SPINDOWN, TIMEOUT or FAILURE.
        reason: ShutdownReason,
        /// Deadline, Unix ms.
        deadline_ms: u64,
        /// Snapshot taken on receipt.
        snapshot: CounterSnapshot,
        /// Told when everything is flushed (a recycle waits for it before Warden exits).
        flushed: Option<oneshot::Sender<()>>,
    },
}

/// The stages the pipeline drives.
pub struct Pipeline {
    /// Shared counters.
    pub health: Arc<Health>,
    /// The assembler.
    pub assembler: Assembler,
    /// The sampler, if enabled.
    pub sampler: Option<Sampler>,
    /// Sampler period.
    pub sampler_interval: Duration,
    /// The file watch (/tmp and program directories), if available.
    pub filewatch: Option<FileWatch>,
    /// Consumers.
    pub sinks: Sinks,
    /// Longest wait for telemetry at SHUTDOWN.
    pub shutdown_wait: Duration,
    /// AWS delivery, flushed at SHUTDOWN.
    pub forwarder: Option<crate::sinks::forward::Forwarder>,
    /// Bytes of telemetry queued by the listener, released as batches arrive here.
    pub telemetry_bytes: QueueBytes,
    /// The in-process guard's events, when its socket is bound.
    pub guard_events: Option<mpsc::Receiver<GuardEvent>>,
    /// The guard's event ring, read here too whenever an invocation begins or ends, so that
    /// what the function did just before is not left waiting for the ring's next poll.
    pub guard_ring: Option<Arc<GuardRing>>,
    /// Who Warden is, to read the guard's events.
    pub guard_context: GuardContext,
    /// What the guard says about itself.
    pub guard_health: GuardHealth,
    /// The program the function's exec wrapper (`AWS_LAMBDA_EXEC_WRAPPER`) runs as, resolved:
    /// a script's interpreter, or the wrapper itself. The platform runs it once, at init,
    /// before the runtime.
    pub exec_wrapper_interpreter: Option<String>,
}

/// Runs `f`, catching a panic: logged once, counted, `None` returned.
fn guard<T>(health: &Health, stage: &str, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            health.note(
                Counter::StagePanics,
                format_args!("the {stage} stage panicked; carrying on"),
            );
            None
        }
    }
}

struct State {
    clock: AwakeClock,
    armed: bool,
    ticks: u64,
    last_tick: Option<Instant>,
    observations: Vec<Observation>,
    /// Programs reported by the file watch, held for the next tick (see `on_programs`).
    programs: Vec<Observation>,
    /// When the last INVOKE was handled.
    armed_at: Option<Instant>,
    /// The environment was frozen since that INVOKE: whatever runs now belongs to the next
    /// invocation, whose INVOKE is not handled yet.
    thawed: bool,
    /// Programs run after a thaw, before its INVOKE: the next invocation's.
    next_programs: Vec<Observation>,
    /// The last gap noticed while an invocation was in flight, judged at its runtimeDone.
    gap: Option<stopped::Gap>,
    /// Programs seen when Warden ran again after that gap, once the next INVOKE came before
    /// the gap could be judged: the gapped invocation's if its runtime worked on meanwhile,
    /// else the next one's.
    gap_programs: Vec<Observation>,
    /// The invocation the last INVOKE closed.
    closed: Option<String>,
    /// When invocations really started, from their deadlines.
    invocation_start: InvocationStart,
    /// Guard events not yet dated to an invocation, and until when they wait.
    /// Each with the moment its wait ends, in arrival order.
    guard_held: VecDeque<(Instant, GuardEvent)>,
    guard_held_until: Option<Instant>,
    /// Guard events stamped after the invocation in flight was done: they wait for the next
    /// INVOKE (see `between_invocations`).
    guard_between: Vec<GuardEvent>,
    /// The guard's recent calls to a destination (connect, send): where and when, to date
    /// the sockets the sampler sees (see `date_sampled_sockets`).
    guard_calls: VecDeque<(SocketAddr, u64)>,
    /// What each guarded process runs, from its guard's hello.
    guard_programs: guard::GuardPrograms,
    /// Guard events stamped before the invocation in flight started, after an earlier one
    /// whose end is not known yet (see `file_guard_event`).
    guard_undated: Vec<GuardEvent>,
}

/// How long a guard event waits for an INVOKE that may be on its way (a little over one
/// sampler period: real time still).
const GUARD_HOLD: Duration = Duration::from_millis(25);
/// Held events beyond which they are handled at once.
const GUARD_HOLD_MAX: usize = 256;
/// The guard's calls remembered to date the sampler's sockets by (see
/// `Pipeline::date_sampled_sockets`), and for how long.
const MAX_GUARD_CALLS: usize = 128;
const GUARD_CALL_MEMORY_MS: u64 = 5_000;

/// When an invocation started, on the platform's clock rather than Warden's: Warden may hear
/// of an INVOKE late (slowed, stopped, or simply after the runtime), and events stamped by the
/// guard in between must still find their invocation. Every deadline is the start plus the
/// function's timeout, which Lambda takes in whole seconds: the gap between receipt and
/// deadline, rounded up to a second, is that timeout as long as Warden hears of an INVOKE
/// less than a second late (the largest seen so far is kept). Without the rounding, a start
/// estimated from INVOKEs all heard a few milliseconds late would lie after what the runtime
/// did in those milliseconds, and give it to the invocation before.
#[derive(Debug, Default)]
struct InvocationStart {
    timeout_ms: u64,
}

impl InvocationStart {
    fn started(&mut self, received_ms: u64, deadline_ms: u64) -> u64 {
        let left_ms = deadline_ms.saturating_sub(received_ms);
        self.timeout_ms = self.timeout_ms.max(left_ms.div_ceil(1000) * 1000);
        deadline_ms.saturating_sub(self.timeout_ms).min(received_ms)
    }
}

impl Pipeline {
    /// Adds the detector: a record sink, an observation sink and, with AWS destinations,
    /// the forwarder flushed at SHUTDOWN.
    pub fn add_detector(&mut self, detector: detection::DetectorSink) {
        self.forwarder = detector.forwarder();
        self.sinks.records.push(Box::new(detector.clone()));
        self.sinks.observers.push(Box::new(detector));
    }

    /// Runs until SHUTDOWN has been handled (or both inputs closed), then signals `done`.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut telemetry: mpsc::Receiver<Vec<TelemetryEvent>>,
        done: oneshot::Sender<()>,
    ) {
        let mut st = State {
            clock: AwakeClock::default(),
            armed: false,
            ticks: 0,
            last_tick: None,
            observations: Vec::with_capacity(16),
            programs: Vec::new(),
            armed_at: None,
            thawed: false,
            next_programs: Vec::new(),
            gap: None,
            gap_programs: Vec::new(),
            closed: None,
            invocation_start: InvocationStart::default(),
            guard_held: VecDeque::new(),
            guard_held_until: None,
            guard_between: Vec::new(),
            guard_calls: VecDeque::new(),
            guard_programs: guard::GuardPrograms::default(),
            guard_undated: Vec::new(),
        };
        let mut sampler_timer = interval(self.sampler_interval);
        sampler_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut housekeeping = interval(HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut telemetry_open = true;
        // The init phase is sampled like an invocation (what it starts is judged with the
        // init record), when the sampler was started with it.
        if self.sampler.as_ref().is_some_and(Sampler::sampling_init) {
            st.armed = true;
            st.armed_at = Some(Instant::now());
        }
        loop {
            tokio::select! {
                // In this order: after a thaw, the INVOKE and the telemetry that say which
                // invocation is in flight go before a sampler tick.
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::Invoke { request_id, snapshot, unix_ms, deadline_ms, accepted }) => {
                        self.catch_up_guard(&mut st);
                        let started = st.invocation_start.started(unix_ms, deadline_ms);
                        self.on_invoke(&mut st, &request_id, snapshot, unix_ms, started);
                        if let Some(accepted) = accepted {
                            let _ = accepted.send(());
                        }
                        self.release_guard_events(&mut st);
                        // The INVOKE's snapshot has just read what a tick reads: the first
                        // tick comes one period later, not at once.
                        sampler_timer.reset();
                    }
                    Some(Command::Shutdown { reason, deadline_ms, snapshot, flushed }) => {
                        self.catch_up_guard(&mut st);
                        self.release_guard_events(&mut st);
                        self.file_undated_guard_events(&mut st, true);
                        self.on_shutdown(&mut st, &reason, deadline_ms, snapshot, &mut telemetry).await;
                        if let Some(flushed) = flushed {
                            let _ = flushed.send(());
                        }
                        break;
                    }
                    None => break,
                },
                batch = telemetry.recv(), if telemetry_open => match batch {
                    Some(events) => {
                        // A runtimeDone may close the record: the guard's news from before
                        // the runtime was done goes first, its wait cut short (held past the
                        // record's end, an event the record could still have carried was
                        // lost). What came after waits for the next INVOKE: it may be that
                        // invocation's thaw. The runtimeDone also decides what waited for
                        // the earlier invocation's end.
                        self.catch_up_guard(&mut st);
                        for event in &events {
                            if let TelemetryEvent::RuntimeDone(r) = event {
                                self.assembler.note_end(r);
                            }
                        }
                        self.release_guard_events_of_open(&mut st);
                        self.file_undated_guard_events(&mut st, false);
                        self.on_telemetry(&mut st, events);
                    }
                    None => telemetry_open = false,
                },
                at = sampler_timer.tick(), if st.armed && self.sampler.is_some() => self.on_tick(&mut st, at),
                result = next_file_event(&mut self.filewatch, &mut st.observations), if self.filewatch.is_some() => {
                    if let Err(e) = result {
                        crate::warn!("file watch stopped: {e}");
                        self.filewatch = None;
                    }
                    self.note_thaw(&mut st, Instant::now());
                    self.on_programs(&mut st);
                    self.publish(&mut st);
                },
                event = next_guard_event(&mut self.guard_events), if self.guard_events.is_some() => match event {
                    Some(event) => self.hold_guard_event(&mut st, event),
                    None => self.guard_events = None,
                },
                _ = sleep_until(st.guard_held_until.unwrap_or_else(Instant::now)), if st.guard_held_until.is_some() => {
                    self.release_waited_guard_events(&mut st);
                },
                // Only while a closed record waits: no wake-ups during a plain invocation.
                _ = housekeeping.tick(), if self.assembler.waiting() => self.emit_ready(&mut st),
            }
        }
        let _ = done.send(());
    }

    fn on_invoke(
        &mut self,
        st: &mut State,
        request_id: &str,
        snapshot: CounterSnapshot,
        unix_ms: u64,
        started_ms: u64,
    ) {
        let now = st.clock.now();
        st.closed = self.assembler.open_request().map(str::to_string);
        if let Some(sampler) = self.sampler.as_mut() {
            sampler.end_init_at(unix_ms);
            if st.armed {
                // The runtime got this INVOKE when Warden did: what it has started since is
                // not the closing invocation's.
                sampler.next_invocation_at(started_ms);
            }
        }
        self.close_sampling(st, &snapshot);
        if let Some(sampler) = self.sampler.as_ref() {
            self.assembler.started_by_next(&sampler.carried_to_next());
        }
        let health = self.health.clone();
        guard(&health, "assembler", || {
            self.assembler
                .invoke(request_id, snapshot.clone(), started_ms, now)
        });
        if let Some(sampler) = self.sampler.as_mut() {
            let mut started = Vec::new();
            if guard(&health, "sampler", || {
                sampler.begin(&snapshot.pids, snapshot.last_pid, &mut started)
            })
            .is_none()
            {
                self.sampler = None;
            }
            st.observations.extend(started);
            self.publish(st);
        }
        st.armed = self.sampler.is_some();
        st.armed_at = Some(Instant::now());
        st.thawed = false;
        if !st.armed {
            // No tick to wait for: the programs queued at the thaw go out now.
            self.release_programs(st);
        }
        st.ticks = 0;
        st.last_tick = None;
        self.emit_ready(st);
    }

    /// Ends sampling for the invocation being closed: processes left running are its own.
    fn close_sampling(&mut self, st: &mut State, snapshot: &CounterSnapshot) {
        if st.armed {
            // A gap no tick has noticed yet (this INVOKE came first after Warden ran again)
            // is noted now, so that what was queued meanwhile waits for the runtimeDone's
            // verdict: a freeze (the next invocation's) or Warden stopped (this one's).
            self.note_thaw(st, Instant::now());
            // Its runtimeDone has not come yet: its last pass is now.
            self.sample_final(st);
            self.publish(st);
        }
        self.drop_runtime_programs(st);
        self.release_programs(st);
        let health = self.health.clone();
        if let Some(watch) = self.filewatch.as_mut() {
            let mut queued = Vec::new();
            guard(&health, "filewatch", || {
                watch.drain_now(&mut queued);
                watch.new_invocation();
            });
            // Files stay with the invocation that wrote them. A program still queued is
            // the next invocation's: while an invocation runs Warden reads the watch at
            // once, so what waits here was run after the thaw, by a runtime that got the
            // INVOKE before Warden did.
            let (programs, files): (Vec<_>, Vec<_>) = queued
                .into_iter()
                .partition(|o| matches!(o, Observation::Program { .. }));
            st.observations.extend(files);
            self.publish(st);
            st.programs = programs;
        }
        self.flush_gap_programs(st);
        let closing = self.assembler.open_request();
        if st
            .gap
            .as_ref()
            .is_some_and(|g| Some(g.request_id.as_str()) == closing)
        {
            // Run after a freeze (the next invocation's) or while Warden was stopped (this
            // one's): its runtimeDone will tell.
            st.gap_programs.append(&mut st.programs);
            st.gap_programs.append(&mut st.next_programs);
        } else {
            st.programs.append(&mut st.next_programs);
        }
        self.note_bounds();
        if let Some(sampler) = self.sampler.as_mut() {
            let unnamed = sampler.unnamed_tasks();
            let mut end = Vec::new();
            guard(&health, "sampler", || {
                sampler.finish(&snapshot.pids, &mut end)
            });
            self.assembler.sampler_stats(st.ticks, unnamed);
            st.observations.extend(end);
            self.publish(st);
        }
        st.ticks = 0;
        st.armed = false;
    }

    /// Counts the bounds the sources met during the invocation being closed.
    fn note_bounds(&mut self) {
        let health = self.health.clone();
        if let Some(watch) = self.filewatch.as_mut() {
            let counts = watch.take_counts();
            if counts.overflows > 0 {
                health.note(
                    Counter::WatchOverflows,
                    format_args!("inotify queue overflowed; the scratch tree was rescanned"),
                );
                health.add(Counter::WatchOverflows, counts.overflows - 1);
            }
            if counts.limited > 0 {
                health.note(
                    Counter::WatchLimit,
                    format_args!("more than {MAX_WATCHES} directories under the scratch tree; the rest are not watched"),
                );
                health.add(Counter::WatchLimit, counts.limited - 1);
            }
        }
        if let Some(sampler) = self.sampler.as_mut() {
            let evicted = sampler.take_evictions();
            if evicted > 0 {
                health.note(
                    Counter::SocketsEvicted,
                    format_args!(
                        "more than {MAX_SEEN_SOCKETS} sockets seen; closed ones forgotten"
                    ),
                );
                health.add(Counter::SocketsEvicted, evicted - 1);
            }
        }
    }

    fn on_telemetry(&mut self, st: &mut State, events: Vec<TelemetryEvent>) {
        self.telemetry_bytes.release(weight(&events));
        let now = st.clock.now();
        let health = self.health.clone();
        for event in events {
            // runtimeDone ends the invocation's own work: sampling stops there.
            if let TelemetryEvent::RuntimeDone(r) = &event {
                self.judge_gap(st, &r.request_id, r.time_unix_ms);
                let in_flight = self.assembler.open_request() == Some(r.request_id.as_str());
                if in_flight {
                    if let Some(sampler) = self.sampler.as_mut() {
                        guard(&health, "sampler", || sampler.mark_end(r.time_unix_ms));
                    }
                }
                if st.armed && in_flight {
                    // A last pass names what the runtime did since the last tick (a short
                    // invocation may end before any tick comes).
                    self.sample_final(st);
                    self.publish(st);
                    let unnamed = self.sampler.as_ref().map_or(0, Sampler::unnamed_tasks);
                    self.assembler.sampler_stats(st.ticks, unnamed);
                    st.ticks = 0;
                    st.armed = false;
                    self.release_programs(st);
                }
                if st.closed.as_deref() == Some(r.request_id.as_str()) {
                    self.resolve_leftovers(st, r.request_id.as_str(), r.time_unix_ms);
                }
            }
            guard(&health, "assembler", || {
                self.assembler.telemetry(event, now)
            });
        }
        self.emit_ready(st);
    }

    /// A gap noticed during `request_id` is judged by when its runtime finished: a freeze,
    /// or Warden stopped while the function ran (tampering).
    fn judge_gap(&mut self, st: &mut State, request_id: &str, ended_at: Option<u64>) {
        if st.gap.as_ref().is_none_or(|g| g.request_id != request_id) {
            return;
        }
        let Some(gap) = st.gap.take() else {
            return;
        };
        let Some(ended_at) = ended_at else {
            self.flush_gap_programs(st);
            return;
        };
        if gap.was_stop(ended_at) {
            let health = self.health.clone();
            guard(&health, "assembler", || self.assembler.stopped(request_id));
        }
        if !gap.runtime_ran_on(ended_at) {
            self.flush_gap_programs(st);
            return;
        }
        // Not a thaw after all (Warden was stopped, or starved, while the runtime worked on):
        // what ran meanwhile is this invocation's.
        if self.assembler.open_request() == Some(request_id) {
            st.thawed = false;
            st.programs.append(&mut st.next_programs);
        }
        let health = self.health.clone();
        let pending = self.assembler.is_pending(request_id);
        for obs in std::mem::take(&mut st.gap_programs) {
            guard(&health, "observers", || {
                self.sinks.observe(Some(request_id), &obs)
            });
            if pending {
                guard(&health, "assembler", || {
                    self.assembler.observe_for(request_id, obs)
                });
            } else {
                health.add(Counter::ObservationsDropped, 1);
            }
        }
    }

    /// Programs held for a gap's verdict that no longer wait for it: to the invocation in
    /// flight, as if the gap had been a freeze.
    fn flush_gap_programs(&mut self, st: &mut State) {
        if !st.gap_programs.is_empty() {
            st.observations.append(&mut st.gap_programs);
            self.publish(st);
        }
    }

    /// The closed invocation's end time arrived: processes alive at the INVOKE that
    /// followed it go to the invocation that started them.
    fn resolve_leftovers(&mut self, st: &mut State, closed: &str, ended_at: Option<u64>) {
        let health = self.health.clone();
        let Some(sampler) = self.sampler.as_mut().filter(|s| s.undecided()) else {
            return;
        };
        let (mut left, mut started) = (Vec::new(), Vec::new());
        // Without a time, nothing says they are new: they count as left running.
        let ended_at = ended_at.unwrap_or(u64::MAX);
        guard(&health, "sampler", || {
            sampler.resolve(ended_at, &mut left, &mut started)
        });
        for obs in left {
            guard(&health, "observers", || {
                self.sinks.observe(Some(closed), &obs)
            });
            guard(&health, "assembler", || {
                self.assembler.observe_for(closed, obs)
            });
        }
        st.observations.extend(started);
        self.publish(st);
    }

    fn on_tick(&mut self, st: &mut State, at: Instant) {
        // After a freeze the INVOKE that thawed the environment may not be processed yet, so
        // this tick could be blamed on the wrong invocation. Skip it; the next one comes an
        // interval later.
        if self.note_thaw(st, at) {
            return;
        }
        st.last_tick = Some(at);
        self.sample(st);
        self.publish(st);
    }

    /// Notes a thaw: sampling is armed, yet nothing happened for longer than a tick could be
    /// late (the environment was frozen). True when thawed.
    fn note_thaw(&self, st: &mut State, now: Instant) -> bool {
        let last = st.last_tick.or(st.armed_at);
        let limit = (self.sampler_interval * 4).max(Duration::from_millis(50));
        if let (true, false, Some(t)) = (st.armed, st.thawed, last) {
            let gap = now.saturating_duration_since(t);
            if gap > limit {
                st.thawed = true;
                st.gap = self.assembler.open_request().map(|id| {
                    let to = unix_ms();
                    stopped::Gap {
                        request_id: id.to_string(),
                        from_unix_ms: to.saturating_sub(gap.as_millis() as u64),
                        to_unix_ms: to,
                    }
                });
            }
        }
        st.thawed
    }

    /// A program was just run. The watch sees the exec as it starts, when /proc still shows
    /// the parent's command line; while the sampler runs, the program is held for its next
    /// tick (≤ one interval later), so that a process still alive is named first, with its
    /// command line, and becomes the evidence. A program already gone has only this name.
    fn on_programs(&mut self, st: &mut State) {
        if !st.armed {
            return;
        }
        let (programs, rest): (Vec<Observation>, Vec<Observation>) = st
            .observations
            .drain(..)
            .partition(|o| matches!(o, Observation::Program { .. }));
        st.observations = rest;
        if st.thawed {
            // Run by the runtime for the invocation whose INVOKE comes next.
            st.next_programs.extend(programs);
        } else {
            st.programs.extend(programs);
        }
    }

    /// Publishes the programs held for a tick (the sampler stops, or the tick came).
    fn release_programs(&mut self, st: &mut State) {
        if !st.programs.is_empty() {
            st.observations.append(&mut st.programs);
            self.publish(st);
        }
    }

    /// A call the guard saw: evidence for the record in flight (or init), at once.
    /// Guard events wait a moment before they are dated to an invocation: the runtime can
    /// act on an invocation before Warden has handled its INVOKE, and an event handled
    /// first would go to the invocation before.
    fn hold_guard_event(&mut self, st: &mut State, event: GuardEvent) {
        if let GuardCall::Connect { addr, .. } | GuardCall::Send { addr, .. } = &event.call {
            if st.guard_calls.len() >= MAX_GUARD_CALLS {
                st.guard_calls.pop_front();
            }
            st.guard_calls.push_back((*addr, event.unix_ms));
        }
        if let (GuardCall::Exec { .. }, Some(sampler)) = (&event.call, self.sampler.as_mut()) {
            sampler.note_exec(event.pid, event.unix_ms);
        }
        // Each event waits its own while: one that arrives just before an earlier one's wait
        // ends must still get the chance to meet its INVOKE.
        let until = Instant::now() + GUARD_HOLD;
        st.guard_held.push_back((until, event));
        if st.guard_held.len() >= GUARD_HOLD_MAX {
            self.release_guard_events(st);
        } else if st.guard_held_until.is_none() {
            st.guard_held_until = Some(until);
        }
    }

    /// Dates the held events whose wait is over, and waits for the next one's.
    fn release_waited_guard_events(&mut self, st: &mut State) {
        let now = Instant::now();
        let mut due = Vec::new();
        while st
            .guard_held
            .front()
            .is_some_and(|(until, _)| *until <= now)
        {
            if let Some((_, event)) = st.guard_held.pop_front() {
                due.push(event);
            }
        }
        st.guard_held_until = st.guard_held.front().map(|(until, _)| *until);
        for event in due {
            self.date_or_wait(st, event);
        }
    }

    /// Whether a guard event happened after the invocation in flight was done: in its
    /// runtime's last moments before the freeze, or at the thaw that begins the next one
    /// (a planted timer fires at once). Only the next start tells which (`Assembler::date`),
    /// so such an event waits for the next INVOKE.
    fn between_invocations(&self, event: &GuardEvent) -> bool {
        self.assembler
            .open_end_unix_ms()
            .is_some_and(|end| event.unix_ms > end)
    }

    /// Dates an event whose wait is over, unless it happened after the invocation in flight
    /// was done (bounded: past [`GUARD_HOLD_MAX`] such events, all are dated at once).
    fn date_or_wait(&mut self, st: &mut State, event: GuardEvent) {
        if !self.between_invocations(&event) {
            self.on_guard(st, &event);
            return;
        }
        st.guard_between.push(event);
        if st.guard_between.len() >= GUARD_HOLD_MAX {
            for event in std::mem::take(&mut st.guard_between) {
                self.on_guard(st, &event);
            }
        }
    }

    /// Dates the held events stamped before the invocation in flight was done (its
    /// `runtimeDone` in hand): a telemetry batch may close its record. The others keep their
    /// wait: they may be the thaw of an invocation whose INVOKE is on its way.
    fn release_guard_events_of_open(&mut self, st: &mut State) {
        let Some(end) = self.assembler.open_end_unix_ms() else {
            return;
        };
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut st.guard_held)
            .into_iter()
            .partition(|(_, event)| event.unix_ms <= end);
        st.guard_held = waiting.into();
        st.guard_held_until = st.guard_held.front().map(|(until, _)| *until);
        for (_, event) in done {
            self.on_guard(st, &event);
        }
    }

    /// Takes every guard event already sent, from the socket's queue and the ring, without
    /// waiting.
    fn catch_up_guard(&mut self, st: &mut State) {
        let mut events = Vec::new();
        if let Some(rx) = self.guard_events.as_mut() {
            while let Ok(event) = rx.try_recv() {
                events.push(event);
            }
        }
        if let Some(ring) = &self.guard_ring {
            ring.drain(|event| events.push(event));
        }
        for event in events {
            self.hold_guard_event(st, event);
        }
    }

    fn release_guard_events(&mut self, st: &mut State) {
        st.guard_held_until = None;
        let mut held: Vec<GuardEvent> = std::mem::take(&mut st.guard_between);
        held.extend(
            std::mem::take(&mut st.guard_held)
                .into_iter()
                .map(|(_, event)| event),
        );
        for event in &held {
            self.on_guard(st, event);
        }
    }

    fn on_guard(&mut self, st: &mut State, event: &GuardEvent) {
        self.guard_health.note(event, &self.health);
        st.guard_programs.note(event);
        self.file_guard_event(st, event, false);
    }

    /// Files a guard event with the invocation it belongs to. One whose invocation is still
    /// undecided (`Assembler::date`) waits for the earlier invocation's `runtimeDone`, unless
    /// `now` (or too many wait already): then it goes to the invocation that had started.
    fn file_guard_event(&mut self, st: &mut State, event: &GuardEvent, now: bool) {
        let request_id = match self.assembler.date(event.unix_ms) {
            Dating::Open => {
                let from = st.observations.len();
                guard::observations(
                    event,
                    &self.guard_context,
                    &st.guard_programs,
                    &mut st.observations,
                );
                if self.assembler.before_open_start(event.unix_ms) {
                    for obs in &mut st.observations[from..] {
                        if let Observation::Connect { at_thaw, .. } = obs {
                            *at_thaw = true;
                        }
                    }
                }
                self.publish(st);
                return;
            }
            Dating::Init => {
                let mut found = Vec::new();
                guard::observations(event, &self.guard_context, &st.guard_programs, &mut found);
                // Judged with the init record, not in real time.
                for obs in found {
                    self.assembler.observe_init(obs);
                }
                return;
            }
            Dating::Earlier(id) => id.to_string(),
            Dating::Undecided(id) => {
                if !now && st.guard_undated.len() < GUARD_HOLD_MAX {
                    st.guard_undated.push(event.clone());
                    return;
                }
                id.to_string()
            }
        };
        // Sent during an invocation that has since ended (Warden was slow or stopped): the
        // evidence goes to that invocation's record, and real-time findings name it.
        // Once that record is out, only the real-time finding can still name it.
        let mut found = Vec::new();
        guard::observations(event, &self.guard_context, &st.guard_programs, &mut found);
        let health = self.health.clone();
        let pending = self.assembler.is_pending(&request_id);
        for obs in found {
            guard(&health, "observers", || {
                self.sinks.observe(Some(&request_id), &obs)
            });
            if pending {
                guard(&health, "assembler", || {
                    self.assembler.observe_for(&request_id, obs)
                });
            } else {
                health.add(Counter::ObservationsDropped, 1);
            }
        }
    }

    /// Files the events that waited for an earlier invocation's end, now that more is
    /// known (`now`: whatever is known).
    fn file_undated_guard_events(&mut self, st: &mut State, now: bool) {
        for event in std::mem::take(&mut st.guard_undated) {
            self.file_guard_event(st, &event, now);
        }
    }

    fn sample(&mut self, st: &mut State) {
        let health = self.health.clone();
        let Some(sampler) = self.sampler.as_mut() else {
            return;
        };
        let mut found = std::mem::take(&mut st.observations);
        if guard(&health, "sampler", || sampler.tick(&mut found)).is_none() {
            self.sampler = None;
            st.armed = false;
        }
        st.observations = found;
        self.date_sampled_sockets(st);
        self.drop_runtime_programs(st);
        st.observations.append(&mut st.programs);
        st.ticks += 1;
    }

    /// Sockets the sampler saw to a destination the guard reported a call to go where that
    /// call goes: the guard's clock dates it, the sampler's tick does not (a tick between the
    /// runtime's end and the INVOKE Warden has not handled yet, or the last pass of an
    /// invocation made after the next one began, sees the next one's socket). Without such a
    /// call (the process is not guarded) a socket stays with the tick that saw it.
    fn date_sampled_sockets(&mut self, st: &mut State) {
        if !st
            .observations
            .iter()
            .any(|o| matches!(o, Observation::Endpoint { listen: false, .. }))
        {
            return;
        }
        // The guard reports a call before its socket exists: its event is already sent.
        self.catch_up_guard(st);
        let now = unix_ms();
        let mut dated = Vec::new();
        st.observations.retain(|obs| {
            let Observation::Endpoint {
                addr,
                listen: false,
                ..
            } = obs
            else {
                return true;
            };
            let call = st
                .guard_calls
                .iter()
                .rev()
                .find(|(to, at)| to == addr && now.saturating_sub(*at) <= GUARD_CALL_MEMORY_MS);
            match call {
                Some(&(_, at)) => {
                    dated.push(GuardEvent::sampled(at, obs.clone()));
                    false
                }
                None => true,
            }
        });
        for event in dated {
            self.hold_guard_event(st, event);
        }
    }

    /// During init, the programs the file watch saw that the tick before named as the
    /// runtime starting (its bootstrap, the interpreter it runs) are not the function's.
    fn drop_runtime_programs(&mut self, st: &mut State) {
        if let Some(sampler) = self.sampler.as_ref().filter(|s| s.sampling_init()) {
            st.programs.retain(
                |o| !matches!(o, Observation::Program { exe } if sampler.is_lineage_exe(exe)),
            );
            // The wrapper's interpreter, once: the platform's start of the runtime, even when
            // the sampler only saw the process after it exec'd the runtime.
            if let Some(interpreter) = &self.exec_wrapper_interpreter {
                let position = st
                    .programs
                    .iter()
                    .position(|o| matches!(o, Observation::Program { exe } if exe == interpreter));
                if let Some(position) = position {
                    st.programs.remove(position);
                    self.exec_wrapper_interpreter = None;
                }
            }
        }
    }

    /// The invocation's last sampling pass, at its runtimeDone: the socket tables are read
    /// if anything opened since their last read, however recently that was.
    fn sample_final(&mut self, st: &mut State) {
        let health = self.health.clone();
        let Some(sampler) = self.sampler.as_mut() else {
            return;
        };
        let mut found = Vec::new();
        if guard(&health, "sampler", || sampler.final_tick(&mut found)).is_none() {
            self.sampler = None;
        }
        st.observations.extend(found);
        self.date_sampled_sockets(st);
    }

    /// Sends new observations to real-time consumers and into the record in flight.
    fn publish(&mut self, st: &mut State) {
        let health = self.health.clone();
        for obs in st.observations.drain(..) {
            let open = self.assembler.open_request().map(str::to_string);
            guard(&health, "observers", || {
                self.sinks.observe(open.as_deref(), &obs)
            });
            guard(&health, "assembler", || self.assembler.observe(obs));
        }
    }

    fn emit_ready(&mut self, st: &mut State) {
        let now = st.clock.now();
        let health = self.health.clone();
        let records = guard(&health, "assembler", || self.assembler.poll(now)).unwrap_or_default();
        self.report_tampers();
        for r in &records {
            guard(&health, "sinks", || self.sinks.record(r));
        }
    }

    /// Tampering the assembler noticed goes to the real-time observers at once (the record
    /// in flight already carries it), so a forged runtimeDone is reported while the
    /// invocation still runs.
    fn report_tampers(&mut self) {
        let health = self.health.clone();
        for (request_id, obs) in self.assembler.take_tampers() {
            guard(&health, "observers", || {
                self.sinks.observe(request_id.as_deref(), &obs)
            });
        }
    }

    async fn on_shutdown(
        &mut self,
        st: &mut State,
        reason: &ShutdownReason,
        deadline_ms: u64,
        snapshot: CounterSnapshot,
        telemetry: &mut mpsc::Receiver<Vec<TelemetryEvent>>,
    ) {
        st.closed = self.assembler.open_request().map(str::to_string);
        if let Some(sampler) = self.sampler.as_mut() {
            sampler.end_init_at(unix_ms());
            sampler.shutting_down();
        }
        self.close_sampling(st, &snapshot);
        // No next invocation: what was still queued is the last one's.
        self.release_programs(st);
        let now = st.clock.now();
        let health = self.health.clone();
        guard(&health, "assembler", || {
            self.assembler.shutdown(reason, snapshot, now)
        });
        let left = Duration::from_millis(deadline_ms.saturating_sub(unix_ms()))
            .saturating_sub(SHUTDOWN_MARGIN);
        // A recycle ends the environment before Lambda reports the invocation: no report
        // is coming.
        let wait = if *reason == ShutdownReason::Recycle {
            Duration::ZERO
        } else {
            self.shutdown_wait.min(left)
        };
        let until = Instant::now() + wait;
        // Wait only for what is still missing: the last invocation's runtimeDone/report.
        while !self.assembler.settled() {
            tokio::select! {
                batch = telemetry.recv() => match batch {
                    Some(events) => self.on_telemetry(st, events),
                    None => break,
                },
                _ = sleep_until(until) => break,
            }
        }
        // What has arrived already goes in, waited for or not (a recycle's runtimeDone).
        while let Ok(events) = telemetry.try_recv() {
            self.on_telemetry(st, events);
        }
        let now = st.clock.now();
        let records = guard(&health, "assembler", || self.assembler.flush(now)).unwrap_or_default();
        for r in &records {
            guard(&health, "sinks", || self.sinks.record(r));
        }
        let snapshot = self.health.snapshot();
        guard(&health, "sinks", || self.sinks.finish(&snapshot));
        if let Some(f) = &self.forwarder {
            let left = Duration::from_millis(deadline_ms.saturating_sub(unix_ms()))
                .saturating_sub(SHUTDOWN_MARGIN);
            f.flush(Instant::now() + left).await;
        }
        crate::info!(
            "shutdown ({reason}): {} records emitted, {} incomplete",
            self.health.get(Counter::RecordsEmitted),
            self.health.get(Counter::RecordsIncomplete)
        );
        let (findings, datums) = (
            self.health.get(Counter::FindingsDropped),
            self.health.get(Counter::MetricsDropped),
        );
        if findings + datums > 0 {
            // Said once, at the end: what could not be delivered is not silently lost.
            crate::warn!(
                "shutdown ({reason}): {findings} findings dropped, {datums} metric datums dropped, {} failed deliveries",
                self.health.get(Counter::SinkErrors)
            );
        }
    }
}

async fn next_guard_event(events: &mut Option<mpsc::Receiver<GuardEvent>>) -> Option<GuardEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Instant) {
    sleep(at.saturating_duration_since(Instant::now())).await;
}

async fn next_file_event(
    watch: &mut Option<FileWatch>,
    out: &mut Vec<Observation>,
) -> std::io::Result<()> {
    match watch {
        Some(w) => w.next(out).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod invocation_start_tests {
    use super::InvocationStart;

    #[test]
    fn an_invoke_heard_late_is_dated_from_its_deadline() {
        let mut start = InvocationStart::default();
        // Heard at once: a 3 s timeout.
        assert_eq!(start.started(10_000, 13_000), 10_000);
        // Heard 300 ms late (Warden was stopped): started when its deadline says.
        assert_eq!(start.started(20_300, 23_000), 20_000);
        // The estimate only grows toward the real timeout.
        assert_eq!(start.started(30_000, 33_000), 30_000);
    }

    #[test]
    fn invokes_all_heard_a_little_late_still_date_the_start_exactly() {
        let mut start = InvocationStart::default();
        // A 3 s timeout; every INVOKE heard 2 to 6 ms after the platform started it.
        assert_eq!(start.started(10_006, 13_000), 10_000);
        assert_eq!(start.started(20_002, 23_000), 20_000);
        assert_eq!(start.started(30_004, 33_000), 30_000);
    }
}
