//! The HTTP endpoint the Telemetry API POSTs batches to.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::events::TelemetryEvent;
use super::guard::{weight, Admission, Admitted, Connections, PathToken, QueueBytes};
use super::parse::parse_batch;
use super::subscribe::MAX_BATCH_BYTES;
use crate::health::{Counter, Health};

/// Largest body read: Lambda sends at most about twice the subscription's maxBytes; the
/// margin covers one log record at its 256 KiB truncation limit.
pub const MAX_BODY_BYTES: usize = 2 * MAX_BATCH_BYTES + 256 * 1024;
/// Most connections open at once (Lambda uses one at a time).
pub const MAX_CONNECTIONS: usize = 16;
/// How long a connection may stay open before a request on it shows the token: slow or
/// silent clients (slowloris, hoarded descriptors) are closed after this. Lambda sends its
/// request as soon as it connects; its kept-alive connection is trusted from then on and
/// never timed out, so a freeze cannot close it under the platform.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of parsed telemetry waiting for the pipeline.
pub const QUEUE_BUDGET_BYTES: usize = 4 * 1024 * 1024;
/// The name the subscription's destination uses, which Lambda resolves to the address it
/// delivers to.
pub const SANDBOX_HOST: &str = "sandbox.localdomain";
/// Longest wait for the name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_millis(500);

/// What the listener enforces; [`Settings::new`] has the defaults above.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The path Lambda POSTs to.
    pub token: PathToken,
    /// Largest body read.
    pub max_body_bytes: usize,
    /// Most connections open.
    pub max_connections: usize,
    /// Deadline for a connection's first trusted request.
    pub first_request_timeout: Duration,
    /// Byte budget of the queue to the pipeline.
    pub queue_budget_bytes: usize,
}

impl Settings {
    /// The defaults, with `token`.
    pub fn new(token: PathToken) -> Settings {
        Settings {
            token,
            max_body_bytes: MAX_BODY_BYTES,
            max_connections: MAX_CONNECTIONS,
            first_request_timeout: FIRST_REQUEST_TIMEOUT,
            queue_budget_bytes: QUEUE_BUDGET_BYTES,
        }
    }
}

/// The address to listen on: where `sandbox.localdomain` points (the address Lambda
/// delivers to), or every interface when the name does not resolve (said once in the log).
pub async fn listen_addr(port: u16) -> SocketAddr {
    let lookup = tokio::net::lookup_host((SANDBOX_HOST, port));
    let found = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs.find(SocketAddr::is_ipv4),
        _ => None,
    };
    found.unwrap_or_else(|| {
        crate::info!("{SANDBOX_HOST} does not resolve; telemetry listener on all interfaces");
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    })
}

/// Binds the listener where the Telemetry API delivers (see [`listen_addr`]).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    let addr = listen_addr(port).await;
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        // The resolved address is not this host's after all: every interface still works.
        Err(_) if !addr.ip().is_unspecified() => {
            crate::info!("cannot bind {addr}; telemetry listener on all interfaces");
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await
        }
        Err(e) => Err(e),
    }
}

/// What every connection shares.
struct Shared {
    tx: mpsc::Sender<Vec<TelemetryEvent>>,
    health: Arc<Health>,
    settings: Settings,
    queued: QueueBytes,
    connections: Connections,
}

/// Accepts connections until the task is dropped; parsed batches go to `tx`, charged to
/// `queued` (the pipeline releases them).
pub async fn serve(
    listener: TcpListener,
    tx: mpsc::Sender<Vec<TelemetryEvent>>,
    health: Arc<Health>,
    settings: Settings,
    queued: QueueBytes,
) {
    let shared = Arc::new(Shared {
        tx,
        health,
        connections: Connections::new(settings.max_connections),
        settings,
        queued,
    });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE: back off briefly instead of spinning.
                shared.health.note(
                    Counter::SubscribeErrors,
                    format_args!("telemetry accept failed: {e}"),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let admitted = match shared.connections.admit() {
            Admission::Admitted(a) => a,
            Admission::Replaced(a) => {
                shared.health.note(
                    Counter::ConnectionsReplaced,
                    format_args!(
                        "more than {} telemetry connections; the oldest without a valid request closed",
                        shared.settings.max_connections
                    ),
                );
                a
            }
            Admission::Refused => {
                shared.health.note(
                    Counter::ConnectionsReplaced,
                    format_args!("telemetry connection refused: every slot is the platform's"),
                );
                continue;
            }
        };
        tokio::spawn(connection(stream, admitted, shared.clone()));
    }
}

