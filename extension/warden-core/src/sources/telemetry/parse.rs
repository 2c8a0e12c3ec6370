//! Batch parsing: a JSON array of `{time, type, record}` into [`TelemetryEvent`]s.
//!
//! Tolerant by design: a malformed or unknown event is counted and kept as opaque, the rest
//! of the batch is still used, and nothing here ever fails the batch as a whole.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::events::{Phase, Report, RuntimeDone, TelemetryEvent};
use super::wire;
use crate::schema::LogStats;
use crate::schema::Status;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    record: &'a RawValue,
}

/// What parsing one batch found, besides the events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events in the batch.
    pub events: u64,
    /// Events of an unknown type (kept as opaque).
    pub unknown: u64,
    /// The body or single events that could not be parsed.
    pub parse_errors: u64,
}

/// Parses one POST body, appending events to `out`.
pub fn parse_batch(body: &[u8], out: &mut Vec<TelemetryEvent>) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let items: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(items) => items,
        Err(_) => {
            outcome.parse_errors += 1;
            return outcome;
        }
    };
    out.reserve(items.len());
    for item in items {
        outcome.events += 1;
        let Ok(env) = serde_json::from_str::<Envelope<'_>>(item.get()) else {
            outcome.parse_errors += 1;
            continue;
        };
        match parse_event(&env.kind, env.record) {
            Ok(Some(TelemetryEvent::RuntimeDone(mut r))) => {
                r.time_unix_ms = env.time.as_deref().and_then(unix_ms);
                out.push(TelemetryEvent::RuntimeDone(r));
            }
            Ok(Some(event)) => out.push(event),
            Ok(None) => {
                outcome.unknown += 1;
                out.push(opaque(&env.kind, env.record));
            }
            Err(_) => {
                outcome.parse_errors += 1;
                out.push(opaque(&env.kind, env.record));
            }
        }
    }
    outcome
}

fn opaque(kind: &str, record: &RawValue) -> TelemetryEvent {
    TelemetryEvent::Unknown {
        event_type: kind.to_string(),
        record: record.get().to_string(),
    }
}

fn owned(text: Option<Cow<'_, str>>) -> Option<String> {
    text.map(Cow::into_owned)
}

fn status(text: Option<&Cow<'_, str>>) -> Status {
    text.map_or(Status::Unknown, |s| Status::parse(s))
}

