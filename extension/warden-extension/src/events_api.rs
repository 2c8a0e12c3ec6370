//! The Extensions API's `GET /event/next`, on one kept-alive connection.
//!
//! Warden asks for the next event once per invocation. `lambda-extension`'s loop sends each
//! request through hyper's pooled client (a boxed request future, a pool checkout and header
//! maps built and dropped every time); here the request is built once, written on one
//! kept-alive TCP connection, and the response is read into a reused buffer and parsed with
//! `httparse`. The event itself is the crate's own [`NextEvent`]. Registration and the
//! error endpoints still go through the crate: they happen once.

use std::fmt;
use std::io;

use lambda_extension::NextEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Path of the next-event call.
pub(crate) const NEXT_PATH: &str = "/2020-01-01/extension/event/next";
/// Largest response accepted (an event is a few hundred bytes).
pub(crate) const MAX_RESPONSE: usize = 1 << 20;
/// Headers parsed at most per response.
const MAX_HEADERS: usize = 32;

/// Why `/event/next` failed.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// The response was not HTTP the client understands.
    Protocol(String),
    /// The API answered with a status other than 2xx.
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The body was not an INVOKE or SHUTDOWN event.
    Event(serde_json::Error),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Io(e) => write!(f, "{NEXT_PATH}: {e}"),
            ApiError::Protocol(e) => write!(f, "{NEXT_PATH}: {e}"),
            ApiError::Status { status, body } => {
                write!(f, "{NEXT_PATH} answered {status}: {body}")
            }
            ApiError::Event(e) => write!(f, "{NEXT_PATH}: the event is not valid: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<io::Error> for ApiError {
    fn from(e: io::Error) -> Self {
        ApiError::Io(e)
    }
}

/// A parsed response: status and where the body is.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    /// The connection may carry the next request.
    keep_alive: bool,
}

/// The `/event/next` client of one registered extension.
#[derive(Debug)]
pub(crate) struct EventsClient {
    addr: String,
    request: Vec<u8>,
    stream: Option<TcpStream>,
    /// Raw response bytes (reused).
    buf: Vec<u8>,
    /// The decoded body (reused).
    body: Vec<u8>,
}

impl EventsClient {
    /// A client of the API at `runtime_api` (`host:port`, as in `AWS_LAMBDA_RUNTIME_API`)
    /// for the extension `extension_id`. Connects on first use.
    pub(crate) fn new(runtime_api: &str, extension_id: &str) -> EventsClient {
        let request = format!(
            "GET {NEXT_PATH} HTTP/1.1\r\nhost: {runtime_api}\r\nuser-agent: warden/{}\r\n\
             lambda-extension-identifier: {extension_id}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        EventsClient {
            addr: runtime_api.to_string(),
            request: request.into_bytes(),
            stream: None,
            buf: Vec::with_capacity(4096),
            body: Vec::with_capacity(1024),
        }
    }

    /// Opens the connection now (else the first [`EventsClient::next`] does).
    pub(crate) async fn connect(&mut self) -> Result<(), ApiError> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr.as_str()).await?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
        }
        Ok(())
    }

    /// Asks for the next event and waits for it (for as long as the API takes).
    pub(crate) async fn next(&mut self) -> Result<NextEvent, ApiError> {
        let response = match self.exchange().await {
            Ok(r) => r,
            // A kept connection the server closed while idle: once more on a new one.
            Err(Exchange::Stale(_)) => match self.exchange().await {
                Ok(r) => r,
                Err(Exchange::Stale(e) | Exchange::Failed(e)) => return Err(e),
            },
            Err(Exchange::Failed(e)) => return Err(e),
        };
        if !response.keep_alive {
            self.stream = None;
        }
        if !(200..300).contains(&response.status) {
            let body = String::from_utf8_lossy(&self.body)
                .chars()
                .take(200)
                .collect();
            return Err(ApiError::Status {
                status: response.status,
                body,
            });
        }
        serde_json::from_slice(&self.body).map_err(ApiError::Event)
    }

    /// One request and its response; the body is left in `self.body`.
    async fn exchange(&mut self) -> Result<Response, Exchange> {
        let reused = self.stream.is_some();
        self.connect().await.map_err(Exchange::Failed)?;
        let Some(stream) = self.stream.as_mut() else {
            return Err(Exchange::Failed(ApiError::Protocol("not connected".into())));
        };
        self.buf.clear();
        self.body.clear();
        let result = round_trip(stream, &self.request, &mut self.buf, &mut self.body).await;
        if result.is_err() {
            self.stream = None;
        }
        result.map_err(|e| {
            // Nothing came back on a connection that had served before: it was closed.
            if reused && self.buf.is_empty() && matches!(e, ApiError::Io(_)) {
                Exchange::Stale(e)
            } else {
                Exchange::Failed(e)
            }
        })
    }
}

