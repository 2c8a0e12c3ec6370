//! Settings of where findings go and what Warden does about them: metric sinks, security
//! tools, AWS access (as Lambda provides it) and the response policy.

use std::fmt;

use super::{invalid, parse_bool, ConfigError};
use crate::schema::Action;
use crate::schema::Severity;

/// How metrics leave the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsMode {
    /// Embedded Metric Format lines on stdout: no API calls, CloudWatch Logs extracts them.
    Emf,
    /// `PutMetricData` with aws-sdk-cloudwatch.
    Api,
    /// No metrics.
    Off,
}

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// What the AWS SDK needs, read from the variables Lambda sets for the function's role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsEnv {
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
    /// `AWS_ENDPOINT_URL`: one endpoint for every service (local testing, VPC endpoints).
    pub endpoint_url: Option<String>,
}

impl AwsEnv {
    /// Reads `AWS_REGION` (or `AWS_DEFAULT_REGION`), the credentials and
    /// `AWS_ENDPOINT_URL` through `get`.
    pub fn from_lookup<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> AwsEnv {
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_string);
        AwsEnv {
            region: non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")),
            access_key_id: non_empty("AWS_ACCESS_KEY_ID"),
            secret_access_key: Secret(non_empty("AWS_SECRET_ACCESS_KEY").unwrap_or_default()),
            session_token: non_empty("AWS_SESSION_TOKEN").map(Secret),
            endpoint_url: non_empty("AWS_ENDPOINT_URL"),
        }
    }

    /// Region and credentials are both present.
    pub fn usable(&self) -> bool {
        self.region.is_some()
            && self.access_key_id.is_some()
            && !self.secret_access_key.0.is_empty()
    }
}

/// `WARDEN_RESPONSE`: actions by minimum severity, e.g. `critical=kill+recycle,high=kill`.
/// An entry applies to its severity and every higher one; empty means alert only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponsePolicy {
    /// (minimum severity, actions) entries as given.
    pub rules: Vec<(Severity, Vec<Action>)>,
}

impl ResponsePolicy {
    /// The actions for a finding of `severity`, in a fixed order, without repeats.
    pub fn actions_for(&self, severity: Severity) -> Vec<Action> {
        let mut out: Vec<Action> = self
            .rules
            .iter()
            .filter(|(min, _)| severity >= *min)
            .flat_map(|(_, a)| a.iter().copied())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether any rule names `action`.
    pub fn uses(&self, action: Action) -> bool {
        self.rules.iter().any(|(_, a)| a.contains(&action))
    }
}

/// Where findings and metrics go, and the response policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// `WARDEN_METRICS`: `emf` (default), `api` or `off`.
    pub metrics: MetricsMode,
    /// `WARDEN_METRICS_NAMESPACE`: CloudWatch namespace (default `Warden`).
    pub namespace: String,
    /// `WARDEN_SECURITY_HUB`: import findings into AWS Security Hub (ASFF).
    pub security_hub: bool,
    /// `WARDEN_EVENT_BUS`: put findings on this EventBridge bus (name or ARN).
    pub event_bus: Option<String>,
    /// `WARDEN_MIN_FORWARD_SEVERITY`: least severity sent to Security Hub and EventBridge.
    pub forward_severity: Severity,
    /// `WARDEN_QUEUE_MAX`: findings held for delivery at most (highest severity kept).
    pub queue_max: usize,
    /// `WARDEN_RESPONSE`: the response policy (default: alert only).
    pub response: ResponsePolicy,
    /// `WARDEN_DRY_RUN`: record what responses would do, do nothing.
    pub dry_run: bool,
    /// `WARDEN_THROTTLE_INTERVAL_S`: least time between two throttle calls.
    pub throttle_interval_s: u64,
    /// `WARDEN_LOCKDOWN`: the environment's risk (precursors seen) at which the in-process
    /// guard refuses unknown egress and exec until the environment is recycled; `None` off
    /// (default). `on` is [`DEFAULT_LOCKDOWN_RISK`].
    pub lockdown: Option<u32>,
    /// AWS access from the Lambda environment.
    pub aws: AwsEnv,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            metrics: MetricsMode::Emf,
            namespace: "Warden".into(),
            security_hub: false,
            event_bus: None,
            forward_severity: Severity::Medium,
            queue_max: 256,
            response: ResponsePolicy::default(),
            dry_run: false,
            throttle_interval_s: 300,
            lockdown: None,
            aws: AwsEnv::default(),
        }
    }
}

impl Outputs {
    /// Whether Warden itself will make network connections (AWS APIs).
    pub fn uses_network(&self) -> bool {
        self.metrics == MetricsMode::Api
            || self.security_hub
            || self.event_bus.is_some()
            || self.response.uses(Action::Throttle)
    }
}

/// The risk `WARDEN_LOCKDOWN=on` locks down at: three precursors, e.g. a recon command, a
/// read of a credential source and a refused call.
pub(crate) const DEFAULT_LOCKDOWN_RISK: u32 = 3;

