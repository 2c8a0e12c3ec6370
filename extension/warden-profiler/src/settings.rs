//! The profiler's settings, from its environment (docs/fleet-learning.md, "The profiler").

use warden_core::record_mac::RecordKey;
use warden_learn::dataset::HABIT_MIN_ENVIRONMENTS;
use warden_learn::policy;

/// Validated settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `WARDEN_PROFILER_FUNCTIONS`: the protected functions, by name.
    pub(crate) functions: Vec<String>,
    /// `WARDEN_PROFILER_LOG_GROUP_PREFIX`: a function's log group is this and its name.
    pub(crate) log_group_prefix: String,
    /// `WARDEN_PROFILER_BUCKET`: where the profiles go.
    pub(crate) bucket: String,
    /// `WARDEN_PROFILER_PREFIX`: a function's profile is the object `<prefix><name>.json`.
    pub(crate) prefix: String,
    /// `WARDEN_RECORD_KEY`: the deployment's record key; only records signed with it are
    /// learned.
    pub(crate) record_key: RecordKey,
    /// `WARDEN_PROFILER_LOOKBACK_HOURS`: how far back each run reads the log groups.
    pub(crate) lookback_hours: u64,
    /// `WARDEN_PROFILER_MIN_ENVIRONMENTS`: distinct environments a habit needs.
    pub(crate) min_environments: usize,
    /// `WARDEN_PROFILER_POLICY`: also export the guard's policy (`observe` or `enforce`), or
    /// not (`off`).
    pub(crate) policy: Option<policy::Mode>,
    /// `WARDEN_METRICS_NAMESPACE`: the namespace of the profiler's metrics.
    pub(crate) namespace: String,
}

/// A setting that cannot be used: the profiler does not start without it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SettingsError {
    /// Required and not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// Set to something unusable.
    #[error("{var} is not valid (expected {expected})")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// What would have been accepted.
        expected: &'static str,
    },
}

impl Settings {
    /// Reads the settings through `get`.
    pub(crate) fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(SettingsError::Missing(name));
        let invalid = |var, expected| SettingsError::Invalid { var, expected };
        let functions: Vec<String> = required("WARDEN_PROFILER_FUNCTIONS")?
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        let name_ok = |f: &String| {
            f.len() <= 140
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if functions.is_empty() || !functions.iter().all(name_ok) {
            return Err(invalid(
                "WARDEN_PROFILER_FUNCTIONS",
                "function names separated by commas",
            ));
        }
        let record_key = RecordKey::new(&required("WARDEN_RECORD_KEY")?)
            .map_err(|_| invalid("WARDEN_RECORD_KEY", "a key of 16 bytes or more"))?;
        let number = |name: &'static str, default: u64, min: u64, max: u64| match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or(invalid(name, "a whole number in its range")),
        };
        let policy = match get("WARDEN_PROFILER_POLICY").as_deref() {
            None | Some("off") => None,
            Some(v) => Some(
                v.parse::<policy::Mode>()
                    .map_err(|_| invalid("WARDEN_PROFILER_POLICY", "off, observe or enforce"))?,
            ),
        };
        Ok(Settings {
            functions,
            log_group_prefix: get("WARDEN_PROFILER_LOG_GROUP_PREFIX")
                .unwrap_or_else(|| "/aws/lambda/".into()),
            bucket: required("WARDEN_PROFILER_BUCKET")?,
            prefix: get("WARDEN_PROFILER_PREFIX").unwrap_or_else(|| "warden/profiles/".into()),
            record_key,
            lookback_hours: number("WARDEN_PROFILER_LOOKBACK_HOURS", 24, 1, 24 * 14)?,
            min_environments: number(
                "WARDEN_PROFILER_MIN_ENVIRONMENTS",
                HABIT_MIN_ENVIRONMENTS as u64,
                HABIT_MIN_ENVIRONMENTS as u64,
                1_000,
            )? as usize,
            policy,
            namespace: get("WARDEN_METRICS_NAMESPACE").unwrap_or_else(|| "Warden".into()),
        })
    }

    /// The function's log group.
    pub(crate) fn log_group(&self, function: &str) -> String {
        format!("{}{function}", self.log_group_prefix)
    }

    /// The key of the function's profile object.
    pub(crate) fn object_key(&self, function: &str) -> String {
        format!("{}{function}.json", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    const BASE: [(&str, &str); 3] = [
        ("WARDEN_PROFILER_FUNCTIONS", "orders, probe,"),
        ("WARDEN_PROFILER_BUCKET", "fleet-profiles"),
        ("WARDEN_RECORD_KEY", "deployment-key-0123456789"),
    ];

    #[test]
    fn defaults_and_names() {
        let s = settings(&BASE).unwrap();
        assert_eq!(s.functions, ["orders", "probe"]);
        assert_eq!(s.log_group("orders"), "/aws/lambda/orders");
        assert_eq!(s.object_key("orders"), "warden/profiles/orders.json");
        assert_eq!((s.lookback_hours, s.min_environments), (24, 2));
        assert_eq!(s.policy, None);
        assert_eq!(s.namespace, "Warden");
    }

    #[test]
    fn what_is_missing_or_unsafe_is_refused() {
        assert_eq!(
            settings(&BASE[..2]).unwrap_err(),
            SettingsError::Missing("WARDEN_RECORD_KEY")
        );
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs: Vec<(&str, &str)> = BASE
                .iter()
                .filter(|(k, _)| *k != extra.0)
                .copied()
                .collect();
            pairs.push(extra);
            settings(&pairs)
        };
        // One environment alone never makes a habit.
        assert!(with(("WARDEN_PROFILER_MIN_ENVIRONMENTS", "1")).is_err());
        assert_eq!(
            with(("WARDEN_PROFILER_MIN_ENVIRONMENTS", "3"))
                .unwrap()
                .min_environments,
            3
        );
        assert!(with(("WARDEN_PROFILER_POLICY", "sometimes")).is_err());
        assert_eq!(
            with(("WARDEN_PROFILER_POLICY", "enforce")).unwrap().policy,
            Some(policy::Mode::Enforce)
        );
        assert!(with(("WARDEN_PROFILER_FUNCTIONS", "a/../b")).is_err());
        assert!(with(("WARDEN_RECORD_KEY", "short")).is_err());
    }
}
