use super::*;

fn z_with(i: usize, v: f32) -> [f32; N] {
    let mut z = [0.0; N];
    z[i] = v;
    z
}

#[test]
fn nothing_scores_zero() {
    let a = assess(&[], &[0.0; N], None, DEFAULT_THRESHOLD);
    assert_eq!(a.score, 0.0);
    assert_eq!(a.class, Class::Anomaly);
}

#[test]
fn baseline_part_grows_with_z_and_ignores_negative_and_context() {
    assert!(baseline_part(&z_with(idx::NET_TX, 4.0)) < 0.25);
    assert!((baseline_part(&z_with(idx::NET_TX, Z_HALF)) - 0.5).abs() < 1e-6);
    assert!(baseline_part(&z_with(idx::NET_TX, 30.0)) > 0.9);
    assert_eq!(baseline_part(&z_with(idx::NET_TX, -30.0)), 0.0);
    assert_eq!(baseline_part(&z_with(idx::COLD, 30.0)), 0.0);
    assert!(baseline_part(&z_with(idx::NET_TX, f32::INFINITY)) <= 1.0);
}

#[test]
fn parts_combine_by_noisy_or() {
    let hits = [Weighted {
        class: Class::CommandInjection,
        weight: 0.9,
        feature: idx::SHELLS,
        background: false,
        hard: false,
    }];
    let z = z_with(idx::NET_TX, Z_HALF);
    let a = assess(&hits, &z, None, DEFAULT_THRESHOLD);
    assert!((a.score - (1.0 - 0.1 * 0.5)).abs() < 1e-5);
    // Both support a class: the more specific one (egress) wins over command injection.
    assert_eq!(a.class, Class::ExfiltrationEgress);
    assert!(a.credit[idx::SHELLS][0] > 0.0 && a.credit[idx::NET_TX][1] > 0.0);
}

#[test]
fn baseline_classes_follow_the_top_feature() {
    assert_eq!(
        baseline_class(&z_with(idx::NET_TX, 20.0)),
        Class::ExfiltrationEgress
    );
    assert_eq!(
        baseline_class(&z_with(idx::PRODUCED, 20.0)),
        Class::ExfiltrationResponse
    );
    assert_eq!(
        baseline_class(&z_with(idx::CPU_MS, 20.0)),
        Class::DenialOfWallet
    );
    assert_eq!(
        baseline_class(&z_with(idx::TRACEBACKS, 20.0)),
        Class::Probing
    );
    let mut z = z_with(idx::CPU_MS, 20.0);
    z[idx::NEW_ENDPOINTS] = 3.0;
    assert_eq!(baseline_class(&z), Class::CryptoMining);
    assert_eq!(baseline_class(&z_with(idx::NET_TX, 1.0)), Class::Anomaly);
}

#[test]
fn a_confident_model_names_the_class() {
    let m = ModelOutput {
        class: Some((Class::CryptoMining, 0.8)),
        anomaly: 0.1,
        contributions: vec![(idx::CPU_MS, 2.0), (idx::NEW_ENDPOINTS, 2.0)],
    };
    let a = assess(&[], &[0.0; N], Some(&m), DEFAULT_THRESHOLD);
    assert!((a.score - 0.8).abs() < 1e-6);
    assert_eq!(a.class, Class::CryptoMining);
    assert!((a.credit[idx::CPU_MS][2] - 0.4).abs() < 1e-6);
}

#[test]
fn severity_follows_class_and_score() {
    assert_eq!(severity(0.95, Class::ReverseShell), Severity::Critical);
    assert_eq!(severity(0.7, Class::ReverseShell), Severity::High);
    assert_eq!(severity(0.55, Class::ExfiltrationEgress), Severity::High);
    assert_eq!(severity(0.65, Class::Probing), Severity::Medium);
    assert_eq!(severity(0.55, Class::Anomaly), Severity::Low);
}

#[test]
fn a_big_job_alone_is_not_an_alert_but_the_same_jump_in_egress_is() {
    let mut z = [0f32; N];
    z[idx::DURATION_MS] = 12.0;
    z[idx::MAX_MEMORY_MB] = 12.0;
    let a = assess(&[], &z, None, DEFAULT_THRESHOLD);
    assert!(a.score < DEFAULT_THRESHOLD, "{a:?}");
    let mut z = [0f32; N];
    z[idx::NET_TX] = 12.0;
    let a = assess(&[], &z, None, DEFAULT_THRESHOLD);
    assert!(a.score >= DEFAULT_THRESHOLD, "{a:?}");
    assert_eq!(a.class, Class::ExfiltrationEgress);
}

