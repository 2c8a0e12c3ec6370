//! Where scored invocations and findings go after the detector: metric windows (EMF lines on
//! stdout, or PutMetricData) and the security tools (Security Hub, EventBridge).

use std::io::Write;
use std::sync::Arc;

use tokio::time::Instant;

use super::forward::{Clients, Forwarder};
use super::function::MonitoredFunction;
use super::metrics::Window;
use super::{cloudwatch, emf};
use crate::clock::unix_ms;
use crate::config::{Config, MetricsMode};
use crate::health::{Counter, Health};
use crate::schema::Finding;
use crate::schema::Severity;

/// See the module docs.
pub struct Outputs {
    mode: MetricsMode,
    namespace: String,
    function: String,
    version: String,
    window: Window,
    out: Box<dyn Write + Send>,
    forwarder: Option<Forwarder>,
    forward_severity: Severity,
    health: Arc<Health>,
}

impl Outputs {
    /// The outputs the settings ask for. Must run inside the tokio runtime when an AWS
    /// destination is on (it starts the delivery task).
    pub fn from_config(
        config: &Config,
        health: Arc<Health>,
        out: Box<dyn Write + Send>,
    ) -> Outputs {
        let o = &config.outputs;
        let forwarder = forwarder(config, &health);
        let mode = match (o.metrics, &forwarder) {
            (MetricsMode::Api, Some(f)) if f.wants_metrics() => MetricsMode::Api,
            // PutMetricData without AWS access: EMF keeps the metrics flowing.
            (MetricsMode::Api, _) => MetricsMode::Emf,
            (m, _) => m,
        };
        Outputs {
            mode,
            namespace: o.namespace.clone(),
            function: config.lambda.function_name.clone(),
            version: config.lambda.function_version.clone(),
            window: Window::new(unix_ms(), health.snapshot()),
            out,
            forwarder,
            forward_severity: o.forward_severity,
            health,
        }
    }

    /// The delivery task's handle, if one runs.
    pub fn forwarder(&self) -> Option<&Forwarder> {
        self.forwarder.as_ref()
    }

    /// One scored invocation.
    pub fn scored(&mut self, score: f32, warden_cpu_us: u64, warden_rss_kb: u64) {
        self.window.scored(score, warden_cpu_us, warden_rss_kb);
        self.close_if_due();
    }

    /// One finding, already written to the log.
    pub fn finding(&mut self, f: &Finding) {
        self.window.finding(f);
        if f.severity >= self.forward_severity {
            if let Some(fw) = &self.forwarder {
                fw.finding(f);
            }
        }
        self.close_if_due();
    }

    /// Closes the window (at shutdown) whatever its age.
    pub fn close(&mut self) {
        let health = self.health.snapshot();
        if !self.window.is_empty(&health) {
            self.publish(health);
        }
    }

    fn close_if_due(&mut self) {
        if self.window.due(unix_ms()) {
            self.publish(self.health.snapshot());
        }
    }

    fn publish(&mut self, health: crate::health::HealthSnapshot) {
        let batch = self.window.close(unix_ms(), health);
        match self.mode {
            MetricsMode::Off => {}
            MetricsMode::Emf => {
                for line in emf::lines(&batch, &self.namespace, &self.function, &self.version) {
                    // One write per line, so that concurrent output cannot split it.
                    let ok = self.out.write_all(format!("{line}\n").as_bytes()).is_ok();
                    if !ok {
                        self.health
                            .note(Counter::SinkErrors, format_args!("EMF line not written"));
                    }
                }
                let _ = self.out.flush();
            }
            MetricsMode::Api => {
                if let Some(fw) = &self.forwarder {
                    let datums = cloudwatch::datums(&batch, &self.function, &self.version);
                    for request in cloudwatch::requests(datums) {
                        fw.metrics(request);
                    }
                }
            }
        }
    }

    /// Sends what is queued for AWS until `until`.
    pub async fn flush(&self, until: Instant) {
        if let Some(fw) = &self.forwarder {
            fw.flush(until).await;
        }
    }
}

/// The delivery task, when a destination that needs the AWS API is on and usable.
fn forwarder(config: &Config, health: &Arc<Health>) -> Option<Forwarder> {
    let o = &config.outputs;
    let wanted = o.metrics == MetricsMode::Api || o.security_hub || o.event_bus.is_some();
    if !wanted {
        return None;
    }
    let sdk = match crate::aws::sdk_config(&o.aws) {
        Ok(sdk) => sdk,
        Err(e) => {
            health.note(
                Counter::SinkErrors,
                format_args!("AWS destinations off: {e}"),
            );
            return None;
        }
    };
    let clients = Clients {
        cloudwatch: (o.metrics == MetricsMode::Api)
            .then(|| (aws_sdk_cloudwatch::Client::new(&sdk), o.namespace.clone())),
        security_hub: o
            .security_hub
            .then(|| aws_sdk_securityhub::Client::new(&sdk)),
        event_bridge: o
            .event_bus
            .as_ref()
            .map(|bus| (aws_sdk_eventbridge::Client::new(&sdk), bus.clone())),
    };
    let target = MonitoredFunction {
        region: o.aws.region.clone().unwrap_or_default(),
        account: String::new(),
        function: config.lambda.function_name.clone(),
    };
    Some(Forwarder::start(
        clients,
        target,
        o.queue_max,
        health.clone(),
    ))
}
