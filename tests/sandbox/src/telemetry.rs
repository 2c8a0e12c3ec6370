//! Telemetry API: subscriptions, per-subscriber buffering and HTTP delivery of JSON arrays.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::clock;

pub const SCHEMA_VERSIONS: [&str; 3] = ["2022-07-01", "2022-12-13", "2025-01-29"];
const MAX_ITEMS: (u64, u64) = (1_000, 10_000);
const MAX_BYTES: (u64, u64) = (262_144, 1_048_576);
const TIMEOUT_MS: (u64, u64) = (25, 30_000);
/// A subscriber that falls this far behind (in multiples of maxBytes) starts losing records.
const BACKLOG_FACTOR: usize = 4;

/// The event kinds a subscription can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Platform,
    Function,
    Extension,
}

impl Kind {
    fn of(event_type: &str) -> Kind {
        match event_type {
            "function" => Kind::Function,
            "extension" => Kind::Extension,
            _ => Kind::Platform,
        }
    }
}

/// A subscription request body, as the Telemetry API takes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    pub schema_version: String,
    pub types: Vec<String>,
    #[serde(default)]
    pub buffering: Option<BufferingRequest>,
    pub destination: Destination,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BufferingRequest {
    pub max_items: Option<u64>,
    pub max_bytes: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Destination {
    pub protocol: String,
    #[serde(rename = "URI")]
    pub uri: String,
}

/// Validated buffering settings.
#[derive(Debug, Clone, Copy)]
pub struct Buffering {
    pub max_items: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Why a subscription was refused (HTTP 400 with this message).
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("unsupported schemaVersion {0}")]
    Schema(String),
    #[error("unknown telemetry type {0}; expected platform, function or extension")]
    Type(String),
    #[error("{name} must be in {min}..={max}, got {value}")]
    Range {
        name: &'static str,
        min: u64,
        max: u64,
        value: u64,
    },
    #[error("destination protocol {0} is not supported here; use HTTP")]
    Protocol(String),
    #[error("destination URI {0} must be http://sandbox.localdomain:PORT")]
    Uri(String),
}

fn in_range(
    name: &'static str,
    value: Option<u64>,
    range: (u64, u64),
    default: u64,
) -> Result<u64, SubscribeError> {
    let value = value.unwrap_or(default);
    if value < range.0 || value > range.1 {
        return Err(SubscribeError::Range {
            name,
            min: range.0,
            max: range.1,
            value,
        });
    }
    Ok(value)
}

impl SubscribeRequest {
    /// Checks the request as Lambda does, returning the kinds and buffering to use.
    pub fn validate(&self) -> Result<(Vec<Kind>, Buffering, String), SubscribeError> {
        if !SCHEMA_VERSIONS.contains(&self.schema_version.as_str()) {
            return Err(SubscribeError::Schema(self.schema_version.clone()));
        }
        let mut kinds = Vec::new();
        for t in &self.types {
            kinds.push(match t.as_str() {
                "platform" => Kind::Platform,
                "function" => Kind::Function,
                "extension" => Kind::Extension,
                other => return Err(SubscribeError::Type(other.to_string())),
            });
        }
        let b = self.buffering.as_ref();
        let buffering = Buffering {
            max_items: in_range("maxItems", b.and_then(|b| b.max_items), MAX_ITEMS, 10_000)?
                as usize,
            max_bytes: in_range("maxBytes", b.and_then(|b| b.max_bytes), MAX_BYTES, 262_144)?
                as usize,
            timeout: Duration::from_millis(in_range(
                "timeoutMs",
                b.and_then(|b| b.timeout_ms),
                TIMEOUT_MS,
                1_000,
            )?),
        };
        if !self.destination.protocol.eq_ignore_ascii_case("HTTP") {
            return Err(SubscribeError::Protocol(self.destination.protocol.clone()));
        }
        let target = delivery_target(&self.destination.uri)
            .ok_or_else(|| SubscribeError::Uri(self.destination.uri.clone()))?;
        Ok((kinds, buffering, target))
    }
}

/// Maps `http://sandbox.localdomain:PORT/path` to an address this process can reach.
fn delivery_target(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    match host {
        "sandbox.localdomain" | "sandbox" | "localhost" | "127.0.0.1" | "0.0.0.0" => {
            Some(format!("http://127.0.0.1:{port}{path}"))
        }
        _ => None,
    }
}

struct Item {
    body: String,
    queued_at: Instant,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    bytes: usize,
    dropped_records: u64,
    dropped_bytes: u64,
    in_flight: bool,
}