#[test]
fn an_unsupported_model_verdict_counts_less() {
    let m = ModelOutput {
        class: Some((Class::CredentialTheft, 0.75)),
        anomaly: 0.1,
        contributions: vec![(idx::NET_TX, 1.0)],
    };
    let quiet = model_trust(&[], &[0.0; N], false);
    assert_eq!(quiet, UNSUPPORTED_MODEL);
    let a = assess(
        &[],
        &[0.0; N],
        Some(&m.clone().discounted(quiet)),
        DEFAULT_THRESHOLD,
    );
    assert!(a.score < DEFAULT_THRESHOLD, "{}", a.score);
    // Supported by a rare action, a deviation or an indicator: counted in full.
    assert_eq!(model_trust(&[], &[0.0; N], true), 1.0);
    assert_eq!(model_trust(&[], &z_with(idx::NET_TX, 4.0), false), 1.0);
    // A volume feature's z counts at a third: 4 is not enough there.
    assert_eq!(
        model_trust(&[], &z_with(idx::DURATION_MS, 4.0), false),
        UNSUPPORTED_MODEL
    );
    let hit = Weighted {
        class: Class::ExfiltrationEgress,
        weight: 0.15,
        feature: idx::NEW_ENDPOINTS,
        background: false,
        hard: false,
    };
    assert_eq!(model_trust(&[hit], &[0.0; N], false), 1.0);
    let a = assess(&[], &[0.0; N], Some(&m), DEFAULT_THRESHOLD);
    assert_eq!(a.class, Class::CredentialTheft);
    // A sure model needs no support.
    let sure = ModelOutput {
        class: Some((Class::CredentialTheft, 0.95)),
        ..m
    };
    let a = assess(
        &[],
        &[0.0; N],
        Some(&sure.discounted(quiet)),
        DEFAULT_THRESHOLD,
    );
    assert!(a.score >= DEFAULT_THRESHOLD);
}

#[test]
fn a_background_indicator_names_the_finding_only_when_nothing_else_does() {
    let still = Weighted {
        class: Class::Persistence,
        weight: 0.85,
        feature: idx::FOREIGN_PROCESSES,
        background: true,
        hard: false,
    };
    let a = assess(
        &[still],
        &z_with(idx::NET_TX, 30.0),
        None,
        DEFAULT_THRESHOLD,
    );
    assert_eq!(a.class, Class::ExfiltrationEgress);
    let a = assess(&[still], &[0.0; N], None, DEFAULT_THRESHOLD);
    assert_eq!(a.class, Class::Persistence);
}

#[test]
fn a_hard_indicator_names_the_class_over_the_model_and_the_baseline() {
    let recon = Weighted {
        class: Class::CommandInjection,
        weight: 0.9,
        feature: idx::NEW_PROCESSES,
        background: false,
        hard: true,
    };
    let model = ModelOutput {
        class: Some((Class::Dropper, 0.9)),
        anomaly: 0.1,
        contributions: vec![(idx::EXEC_FROM_TMP, 1.0)],
    };
    let z = z_with(idx::NET_TX, 3.0 * Z_HALF);
    let a = assess(&[recon], &z, Some(&model), DEFAULT_THRESHOLD);
    assert_eq!(a.class, Class::CommandInjection);
    // The same vote and deviation with a soft indicator: the more specific class wins.
    let soft = Weighted {
        hard: false,
        ..recon
    };
    let a = assess(&[soft], &z, Some(&model), DEFAULT_THRESHOLD);
    assert_eq!(a.class, Class::Dropper);
}

#[test]
fn the_model_refines_a_generic_rule_but_does_not_overrule_a_specific_one() {
    let rule = |class, feature| Weighted {
        class,
        weight: 0.7,
        feature,
        background: false,
        hard: false,
    };
    let vote = ModelOutput {
        class: Some((Class::CredentialTheft, 0.8)),
        anomaly: 0.1,
        contributions: vec![(idx::NET_RX, 1.0)],
    };
    // A beacon's cadence across invocations says more than one invocation's figures.
    let beacon = rule(Class::Persistence, idx::NEW_ENDPOINTS);
    let a = assess(&[beacon], &[0.0; N], Some(&vote), DEFAULT_THRESHOLD);
    assert_eq!(a.class, Class::Persistence);
    // A command that ran says nothing of what it was for: the vote names it.
    let command = rule(Class::CommandInjection, idx::NEW_PROCESSES);
    let a = assess(&[command], &[0.0; N], Some(&vote), DEFAULT_THRESHOLD);
    assert_eq!(a.class, Class::CredentialTheft);
}
