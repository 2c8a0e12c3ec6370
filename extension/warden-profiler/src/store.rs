//! The profiler's S3 calls: `PutObject` of a function's profile under the prefix, and
//! `HeadObject` of the one there (its age, when this run writes none).

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_types::sdk_config::SdkConfig;

use warden_core::fleet::object::{Encoded, SHA256_METADATA};

/// An S3 call that failed.
#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {message}")]
pub(crate) struct StoreError {
    bucket: String,
    key: String,
    message: String,
}

/// An S3 client on the shared configuration. With an endpoint override (a VPC endpoint, a
/// local test server) buckets are addressed by path, which every S3-compatible server
/// understands; otherwise by host name, as S3 prefers.
pub(crate) fn client(sdk: &SdkConfig) -> Client {
    let path_style = sdk.endpoint_url().is_some();
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    Client::from_conf(config)
}

fn error(bucket: &str, key: &str, e: impl std::error::Error) -> StoreError {
    StoreError {
        bucket: bucket.into(),
        key: key.into(),
        message: DisplayErrorContext(e).to_string(),
    }
}

/// Writes the object, with its content hash as metadata; returns the new version's id (the
/// bucket is versioned, so the previous profile stays recoverable).
pub(crate) async fn put(
    client: &Client,
    bucket: &str,
    key: &str,
    object: &Encoded,
) -> Result<Option<String>, StoreError> {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .metadata(SHA256_METADATA, &object.sha256)
        .body(ByteStream::from(object.bytes.clone()))
        .send()
        .await
        .map_err(|e| error(bucket, key, e))?;
    Ok(out.version_id().map(str::to_string))
}

/// When the object was last written (Unix seconds); `None` when there is none.
pub(crate) async fn last_written(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(out.last_modified().map(|t| t.secs())),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e) => Err(error(bucket, key, e)),
    }
}
