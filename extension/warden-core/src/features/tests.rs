use super::*;
use crate::testing::{endpoint, process, record, with};

#[test]
fn names_are_unique_and_indices_match() {
    let mut names = FEATURE_NAMES.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), N);
    assert_eq!(FEATURE_NAMES[idx::NET_TX], "net_tx_bytes");
    assert_eq!(FEATURE_NAMES[idx::COLD], "cold");
    assert!(FEATURES.iter().all(|f| f.min_scale > 0.0));
}

#[test]
fn a_record_becomes_its_vector() {
    let mut r = record(3);
    r.platform.duration_ms = Some(100.0);
    r.counters.cpu_user_ms = 30;
    r.counters.cpu_system_ms = 20;
    r.counters.net_tx_bytes = 1_000_000;
    r.counters.tmp_bytes_delta = -4096;
    r.log.error_lines = 3;
    r.status = Status::Timeout;
    let v = vector(&r);
    assert_eq!(v[idx::DURATION_MS], 100.0);
    assert_eq!(v[idx::CPU_MS], 50.0);
    assert!((v[idx::CPU_SHARE] - 0.5).abs() < 1e-6);
    assert!((v[idx::NET_TX] - (1.0 + 1e6f32 / 1024.0).ln()).abs() < 1e-4);
    assert!((to_raw(idx::NET_TX, v[idx::NET_TX]) - 1e6).abs() < 200.0);
    assert!((v[idx::TMP_BYTES_DELTA] + 5f32.ln()).abs() < 1e-4);
    assert!((to_raw(idx::TMP_BYTES_DELTA, v[idx::TMP_BYTES_DELTA]) + 4096.0).abs() < 2.0);
    assert_eq!(v[idx::ERROR_LINES], 3.0);
    assert_eq!(v[idx::STATUS_TIMEOUT], 1.0);
    assert_eq!(v[idx::STATUS_ERROR], 0.0);
    assert_eq!(v[idx::COLD], 0.0);
}

#[test]
fn shells_and_mining_ports_come_from_evidence() {
    let r = with(record(2), process(10, "/usr/bin/dash", "sh -c id"));
    let r = with(r, process(11, "/usr/bin/id", "id"));
    let r = with(r, endpoint("10.0.0.1:3333"));
    let r = with(r, endpoint("10.0.0.1:443"));
    let v = vector(&r);
    assert_eq!(v[idx::SHELLS], 1.0);
    assert_eq!(v[idx::NEW_PROCESSES], 2.0);
    assert_eq!(v[idx::MINING_PORTS], 1.0);
    assert_eq!(v[idx::NEW_ENDPOINTS], 2.0);
}

#[test]
fn missing_platform_figures_count_as_zero() {
    let mut r = record(2);
    r.platform = Default::default();
    let v = vector(&r);
    assert_eq!(v[idx::DURATION_MS], 0.0);
    // No duration: the share is taken over the shortest duration counted (100 ms).
    assert_eq!(v[idx::CPU_SHARE], (v[idx::CPU_MS] / 100.0).min(8.0));
    assert!(v.iter().all(|x| x.is_finite()));
}

#[test]
fn shell_names() {
    assert!(is_shell("/bin/sh"));
    assert!(is_shell("/usr/bin/bash (deleted)"));
    assert!(is_shell("dash"));
    assert!(!is_shell("/usr/bin/shasum"));
    assert!(!is_shell("/var/lang/bin/python3.12"));
}
