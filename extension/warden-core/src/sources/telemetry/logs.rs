//! Log text reduced to counts: lines, bytes, error lines, traceback starts.
//!
//! Log text itself never leaves this module: only the counts go on.

use crate::schema::LogStats;

/// Markers that begin a stack trace (Python, Rust).
const TRACEBACK_MARKERS: [&[u8]; 2] = [b"Traceback (most recent call last)", b"panicked at"];

/// Prefixes of Warden's own output, left out of extension log counts.
const OWN_PREFIXES: [&str; 2] = ["[warden]", "{\"warden_schema\""];

impl LogStats {
    /// Adds another set of counts.
    pub fn add(&mut self, other: &LogStats) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.error_lines += other.error_lines;
        self.tracebacks += other.tracebacks;
    }

    /// Counts a plain-text record (it may span several lines).
    pub fn of_text(text: &str) -> LogStats {
        let mut s = LogStats {
            bytes: text.len() as u64,
            ..LogStats::default()
        };
        s.scan(text, false);
        s
    }

    /// Counts an extension's record, skipping Warden's own lines.
    pub fn of_extension_text(text: &str) -> LogStats {
        let mut s = LogStats::default();
        for line in text.split('\n') {
            if OWN_PREFIXES.iter().any(|p| line.starts_with(p)) {
                continue;
            }
            s.bytes += line.len() as u64;
            s.scan(line, false);
        }
        s
    }

    /// Counts a JSON-format record whose message text is `message`, with an optional level.
    pub fn of_structured(message: &str, level: Option<&str>, raw_len: usize) -> LogStats {
        let mut s = LogStats {
            bytes: raw_len as u64,
            ..LogStats::default()
        };
        let is_error = level.is_some_and(|l| {
            ["ERROR", "FATAL", "CRITICAL"]
                .iter()
                .any(|e| l.eq_ignore_ascii_case(e))
        });
        s.scan(message, is_error);
        if s.lines == 0 {
            s.lines = 1;
            s.error_lines += u64::from(is_error);
        }
        s
    }

    fn scan(&mut self, text: &str, error_level: bool) {
        for line in text.split('\n') {
            let b = line.trim_end_matches('\r').as_bytes();
            if b.is_empty() {
                continue;
            }
            self.lines += 1;
            if error_level || contains_ci(b, b"error") || contains_ci(b, b"exception") {
                self.error_lines += 1;
            }
            if TRACEBACK_MARKERS.iter().any(|m| contains(b, m)) {
                self.tracebacks += 1;
            }
        }
    }
}

/// ASCII case-insensitive substring test; `needle` must be lower case.
fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    hay.len() >= needle.len()
        && (0..=hay.len() - needle.len()).any(|i| {
            hay[i] | 0x20 == first && hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
        })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_errors_and_tracebacks() {
        let s = LogStats::of_text(
            "Traceback (most recent call last):\n  File \"app.py\", line 3\nValueError: bad\n\n",
        );
        assert_eq!((s.lines, s.error_lines, s.tracebacks), (3, 1, 1));
        assert_eq!(s.bytes, 76);
        let r = LogStats::of_text("thread 'main' panicked at src/main.rs:4:5:");
        assert_eq!(r.tracebacks, 1);
        let c = LogStats::of_text("Unhandled EXCEPTION in worker");
        assert_eq!(c.error_lines, 1);
        let quiet = LogStats::of_text("all good, no err here");
        assert_eq!((quiet.lines, quiet.error_lines), (1, 0));
    }

    #[test]
    fn structured_level_marks_error() {
        let s = LogStats::of_structured("disk full", Some("error"), 80);
        assert_eq!((s.lines, s.error_lines, s.bytes), (1, 1, 80));
        let i = LogStats::of_structured("", Some("INFO"), 10);
        assert_eq!((i.lines, i.error_lines), (1, 0));
    }

    #[test]
    fn own_lines_are_not_counted() {
        let s = LogStats::of_extension_text("[warden] warn x error");
        assert_eq!(s, LogStats::default());
        let other = LogStats::of_extension_text("other-ext: error connecting");
        assert_eq!((other.lines, other.error_lines), (1, 1));
    }
}
