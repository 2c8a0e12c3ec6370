//! How well findings are explained: "explained first", the share of detected attack rows
//! whose explanation's first item is a feature the attack really moves (the bar is 95%). An
//! explanation item is always a feature; an indicator appears as the feature it points at.

use std::collections::BTreeMap;

use super::{ClassFigures, Prediction};
use crate::dataset::Row;
use warden_core::features::FEATURE_NAMES;
use warden_core::model::BENIGN;

/// The features an attack class moves: a finding on it is well explained when its
/// explanation names one of them first.
pub fn moved_features(class: &str) -> &'static [usize] {
    use warden_core::features::idx::*;
    match class {
        "command_injection" => &[NEW_PROCESSES, SHELLS, TASKS_CREATED, EXECS],
        "reverse_shell" => &[
            SHELLS,
            TASKS_CREATED,
            NEW_PROCESSES,
            EXECS,
            TCP_OUTBOUND,
            NEW_ENDPOINTS,
        ],
        "crypto_mining" => &[
            CPU_MS,
            CPU_SHARE,
            DURATION_MS,
            MINING_PORTS,
            TCP_OUTBOUND,
            NEW_ENDPOINTS,
        ],
        "exfiltration_egress" => &[NET_TX, TCP_OUTBOUND, NEW_ENDPOINTS],
        "exfiltration_response" => &[PRODUCED],
        "credential_theft" => &[
            TCP_OUTBOUND,
            NEW_ENDPOINTS,
            NET_TX,
            TASKS_CREATED,
            NEW_PROCESSES,
            SHELLS,
        ],
        // Fetched (curl, wget) or unpacked into /tmp, then run.
        "dropper" => &[
            EXEC_FROM_TMP,
            TMP_FILES_CREATED,
            TMP_BYTES_DELTA,
            NET_RX,
            TCP_OUTBOUND,
            NEW_ENDPOINTS,
            TASKS_CREATED,
            NEW_PROCESSES,
            EXECS,
            SHELLS,
        ],
        // A beacon loop, or a script dropped in /tmp and run detached; it calls home.
        "persistence" => &[
            LEFT_RUNNING,
            FOREIGN_PROCESSES,
            EXEC_FROM_TMP,
            TMP_FILES_CREATED,
            TCP_OUTBOUND,
            NEW_ENDPOINTS,
            TASKS_CREATED,
            NEW_PROCESSES,
            SHELLS,
        ],
        "denial_of_wallet" => &[DURATION_MS, CPU_MS, CPU_SHARE, STATUS_TIMEOUT],
        "probing" => &[TRACEBACKS, ERROR_LINES, STATUS_ERROR, LOG_LINES],
        _ => &[],
    }
}

/// The indicators no feature shows that an explanation may name first for an attack of
/// `class` (see `Indicator::unfeatured`).
pub fn moved_indicators(class: &str) -> &'static [&'static str] {
    match class {
        "persistence" => &["runtime_patched"],
        _ => &[],
    }
}

/// Sets each class's `explained_first`, `explained_first_share` and `top_features`.
pub(super) fn fill(classes: &mut [ClassFigures], rows: &[Row], predictions: &[Prediction]) {
    for c in classes.iter_mut() {
        let moved = moved_features(&c.class);
        let named = moved_indicators(&c.class);
        c.explained_first = rows
            .iter()
            .zip(predictions)
            .filter(|(r, p)| r.label.as_deref() == Some(c.class.as_str()) && p.label != BENIGN)
            .filter(|(_, p)| {
                p.top_feature.as_deref().is_some_and(|f| {
                    moved.iter().any(|&i| FEATURE_NAMES[i] == f) || named.contains(&f)
                })
            })
            .count() as u64;
        c.explained_first_share = super::ratio(c.explained_first, c.detected);
        let mut tops: BTreeMap<String, u64> = BTreeMap::new();
        for (_, p) in rows
            .iter()
            .zip(predictions)
            .filter(|(r, p)| r.label.as_deref() == Some(c.class.as_str()) && p.label != BENIGN)
        {
            let name = p.top_feature.clone().unwrap_or_else(|| "-".into());
            *tops.entry(name).or_default() += 1;
        }
        c.top_features = tops.into_iter().collect();
        c.top_features
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    }
}