/// Parses one record of a known type; `Ok(None)` for a type Warden does not know.
fn parse_event(kind: &str, record: &RawValue) -> serde_json::Result<Option<TelemetryEvent>> {
    let json = record.get();
    let event = match kind {
        "function" => function_log(record)?,
        "extension" => TelemetryEvent::ExtensionLog {
            stats: extension_log(record)?,
        },
        "platform.start" => {
            let r: wire::Start<'_> = serde_json::from_str(json)?;
            TelemetryEvent::Start {
                request_id: r.request_id.into_owned(),
            }
        }
        "platform.runtimeDone" => {
            TelemetryEvent::RuntimeDone(runtime_done(serde_json::from_str(json)?))
        }
        "platform.report" => TelemetryEvent::Report(report(serde_json::from_str(json)?)),
        "platform.initStart" | "platform.restoreStart" => {
            let (phase, initialization_type) = if kind == "platform.initStart" {
                let r: wire::InitStart<'_> = serde_json::from_str(json)?;
                (Phase::Init, owned(r.initialization_type))
            } else {
                let _: wire::RestoreStart<'_> = serde_json::from_str(json)?;
                (Phase::Restore, Some("snap-start".to_string()))
            };
            TelemetryEvent::PhaseStart {
                phase,
                initialization_type,
            }
        }
        "platform.initRuntimeDone" | "platform.restoreRuntimeDone" => {
            let r: wire::InitRuntimeDone<'_> = serde_json::from_str(json)?;
            TelemetryEvent::PhaseRuntimeDone {
                phase: phase_of(kind),
                status: status(r.status.as_ref()),
                error_type: owned(r.error_type),
            }
        }
        "platform.initReport" | "platform.restoreReport" => {
            let r: wire::PhaseReport<'_> = serde_json::from_str(json)?;
            TelemetryEvent::PhaseReport {
                phase: phase_of(kind),
                status: status(r.status.as_ref()),
                error_type: owned(r.error_type),
                duration_ms: r.metrics.map(|m| m.duration_ms),
            }
        }
        "platform.extension" => {
            let r: wire::Extension<'_> = serde_json::from_str(json)?;
            TelemetryEvent::Extension {
                name: r.name.into_owned(),
                state: r.state.into_owned(),
            }
        }
        "platform.telemetrySubscription" => {
            let r: wire::TelemetrySubscription<'_> = serde_json::from_str(json)?;
            TelemetryEvent::Subscription {
                name: r.name.into_owned(),
                state: r.state.into_owned(),
            }
        }
        "platform.logsDropped" => {
            let r: wire::LogsDropped<'_> = serde_json::from_str(json)?;
            TelemetryEvent::LogsDropped {
                records: r.dropped_records,
                bytes: r.dropped_bytes,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

fn phase_of(kind: &str) -> Phase {
    if kind.starts_with("platform.restore") {
        Phase::Restore
    } else {
        Phase::Init
    }
}

fn runtime_done(r: wire::RuntimeDone<'_>) -> RuntimeDone {
    let span = |name: &str| {
        r.spans
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.duration_ms)
    };
    RuntimeDone {
        response_latency_ms: span("responseLatency"),
        response_duration_ms: span("responseDuration"),
        runtime_overhead_ms: span("runtimeOverhead"),
        status: Status::parse(&r.status),
        duration_ms: r.metrics.as_ref().map(|m| m.duration_ms),
        produced_bytes: r.metrics.as_ref().and_then(|m| m.produced_bytes),
        error_type: owned(r.error_type),
        request_id: r.request_id.into_owned(),
        time_unix_ms: None,
    }
}

/// Unix milliseconds of an RFC 3339 UTC time as the Telemetry API writes it
/// (`2022-10-21T14:05:05.764Z`); `None` for anything else.
pub fn unix_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> { text.get(from..to)?.parse().ok() };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let rest = &text[19..];
    let (millis, zone) = match rest.strip_prefix('.') {
        Some(frac) => {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            let ms: i64 = format!("{:0<3}", &frac[..digits.min(3)]).parse().ok()?;
            (ms, &frac[digits..])
        }
        None => (0, rest),
    };
    if zone != "Z" || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = (month + 9) % 12;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(secs * 1000 + millis).ok()
}

fn report(r: wire::Report<'_>) -> Report {
    let m = r.metrics;
    Report {
        request_id: r.request_id.into_owned(),
        status: status(r.status.as_ref()),
        error_type: owned(r.error_type),
        duration_ms: m.duration_ms,
        billed_duration_ms: m.billed_duration_ms,
        memory_size_mb: m.memory_size_mb,
        max_memory_used_mb: m.max_memory_used_mb,
        init_duration_ms: m.init_duration_ms,
        restore_duration_ms: m.restore_duration_ms,
    }
}

/// A function record is a string (text format) or an object (JSON format).
fn function_log(record: &RawValue) -> serde_json::Result<TelemetryEvent> {
    let json = record.get();
    if json.starts_with('{') {
        let log: wire::JsonLog<'_> = serde_json::from_str(json)?;
        let message = message_text(log.message)?;
        return Ok(TelemetryEvent::FunctionLog {
            stats: LogStats::of_structured(&message, log.level.as_deref(), json.len()),
            request_id: owned(log.request_id),
        });
    }
    let text = text_of(record)?;
    Ok(TelemetryEvent::FunctionLog {
        request_id: None,
        stats: LogStats::of_text(&text),
    })
}

fn extension_log(record: &RawValue) -> serde_json::Result<LogStats> {
    let json = record.get();
    if json.starts_with('{') {
        let log: wire::JsonLog<'_> = serde_json::from_str(json)?;
        let message = message_text(log.message)?;
        return Ok(LogStats::of_structured(
            &message,
            log.level.as_deref(),
            json.len(),
        ));
    }
    if is_own_line(json) {
        return Ok(LogStats::default());
    }
    Ok(LogStats::of_extension_text(&text_of(record)?))
}

/// The record as text: a JSON string unescaped, any other JSON value as written.
fn text_of(record: &RawValue) -> serde_json::Result<Cow<'_, str>> {
    let json = record.get();
    match json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
        // Without a backslash the text between the quotes is the string itself (the
        // value was validated when the batch was split), so it is borrowed as it is.
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        Some(_) => serde_json::from_str::<String>(json).map(Cow::Owned),
        None => Ok(Cow::Borrowed(json)),
    }
}

/// Warden's own output comes back as `extension` records; a record that is one such line
/// (in its escaped JSON form) is recognised without unescaping it.
fn is_own_line(json: &str) -> bool {
    const OWN: [&str; 2] = ["\"[warden]", "\"{\\\"warden_schema\\\""];
    let Some(body) = json
        .strip_suffix("\\n\"")
        .or_else(|| json.strip_suffix('"'))
    else {
        return false;
    };
    OWN.iter().any(|p| body.starts_with(p)) && !body.contains("\\n")
}

fn message_text(message: Option<&RawValue>) -> serde_json::Result<Cow<'_, str>> {
    message.map_or(Ok(Cow::Borrowed("")), text_of)
}

#[cfg(test)]
mod tests;
