//! The bars of "detection that holds on functions Warden has never seen", judged on a report's
//! figures: each with the worst value it was judged on, and whether it applies to the setting
//! that produced them.

use serde::Serialize;

use super::{ClassFigures, FunctionFigures, Mode, Setting, FIRST_INVOCATIONS};
use warden_core::model::BENIGN;

/// Most benign flags after an environment's first invocations, per function without a profile.
pub const FLAGGED_AFTER_FIRST: f64 = 0.001;
/// Least recall per attack class, leave-one-function-out.
pub const RECALL: f64 = 0.99;
/// Least class accuracy per attack class.
pub const CLASS_ACCURACY: f64 = 0.95;
/// Least explained-first share per attack class.
pub const EXPLAINED_FIRST: f64 = 0.95;

/// One bar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    /// What it asks.
    pub name: String,
    /// The figure it was judged on: the worst class's or function's.
    pub value: f64,
    /// `value` is a share (else a count).
    pub share: bool,
    /// Which class or function that was (none when nothing was judged).
    pub at: Option<String>,
    /// The figures it was judged on came from the setting it is about.
    pub applies: bool,
    /// Met (only meaningful when it applies).
    pub met: bool,
    /// Why it does not apply, or what it was judged on.
    pub note: String,
}

/// The bars, in the order.
pub(super) fn judge(
    setting: Setting,
    mode: Mode,
    classes: &[ClassFigures],
    functions: &[FunctionFigures],
) -> Vec<Bar> {
    let lofo = setting == Setting::LeaveOneFunctionOut;
    let detector = mode == Mode::Detector;
    let attacks: Vec<&ClassFigures> = classes
        .iter()
        .filter(|c| c.class != BENIGN && c.support > 0)
        .collect();
    let flagged: Vec<&ClassFigures> = attacks.iter().copied().filter(|c| c.detected > 0).collect();
    let unprofiled: Vec<&FunctionFigures> = functions
        .iter()
        .filter(|f| !f.profiled && f.benign_after_first > 0)
        .collect();

    let mut bars = Vec::new();
    let worst = unprofiled.iter().max_by(|a, b| {
        a.flagged_after_first_rate
            .total_cmp(&b.flagged_after_first_rate)
    });
    bars.push(Bar {
        name: format!(
            "benign flagged after the first {FIRST_INVOCATIONS} <= {}% per function, no profile",
            100.0 * FLAGGED_AFTER_FIRST
        ),
        value: worst.map_or(0.0, |f| f.flagged_after_first_rate),
        share: true,
        at: worst.map(|f| f.function.clone()),
        applies: !unprofiled.is_empty(),
        met: worst.is_none_or(|f| f.flagged_after_first_rate <= FLAGGED_AFTER_FIRST),
        note: if unprofiled.is_empty() {
            "no function without a profile has benign rows after its first invocations".into()
        } else {
            format!("{} functions without a profile", unprofiled.len())
        },
    });

    // A profile ends the learning period before it starts: the bar is on functions without.
    let learning: Vec<&FunctionFigures> = functions.iter().filter(|f| !f.profiled).collect();
    let high: u64 = learning.iter().map(|f| f.high_without_hard_first).sum();
    let worst = learning
        .iter()
        .filter(|f| f.high_without_hard_first > 0)
        .max_by_key(|f| f.high_without_hard_first);
    bars.push(Bar {
        name: format!(
            "no high/critical finding without a hard indicator in the first {FIRST_INVOCATIONS}"
        ),
        value: high as f64,
        share: false,
        at: worst.map(|f| f.function.clone()),
        applies: detector && !learning.is_empty(),
        met: high == 0,
        note: if !detector {
            "model mode makes no findings".into()
        } else if learning.is_empty() {
            "every function has a profile".into()
        } else {
            "findings on any row, benign or attack, of functions without a profile".into()
        },
    });

    let per_class = |name: &str, bar: f64, of: &[&ClassFigures], get: fn(&ClassFigures) -> f64| {
        let worst = of.iter().min_by(|a, b| get(a).total_cmp(&get(b)));
        Bar {
            name: format!("{name} >= {}% per class", 100.0 * bar),
            value: worst.map_or(0.0, |c| get(c)),
            share: true,
            at: worst.map(|c| c.class.clone()),
            applies: !of.is_empty(),
            met: worst.is_none_or(|c| get(c) >= bar),
            note: String::new(),
        }
    };
    let mut recall = per_class("recall", RECALL, &attacks, |c| c.recall);
    if !lofo {
        recall.applies = false;
        recall.note = "the bar is on leave-one-function-out figures".into();
    }
    bars.push(recall);
    for (name, bar, get) in [
        (
            "class accuracy",
            CLASS_ACCURACY,
            (|c: &ClassFigures| c.class_accuracy) as fn(&ClassFigures) -> f64,
        ),
        ("explained first", EXPLAINED_FIRST, |c: &ClassFigures| {
            c.explained_first_share
        }),
    ] {
        let mut b = per_class(name, bar, &flagged, get);
        b.note = "over the classes detected at least once".into();
        bars.push(b);
    }
    bars
}
