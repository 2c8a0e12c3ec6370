use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::*;

const START_A: &str = r#"[{"time":"t","type":"platform.start","record":{"requestId":"a"}}]"#;

struct Running {
    port: u16,
    token: PathToken,
    rx: mpsc::Receiver<Vec<TelemetryEvent>>,
    health: Arc<Health>,
    queued: QueueBytes,
}

async fn start(adjust: impl FnOnce(&mut Settings)) -> Running {
    let listener = bind(0).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = PathToken::from_bytes(&[7; 16]);
    let mut settings = Settings::new(token.clone());
    adjust(&mut settings);
    let (tx, rx) = mpsc::channel(8);
    let health = Arc::new(Health::default());
    let queued = QueueBytes::default();
    tokio::spawn(serve(
        listener,
        tx,
        health.clone(),
        settings,
        queued.clone(),
    ));
    Running {
        port,
        token,
        rx,
        health,
        queued,
    }
}

/// One POST on its own connection; the status, or 0 when the connection was closed first.
async fn post(port: u16, path: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: sandbox.localdomain\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).await.is_err() || s.write_all(body).await.is_err() {
        return 0;
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn listener_answers_200_to_good_unknown_and_garbage_batches() {
    let mut r = start(|_| {}).await;
    let bodies = [
        START_A,
        r#"[{"time":"t","type":"platform.somethingNew","record":{}}]"#,
        "this is not json",
    ];
    for body in bodies {
        assert_eq!(
            post(r.port, r.token.path(), body.as_bytes()).await,
            200,
            "{body}"
        );
    }
    let first = r.rx.recv().await.unwrap();
    assert_eq!(
        first,
        vec![TelemetryEvent::Start {
            request_id: "a".into()
        }]
    );
    let second = r.rx.recv().await.unwrap();
    assert!(matches!(second[0], TelemetryEvent::Unknown { .. }));
    assert_eq!(r.health.get(Counter::TelemetryUnknown), 1);
    assert_eq!(r.health.get(Counter::TelemetryParseErrors), 1);
    assert_eq!(r.health.get(Counter::TelemetryBatches), 3);
    assert!(r.queued.queued() > 0, "queued batches are charged");
}

#[tokio::test]
async fn requests_without_the_token_are_refused_counted_and_reported() {
    let mut r = start(|_| {}).await;
    let wrong = format!("{}0", &r.token.path()[..r.token.path().len() - 1]);
    for path in ["/", "/t/", wrong.as_str(), "/2022-07-01/telemetry"] {
        assert_eq!(post(r.port, path, START_A.as_bytes()).await, 404, "{path}");
    }
    assert_eq!(r.health.get(Counter::TelemetryRejected), 4);
    assert_eq!(r.health.get(Counter::TelemetryBatches), 0);
    // The pipeline hears of each refusal (it reports tampering), never of the forged body.
    for _ in 0..4 {
        assert_eq!(r.rx.recv().await.unwrap(), vec![TelemetryEvent::Forged]);
    }
    assert!(r.rx.try_recv().is_err());
}

#[tokio::test]
async fn an_oversized_body_is_dropped_with_200_and_counted() {
    let mut r = start(|s| s.max_body_bytes = 1024).await;
    let big = format!(
        r#"[{{"time":"t","type":"function","record":"{}"}}]"#,
        "x".repeat(4096)
    );
    assert_eq!(post(r.port, r.token.path(), big.as_bytes()).await, 200);
    assert_eq!(r.health.get(Counter::TelemetryTooLarge), 1);
    assert_eq!(post(r.port, r.token.path(), START_A.as_bytes()).await, 200);
    assert!(matches!(
        r.rx.recv().await.unwrap()[0],
        TelemetryEvent::Start { .. }
    ));
}

#[tokio::test]
async fn a_slow_client_is_closed_at_its_deadline() {
    let r = start(|s| s.first_request_timeout = Duration::from_millis(100)).await;
    let mut slow = TcpStream::connect(("127.0.0.1", r.port)).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), slow.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert_eq!(r.health.get(Counter::ConnectionsClosed), 1);
}

#[tokio::test]
async fn the_platform_gets_in_when_idle_connections_fill_the_table() {
    let mut r = start(|s| s.max_connections = 2).await;
    let mut hoarded = Vec::new();
    for _ in 0..4 {
        hoarded.push(TcpStream::connect(("127.0.0.1", r.port)).await.unwrap());
    }
    assert_eq!(post(r.port, r.token.path(), START_A.as_bytes()).await, 200);
    assert!(matches!(
        r.rx.recv().await.unwrap()[0],
        TelemetryEvent::Start { .. }
    ));
    assert!(r.health.get(Counter::ConnectionsReplaced) >= 3);
}

#[tokio::test]
async fn a_trusted_keep_alive_connection_outlives_the_deadline() {
    let mut r = start(|s| s.first_request_timeout = Duration::from_millis(50)).await;
    let mut s = TcpStream::connect(("127.0.0.1", r.port)).await.unwrap();
    for _ in 0..2 {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{START_A}",
            r.token.path(),
            START_A.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        assert!(r.rx.recv().await.is_some());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(r.health.get(Counter::ConnectionsClosed), 0);
}

#[test]
fn full_queue_drops_and_counts() {
    let (tx, _rx) = mpsc::channel(1);
    let health = Health::default();
    let queued = QueueBytes::default();
    accept_batch(START_A.as_bytes(), &tx, &health, &queued, usize::MAX);
    accept_batch(START_A.as_bytes(), &tx, &health, &queued, usize::MAX);
    assert_eq!(health.get(Counter::QueueFull), 1);
    assert_eq!(
        queued.queued(),
        weight(&[TelemetryEvent::Start {
            request_id: "a".into()
        }])
    );
}

#[test]
fn a_queue_over_its_byte_budget_drops_and_counts() {
    let (tx, _rx) = mpsc::channel(64);
    let health = Health::default();
    let queued = QueueBytes::default();
    let budget = 3 * weight(&[TelemetryEvent::Start {
        request_id: "a".into(),
    }]);
    for _ in 0..5 {
        accept_batch(START_A.as_bytes(), &tx, &health, &queued, budget);
    }
    assert_eq!(health.get(Counter::TelemetryOverBudget), 2);
    assert_eq!(queued.queued(), budget);
}
