//! Delivery to AWS APIs (CloudWatch metrics, Security Hub, EventBridge): at least once,
//! with bounded memory.
//!
//! The pipeline hands items over synchronously (a push into a bounded queue per
//! destination, which keeps the most severe findings when full and counts what it gives up);
//! one background task sends them, retries failures with exponential backoff, and flushes
//! what it can before the SHUTDOWN deadline. A request cut short by a freeze fails on thaw
//! (its attempt timeout has passed) and is retried, so nothing is lost to a freeze.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_cloudwatch::types::MetricDatum;
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::function::MonitoredFunction;
use super::queue::{BoundedQueue, Queued};
use super::{cloudwatch, eventbridge, securityhub};
use crate::health::{Counter, Health};
use crate::schema::Finding;

/// First retry delay; doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Retry delay while flushing at SHUTDOWN.
const FLUSH_RETRY: Duration = Duration::from_millis(100);
/// Metric datums held at most (a few hours of windows for one function).
const MAX_DATUMS_QUEUED: usize = 5_000;

/// The AWS clients in use (each optional).
pub struct Clients {
    /// PutMetricData, and the namespace.
    pub cloudwatch: Option<(aws_sdk_cloudwatch::Client, String)>,
    /// BatchImportFindings.
    pub security_hub: Option<aws_sdk_securityhub::Client>,
    /// PutEvents, and the bus.
    pub event_bridge: Option<(aws_sdk_eventbridge::Client, String)>,
}

