//! The two S3 calls a protected function's Warden makes for its profile, `GetObject` and
//! `HeadObject` (both allowed by `s3:GetObject` alone), on the AWS SDK's own runtime: the
//! SDK's HTTPS client (with the resolver that keeps Warden's connections out of the
//! function's counters), its timeouts, and a request signed with its SigV4 signer.
//!
//! Not through `aws-sdk-s3`: that client's endpoint rules, checksum algorithms and URL
//! handling would add about a quarter to the layer, over its size bound, for one GET.

use std::borrow::Cow;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::sdk_config::SdkConfig;

use super::object::{ObjectError, MAX_OBJECT_BYTES, SHA256_METADATA};
use crate::config::AwsEnv;

/// Why the object could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request failed: S3 unreachable, the object missing, access denied.
    #[error("{0}")]
    Request(String),
    /// The object is over the bound.
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

/// Where the calls go and who signs them.
#[derive(Debug, Clone)]
pub struct S3 {
    sdk: SdkConfig,
    region: String,
    credentials: Credentials,
    /// `AWS_ENDPOINT_URL`: buckets are then addressed by path, which every S3-compatible
    /// server (a VPC endpoint, a local test server) understands.
    endpoint: Option<String>,
}

impl S3 {
    /// The client for the function's role, region and endpoint; `None` without them.
    pub fn new(sdk: &SdkConfig, env: &AwsEnv) -> Option<S3> {
        let region = env.region.as_ref()?;
        let credentials = crate::aws::environment_credentials(env)?;
        Some(S3 {
            sdk: sdk.clone(),
            region: region.clone(),
            credentials,
            endpoint: env.endpoint_url.clone(),
        })
    }

    /// The object's bytes, refused past [`MAX_OBJECT_BYTES`]: only that many (and one more)
    /// are asked for, so a larger object is never transferred whole.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Fetched, StoreError> {
        let range = format!("bytes=0-{MAX_OBJECT_BYTES}");
        let answer = self
            .call("GET", "GetObject", bucket, key, Some(range))
            .await?;
        let total = answer
            .content_range
            .as_deref()
            .and_then(|r| r.rsplit_once('/'))
            .and_then(|(_, total)| total.parse::<u64>().ok());
        match total {
            Some(bytes) if bytes > MAX_OBJECT_BYTES as u64 => {
                return Err(ObjectError::TooLarge { bytes }.into())
            }
            _ if answer.body.len() > MAX_OBJECT_BYTES => {
                let bytes = answer.body.len() as u64;
                return Err(ObjectError::TooLarge { bytes }.into());
            }
            _ => {}
        }
        Ok(Fetched {
            body: answer.body,
            sha256: answer.sha256,
        })
    }

    /// The object's metadata `sha256` (`None`: it has none).
    pub async fn sha256(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .call("HEAD", "HeadObject", bucket, key, None)
            .await?
            .sha256)
    }

    async fn call(
        &self,
        method: &'static str,
        operation: &'static str,
        bucket: &str,
        key: &str,
        range: Option<String>,
    ) -> Result<Answer, StoreError> {
        let (endpoint, path) = self.address(bucket, key);
        let http = self
            .sdk
            .http_client()
            .ok_or_else(|| StoreError::Request("no HTTP client".into()))?;
        let timeouts = self
            .sdk
            .timeout_config()
            .cloned()
            .unwrap_or_else(|| TimeoutConfig::builder().build());
        let op = Operation::builder()
            .service_name("s3")
            .operation_name(operation)
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(&endpoint)
            .no_retry()
            .no_auth()
            .timeout_config(timeouts)
            .interceptor(Signer {
                region: self.region.clone(),
                identity: self.credentials.clone().into(),
            })
            .serializer(move |(): ()| {
                let mut request = HttpRequest::get(path.as_str())?;
                request.set_method(method)?;
                if let Some(range) = &range {
                    request.headers_mut().insert("range", range.clone());
                }
                Ok(request)
            })
            .deserializer(answer)
            .build();
        op.invoke(())
            .await
            .map_err(|e| StoreError::Request(DisplayErrorContext(e).to_string()))
    }

    /// The endpoint and the request's path: by host name on AWS (by path for a bucket whose
    /// name has dots, which its certificate does not cover), by path with an endpoint set.
    fn address(&self, bucket: &str, key: &str) -> (String, String) {
        let key = encode_key(key);
        if let Some(endpoint) = &self.endpoint {
            return (
                endpoint.trim_end_matches('/').to_string(),
                format!("/{bucket}/{key}"),
            );
        }
        let domain = if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        if bucket.contains('.') {
            (
                format!("https://s3.{}.{domain}", self.region),
                format!("/{bucket}/{key}"),
            )
        } else {
            (
                format!("https://{bucket}.s3.{}.{domain}", self.region),
                format!("/{key}"),
            )
        }
    }
}

