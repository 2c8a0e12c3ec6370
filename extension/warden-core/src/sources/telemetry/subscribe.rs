//! Subscribing to the Telemetry API. The request is built by a pure function so it can be
//! checked without a network.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};

/// Telemetry API path.
pub const TELEMETRY_PATH: &str = "/2022-07-01/telemetry";
/// Record schema requested: the first with initReport status and restore events.
pub const SCHEMA_VERSION: &str = "2022-12-13";
/// The subscription's `maxBytes`: Lambda's smallest batches in bytes (the listener's body
/// bound follows from it).
pub const MAX_BATCH_BYTES: usize = 262_144;
/// Header carrying the id from registration.
pub const EXTENSION_ID_HEADER: &str = "Lambda-Extension-Identifier";

/// Why the subscription failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The request could not be built (bad runtime API address).
    #[error("building the subscription request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The API could not be reached.
    #[error("sending the subscription request: {0}")]
    Send(#[from] hyper_util::client::legacy::Error),
    /// The API refused.
    #[error("the Telemetry API answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
}

/// Builds the PUT that subscribes to platform, function and extension events, delivered
/// by HTTP to `sandbox.localdomain:port` at `path` (the listener's token) with the smallest
/// batching delay Lambda allows.
pub fn subscribe_request(
    runtime_api: &str,
    extension_id: &str,
    destination: &Destination<'_>,
    buffer_ms: u64,
) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let Destination { port, path } = destination;
    let body = serde_json::json!({
        "schemaVersion": SCHEMA_VERSION,
        "types": ["platform", "function", "extension"],
        "buffering": {"maxItems": 1000, "maxBytes": MAX_BATCH_BYTES, "timeoutMs": buffer_ms},
        "destination": {"protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}{path}")},
    });
    Request::builder()
        .method(Method::PUT)
        .uri(format!("http://{runtime_api}{TELEMETRY_PATH}"))
        .header(EXTENSION_ID_HEADER, extension_id)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
}

/// Where Lambda delivers: the listener's port and its path token.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// Listener port.
    pub port: u16,
    /// Request path, starting with `/`.
    pub path: &'a str,
}

/// Sends the subscription; 200 (Lambda) and 202 (local emulators) both count as success.
pub async fn subscribe(
    runtime_api: &str,
    extension_id: &str,
    destination: &Destination<'_>,
    buffer_ms: u64,
) -> Result<(), SubscribeError> {
    let request = subscribe_request(runtime_api, extension_id, destination, buffer_ms)?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let response = client.request(request).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| {
            String::from_utf8_lossy(&b.to_bytes())
                .chars()
                .take(200)
                .collect()
        })
        .unwrap_or_default();
    Err(SubscribeError::Refused {
        status: status.as_u16(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_matches_the_telemetry_api() {
        let to = Destination {
            port: 9317,
            path: "/t/abc",
        };
        let req = subscribe_request("127.0.0.1:9001", "ext-1", &to, 25).unwrap();
        assert_eq!(req.method(), Method::PUT);
        assert_eq!(req.uri(), "http://127.0.0.1:9001/2022-07-01/telemetry");
        assert_eq!(req.headers()[EXTENSION_ID_HEADER], "ext-1");
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["schemaVersion"], "2022-12-13");
        assert_eq!(
            json["types"],
            serde_json::json!(["platform", "function", "extension"])
        );
        assert_eq!(json["buffering"]["timeoutMs"], 25);
        assert_eq!(
            json["destination"]["URI"],
            "http://sandbox.localdomain:9317/t/abc"
        );
        assert_eq!(json["buffering"]["maxBytes"], 262_144);
    }

    #[test]
    fn bad_address_is_an_error_not_a_panic() {
        let to = Destination { port: 1, path: "/" };
        assert!(subscribe_request("bad host:x", "id", &to, 25).is_err());
    }
}
