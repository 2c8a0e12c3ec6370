//! Plain-text rendering of an evaluation [`Report`].

use std::fmt::Write;

use crate::eval::{Report, FIRST_INVOCATIONS};
use warden_core::model::BENIGN;

/// The report as aligned tables.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "evaluation     {}", r.evaluation);
    let _ = writeln!(s, "model sha256   {}", r.model_sha256);
    let _ = writeln!(s, "mode           {}", r.mode);
    let _ = writeln!(s, "rows           {}   corpus seeds {:?}", r.rows, r.seeds);
    if !r.overlapping_seeds.is_empty() {
        let _ = writeln!(
            s,
            "WARNING: seeds also used in training: {:?}",
            r.overlapping_seeds
        );
    }
    let _ = write!(
        s,
        "false positives {} / {} benign = {:.3}%",
        r.false_positives,
        r.benign,
        100.0 * r.false_positive_rate,
    );
    if r.mode == "model" {
        let _ = write!(s, "   (anomaly threshold {})", r.anomaly_threshold);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "scoring latency median {:.2} µs, p99 {:.2} µs (the model's score alone)\n",
        r.latency_median_us, r.latency_p99_us
    );
    let _ = writeln!(
        s,
        "{:<24}{:>8}{:>10}{:>9}{:>11}{:>13}{:>13}{:>11}",
        "class",
        "support",
        "detected",
        "recall",
        "class acc",
        "expl. first",
        "class recall",
        "precision"
    );
    for c in &r.classes {
        let attack = c.class != BENIGN;
        let _ = writeln!(
            s,
            "{:<24}{:>8}{:>10}{:>8.1}%{:>11}{:>13}{:>12.1}%{:>10.1}%",
            c.class,
            c.support,
            c.detected,
            100.0 * c.recall,
            share(attack && c.detected > 0, c.class_accuracy),
            share(attack && c.detected > 0, c.explained_first_share),
            100.0 * c.class_recall,
            100.0 * c.precision,
        );
    }
    let o = &r.overall;
    let _ = writeln!(
        s,
        "{:<24}{:>8}{:>10}{:>8.1}%{:>11}{:>13}",
        "all attacks",
        o.attacks,
        o.detected,
        100.0 * o.recall,
        share(o.detected > 0, o.class_accuracy),
        share(o.detected > 0, o.explained_first_share),
    );
    let _ = writeln!(
        s,
        "\nrecall: flagged at all; class acc: of the flagged, named as their class; expl. first:\n\
         of the flagged, the explanation's first item is a feature the class moves"
    );
    let _ = writeln!(
        s,
        "\nby function (first {n} = an environment's first {n} invocations)",
        n = FIRST_INVOCATIONS
    );
    let _ = writeln!(
        s,
        "  {:<22}{:>8}{:>8}{:>12}{:>10}{:>9}{:>17}",
        "function",
        "benign",
        "flagged",
        format!("after {FIRST_INVOCATIONS}"),
        "flagged",
        "rate",
        "high w/o hard"
    );
    for f in &r.functions {
        let mut tags = Vec::new();
        if f.held_out {
            tags.push("held out");
        }
        if f.profiled {
            tags.push("profile");
        }
        let _ = writeln!(
            s,
            "  {:<22}{:>8}{:>8}{:>12}{:>10}{:>8.3}%{:>17}  {}",
            f.function,
            f.benign,
            f.false_positives,
            f.benign_after_first,
            f.flagged_after_first,
            100.0 * f.flagged_after_first_rate,
            format!(
                "{} ({} benign)",
                f.high_without_hard_first, f.high_without_hard_first_benign
            ),
            if tags.is_empty() {
                String::new()
            } else {
                format!("({})", tags.join(", "))
            }
        );
    }
    let _ = writeln!(
        s,
        "  {:<22}{:>8}{:>8}{:>12}{:>10}{:>8.3}%{:>17}",
        "all",
        r.benign,
        r.false_positives,
        o.benign_after_first,
        o.flagged_after_first,
        100.0 * o.flagged_after_first_rate,
        format!(
            "{} ({} benign)",
            o.high_without_hard_first, o.high_without_hard_first_benign
        ),
    );
    let _ = writeln!(
        s,
        "flagged: benign rows flagged; after {n}: benign rows after the first {n}; high w/o hard:\n\
         high/critical findings on a record of the first {n} with no hard indicator",
        n = FIRST_INVOCATIONS
    );
    let _ = writeln!(s, "\nbars");
    for b in &r.bars {
        let status = match (b.applies, b.met) {
            (false, _) => "n/a",
            (true, true) => "met",
            (true, false) => "NOT MET",
        };
        let value = if b.share {
            format!("{:.3}%", 100.0 * b.value)
        } else {
            format!("{}", b.value)
        };
        let at =
            b.at.as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
        let note = if b.note.is_empty() {
            String::new()
        } else {
            format!("; {}", b.note)
        };
        let _ = writeln!(s, "  [{status:<7}] {}: {value}{at}{note}", b.name);
    }
    if !r.folds.is_empty() {
        let _ = writeln!(
            s,
            "\nfolds (each function scored by a model and profiles trained without it)"
        );
        let _ = writeln!(
            s,
            "  {:<22}{:>11}{:>10}{:>11}{:>10}  model sha256",
            "held out", "train rows", "functions", "test rows", "seconds"
        );
        for f in &r.folds {
            let _ = writeln!(
                s,
                "  {:<22}{:>11}{:>10}{:>11}{:>10.1}  {}",
                f.function,
                f.train_rows,
                f.train_functions.len(),
                f.test_rows,
                f.seconds,
                f.model_sha256.get(..16).unwrap_or(&f.model_sha256)
            );
        }
    }
    let _ = writeln!(s, "\nconfusion (rows: true, columns: predicted)");
    let short: Vec<String> = r.predicted_labels.iter().map(|l| abbreviate(l)).collect();
    let _ = write!(s, "{:<24}", "");
    for l in &short {
        let _ = write!(s, "{l:>7}");
    }
    let _ = writeln!(s);
    for (c, row) in r.classes.iter().zip(&r.confusion) {
        let _ = write!(s, "{:<24}", c.class);
        for v in row {
            let _ = write!(s, "{v:>7}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\ncolumns: {}", legend(&r.predicted_labels, &short));
    s
}

/// A percentage, or `-` where it means nothing (benign, nothing detected).
fn share(meaningful: bool, v: f64) -> String {
    if meaningful {
        format!("{:.1}%", 100.0 * v)
    } else {
        "-".into()
    }
}

fn abbreviate(label: &str) -> String {
    label
        .split('_')
        .map(|w| w.chars().take(3).collect::<String>())
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .take(6)
        .collect()
}

fn legend(labels: &[String], short: &[String]) -> String {
    labels
        .iter()
        .zip(short)
        .map(|(l, s)| format!("{s}={l}"))
        .collect::<Vec<_>>()
        .join(", ")
}