/// An object key as S3 expects it in a path: every byte but unreserved ones and `/`
/// percent-encoded.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a successful call returned.
#[derive(Debug)]
struct Answer {
    body: Vec<u8>,
    sha256: Option<String>,
    content_range: Option<String>,
}

/// An answer other than success, with S3's error code when it gave one.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
struct Refused {
    status: u16,
    code: Option<String>,
}

fn answer(response: &HttpResponse) -> Result<Answer, OrchestratorError<Refused>> {
    let status = response.status().as_u16();
    let body = response.body().bytes().unwrap_or_default();
    if !(200..300).contains(&status) {
        // <Error><Code>NoSuchKey</Code>…: the code alone says enough.
        let text = String::from_utf8_lossy(body);
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.chars().take(64).collect());
        return Err(OrchestratorError::operation(Refused { status, code }));
    }
    let header = |name: &str| response.headers().get(name).map(str::to_string);
    Ok(Answer {
        body: body.to_vec(),
        sha256: header(&format!("x-amz-meta-{SHA256_METADATA}")),
        content_range: header("content-range"),
    })
}

/// Signs the request as it is about to go out (its endpoint applied), with SigV4 for S3.
#[derive(Debug)]
struct Signer {
    region: String,
    identity: Identity,
}

impl Intercept for Signer {
    fn name(&self) -> &'static str {
        "WardenS3Signer"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let mut settings = SigningSettings::default();
        // S3 signs the path as sent (no double encoding, no normalisation) and wants the
        // payload's hash in a header.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signable = SignableRequest::new(
            request.method(),
            Cow::Owned(request.uri().to_string()),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&[]),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let signed: Vec<(String, String)> = instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (name, value) in signed {
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(region: &str, endpoint: Option<&str>) -> S3 {
        let env = AwsEnv {
            region: Some(region.into()),
            access_key_id: Some("AKIDEXAMPLE".into()),
            endpoint_url: endpoint.map(str::to_string),
            ..AwsEnv::default()
        };
        let sdk = crate::aws::sdk_config(&AwsEnv {
            secret_access_key: crate::config::Secret("secret".into()),
            ..env.clone()
        })
        .unwrap();
        S3::new(&sdk, &env).unwrap()
    }

    #[test]
    fn objects_are_addressed_by_host_name_on_aws_and_by_path_elsewhere() {
        let aws = s3("eu-west-1", None);
        assert_eq!(
            aws.address("fleet-profiles", "warden/profiles/orders api.json"),
            (
                "https://fleet-profiles.s3.eu-west-1.amazonaws.com".to_string(),
                "/warden/profiles/orders%20api.json".to_string()
            )
        );
        assert_eq!(
            aws.address("fleet.profiles", "a.json").0,
            "https://s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            s3("cn-north-1", None).address("b", "k").0,
            "https://b.s3.cn-north-1.amazonaws.com.cn"
        );
        let local = s3("us-east-1", Some("http://host.sandbox:4566/"));
        assert_eq!(
            local.address("b", "warden/x+y.json"),
            (
                "http://host.sandbox:4566".to_string(),
                "/b/warden/x%2By.json".to_string()
            )
        );
    }
}
