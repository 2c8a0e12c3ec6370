//! The two Extensions/Telemetry API calls the crate does not make for us.

use hyper::Request;
use lambda_extension::requests::{exit_error as exit_error_request, ErrorRequest};
use lambda_extension::{Error, LogBuffering};
use lambda_runtime_api_client::{body::Body, build_request, PooledClient};
use serde_json::json;

const EXTENSION_ID_HEADER: &str = "Lambda-Extension-Identifier";
const EXIT_ERROR_TYPE: &str = "Extension.TestError";

async fn call(request: Request<Body>, what: &str) -> Result<(), Error> {
    let response = PooledClient::builder().build().call(request).await?;
    if !response.status().is_success() {
        return Err(format!("{what} answered {}", response.status()).into());
    }
    Ok(())
}

/// Subscribes to the Telemetry API with HTTP delivery to our own listener.
pub(crate) async fn subscribe(
    extension_id: &str,
    port: u16,
    types: &[&str],
    buffering: LogBuffering,
) -> Result<(), Error> {
    let body = json!({
        "schemaVersion": "2022-07-01",
        "types": types,
        "buffering": buffering,
        "destination": {
            "protocol": "HTTP",
            "URI": format!("http://sandbox.localdomain:{port}"),
        },
    });
    let request = build_request()
        .method("PUT")
        .uri("/2022-07-01/telemetry")
        .header(EXTENSION_ID_HEADER, extension_id)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_string()))?;
    call(request, "telemetry subscribe").await
}

/// Reports a deliberate extension failure; the caller then exits.
pub(crate) async fn exit_error(extension_id: &str) -> Result<(), Error> {
    let request = exit_error_request(
        extension_id,
        EXIT_ERROR_TYPE,
        Some(ErrorRequest {
            error_message: "reference extension exits on request",
            error_type: EXIT_ERROR_TYPE,
            stack_trace: Vec::new(),
        }),
    )?;
    call(request, "exit/error").await
}
