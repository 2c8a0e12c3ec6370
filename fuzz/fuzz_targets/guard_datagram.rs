//! Datagrams from the in-process guard: written by code in the function's processes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::sources::guard::{observations, wire, GuardContext};

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = wire::parse(data) {
        let ctx = GuardContext {
            own_pid: 7,
            runtime_api: None,
        };
        let mut out = Vec::new();
        observations(&event, &ctx, &mut out);
        assert!(out.len() <= 2);
        for obs in &out {
            let _ = warden_core::redact::observation(obs);
        }
    }
});
