//! The guard's event ring: how the in-process guard hands its events to Warden without a
//! system call. Warden creates a file in /tmp before the runtime starts; every guarded process
//! maps it shared and writes events into it; Warden polls it.
//!
//! The file is a slice of 64-bit words, all read and written as atomics:
//!
//! ```text
//! word 0        magic "WDNRING1"
//! word 1        head: the next slot index to reserve (writers, compare-and-swap)
//! word 2        tail: the next slot index Warden reads (Warden only)
//! words 3..8    reserved
//! slot i        word 0: sequence (index + 1 once the event is whole), word 1: length,
//!               then the event's bytes, 8 to a word, little-endian
//! ```
//!
//! A writer reserves an index with a compare-and-swap on `head` (refusing when `SLOTS` events
//! wait unread: the event is dropped, and the guard counts it), writes its slot and publishes
//! the sequence last. Warden reads slots in order, checks the sequence before and after the
//! copy, and moves `tail`. The function can write the file too: everything read from it is
//! checked (indices against each other, lengths against the slot), and a ring it has scribbled
//! on is resynchronised, never trusted. No allocation, no lock, no wait on either side.

use std::sync::atomic::{fence, AtomicU64, Ordering};

mod file;
mod sys;

pub use file::RingFile;

/// The first word of a ready ring.
pub const MAGIC: u64 = u64::from_le_bytes(*b"WDNRING1");
/// Slots in the ring: events that can wait for Warden's next poll.
pub const SLOTS: u64 = 256;
/// The longest event, in bytes.
pub const MAX_EVENT: usize = 1024;

const HEADER_WORDS: usize = 8;
const PAYLOAD_WORDS: usize = MAX_EVENT / 8;
const SLOT_WORDS: usize = 2 + PAYLOAD_WORDS;
const MAGIC_WORD: usize = 0;
const HEAD_WORD: usize = 1;
const TAIL_WORD: usize = 2;

/// Words in the file.
pub const WORDS: usize = HEADER_WORDS + SLOTS as usize * SLOT_WORDS;
/// Bytes in the file.
pub const BYTES: usize = WORDS * 8;

/// Tries at reserving a slot while other writers take them first: bounded, never a wait.
const RESERVE_TRIES: u32 = 16;

/// How long a reserved slot may stay unwritten before Warden gives up on it (its writer was
/// killed between reserving and publishing, or lied), in milliseconds. A writer needs well
/// under a microsecond between the two, unless it is descheduled.
pub const STUCK_MS: u64 = 100;

/// The ring's file name for the guard's socket name: `.<name>.ring`, beside the lockdown page.
pub fn file_name(socket_name: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(socket_name.len() + 6);
    name.push(b'.');
    name.extend_from_slice(socket_name);
    name.extend_from_slice(b".ring");
    name
}

/// Why an event was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// `SLOTS` events wait unread, or other writers kept taking the slot.
    Full,
    /// Longer than [`MAX_EVENT`].
    TooLong,
    /// The file does not hold a ready ring.
    NotReady,
}

/// A ring over shared words.
#[derive(Clone, Copy)]
pub struct Ring<'a> {
    words: &'a [AtomicU64],
}

impl std::fmt::Debug for Ring<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("head", &self.word(HEAD_WORD))
            .field("tail", &self.word(TAIL_WORD))
            .finish()
    }
}

impl<'a> Ring<'a> {
    /// A ring over `words`, which must be exactly [`WORDS`] long.
    pub fn new(words: &'a [AtomicU64]) -> Option<Ring<'a>> {
        (words.len() == WORDS).then_some(Ring { words })
    }

    /// Makes the words an empty, ready ring (Warden, before any guard maps it).
    pub fn format(&self) {
        for word in self.words {
            word.store(0, Ordering::Relaxed);
        }
        self.words[MAGIC_WORD].store(MAGIC, Ordering::Release);
    }

    fn word(&self, index: usize) -> u64 {
        self.words[index].load(Ordering::Acquire)
    }

    fn slot(&self, index: u64) -> &'a [AtomicU64] {
        let start = HEADER_WORDS + (index % SLOTS) as usize * SLOT_WORDS;
        &self.words[start..start + SLOT_WORDS]
    }