enum Exchange {
    /// Failed before any byte of a response arrived on a reused connection.
    Stale(ApiError),
    Failed(ApiError),
}

async fn round_trip(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Result<Response, ApiError> {
    stream.write_all(request).await?;
    loop {
        if read_more(stream, buf).await? == 0 {
            if buf.is_empty() {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            // The server closed the connection: what is there must be the whole response.
            return match parse(buf, body, true)? {
                Some(r) => Ok(r),
                None => Err(ApiError::Protocol("response cut short".into())),
            };
        }
        if let Some(r) = parse(buf, body, false)? {
            return Ok(r);
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, ApiError> {
    if buf.len() >= MAX_RESPONSE {
        return Err(ApiError::Protocol(format!(
            "response over {MAX_RESPONSE} bytes"
        )));
    }
    let start = buf.len();
    buf.resize((start + 4096).max(buf.capacity()).min(MAX_RESPONSE), 0);
    let n = stream.read(&mut buf[start..]).await;
    buf.truncate(start + *n.as_ref().unwrap_or(&0));
    Ok(n?)
}

/// Parses a complete response in `buf` (its body into `body`), or `None` when more bytes
/// are needed. `eof`: the connection has ended, so a body without a length ends here.
fn parse(buf: &[u8], body: &mut Vec<u8>, eof: bool) -> Result<Option<Response>, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ApiError::Protocol(format!("bad response: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = response.version == Some(1);
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| ApiError::Protocol(format!("bad content-length {value:?}")))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    let rest = &buf[head..];
    body.clear();
    if chunked {
        return Ok(dechunk(rest, body)?.then_some(Response { status, keep_alive }));
    }
    match length {
        Some(n) if rest.len() >= n => {
            body.extend_from_slice(&rest[..n]);
            Ok(Some(Response { status, keep_alive }))
        }
        Some(_) => Ok(None),
        // 204 and 304 have no body; otherwise the body runs to the end of the connection.
        None if status == 204 || status == 304 => Ok(Some(Response { status, keep_alive })),
        None if eof => {
            body.extend_from_slice(rest);
            Ok(Some(Response {
                status,
                keep_alive: false,
            }))
        }
        None => Ok(None),
    }
}

/// Decodes a chunked body into `body`; false while incomplete.
fn dechunk(mut rest: &[u8], body: &mut Vec<u8>) -> Result<bool, ApiError> {
    loop {
        let (skip, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(c)) => c,
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(_) => return Err(ApiError::Protocol("bad chunk size".into())),
        };
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= MAX_RESPONSE)
            .ok_or_else(|| ApiError::Protocol("chunk too large".into()))?;
        rest = &rest[skip..];
        if size == 0 {
            // Optional trailer fields, then an empty line.
            return Ok(rest.starts_with(b"\r\n") || rest.windows(4).any(|w| w == b"\r\n\r\n"));
        }
        if rest.len() < size + 2 {
            return Ok(false);
        }
        body.extend_from_slice(&rest[..size]);
        if &rest[size..size + 2] != b"\r\n" {
            return Err(ApiError::Protocol("chunk not followed by CRLF".into()));
        }
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests;
