//! The only reader of the environment: what the guard is told at load.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::secret::SecretKey;

/// The abstract socket name Warden binds when `WARDEN_GUARD_SOCKET` is not set.
pub(crate) const DEFAULT_SOCKET: &str = "warden-guard";
/// `sun_path` holds 108 bytes; an abstract name starts with a NUL.
pub(crate) const MAX_SOCKET_NAME: usize = 107;

/// The guard's settings, read once in the library's constructor.
#[derive(Debug)]
pub(crate) struct Settings {
    /// `WARDEN_GUARD=off` turns every hook into a plain call.
    pub(crate) enabled: bool,
    /// `WARDEN_GUARD_SOCKET`: the abstract name events are sent to.
    pub(crate) socket_name: Vec<u8>,
    /// `WARDEN_POLICY`: the policy file, if any.
    pub(crate) policy_path: Option<PathBuf>,
    /// `AWS_LAMBDA_RUNTIME_API` (host:port), always reachable under an egress policy.
    pub(crate) runtime_api: Option<SocketAddr>,
    /// `AWS_SECRET_ACCESS_KEY`, as the searches for it in what the process sends.
    pub(crate) secret_key: Option<SecretKey>,
}

impl Settings {
    pub(crate) fn from_env() -> Settings {
        Settings::from_vars(|name| std::env::var_os(name))
    }

    fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Settings {
        let text = |name: &str| var(name).and_then(|v| v.into_string().ok());
        let enabled = text("WARDEN_GUARD").is_none_or(|v| !v.trim().eq_ignore_ascii_case("off"));
        let socket_name = text("WARDEN_GUARD_SOCKET")
            .filter(|name| !name.is_empty() && name.len() <= MAX_SOCKET_NAME)
            .unwrap_or_else(|| DEFAULT_SOCKET.into())
            .into_bytes();
        let policy_path = var("WARDEN_POLICY")
            .filter(|path| !path.is_empty())
            .map(PathBuf::from);
        let runtime_api = text("AWS_LAMBDA_RUNTIME_API").and_then(|api| api.parse().ok());
        let secret_key =
            var("AWS_SECRET_ACCESS_KEY").and_then(|key| SecretKey::new(key.as_encoded_bytes()));
        Settings {
            enabled,
            socket_name,
            policy_path,
            runtime_api,
            secret_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        Settings::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = settings(&[]);
        assert!(s.enabled);
        assert_eq!(s.socket_name, b"warden-guard");
        assert!(s.policy_path.is_none() && s.runtime_api.is_none());
        assert!(s.secret_key.is_none());
    }

    #[test]
    fn values_are_read() {
        let s = settings(&[
            ("WARDEN_GUARD", "OFF"),
            ("WARDEN_GUARD_SOCKET", "guard-7"),
            ("WARDEN_POLICY", "/var/task/policy.json"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        ]);
        assert!(!s.enabled);
        assert_eq!(s.socket_name, b"guard-7");
        assert_eq!(s.policy_path, Some(PathBuf::from("/var/task/policy.json")));
        assert_eq!(s.runtime_api, "127.0.0.1:9001".parse().ok());
        assert!(s.secret_key.is_some());
    }

    #[test]
    fn a_socket_name_too_long_for_sun_path_falls_back_to_the_default() {
        let long = "x".repeat(MAX_SOCKET_NAME + 1);
        assert_eq!(
            settings(&[("WARDEN_GUARD_SOCKET", &long)]).socket_name,
            b"warden-guard"
        );
    }
}
