//! Fleet learning, the protected function's side: its profile read at init from the S3
//! object the profiler keeps up to date (`WARDEN_PROFILE=s3://bucket/key`), so that a new
//! execution environment starts warmed, without a redeploy (docs/fleet-learning.md).
//!
//! - [`object`]: the object's format and checks, shared with the profiler that writes it.
//! - [`store`]: the two S3 calls, `GetObject` and `HeadObject`, on the SDK's runtime.
//! - [`cache`]: the environment's own copy in the scratch directory.
//!
//! Every failure is an error for the caller to log once and count: the environment then
//! learns as it would without a profile, and the function is never affected.

pub mod cache;
pub mod object;
pub mod store;

use std::time::Duration;

use cache::Cache;
use object::{Decoded, ObjectError};
use store::{StoreError, S3};

/// A profile read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The object's content and hash.
    pub object: Decoded,
    /// Read from the environment's copy (S3 vouched for it) rather than downloaded.
    pub from_cache: bool,
}

/// Why no profile was loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// S3 could not be asked: no region or credentials in the environment.
    #[error("no AWS region or credentials in the environment")]
    NoAws,
    /// The request failed: S3 unreachable, the object missing, access denied.
    #[error("S3 request failed: {0}")]
    Unavailable(String),
    /// No answer within the deadline.
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// The object was read but cannot be used.
    #[error(transparent)]
    Rejected(#[from] ObjectError),
}

impl LoadError {
    /// Whether the object was there but refused (rather than not had at all).
    pub fn is_rejection(&self) -> bool {
        matches!(self, LoadError::Rejected(_))
    }
}

impl From<StoreError> for LoadError {
    fn from(e: StoreError) -> LoadError {
        match e {
            StoreError::Request(message) => LoadError::Unavailable(message),
            StoreError::Object(e) => LoadError::Rejected(e),
        }
    }
}

/// Where the profile is, and whose it must be.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The object's key.
    pub key: &'a str,
    /// This function's name: the profile must name it.
    pub function: &'a str,
    /// Longest time the whole load may take.
    pub deadline: Duration,
}

/// Reads `function`'s profile object within the deadline. A copy in `cache` is used when S3
/// says the object's hash is the copy's; otherwise the object is downloaded, checked, and
/// the copy replaced.
pub async fn load(
    s3: Option<&S3>,
    request: &Request<'_>,
    cache: Option<&Cache>,
) -> Result<Loaded, LoadError> {
    let s3 = s3.ok_or(LoadError::NoAws)?;
    match tokio::time::timeout(request.deadline, load_now(s3, request, cache)).await {
        Ok(result) => result,
        Err(_) => Err(LoadError::TimedOut(request.deadline)),
    }
}

async fn load_now(
    s3: &S3,
    request: &Request<'_>,
    cache: Option<&Cache>,
) -> Result<Loaded, LoadError> {
    let copy = cache.and_then(Cache::read);
    if let Some(copy) = copy {
        // The copy is only as good as S3's word on the object's hash now.
        let current = s3.sha256(request.bucket, request.key).await?;
        if let (Some(current), Ok(object)) = (current, object::decode(&copy, request.function)) {
            if object.sha256.eq_ignore_ascii_case(&current) {
                return Ok(Loaded {
                    object,
                    from_cache: true,
                });
            }
        }
    }
    let fetched = s3.get(request.bucket, request.key).await?;
    let object = object::decode(&fetched.body, request.function)?;
    if let Some(stated) = &fetched.sha256 {
        if !stated.eq_ignore_ascii_case(&object.sha256) {
            return Err(ObjectError::Hash.into());
        }
    }
    if let Some(cache) = cache {
        if let Err(e) = cache.write(&fetched.body) {
            crate::debug!("the profile's copy was not kept ({e})");
        }
    }
    Ok(Loaded {
        object,
        from_cache: false,
    })
}
