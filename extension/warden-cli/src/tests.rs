use crate::dataset::{self, Row};
use crate::eval::{evaluate, Mode};
use crate::train::{train, TrainOptions};
use std::path::Path;
use warden_core::model::file::{self, ModelHeader, TrainingInfo};
use warden_core::model::forest::{Forest, LEAF};
use warden_core::model::novelty::Novelty;

use warden_core::features::N;
use warden_core::features::{idx, FEATURE_NAMES, VECTOR_VERSION};
use warden_core::model::ModelOutput;
use warden_core::model::*;
use warden_core::schema::Class;

/// Deterministic noise in 0..1.
fn noise(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 40) as f32 / (1u64 << 24) as f32
}

fn row(label: &str, scope: &str, seq: u64, raw: [f32; N]) -> Row {
    Row {
        label: Some(label.to_string()),
        function: scope.to_string(),
        scope: scope.to_string(),
        seed: Some(7),
        split: Some("train".into()),
        stage: None,
        seq,
        cold: seq == 1,
        raw,
        record: Box::new(warden_core::testing::record(seq)),
    }
}

/// Two functions of benign traffic; egress exfiltration (huge tx) and probing (tracebacks).
fn synthetic() -> Vec<Row> {
    let mut s = 42u64;
    let mut rows = Vec::new();
    for scope in ["api", "batch"] {
        for seq in 1..=60u64 {
            let mut raw = [0f32; N];
            raw[idx::DURATION_MS] = 50.0 + 40.0 * noise(&mut s);
            raw[idx::CPU_MS] = 20.0 + 20.0 * noise(&mut s);
            raw[idx::NET_TX] = 6.0 + noise(&mut s);
            raw[idx::PRODUCED] = 5.0 + noise(&mut s);
            let label = match seq % 15 {
                0 => {
                    raw[idx::NET_TX] = 16.0 + noise(&mut s);
                    "exfiltration_egress"
                }
                7 => {
                    raw[idx::TRACEBACKS] = 10.0 + 5.0 * noise(&mut s);
                    raw[idx::STATUS_ERROR] = 1.0;
                    "probing"
                }
                _ => BENIGN,
            };
            rows.push(row(label, scope, seq, raw));
        }
    }
    rows
}

fn small_opts(seed: u64) -> TrainOptions {
    TrainOptions {
        seed,
        trees: 8,
        max_depth: 6,
        data: "synthetic".into(),
        ..TrainOptions::default()
    }
}

fn trained() -> ShippedModel {
    train(&synthetic(), &small_opts(3)).expect("trains")
}