/// One extension's subscription and its buffer.
pub struct Subscriber {
    pub extension: String,
    kinds: Vec<Kind>,
    buffering: Buffering,
    target: String,
    queue: Mutex<Queue>,
    wake: Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl Subscriber {
    fn push(&self, event_type: &str, body: &str) {
        let kind = Kind::of(event_type);
        if !self.kinds.contains(&kind) {
            return;
        }
        let mut q = lock(&self.queue);
        q.bytes += body.len();
        q.items.push_back(Item {
            body: body.to_string(),
            queued_at: Instant::now(),
        });
        // A subscriber that does not keep up loses its oldest records, as on Lambda.
        while q.bytes > self.buffering.max_bytes * BACKLOG_FACTOR && q.items.len() > 1 {
            if let Some(old) = q.items.pop_front() {
                q.bytes -= old.body.len();
                q.dropped_records += 1;
                q.dropped_bytes += old.body.len() as u64;
            }
        }
        drop(q);
        self.wake.notify_one();
    }

    fn pending(&self) -> bool {
        let q = lock(&self.queue);
        !q.items.is_empty() || q.in_flight
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The environment's telemetry hub: fan-out to subscribers, with the init backlog kept for
/// extensions that subscribe during init.
pub struct Telemetry {
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    backlog: Mutex<Option<Vec<(String, String)>>>,
    frozen: watch::Receiver<bool>,
    flush_now: watch::Sender<u64>,
}

impl Telemetry {
    pub fn new(frozen: watch::Receiver<bool>) -> Arc<Telemetry> {
        Arc::new(Telemetry {
            subscribers: Mutex::new(Vec::new()),
            backlog: Mutex::new(Some(Vec::new())),
            frozen,
            flush_now: watch::channel(0).0,
        })
    }

    /// Publishes one event to every subscriber that asked for its kind.
    pub fn emit(&self, event_type: &str, record: Value) {
        let event = json!({"time": clock::rfc3339_now(), "type": event_type, "record": record});
        let body = event.to_string();
        if let Some(backlog) = lock(&self.backlog).as_mut() {
            backlog.push((event_type.to_string(), body.clone()));
        }
        for sub in lock(&self.subscribers).iter() {
            sub.push(event_type, &body);
        }
    }

    /// Starts a new environment instance: keeps init-phase events for late subscribers.
    pub fn begin_init(&self) {
        *lock(&self.backlog) = Some(Vec::new());
    }

    /// Init is over: later subscribers see only later events.
    pub fn end_init(&self) {
        *lock(&self.backlog) = None;
    }

    /// Drops every subscription (the extensions that made them are gone).
    pub fn reset(&self) {
        for sub in lock(&self.subscribers).drain(..) {
            sub.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            sub.wake.notify_one();
        }
    }

    /// Adds a subscription and starts its delivery task. Replaces an earlier one of the same
    /// extension.
    pub fn subscribe(
        self: &Arc<Self>,
        extension: &str,
        req: &SubscribeRequest,
    ) -> Result<Vec<String>, SubscribeError> {
        let (kinds, buffering, target) = req.validate()?;
        let sub = Arc::new(Subscriber {
            extension: extension.to_string(),
            kinds,
            buffering,
            target,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        if let Some(backlog) = lock(&self.backlog).as_ref() {
            for (t, body) in backlog {
                sub.push(t, body);
            }
        }
        {
            let mut subs = lock(&self.subscribers);
            for old in subs.iter().filter(|s| s.extension == extension) {
                old.closed.store(true, std::sync::atomic::Ordering::SeqCst);
                old.wake.notify_one();
            }
            subs.retain(|s| s.extension != extension);
            subs.push(sub.clone());
        }
        tokio::spawn(deliver(
            sub,
            self.frozen.clone(),
            self.flush_now.subscribe(),
        ));
        Ok(req.types.clone())
    }

    /// Asks every subscriber to send what it holds now, and waits until all queues are empty or
    /// the time is up.
    pub async fn flush(&self, within: Duration) {
        self.flush_now.send_modify(|n| *n += 1);
        let until = Instant::now() + within;
        while Instant::now() < until {
            let busy = lock(&self.subscribers).iter().any(|s| s.pending());
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// One subscriber's delivery loop: batch by maxItems/maxBytes/timeoutMs, POST, retry.
async fn deliver(
    sub: Arc<Subscriber>,
    mut frozen: watch::Receiver<bool>,
    mut flush: watch::Receiver<u64>,
) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build_http();
    let mut failures: u32 = 0;
    loop {
        if sub.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let oldest = lock(&sub.queue).items.front().map(|i| i.queued_at);
        let Some(oldest) = oldest else {
            tokio::select! {
                _ = sub.wake.notified() => {}
                _ = flush.changed() => {}
            }
            continue;
        };
        // Nothing runs in a frozen environment, deliveries included.
        while *frozen.borrow() {
            if frozen.changed().await.is_err() {
                return;
            }
        }
        let full = {
            let q = lock(&sub.queue);
            q.items.len() >= sub.buffering.max_items || q.bytes >= sub.buffering.max_bytes
        };
        let due = oldest + sub.buffering.timeout;
        let forced = flush.has_changed().unwrap_or(false);
        if !full && !forced && Instant::now() < due {
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = sub.wake.notified() => {}
                _ = flush.changed() => {}
                _ = frozen.changed() => {}
            }
            continue;
        }
        flush.mark_unchanged();
        let (batch, count) = take_batch(&sub);
        if count == 0 {
            continue;
        }
        let ok = post(&client, &sub.target, &batch).await;
        if settle(&sub, batch, ok) {
            failures = 0;
            continue;
        }
        failures = failures.saturating_add(1);
        let backoff = Duration::from_millis((25u64 << failures.min(3)).min(200));
        tokio::time::sleep(backoff).await;
    }
}

/// Records the result of a delivery; returns whether it succeeded.
fn settle(sub: &Subscriber, batch: Vec<Item>, ok: bool) -> bool {
    let mut q = lock(&sub.queue);
    q.in_flight = false;
    if !ok {
        // Put the batch back in front and retry with backoff; the backlog cap bounds memory.
        for item in batch.into_iter().rev() {
            q.bytes += item.body.len();
            q.items.push_front(item);
        }
        return false;
    }
    if q.dropped_records > 0 {
        let dropped = json!({
            "time": clock::rfc3339_now(),
            "type": "platform.logsDropped",
            "record": {
                "reason": "Consumer seems to have fallen behind as it has not acknowledged receipt of logs.",
                "droppedRecords": q.dropped_records,
                "droppedBytes": q.dropped_bytes,
            }
        })
        .to_string();
        q.dropped_records = 0;
        q.dropped_bytes = 0;
        q.bytes += dropped.len();
        q.items.push_front(Item {
            body: dropped,
            queued_at: Instant::now(),
        });
    }
    true
}

fn take_batch(sub: &Subscriber) -> (Vec<Item>, usize) {
    let mut q = lock(&sub.queue);
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(item) = q.items.front() {
        if !batch.is_empty()
            && (batch.len() >= sub.buffering.max_items
                || bytes + item.body.len() > sub.buffering.max_bytes)
        {
            break;
        }
        bytes += item.body.len();
        if let Some(item) = q.items.pop_front() {
            batch.push(item);
        }
    }
    q.bytes -= bytes;
    q.in_flight = !batch.is_empty();
    let n = batch.len();
    (batch, n)
}

async fn post<C>(client: &Client<C, Full<Bytes>>, target: &str, batch: &[Item]) -> bool
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut body = String::with_capacity(batch.iter().map(|i| i.body.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, item) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&item.body);
    }
    body.push(']');
    let request = hyper::Request::post(target)
        .header("content-type", "application/json")
        .header("host", "sandbox.localdomain")
        .body(Full::new(Bytes::from(body)));
    let Ok(request) = request else { return false };
    match tokio::time::timeout(Duration::from_secs(30), client.request(request)).await {
        Ok(Ok(resp)) => resp.status().is_success(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> SubscribeRequest {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn buffering_ranges_are_enforced() {
        let ok = request(
            r#"{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}"#,
        );
        assert!(ok.validate().is_ok());
        let low = request(
            r#"{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"timeoutMs":24},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}"#,
        );
        assert!(matches!(
            low.validate(),
            Err(SubscribeError::Range {
                name: "timeoutMs",
                ..
            })
        ));
        let items = request(
            r#"{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"maxItems":10001},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}"#,
        );
        assert!(matches!(
            items.validate(),
            Err(SubscribeError::Range {
                name: "maxItems",
                ..
            })
        ));
        let bytes = request(
            r#"{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"maxBytes":1000},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}"#,
        );
        assert!(matches!(
            bytes.validate(),
            Err(SubscribeError::Range {
                name: "maxBytes",
                ..
            })
        ));
    }

    #[test]
    fn unknown_schema_and_type_are_refused() {
        let schema = request(
            r#"{"schemaVersion":"2021-01-01","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}"#,
        );
        assert!(matches!(schema.validate(), Err(SubscribeError::Schema(_))));
        let kind = request(
            r#"{"schemaVersion":"2025-01-29","types":["metrics"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}"#,
        );
        assert!(matches!(kind.validate(), Err(SubscribeError::Type(_))));
    }

    #[test]
    fn sandbox_localdomain_resolves_to_loopback() {
        assert_eq!(
            delivery_target("http://sandbox.localdomain:4243/t").as_deref(),
            Some("http://127.0.0.1:4243/t")
        );
        assert_eq!(delivery_target("http://example.com:80"), None);
    }
}
