use super::*;
use crate::features::{idx, transform};

fn bytes(b: f64) -> f32 {
    transform(idx::NET_TX, b)
}

/// A benign vector: every feature at a steady level with a little deterministic noise.
fn benign(i: u64) -> [f32; N] {
    let mut x = [0.0; N];
    let wobble = ((i * 7919) % 13) as f32 / 13.0 - 0.5;
    x[idx::DURATION_MS] = 50.0 + 10.0 * wobble;
    x[idx::CPU_MS] = 20.0 + 10.0 * wobble;
    x[idx::RSS_KB] = 30_000.0 + 500.0 * wobble;
    x[idx::NET_TX] = bytes(20_000.0 * (1.0 + 0.3 * f64::from(wobble)));
    x[idx::PRODUCED] = bytes(400.0);
    x
}

fn warmed() -> Baseline {
    let mut b = Baseline::new();
    for i in 0..WARMUP as u64 {
        assert!(b.observe(&benign(i)));
    }
    b
}

#[test]
fn scores_nothing_before_the_first_few_then_provisionally_until_warmed_up() {
    let mut b = Baseline::new();
    let mut huge = benign(0);
    huge[idx::NET_TX] = bytes(5e7);
    for i in 0..EARLY as u64 - 1 {
        b.observe(&benign(i));
    }
    assert!(!b.scoring());
    assert!(b.normalise(&huge).iter().all(|&z| z == 0.0));
    assert_eq!(b.range(idx::NET_TX), (0.0, 0.0));
    for i in EARLY as u64 - 1..WARMUP as u64 - 1 {
        b.observe(&benign(i));
        assert!(b.scoring() && !b.warmed_up());
    }
    // Provisional: the same deviation counts at EARLY_WEIGHT of its warmed-up z.
    let early = b.normalise(&huge)[idx::NET_TX];
    assert!(early > 5.0, "{early}");
    for i in 0..WARMUP as u64 - 1 {
        assert!(b.normalise(&benign(100 + i)).iter().all(|z| z.abs() < 3.0));
    }
    b.observe(&benign(99));
    assert!(b.warmed_up());
    let settled = b.normalise(&huge)[idx::NET_TX];
    assert!(settled > 10.0);
    assert!(
        (early / settled - EARLY_WEIGHT).abs() < 0.1,
        "{early} {settled}"
    );
}

#[test]
fn benign_invocations_score_low() {
    let b = warmed();
    for i in 100..200 {
        let z = b.normalise(&benign(i));
        let max = z.iter().fold(0f32, |a, &v| a.max(v.abs()));
        assert!(max < 3.0, "benign z {max} at {i}");
    }
}

#[test]
fn floors_keep_constant_features_from_exploding() {
    let b = warmed();
    let mut x = benign(5);
    x[idx::ERROR_LINES] = 1.0;
    x[idx::NEW_PROCESSES] = 1.0;
    let z = b.normalise(&x);
    assert_eq!(z[idx::ERROR_LINES], 1.0);
    assert_eq!(z[idx::NEW_PROCESSES], 1.0);
}

#[test]
fn warmup_statistics_are_robust_to_outliers() {
    let mut b = Baseline::new();
    for i in 0..WARMUP as u64 {
        let mut x = benign(i);
        if i % 7 == 3 {
            x[idx::NET_TX] = bytes(5e7);
            x[idx::CPU_MS] = 5_000.0;
        }
        b.observe(&x);
    }
    let (lo, hi) = b.range(idx::CPU_MS);
    assert!(lo >= 0.0 && hi < 100.0, "cpu range {lo}..{hi}");
    let mut x = benign(1);
    x[idx::NET_TX] = bytes(5e7);
    assert!(b.normalise(&x)[idx::NET_TX] > 10.0);
}

#[test]
fn anomalies_are_refused() {
    let mut b = warmed();
    let before = b.to_profile();
    let mut x = benign(3);
    x[idx::NET_TX] = bytes(5e7);
    assert!(!b.observe(&x));
    assert_eq!(b.refused(), 1);
    assert_eq!(b.to_profile().median, before.median);
}

#[test]
fn one_observation_moves_the_median_a_bounded_step() {
    let mut b = warmed();
    let m0 = b.to_profile().median[idx::CPU_MS];
    let mut x = benign(3);
    x[idx::CPU_MS] = 55.0; // within the refusal limit, far above the median
    assert!(b.observe(&x));
    let m1 = b.to_profile().median[idx::CPU_MS];
    assert!(m1 > m0 && m1 - m0 < 1.0, "median moved {m0} -> {m1}");
}