#[test]
fn file_round_trip_keeps_model_and_scores() {
    let model = trained();
    let bytes = model.to_bytes().expect("encodes");
    let loaded = ShippedModel::from_bytes(&bytes).expect("decodes");
    assert_eq!(loaded.header(), model.header());
    assert_eq!(loaded.forest(), model.forest());
    assert_eq!(loaded.novelty(), model.novelty());
    assert_eq!(loaded.sha256().len(), 64);
    for r in synthetic() {
        assert_eq!(
            loaded.score(&r.raw, &[0.0; N]),
            model.score(&r.raw, &[0.0; N])
        );
    }
    let dir = std::env::temp_dir().join(format!("warden-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("model.bin");
    model.save(&path).expect("saves");
    assert_eq!(
        ShippedModel::load(&path).expect("loads").forest(),
        model.forest()
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Scores `raw` as the 61st invocation of the synthetic "api" function.
fn score_after_history(model: &ShippedModel, raw: [f32; N]) -> ModelOutput {
    let mut rows = synthetic();
    rows.push(row(BENIGN, "api", 61, raw));
    let zs = dataset::replay(&rows, |i, _| rows[i].is_attack());
    let z = zs.last().expect("a row");
    model.score(&raw, z)
}

#[test]
fn trained_model_separates_synthetic_classes() {
    let model = trained();
    let mut raw = [0f32; N];
    raw[idx::DURATION_MS] = 70.0;
    raw[idx::CPU_MS] = 30.0;
    raw[idx::NET_TX] = 6.5;
    raw[idx::PRODUCED] = 5.5;
    let benign = score_after_history(&model, raw);
    assert_eq!(benign.class, None);
    raw[idx::NET_TX] = 17.0;
    let out = score_after_history(&model, raw);
    assert_eq!(out.class.map(|c| c.0), Some(Class::ExfiltrationEgress));
    assert_eq!(out.contributions.first().map(|c| c.0), Some(idx::NET_TX));
    // Far from anything benign. The novelty's scale is set by the benign training rows, whose
    // warm-up rows carry provisional z-scores: relative to the benign row, not an absolute 0.5.
    assert!(
        out.anomaly > 10.0 * benign.anomaly && out.anomaly > 0.3,
        "exfil {} against benign {}",
        out.anomaly,
        benign.anomaly
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let a = trained().to_bytes().expect("encodes");
    let b = trained().to_bytes().expect("encodes");
    assert_eq!(a, b);
    let other = train(&synthetic(), &small_opts(4)).expect("trains");
    assert_ne!(other.to_bytes().expect("encodes"), a);
}

#[test]
fn missing_file_is_a_typed_error() {
    let err = ShippedModel::load(Path::new("/nonexistent/warden/model.bin")).unwrap_err();
    assert!(matches!(err, ModelError::Missing(_)), "{err}");
}

#[test]
fn truncated_file_is_rejected() {
    let bytes = trained().to_bytes().expect("encodes");
    for cut in [bytes.len() - 1, bytes.len() / 2, 20] {
        let err = ShippedModel::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(matches!(err, ModelError::Truncated), "cut {cut}: {err}");
    }
}

#[test]
fn corrupt_byte_fails_the_digest() {
    let bytes = trained().to_bytes().expect("encodes");
    let mut bad = bytes.clone();
    let at = bytes.len() - 100;
    bad[at] ^= 0x40;
    assert!(matches!(
        ShippedModel::from_bytes(&bad),
        Err(ModelError::DigestMismatch)
    ));
    let mut bad = bytes;
    bad[0] = b'X';
    assert!(matches!(
        ShippedModel::from_bytes(&bad),
        Err(ModelError::NotAModel)
    ));
}

/// Re-encodes a trained model with a changed header (a valid digest over the change).
fn with_header(change: impl FnOnce(&mut ModelHeader)) -> Result<ShippedModel, ModelError> {
    let model = trained();
    let mut header = model.header().clone();
    change(&mut header);
    let mut w = codec::Writer::default();
    model.forest().write(&mut w);
    model.novelty().write(&mut w);
    ShippedModel::from_bytes(&file::encode(&header, &w.finish())?)
}

#[test]
fn mismatched_vector_is_rejected() {
    let err = with_header(|h| h.vector_version = VECTOR_VERSION + 1).unwrap_err();
    assert!(matches!(err, ModelError::VectorVersion { .. }), "{err}");
    let err = with_header(|h| h.feature_names.swap(0, 1)).unwrap_err();
    assert!(matches!(err, ModelError::FeatureNames), "{err}");
    let err = with_header(|h| {
        h.feature_names.pop();
    })
    .unwrap_err();
    assert!(matches!(err, ModelError::FeatureNames), "{err}");
    let err = with_header(|h| h.feature_transforms[0] = "Cubed".into()).unwrap_err();
    assert!(matches!(err, ModelError::FeatureTransforms), "{err}");
    let err = with_header(|h| h.classes[1] = "time_travel".into()).unwrap_err();
    assert!(matches!(err, ModelError::UnknownClass(_)), "{err}");
}

#[test]
fn out_of_range_payload_is_rejected() {
    let model = trained();
    let mut forest = model.forest().clone();
    let split = forest
        .feature
        .iter()
        .position(|f| *f != LEAF)
        .expect("a split");
    forest.left[split] = forest.len() as u32 + 5;
    let mut w = codec::Writer::default();
    forest.write(&mut w);
    model.novelty().write(&mut w);
    let bytes = file::encode(model.header(), &w.finish()).expect("encodes");
    assert!(matches!(
        ShippedModel::from_bytes(&bytes),
        Err(ModelError::Invalid(_))
    ));
}

/// One tree: raw `net_tx_bytes` above 10 is egress exfiltration; novelty never fires.
fn stump() -> ShippedModel {
    let forest = Forest {
        n_inputs: INPUTS,
        n_classes: 2,
        roots: vec![0],
        feature: vec![(N + idx::NET_TX) as u16, LEAF, LEAF],
        threshold: vec![10.0, 0.0, 0.0],
        left: vec![1, 0, 1],
        right: vec![2, 0, 0],
        attack_share: vec![0.5, 0.0, 1.0],
        importance: (0..INPUTS)
            .map(|i| if i == N + idx::NET_TX { 1.0 } else { 0.0 })
            .collect(),
    };
    let novelty = Novelty {
        mean: vec![0.0; INPUTS],
        scale: vec![1.0; INPUTS],
        components: Vec::new(),
        quantile: 1e30,
    };
    let header = ModelHeader {
        vector_version: VECTOR_VERSION,
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        feature_transforms: file::transforms(),
        classes: vec![BENIGN.into(), "exfiltration_egress".into()],
        benign_threshold: 0.5,
        training: TrainingInfo {
            corpus_seeds: vec![1],
            functions: vec!["api".into()],
            ..TrainingInfo::default()
        },
    };
    ShippedModel::new(header, forest, novelty).expect("valid")
}

#[test]
fn eval_computes_recall_precision_and_false_positives() {
    let tx = |v: f32| {
        let mut raw = [0f32; N];
        raw[idx::NET_TX] = v;
        raw
    };
    let mut rows = Vec::new();
    for i in 0..10 {
        rows.push(row(BENIGN, "api", i + 1, tx(5.0)));
    }
    rows.push(row(BENIGN, "other", 1, tx(12.0)));
    for i in 0..3 {
        rows.push(row("exfiltration_egress", "api", 11 + i, tx(15.0)));
    }
    rows.push(row("exfiltration_egress", "api", 14, tx(3.0)));
    let r = evaluate(
        &stump(),
        &rows,
        Mode::Model {
            anomaly_threshold: 0.9,
        },
    );
    assert_eq!(r.rows, 15);
    assert_eq!(r.benign, 11);
    assert_eq!(r.false_positives, 1);
    assert!((r.false_positive_rate - 1.0 / 11.0).abs() < 1e-12);
    assert_eq!(r.confusion, vec![vec![10, 1], vec![1, 3]]);
    let exfil = &r.classes[1];
    assert_eq!((exfil.support, exfil.detected, exfil.correct), (4, 3, 3));
    assert!((exfil.recall - 0.75).abs() < 1e-12);
    assert!((exfil.precision - 0.75).abs() < 1e-12);
    let other = r
        .functions
        .iter()
        .find(|f| f.function == "other")
        .expect("row");
    assert!(other.held_out);
    assert_eq!(other.false_positives, 1);
    assert_eq!(r.overlapping_seeds, Vec::<u64>::new());
    assert_eq!(r.seeds, vec![7]);
}

/// The example record of docs/features.md.
fn example_record() -> serde_json::Value {
    let doc = include_str!("../../../docs/features.md");
    let line = doc
        .lines()
        .find(|l| l.starts_with("{\"warden_schema\""))
        .expect("example in docs/features.md");
    serde_json::from_str(line).expect("example parses")
}

#[test]
fn reads_labelled_bare_and_missing_records() {
    let record = example_record();
    let labelled = serde_json::json!({
        "label": "egress_exfiltration", "function": "session-api", "run": "attack/x/0",
        "seed": 5, "split": "train", "stage": "attack", "record": record,
    });
    let missing = serde_json::json!({"label": "benign", "function": "f", "record": null});
    let mut init = record.clone();
    init["kind"] = "init".into();
    let mut other = record.clone();
    other["warden_schema"] = 99.into();
    let lines = [labelled, record.clone(), missing, init, other]
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let path = std::env::temp_dir().join(format!("warden-records-{}.jsonl", std::process::id()));
    std::fs::write(&path, lines).expect("writes");
    let mut skipped = dataset::Skipped::default();
    let rows = dataset::read(&path, &mut skipped).expect("reads");
    std::fs::remove_file(&path).ok();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].label.as_deref(), Some("exfiltration_egress"));
    assert_eq!(rows[0].scope, "attack/x/0");
    assert_eq!(rows[0].seed, Some(5));
    assert_eq!(rows[1].label, None);
    assert_eq!(rows[1].function, "python-probe");
    assert_eq!(rows[0].raw, rows[1].raw);
    assert_eq!((skipped.no_record, skipped.init, skipped.schema), (1, 1, 1));
}

/// A log as training reads it: `lines` with a record key.
fn learned_from_log(lines: &[String], trust: &dataset::Trust) -> (Vec<Row>, dataset::Skipped) {
    let mut skipped = dataset::Skipped::default();
    let rows = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            dataset::parse_text("group:stream", i + 1, l, trust, &mut skipped).expect("parses")
        })
        .collect();
    (rows, skipped)
}

#[test]
fn training_learns_only_records_signed_with_the_key() {
    use warden_core::record_mac::{sign, RecordKey};
    let key = RecordKey::new("deployment-key-for-tests-0123").unwrap();
    let genuine = |seq: u64| {
        let mut record = example_record();
        record["seq"] = seq.into();
        let mut line = record.to_string().into_bytes();
        sign(&key, &mut line);
        String::from_utf8(line).unwrap()
    };
    // What function code can print into its own log: a record with made-up figures, with
    // no MAC, with a made-up one, with a genuine one copied from another line, and a
    // labelled corpus line.
    let mut poisoned = example_record();
    poisoned["seq"] = 99.into();
    poisoned["duration_ms"] = 1.0.into();
    let copied_mac = genuine(1)
        .rsplit_once(",\"warden_mac\"")
        .unwrap()
        .1
        .to_string();
    let forged = [
        poisoned.to_string(),
        format!(
            "{},\"warden_mac\":\"{}\"}}",
            poisoned.to_string().trim_end_matches('}'),
            "ab".repeat(32)
        ),
        format!(
            "{},\"warden_mac\"{copied_mac}",
            poisoned.to_string().trim_end_matches('}')
        ),
        serde_json::json!({"label": "benign", "record": poisoned}).to_string(),
    ];
    let mut lines = vec![genuine(1), genuine(2)];
    lines.extend(forged.iter().cloned());
    let signed_only = dataset::Trust::Signed {
        key: Some(key.clone()),
        accept_unsigned: false,
    };
    let (rows, skipped) = learned_from_log(&lines, &signed_only);
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!((skipped.unsigned, skipped.forged), (1, 3));
    // Without a key nothing is learned unless unsigned records are accepted on purpose.
    let no_key = dataset::Trust::Signed {
        key: None,
        accept_unsigned: false,
    };
    let (rows, skipped) = learned_from_log(&lines, &no_key);
    assert!(rows.is_empty());
    assert_eq!(skipped.unsigned, 5);
    let accepted = dataset::Trust::Signed {
        key: Some(key),
        accept_unsigned: true,
    };
    let (rows, _) = learned_from_log(&lines, &accepted);
    assert_eq!(rows.len(), 3, "signed and unsigned, never a bad MAC");
}

#[test]
fn unknown_label_is_an_error() {
    let line = serde_json::json!({"label": "time_travel", "record": example_record()});
    let path = std::env::temp_dir().join(format!("warden-label-{}.jsonl", std::process::id()));
    std::fs::write(&path, line.to_string()).expect("writes");
    let err = dataset::read(&path, &mut dataset::Skipped::default()).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(matches!(err, dataset::DatasetError::Label { .. }), "{err}");
}

#[test]
fn profiles_learn_each_function_from_benign_rows() {
    let rows = synthetic();
    let profiles = dataset::profiles(&rows);
    assert_eq!(profiles.keys().collect::<Vec<_>>(), ["api", "batch"]);
    let api = &profiles["api"];
    assert_eq!(api.invocations, 52);
    assert!(api.median[idx::NET_TX] < 8.0, "{}", api.median[idx::NET_TX]);
}

#[test]
fn a_habit_reaches_the_profile_only_from_two_environments() {
    use warden_core::testing::{process, with};
    // Function "api" in two environments: both run the converter; only the first runs a
    // program its code planted there, in every invocation.
    let mut rows = Vec::new();
    for env in ["api-env-1", "api-env-2"] {
        for seq in 1..=10u64 {
            let mut r = row(BENIGN, env, seq, [0f32; N]);
            r.function = "api".into();
            let mut record = with(
                warden_core::testing::record(seq),
                process(100, "/var/task/bin/convert", "convert in.pdf"),
            );
            if env == "api-env-1" {
                record = with(record, process(101, "/usr/bin/socat", "socat - tcp:c2:443"));
            }
            r.record = Box::new(record);
            rows.push(r);
        }
    }
    let profiles = dataset::profiles(&rows);
    assert_eq!(profiles["api"].known_exes, ["/var/task/bin/convert"]);
    // From one environment alone, nothing is a habit.
    let one: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.scope == "api-env-1")
        .collect();
    assert!(dataset::profiles(&one)["api"].known_exes.is_empty());
}

