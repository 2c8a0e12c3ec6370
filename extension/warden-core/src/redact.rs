//! Secrets out of evidence: command lines and paths are redacted before they leave the
//! extension. What is removed: AWS access key ids, values of `KEY=VALUE` pairs and of
//! `--flag value` options whose name suggests a secret, passwords in URLs, and long
//! base64-like runs (secret keys, session tokens, encoded payloads).

use crate::schema::Observation;

/// Marker left where a secret was.
pub const REDACTED: &str = "[REDACTED]";

/// Shortest run of base64-like characters treated as a secret.
const MIN_SECRET_RUN: usize = 32;

/// Words that make a variable or option name sensitive (compared lowercase).
const SENSITIVE: [&str; 10] = [
    "secret",
    "token",
    "passw",
    "pwd",
    "key",
    "credential",
    "auth",
    "session",
    "cookie",
    "signature",
];

/// AWS access key id prefixes.
const KEY_ID_PREFIXES: [&str; 8] = [
    "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA",
];

/// Text with secrets removed, and whether it showed signs of reaching for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The redacted text.
    pub text: String,
    /// It names AWS credential variables, contains an access key id, or reads another
    /// process's (or its own) environment through /proc.
    pub credential_hint: bool,
}

/// Redacts a command line or path (tokens separated by spaces).
pub fn redact(text: &str) -> Redacted {
    let mut out = String::with_capacity(text.len());
    let mut hint = mentions_credentials(text);
    let mut hide_next = false;
    for (n, token) in text.split(' ').enumerate() {
        if n > 0 {
            out.push(' ');
        }
        if hide_next && !token.is_empty() {
            // "Authorization: Bearer <token>": the scheme word stays, the token goes.
            hide_next = matches!(token, "Bearer" | "Basic" | "bearer" | "basic");
            if hide_next {
                out.push_str(token);
            } else {
                out.push_str(REDACTED);
            }
            continue;
        }
        let (t, found, next) = redact_token(token);
        hint |= found;
        hide_next = next;
        out.push_str(&t);
    }
    Redacted {
        text: out,
        credential_hint: hint,
    }
}

fn mentions_credentials(text: &str) -> bool {
    const NAMES: [&str; 3] = [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
    ];
    NAMES.iter().any(|n| text.contains(n)) || (text.contains("/proc/") && text.contains("/environ"))
}

fn is_sensitive(name: &str) -> bool {
    let lower = name.trim_start_matches('-').to_ascii_lowercase();
    !lower.is_empty() && SENSITIVE.iter().any(|w| lower.contains(w))
}

/// Redacts one token; returns it, whether it held an access key id, and whether the next
/// token is the value of a sensitive option.
fn redact_token(token: &str) -> (String, bool, bool) {
    if let Some((name, _)) = token.split_once('=') {
        if is_sensitive(name) {
            return (format!("{name}={REDACTED}"), false, false);
        }
    }
    if (token.starts_with('-') || token.ends_with(':')) && is_sensitive(token.trim_end_matches(':'))
    {
        return (token.to_string(), false, !token.contains('='));
    }
    let token = url_password(token);
    let (token, key_id) = key_ids(&token);
    (long_runs(&token), key_id, false)
}

/// `scheme://user:password@host` → `scheme://user:[REDACTED]@host`.
fn url_password(token: &str) -> String {
    let Some(start) = token.find("://").map(|i| i + 3) else {
        return token.to_string();
    };
    let rest = &token[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return token.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return token.to_string();
    };
    format!(
        "{}{}{REDACTED}{}",
        &token[..start],
        &rest[..=colon],
        &rest[at..]
    )
}

fn key_ids(token: &str) -> (String, bool) {
    let bytes = token.as_bytes();
    let mut out = String::with_capacity(token.len());
    let mut found = false;
    let mut i = 0;
    while i < bytes.len() {
        let is_key = i + 20 <= bytes.len()
            && KEY_ID_PREFIXES
                .iter()
                .any(|p| bytes[i..].starts_with(p.as_bytes()))
            && bytes[i + 4..i + 20]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && bytes.get(i + 20).is_none_or(|b| !b.is_ascii_alphanumeric());
        if is_key {
            out.push_str(REDACTED);
            found = true;
            i += 20;
            continue;
        }
        let ch_len = token[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&token[i..i + ch_len]);
        i += ch_len;
    }
    (out, found)
}

fn base64ish(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-')
}

/// Replaces runs that look like keys or tokens: long, mixing upper case, lower case and
/// digits, and not a path (in a secret a `/` is rare).
fn long_runs(token: &str) -> String {
    let bytes = token.as_bytes();
    let mut out = String::with_capacity(token.len());
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !base64ish(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && base64ish(bytes[i]) {
            i += 1;
        }
        let run = &bytes[start..i];
        if looks_secret(run) {
            out.push_str(&token[last..start]);
            out.push_str(REDACTED);
            last = i;
        }
    }
    out.push_str(&token[last..]);
    out
}

fn looks_secret(run: &[u8]) -> bool {
    if run.len() < MIN_SECRET_RUN {
        return false;
    }
    let slashes = run.iter().filter(|&&b| b == b'/').count();
    slashes * 10 <= run.len()
        && run.iter().any(u8::is_ascii_uppercase)
        && run.iter().any(u8::is_ascii_lowercase)
        && run.iter().any(u8::is_ascii_digit)
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
            let c = redact(cmdline);
            let e = redact(exe);
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
                path: redact(path).text,
                action: *action,
                size: *size,
            },
            false,
        ),
        Observation::Program { exe } => {
            let e = redact(exe);
            (Observation::Program { exe: e.text }, e.credential_hint)
        }
        Observation::StillRunning { pid, exe, cmdline } => {
            let (e, c) = (redact(exe), redact(cmdline));
            let hint = e.credential_hint || c.credential_hint;
            let clean = Observation::StillRunning {
                pid: *pid,
                exe: e.text,
                cmdline: c.text,
            };
            (clean, hint)
        }
        // A request id and a fixed kind: nothing the function chose to write.
        Observation::Endpoint { .. } | Observation::Tamper { .. } => (obs.clone(), false),
    }
}

#[cfg(test)]
mod tests;