/// An attacker grows egress a little each time, always just under the refusal limit,
/// for 1,000 invocations: the 50 MB exfiltration at the end must still stand out.
#[test]
fn slowly_growing_egress_does_not_poison_it() {
    for strategy in ["edge", "geometric"] {
        let mut b = warmed();
        for i in 0..1_000u64 {
            let mut x = benign(i);
            x[idx::NET_TX] = match strategy {
                "edge" => {
                    let (lo, hi) = b.range(idx::NET_TX);
                    let scale = (hi - lo) / (2.0 * RANGE_Z);
                    lo + RANGE_Z * scale + 0.99 * REFUSE_Z * scale
                }
                _ => bytes(20_000.0 * 1.003f64.powi(i as i32)),
            };
            b.observe(&x);
        }
        let mut x = benign(7);
        x[idx::NET_TX] = bytes(5e7);
        let z = b.normalise(&x)[idx::NET_TX];
        assert!(z > 8.0, "{strategy}: 50 MB scored z {z}");
    }
}

#[test]
fn stationary_data_keeps_tracking_the_median() {
    let mut b = warmed();
    for i in 0..2_000 {
        b.observe(&benign(i));
    }
    let m = b.to_profile().median[idx::DURATION_MS];
    assert!((m - 50.0).abs() < 3.0, "median {m}");
}

#[test]
fn profiles_round_trip_and_are_checked() {
    let b = warmed();
    let p = b.to_profile();
    let json = serde_json::to_string(&p).expect("serialises");
    let back: BaselineProfile = serde_json::from_str(&json).expect("parses");
    let seeded = Baseline::from_profile(&back).expect("valid profile");
    assert!(seeded.warmed_up());
    let x = benign(42);
    assert_eq!(seeded.normalise(&x), b.normalise(&x));

    let mut wrong = p.clone();
    wrong.vector_version += 1;
    assert!(matches!(
        Baseline::from_profile(&wrong),
        Err(ProfileError::Version { .. })
    ));
    let mut wrong = p.clone();
    wrong.features.swap(0, 1);
    assert_eq!(
        Baseline::from_profile(&wrong).err(),
        Some(ProfileError::Features)
    );
    let mut wrong = p.clone();
    wrong.mad[2] = f32::NAN;
    assert!(matches!(
        Baseline::from_profile(&wrong),
        Err(ProfileError::Value(_))
    ));
    let mut short = p;
    short.invocations = 3;
    assert!(!Baseline::from_profile(&short).expect("valid").warmed_up());
}

#[test]
fn non_finite_input_is_ignored() {
    let mut b = warmed();
    let mut x = benign(1);
    x[0] = f32::NAN;
    assert!(!b.observe(&x));
}

#[test]
fn an_action_the_function_never_takes_is_rare_and_one_it_takes_often_is_not() {
    let mut b = Baseline::new();
    assert_eq!(b.rare_presence(&benign(0)), None, "nothing learned yet");
    for i in 0..200 {
        let mut x = benign(i);
        // Errors in 1 of 10 invocations; never an outbound connection.
        x[idx::ERROR_LINES] = if i % 10 == 0 { 1.0 } else { 0.0 };
        assert!(b.observe(&x));
    }
    let mut connects = benign(500);
    connects[idx::TCP_OUTBOUND] = 1.0;
    assert_eq!(b.rare_presence(&connects), Some(idx::TCP_OUTBOUND));
    let mut errs = benign(501);
    errs[idx::ERROR_LINES] = 1.0;
    assert_eq!(b.rare_presence(&errs), None);
    // Shares travel with the profile.
    let p = b.to_profile();
    assert_eq!(p.present.len(), N);
    let c = Baseline::from_profile(&p).unwrap();
    assert_eq!(c.rare_presence(&connects), Some(idx::TCP_OUTBOUND));
    assert_eq!(c.rare_presence(&errs), None);
    // A profile without shares says nothing until live invocations have been counted.
    let mut old = p.clone();
    old.present.clear();
    let mut d = Baseline::from_profile(&old).unwrap();
    assert_eq!(d.rare_presence(&connects), None);
    for i in 0..WARMUP as u64 {
        d.observe(&benign(600 + i));
    }
    assert_eq!(d.rare_presence(&connects), Some(idx::TCP_OUTBOUND));
}
