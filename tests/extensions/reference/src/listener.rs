//! Telemetry listener used when dumping: stores each record exactly as received and
//! always answers 200 so the platform never retries a batch.

use crate::dump::Dump;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Binds before subscribing, so the first batch always finds us listening.
pub(crate) async fn start(port: u16, dump: Arc<Dump>) -> io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    let dump = dump.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| receive(dump.clone(), req));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
                Err(err) => {
                    eprintln!("reference-extension: telemetry accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    Ok(())
}

async fn receive(
    dump: Arc<Dump>,
    request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    match request.into_body().collect().await {
        Ok(body) => store_batch(&dump, &body.to_bytes()),
        Err(err) => eprintln!("reference-extension: telemetry body failed: {err}"),
    }
    Ok(Response::new(Empty::new()))
}

fn store_batch(dump: &Dump, body: &[u8]) {
    let records: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(records) => records,
        Err(err) => {
            eprintln!("reference-extension: telemetry batch is not a JSON array: {err}");
            return;
        }
    };
    for record in records {
        dump.write_line(&telemetry_line(record));
    }
}

/// Keeps the sender's bytes. Raw newlines in valid JSON are only whitespace, so turning
/// them into spaces keeps one record per line without changing its meaning.
fn telemetry_line(record: &RawValue) -> String {
    let raw = record.get();
    if raw.contains('\n') {
        format!(
            r#"{{"kind":"telemetry","record":{}}}"#,
            raw.replace('\n', " ")
        )
    } else {
        format!(r#"{{"kind":"telemetry","record":{raw}}}"#)
    }
}
