//! Settings: the only module that reads the environment.
//!
//! Raw strings become a validated [`Config`]. A bad value never stops the extension: it is
//! reported as a [`ConfigError`] (the caller logs each once and counts it) and the default
//! is used instead.

use std::path::PathBuf;
use std::time::Duration;

use crate::log::Level;
use crate::record_mac::RecordKey;

mod outputs;
pub use outputs::{
    parse_policy, parse_severity, AwsEnv, MetricsMode, Outputs, ResponsePolicy, Secret,
};

/// Default port of the telemetry listener; away from Lambda's 9001 and the common 9002/9003
/// that other extensions (and the `lambda-extension` crate) pick by default.
pub const DEFAULT_TELEMETRY_PORT: u16 = 9317;

/// Whether Warden does anything at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Capture telemetry and counters, assemble records, detect and print findings.
    On,
    /// Capture and print every feature record (to train on); no detection.
    Learn,
    /// Register and idle: no subscription, no sampler, no per-invocation work.
    Off,
}

/// Which model the detector uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// The model shipped in the layer (next to the extension executable).
    Layer,
    /// A model file at this path.
    File(PathBuf),
    /// No model: baseline and rules alone.
    Off,
}

/// Where the function's baseline profile comes from (`WARDEN_PROFILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileSource {
    /// A file in the layer or the function's package.
    File(PathBuf),
    /// An S3 object the fleet's profiler writes, read at init (docs/fleet-learning.md).
    S3 {
        /// The bucket.
        bucket: String,
        /// The object's key.
        key: String,
    },
}

impl ProfileSource {
    /// `/absolute/path` or `s3://bucket/key`.
    pub fn parse(value: &str) -> Option<ProfileSource> {
        if value.starts_with('/') {
            return Some(ProfileSource::File(PathBuf::from(value)));
        }
        let (bucket, key) = value.strip_prefix("s3://")?.split_once('/')?;
        // Bucket names: 3 to 63 lowercase letters, digits, dots and hyphens.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let key_ok = !key.is_empty() && key.len() <= 1024 && !key.chars().any(char::is_control);
        (bucket_ok && key_ok).then(|| ProfileSource::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileSource::File(path) => write!(f, "{}", path.display()),
            ProfileSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// A setting that could not be used; its default applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The value is not of the expected form.
    #[error("{var}={value:?} is not valid (expected {expected}); using the default")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// The value as given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A number outside its allowed range.
    #[error("{var}={value} is outside {min}..={max}; using the default")]
    OutOfRange {
        /// Variable name.
        var: &'static str,
        /// The value as given.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A `WARDEN_` variable that no setting reads (most likely a typo).
    #[error("{var} is not a Warden setting; ignored")]
    Unknown {
        /// Variable name.
        var: String,
    },
}

/// What Lambda tells every process through its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LambdaEnv {
    /// `AWS_LAMBDA_RUNTIME_API`: host:port of the Runtime/Extensions API.
    pub runtime_api: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub function_version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` in MB.
    pub memory_mb: Option<u64>,
}

/// Validated settings, each with a documented default (docs/configuration.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `WARDEN_MODE`: `on` (default), `learn` or `off`.
    pub mode: Mode,
    /// `WARDEN_RECORDS`: print one JSON feature record per invocation on stdout (always on
    /// in learn mode).
    pub records: bool,
    /// `WARDEN_MODEL`: the model file, `none` for none.
    pub model: ModelChoice,
    /// `WARDEN_PROFILE`: a baseline profile (JSON) to seed the baseline: a file trained
    /// offline, or the S3 object the fleet's profiler keeps up to date.
    pub profile: Option<ProfileSource>,
    /// `WARDEN_PROFILE_DEADLINE_MS`: longest wait for an `s3://` profile at init; past it
    /// the environment learns as it would without one.
    pub profile_deadline: Duration,
    /// `WARDEN_THRESHOLD`: score (0..1, exclusive) at which an invocation becomes a finding.
    pub threshold: f32,
    /// `WARDEN_KNOWN_EXES`: executables the function legitimately runs (comma-separated
    /// paths or base names), e.g. `sh,gzip` for a function that shells out by design.
    pub known_exes: Vec<String>,
    /// `WARDEN_LOG`: error, warn (default), info or debug.
    pub log_level: Level,
    /// `WARDEN_TELEMETRY_PORT`: port the telemetry listener binds on 0.0.0.0.
    pub telemetry_port: u16,
    /// `WARDEN_TELEMETRY_BUFFER_MS`: Telemetry API buffering timeout.
    pub telemetry_buffer_ms: u64,
    /// `WARDEN_SAMPLER_MS`: sampler period; `None` when set to 0 (sampler off).
    pub sampler_interval: Option<Duration>,
    /// `WARDEN_REPORT_WAIT_MS`: how long (awake time) a finished invocation waits for its
    /// late platform telemetry before it is emitted without it.
    pub report_wait: Duration,
    /// `WARDEN_SHUTDOWN_WAIT_MS`: at SHUTDOWN, longest wait for the last telemetry.
    pub shutdown_wait: Duration,
    /// `WARDEN_MAX_PENDING`: most invocations held while waiting for telemetry.
    pub max_pending: usize,
    /// `WARDEN_TMP_DIR`: the writable scratch directory watched for files.
    pub tmp_dir: PathBuf,
    /// `WARDEN_RECORD_KEY`: per-deployment key (16 bytes or more) that signs every record
    /// line, so that training can refuse lines Warden did not write (docs/configuration.md).
    pub record_key: Option<RecordKey>,
    /// `WARDEN_GUARD_SOCKET`: the abstract socket name the in-process guard reports to;
    /// `None` with `WARDEN_GUARD=off` (docs/configuration.md, "In-process guard").
    pub guard_socket: Option<String>,
    /// Root of the proc filesystem (not configurable; a field so tests can point elsewhere).
    pub proc_root: PathBuf,
    /// Values Lambda sets.
    pub lambda: LambdaEnv,
    /// Metric sinks, security tools, AWS access and responses.
    pub outputs: Outputs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::On,
            records: false,
            model: ModelChoice::Layer,
            profile: None,
            profile_deadline: Duration::from_millis(250),
            threshold: 0.5,
            known_exes: Vec::new(),
            log_level: Level::Warn,
            telemetry_port: DEFAULT_TELEMETRY_PORT,
            telemetry_buffer_ms: 25,
            sampler_interval: Some(Duration::from_millis(20)),
            report_wait: Duration::from_millis(1_000),
            shutdown_wait: Duration::from_millis(500),
            max_pending: 64,
            tmp_dir: PathBuf::from("/tmp"),
            record_key: None,
            guard_socket: Some(crate::sources::guard::DEFAULT_NAME.to_string()),
            proc_root: PathBuf::from("/proc"),
            lambda: LambdaEnv::default(),
            outputs: Outputs::default(),
        }
    }
}

