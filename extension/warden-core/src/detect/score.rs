//! Combining indicators, baseline z-scores and the optional model into one score, a class
//! and a severity. Each part is a probability-like value in 0..1 and they are combined by
//! noisy-OR: `1 − Π(1 − part)`.

use crate::features::{idx, N};
use crate::model::ModelOutput;
use crate::schema::{Class, Severity};

/// Combined z at which the baseline part reaches 0.5.
pub const Z_HALF: f32 = 8.0;
/// Default alert threshold on the combined score.
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// z-scores below this earn no credit in explanations (ordinary noise).
const Z_NOISE: f32 = 2.0;
/// Largest z counted (a feature with a floor-sized scale can give absurd values).
const Z_MAX: f32 = 50.0;
/// Features the baseline part ignores: context, not behaviour.
const CONTEXT: [usize; 1] = [idx::COLD];
/// Features that grow with the size of the work a payload asks for, or that count what the
/// sampler happened to catch of programs the indicators already judge by name: a heavy
/// request (or a lucky tick) moves them far from the median without anything being wrong,
/// so the baseline part counts their z at [`VOLUME_WEIGHT`]. The model still sees them at
/// full size, next to the features that tell a big job from an attack.
const VOLUME: [usize; 12] = [
    idx::DURATION_MS,
    idx::CPU_MS,
    idx::CPU_SHARE,
    idx::RSS_KB,
    idx::MAX_MEMORY_MB,
    idx::LOG_LINES,
    idx::NET_RX,
    idx::TMP_BYTES_DELTA,
    idx::TASKS_CREATED,
    idx::NEW_PROCESSES,
    idx::EXECS,
    idx::SHELLS,
];
/// Weight of a volume feature's z in the baseline part.
const VOLUME_WEIGHT: f32 = 1.0 / 3.0;

/// The z of feature `i` as the baseline part counts it: context left out, volume
/// features weighted down, at most [`Z_MAX`].
fn counted_z(i: usize, v: f32) -> f32 {
    if CONTEXT.contains(&i) || !v.is_finite() {
        return 0.0;
    }
    let w = if VOLUME.contains(&i) {
        VOLUME_WEIGHT
    } else {
        1.0
    };
    (v * w).clamp(0.0, Z_MAX)
}

/// Share at which a model verdict counts when nothing else supports it: the generic model
/// was trained on other functions, and what looks like an attack in general (a small
/// POST to an endpoint) may be this function's daily work. Unsupported, it must be sure.
pub const UNSUPPORTED_MODEL: f32 = 0.6;
/// Counted z from which the baseline supports a model verdict.
const Z_SUPPORT: f32 = 3.0;

/// How much the model's verdict counts: fully when an indicator fired, the baseline sees a
/// deviation, or the invocation did something the function rarely does; otherwise
/// [`UNSUPPORTED_MODEL`] (which includes every invocation of a function whose baseline is
/// still warming up: nothing can support the model there yet).
pub fn model_trust(hits: &[Weighted], z: &[f32; N], rare_action: bool) -> f32 {
    if !hits.is_empty() || rare_action || deviates(z) {
        1.0
    } else {
        UNSUPPORTED_MODEL
    }
}

/// Whether the baseline sees a deviation that supports a model verdict.
fn deviates(z: &[f32; N]) -> bool {
    z.iter()
        .enumerate()
        .any(|(i, &v)| counted_z(i, v) >= Z_SUPPORT)
}

/// Classes from most to least specific: the most specific one supported wins.
const SPECIFICITY: [Class; 12] = [
    Class::ReverseShell,
    Class::CredentialTheft,
    Class::Dropper,
    Class::CryptoMining,
    Class::Persistence,
    Class::ExfiltrationEgress,
    Class::ExfiltrationResponse,
    Class::DenialOfWallet,
    Class::CommandInjection,
    // After every attack class: tampering usually comes with the attack it hides, which
    // names the finding; before probing, since forged errors are what a probe looks like.
    Class::Tamper,
    Class::Probing,
    Class::Anomaly,
];

/// The score and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Combined score.
    pub score: f32,
    /// The class.
    pub class: Class,
    /// Indicator part.
    pub indicators: f32,
    /// Baseline part.
    pub baseline: f32,
    /// Model part.
    pub model: f32,
    /// Per feature: (indicator, baseline, model) credit, unnormalised.
    pub credit: [[f32; 3]; N],
}

/// A fired indicator's class and weight, and the feature it credits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighted {
    /// Class it points to.
    pub class: Class,
    /// Weight 0..1.
    pub weight: f32,
    /// Feature credited.
    pub feature: usize,
    /// About the environment rather than this invocation (a process planted earlier still
    /// running): its class names the finding only when nothing else does.
    pub background: bool,
    /// A hard indicator (an attack on its own): when one fired, the class follows it
    /// rather than the model's or the baseline's.
    pub hard: bool,
}

