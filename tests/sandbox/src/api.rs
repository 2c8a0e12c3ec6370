//! The HTTP API the sandbox serves at AWS_LAMBDA_RUNTIME_API: Runtime API (2018-06-01),
//! Extensions API (2020-01-01) and Telemetry API (2022-07-01).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::state::{Extension, Outcome, Shared};
use crate::telemetry::SubscribeRequest;

type Reply = Response<Full<Bytes>>;

/// Lambda refuses responses larger than 6 MB.
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(&shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "InvalidRequest", "unreadable body"),
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::POST, ["2020-01-01", "extension", "register"]) => register(
            shared,
            header("lambda-extension-name"),
            header("lambda-extension-accept-feature"),
            &body,
        ),
        (Method::GET, ["2020-01-01", "extension", "event", "next"]) => {
            extension_next(shared, header("lambda-extension-identifier")).await
        }
        (Method::POST, ["2020-01-01", "extension", "init" | "exit", "error"]) => extension_error(
            shared,
            header("lambda-extension-identifier"),
            header("lambda-extension-function-error-type"),
        ),
        (Method::PUT, ["2022-07-01", "telemetry"]) => {
            subscribe(shared, header("lambda-extension-identifier"), &body)
        }
        (Method::PUT, ["2020-08-15", "logs"]) => error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "the Logs API is not offered by this sandbox; use the Telemetry API",
        ),
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            runtime_next(shared).await
        }
        (
            Method::POST,
            ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")],
        ) => runtime_result(
            shared,
            id,
            kind,
            header("lambda-runtime-function-error-type"),
            body,
        ),
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let error_type = header("lambda-runtime-function-error-type")
                .unwrap_or_else(|| "Runtime.Unknown".into());
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            shared.lock().runtime.init_error = Some((error_type, value));
            shared.changed();
            accepted()
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "no such API route"),
    }
}

fn register(
    shared: &Arc<Shared>,
    name: Option<String>,
    feature: Option<String>,
    body: &Bytes,
) -> Reply {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Lambda-Extension-Name header is required",
        );
    };
    let events: Vec<String> = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "body must be JSON",
            )
        }
    };
    if let Some(bad) = events.iter().find(|e| *e != "INVOKE" && *e != "SHUTDOWN") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidEventType",
            &format!("unknown event {bad}"),
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    {
        let mut state = shared.lock();
        if !state.registering {
            return error(
                StatusCode::FORBIDDEN,
                "Extension.RegistrationNotAllowed",
                "registration is only allowed during init",
            );
        }
        if state.extensions.iter().any(|e| e.name == name) {
            return error(
                StatusCode::CONFLICT,
                "Extension.AlreadyRegistered",
                &format!("{name} is already registered"),
            );
        }
        state.extensions.push(Extension {
            id: id.clone(),
            name,
            events,
            queue: Default::default(),
            waiting: false,
            wake: Default::default(),
            error: None,
            ready_at: None,
            waiting_since: None,
            exited: false,
        });
    }
    shared.changed();
    let cfg = &shared.config;
    let mut body = json!({
        "functionName": cfg.function_name,
        "functionVersion": "$LATEST",
        "handler": cfg.handler,
    });
    if feature.as_deref() == Some("accountId") {
        body["accountId"] = json!(shared.account_id);
    }
    let mut reply = json_reply(StatusCode::OK, &body);
    if let Ok(value) = id.parse() {
        reply
            .headers_mut()
            .insert("lambda-extension-identifier", value);
    }
    reply
}

async fn extension_next(shared: &Arc<Shared>, id: Option<String>) -> Reply {
    let mut first_wait = true;
    loop {
        let wake = {
            let mut state = shared.lock();
            let Some(ext) = state
                .extensions
                .iter_mut()
                .find(|e| Some(&e.id) == id.as_ref())
            else {
                return error(
                    StatusCode::FORBIDDEN,
                    "Extension.UnknownExtensionIdentifier",
                    "unknown extension identifier",
                );
            };
            if ext.error.is_some() {
                return error(
                    StatusCode::FORBIDDEN,
                    "Extension.Exited",
                    "the extension reported an error and may not continue",
                );
            }
            if let Some(event) = ext.queue.pop_front() {
                ext.waiting = false;
                drop(state);
                let mut reply = json_reply(StatusCode::OK, &event);
                if let Ok(v) = uuid::Uuid::new_v4().to_string().parse() {
                    reply
                        .headers_mut()
                        .insert("lambda-extension-event-identifier", v);
                }
                return reply;
            }
            if first_wait {
                first_wait = false;
                ext.waiting = true;
                ext.waiting_since = Some(Instant::now());
                if ext.ready_at.is_none() {
                    ext.ready_at = Some(Instant::now());
                    let record = json!({"name": ext.name, "state": "Ready", "events": ext.events});
                    shared.telemetry.emit("platform.extension", record);
                }
                let wake = ext.wake.clone();
                drop(state);
                shared.changed();
                wake
            } else {
                ext.wake.clone()
            }
        };
        wake.notified().await;
    }
}

