//! `warden-profiler`: the fleet's profiler, a Lambda function run on a schedule
//! (docs/fleet-learning.md). For each protected function it reads the records that
//! function's Warden signed in its log group, learns its profile by the promotion rule, and
//! writes it to S3, where every new execution environment's Warden reads it at init
//! (`WARDEN_PROFILE=s3://…`).
//!
//! - `settings`: its environment.
//! - `learn`: one function's profile from its records.
//! - `store`: the S3 calls.
//! - `metrics`: profile age and learning state, as EMF lines.

mod learn;
mod metrics;
mod settings;
mod store;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_types::sdk_config::SdkConfig;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

use learn::Learned;
use metrics::ProfileState;
use settings::Settings;
use warden_core::config::AwsEnv;
use warden_learn::cloudwatch_logs::{read_records, LogQuery, MAX_EVENTS};
use warden_learn::dataset::{Skipped, Trust};

/// What every invocation shares.
struct Profiler {
    settings: Settings,
    sdk: SdkConfig,
    s3: aws_sdk_s3::Client,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings = Settings::from_lookup(|name| std::env::var(name).ok())
        .context("warden-profiler settings")?;
    let env = AwsEnv::from_lookup(&|name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| &*Box::leak(v.into_boxed_str()))
    });
    let sdk = warden_core::aws::sdk_config(&env).context("AWS access")?;
    let s3 = store::client(&sdk);
    let profiler = Arc::new(Profiler { settings, sdk, s3 });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let profiler = profiler.clone();
        async move { profiler.run(event).await }
    }))
    .await
}

impl Profiler {
    /// One scheduled run: every function in turn. Fails (so that the schedule's failure shows
    /// in the profiler's `Errors` metric) when any function could not be read or written,
    /// after doing the others.
    async fn run(&self, _event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
        let mut report = Vec::new();
        let mut failed = Vec::new();
        for function in &self.settings.functions {
            match self.profile(function).await {
                Ok(done) => report.push(done),
                Err(e) => {
                    eprintln!("warden-profiler: {function}: {e:#}");
                    failed.push(format!("{function}: {e:#}"));
                    report.push(json!({"function": function, "error": format!("{e:#}")}));
                }
            }
        }
        if !failed.is_empty() {
            return Err(failed.join("; ").into());
        }
        Ok(json!({ "functions": report }))
    }

    /// Learns one function's profile, writes it when there is one, and prints its metrics.
    async fn profile(&self, function: &str) -> anyhow::Result<Value> {
        let s = &self.settings;
        let now_ms = unix_ms();
        let key = s.object_key(function);
        let query = LogQuery {
            group: s.log_group(function),
            start_ms: Some(now_ms as i64 - (s.lookback_hours as i64) * 3_600_000),
            end_ms: None,
            max_events: MAX_EVENTS,
        };
        // Only records the deployment's Warden signed: nothing the function prints is learned.
        let trust = Trust::Signed {
            key: Some(s.record_key.clone()),
            accept_unsigned: false,
        };
        let mut skipped = Skipped::default();
        let records = read_records(&self.sdk, &query, &trust, &mut skipped).await?;
        let (events, flagged) = (records.events, records.flagged.len());
        let learned = learn::learn(function, records, s.min_environments, s.policy, now_ms);
        let (state, written) = match learned {
            Learned::Profile(content) => {
                let object = warden_core::fleet::object::encode(&content)?;
                let version = store::put(&self.s3, &s.bucket, &key, &object).await?;
                let state = ProfileState {
                    age_seconds: Some(0),
                    invocations: content.profile.invocations,
                    environments: content.environments,
                    learning: false,
                };
                let written = json!({
                    "key": key, "sha256": object.sha256, "version": version,
                    "bytes": object.bytes.len(),
                    "known_exes": content.profile.known_exes,
                    "shell_shapes": content.profile.shell_shapes,
                });
                (state, Some(written))
            }
            Learned::Learning {
                invocations,
                environments,
            } => {
                // The profile already there (if any) stays; it ages.
                let last = store::last_written(&self.s3, &s.bucket, &key).await?;
                let state = ProfileState {
                    age_seconds: last.map(|t| (now_ms / 1000).saturating_sub(t.max(0) as u64)),
                    invocations,
                    environments,
                    learning: last.is_none(),
                };
                (state, None)
            }
        };
        println!(
            "{}",
            metrics::emf_line(&s.namespace, function, &state, now_ms)
        );
        Ok(json!({
            "function": function,
            "log_events": events,
            "refused": {"unsigned": skipped.unsigned, "forged": skipped.forged},
            "flagged_invocations": flagged,
            "invocations": state.invocations,
            "environments": state.environments,
            "learning": state.learning,
            "age_seconds": state.age_seconds,
            "written": written,
        }))
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
