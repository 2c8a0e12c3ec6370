//! Settings: `NAME=value` lines as the environment would hold them, and the response policy
//! and severity values on their own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::config::{parse_policy, parse_severity, Config};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (_, errors) = Config::from_vars(&vars);
    for e in &errors {
        let _ = e.to_string();
    }
    let _ = parse_policy(&text);
    let _ = parse_severity(&text);
});
