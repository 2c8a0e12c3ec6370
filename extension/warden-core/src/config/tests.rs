use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_environment_gives_defaults() {
    let (c, errors) = Config::from_vars(&[]);
    assert!(errors.is_empty());
    assert_eq!(c, Config::default());
    assert_eq!(c.mode, Mode::On);
    assert!(!c.records);
    assert_eq!(c.sampler_interval, Some(Duration::from_millis(20)));
}

#[test]
fn good_values_are_used() {
    let (c, errors) = Config::from_vars(&vars(&[
        ("WARDEN_MODE", "OFF"),
        ("WARDEN_RECORDS", "1"),
        ("WARDEN_LOG", "debug"),
        ("WARDEN_TELEMETRY_PORT", "4243"),
        ("WARDEN_TELEMETRY_BUFFER_MS", "100"),
        ("WARDEN_SAMPLER_MS", "0"),
        ("WARDEN_REPORT_WAIT_MS", "250"),
        ("WARDEN_SHUTDOWN_WAIT_MS", "800"),
        ("WARDEN_MAX_PENDING", "8"),
        ("WARDEN_TMP_DIR", "/scratch"),
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ]));
    assert_eq!(errors, vec![]);
    assert_eq!(c.mode, Mode::Off);
    assert!(c.records);
    assert_eq!(c.log_level, Level::Debug);
    assert_eq!(c.telemetry_port, 4243);
    assert_eq!(c.telemetry_buffer_ms, 100);
    assert_eq!(c.sampler_interval, None);
    assert_eq!(c.report_wait, Duration::from_millis(250));
    assert_eq!(c.shutdown_wait, Duration::from_millis(800));
    assert_eq!(c.max_pending, 8);
    assert_eq!(c.tmp_dir, PathBuf::from("/scratch"));
    assert_eq!(c.lambda.runtime_api.as_deref(), Some("127.0.0.1:9001"));
    assert_eq!(c.lambda.function_name, "orders");
    assert_eq!(c.lambda.memory_mb, Some(256));
}

#[test]
fn bad_values_fall_back_to_defaults_with_one_error_each() {
    let (c, errors) = Config::from_vars(&vars(&[
        ("WARDEN_MODE", "loud"),
        ("WARDEN_RECORDS", "maybe"),
        ("WARDEN_LOG", "trace"),
        ("WARDEN_TELEMETRY_PORT", "80"),
        ("WARDEN_SAMPLER_MS", "ten"),
        ("WARDEN_MAX_PENDING", "0"),
        ("WARDEN_TMP_DIR", "tmp"),
        ("WARDEN_SAMPLE_MS", "5"),
    ]));
    let defaults = Config::default();
    assert_eq!(c.mode, defaults.mode);
    assert_eq!(c.records, defaults.records);
    assert_eq!(c.log_level, defaults.log_level);
    assert_eq!(c.telemetry_port, defaults.telemetry_port);
    assert_eq!(c.sampler_interval, defaults.sampler_interval);
    assert_eq!(c.max_pending, defaults.max_pending);
    assert_eq!(c.tmp_dir, defaults.tmp_dir);
    assert_eq!(errors.len(), 8, "{errors:?}");
    assert!(errors.contains(&ConfigError::OutOfRange {
        var: "WARDEN_TELEMETRY_PORT",
        value: 80,
        min: 1024,
        max: 65_535
    }));
    assert!(errors.contains(&ConfigError::Unknown {
        var: "WARDEN_SAMPLE_MS".into()
    }));
    assert!(errors.iter().any(|e| matches!(
        e,
        ConfigError::Invalid {
            var: "WARDEN_SAMPLER_MS",
            ..
        }
    )));
}

#[test]
fn errors_render_as_one_readable_line() {
    let (_, errors) = Config::from_vars(&vars(&[("WARDEN_SAMPLER_MS", "5000")]));
    assert_eq!(
        errors[0].to_string(),
        "WARDEN_SAMPLER_MS=5000 is outside 0..=1000; using the default"
    );
}

