//! A log line checked for its MAC (what `warden train` reads), and signing any object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::record_mac::{check, sign, Check, RecordKey};

fuzz_target!(|data: &[u8]| {
    let Ok(key) = RecordKey::new("fuzzing-key-0123456789") else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    // Without the key no line can be valid.
    assert_ne!(check(None, &text), Check::Valid);
    let _ = check(Some(&key), &text);
    let mut line = data.to_vec();
    sign(&key, &mut line);
    if let Ok(signed) = String::from_utf8(line) {
        if data.first() == Some(&b'{') && data.last() == Some(&b'}') && data.len() >= 2 {
            assert_eq!(check(Some(&key), &signed), Check::Valid, "{signed}");
        }
    }
});
