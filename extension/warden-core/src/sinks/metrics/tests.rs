use super::*;
use crate::health::{Counter, Health};
use crate::schema::Class;
use crate::schema::Severity;
use crate::testing::finding_of;

#[test]
fn a_window_closes_at_once_on_a_finding_and_counts_it_by_class_and_severity() {
    let health = Health::default();
    let mut w = Window::new(0, health.snapshot());
    w.scored(0.1, 300, 1_800);
    assert!(!w.due(1_000), "a quiet window waits");
    w.finding(&finding_of(Class::ReverseShell, Severity::Critical));
    assert!(w.due(1_000));
    health.add(Counter::SinkErrors, 2);
    let b = w.close(1_000, health.snapshot());
    let get = |name: &str, dim: Option<(&str, &str)>| {
        b.series
            .iter()
            .find(|s| s.name == name && s.dimension.as_ref().map(|(k, v)| (*k, v.as_str())) == dim)
            .map(|s| s.values.clone())
    };
    assert_eq!(get("Findings", None), Some(vec![(1.0, 1)]));
    assert_eq!(
        get("Findings", Some(("Class", "reverse_shell"))),
        Some(vec![(1.0, 1)])
    );
    assert_eq!(
        get("Findings", Some(("Severity", "critical"))),
        Some(vec![(1.0, 1)])
    );
    assert_eq!(
        get("SinkErrors", None),
        Some(vec![(2.0, 1)]),
        "health is the increase"
    );
    assert_eq!(get("AnomalyScore", None), Some(vec![(0.1, 1)]));
    assert_eq!(get("ExtensionMemory", None), Some(vec![(1_800.0, 1)]));
    let next = w.close(2_000, health.snapshot());
    assert_eq!(
        next.series
            .iter()
            .find(|s| s.name == "SinkErrors")
            .map(|s| s.values.clone()),
        Some(vec![(0.0, 1)]),
        "the next window starts from the new counters"
    );
}

#[test]
fn scores_are_counted_by_value_and_the_window_closes_when_full_or_old() {
    let health = Health::default();
    let mut w = Window::new(0, health.snapshot());
    for _ in 0..3 {
        w.scored(0.2, 100, 1);
    }
    assert!(!w.due(WINDOW_MS - 1));
    assert!(w.due(WINDOW_MS), "a minute old");
    let b = w.close(WINDOW_MS, health.snapshot());
    let s = b.series.iter().find(|s| s.name == "AnomalyScore").unwrap();
    assert_eq!(s.values, vec![(0.2, 3)]);
    for _ in 0..MAX_SCORES {
        w.scored(0.0, 1, 1);
    }
    assert!(w.due(WINDOW_MS + 1), "full");
}

#[test]
fn an_idle_window_is_empty_until_a_counter_moves() {
    let health = Health::default();
    let w = Window::new(0, health.snapshot());
    assert!(w.is_empty(&health.snapshot()));
    health.add(Counter::TelemetryDropped, 1);
    assert!(!w.is_empty(&health.snapshot()));
}
