use super::*;
use tokio::net::TcpListener;

const INVOKE: &str = r#"{"eventType":"INVOKE","deadlineMs":1700000000000,"requestId":"req-1","invokedFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:f","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1"}}"#;
const SHUTDOWN: &str =
    r#"{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":1700000000000}"#;

fn with_length(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Extension-Event-Identifier: e\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn chunked(body: &str) -> String {
    let (a, b) = body.split_at(body.len() / 2);
    format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
}

/// A server that answers each request on a connection with the next response of its list,
/// sent in pieces of `piece` bytes; `close_after` responses per connection, then closes.
/// Returns the address and the requests it read.
async fn server(
    responses: Vec<String>,
    piece: usize,
    close_after: usize,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut responses = responses.into_iter();
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            for _ in 0..close_after {
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut b).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&b[..n]);
                }
                tx.send(String::from_utf8(req).unwrap()).unwrap();
                let Some(r) = responses.next() else { return };
                for part in r.as_bytes().chunks(piece) {
                    s.write_all(part).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    (addr, rx)
}

fn request_id(e: &NextEvent) -> &str {
    match e {
        NextEvent::Invoke(i) => &i.request_id,
        NextEvent::Shutdown(_) => "shutdown",
    }
}

#[tokio::test]
async fn reads_events_on_one_connection_with_any_framing() {
    let responses = vec![with_length(INVOKE), chunked(INVOKE), with_length(SHUTDOWN)];
    let (addr, mut requests) = server(responses, 7, 10).await;
    let mut client = EventsClient::new(&addr, "ext-id-1");
    assert_eq!(request_id(&client.next().await.unwrap()), "req-1");
    assert_eq!(request_id(&client.next().await.unwrap()), "req-1");
    match client.next().await.unwrap() {
        NextEvent::Shutdown(s) => assert_eq!(s.shutdown_reason, "spindown"),
        other => panic!("{other:?}"),
    }
    let first = requests.recv().await.unwrap();
    assert!(first.starts_with("GET /2020-01-01/extension/event/next HTTP/1.1\r\n"));
    assert!(first
        .to_ascii_lowercase()
        .contains("lambda-extension-identifier: ext-id-1\r\n"));
}

#[tokio::test]
async fn reconnects_when_the_server_closes_between_events() {
    // One response per connection, the first without keep-alive, the second kept but
    // closed by the server while idle.
    let close = format!(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{INVOKE}",
        INVOKE.len()
    );
    let (addr, _requests) = server(
        vec![close, with_length(INVOKE), with_length(SHUTDOWN)],
        4096,
        1,
    )
    .await;
    let mut client = EventsClient::new(&addr, "id");
    for _ in 0..2 {
        assert_eq!(request_id(&client.next().await.unwrap()), "req-1");
    }
    assert!(matches!(
        client.next().await.unwrap(),
        NextEvent::Shutdown(_)
    ));
}

#[tokio::test]
async fn a_body_without_length_ends_with_the_connection() {
    let raw = format!("HTTP/1.1 200 OK\r\n\r\n{INVOKE}");
    let (addr, _r) = server(vec![raw], 5, 1).await;
    let mut client = EventsClient::new(&addr, "id");
    assert_eq!(request_id(&client.next().await.unwrap()), "req-1");
}

#[tokio::test]
async fn errors_are_errors_not_panics() {
    let refused = "HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\n\r\nnot yours!!!".to_string();
    let garbage = with_length("{\"eventType\":\"REBOOT\"}");
    let (addr, _r) = server(vec![refused, garbage, "NOT HTTP\r\n\r\n".into()], 4096, 10).await;
    let mut client = EventsClient::new(&addr, "id");
    let e = client.next().await.unwrap_err();
    assert!(matches!(e, ApiError::Status { status: 403, .. }), "{e}");
    assert!(e.to_string().contains("not yours"));
    assert!(matches!(
        client.next().await.unwrap_err(),
        ApiError::Event(_)
    ));
    assert!(matches!(
        client.next().await.unwrap_err(),
        ApiError::Protocol(_)
    ));
    // Nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nobody = EventsClient::new(&format!("127.0.0.1:{port}"), "id");
    assert!(matches!(nobody.next().await.unwrap_err(), ApiError::Io(_)));
}

#[test]
fn chunked_bodies_decode_only_when_complete() {
    let raw = chunked(INVOKE);
    let head = raw.find("\r\n\r\n").unwrap() + 4;
    let mut body = Vec::new();
    for cut in head..raw.len() {
        let r = parse(&raw.as_bytes()[..cut], &mut body, false).unwrap();
        assert!(r.is_none(), "complete at {cut} of {}", raw.len());
    }
    let r = parse(raw.as_bytes(), &mut body, false).unwrap().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(body, INVOKE.as_bytes());
}