const KNOWN: [&str; 19] = [
    "WARDEN_MODE",
    "WARDEN_MODEL",
    "WARDEN_PROFILE",
    "WARDEN_PROFILE_DEADLINE_MS",
    "WARDEN_THRESHOLD",
    "WARDEN_KNOWN_EXES",
    "WARDEN_RECORDS",
    "WARDEN_LOG",
    "WARDEN_TELEMETRY_PORT",
    "WARDEN_TELEMETRY_BUFFER_MS",
    "WARDEN_SAMPLER_MS",
    "WARDEN_REPORT_WAIT_MS",
    "WARDEN_SHUTDOWN_WAIT_MS",
    "WARDEN_MAX_PENDING",
    "WARDEN_TMP_DIR",
    "WARDEN_RECORD_KEY",
    "WARDEN_GUARD",
    "WARDEN_GUARD_SOCKET",
    "WARDEN_POLICY",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> (Config, Vec<ConfigError>) {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("WARDEN_") || k.starts_with("AWS_"))
            .collect();
        Config::from_vars(&vars)
    }

    /// Builds the settings from name/value pairs (the environment, or a test's list).
    pub fn from_vars(vars: &[(String, String)]) -> (Config, Vec<ConfigError>) {
        let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
        let mut errors = Vec::new();
        let mut c = Config::default();
        let mut take = |result: Result<Option<u64>, ConfigError>| match result {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                None
            }
        };

        let mode = get("WARDEN_MODE").map(|v| parse_mode("WARDEN_MODE", v));
        let records = get("WARDEN_RECORDS").map(|v| parse_bool("WARDEN_RECORDS", v));
        let level = get("WARDEN_LOG").map(|v| parse_level("WARDEN_LOG", v));
        if let Some(v) = take(number(get, "WARDEN_TELEMETRY_PORT", 1024, 65_535)) {
            c.telemetry_port = v as u16;
        }
        if let Some(v) = take(number(get, "WARDEN_TELEMETRY_BUFFER_MS", 25, 30_000)) {
            c.telemetry_buffer_ms = v;
        }
        if let Some(v) = take(number(get, "WARDEN_SAMPLER_MS", 0, 1_000)) {
            c.sampler_interval = (v > 0).then(|| Duration::from_millis(v));
        }
        if let Some(v) = take(number(get, "WARDEN_REPORT_WAIT_MS", 10, 60_000)) {
            c.report_wait = Duration::from_millis(v);
        }
        if let Some(v) = take(number(get, "WARDEN_SHUTDOWN_WAIT_MS", 0, 1_500)) {
            c.shutdown_wait = Duration::from_millis(v);
        }
        if let Some(v) = take(number(get, "WARDEN_MAX_PENDING", 1, 4_096)) {
            c.max_pending = v as usize;
        }
        if let Some(v) = take(number(get, "WARDEN_PROFILE_DEADLINE_MS", 10, 5_000)) {
            c.profile_deadline = Duration::from_millis(v);
        }
        match mode {
            Some(Ok(m)) => c.mode = m,
            Some(Err(e)) => errors.push(e),
            None => {}
        }
        match records {
            Some(Ok(b)) => c.records = b,
            Some(Err(e)) => errors.push(e),
            None => {}
        }
        match level {
            Some(Ok(l)) => c.log_level = l,
            Some(Err(e)) => errors.push(e),
            None => {}
        }
        if c.mode == Mode::Learn {
            c.records = true;
        }
        match get("WARDEN_MODEL") {
            Some(v) if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("off") => {
                c.model = ModelChoice::Off
            }
            Some(v) if v.starts_with('/') => c.model = ModelChoice::File(PathBuf::from(v)),
            Some(v) => errors.push(invalid("WARDEN_MODEL", v, "an absolute path or none")),
            None => {}
        }
        match get("WARDEN_PROFILE").map(|v| (v, ProfileSource::parse(v))) {
            Some((_, Some(source))) => c.profile = Some(source),
            Some((v, None)) => errors.push(invalid(
                "WARDEN_PROFILE",
                v,
                "an absolute path or s3://bucket/key",
            )),
            None => {}
        }
        match get("WARDEN_GUARD_SOCKET") {
            Some(v)
                if !v.is_empty() && v.len() <= 100 && v.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                c.guard_socket = Some(v.to_string())
            }
            Some(v) => errors.push(invalid(
                "WARDEN_GUARD_SOCKET",
                v,
                "a name of 1 to 107 printable characters",
            )),
            None => {}
        }
        match get("WARDEN_GUARD").map(|v| parse_bool("WARDEN_GUARD", v)) {
            Some(Ok(false)) => c.guard_socket = None,
            Some(Ok(true)) | None => {}
            Some(Err(e)) => errors.push(e),
        }
        match get("WARDEN_THRESHOLD").map(|v| (v, v.parse::<f32>())) {
            Some((_, Ok(t))) if t > 0.0 && t < 1.0 => c.threshold = t,
            Some((v, _)) => errors.push(invalid("WARDEN_THRESHOLD", v, "a number between 0 and 1")),
            None => {}
        }
        if let Some(v) = get("WARDEN_KNOWN_EXES") {
            c.known_exes = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
        }
        match get("WARDEN_TMP_DIR") {
            Some(v) if v.starts_with('/') => c.tmp_dir = PathBuf::from(v),
            Some(v) => errors.push(invalid("WARDEN_TMP_DIR", v, "an absolute path")),
            None => {}
        }
        match get("WARDEN_RECORD_KEY").map(RecordKey::new) {
            Some(Ok(key)) => c.record_key = Some(key),
            // The value is a secret: never repeated in the error.
            Some(Err(_)) => errors.push(invalid(
                "WARDEN_RECORD_KEY",
                "(hidden)",
                "a key of 16 bytes or more",
            )),
            None => {}
        }
        for (k, _) in vars {
            if k.starts_with("WARDEN_")
                && !KNOWN.contains(&k.as_str())
                && !outputs::KNOWN.contains(&k.as_str())
            {
                errors.push(ConfigError::Unknown { var: k.clone() });
            }
        }
        c.outputs = outputs::read(get, &mut errors);
        c.lambda = LambdaEnv {
            runtime_api: get("AWS_LAMBDA_RUNTIME_API")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            function_name: get("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_default()
                .to_string(),
            function_version: get("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_default()
                .to_string(),
            memory_mb: get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|v| v.parse().ok()),
        };
        (c, errors)
    }
}

