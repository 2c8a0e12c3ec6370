//! One AWS SDK configuration for every client Warden uses, built from what Lambda puts in
//! the environment (region, the role's credentials, an optional `AWS_ENDPOINT_URL`).
//!
//! aws-config is left out on purpose: its credential chain pulls STS and SSO clients that a
//! Lambda extension never needs, and they would double the layer's size.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;
use aws_types::sdk_config::SdkConfig;

use crate::config::AwsEnv;

/// One attempt's longest time: a frozen or unreachable endpoint must not hold a send for long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_500);
/// Connecting's longest time.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Why no AWS client could be built.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// Region or credentials are missing from the environment.
    #[error("AWS_REGION and the role's credentials are not in the environment")]
    NoEnvironment,
}

/// The shared SDK configuration. Retries inside the SDK are off: Warden's delivery queue
/// retries with its own backoff, so that a slow endpoint never stacks retries.
pub fn sdk_config(env: &AwsEnv) -> Result<SdkConfig, AwsError> {
    if !env.usable() {
        return Err(AwsError::NoEnvironment);
    }
    let (Some(region), Some(key)) = (&env.region, &env.access_key_id) else {
        return Err(AwsError::NoEnvironment);
    };
    let credentials = Credentials::new(
        key.clone(),
        env.secret_access_key.0.clone(),
        env.session_token.as_ref().map(|t| t.0.clone()),
        None,
        "lambda-environment",
    );
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(ATTEMPT_TIMEOUT)
        .build();
    let mut builder = SdkConfig::builder()
        .region(Region::new(region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest());
    if let Some(url) = &env.endpoint_url {
        builder = builder.endpoint_url(url.clone());
    }
    Ok(builder.build())
}