fn extension_error(shared: &Arc<Shared>, id: Option<String>, error_type: Option<String>) -> Reply {
    {
        let mut state = shared.lock();
        let Some(ext) = state
            .extensions
            .iter_mut()
            .find(|e| Some(&e.id) == id.as_ref())
        else {
            return error(
                StatusCode::FORBIDDEN,
                "Extension.UnknownExtensionIdentifier",
                "unknown extension identifier",
            );
        };
        ext.error = Some(error_type.unwrap_or_else(|| "Extension.Unknown".into()));
        ext.waiting = false;
    }
    shared.changed();
    accepted()
}

fn subscribe(shared: &Arc<Shared>, id: Option<String>, body: &Bytes) -> Reply {
    let name = {
        let state = shared.lock();
        match state.extensions.iter().find(|e| Some(&e.id) == id.as_ref()) {
            Some(ext) => ext.name.clone(),
            None => {
                return error(
                    StatusCode::FORBIDDEN,
                    "Extension.UnknownExtensionIdentifier",
                    "unknown extension identifier",
                )
            }
        }
    };
    let request: SubscribeRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "ValidationError", &e.to_string()),
    };
    match shared.telemetry.subscribe(&name, &request) {
        Ok(types) => {
            let record = json!({"name": name, "state": "Subscribed", "types": types});
            shared
                .telemetry
                .emit("platform.telemetrySubscription", record);
            Response::builder()
                .status(StatusCode::OK)
                .body(Full::new(Bytes::from_static(b"OK")))
                .unwrap_or_default()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "ValidationError", &e.to_string()),
    }
}

async fn runtime_next(shared: &Arc<Shared>) -> Reply {
    let mut first_wait = true;
    loop {
        let wake = {
            let mut state = shared.lock();
            let rt = &mut state.runtime;
            if let Some(inv) = rt.pending.take() {
                rt.waiting = false;
                rt.current = Some(inv.request_id.clone());
                drop(state);
                return invocation_reply(shared, inv);
            }
            if first_wait {
                first_wait = false;
                rt.waiting = true;
                rt.ready_at.get_or_insert_with(Instant::now);
                let wake = rt.wake.clone();
                drop(state);
                shared.changed();
                wake
            } else {
                rt.wake.clone()
            }
        };
        wake.notified().await;
    }
}

fn invocation_reply(shared: &Shared, inv: crate::state::PendingInvoke) -> Reply {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &inv.request_id)
        .header("lambda-runtime-deadline-ms", inv.deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &shared.function_arn)
        .header("lambda-runtime-trace-id", &inv.trace_id)
        .body(Full::new(inv.payload))
        .unwrap_or_default()
}

fn runtime_result(
    shared: &Arc<Shared>,
    id: &str,
    kind: &str,
    error_type: Option<String>,
    body: Bytes,
) -> Reply {
    let mut reply = accepted();
    {
        let mut state = shared.lock();
        let rt = &mut state.runtime;
        if rt.current.as_deref() != Some(id) || rt.outcome.is_some() {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                "no such invocation in flight",
            );
        }
        let outcome = if kind == "response" && body.len() > MAX_RESPONSE_BYTES {
            reply = error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "response exceeds 6291456 bytes",
            );
            Outcome::Error {
                error_type: "Function.ResponseSizeTooLarge".into(),
                body: json!({"errorMessage": format!("Response payload size ({} bytes) exceeded maximum allowed payload size (6291456 bytes).", body.len()), "errorType": "Function.ResponseSizeTooLarge"}),
            }
        } else if kind == "response" {
            Outcome::Response { body }
        } else {
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| json!({"errorMessage": String::from_utf8_lossy(&body)}));
            let error_type = error_type
                .or_else(|| value["errorType"].as_str().map(str::to_string))
                .unwrap_or_else(|| "Unhandled".into());
            Outcome::Error {
                error_type,
                body: value,
            }
        };
        rt.outcome = Some((outcome, Instant::now()));
    }
    shared.changed();
    reply
}

fn accepted() -> Reply {
    json_reply(StatusCode::ACCEPTED, &json!({"status": "OK"}))
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Reply {
    json_reply(
        status,
        &json!({"errorType": error_type, "errorMessage": message}),
    )
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}