/// The variables [`read`] understands.
pub(super) const KNOWN: [&str; 10] = [
    "WARDEN_METRICS",
    "WARDEN_METRICS_NAMESPACE",
    "WARDEN_SECURITY_HUB",
    "WARDEN_EVENT_BUS",
    "WARDEN_MIN_FORWARD_SEVERITY",
    "WARDEN_QUEUE_MAX",
    "WARDEN_RESPONSE",
    "WARDEN_DRY_RUN",
    "WARDEN_THROTTLE_INTERVAL_S",
    "WARDEN_LOCKDOWN",
];

/// Reads the output settings; bad values leave the default and add an error.
pub(super) fn read<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    errors: &mut Vec<ConfigError>,
) -> Outputs {
    let mut o = Outputs::default();
    match get("WARDEN_METRICS")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("emf") | None => {}
        Some("api") => o.metrics = MetricsMode::Api,
        Some("off") | Some("none") => o.metrics = MetricsMode::Off,
        Some(v) => errors.push(invalid("WARDEN_METRICS", v, "emf, api or off")),
    }
    match get("WARDEN_METRICS_NAMESPACE") {
        Some(v) if valid_namespace(v) => o.namespace = v.to_string(),
        Some(v) => errors.push(invalid(
            "WARDEN_METRICS_NAMESPACE",
            v,
            "1-255 printable characters, not starting with AWS/",
        )),
        None => {}
    }
    if let Some(v) = get("WARDEN_SECURITY_HUB") {
        match parse_bool("WARDEN_SECURITY_HUB", v) {
            Ok(b) => o.security_hub = b,
            Err(e) => errors.push(e),
        }
    }
    if let Some(v) = get("WARDEN_DRY_RUN") {
        match parse_bool("WARDEN_DRY_RUN", v) {
            Ok(b) => o.dry_run = b,
            Err(e) => errors.push(e),
        }
    }
    o.event_bus = get("WARDEN_EVENT_BUS")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    if let Some(v) = get("WARDEN_MIN_FORWARD_SEVERITY") {
        match parse_severity(v) {
            Some(s) => o.forward_severity = s,
            None => errors.push(invalid(
                "WARDEN_MIN_FORWARD_SEVERITY",
                v,
                "low, medium, high or critical",
            )),
        }
    }
    if let Some(v) = get("WARDEN_QUEUE_MAX") {
        match v.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => o.queue_max = n,
            _ => errors.push(invalid(
                "WARDEN_QUEUE_MAX",
                v,
                "a whole number in 1..=10000",
            )),
        }
    }
    if let Some(v) = get("WARDEN_THROTTLE_INTERVAL_S") {
        match v.parse::<u64>() {
            Ok(n) if (10..=86_400).contains(&n) => o.throttle_interval_s = n,
            _ => errors.push(invalid(
                "WARDEN_THROTTLE_INTERVAL_S",
                v,
                "a whole number of seconds in 10..=86400",
            )),
        }
    }
    if let Some(v) = get("WARDEN_LOCKDOWN") {
        match v.to_ascii_lowercase().as_str() {
            "off" | "0" | "false" | "no" | "" => {}
            "on" | "true" | "yes" => o.lockdown = Some(DEFAULT_LOCKDOWN_RISK),
            n => match n.parse::<u32>() {
                Ok(n) if (1..=20).contains(&n) => o.lockdown = Some(n),
                _ => errors.push(invalid(
                    "WARDEN_LOCKDOWN",
                    v,
                    "off, on, or the risk to lock down at (1..=20)",
                )),
            },
        }
    }
    if let Some(v) = get("WARDEN_RESPONSE") {
        match parse_policy(v) {
            Some(p) => o.response = p,
            None => errors.push(invalid(
                "WARDEN_RESPONSE",
                v,
                "severity=action[+action],... with actions kill, recycle, throttle",
            )),
        }
    }
    o.aws = AwsEnv::from_lookup(&get);
    o
}

fn valid_namespace(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 255
        && !v.starts_with("AWS/")
        && v.chars().all(|c| (' '..='~').contains(&c))
}

/// `low`, `medium`, `high` or `critical`.
pub fn parse_severity(v: &str) -> Option<Severity> {
    match v.trim().to_ascii_lowercase().as_str() {
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

fn parse_action(v: &str) -> Option<Action> {
    match v.trim().to_ascii_lowercase().as_str() {
        "kill" => Some(Action::Kill),
        "recycle" => Some(Action::Recycle),
        "throttle" => Some(Action::Throttle),
        _ => None,
    }
}

/// `critical=kill+recycle,high=kill`; `none` or empty is alert only.
pub fn parse_policy(v: &str) -> Option<ResponsePolicy> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("alert") {
        return Some(ResponsePolicy::default());
    }
    let mut rules = Vec::new();
    for entry in v.split(',') {
        let (sev, actions) = entry.split_once('=')?;
        let sev = parse_severity(sev)?;
        let actions: Option<Vec<Action>> = actions.split('+').map(parse_action).collect();
        rules.push((sev, actions?));
    }
    Some(ResponsePolicy { rules })
}
