//! Warden's end of the guard's event ring (crate `warden-ring`): a file in /tmp that every
//! guarded process maps and writes its connects, sends, execs and file events into without a
//! system call. Warden creates it before it registers (so before the runtime starts, and in
//! place of anything planted there) and reads it every few milliseconds, and at once whenever
//! an invocation begins or ends. Hellos and signals still come as datagrams, whose sender the
//! kernel names.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{interval, Instant, MissedTickBehavior};
use warden_ring::{Reader, RingFile};

use super::wire::{self, GuardEvent};
use crate::health::{Counter, Health};

/// How often the ring is read between the reads an invocation's start and end trigger: events
/// wait at most this long (the pipeline holds them longer anyway, see `GUARD_HOLD`).
pub const POLL: Duration = Duration::from_millis(4);

/// The ring, mapped.
pub struct GuardRing {
    file: RingFile,
    reader: Mutex<Reader>,
    started: Instant,
    health: Arc<Health>,
}

impl std::fmt::Debug for GuardRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardRing")
            .field("file", &self.file)
            .finish()
    }
}

impl GuardRing {
    /// Creates `<tmp_dir>/.<socket name>.ring`, empty and ready, replacing whatever is there
    /// (never following a link). Needs a tokio runtime (for its clock).
    pub fn create(tmp_dir: &Path, socket_name: &str, health: Arc<Health>) -> io::Result<GuardRing> {
        let name =
            String::from_utf8_lossy(&warden_ring::file_name(socket_name.as_bytes())).into_owned();
        let file = RingFile::create(&tmp_dir.join(name))?;
        let reader = Mutex::new(Reader::new(file.ring()));
        Ok(GuardRing {
            file,
            reader,
            started: Instant::now(),
            health,
        })
    }

    /// Where the ring is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Hands every event waiting in the ring to `deliver`, in order: those that parse. What
    /// cannot be read is counted.
    pub fn drain(&self, mut deliver: impl FnMut(GuardEvent)) {
        let ring = self.file.ring();
        let now_ms = self.started.elapsed().as_millis() as u64;
        let Ok(mut reader) = self.reader.lock() else {
            return;
        };
        let drained = reader.drain(ring, now_ms, |bytes| match wire::parse(bytes) {
            Ok(event) => deliver(event),
            Err(e) => self.health.note(
                Counter::GuardRejected,
                format_args!("a guard event in the ring was rejected: {e}"),
            ),
        });
        self.health.add(Counter::GuardRingEvents, drained.events);
        if drained.lost > 0 {
            self.health.add(Counter::GuardDropped, drained.lost);
        }
        if drained.resynced > 0 {
            self.health.note(
                Counter::GuardRejected,
                format_args!(
                    "the guard's ring was written over by the function; reading starts afresh"
                ),
            );
        }
    }
}

/// Reads the ring every [`POLL`] until the pipeline goes away, queueing events without waiting.
pub async fn poll(ring: Arc<GuardRing>, tx: mpsc::Sender<GuardEvent>) {
    let mut ticks = interval(POLL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut closed = false;
        ring.drain(|event| match tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => ring.health.add(Counter::GuardDropped, 1),
            Err(mpsc::error::TrySendError::Closed(_)) => closed = true,
        });
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_written_to_the_ring_are_parsed_and_what_is_planted_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join(".warden-guard.ring");
        std::os::unix::fs::symlink("/etc/passwd", &planted).unwrap();
        let health = Arc::new(Health::default());
        let ring = GuardRing::create(dir.path(), "warden-guard", health.clone()).unwrap();
        assert_eq!(ring.path(), planted);
        assert!(!std::fs::symlink_metadata(&planted).unwrap().is_symlink());

        // A guard maps the file on its own.
        let guard_side = RingFile::open(ring.path()).unwrap();
        guard_side
            .ring()
            .push(b"1\tconnect\t40\t41\t1700000000000\t0\tallow\ttcp\t10.0.0.1:443")
            .unwrap();
        guard_side.ring().push(b"not an event").unwrap();
        let mut got = Vec::new();
        ring.drain(|event| got.push(event));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].pid, 40);
        assert_eq!(health.get(Counter::GuardRejected), 1);
    }
}