#[test]
fn profiles_learn_regular_destinations_and_write_directories() {
    use warden_core::schema::{Observation, Proto, TmpAction};
    use warden_core::testing::with;
    let endpoint = |addr: &str| Observation::Endpoint {
        proto: Proto::Tcp,
        addr: addr.parse().unwrap(),
        listen: false,
    };
    let tmp = |path: &str, action| Observation::TmpFile {
        path: path.into(),
        action,
        size: None,
    };
    let mut rows = Vec::new();
    for env in ["api-env-1", "api-env-2"] {
        for seq in 1..=10u64 {
            let mut r = row(BENIGN, env, seq, [0f32; N]);
            r.function = "api".into();
            let mut record = warden_core::testing::record(seq);
            for obs in [
                endpoint("10.0.0.5:443"),
                endpoint("10.0.0.5:5432"),
                tmp("/tmp/cache/page-1", TmpAction::Created),
                tmp("/tmp/cache/page-2", TmpAction::Written),
                tmp("/tmp/old/x", TmpAction::Deleted),
            ] {
                record = with(record, obs);
            }
            if seq == 3 {
                // Once: not a habit.
                record = with(record, endpoint("203.0.113.9:4444"));
                record = with(record, tmp("/tmp/drop/payload", TmpAction::Created));
            }
            r.record = Box::new(record);
            rows.push(r);
        }
    }
    let api = &dataset::profiles(&rows)["api"];
    assert_eq!(
        api.destinations,
        Some(vec![
            "10.0.0.5:443".parse().unwrap(),
            "10.0.0.5:5432".parse().unwrap()
        ])
    );
    assert_eq!(api.write_paths, Some(vec!["/tmp/cache/".to_string()]));
    let json = serde_json::to_value(api).unwrap();
    assert_eq!(json["destinations"][0], "10.0.0.5:443");
}

