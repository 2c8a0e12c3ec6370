//! One AWS SDK configuration for every client Warden uses, built from what Lambda puts in
//! the environment (region, the role's credentials, an optional `AWS_ENDPOINT_URL`).
//!
//! aws-config is left out on purpose: its credential chain pulls STS and SSO clients that a
//! Lambda extension never needs, and they would double the layer's size.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
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
    let (Some(region), Some(credentials)) = (&env.region, environment_credentials(env)) else {
        return Err(AwsError::NoEnvironment);
    };
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(ATTEMPT_TIMEOUT)
        .build();
    // The SDK's default HTTPS client (rustls, aws-lc), with a resolver that counts.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_with_resolver(CountingResolver);
    let mut builder = SdkConfig::builder()
        .http_client(http)
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

/// Resolves as the SDK's default client does (the system resolver, off the runtime's
/// threads) and notes each resolution: the HTTP client resolves once per connection it
/// opens, so Warden's own connections can be left out of the function's counters.
#[derive(Debug, Clone, Copy)]
struct CountingResolver;

impl ResolveDns for CountingResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        let name = name.to_string();
        DnsFuture::new(async move {
            let found = tokio::task::spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
                    .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
            })
            .await;
            match found {
                Ok(Ok(ips)) => {
                    // Noted as late as possible: the connection follows at once.
                    crate::sources::procfs::own_traffic::note_connect(&ips);
                    Ok(ips)
                }
                Ok(Err(e)) => Err(ResolveDnsError::new(e)),
                Err(join) => Err(ResolveDnsError::new(std::io::Error::other(join))),
            }
        })
    }
}

/// The role's credentials as Lambda hands them to every process of the environment; `None`
/// without an access key.
pub(crate) fn environment_credentials(env: &AwsEnv) -> Option<Credentials> {
    let key = env.access_key_id.as_ref()?;
    Some(Credentials::new(
        key.clone(),
        env.secret_access_key.0.clone(),
        env.session_token.as_ref().map(|t| t.0.clone()),
        None,
        "lambda-environment",
    ))
}
