//! The guard's event ring as the function may leave it: every word written by code in the
//! function's processes, between and during Warden's reads.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use warden_ring::{Reader, Ring, MAX_EVENT, WORDS};

fuzz_target!(|data: &[u8]| {
    let words: Vec<AtomicU64> = (0..WORDS).map(|_| AtomicU64::new(0)).collect();
    let ring = Ring::new(&words).expect("WORDS words");
    ring.format();
    let mut reader = Reader::new(ring);
    // Each 16 bytes: a word index and the value the function writes there; a read by Warden
    // after every write.
    for (step, chunk) in data.chunks_exact(16).enumerate() {
        let index = u64::from_le_bytes(chunk[..8].try_into().unwrap()) as usize % WORDS;
        let value = u64::from_le_bytes(chunk[8..].try_into().unwrap());
        words[index].store(value, Ordering::Relaxed);
        let _ = ring.push(&chunk[..index % 16]);
        reader.drain(ring, step as u64 * 50, |event| {
            assert!(event.len() <= MAX_EVENT);
            let _ = warden_core::sources::guard::wire::parse(event);
        });
    }
});
