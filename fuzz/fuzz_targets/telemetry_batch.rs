//! A Telemetry API POST body: whatever reaches the listener's port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::sources::telemetry::parse::{parse_batch, unix_ms};

fuzz_target!(|data: &[u8]| {
    let mut events = Vec::new();
    let outcome = parse_batch(data, &mut events);
    assert!(events.len() as u64 <= outcome.events + outcome.unknown);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = unix_ms(text);
    }
});
