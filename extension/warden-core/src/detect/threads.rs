//! Threads the runtime keeps from one invocation to the next.
//!
//! A thread or timer planted in the runtime process to call out across warm invocations
//! outlives the invocation that started it: when that invocation's record is closed (its
//! gauges are read at the next INVOKE) the environment keeps more threads than it ever kept
//! before. A function's own pools start the same way (Node's libuv pool on its first name
//! lookup, an executor on its first use), so a rise is never reported on its own. It backs
//! a beacon: a new destination first contacted within two invocations of a rise is
//! `beaconing` from its second contact in a row instead of its third, and the beacon's
//! finding names the invocation the thread appeared in when that is unambiguous
//! (docs/detection.md, "Habits").
//!
//! The gauges are read when Warden handles the next INVOKE, which the runtime got at the same
//! moment: a thread started in the next invocation's first milliseconds can count as kept by
//! the one before. So a rise backs a first contact one invocation later than it could have
//! come, and is named only when it came right before the first contact (a rise recorded two
//! invocations before may be the plant's, started early in the invocation after it).
//!
//! A timer leaves no thread, but it can give itself away the same way: its first call out
//! made as the environment thawed, before the invocation that saw it had started, was left to
//! run by the invocation before ([`KeptThreads::note_plant`]).

use std::collections::VecDeque;

use crate::schema::EndGauges;

/// Rises remembered: a beacon's run starts within an invocation of its thread.
const KEPT_RISES: usize = 4;

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct KeptThreads {
    /// Most threads beyond one per process kept at an invocation's end so far.
    most: Option<u32>,
    /// The latest rises, oldest first: the environment's invocation number, its request id,
    /// and whether a finding has named it.
    rises: VecDeque<Rise>,
}

#[derive(Debug, Clone)]
struct Rise {
    invocation: u64,
    request_id: String,
    named: bool,
}

impl KeptThreads {
    /// Invocation number `invocation` (`request_id`) ended with `gauges`. Threads are
    /// counted beyond one per process, so that a process left running (its own indicators
    /// judge it) is not also a kept thread.
    pub fn note(&mut self, invocation: u64, request_id: Option<&str>, gauges: &EndGauges) {
        let kept = gauges.threads.saturating_sub(gauges.processes);
        let rose = self.most.is_some_and(|most| kept > most);
        self.most = Some(self.most.map_or(kept, |most| most.max(kept)));
        if let Some(request_id) = request_id.filter(|_| rose) {
            self.push(invocation, request_id);
        }
    }

    /// Notes a plant seen another way than by a thread kept: invocation `invocation`
    /// (`request_id`) was the last before a new destination was first contacted as the
    /// environment thawed, by code that invocation left to run (a timer, a pending callback).
    pub fn note_plant(&mut self, invocation: u64, request_id: &str) {
        if invocation > 0 && !self.rose_at(invocation) {
            self.push(invocation, request_id);
        }
    }

    fn push(&mut self, invocation: u64, request_id: &str) {
        if self.rises.len() == KEPT_RISES {
            self.rises.pop_front();
        }
        self.rises.push_back(Rise {
            invocation,
            request_id: request_id.to_string(),
            named: false,
        });
    }

    /// Whether the threads kept rose at invocation number `invocation`.
    pub fn rose_at(&self, invocation: u64) -> bool {
        self.rises.iter().any(|r| r.invocation == invocation)
    }

    /// Whether a rise backs a destination first contacted at invocation number `first`: one
    /// recorded by that invocation, or by one of the two before it (see the module docs).
    pub fn backs(&self, first: u64) -> bool {
        (first.saturating_sub(2)..=first).any(|n| n > 0 && self.rose_at(n))
    }

    /// The request id of the rise at `invocation`, unless it is `current` or was named
    /// already; named once.
    pub fn take_request(&mut self, invocation: u64, current: Option<&str>) -> Option<String> {
        let rise = self
            .rises
            .iter_mut()
            .find(|r| r.invocation == invocation && !r.named)?;
        if Some(rise.request_id.as_str()) == current {
            return None;
        }
        rise.named = true;
        Some(rise.request_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(threads: u32, processes: u32) -> EndGauges {
        EndGauges {
            threads,
            processes,
            ..EndGauges::default()
        }
    }

    #[test]
    fn a_thread_kept_beyond_any_before_is_a_rise() {
        let mut k = KeptThreads::default();
        k.note(1, Some("a"), &ended(3, 1));
        k.note(2, Some("b"), &ended(3, 1));
        k.note(3, Some("plant"), &ended(4, 1));
        k.note(4, Some("d"), &ended(4, 1));
        assert!(!k.rose_at(1), "the first invocation sets the mark");
        assert!(!k.rose_at(2));
        assert!(k.rose_at(3));
        assert!(!k.rose_at(4), "the same threads kept again are no rise");
    }

    #[test]
    fn a_rise_backs_first_contacts_up_to_two_invocations_later() {
        let mut k = KeptThreads::default();
        k.note(1, Some("a"), &ended(1, 1));
        k.note(2, Some("b"), &ended(1, 1));
        k.note(3, Some("plant"), &ended(2, 1));
        assert!(!k.backs(2));
        assert!(k.backs(3) && k.backs(4) && k.backs(5));
        assert!(
            !k.backs(6),
            "a thread kept long before is not this beacon's"
        );
    }

    #[test]
    fn a_process_left_running_is_not_a_kept_thread() {
        let mut k = KeptThreads::default();
        k.note(1, Some("a"), &ended(2, 1));
        k.note(2, Some("b"), &ended(3, 2));
        assert!(!k.rose_at(2));
    }

    #[test]
    fn a_rise_is_named_once_and_not_by_its_own_invocation() {
        let mut k = KeptThreads::default();
        k.note(1, Some("a"), &ended(1, 1));
        k.note(2, Some("plant"), &ended(2, 1));
        assert_eq!(k.take_request(2, Some("plant")), None);
        assert_eq!(k.take_request(2, Some("later")).as_deref(), Some("plant"));
        assert_eq!(k.take_request(2, Some("later")), None);
    }

    #[test]
    fn only_the_latest_rises_are_kept() {
        let mut k = KeptThreads::default();
        for n in 0..10u32 {
            k.note(u64::from(n) + 1, Some("r"), &ended(n + 1, 1));
        }
        assert!(!k.rose_at(2));
        assert!(k.rose_at(10));
        assert_eq!(k.rises.len(), KEPT_RISES);
    }
}