/// A third function whose attack class (exfiltration in the response) exists only in its own
/// rows: only a model trained on them can name it.
fn odd(seed: u64, split: &str) -> Vec<Row> {
    let mut s = seed;
    (1..=60u64)
        .map(|seq| {
            let mut raw = [0f32; N];
            raw[idx::DURATION_MS] = 50.0 + 40.0 * noise(&mut s);
            raw[idx::CPU_MS] = 20.0 + 20.0 * noise(&mut s);
            raw[idx::NET_TX] = 6.0 + noise(&mut s);
            raw[idx::PRODUCED] = 5.0 + noise(&mut s);
            let label = if seq % 10 == 0 {
                raw[idx::PRODUCED] = 18.0 + noise(&mut s);
                "exfiltration_response"
            } else {
                BENIGN
            };
            let mut r = row(label, "odd", seq, raw);
            r.split = Some(split.into());
            r
        })
        .collect()
}

fn class<'a>(r: &'a crate::eval::Report, name: &str) -> &'a crate::eval::ClassFigures {
    r.classes
        .iter()
        .find(|c| c.class == name)
        .expect("class in the report")
}

#[test]
fn leave_one_out_never_trains_on_the_held_out_function() {
    use crate::eval::lofo::leave_one_function_out;
    let mut train_rows = synthetic();
    train_rows.extend(odd(11, "train"));
    let test_rows = odd(99, "test");
    let mode = Mode::Model {
        anomaly_threshold: 2.0,
    };
    // In sample, the model names the odd function's attacks...
    let in_sample = train(&train_rows, &small_opts(3)).expect("trains");
    let r = evaluate(&in_sample, &test_rows, mode);
    let exfil = class(&r, "exfiltration_response");
    assert_eq!(exfil.support, 6);
    assert!(exfil.correct >= 5, "{exfil:?}");
    // ...its fold cannot: the class is nowhere else.
    let mut folds = 0;
    let (r, per_row) =
        leave_one_function_out(&train_rows, &test_rows, &small_opts(3), mode, |k, n, _| {
            folds += 1;
            assert_eq!((k, n), (1, 1));
        })
        .expect("evaluates");
    assert_eq!(folds, 1);
    assert_eq!(per_row.len(), test_rows.len());
    assert_eq!(r.evaluation, "leave-one-function-out");
    assert_eq!(class(&r, "exfiltration_response").correct, 0);
    let fold = &r.folds[0];
    assert_eq!(fold.function, "odd");
    assert_eq!(fold.train_rows, 120, "only api's and batch's rows");
    assert_eq!(fold.train_functions, ["api", "batch"]);
    assert_eq!(
        fold.profiles,
        ["api", "batch"],
        "profiles of the other functions only"
    );
    assert!(r.functions.iter().all(|f| f.held_out && !f.profiled));
}