#[test]
fn detection_settings() {
    let (c, errors) = Config::from_vars(&vars(&[
        ("WARDEN_MODE", "learn"),
        ("WARDEN_MODEL", "none"),
        ("WARDEN_PROFILE", "/opt/warden/profile.json"),
        ("WARDEN_THRESHOLD", "0.7"),
        ("WARDEN_KNOWN_EXES", "sh, /usr/bin/gzip,,"),
    ]));
    assert_eq!(errors, vec![]);
    assert_eq!(c.mode, Mode::Learn);
    assert!(c.records, "learn mode prints records");
    assert_eq!(c.model, ModelChoice::Off);
    assert_eq!(
        c.profile,
        Some(ProfileSource::File(PathBuf::from(
            "/opt/warden/profile.json"
        )))
    );
    assert_eq!(c.threshold, 0.7);
    assert_eq!(c.known_exes, vec!["sh", "/usr/bin/gzip"]);

    let (c, errors) = Config::from_vars(&vars(&[
        ("WARDEN_MODEL", "/var/task/model.bin"),
        ("WARDEN_THRESHOLD", "1.5"),
        ("WARDEN_PROFILE", "relative.json"),
    ]));
    assert_eq!(
        c.model,
        ModelChoice::File(PathBuf::from("/var/task/model.bin"))
    );
    assert_eq!(c.threshold, Config::default().threshold);
    assert_eq!(c.profile, None);
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn a_profile_is_a_path_or_an_s3_object_with_a_deadline() {
    let (c, errors) = Config::from_vars(&vars(&[
        (
            "WARDEN_PROFILE",
            "s3://fleet-profiles.example/warden/profiles/orders.json",
        ),
        ("WARDEN_PROFILE_DEADLINE_MS", "400"),
    ]));
    assert_eq!(errors, vec![]);
    assert_eq!(
        c.profile,
        Some(ProfileSource::S3 {
            bucket: "fleet-profiles.example".into(),
            key: "warden/profiles/orders.json".into(),
        })
    );
    assert_eq!(
        c.profile.map(|p| p.to_string()).as_deref(),
        Some("s3://fleet-profiles.example/warden/profiles/orders.json")
    );
    assert_eq!(c.profile_deadline, Duration::from_millis(400));
    assert_eq!(
        Config::default().profile_deadline,
        Duration::from_millis(250)
    );
    for bad in [
        "s3://",
        "s3://bucket",
        "s3://bucket/",
        "s3://Bad_Bucket/key",
        "s3://ab/key",
    ] {
        let (c, errors) = Config::from_vars(&vars(&[("WARDEN_PROFILE", bad)]));
        assert_eq!((c.profile, errors.len()), (None, 1), "{bad}");
    }
    let (c, errors) = Config::from_vars(&vars(&[("WARDEN_PROFILE_DEADLINE_MS", "60000")]));
    assert_eq!(c.profile_deadline, Duration::from_millis(250));
    assert_eq!(errors.len(), 1);
}

#[test]
fn a_record_key_is_read_and_a_short_one_refused_without_showing_it() {
    let (c, errors) =
        Config::from_vars(&vars(&[("WARDEN_RECORD_KEY", "k3y-of-the-deployment-01")]));
    assert!(errors.is_empty(), "{errors:?}");
    assert!(c.record_key.is_some());
    let (c, errors) = Config::from_vars(&vars(&[("WARDEN_RECORD_KEY", "tiny-secret")]));
    assert!(c.record_key.is_none());
    assert_eq!(errors.len(), 1);
    assert!(
        !errors[0].to_string().contains("tiny-secret"),
        "{}",
        errors[0]
    );
}

#[test]
fn lockdown_is_off_unless_asked_and_takes_on_or_a_risk() {
    let lockdown = |v: &str| {
        let (c, errors) = Config::from_vars(&vars(&[("WARDEN_LOCKDOWN", v)]));
        (c.outputs.lockdown, errors.len())
    };
    assert_eq!(Config::default().outputs.lockdown, None);
    assert_eq!(lockdown("off"), (None, 0));
    assert_eq!(lockdown("ON"), (Some(outputs::DEFAULT_LOCKDOWN_RISK), 0));
    assert_eq!(lockdown("2"), (Some(2), 0));
    // A bad value leaves it off and says so.
    assert_eq!(lockdown("21"), (None, 1));
    assert_eq!(lockdown("soon"), (None, 1));
}
