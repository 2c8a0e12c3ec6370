//! Explanations and evidence for findings: which features carried the score, how far
//! they were from the function's normal range, and the concrete observations behind it.

use super::baseline::Baseline;
use super::indicators::Tracker;
use super::score::{class_features, Assessment};
use crate::features::{to_raw, FEATURE_NAMES, N};
use crate::schema::Class;
use crate::schema::FeatureRecord;
use crate::schema::Observation;
use crate::schema::{Explanation, Source};

/// Features listed in an explanation.
pub const TOP_FEATURES: usize = 5;
/// Smallest share of the score a listed feature carries.
const MIN_SHARE: f32 = 0.01;

/// Explanation of a real-time finding: indicator features with their counts so far.
pub fn realtime(a: &Assessment, counts: &[u32; N], baseline: &Baseline) -> Vec<Explanation> {
    top(a, baseline, |i| (f64::from(counts[i]), None))
}

/// Explanation of a record's finding.
pub fn record(
    a: &Assessment,
    raw: &[f64; N],
    z: &[f32; N],
    counts: &[u32; N],
    baseline: &Baseline,
) -> Vec<Explanation> {
    let warmed = baseline.scoring();
    // An indicator can see more than the record's counts (a script run from /tmp by an
    // interpreter is not an executable under /tmp).
    top(a, baseline, |i| {
        (
            raw[i].max(f64::from(counts[i])),
            warmed.then(|| round3(z[i])),
        )
    })
}

fn top(
    a: &Assessment,
    baseline: &Baseline,
    value: impl Fn(usize) -> (f64, Option<f32>),
) -> Vec<Explanation> {
    let sums: Vec<f32> = a.credit.iter().map(|c| c.iter().sum()).collect();
    let total: f32 = sums.iter().sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..N).filter(|&i| sums[i] > 0.0).collect();
    // Features that show the finding's class first, then by share.
    let shows = class_features(a.class);
    order.sort_by(|&p, &q| {
        (shows.contains(&q), sums[q])
            .partial_cmp(&(shows.contains(&p), sums[p]))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    // Only what contributed: a share that rounds to nothing explains nothing.
    order.retain(|&i| sums[i] / total >= MIN_SHARE);
    order.truncate(TOP_FEATURES);
    let warmed = baseline.scoring();
    order
        .into_iter()
        .map(|i| {
            let (observed, z) = value(i);
            let c = a.credit[i];
            let source = if c[0] >= c[1] && c[0] >= c[2] {
                Source::Indicator
            } else if c[1] >= c[2] {
                Source::Baseline
            } else {
                Source::Model
            };
            let normal = warmed.then(|| {
                let (lo, hi) = baseline.range(i);
                [round3_64(to_raw(i, lo)), round3_64(to_raw(i, hi))]
            });
            Explanation {
                feature: FEATURE_NAMES[i].to_string(),
                observed: round3_64(observed),
                normal,
                z,
                contribution: round3(a.score * sums[i] / total),
                source,
            }
        })
        .collect()
}

/// Renames the explanation items that credit a feature only because an indicator no
/// feature shows fired (see [`crate::schema::Indicator::unfeatured`]): the item names the
/// indicator, with its count, and no normal range. `raw` is the record's values (none in
/// real time); an item whose feature the invocation did move keeps its name.
pub fn name_unfeatured(items: &mut [Explanation], tracker: &Tracker, raw: Option<&[f64; N]>) {
    for hit in &tracker.hits {
        let Some(name) = hit.indicator.unfeatured() else {
            continue;
        };
        let feature = hit.indicator.feature();
        let shared = tracker
            .hits
            .iter()
            .any(|h| h.indicator != hit.indicator && h.indicator.feature() == feature);
        let moved = raw.is_some_and(|r| r[feature] > 0.0);
        if shared || moved {
            continue;
        }
        for item in items.iter_mut() {
            if item.feature == FEATURE_NAMES[feature] && item.source == Source::Indicator {
                item.feature = name.to_string();
                item.observed = f64::from(hit.count);
                item.normal = None;
                item.z = None;
            }
        }
    }
}

/// Evidence for a record's finding: what the indicators matched, then the observations
/// that fit its class. Raw: the finding redacts its copy.
pub fn evidence(
    tracker: &Tracker,
    r: &FeatureRecord,
    class: Class,
    max: usize,
) -> Vec<Observation> {
    let mut out: Vec<Observation> = Vec::new();
    for e in tracker.hits.iter().flat_map(|h| &h.evidence) {
        if out.len() < max && !out.contains(e) {
            out.push(e.clone());
        }
    }
    for obs in &r.evidence {
        if out.len() >= max {
            break;
        }
        if fits(class, obs) && !out.contains(obs) {
            out.push(obs.clone());
        }
    }
    out
}

fn fits(class: Class, obs: &Observation) -> bool {
    match obs {
        Observation::Endpoint { .. } | Observation::Connect { .. } | Observation::Send { .. } => {
            matches!(
                class,
                Class::ExfiltrationEgress
                    | Class::CryptoMining
                    | Class::ReverseShell
                    | Class::CredentialTheft
                    | Class::Anomaly
            )
        }
        Observation::StillRunning { .. } | Observation::Patched { .. } => {
            matches!(class, Class::Persistence | Class::Anomaly)
        }
        Observation::TmpFile { .. } => matches!(
            class,
            Class::Dropper | Class::Persistence | Class::ExfiltrationEgress | Class::Anomaly
        ),
        Observation::Process { .. } | Observation::Program { .. } | Observation::Exec { .. } => {
            !matches!(class, Class::ExfiltrationResponse | Class::Probing)
        }
        Observation::FileWrite { .. } => {
            matches!(class, Class::Dropper | Class::Persistence | Class::Anomaly)
        }
        Observation::CredentialRead { .. } | Observation::SecretSent { .. } => matches!(
            class,
            Class::CredentialTheft | Class::ExfiltrationEgress | Class::Anomaly
        ),
        // Tampering is evidence whatever the class: it says the record may be forged.
        Observation::Tamper { .. } | Observation::Signal { .. } => true,
    }
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

fn round3_64(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
