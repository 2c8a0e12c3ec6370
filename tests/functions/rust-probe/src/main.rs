//! Probe function: performs the actions named in its event (see tests/functions/README.md)
//! and answers with what it did. Built as `bootstrap` for the `provided` runtime.

mod actions;
mod args;
mod net;
mod sys;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

/// A handled function error, reported to the Runtime API as `ProbeError`.
#[derive(Debug)]
struct ProbeFailure(String);

impl From<ProbeFailure> for Diagnostic {
    fn from(failure: ProbeFailure) -> Self {
        Diagnostic {
            error_type: "ProbeError".to_string(),
            error_message: failure.0,
        }
    }
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, ProbeFailure> {
    let payload = event.payload;
    // Every action is blocking (sockets, processes, sleeps), so keep it off the runtime thread.
    let outcome = tokio::task::spawn_blocking(move || actions::run(&payload))
        .await
        .map_err(|err| ProbeFailure(format!("probe task failed: {err}")))?;
    match outcome.failure {
        Some(message) => Err(ProbeFailure(message)),
        None => Ok(outcome.response),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(handle)).await
}
