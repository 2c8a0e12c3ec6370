//! Wiring: the pipeline and the detection stage the settings ask for, built from the parts
//! `warden-core` provides. A missing or bad model or profile is logged once and detection
//! carries on without it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_core::assembler::{Assembler, AssemblerConfig};
use warden_core::clock::unix_ms;
use warden_core::config::{Config, Mode, ModelChoice, ProfileSource};
use warden_core::detect::{Baseline, BaselineProfile, Detector, DetectorConfig};
use warden_core::fleet::{self, cache::Cache, store::S3};
use warden_core::health::{Counter, Health};
use warden_core::model::Scorer;
use warden_core::pipeline::detection::DetectorSink;
use warden_core::pipeline::Pipeline;
use warden_core::respond::lockdown::{Lockdown, LockdownPage, PAGE_DIR};
use warden_core::respond::{Responder, Shared};
use warden_core::sinks::outputs::Outputs;
use warden_core::sinks::Sinks;
use warden_core::sources::filewatch::{FileWatch, PROGRAM_DIRS};
use warden_core::sources::guard::{
    self, GuardContext, GuardEvent, GuardHealth, GuardListener, GuardRing,
};
use warden_core::sources::procfs::reader::ticks_per_sec;
use warden_core::sources::procfs::CounterSnapshot;
use warden_core::sources::sampler::{Exclusions, Sampler};

pub(crate) fn build_pipeline(
    config: &Config,
    health: Arc<Health>,
    first: CounterSnapshot,
) -> Pipeline {
    let (first_pids, first_last_pid) = (first.pids.clone(), first.last_pid);
    let assembler = Assembler::new(
        AssemblerConfig {
            report_wait: config.report_wait,
            max_pending: config.max_pending,
            ticks_per_sec: ticks_per_sec(),
            function_name: config.lambda.function_name.clone(),
            function_version: config.lambda.function_version.clone(),
            tmp_dir: config.tmp_dir.to_string_lossy().into_owned(),
            proc_root: config.proc_root.clone(),
        },
        health.clone(),
        first,
        unix_ms(),
    );
    let exclusions = Exclusions {
        runtime_api: config
            .lambda
            .runtime_api
            .as_deref()
            .and_then(|a| a.parse::<SocketAddr>().ok()),
        telemetry_port: Some(config.telemetry_port),
        own_sockets: config.uses_network(),
    };
    let runtime_api = exclusions.runtime_api;
    let sampler = config.sampler_interval.map(|_| {
        let mut sampler = Sampler::new(&config.proc_root, std::process::id(), exclusions);
        // Lambda's init starts Warden, the runtime and the other extensions.
        sampler.start_init(
            &first_pids,
            first_last_pid,
            Some(std::os::unix::process::parent_id()),
        );
        sampler
    });
    let mut filewatch = match FileWatch::new(&config.tmp_dir) {
        Ok(mut w) => {
            if let Some(cache) = profile_cache(config) {
                w.leave_out(cache.dir());
            }
            let n = w.watch_programs(&PROGRAM_DIRS);
            warden_core::debug!("watching {n} program directories");
            Some(w)
        }
        Err(e) => {
            warden_core::debug!("not watching {}: {e}", config.tmp_dir.display());
            None
        }
    };
    let (guard_events, guard_ring) = match config.guard_socket.as_deref() {
        Some(name) => start_guard_sources(name, &health),
        None => (None, None),
    };
    if let (Some(watch), Some(ring)) = (filewatch.as_mut(), guard_ring.as_ref()) {
        watch.own_file(ring.path());
    }
    let mut sinks = Sinks::default();
    if config.records {
        sinks.records.push(Box::new(
            warden_core::sinks::stdout::stdout().signed(config.record_key.clone()),
        ));
    }
    Pipeline {
        health,
        assembler,
        sampler,
        sampler_interval: config.sampler_interval.unwrap_or(Duration::from_millis(20)),
        filewatch,
        sinks,
        shutdown_wait: config.shutdown_wait,
        forwarder: None,
        telemetry_bytes: Default::default(),
        guard_events,
        guard_ring,
        guard_context: GuardContext {
            own_pid: std::process::id(),
            runtime_api,
        },
        guard_health: GuardHealth::default(),
        exec_wrapper_interpreter: exec_wrapper_interpreter(),
    }
}

/// What the platform runs first when the function has an exec wrapper, resolved to the file
/// the kernel runs: the interpreter named by a script's `#!` line, or the wrapper itself when
/// it is a program (the layer's is). Lambda passes the function's variables to extensions too.
fn exec_wrapper_interpreter() -> Option<String> {
    use std::io::Read;
    let wrapper = std::env::var_os("AWS_LAMBDA_EXEC_WRAPPER")?;
    let mut head = [0u8; 256];
    let read = std::fs::File::open(&wrapper).ok()?.read(&mut head).ok()?;
    let head = &head[..read];
    let program = match head.strip_prefix(b"#!") {
        Some(line) => {
            let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
            let line = std::str::from_utf8(line).ok()?;
            std::path::PathBuf::from(line.split_whitespace().next()?)
        }
        None => std::path::PathBuf::from(wrapper),
    };
    let resolved = std::fs::canonicalize(program).ok()?;
    resolved.into_os_string().into_string().ok()
}

