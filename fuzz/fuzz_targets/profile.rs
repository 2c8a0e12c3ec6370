//! A baseline profile file (`WARDEN_PROFILE`): one profile, or one per function name.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use warden_core::detect::{BaselineProfile, Detector, DetectorConfig};
use warden_core::health::Health;

fuzz_target!(|data: &[u8]| {
    let profiles: Vec<BaselineProfile> = match serde_json::from_slice::<BaselineProfile>(data) {
        Ok(one) => vec![one],
        Err(_) => serde_json::from_slice::<BTreeMap<String, BaselineProfile>>(data)
            .map(|m| m.into_values().collect())
            .unwrap_or_default(),
    };
    for p in &profiles {
        let detector = Detector::new(DetectorConfig::default(), Arc::new(Health::default()), 0);
        let _ = detector.with_profile(p);
    }
});