fn noisy_or(parts: impl IntoIterator<Item = f32>) -> f32 {
    1.0 - parts
        .into_iter()
        .fold(1.0, |keep, p| keep * (1.0 - p.clamp(0.0, 1.0)))
}

/// The baseline part: the largest counted z plus half the second, squashed to 0..1.
pub fn baseline_part(z: &[f32; N]) -> f32 {
    let (mut first, mut second) = (0f32, 0f32);
    for (i, &v) in z.iter().enumerate() {
        let v = counted_z(i, v);
        if v > first {
            second = first;
            first = v;
        } else if v > second {
            second = v;
        }
    }
    let c = first + 0.5 * second;
    c * c / (c * c + Z_HALF * Z_HALF)
}

/// The model part: the larger of the attack probability and the novelty.
pub fn model_part(m: &ModelOutput) -> f32 {
    let p = m.class.map_or(0.0, |(_, p)| p);
    p.max(m.anomaly).clamp(0.0, 1.0)
}

/// Scores one invocation.
pub fn assess(
    hits: &[Weighted],
    z: &[f32; N],
    model: Option<&ModelOutput>,
    threshold: f32,
) -> Assessment {
    let mut credit = [[0f32; 3]; N];
    let indicators = noisy_or(hits.iter().map(|h| h.weight));
    for h in hits {
        let c = &mut credit[h.feature][0];
        *c = c.max(h.weight);
    }
    let baseline = baseline_part(z);
    let counted: Vec<f32> = z
        .iter()
        .enumerate()
        .map(|(i, &v)| counted_z(i, v))
        .collect();
    let z_sum: f32 = counted.iter().filter(|v| **v >= Z_NOISE).sum();
    if z_sum > 0.0 {
        for (i, &v) in counted.iter().enumerate() {
            if v >= Z_NOISE {
                credit[i][1] = baseline * v / z_sum;
            }
        }
    }
    let model_score = model.map_or(0.0, model_part);
    if let Some(m) = model {
        let total: f32 = m.contributions.iter().map(|(_, c)| c.max(0.0)).sum();
        for &(i, c) in &m.contributions {
            if i < N && total > 0.0 {
                credit[i][2] += model_score * c.max(0.0) / total;
            }
        }
    }
    let score = noisy_or([indicators, baseline, model_score]);
    let class = choose_class(hits, z, model, baseline, threshold);
    Assessment {
        score,
        class,
        indicators,
        baseline,
        model: model_score,
        credit,
    }
}

fn choose_class(
    hits: &[Weighted],
    z: &[f32; N],
    model: Option<&ModelOutput>,
    baseline: f32,
    threshold: f32,
) -> Class {
    // The strongest evidence names the class: a hard indicator over a vote or a deviation.
    let hard: Vec<Class> = hits
        .iter()
        .filter(|h| h.hard && !h.background && h.weight >= threshold)
        .map(|h| h.class)
        .collect();
    if let Some(c) = SPECIFICITY.into_iter().find(|c| hard.contains(c)) {
        return c;
    }
    let mut candidates: Vec<Class> = hits
        .iter()
        .filter(|h| h.weight >= threshold && !h.background)
        .map(|h| h.class)
        .collect();
    // The model refines a generic class (a command, an anomaly) into a specific one; it does
    // not overrule a rule that named a specific attack (a beacon's cadence, a dropper's run
    // from /tmp): one invocation's figures cannot tell what a pattern across them can.
    let specific = candidates.iter().any(|c| !is_generic(*c));
    if let Some((c, p)) = model.and_then(|m| m.class) {
        if p >= threshold && !specific {
            candidates.push(c);
        }
    }
    if baseline >= threshold {
        // Longer or busier runs are a side effect of most attacks: with a rule already
        // naming one, the baseline adds only classes it sees directly (data moved out).
        let c = baseline_class(z);
        let direct = matches!(
            c,
            Class::ExfiltrationEgress | Class::ExfiltrationResponse | Class::CryptoMining
        );
        if candidates.is_empty() || direct {
            candidates.push(c);
        }
    }
    if candidates.is_empty() {
        candidates.extend(
            hits.iter()
                .filter(|h| h.weight >= threshold && h.background)
                .map(|h| h.class),
        );
    }
    if candidates.is_empty() {
        // Below the threshold on its own, each part still says something.
        candidates.extend(hits.iter().map(|h| h.class));
        candidates.push(baseline_class(z));
    }
    SPECIFICITY
        .into_iter()
        .find(|c| candidates.contains(c))
        .unwrap_or(Class::Anomaly)
}

/// Classes a rule names when it sees that something ran or moved but not what it is for.
fn is_generic(class: Class) -> bool {
    matches!(class, Class::CommandInjection | Class::Anomaly)
}

