//! One JSON line per record on stdout. On Lambda, stdout goes to CloudWatch Logs, so this
//! is also the cheapest way to ship records off the sandbox.

use std::io::Write;

use super::RecordSink;
use crate::features::{FeatureRecord, SCHEMA_VERSION};
use crate::health::HealthSnapshot;

/// Writes records to any writer (stdout in production), one line each, one write each.
pub struct JsonLines<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> JsonLines<W> {
    /// A sink over `out`.
    pub fn new(out: W) -> JsonLines<W> {
        JsonLines {
            out,
            line: Vec::with_capacity(2048),
        }
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

/// The stdout sink.
pub fn stdout() -> JsonLines<std::io::Stdout> {
    JsonLines::new(std::io::stdout())
}

impl<W: Write> RecordSink for JsonLines<W> {
    fn record(&mut self, record: &FeatureRecord) {
        self.line.clear();
        if serde_json::to_writer(&mut self.line, record).is_ok() {
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