/// One destination's queue and retry state.
struct Lane<T> {
    queue: BoundedQueue<T>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl<T> Lane<T> {
    fn new(capacity: usize) -> Self {
        Lane {
            queue: BoundedQueue::new(capacity),
            failures: 0,
            retry_at: None,
        }
    }

    fn ready(&self, now: Instant) -> bool {
        !self.queue.is_empty() && self.retry_at.is_none_or(|t| t <= now)
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    fn failed(&mut self, now: Instant, flushing: bool) {
        self.failures = self.failures.saturating_add(1);
        let backoff = if flushing {
            // The deadline is near: try again soon, but never in a busy loop.
            FLUSH_RETRY
        } else {
            FIRST_BACKOFF
                .saturating_mul(1 << self.failures.min(8).saturating_sub(1))
                .min(MAX_BACKOFF)
        };
        self.retry_at = Some(now + backoff);
    }
}

struct State {
    metrics: Lane<MetricDatum>,
    security_hub: Lane<Arc<Finding>>,
    event_bridge: Lane<Arc<Finding>>,
    target: MonitoredFunction,
    flush: Option<(Instant, oneshot::Sender<()>)>,
    closed: bool,
}

/// The pipeline's side of the delivery task.
#[derive(Clone)]
pub struct Forwarder {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    health: Arc<Health>,
    wants_metrics: bool,
    wants_findings: bool,
}

impl Forwarder {
    /// Starts the delivery task on the current tokio runtime.
    pub fn start(
        clients: Clients,
        target: MonitoredFunction,
        queue_max: usize,
        health: Arc<Health>,
    ) -> Forwarder {
        let state = Arc::new(Mutex::new(State {
            metrics: Lane::new(MAX_DATUMS_QUEUED),
            security_hub: Lane::new(queue_max),
            event_bridge: Lane::new(queue_max),
            target,
            flush: None,
            closed: false,
        }));
        let f = Forwarder {
            state,
            wake: Arc::new(Notify::new()),
            health,
            wants_metrics: clients.cloudwatch.is_some(),
            wants_findings: clients.security_hub.is_some() || clients.event_bridge.is_some(),
        };
        tokio::spawn(run(f.clone(), clients));
        f
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account id, once the registration has told it.
    pub fn set_account(&self, account: &str) {
        self.lock().target.account = account.to_string();
        self.wake.notify_one();
    }

    /// Whether metric datums are wanted (PutMetricData is on).
    pub fn wants_metrics(&self) -> bool {
        self.wants_metrics
    }

    /// Queues metric datums.
    pub fn metrics(&self, datums: Vec<MetricDatum>) {
        if !self.wants_metrics || datums.is_empty() {
            return;
        }
        let dropped = {
            let mut st = self.lock();
            datums
                .into_iter()
                .filter_map(|d| st.metrics.queue.push(0, d))
                .count()
        };
        if dropped > 0 {
            self.health.add(Counter::MetricsDropped, dropped as u64);
        }
        self.wake.notify_one();
    }

    /// Queues a finding for Security Hub and EventBridge.
    pub fn finding(&self, f: &Finding) {
        if !self.wants_findings {
            return;
        }
        let f = Arc::new(f.clone());
        let rank = f.severity.ocsf_id();
        let dropped = {
            let mut st = self.lock();
            let a = st.security_hub.queue.push(rank, f.clone()).is_some();
            let b = st.event_bridge.queue.push(rank, f).is_some();
            a || b
        };
        if dropped {
            self.health.note(
                Counter::FindingsDropped,
                format_args!("delivery queue full: the least severe finding was dropped"),
            );
        }
        self.wake.notify_one();
    }

    /// Sends what is queued, ignoring backoff, until everything is out or `until` passes;
    /// what is left then is counted as dropped.
    pub async fn flush(&self, until: Instant) {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.lock();
            st.flush = Some((until, tx));
            st.metrics.retry_at = None;
            st.security_hub.retry_at = None;
            st.event_bridge.retry_at = None;
        }
        self.wake.notify_one();
        let _ = tokio::time::timeout_at(until + Duration::from_millis(50), rx).await;
        let mut st = self.lock();
        st.closed = true;
        let findings =
            st.security_hub.queue.drain_all().len() + st.event_bridge.queue.drain_all().len();
        let datums = st.metrics.queue.drain_all().len();
        drop(st);
        self.health.add(Counter::FindingsDropped, findings as u64);
        self.health.add(Counter::MetricsDropped, datums as u64);
    }
}

/// What one pass of the task sends.
enum Work {
    Metrics(Vec<Queued<MetricDatum>>),
    SecurityHub(Vec<Queued<Arc<Finding>>>, MonitoredFunction),
    EventBridge(Vec<Queued<Arc<Finding>>>, MonitoredFunction),
}

async fn run(f: Forwarder, clients: Clients) {
    loop {
        let (work, wait) = next_work(&f);
        match work {
            Some(w) => send(&f, &clients, w).await,
            None => {
                if f.lock().closed {
                    return;
                }
                match wait {
                    Some(at) => {
                        tokio::select! {
                            _ = f.wake.notified() => {}
                            _ = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => f.wake.notified().await,
                }
            }
        }
    }
}

/// The next batch to send, or when to look again.
fn next_work(f: &Forwarder) -> (Option<Work>, Option<Instant>) {
    let mut st = f.lock();
    let now = Instant::now();
    let flushing = st.flush.is_some();
    if st.flush.as_ref().is_some_and(|(until, _)| now >= *until) || (flushing && all_empty(&st)) {
        if let Some((_, done)) = st.flush.take() {
            let _ = done.send(());
        }
        return (None, None);
    }
    if st.metrics.ready(now) {
        let n = cloudwatch::MAX_DATUMS;
        return (Some(Work::Metrics(st.metrics.queue.take(n))), None);
    }
    let has_account = !st.target.account.is_empty();
    if has_account && st.security_hub.ready(now) {
        let batch = st.security_hub.queue.take(securityhub::MAX_BATCH);
        return (Some(Work::SecurityHub(batch, st.target.clone())), None);
    }
    if st.event_bridge.ready(now) {
        let batch = st.event_bridge.queue.take(eventbridge::MAX_BATCH);
        return (Some(Work::EventBridge(batch, st.target.clone())), None);
    }
    let next = [
        &st.metrics.retry_at,
        &st.security_hub.retry_at,
        &st.event_bridge.retry_at,
    ]
    .into_iter()
    .flatten()
    .min()
    .copied();
    let next = match (&st.flush, next) {
        (Some((until, _)), Some(at)) => Some(at.min(*until)),
        (Some((until, _)), None) => Some(*until),
        (None, next) => next,
    };
    (None, next)
}

fn all_empty(st: &State) -> bool {
    st.metrics.queue.is_empty()
        && st.event_bridge.queue.is_empty()
        && (st.security_hub.queue.is_empty() || st.target.account.is_empty())
}

async fn send(f: &Forwarder, clients: &Clients, work: Work) {
    match work {
        Work::Metrics(batch) => {
            let Some((client, namespace)) = &clients.cloudwatch else {
                return;
            };
            let datums: Vec<MetricDatum> = batch.iter().map(|q| q.item.clone()).collect();
            let n = datums.len() as u64;
            let result = client
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(datums))
                .send()
                .await;
            match result {
                Ok(_) => {
                    f.health.add(Counter::MetricDatumsSent, n);
                    f.lock().metrics.succeeded();
                }
                Err(e) => {
                    failed(f, "PutMetricData", &DisplayErrorContext(&e).to_string());
                    let mut st = f.lock();
                    let flushing = st.flush.is_some();
                    st.metrics.failed(Instant::now(), flushing);
                    let lost = st.metrics.queue.put_back(batch).len();
                    drop(st);
                    f.health.add(Counter::MetricsDropped, lost as u64);
                }
            }
        }
        Work::SecurityHub(batch, target) => {
            let Some(client) = &clients.security_hub else {
                return;
            };
            let findings = batch
                .iter()
                .map(|q| securityhub::asff(&q.item, &target))
                .collect();
            let result = client
                .batch_import_findings()
                .set_findings(Some(findings))
                .send()
                .await;
            let retry: Vec<Queued<Arc<Finding>>> = match result {
                Ok(out) => {
                    let failed_ids: Vec<&str> = out
                        .failed_findings()
                        .iter()
                        .filter_map(|e| e.id())
                        .collect();
                    if !failed_ids.is_empty() {
                        failed(
                            f,
                            "BatchImportFindings",
                            &format!("{} findings refused", failed_ids.len()),
                        );
                    }
                    let (again, done): (Vec<_>, Vec<_>) = batch
                        .into_iter()
                        .partition(|q| failed_ids.contains(&q.item.id.as_str()));
                    f.health.add(Counter::FindingsForwarded, done.len() as u64);
                    again
                }
                Err(e) => {
                    failed(
                        f,
                        "BatchImportFindings",
                        &DisplayErrorContext(&e).to_string(),
                    );
                    batch
                }
            };
            requeue(f, retry, |st| &mut st.security_hub);
        }
        Work::EventBridge(batch, target) => {
            let Some((client, bus)) = &clients.event_bridge else {
                return;
            };
            let entries = batch
                .iter()
                .map(|q| eventbridge::entry(&q.item, &target, bus))
                .collect();
            let result = client.put_events().set_entries(Some(entries)).send().await;
            let retry: Vec<Queued<Arc<Finding>>> = match result {
                Ok(out) if out.failed_entry_count() == 0 => {
                    f.health.add(Counter::FindingsForwarded, batch.len() as u64);
                    Vec::new()
                }
                Ok(out) => {
                    failed(
                        f,
                        "PutEvents",
                        &format!("{} entries refused", out.failed_entry_count()),
                    );
                    // Entries answer in request order; the failed ones carry an error code.
                    let results = out.entries();
                    batch
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| results.get(*i).is_none_or(|r| r.error_code().is_some()))
                        .map(|(_, q)| q)
                        .collect()
                }
                Err(e) => {
                    failed(f, "PutEvents", &DisplayErrorContext(&e).to_string());
                    batch
                }
            };
            requeue(f, retry, |st| &mut st.event_bridge);
        }
    }
}

fn requeue(
    f: &Forwarder,
    retry: Vec<Queued<Arc<Finding>>>,
    lane: impl Fn(&mut State) -> &mut Lane<Arc<Finding>>,
) {
    let mut st = f.lock();
    let flushing = st.flush.is_some();
    let lane = lane(&mut st);
    if retry.is_empty() {
        lane.succeeded();
        return;
    }
    lane.failed(Instant::now(), flushing);
    let lost = lane.queue.put_back(retry).len();
    drop(st);
    f.health.add(Counter::FindingsDropped, lost as u64);
}

fn failed(f: &Forwarder, api: &str, detail: &str) {
    f.health.note(
        Counter::SinkErrors,
        format_args!("{api} failed: {detail}; retrying with backoff"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AwsEnv, Secret};
    use crate::schema::Class;
    use crate::schema::Severity;
    use crate::testing::finding_of;

    fn test_target() -> MonitoredFunction {
        MonitoredFunction {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            function: "f".into(),
        }
    }

    fn dead_endpoint_clients() -> Clients {
        // A port nothing listens on: every send fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let env = AwsEnv {
            region: Some("us-east-1".into()),
            access_key_id: Some("testing".into()),
            secret_access_key: Secret("testing".into()),
            session_token: None,
            endpoint_url: Some(format!("http://127.0.0.1:{port}")),
        };
        let sdk = crate::aws::sdk_config(&env).unwrap();
        Clients {
            cloudwatch: None,
            security_hub: Some(aws_sdk_securityhub::Client::new(&sdk)),
            event_bridge: None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_of_ten_thousand_findings_stays_bounded_and_keeps_the_most_severe() {
        let health = Arc::new(Health::default());
        let target = test_target();
        let fw = Forwarder::start(dead_endpoint_clients(), target, 64, health.clone());
        for i in 0..10_000u32 {
            let severity = if i % 100 == 0 {
                Severity::Critical
            } else {
                Severity::Low
            };
            let mut f = finding_of(Class::Anomaly, severity);
            f.id = format!("wf-{i}");
            fw.finding(&f);
        }
        {
            let st = fw.lock();
            assert!(st.security_hub.queue.len() <= 64, "bounded");
        }
        let dropped = health.get(Counter::FindingsDropped);
        assert!(
            dropped >= 10_000 - 64,
            "what did not fit is counted: {dropped}"
        );
        let mut st = fw.lock();
        let kept = st.security_hub.queue.drain_all();
        let critical = kept
            .iter()
            .filter(|f| f.severity == Severity::Critical)
            .count();
        assert!(
            critical >= 64 - 1,
            "the 100 critical findings win the places: {critical}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn flush_gives_up_at_the_deadline_and_counts_what_is_left() {
        let health = Arc::new(Health::default());
        let target = test_target();
        let fw = Forwarder::start(dead_endpoint_clients(), target, 16, health.clone());
        fw.finding(&finding_of(Class::Dropper, Severity::High));
        fw.flush(Instant::now() + Duration::from_millis(400)).await;
        assert_eq!(health.get(Counter::FindingsDropped), 1);
        assert!(health.get(Counter::SinkErrors) >= 1);
        assert!(
            health.get(Counter::SinkErrors) < 20,
            "retries are paced, not a busy loop"
        );
    }
}
