//! A baseline profile file (`WARDEN_PROFILE`): one profile, one per function name, or the
//! fleet's profile object as read from S3 or from the environment's copy in /tmp.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use warden_core::detect::{BaselineProfile, Detector, DetectorConfig};
use warden_core::health::Health;

fuzz_target!(|data: &[u8]| {
    let mut profiles: Vec<BaselineProfile> = match serde_json::from_slice::<BaselineProfile>(data)
    {
        Ok(one) => vec![one],
        Err(_) => serde_json::from_slice::<BTreeMap<String, BaselineProfile>>(data)
            .map(|m| m.into_values().collect())
            .unwrap_or_default(),
    };
    if let Ok(object) = warden_core::fleet::object::decode(data, "f") {
        profiles.push(object.content.profile);
    }
    for p in &profiles {
        let detector = Detector::new(DetectorConfig::default(), Arc::new(Health::default()), 0);
        let _ = detector.with_profile(p);
    }
});