/// The features that show each class (for picking a class from z-scores and for ordering
/// explanations).
pub fn class_features(class: Class) -> &'static [usize] {
    match class {
        Class::ExfiltrationEgress => &[
            idx::NET_TX,
            idx::TCP_OUTBOUND,
            idx::NEW_ENDPOINTS,
            idx::UDP_OUT,
        ],
        Class::ExfiltrationResponse => &[idx::PRODUCED],
        Class::CryptoMining => &[
            idx::CPU_MS,
            idx::CPU_SHARE,
            idx::MINING_PORTS,
            idx::NEW_ENDPOINTS,
        ],
        Class::DenialOfWallet => &[
            idx::CPU_MS,
            idx::CPU_SHARE,
            idx::DURATION_MS,
            idx::STATUS_TIMEOUT,
        ],
        Class::Probing => &[
            idx::ERROR_LINES,
            idx::TRACEBACKS,
            idx::STATUS_ERROR,
            idx::LOG_LINES,
        ],
        // A planted process shows by running on; a thread, timer or patched function in the
        // runtime only by its calls out.
        Class::Persistence => &[
            idx::LEFT_RUNNING,
            idx::FOREIGN_PROCESSES,
            idx::TMP_FILES_CREATED,
            idx::TMP_BYTES_DELTA,
            idx::NEW_ENDPOINTS,
            idx::TCP_OUTBOUND,
        ],
        Class::Dropper => &[idx::EXEC_FROM_TMP, idx::TMP_FILES_CREATED],
        Class::CommandInjection => &[
            idx::SHELLS,
            idx::NEW_PROCESSES,
            idx::EXECS,
            idx::TASKS_CREATED,
        ],
        Class::ReverseShell => &[idx::SHELLS, idx::NEW_ENDPOINTS, idx::LISTENERS],
        Class::CredentialTheft => &[idx::NEW_PROCESSES, idx::NET_TX, idx::NEW_ENDPOINTS],
        Class::Anomaly | Class::Tamper => &[],
    }
}

/// The class of one deviant feature.
fn feature_class(i: usize, z: &[f32; N]) -> Option<Class> {
    let talks = z[idx::NEW_ENDPOINTS].max(z[idx::TCP_OUTBOUND]) >= Z_NOISE;
    Some(match i {
        idx::MINING_PORTS => Class::CryptoMining,
        idx::NET_TX | idx::TCP_OUTBOUND | idx::NEW_ENDPOINTS | idx::UDP_OUT => {
            Class::ExfiltrationEgress
        }
        idx::PRODUCED => Class::ExfiltrationResponse,
        idx::CPU_MS | idx::CPU_SHARE if talks => Class::CryptoMining,
        idx::CPU_MS | idx::CPU_SHARE | idx::DURATION_MS | idx::STATUS_TIMEOUT => {
            Class::DenialOfWallet
        }
        idx::ERROR_LINES | idx::TRACEBACKS | idx::STATUS_ERROR | idx::LOG_LINES => Class::Probing,
        idx::LEFT_RUNNING
        | idx::FOREIGN_PROCESSES
        | idx::TMP_FILES_CREATED
        | idx::TMP_BYTES_DELTA => Class::Persistence,
        idx::EXEC_FROM_TMP => Class::Dropper,
        idx::NEW_PROCESSES | idx::EXECS | idx::SHELLS | idx::TASKS_CREATED => {
            Class::CommandInjection
        }
        _ => return None,
    })
}

/// The class the baseline's deviant features point to: the most specific among features
/// at half the alert level or more (or the top feature, if it is past the noise level).
pub fn baseline_class(z: &[f32; N]) -> Class {
    let counted: [f32; N] = std::array::from_fn(|i| counted_z(i, z[i]));
    let top = counted
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .filter(|(_, v)| **v >= Z_NOISE)
        .map(|(i, _)| i);
    let mut classes: Vec<Class> = (0..N)
        .filter(|i| counted[*i] >= Z_HALF / 2.0)
        .filter_map(|i| feature_class(i, z))
        .collect();
    classes.extend(top.and_then(|i| feature_class(i, z)));
    SPECIFICITY
        .into_iter()
        .find(|c| classes.contains(c))
        .unwrap_or(Class::Anomaly)
}

/// Severity from score and class.
pub fn severity(score: f32, class: Class) -> Severity {
    let direct = matches!(
        class,
        Class::ReverseShell | Class::CredentialTheft | Class::Dropper
    );
    let malicious = direct
        || matches!(
            class,
            Class::CommandInjection
                | Class::CryptoMining
                | Class::ExfiltrationEgress
                | Class::Persistence
                | Class::Tamper
        );
    if direct && score >= 0.9 {
        Severity::Critical
    } else if malicious || score >= 0.8 {
        Severity::High
    } else if score >= 0.6 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

#[cfg(test)]
mod tests;