#[test]
fn leave_one_out_pools_every_function_in_record_order() {
    use crate::eval::lofo::leave_one_function_out;
    let mut train_rows = synthetic();
    train_rows.extend(odd(11, "train"));
    let mut test_rows = odd(99, "test");
    test_rows.extend(synthetic());
    let (r, per_row) = leave_one_function_out(
        &train_rows,
        &test_rows,
        &small_opts(3),
        Mode::Detector,
        |_, _, _| {},
    )
    .expect("evaluates");
    let folds: Vec<(&str, u64, u64)> = r
        .folds
        .iter()
        .map(|f| (f.function.as_str(), f.train_rows, f.test_rows))
        .collect();
    assert_eq!(
        folds,
        [("api", 120, 60), ("batch", 120, 60), ("odd", 120, 60)]
    );
    for f in &r.folds {
        assert!(!f.train_functions.contains(&f.function), "{f:?}");
        assert!(!f.profiles.contains(&f.function), "{f:?}");
        assert_eq!(f.profiles.len(), 2, "the other functions' profiles");
        assert_eq!(
            f.model_sha256.len(),
            64,
            "the fold's model as its file is loaded"
        );
    }
    assert_eq!(r.rows, 180);
    let order: Vec<(&str, u64)> = per_row
        .iter()
        .map(|p| (p.function.as_str(), p.seq))
        .collect();
    let expected: Vec<(&str, u64)> = test_rows
        .iter()
        .map(|p| (p.function.as_str(), p.seq))
        .collect();
    assert_eq!(order, expected);
    assert!(r.functions.iter().all(|f| f.held_out && !f.profiled));
}

