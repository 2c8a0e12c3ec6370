//! Which telemetry the assembler believes: records only for request ids the Extensions API
//! announced (an INVOKE), and for each request the platform's first `runtimeDone` and
//! `report`, which a later, different one cannot replace.
//!
//! Lambda hands the INVOKE to Warden and starts the invocation at the same moment, so a
//! `platform.start` can reach the pipeline just before the INVOKE it belongs to. Telemetry
//! for an id not announced yet is therefore held for [`ANNOUNCE_WINDOW`] of awake time;
//! only if no INVOKE names the id by then is it given up (and platform events for it are
//! reported as tampering).

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::sources::telemetry::TelemetryEvent;

/// How long telemetry for an id waits for the INVOKE that announces it (awake time: a
/// freeze counts as one short step).
pub const ANNOUNCE_WINDOW: Duration = Duration::from_secs(1);
/// Most unannounced request ids held at once.
const HELD_IDS: usize = 8;
/// Most events held per unannounced id.
const HELD_EVENTS: usize = 16;

/// The request id an event is about, if it names one.
pub(super) fn request_of(event: &TelemetryEvent) -> Option<&str> {
    match event {
        TelemetryEvent::Start { request_id } => Some(request_id),
        TelemetryEvent::RuntimeDone(r) => Some(&r.request_id),
        TelemetryEvent::Report(r) => Some(&r.request_id),
        TelemetryEvent::FunctionLog { request_id, .. } => request_id.as_deref(),
        _ => None,
    }
}

/// Whether the platform sent it (the function's own log lines may name any id).
pub(super) fn from_platform(event: &TelemetryEvent) -> bool {
    matches!(
        event,
        TelemetryEvent::Start { .. } | TelemetryEvent::RuntimeDone(_) | TelemetryEvent::Report(_)
    )
}

/// Telemetry for one request id that no INVOKE has announced yet.
#[derive(Debug)]
pub(super) struct Held {
    /// The request id.
    pub(super) id: String,
    /// Awake time the first event arrived.
    pub(super) since: Duration,
    /// The events, in arrival order.
    pub(super) events: Vec<TelemetryEvent>,
}

/// The held telemetry, bounded in ids and events.
#[derive(Debug, Default)]
pub(super) struct HeldTelemetry(VecDeque<Held>);

impl HeldTelemetry {
    /// Holds `event` for `id`; returns the oldest held id when that had to make room.
    pub(super) fn hold(&mut self, id: &str, event: TelemetryEvent, now: Duration) -> Option<Held> {
        if let Some(h) = self.0.iter_mut().find(|h| h.id == id) {
            if h.events.len() < HELD_EVENTS {
                h.events.push(event);
            }
            return None;
        }
        let evicted = if self.0.len() >= HELD_IDS {
            self.0.pop_front()
        } else {
            None
        };
        self.0.push_back(Held {
            id: id.to_string(),
            since: now,
            events: vec![event],
        });
        evicted
    }

    /// What is held for `id`, now announced.
    pub(super) fn take(&mut self, id: &str) -> Option<Held> {
        let i = self.0.iter().position(|h| h.id == id)?;
        self.0.remove(i)
    }

    /// Ids held for longer than the window: never announced.
    pub(super) fn expired(&mut self, now: Duration) -> Vec<Held> {
        let mut out = Vec::new();
        while self
            .0
            .front()
            .is_some_and(|h| now.saturating_sub(h.since) >= ANNOUNCE_WINDOW)
        {
            out.extend(self.0.pop_front());
        }
        out
    }

    /// Everything held (SHUTDOWN: no INVOKE comes any more).
    pub(super) fn drain(&mut self) -> Vec<Held> {
        self.0.drain(..).collect()
    }

    /// Nothing held.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What to do with a platform figures event for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The first of its kind: use it.
    Apply,
    /// The same event again (a re-sent batch): ignore it.
    Duplicate,
    /// A different one after the first: ignore it, and report it.
    Overwrite,
}

/// Fingerprints of the first `runtimeDone` and `report` taken for a request.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Firsts {
    runtime_done: Option<u64>,
    report: Option<u64>,
}

impl Firsts {
    /// Checks a `runtimeDone` or `report` against the first one (other events: `Apply`).
    pub(super) fn check(&mut self, event: &TelemetryEvent) -> Verdict {
        let (slot, print) = match event {
            TelemetryEvent::RuntimeDone(r) => (&mut self.runtime_done, fingerprint(r)),
            TelemetryEvent::Report(r) => (&mut self.report, fingerprint(r)),
            _ => return Verdict::Apply,
        };
        match slot {
            None => {
                *slot = Some(print);
                Verdict::Apply
            }
            Some(first) if *first == print => Verdict::Duplicate,
            Some(_) => Verdict::Overwrite,
        }
    }
}

/// A stable digest of an event's figures (floats included, by their printed form).
fn fingerprint(value: &impl std::fmt::Debug) -> u64 {
    let mut h = DefaultHasher::new();
    format!("{value:?}").hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(id: &str) -> TelemetryEvent {
        TelemetryEvent::Start {
            request_id: id.into(),
        }
    }

    #[test]
    fn held_ids_expire_after_the_window_oldest_first() {
        let mut h = HeldTelemetry::default();
        assert!(h.hold("a", start("a"), Duration::ZERO).is_none());
        assert!(h
            .hold("b", start("b"), Duration::from_millis(500))
            .is_none());
        assert!(h.expired(Duration::from_millis(999)).is_empty());
        let gone = h.expired(Duration::from_millis(1000));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, "a");
        assert_eq!(h.take("b").map(|x| x.events.len()), Some(1));
        assert!(h.is_empty());
    }

    #[test]
    fn holding_is_bounded() {
        let mut h = HeldTelemetry::default();
        for i in 0..HELD_IDS {
            assert!(h.hold(&i.to_string(), start("x"), Duration::ZERO).is_none());
        }
        let evicted = h.hold("new", start("new"), Duration::ZERO).unwrap();
        assert_eq!(evicted.id, "0");
        for _ in 0..100 {
            h.hold("new", start("new"), Duration::ZERO);
        }
        assert_eq!(h.take("new").unwrap().events.len(), HELD_EVENTS);
    }
}
