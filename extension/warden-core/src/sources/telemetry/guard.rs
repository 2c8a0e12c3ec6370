//! What keeps the telemetry listener for the platform alone: a path token only the
//! subscription knows, a cap on connections that never locks the platform out, and a byte
//! budget for what waits in the queue.
//!
//! Function code runs in the same network namespace and can reach the listener: the token
//! is what tells Lambda's POSTs from its own (docs/threat-model.md).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::events::TelemetryEvent;

/// Random bytes in a token (128 bits).
const TOKEN_BYTES: usize = 16;

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Neither /dev/urandom nor the kernel's random UUID could be read.
    #[error("no random source: {0}")]
    NoRandom(#[from] std::io::Error),
}

/// The unguessable path the subscription names, e.g. `/t/3f9a…`; made once per
/// environment and never logged.
#[derive(Clone)]
pub struct PathToken {
    path: String,
}

impl std::fmt::Debug for PathToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PathToken(..)")
    }
}

impl PathToken {
    /// A new token from the kernel's random source.
    pub fn generate() -> Result<PathToken, TokenError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
            Ok(()) => Ok(PathToken::from_bytes(&bytes)),
            // Without /dev/urandom (an odd chroot), the kernel's UUID is random too.
            Err(_) => {
                let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")?;
                Ok(PathToken {
                    path: format!("/t/{}", uuid.trim().replace('-', "")),
                })
            }
        }
    }

    /// A token from given bytes (tests).
    pub fn from_bytes(bytes: &[u8]) -> PathToken {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        PathToken {
            path: format!("/t/{hex}"),
        }
    }

    /// The path to subscribe with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether a request path is the token's, in time independent of where they differ.
    pub fn matches(&self, path: &str) -> bool {
        constant_time_eq(self.path.as_bytes(), path.as_bytes())
    }
}

/// Compares two byte strings without stopping at the first difference (only the length,
/// which is not secret, can show in the time taken).
pub fn constant_time_eq(want: &[u8], got: &[u8]) -> bool {
    let mut diff = usize::from(want.len() != got.len());
    for (i, w) in want.iter().enumerate() {
        let g = got.get(i).copied().unwrap_or(!w);
        diff |= usize::from(w ^ g);
    }
    std::hint::black_box(diff) == 0
}

/// One open connection as the cap sees it.
#[derive(Debug)]
struct Slot {
    id: u64,
    /// A request on it carried the token: the platform's.
    trusted: Arc<AtomicBool>,
    close: Arc<Notify>,
}

/// A connection's handle on its slot.
#[derive(Debug)]
pub struct Admitted {
    /// Slot id, to leave the table with.
    pub id: u64,
    /// Set when a request carried the token.
    pub trusted: Arc<AtomicBool>,
    /// Notified when the connection must close (evicted to make room).
    pub close: Arc<Notify>,
}

/// The open connections, capped. At the cap, a new connection replaces the oldest one that
/// has not shown the token, so that connections held open by function code cannot lock the
/// platform out; only when every slot is the platform's is the new one refused.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    next: AtomicUsize,
    slots: Mutex<VecDeque<Slot>>,
}

/// What the cap decided for a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Served; nothing else closed.
    Admitted(Admitted),
    /// Served; an older untrusted connection was closed to make room.
    Replaced(Admitted),
    /// Refused: every slot is held by the platform.
    Refused,
}

impl Connections {
    /// A table of at most `max` connections.
    pub fn new(max: usize) -> Connections {
        Connections {
            max: max.max(1),
            next: AtomicUsize::new(0),
            slots: Mutex::new(VecDeque::new()),
        }
    }

    /// Admits a new connection, closing the oldest untrusted one if the table is full.
    pub fn admit(&self) -> Admission {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut replaced = false;
        if slots.len() >= self.max {
            let Some(i) = slots
                .iter()
                .position(|s| !s.trusted.load(Ordering::Relaxed))
            else {
                return Admission::Refused;
            };
            if let Some(old) = slots.remove(i) {
                old.close.notify_one();
            }
            replaced = true;
        }
        let slot = Slot {
            id: self.next.fetch_add(1, Ordering::Relaxed) as u64,
            trusted: Arc::new(AtomicBool::new(false)),
            close: Arc::new(Notify::new()),
        };
        let admitted = Admitted {
            id: slot.id,
            trusted: slot.trusted.clone(),
            close: slot.close.clone(),
        };
        slots.push_back(slot);
        if replaced {
            Admission::Replaced(admitted)
        } else {
            Admission::Admitted(admitted)
        }
    }

    /// A connection ended.
    pub fn leave(&self, id: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| s.id != id);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.slots.lock().map_or(0, |s| s.len())
    }
}