#[test]
fn class_accuracy_counts_a_detected_row_of_the_wrong_class() {
    let tx = |v: f32| {
        let mut raw = [0f32; N];
        raw[idx::NET_TX] = v;
        raw
    };
    let mut rows: Vec<Row> = (1..=10).map(|i| row(BENIGN, "api", i, tx(5.0))).collect();
    for i in 0..3 {
        rows.push(row("exfiltration_egress", "api", 11 + i, tx(15.0)));
    }
    // Probing that the stump calls egress: detected, but as the wrong class.
    rows.push(row("probing", "api", 14, tx(15.0)));
    let r = evaluate(
        &stump(),
        &rows,
        Mode::Model {
            anomaly_threshold: 0.9,
        },
    );
    assert_eq!(r.evaluation, "no profile");
    let probing = class(&r, "probing");
    assert_eq!((probing.detected, probing.correct), (1, 0));
    assert_eq!(probing.recall, 1.0);
    assert_eq!(probing.class_accuracy, 0.0);
    let exfil = class(&r, "exfiltration_egress");
    assert_eq!(exfil.class_accuracy, 1.0);
    assert!((r.overall.class_accuracy - 0.75).abs() < 1e-12);
    assert_eq!(r.overall.recall, 1.0);
    let bar = r
        .bars
        .iter()
        .find(|b| b.name.starts_with("class accuracy"))
        .expect("bar");
    assert!(bar.applies && !bar.met, "{bar:?}");
    assert_eq!(bar.at.as_deref(), Some("probing"));
    let recall = r
        .bars
        .iter()
        .find(|b| b.name.starts_with("recall"))
        .expect("bar");
    assert!(
        !recall.applies,
        "recall's bar is on leave-one-function-out figures"
    );
}

