//! The HTTP endpoint the Telemetry API POSTs batches to.

use std::convert::Infallible;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::events::TelemetryEvent;
use super::parse::parse_batch;
use crate::health::{Counter, Health};

/// Largest body read. Lambda sends at most about twice the subscription's maxBytes
/// (256 KiB here); the margin covers other settings.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Binds the listener on all interfaces (the Telemetry API connects to
/// `sandbox.localdomain`, which is not necessarily loopback).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("0.0.0.0", port)).await
}

/// Accepts connections until the task is dropped; parsed batches go to `tx`.
pub async fn serve(
    listener: TcpListener,
    tx: mpsc::Sender<Vec<TelemetryEvent>>,
    health: Arc<Health>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE: back off briefly instead of spinning.
                health.note(
                    Counter::SubscribeErrors,
                    format_args!("telemetry accept failed: {e}"),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (tx, health) = (tx.clone(), health.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, tx.clone(), health.clone()));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                crate::debug!("telemetry connection ended: {e}");
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    tx: mpsc::Sender<Vec<TelemetryEvent>>,
    health: Arc<Health>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => accept_batch(&body.to_bytes(), &tx, &health),
        Err(e) => health.note(
            Counter::TelemetryParseErrors,
            format_args!("telemetry body could not be read: {e}"),
        ),
    }
    // Always 200, whatever the batch held: any other status makes Lambda re-send the same
    // batch, so one bad or unknown record would come back forever and hold up the stream.
    Ok(Response::new(Empty::new()))
}

/// Parses a batch and queues its events, counting what was odd about it.
pub fn accept_batch(body: &[u8], tx: &mpsc::Sender<Vec<TelemetryEvent>>, health: &Health) {
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
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(events) {
        health.note(
            Counter::QueueFull,
            format_args!("telemetry queue full; batch dropped"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listener_answers_200_to_good_unknown_and_garbage_batches() {
        let listener = bind(0).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, mut rx) = mpsc::channel(8);
        let health = Arc::new(Health::default());
        tokio::spawn(serve(listener, tx, health.clone()));

        let bodies = [
            r#"[{"time":"t","type":"platform.start","record":{"requestId":"a"}}]"#,
            r#"[{"time":"t","type":"platform.somethingNew","record":{}}]"#,
            "this is not json",
        ];
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<Bytes>>();
        for body in bodies {
            let req = Request::post(format!("http://127.0.0.1:{port}/"))
                .body(http_body_util::Full::new(Bytes::from(body)))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            assert_eq!(resp.status(), 200, "{body}");
        }
        let first = rx.recv().await.unwrap();
        assert_eq!(
            first,
            vec![TelemetryEvent::Start {
                request_id: "a".into()
            }]
        );
        let second = rx.recv().await.unwrap();
        assert!(matches!(second[0], TelemetryEvent::Unknown { .. }));
        assert_eq!(health.get(Counter::TelemetryUnknown), 1);
        assert_eq!(health.get(Counter::TelemetryParseErrors), 1);
        assert_eq!(health.get(Counter::TelemetryBatches), 3);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let (tx, _rx) = mpsc::channel(1);
        let health = Health::default();
        let body = br#"[{"time":"t","type":"platform.start","record":{"requestId":"a"}}]"#;
        accept_batch(body, &tx, &health);
        accept_batch(body, &tx, &health);
        assert_eq!(health.get(Counter::QueueFull), 1);
    }
}
