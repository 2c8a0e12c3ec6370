//! The guard's state for the life of the process: set once by the constructor, read by every
//! hook (a lock-free load, so hooks stay async-signal-safe).

use std::sync::OnceLock;

use crate::policy::{Policy, PolicyError};
use crate::secret::SecretKey;
use crate::settings::Settings;

/// The policy in force.
#[derive(Debug)]
pub(crate) enum PolicyState {
    /// No `WARDEN_POLICY`.
    None,
    Loaded(Policy),
    /// `WARDEN_POLICY` named a file that cannot be used: running without one.
    Error,
}

/// What the hooks need.
#[derive(Debug)]
pub(crate) struct Guard {
    pub(crate) socket_name: Vec<u8>,
    pub(crate) policy: PolicyState,
    /// The Runtime API: reachable under a lockdown too.
    pub(crate) runtime_api: Option<std::net::SocketAddr>,
    /// The role's secret key, searched for in what leaves by a socket.
    pub(crate) secret_key: Option<SecretKey>,
}

impl Guard {
    pub(crate) fn policy(&self) -> Option<&Policy> {
        match &self.policy {
            PolicyState::Loaded(policy) => Some(policy),
            PolicyState::None | PolicyState::Error => None,
        }
    }

    /// The `policy` word of the `hello` event.
    pub(crate) fn policy_word(&self) -> &'static str {
        match &self.policy {
            PolicyState::None => "none",
            PolicyState::Loaded(p) => match p.mode() {
                crate::policy::Mode::Observe => "observe",
                crate::policy::Mode::Enforce => "enforce",
            },
            PolicyState::Error => "error",
        }
    }
}

static GUARD: OnceLock<Guard> = OnceLock::new();

/// A policy file that could not be used, and why.
#[derive(Debug)]
pub(crate) struct PolicyProblem {
    pub(crate) path: std::path::PathBuf,
    pub(crate) error: PolicyError,
}

/// Reads the policy and makes the guard active. Returns `None` when the guard is switched off
/// or was already installed.
pub(crate) fn install(settings: Settings) -> Option<(&'static Guard, Option<PolicyProblem>)> {
    if !settings.enabled {
        return None;
    }
    let mut problem = None;
    let policy = match &settings.policy_path {
        None => PolicyState::None,
        Some(path) => match Policy::load(path, settings.runtime_api) {
            Ok(policy) => PolicyState::Loaded(policy),
            Err(error) => {
                problem = Some(PolicyProblem {
                    path: path.clone(),
                    error,
                });
                PolicyState::Error
            }
        },
    };
    let guard = Guard {
        socket_name: settings.socket_name,
        policy,
        runtime_api: settings.runtime_api,
        secret_key: settings.secret_key,
    };
    GUARD.set(guard).ok()?;
    GUARD.get().map(|g| (g, problem))
}

/// The guard, once installed and switched on.
pub(crate) fn get() -> Option<&'static Guard> {
    GUARD.get()
}