/// Binds the in-process guard's socket and creates its event ring (before Warden registers,
/// so before the runtime starts: function code cannot take the name or plant the file) and
/// starts reading both. Without the ring, guards send every event on the socket; without
/// the socket, Warden runs on its other sources.
fn start_guard_sources(
    name: &str,
    health: &Arc<Health>,
) -> (
    Option<tokio::sync::mpsc::Receiver<GuardEvent>>,
    Option<Arc<GuardRing>>,
) {
    let listener = match GuardListener::bind(name) {
        Ok(listener) => listener,
        Err(e) => {
            health.note(
                Counter::SubscribeErrors,
                format_args!(
                    "the guard's socket @{name} could not be bound ({e}); no guard events"
                ),
            );
            return (None, None);
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(guard::QUEUE);
    tokio::spawn(guard::receive(listener, tx.clone(), health.clone()));
    let ring = match GuardRing::create(Path::new(PAGE_DIR), name, health.clone()) {
        Ok(ring) => Some(Arc::new(ring)),
        Err(e) => {
            health.note(
                Counter::SubscribeErrors,
                format_args!("the guard's ring could not be created ({e}); guards send datagrams"),
            );
            None
        }
    };
    if let Some(ring) = &ring {
        tokio::spawn(guard::ring::poll(ring.clone(), tx));
    }
    (Some(rx), ring)
}

/// The lockdown page, created before the runtime starts so that every guarded process maps
/// it; `None` when lockdown is off or there is no guard. A page that cannot be created is
/// logged once: the lockdown is then recorded as failed when it comes.
pub(crate) fn prepare_lockdown(config: &Config, health: &Health) -> Option<Option<LockdownPage>> {
    config.outputs.lockdown?;
    let Some(socket) = config.guard_socket.as_deref() else {
        health.note(
            Counter::ConfigErrors,
            format_args!("WARDEN_LOCKDOWN needs the in-process guard (WARDEN_GUARD is off)"),
        );
        return None;
    };
    match LockdownPage::create(Path::new(PAGE_DIR), socket) {
        Ok(page) => Some(Some(page)),
        Err(e) => {
            health.note(
                Counter::ResponsesFailed,
                format_args!("the lockdown page could not be created ({e}); no lockdown"),
            );
            Some(None)
        }
    }
}

/// The detector with its responder, lockdown and AWS destinations; `None` when detection
/// is off (`WARDEN_MODE=learn`).
pub(crate) fn build_detector(
    config: &Config,
    health: &Arc<Health>,
    responses: &Shared,
    lockdown_page: Option<Option<LockdownPage>>,
    profile: Option<BaselineProfile>,
) -> Option<DetectorSink> {
    let detector = detector_from_config(config, health.clone(), profile)?;
    let lockdown = config
        .outputs
        .lockdown
        .zip(lockdown_page)
        .map(|(risk, page)| Lockdown::new(risk, config.outputs.dry_run, page));
    Some(
        detector
            .with_responder(Responder::from_config(config, health.clone(), responses))
            .with_lockdown(lockdown),
    )
}

/// The detector the settings ask for, seeded with `profile`: `None` unless the mode is `on`.
/// A missing or bad model is logged once and detection carries on without it.
fn detector_from_config(
    config: &Config,
    health: Arc<Health>,
    profile: Option<BaselineProfile>,
) -> Option<DetectorSink> {
    if config.mode != Mode::On {
        return None;
    }
    let cfg = DetectorConfig {
        threshold: config.threshold,
        function_name: config.lambda.function_name.clone(),
        function_version: config.lambda.function_version.clone(),
        tmp_prefix: format!(
            "{}/",
            config.tmp_dir.to_string_lossy().trim_end_matches('/')
        ),
        known_exes: config.known_exes.clone(),
    };
    let mut detector = Detector::new(cfg.clone(), health.clone(), unix_ms());
    if let Some(profile) = profile {
        // Checked against this build's features when it was loaded.
        match detector.with_profile(&profile) {
            Ok(d) => detector = d,
            Err(_) => detector = Detector::new(cfg, health.clone(), unix_ms()),
        }
    }
    let scorer: Option<Arc<dyn Scorer>> = match &config.model {
        ModelChoice::Off => None,
        choice => {
            let path = match choice {
                ModelChoice::File(p) => Some(p.as_path()),
                _ => None,
            };
            match warden_core::model::load_default(path) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    warden_core::warn!(
                        "model not used ({e}); scoring with baseline and rules alone"
                    );
                    None
                }
            }
        }
    };
    let detector = detector.with_scorer(scorer);
    let outputs = Outputs::from_config(config, health.clone(), Box::new(std::io::stdout()));
    Some(DetectorSink::new(detector, Box::new(std::io::stdout()), health).with_outputs(outputs))
}

