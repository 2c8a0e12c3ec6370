//! Redaction of a command line or path: never panics, never grows without bound, and evidence
//! stays within its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::redact::{redact, redact_evidence, EVIDENCE_MAX, REDACTED};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let r = redact(&text);
    assert!(r.text.len() <= 6 * text.len() + REDACTED.len());
    let e = redact_evidence(&text);
    assert!(e.text.len() <= EVIDENCE_MAX);
    assert!(e.text.is_char_boundary(e.text.len()));
});
