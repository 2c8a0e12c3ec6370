//! The S3 calls a protected function's Warden makes for its profile: `GetObject` (and
//! `HeadObject`, which the same `s3:GetObject` permission allows), nothing else.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::Client;
use aws_types::sdk_config::SdkConfig;

use super::object::{ObjectError, MAX_OBJECT_BYTES, SHA256_METADATA};

/// Why the object could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request failed: S3 unreachable, the object missing, access denied.
    #[error("{0}")]
    Request(String),
    /// The object is over the bound (by its length, or by what its body turned out to hold).
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// What `GetObject` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The object's bytes.
    pub body: Vec<u8>,
    /// Its metadata `sha256`, when the profiler set one.
    pub sha256: Option<String>,
}

/// An S3 client on the shared configuration. With an endpoint override (a VPC endpoint, a
/// local test server) buckets are addressed by path, which every S3-compatible server
/// understands; otherwise by host name, as S3 prefers.
pub fn client(sdk: &SdkConfig) -> Client {
    let path_style = sdk.endpoint_url().is_some();
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    Client::from_conf(config)
}

/// The object's bytes, refused past [`MAX_OBJECT_BYTES`] without reading further.
pub async fn get(client: &Client, bucket: &str, key: &str) -> Result<Fetched, StoreError> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| StoreError::Request(DisplayErrorContext(e).to_string()))?;
    let too_large = |bytes: u64| StoreError::Object(ObjectError::TooLarge { bytes });
    if let Some(length) = out
        .content_length()
        .filter(|n| *n > MAX_OBJECT_BYTES as i64)
    {
        return Err(too_large(length as u64));
    }
    let sha256 = out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned();
    let mut body = out.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| StoreError::Request(e.to_string()))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_OBJECT_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
    }
    Ok(Fetched {
        body: bytes,
        sha256,
    })
}

/// The object's metadata `sha256` (`None`: it has none).
pub async fn sha256(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let out = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| StoreError::Request(DisplayErrorContext(e).to_string()))?;
    Ok(out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned())
}