/// The environment's copy of an `s3://` profile, when detection will read one.
fn profile_cache(config: &Config) -> Option<Cache> {
    match &config.profile {
        Some(source @ ProfileSource::S3 { .. }) if config.mode == Mode::On => {
            Some(Cache::new(&config.tmp_dir, &source.to_string()))
        }
        _ => None,
    }
}

/// The baseline profile `WARDEN_PROFILE` names, read and checked against this function and
/// this build's features; `None` when there is none to use. Only detection uses one. Each
/// failure is one log line and a health counter, and the environment learns as it would
/// without a profile. An `s3://` profile is read within `WARDEN_PROFILE_DEADLINE_MS`.
pub(crate) async fn load_profile(config: &Config, health: &Health) -> Option<BaselineProfile> {
    if config.mode != Mode::On {
        return None;
    }
    let source = config.profile.as_ref()?;
    let function = config.lambda.function_name.as_str();
    let started = Instant::now();
    let loaded = match source {
        ProfileSource::File(path) => profile_file(path, function).map(|p| (p, String::new())),
        ProfileSource::S3 { bucket, key } => {
            let aws = &config.outputs.aws;
            let s3 = warden_core::aws::sdk_config(aws)
                .ok()
                .and_then(|sdk| S3::new(&sdk, aws));
            let request = fleet::Request {
                bucket,
                key,
                function,
                deadline: config.profile_deadline,
            };
            match fleet::load(s3.as_ref(), &request, profile_cache(config).as_ref()).await {
                Ok(loaded) => {
                    let content = loaded.object.content;
                    let how = if loaded.from_cache {
                        "the environment's copy, current in S3"
                    } else {
                        "downloaded"
                    };
                    let about = format!(
                        " ({} invocations in {} environments, {how})",
                        content.profile.invocations, content.environments
                    );
                    Ok((content.profile, about))
                }
                Err(e) if e.is_rejection() => Err(e.to_string()),
                Err(e) => {
                    health.note(
                        Counter::ProfileUnavailable,
                        format_args!(
                            "profile {source} not loaded: {e}; this environment learns \
                             without it"
                        ),
                    );
                    return None;
                }
            }
        }
    };
    let checked = loaded.and_then(|(profile, about)| match Baseline::from_profile(&profile) {
        Ok(_) => Ok((profile, about)),
        Err(e) => Err(e.to_string()),
    });
    match checked {
        Ok((profile, about)) => {
            warden_core::info!(
                "profile {source} loaded in {} us{about}",
                started.elapsed().as_micros()
            );
            Some(profile)
        }
        Err(e) => {
            health.note(
                Counter::ProfileRejected,
                format_args!("profile {source} not used: {e}; this environment learns without it"),
            );
            None
        }
    }
}

/// One profile, the function's entry of what `warden train --profile-out` writes (one
/// profile per function name), or a profile object as the fleet's profiler writes it.
fn profile_file(path: &Path, function: &str) -> Result<BaselineProfile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if text.contains("\"warden_profile\"") {
        return fleet::object::decode(text.as_bytes(), function)
            .map(|object| object.content.profile)
            .map_err(|e| e.to_string());
    }
    if let Ok(one) = serde_json::from_str::<BaselineProfile>(&text) {
        return Ok(one);
    }
    let mut by_function: std::collections::BTreeMap<String, BaselineProfile> =
        serde_json::from_str(&text).map_err(|e| e.to_string())?;
    by_function
        .remove(function)
        .ok_or_else(|| format!("no profile for function {function:?} in it"))
}

#[cfg(test)]
mod profile_file_tests {
    use super::*;
    use warden_core::detect::Baseline;

    #[test]
    fn a_profile_file_holds_one_profile_one_per_function_or_a_profile_object() {
        let dir = std::env::temp_dir().join(format!("warden-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = Baseline::new();
        for i in 0..25 {
            b.observe(&[i as f32; warden_core::features::N]);
        }
        let mut p = b.to_profile();
        p.shell_shapes = vec!["sh -c gzip -0".into()];
        let one = dir.join("one.json");
        std::fs::write(&one, serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(profile_file(&one, "any").unwrap(), p);
        let map = dir.join("map.json");
        let by_function = std::collections::BTreeMap::from([("orders".to_string(), p.clone())]);
        std::fs::write(&map, serde_json::to_string(&by_function).unwrap()).unwrap();
        assert_eq!(profile_file(&map, "orders").unwrap(), p);
        let missing = profile_file(&map, "billing").unwrap_err();
        assert!(missing.contains("billing"), "{missing}");
        // The fleet's object, downloaded: checked as when read from S3.
        let object = dir.join("object.json");
        let content = fleet::object::ProfileContent {
            function: "orders".into(),
            generated_unix_ms: 1,
            environments: 2,
            profile: p.clone(),
            policy: None,
        };
        std::fs::write(&object, fleet::object::encode(&content).unwrap().bytes).unwrap();
        assert_eq!(profile_file(&object, "orders").unwrap(), p);
        let foreign = profile_file(&object, "billing").unwrap_err();
        assert!(foreign.contains("not \"billing\""), "{foreign}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
