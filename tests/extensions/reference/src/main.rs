//! Reference extension: the minimal external extension on the `lambda-extension` crate.
//! It registers for INVOKE and SHUTDOWN, subscribes to the Telemetry API and loops on
//! next — the floor any extension pays. Test-only behaviour is opt-in by environment:
//! `REFERENCE_EXTENSION_DUMP` (a file to log events and raw telemetry to) and
//! `REFERENCE_EXTENSION_EXIT_ERROR_ON` (report an exit error on the n-th INVOKE, exit 1).

mod api;
mod dump;
mod listener;

use dump::Dump;
use lambda_extension::{
    service_fn, Error, Extension, LambdaEvent, LambdaTelemetry, LogBuffering, NextEvent,
    SharedService,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

const EVENTS: &[&str] = &["INVOKE", "SHUTDOWN"];
const TELEMETRY_TYPES: &[&str] = &["platform", "function", "extension"];
/// Shortest delay and smallest buffers the Telemetry API accepts.
const BUFFERING: LogBuffering = LogBuffering {
    timeout_ms: 25,
    max_bytes: 262_144,
    max_items: 1_000,
};
const DEFAULT_TELEMETRY_PORT: u16 = 9003;

struct State {
    dump: Option<Arc<Dump>>,
    exit_error_on: Option<u64>,
    invokes: AtomicU64,
    extension_id: OnceLock<String>,
}

fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>, Error> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} must be a number, got {value:?}").into()),
        Err(_) => Ok(None),
    }
}

fn event_json(event: &NextEvent) -> Value {
    match event {
        NextEvent::Invoke(invoke) => json!({
            "eventType": "INVOKE",
            "requestId": invoke.request_id,
            "deadlineMs": invoke.deadline_ms,
            "invokedFunctionArn": invoke.invoked_function_arn,
            "tracing": { "type": invoke.tracing.r#type, "value": invoke.tracing.value },
        }),
        NextEvent::Shutdown(shutdown) => json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": shutdown.shutdown_reason,
            "deadlineMs": shutdown.deadline_ms,
        }),
    }
}

async fn on_event(state: Arc<State>, event: LambdaEvent) -> Result<(), Error> {
    if let Some(dump) = &state.dump {
        dump.write_line(&format!(
            r#"{{"kind":"event","event":{}}}"#,
            event_json(&event.next)
        ));
    }
    match event.next {
        NextEvent::Invoke(_) => {
            let seen = state.invokes.fetch_add(1, Ordering::SeqCst) + 1;
            if state.exit_error_on == Some(seen) {
                let id = state.extension_id.get().map_or("", String::as_str);
                if let Err(err) = api::exit_error(id).await {
                    eprintln!("reference-extension: exit/error failed: {err}");
                }
                std::process::exit(1);
            }
            Ok(())
        }
        NextEvent::Shutdown(_) => std::process::exit(0),
    }
}

async fn ignore_telemetry(_batch: Vec<LambdaTelemetry<Value>>) -> Result<(), Error> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let dump = match std::env::var_os("REFERENCE_EXTENSION_DUMP") {
        Some(path) if !path.is_empty() => Some(Arc::new(Dump::open(path.as_ref())?)),
        _ => None,
    };
    let port = env_number("REFERENCE_EXTENSION_TELEMETRY_PORT")?.unwrap_or(DEFAULT_TELEMETRY_PORT);
    let state = Arc::new(State {
        dump: dump.clone(),
        exit_error_on: env_number("REFERENCE_EXTENSION_EXIT_ERROR_ON")?,
        invokes: AtomicU64::new(0),
        extension_id: OnceLock::new(),
    });
    let events = {
        let state = state.clone();
        service_fn(move |event| on_event(state.clone(), event))
    };
    let registered = match dump {
        // The floor: the crate's own telemetry listener and subscription.
        None => {
            Extension::new()
                .with_events(EVENTS)
                .with_events_processor(events)
                .with_telemetry_record_type::<Value>()
                .with_telemetry_processor(SharedService::new(service_fn(ignore_telemetry)))
                .with_telemetry_types(TELEMETRY_TYPES)
                .with_telemetry_buffering(BUFFERING)
                .with_telemetry_port_number(port)
                .register()
                .await?
        }
        // Dumping needs records exactly as sent, which the crate's typed parser cannot give.
        Some(dump) => {
            let registered = Extension::new()
                .with_events(EVENTS)
                .with_events_processor(events)
                .register()
                .await?;
            listener::start(port, dump).await?;
            api::subscribe(&registered.extension_id, port, TELEMETRY_TYPES, BUFFERING).await?;
            registered
        }
    };
    let _ = state.extension_id.set(registered.extension_id.clone());
    registered.run().await
}
