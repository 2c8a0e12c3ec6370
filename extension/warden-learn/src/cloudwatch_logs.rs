//! Feature records read back from a function's CloudWatch log group: what
//! `WARDEN_MODE=learn` (or `WARDEN_RECORDS=1`) printed there, for `warden train` and the
//! fleet's profiler; and the invocations Warden's findings there name, which teach nothing.
//!
//! Each log stream is one execution environment, so each stream becomes its own baseline
//! scope, replayed in time order as the extension saw it.

use std::collections::HashSet;

use aws_sdk_cloudwatchlogs::Client;
use aws_types::sdk_config::SdkConfig;

use crate::dataset::{self, Row, Skipped, Trust};

/// Most log events read in one run (a bound on memory and time).
pub const MAX_EVENTS: usize = 500_000;

/// What to read.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// Log group, e.g. `/aws/lambda/orders-api`.
    pub group: String,
    /// Oldest event, unix ms.
    pub start_ms: Option<i64>,
    /// Newest event, unix ms.
    pub end_ms: Option<i64>,
    /// Most events read.
    pub max_events: usize,
}

/// Why the records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The CloudWatch Logs request failed.
    #[error("reading log group {group}: {message}")]
    Request {
        /// The group.
        group: String,
        /// What the service or the connection said.
        message: String,
    },
}

/// What was read.
#[derive(Debug, Default)]
pub struct LogRecords {
    /// Feature records, one environment (log stream) after the other, each in order.
    pub rows: Vec<Row>,
    /// Log events read.
    pub events: usize,
    /// Warden lines that are not feature records (health lines, findings) or do not parse.
    pub other: usize,
    /// Request ids that a finding line names. Findings are not signed: a line the function
    /// prints can only keep one more invocation out of a profile, never add to one.
    pub flagged: HashSet<String>,
}

/// Reads every feature record in the group that `trust` believes; other log lines are
/// skipped.
pub async fn read_records(
    config: &SdkConfig,
    query: &LogQuery,
    trust: &Trust,
    skipped: &mut Skipped,
) -> Result<LogRecords, LogsError> {
    let client = Client::new(config);
    let mut rows = Vec::new();
    let mut flagged = HashSet::new();
    let (mut token, mut events, mut other) = (None::<String>, 0usize, 0usize);
    loop {
        let page = client
            .filter_log_events()
            .log_group_name(&query.group)
            .set_start_time(query.start_ms)
            .set_end_time(query.end_ms)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| LogsError::Request {
                group: query.group.clone(),
                message: aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e).to_string(),
            })?;
        for event in page.events() {
            events += 1;
            let (Some(message), stream) = (event.message(), event.log_stream_name()) else {
                continue;
            };
            let line = message.trim();
            if !line.starts_with('{') {
                continue;
            }
            if line.contains("\"warden_finding\"") {
                if let Some(id) = finding_request_id(line) {
                    flagged.insert(id);
                }
                other += 1;
                continue;
            }
            if !line.contains("\"warden_schema\"") {
                continue;
            }
            let source = format!("{}:{}", query.group, stream.unwrap_or(""));
            match dataset::parse_text(&source, events, line, trust, skipped) {
                Ok(Some(mut row)) => {
                    if let Some(stream) = stream {
                        row.scope = format!("{}/{stream}", row.function);
                    }
                    rows.push(row);
                }
                Ok(None) => {}
                Err(_) => other += 1,
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() || events >= query.max_events {
            break;
        }
    }
    // One environment's records in the order it produced them.
    rows.sort_by(|a, b| a.scope.cmp(&b.scope).then(a.seq.cmp(&b.seq)));
    Ok(LogRecords {
        rows,
        events,
        other,
        flagged,
    })
}

/// The request id a finding line names (none for the init phase's findings).
fn finding_request_id(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("warden_finding")?;
    Some(value.get("request_id")?.as_str()?.to_string())
}