    /// Writes one event (a guard, from inside a hooked call).
    pub fn push(&self, event: &[u8]) -> Result<(), PushError> {
        if event.len() > MAX_EVENT {
            return Err(PushError::TooLong);
        }
        if self.word(MAGIC_WORD) != MAGIC {
            return Err(PushError::NotReady);
        }
        let index = self.reserve()?;
        let slot = self.slot(index);
        slot[1].store(event.len() as u64, Ordering::Relaxed);
        for (word, chunk) in slot[2..].iter().zip(event.chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        slot[0].store(index.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    fn reserve(&self) -> Result<u64, PushError> {
        let head = &self.words[HEAD_WORD];
        for _ in 0..RESERVE_TRIES {
            let index = head.load(Ordering::Acquire);
            let tail = self.word(TAIL_WORD);
            if index.wrapping_sub(tail) >= SLOTS {
                return Err(PushError::Full);
            }
            if head
                .compare_exchange_weak(
                    index,
                    index.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return Ok(index);
            }
        }
        Err(PushError::Full)
    }
}

/// What one poll of the ring found, besides the events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Events handed over.
    pub events: u64,
    /// Slots given up: reserved and never written, or torn while read.
    pub lost: u64,
    /// Times the indices made no sense (written by the function) and reading started afresh.
    pub resynced: u64,
}

/// Warden's end: where it is in the ring. Events are read in order.
#[derive(Debug)]
pub struct Reader {
    next: u64,
    /// Since when (ms, the caller's clock) the slot at `next` has been reserved and unwritten.
    stuck_since: Option<u64>,
}

impl Reader {
    /// Reads `ring` from its current head (what was there before is not Warden's to read).
    pub fn new(ring: Ring<'_>) -> Reader {
        let next = ring.word(HEAD_WORD);
        ring.words[TAIL_WORD].store(next, Ordering::Release);
        Reader {
            next,
            stuck_since: None,
        }
    }

    /// Hands every whole event waiting to `deliver`, in order, then frees their slots. `now_ms`
    /// is a monotonic clock in milliseconds.
    pub fn drain(
        &mut self,
        ring: Ring<'_>,
        now_ms: u64,
        mut deliver: impl FnMut(&[u8]),
    ) -> Drained {
        let mut drained = Drained::default();
        // Put back a tail the function may have written.
        ring.words[TAIL_WORD].store(self.next, Ordering::Release);
        let mut buf = [0u8; MAX_EVENT];
        loop {
            let head = ring.word(HEAD_WORD);
            let waiting = head.wrapping_sub(self.next);
            if waiting == 0 {
                break;
            }
            if waiting > SLOTS {
                // More than the ring holds, or behind us: not written by a guard.
                drained.resynced += 1;
                self.skip_to(ring, head);
                break;
            }
            match self.read_slot(ring, &mut buf) {
                Slot::Event(len) => {
                    drained.events += 1;
                    deliver(&buf[..len]);
                }
                Slot::Torn => drained.lost += 1,
                Slot::Unwritten => {
                    let since = *self.stuck_since.get_or_insert(now_ms);
                    if now_ms.saturating_sub(since) < STUCK_MS {
                        break;
                    }
                    drained.lost += 1;
                }
            }
            self.skip_to(ring, self.next.wrapping_add(1));
        }
        drained
    }

    fn skip_to(&mut self, ring: Ring<'_>, index: u64) {
        self.next = index;
        self.stuck_since = None;
        ring.words[TAIL_WORD].store(index, Ordering::Release);
    }

    fn read_slot(&self, ring: Ring<'_>, buf: &mut [u8; MAX_EVENT]) -> Slot {
        let slot = ring.slot(self.next);
        let expected = self.next.wrapping_add(1);
        if slot[0].load(Ordering::Acquire) != expected {
            return Slot::Unwritten;
        }
        let len = slot[1].load(Ordering::Relaxed);
        if len > MAX_EVENT as u64 {
            return Slot::Torn;
        }
        let len = len as usize;
        for (chunk, word) in buf[..len].chunks_mut(8).zip(&slot[2..]) {
            let bytes = word.load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        // A late writer of an earlier lap may have written over it meanwhile: the copy's loads
        // must be done before the sequence is looked at again.
        fence(Ordering::Acquire);
        if slot[0].load(Ordering::Acquire) != expected {
            return Slot::Torn;
        }
        Slot::Event(len)
    }
}

enum Slot {
    Event(usize),
    Torn,
    Unwritten,
}

#[cfg(test)]
mod tests;
