//! One JSON line per record on stdout. On Lambda, stdout goes to CloudWatch Logs, so this
//! is also the cheapest way to ship records off the sandbox.

use std::io::Write;

use super::RecordSink;
use crate::health::HealthSnapshot;
use crate::record_mac::{self, RecordKey};
use crate::redact;
use crate::schema::{FeatureRecord, SCHEMA_VERSION};

/// Writes records to any writer (stdout in production), one line each, one write each.
pub struct JsonLines<W: Write> {
    out: W,
    line: Vec<u8>,
    key: Option<RecordKey>,
}

impl<W: Write> JsonLines<W> {
    /// A sink over `out`.
    pub fn new(out: W) -> JsonLines<W> {
        JsonLines {
            out,
            line: Vec::with_capacity(2048),
            key: None,
        }
    }

    /// Signs every record line with `key` (see [`crate::record_mac`]).
    pub fn signed(mut self, key: Option<RecordKey>) -> JsonLines<W> {
        self.key = key;
        self
    }

    fn write_line(&mut self) {
        self.line.push(b'\n');
        // A failed write (closed stdout) has nowhere better to be reported.
        let _ = self.out.write_all(&self.line);
        let _ = self.out.flush();
        self.line.clear();
    }

    /// The writer, for tests.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn redacted(record: &FeatureRecord) -> FeatureRecord {
    let mut clean = record.clone();
    for obs in &mut clean.evidence {
        *obs = redact::observation(obs).0;
    }
    clean
}

/// The stdout sink.
pub fn stdout() -> JsonLines<std::io::Stdout> {
    JsonLines::new(std::io::stdout())
}

impl<W: Write> RecordSink for JsonLines<W> {
    fn record(&mut self, record: &FeatureRecord) {
        self.line.clear();
        // Records leave the sandbox (CloudWatch Logs): their evidence is redacted as a
        // finding's is. The detector has scored the raw record already.
        let written = if record.evidence.is_empty() {
            serde_json::to_writer(&mut self.line, record)
        } else {
            serde_json::to_writer(&mut self.line, &redacted(record))
        };
        if written.is_ok() {
            if let Some(key) = &self.key {
                record_mac::sign(key, &mut self.line);
            }
            self.write_line();
        }
    }

    fn health(&mut self, health: &HealthSnapshot) {
        self.line.clear();
        let line = serde_json::json!({"warden_schema": SCHEMA_VERSION, "kind": "health", "counters": health});
        if serde_json::to_writer(&mut self.line, &line).is_ok() {
            self.write_line();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Observation;

    #[test]
    fn records_leave_with_their_evidence_redacted() {
        let mut r = crate::testing::record(1);
        r.evidence.push(Observation::Process {
            pid: 7,
            ppid: 1,
            exe: "/usr/bin/curl".into(),
            cmdline: "curl -u admin:hunter2 --token=AKIAIOSFODNN7EXAMPLE https://x".into(),
            exec: false,
            alive_at_end: false,
            stdio_socket: false,
            runtime_fork: false,
        });
        let mut sink = JsonLines::new(Vec::new());
        sink.record(&r);
        let line = String::from_utf8(sink.into_inner()).unwrap();
        assert!(line.contains("[REDACTED]"), "{line}");
        assert!(!line.contains("AKIAIOSFODNN7EXAMPLE"), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
        assert!(line.contains("/usr/bin/curl"));
    }

    #[test]
    fn with_a_key_every_record_line_is_signed() {
        let key = RecordKey::new("a-deployment-key-0123456789").unwrap();
        let mut sink = JsonLines::new(Vec::new()).signed(Some(key.clone()));
        sink.record(&crate::testing::record(1));
        sink.record(&crate::testing::record(2));
        let text = String::from_utf8(sink.into_inner()).unwrap();
        for line in text.lines() {
            assert_eq!(
                record_mac::check(Some(&key), line),
                record_mac::Check::Valid
            );
            let back: crate::schema::FeatureRecord = serde_json::from_str(line).unwrap();
            assert!(back.seq >= 1);
        }
        assert_eq!(text.lines().count(), 2);
    }
}
