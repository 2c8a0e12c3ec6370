//! Plain-text rendering of an evaluation [`Report`].

use std::fmt::Write;

use crate::eval::Report;

/// The report as aligned tables.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
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
    let _ = writeln!(
        s,
        "false positives {} / {} benign = {:.3}%   (anomaly threshold {})",
        r.false_positives,
        r.benign,
        100.0 * r.false_positive_rate,
        r.anomaly_threshold
    );
    let _ = writeln!(
        s,
        "scoring latency median {:.2} µs, p99 {:.2} µs\n",
        r.latency_median_us, r.latency_p99_us
    );
    let _ = writeln!(
        s,
        "{:<24}{:>8}{:>10}{:>9}{:>13}{:>11}{:>11}",
        "class", "support", "detected", "recall", "class recall", "precision", "explained"
    );
    for c in &r.classes {
        let _ = writeln!(
            s,
            "{:<24}{:>8}{:>10}{:>8.1}%{:>12.1}%{:>10.1}%{:>10.1}%",
            c.class,
            c.support,
            c.detected,
            100.0 * c.recall,
            100.0 * c.class_recall,
            100.0 * c.precision,
            100.0 * c.explained_share
        );
    }
    let _ = writeln!(s, "\nbenign false positives by function");
    for f in &r.functions {
        let tag = if f.held_out { " (held out)" } else { "" };
        let _ = writeln!(
            s,
            "  {:<22}{:>6} / {:<6}{}",
            f.function, f.false_positives, f.benign, tag
        );
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
