//! The execution environment's shared state: registered extensions, the runtime's slot and the
//! current invocation. API handlers change it; the engine waits on it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::config::RunConfig;
use crate::telemetry::Telemetry;

/// One registered external extension.
pub struct Extension {
    pub id: String,
    pub name: String,
    pub events: Vec<String>,
    pub queue: VecDeque<Value>,
    /// Blocked in /event/next with nothing to deliver: done with the current phase.
    pub waiting: bool,
    /// When it last entered /event/next.
    pub waiting_since: Option<Instant>,
    pub wake: Arc<Notify>,
    /// Set by /init/error or /exit/error.
    pub error: Option<String>,
    /// First /event/next: the extension finished its init.
    pub ready_at: Option<Instant>,
    pub exited: bool,
}

impl Extension {
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

/// An invocation handed to the runtime.
#[derive(Clone)]
pub struct PendingInvoke {
    pub request_id: String,
    pub deadline_ms: u64,
    pub payload: Bytes,
    pub trace_id: String,
}

/// How the runtime finished an invocation.
pub enum Outcome {
    Response { body: Bytes },
    Error { error_type: String, body: Value },
}

#[derive(Default)]
pub struct Runtime {
    pub pending: Option<PendingInvoke>,
    pub current: Option<String>,
    pub waiting: bool,
    pub ready_at: Option<Instant>,
    pub outcome: Option<(Outcome, Instant)>,
    pub init_error: Option<(String, Value)>,
    pub exited: bool,
    pub pid: Option<u32>,
    pub wake: Arc<Notify>,
}

#[derive(Default)]
pub struct State {
    /// Registrations are allowed only during init.
    pub registering: bool,
    pub extensions: Vec<Extension>,
    /// Names of extension processes that exited since init began.
    pub dead_launches: Vec<String>,
    pub runtime: Runtime,
}

/// What the API handlers and the engine share.
pub struct Shared {
    pub config: RunConfig,
    pub telemetry: Arc<Telemetry>,
    pub function_arn: String,
    pub account_id: String,
    state: Mutex<State>,
    version: watch::Sender<u64>,
}

impl Shared {
    pub fn new(config: RunConfig, telemetry: Arc<Telemetry>) -> Shared {
        let account_id = "123456789012".to_string();
        let function_arn = format!(
            "arn:aws:lambda:{}:{account_id}:function:{}",
            region(&config),
            config.function_name
        );
        Shared {
            config,
            telemetry,
            function_arn,
            account_id,
            state: Mutex::new(State::default()),
            version: watch::channel(0).0,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells waiters that the state changed.
    pub fn changed(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Waits until `cond` holds or `deadline` passes; returns whether it holds.
    pub async fn wait_until(&self, deadline: Instant, cond: impl Fn(&State) -> bool) -> bool {
        let mut rx = self.version.subscribe();
        loop {
            rx.mark_unchanged();
            if cond(&self.lock()) {
                return true;
            }
            match tokio::time::timeout_at(deadline.into(), rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return cond(&self.lock()),
            }
        }
    }
}

pub fn region(config: &RunConfig) -> String {
    config
        .env
        .iter()
        .find(|(k, _)| k == "AWS_REGION")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "us-east-1".into())
}
