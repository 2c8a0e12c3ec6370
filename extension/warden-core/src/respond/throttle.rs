//! Throttling, the last resort: the function's reserved concurrency set to 0 with
//! `lambda:PutFunctionConcurrency`, so no new invocation runs anywhere until someone undoes
//! it (`aws lambda delete-function-concurrency`). At most one call per interval per
//! environment; the call runs in its own task and never holds the pipeline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::AwsEnv;
use crate::health::{Counter, Health};

/// Why no call is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleError {
    /// A call was made less than the interval ago.
    #[error("throttled {0} s ago; at most one call per {1} s")]
    TooSoon(u64, u64),
    /// No function name in the environment.
    #[error("AWS_LAMBDA_FUNCTION_NAME is not set")]
    NoFunction,
    /// No region or credentials.
    #[error("no AWS region or credentials in the environment")]
    NoAws,
    /// Not inside a tokio runtime.
    #[error("no async runtime to send the call on")]
    NoRuntime,
}

/// The rate limiter and the (lazily built) Lambda client.
#[derive(Debug)]
pub struct Throttle {
    function_name: String,
    interval: Duration,
    aws: AwsEnv,
    last: Option<Instant>,
    client: Option<aws_sdk_lambda::Client>,
    health: Arc<Health>,
}

impl Throttle {
    /// A throttle for `function_name`.
    pub fn new(function_name: &str, interval: Duration, aws: AwsEnv, health: Arc<Health>) -> Self {
        Throttle {
            function_name: function_name.to_string(),
            interval,
            aws,
            last: None,
            client: None,
            health,
        }
    }

    /// Whether a call may go out now (no side effect).
    pub fn check(&self, now: Instant) -> Result<(), ThrottleError> {
        if self.function_name.is_empty() {
            return Err(ThrottleError::NoFunction);
        }
        if !self.aws.usable() {
            return Err(ThrottleError::NoAws);
        }
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                Err(ThrottleError::TooSoon(
                    now.saturating_duration_since(t).as_secs(),
                    self.interval.as_secs(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Issues `PutFunctionConcurrency(0)` in a task; the result is logged when it arrives.
    pub fn issue(&mut self, now: Instant) -> Result<(), ThrottleError> {
        self.check(now)?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| ThrottleError::NoRuntime)?;
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let sdk = crate::aws::sdk_config(&self.aws).map_err(|_| ThrottleError::NoAws)?;
                let c = aws_sdk_lambda::Client::new(&sdk);
                self.client = Some(c.clone());
                c
            }
        };
        self.last = Some(now);
        let (name, health) = (self.function_name.clone(), self.health.clone());
        handle.spawn(async move {
            let sent = client
                .put_function_concurrency()
                .function_name(&name)
                .reserved_concurrent_executions(0)
                .send()
                .await;
            match sent {
                Ok(_) => crate::warn!("throttle: reserved concurrency of {name} set to 0"),
                Err(e) => health.note(
                    Counter::ResponsesFailed,
                    format_args!(
                        "throttle: PutFunctionConcurrency on {name} failed: {}",
                        aws_sdk_lambda::error::DisplayErrorContext(&e)
                    ),
                ),
            }
        });
        Ok(())
    }
}