impl Config {
    /// Whether Warden itself will make network connections (AWS APIs: its outputs, or an
    /// `s3://` profile at init), which the function's counters must then leave out.
    pub fn uses_network(&self) -> bool {
        self.outputs.uses_network()
            || (self.mode == Mode::On && matches!(self.profile, Some(ProfileSource::S3 { .. })))
    }
}

fn invalid(var: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.chars().take(64).collect(),
        expected,
    }
}

fn number<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(raw) = get(var) else { return Ok(None) };
    let value: u64 = raw
        .parse()
        .map_err(|_| invalid(var, raw, "a whole number"))?;
    if value < min || value > max {
        return Err(ConfigError::OutOfRange {
            var,
            value,
            min,
            max,
        });
    }
    Ok(Some(value))
}

fn parse_mode(var: &'static str, v: &str) -> Result<Mode, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "on" => Ok(Mode::On),
        "learn" => Ok(Mode::Learn),
        "off" => Ok(Mode::Off),
        _ => Err(invalid(var, v, "on, learn or off")),
    }
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, v, "1 or 0")),
    }
}

fn parse_level(var: &'static str, v: &str) -> Result<Level, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "error" => Ok(Level::Error),
        "warn" | "warning" => Ok(Level::Warn),
        "info" => Ok(Level::Info),
        "debug" => Ok(Level::Debug),
        _ => Err(invalid(var, v, "error, warn, info or debug")),
    }
}

#[cfg(test)]
mod tests;