/// Bytes of parsed telemetry waiting for the pipeline, against a budget. The listener
/// charges a batch before queuing it and the pipeline releases it on receipt; both weigh
/// the batch with [`weight`], so the two sides agree.
#[derive(Debug, Clone, Default)]
pub struct QueueBytes(Arc<AtomicUsize>);

impl QueueBytes {
    /// Charges `bytes` if they fit under `budget`; false (nothing charged) otherwise.
    pub fn charge(&self, bytes: usize, budget: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                let total = queued.saturating_add(bytes);
                (total <= budget).then_some(total)
            })
            .is_ok()
    }

    /// Releases what a batch was charged.
    pub fn release(&self, bytes: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                Some(queued.saturating_sub(bytes))
            });
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Approximate memory a batch holds: a fixed cost per event plus the text it carries.
pub fn weight(events: &[TelemetryEvent]) -> usize {
    const PER_EVENT: usize = 128;
    events
        .iter()
        .map(|e| {
            PER_EVENT
                + match e {
                    TelemetryEvent::Unknown { event_type, record } => {
                        event_type.len() + record.len()
                    }
                    TelemetryEvent::Start { request_id } => request_id.len(),
                    TelemetryEvent::RuntimeDone(r) => {
                        r.request_id.len() + r.error_type.as_ref().map_or(0, String::len)
                    }
                    TelemetryEvent::Report(r) => {
                        r.request_id.len() + r.error_type.as_ref().map_or(0, String::len)
                    }
                    TelemetryEvent::Extension { name, state }
                    | TelemetryEvent::Subscription { name, state } => name.len() + state.len(),
                    TelemetryEvent::FunctionLog { request_id, .. } => {
                        request_id.as_ref().map_or(0, String::len)
                    }
                    _ => 0,
                }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_matches_only_its_own_path() {
        let t = PathToken::from_bytes(&[0xab; 16]);
        assert_eq!(t.path(), format!("/t/{}", "ab".repeat(16)));
        assert!(t.matches(t.path()));
        assert!(!t.matches("/"));
        assert!(!t.matches(""));
        assert!(!t.matches(&format!("/t/{}", "ab".repeat(15))));
        assert!(!t.matches(&format!("/t/{}ac", "ab".repeat(15))));
        assert!(!t.matches(&format!("{}/", t.path())));
    }

    #[test]
    fn generated_tokens_differ_and_debug_hides_them() {
        let (a, b) = (
            PathToken::generate().unwrap(),
            PathToken::generate().unwrap(),
        );
        assert_ne!(a.path(), b.path());
        assert!(a.path().len() >= 3 + 32);
        assert_eq!(format!("{a:?}"), "PathToken(..)");
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn full_table_replaces_the_oldest_untrusted_connection() {
        let c = Connections::new(2);
        let Admission::Admitted(first) = c.admit() else {
            panic!("first refused")
        };
        let Admission::Admitted(second) = c.admit() else {
            panic!("second refused")
        };
        first.trusted.store(true, Ordering::Relaxed);
        // The platform's connection stays; the untrusted one goes.
        assert!(matches!(c.admit(), Admission::Replaced(_)));
        assert_eq!(c.open(), 2);
        // Its task is told to close (the permit waits for it).
        tokio_test_notified(&second.close);
        c.leave(second.id);
        assert_eq!(c.open(), 2, "the replaced slot was already gone");
    }

    #[test]
    fn a_table_of_platform_connections_refuses_more() {
        let c = Connections::new(1);
        let Admission::Admitted(only) = c.admit() else {
            panic!("refused")
        };
        only.trusted.store(true, Ordering::Relaxed);
        assert!(matches!(c.admit(), Admission::Refused));
        c.leave(only.id);
        assert!(matches!(c.admit(), Admission::Admitted(_)));
    }

    fn tokio_test_notified(n: &Notify) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(100), n.notified())
                .await
                .expect("notified");
        });
    }

    #[test]
    fn budget_charges_up_to_its_size_and_releases() {
        let q = QueueBytes::default();
        assert!(q.charge(600, 1000));
        assert!(!q.charge(600, 1000));
        assert_eq!(q.queued(), 600);
        q.release(600);
        assert!(q.charge(1000, 1000));
        q.release(5000);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn weight_counts_the_text_a_batch_holds() {
        let small = vec![TelemetryEvent::Start {
            request_id: "a".into(),
        }];
        let big = vec![TelemetryEvent::Unknown {
            event_type: "x".into(),
            record: "y".repeat(10_000),
        }];
        assert!(weight(&small) < 200);
        assert!(weight(&big) > 10_000);
    }
}