#[test]
fn first_twenty_rules_count_by_seq_severity_and_hard_indicators() {
    use crate::eval::{assemble, Context, Made, Prediction, Setting};
    use warden_core::schema::{Indicator, Severity};
    let flag = |class: Class, severity: Severity, indicators: Vec<Indicator>| Prediction {
        label: class.as_str().to_string(),
        finding: Some(Made {
            class,
            severity,
            indicators,
        }),
        ..Prediction::default()
    };
    let quiet = || Prediction {
        label: BENIGN.to_string(),
        ..Prediction::default()
    };
    let mut rows = Vec::new();
    let mut predictions = Vec::new();
    for seq in 1..=40u64 {
        rows.push(row(BENIGN, "api", seq, [0.0; N]));
        predictions.push(match seq {
            // High without a hard indicator, in the first 20 (20 included).
            5 | 20 => flag(Class::ExfiltrationEgress, Severity::High, vec![]),
            // High, but with a hard indicator.
            6 => flag(
                Class::Dropper,
                Severity::Critical,
                vec![Indicator::ShellSpawned, Indicator::ExecFromTmp],
            ),
            // Not high.
            7 => flag(
                Class::CommandInjection,
                Severity::Medium,
                vec![Indicator::ShellSpawned],
            ),
            // After the first 20: counted as flagged, never as high without hard.
            21 => flag(Class::ExfiltrationEgress, Severity::High, vec![]),
            // Named by a later finding: flagged, no finding of its own.
            30 => Prediction {
                label: "probing".into(),
                ..Prediction::default()
            },
            _ => quiet(),
        });
    }
    // An attack in another environment's first invocations, found by the model alone.
    let mut attack = row("exfiltration_egress", "api", 3, [0.0; N]);
    attack.scope = "api-2".into();
    rows.push(attack);
    predictions.push(flag(
        Class::ExfiltrationEgress,
        Severity::High,
        vec![Indicator::UnknownDestination],
    ));
    let no = |_: &str| false;
    let yes = |_: &str| true;
    let context = Context {
        setting: Setting::NoProfile,
        model_sha256: "test".into(),
        trained_seeds: Vec::new(),
        held_out: &yes,
        profiled: &no,
        folds: Vec::new(),
    };
    let (r, _) = assemble(&rows, &predictions, Vec::new(), Mode::Detector, context);
    let api = &r.functions[0];
    assert_eq!(r.functions.len(), 1);
    assert_eq!((api.benign, api.false_positives), (40, 6));
    assert_eq!((api.benign_after_first, api.flagged_after_first), (20, 2));
    assert!((api.flagged_after_first_rate - 0.1).abs() < 1e-12);
    assert_eq!(
        (
            api.high_without_hard_first,
            api.high_without_hard_first_benign
        ),
        (3, 2)
    );
    assert_eq!(r.overall.high_without_hard_first, 3);
    let [fp, high, ..] = &r.bars[..] else {
        panic!("bars: {:?}", r.bars)
    };
    assert!(fp.applies && !fp.met, "{fp:?}");
    assert_eq!(fp.at.as_deref(), Some("api"));
    assert!(high.applies && !high.met && high.value == 3.0, "{high:?}");
    let text = crate::report::text(&r);
    assert!(text.contains("evaluation     no profile"), "{text}");
    assert!(text.contains("[NOT MET]"), "{text}");
}
