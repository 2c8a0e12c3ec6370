//! The invocations that contacted a destination before its cadence made it a beacon.
//!
//! A beacon planted in the runtime (a thread, a timer, a patched function) shows only an
//! unknown destination in the invocation that planted it and in the next: its cadence is
//! what tells it, from the [`BEACON_RUN`]th contact in a row. The `beaconing` finding then
//! names those earlier invocations (`earlier_requests`), the first of them being the one the
//! code was injected in, as a probing burst's finding names its first errors.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::indicators::BEACON_RUN;

/// Most destinations followed at once (each a few request ids).
const MAX_DESTINATIONS: usize = 256;
/// Invocations kept per destination: a run up to the one that makes it a beacon (noted
/// before it is judged), so that the ones before it can be named.
const KEPT: usize = BEACON_RUN as usize;

/// A destination's current run of invocations.
#[derive(Debug, Clone, Default)]
struct Run {
    /// The environment's invocation number of the run's last contact.
    last: u64,
    /// The run's latest request ids, oldest first.
    requests: Vec<String>,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct EarlyContacts {
    runs: HashMap<SocketAddr, Run>,
}

impl EarlyContacts {
    /// Invocation number `invocation` (`request_id`) contacted `addr`, not yet a habit.
    pub fn note(&mut self, addr: SocketAddr, invocation: u64, request_id: &str) {
        if !self.runs.contains_key(&addr) && self.runs.len() >= MAX_DESTINATIONS {
            self.runs.retain(|_, run| run.last + 1 >= invocation);
            if self.runs.len() >= MAX_DESTINATIONS {
                return;
            }
        }
        let run = self.runs.entry(addr).or_default();
        if run.last + 1 != invocation {
            // Not the next invocation: a new run (a gap breaks a beacon's cadence).
            run.requests.clear();
        }
        run.last = invocation;
        if run.requests.len() == KEPT {
            run.requests.remove(0);
        }
        run.requests.push(request_id.to_string());
    }

    /// The earlier invocations of `addr`'s run, other than `current`; named once.
    pub fn take(&mut self, addr: &SocketAddr, current: Option<&str>) -> Vec<String> {
        let Some(run) = self.runs.get_mut(addr) else {
            return Vec::new();
        };
        let named: Vec<String> = std::mem::take(&mut run.requests)
            .into_iter()
            .filter(|id| Some(id.as_str()) != current)
            .collect();
        named
    }

    /// Stops following `addr` (it became a habit).
    pub fn forget(&mut self, addr: &SocketAddr) {
        self.runs.remove(addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "203.0.113.5:45031".parse().unwrap()
    }

    #[test]
    fn a_run_names_its_invocations_before_the_current_one_once() {
        let mut c = EarlyContacts::default();
        c.note(addr(), 4, "plant");
        c.note(addr(), 5, "second");
        c.note(addr(), 6, "third");
        // The third is the one the finding is about (noted before it is judged): the two
        // before are named.
        assert_eq!(c.take(&addr(), Some("third")), ["plant", "second"]);
        assert!(c.take(&addr(), Some("third")).is_empty(), "named once");
    }

    #[test]
    fn only_the_latest_of_a_long_run_are_kept() {
        let mut c = EarlyContacts::default();
        for (n, id) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            c.note(addr(), n as u64 + 1, id);
        }
        assert_eq!(c.take(&addr(), Some("e")), ["c", "d"]);
    }

    #[test]
    fn a_gap_starts_a_new_run() {
        let mut c = EarlyContacts::default();
        c.note(addr(), 2, "old");
        c.note(addr(), 4, "plant");
        c.note(addr(), 5, "second");
        assert_eq!(c.take(&addr(), None), ["plant", "second"]);
    }

    #[test]
    fn it_follows_a_bounded_number_of_destinations() {
        let mut c = EarlyContacts::default();
        for port in 0..(MAX_DESTINATIONS as u16 + 10) {
            c.note(SocketAddr::from(([198, 51, 100, 1], port)), 1, "r");
        }
        assert!(c.runs.len() <= MAX_DESTINATIONS);
        // Stale runs make room for a new one.
        c.note(addr(), 9, "late");
        assert_eq!(c.take(&addr(), None), ["late"]);
    }
}