/// Serves one connection until it ends, is replaced, or misses its first-request deadline.
async fn connection(stream: TcpStream, admitted: Admitted, shared: Arc<Shared>) {
    let trusted = admitted.trusted.clone();
    let service = {
        let (shared, trusted) = (shared.clone(), trusted.clone());
        service_fn(move |req| {
            let (shared, trusted) = (shared.clone(), trusted.clone());
            async move { Ok::<_, Infallible>(handle(req, &shared, &trusted).await) }
        })
    };
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(shared.settings.first_request_timeout);
    tokio::pin!(deadline);
    let mut timed = true;
    loop {
        tokio::select! {
            result = &mut conn => {
                if let Err(e) = result {
                    crate::debug!("telemetry connection ended: {e}");
                }
                break;
            }
            _ = &mut deadline, if timed => {
                if trusted.load(Ordering::Relaxed) {
                    timed = false;
                    continue;
                }
                shared.health.note(
                    Counter::ConnectionsClosed,
                    format_args!("telemetry connection closed: no valid request within {:?}", shared.settings.first_request_timeout),
                );
                break;
            }
            _ = admitted.close.notified() => break,
        }
    }
    shared.connections.leave(admitted.id);
}

async fn handle(
    req: Request<Incoming>,
    shared: &Shared,
    trusted: &std::sync::atomic::AtomicBool,
) -> Response<Empty<Bytes>> {
    if !shared.settings.token.matches(req.uri().path()) {
        reject(shared);
        let mut resp = Response::new(Empty::new());
        *resp.status_mut() = StatusCode::NOT_FOUND;
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return resp;
    }
    trusted.store(true, Ordering::Relaxed);
    match Limited::new(req.into_body(), shared.settings.max_body_bytes)
        .collect()
        .await
    {
        Ok(body) => accept_batch(
            &body.to_bytes(),
            &shared.tx,
            &shared.health,
            &shared.queued,
            shared.settings.queue_budget_bytes,
        ),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => shared.health.note(
            Counter::TelemetryTooLarge,
            format_args!(
                "telemetry body over {} bytes dropped",
                shared.settings.max_body_bytes
            ),
        ),
        Err(e) => shared.health.note(
            Counter::TelemetryParseErrors,
            format_args!("telemetry body could not be read: {e}"),
        ),
    }
    // Always 200 to the platform, whatever the batch held: any other status makes Lambda
    // re-send the same batch, so one bad or unknown record would come back forever and
    // hold up the stream.
    Response::new(Empty::new())
}

/// A request without the token: counted, and reported to the pipeline as tampering.
fn reject(shared: &Shared) {
    shared.health.note(
        Counter::TelemetryRejected,
        format_args!("telemetry request without the subscription's token refused (404)"),
    );
    let forged = vec![TelemetryEvent::Forged];
    let bytes = weight(&forged);
    if shared
        .queued
        .charge(bytes, shared.settings.queue_budget_bytes)
        && shared.tx.try_send(forged).is_err()
    {
        shared.queued.release(bytes);
    }
}

/// Parses a batch and queues its events, counting what was odd about it. The batch is
/// charged to `queued` and dropped (counted) when it would take the queue over `budget`.
pub fn accept_batch(
    body: &[u8],
    tx: &mpsc::Sender<Vec<TelemetryEvent>>,
    health: &Health,
    queued: &QueueBytes,
    budget: usize,
) {
    let mut events = Vec::new();
    let outcome = match catch_unwind(AssertUnwindSafe(|| parse_batch(body, &mut events))) {
        Ok(outcome) => outcome,
        Err(_) => {
            health.note(
                Counter::StagePanics,
                format_args!("telemetry parser panicked; batch skipped"),
            );
            return;
        }
    };
    health.add(Counter::TelemetryBatches, 1);
    health.add(Counter::TelemetryRecords, outcome.events);
    if outcome.unknown > 0 {
        let kind = events.iter().find_map(|e| match e {
            TelemetryEvent::Unknown { event_type, .. } => Some(event_type.as_str()),
            _ => None,
        });
        health.note(
            Counter::TelemetryUnknown,
            format_args!(
                "telemetry type {:?} is unknown; kept as opaque",
                kind.unwrap_or("?")
            ),
        );
        health.add(Counter::TelemetryUnknown, outcome.unknown - 1);
    }
    if outcome.parse_errors > 0 {
        health.note(
            Counter::TelemetryParseErrors,
            format_args!(
                "telemetry batch held {} unparsable item(s)",
                outcome.parse_errors
            ),
        );
        health.add(Counter::TelemetryParseErrors, outcome.parse_errors - 1);
    }
    if events.is_empty() {
        return;
    }
    let bytes = weight(&events);
    if !queued.charge(bytes, budget) {
        health.note(
            Counter::TelemetryOverBudget,
            format_args!("telemetry queue holds {budget} bytes; batch dropped"),
        );
        return;
    }
    if let Err(e) = tx.try_send(events) {
        queued.release(bytes);
        if let mpsc::error::TrySendError::Full(_) = e {
            health.note(
                Counter::QueueFull,
                format_args!("telemetry queue full; batch dropped"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
