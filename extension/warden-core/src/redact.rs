//! Secrets out of evidence: command lines and paths are redacted before they leave the
//! extension (records, findings, action records). Warden keeps the raw observations inside
//! for its responders; only redacted copies are written. What is removed, and what is kept,
//! is listed in docs/findings.md ("Redaction") and pinned by the table in `tests`.

mod names;
mod scan;

use std::ops::Range;

use crate::schema::Observation;

pub use self::names::is_sensitive;

/// Marker left where a secret was.
pub const REDACTED: &str = "[REDACTED]";

/// Longest command line or path kept in evidence, in bytes, after redaction.
pub const EVIDENCE_MAX: usize = 256;

/// Text with secrets removed, and whether it showed signs of reaching for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The redacted text.
    pub text: String,
    /// It names AWS credential variables, contains an access key id, or reads another
    /// process's (or its own) environment through /proc.
    pub credential_hint: bool,
}

/// Redacts a command line or path. Each scanner marks the byte ranges it takes for secrets
/// (docs/findings.md, "Redaction"); the ranges are merged and each replaced by [`REDACTED`].
/// The text is never more than six times as long as the input (one marker per span of at
/// least one byte, spans at least one byte apart).
pub fn redact(text: &str) -> Redacted {
    let mut spans = Vec::new();
    scan::assignments(text, &mut spans);
    scan::options(text, &mut spans);
    scan::schemes(text, &mut spans);
    scan::url_passwords(text, &mut spans);
    scan::private_keys(text, &mut spans);
    let key_id = scan::shapes(text, &mut spans);
    Redacted {
        text: replace(text, spans),
        credential_hint: key_id || mentions_credentials(text),
    }
}

/// Redacts, then keeps at most [`EVIDENCE_MAX`] bytes: a secret is recognised whole before
/// any of it can be cut.
pub fn redact_evidence(text: &str) -> Redacted {
    let mut r = redact(text);
    truncate(&mut r.text, EVIDENCE_MAX);
    r
}

/// Cuts `text` to at most `max` bytes on a character boundary, and before a marker the cut
/// would split.
pub fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut window = end.saturating_sub(REDACTED.len() - 1);
    while !text.is_char_boundary(window) {
        window -= 1;
    }
    if let Some(i) = text[window..].find(REDACTED).map(|i| window + i) {
        if i < end && i + REDACTED.len() > end {
            end = i;
        }
    }
    text.truncate(end);
}

/// `text` with every (merged) span replaced by one marker.
fn replace(text: &str, mut spans: Vec<Range<usize>>) -> String {
    if spans.is_empty() {
        return text.to_string();
    }
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len() + REDACTED.len());
    let mut last = 0;
    let mut iter = spans.into_iter().peekable();
    while let Some(mut span) = iter.next() {
        while let Some(next) = iter.next_if(|n| n.start <= span.end) {
            span.end = span.end.max(next.end);
        }
        let start = span.start.max(last);
        if start >= span.end {
            continue;
        }
        out.push_str(&text[last..start]);
        out.push_str(REDACTED);
        last = span.end;
    }
    out.push_str(&text[last..]);
    out
}

fn mentions_credentials(text: &str) -> bool {
    const NAMES: [&str; 3] = [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
    ];
    NAMES.iter().any(|n| text.contains(n)) || (text.contains("/proc/") && text.contains("/environ"))
}

/// An observation with its command line and paths redacted, and the credential hint.
pub fn observation(obs: &Observation) -> (Observation, bool) {
    match obs {
        Observation::Process {
            pid,
            ppid,
            exe,
            cmdline,
            exec,
            alive_at_end,
            stdio_socket,
            runtime_fork,
        } => {
            let c = redact_evidence(cmdline);
            let e = redact_evidence(exe);
            let redacted = Observation::Process {
                pid: *pid,
                ppid: *ppid,
                exe: e.text,
                cmdline: c.text,
                exec: *exec,
                alive_at_end: *alive_at_end,
                stdio_socket: *stdio_socket,
                runtime_fork: *runtime_fork,
            };
            (redacted, c.credential_hint || e.credential_hint)
        }
        Observation::TmpFile { path, action, size } => (
            Observation::TmpFile {
                path: redact_evidence(path).text,
                action: *action,
                size: *size,
            },
            false,
        ),
        Observation::Program { exe } => {
            let e = redact_evidence(exe);
            (Observation::Program { exe: e.text }, e.credential_hint)
        }
        Observation::StillRunning { pid, exe, cmdline } => {
            let (e, c) = (redact_evidence(exe), redact_evidence(cmdline));
            let hint = e.credential_hint || c.credential_hint;
            let clean = Observation::StillRunning {
                pid: *pid,
                exe: e.text,
                cmdline: c.text,
            };
            (clean, hint)
        }
        Observation::Exec {
            pid,
            path,
            target,
            how,
            argv,
            verdict,
        } => {
            let (p, t, a) = (
                redact_evidence(path),
                redact_evidence(target),
                redact_evidence(argv),
            );
            let hint = p.credential_hint || t.credential_hint || a.credential_hint;
            let clean = Observation::Exec {
                pid: *pid,
                path: p.text,
                target: t.text,
                how: *how,
                argv: a.text,
                verdict: *verdict,
            };
            (clean, hint)
        }
        Observation::Send {
            pid,
            proto,
            addr,
            bytes,
            dns,
            verdict,
        } => {
            // A name can carry data out (DNS tunnelling): redacted like any text.
            let clean = Observation::Send {
                pid: *pid,
                proto: *proto,
                addr: *addr,
                bytes: *bytes,
                dns: dns.as_deref().map(|d| redact_evidence(d).text),
                verdict: *verdict,
            };
            (clean, false)
        }
        Observation::CredentialRead {
            pid,
            path,
            reader,
            verdict,
        } => (
            Observation::CredentialRead {
                pid: *pid,
                path: redact_evidence(path).text,
                reader: reader.as_ref().map(|r| crate::schema::Reader {
                    exe: redact_evidence(&r.exe).text,
                    argv: redact_evidence(&r.argv).text,
                }),
                verdict: *verdict,
            },
            true,
        ),
        Observation::FileWrite { pid, path, verdict } => (
            Observation::FileWrite {
                pid: *pid,
                path: redact_evidence(path).text,
                verdict: *verdict,
            },
            false,
        ),
        Observation::Patched { pid, name } => (
            Observation::Patched {
                pid: *pid,
                name: redact_evidence(name).text,
            },
            false,
        ),
        // Addresses, numbers, a request id and a fixed kind: nothing the function chose to
        // write.
        Observation::Endpoint { .. }
        | Observation::SecretSent { .. }
        | Observation::Connect { .. }
        | Observation::Signal { .. }
        | Observation::Tamper { .. } => (obs.clone(), false),
    }
}

#[cfg(test)]
mod tests;
