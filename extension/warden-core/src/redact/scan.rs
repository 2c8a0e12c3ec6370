//! The scanners: each finds byte ranges of secrets in a text. Every range starts and ends at
//! an ASCII byte or at the end of the text, so it always falls on character boundaries.

use std::ops::Range;

use super::names::is_sensitive;
use crate::words::{base_name, url_authority, words_at};

/// Shortest run of base64-like characters, mixing cases and digits, treated as a secret.
const MIN_SECRET_RUN: usize = 32;
/// Shortest run of hex digits (one case) treated as a secret: keys and full digests go, git
/// short hashes and ordinary numbers stay.
const MIN_HEX_RUN: usize = 32;

/// AWS access key id prefixes.
const KEY_ID_PREFIXES: [&str; 8] = [
    "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA",
];

/// Prefixes of vendor tokens (GitHub, GitLab, Slack, Stripe, Google, npm), with the fewest
/// characters that must follow for the word to be one.
const TOKEN_PREFIXES: [(&str, usize); 14] = [
    ("ghp_", 20),
    ("gho_", 20),
    ("ghu_", 20),
    ("ghs_", 20),
    ("ghr_", 20),
    ("github_pat_", 20),
    ("glpat-", 16),
    ("xoxb-", 10),
    ("xoxp-", 10),
    ("xoxa-", 10),
    ("xoxe-", 10),
    ("sk_live_", 10),
    ("rk_live_", 10),
    ("AIza", 30),
];

/// Words that introduce a credential in an Authorization header.
const SCHEMES: [&str; 2] = ["bearer", "basic"];

/// Programs whose `-p` option takes the password attached (`mysql -pSECRET`).
fn attaches_password(program: &str) -> bool {
    let p = base_name(program);
    p.starts_with("mysql") || p.starts_with("mariadb") || p == "sshpass"
}

/// Bytes that end a value.
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace() || b"&;,\"'})]|<>`".contains(&b)
}

/// Bytes that may be part of a variable, option or key name.
fn in_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// End of an unquoted value starting at `from`.
fn value_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| ends_value(b))
        .map_or(bytes.len(), |i| from + i)
}

/// The range of the value starting at `from`: inside its quotes when quoted (a backslash
/// escapes the next byte), else up to the first byte that ends a value.
fn value_at(bytes: &[u8], from: usize) -> Option<Range<usize>> {
    let q = *bytes.get(from)?;
    if q == b'"' || q == b'\'' {
        let mut i = from + 1;
        while i < bytes.len() && bytes[i] != q {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        let end = i.min(bytes.len());
        return (end > from + 1).then_some(from + 1..end);
    }
    let end = value_end(bytes, from);
    (end > from).then_some(from..end)
}

/// `NAME=value`, `--name=value`, `"name":"value"`, `'name': 'value'`, `name:value`, wherever
/// they are (after `;`, `&`, `,`, inside JSON), for sensitive names.
pub(super) fn assignments(text: &str, out: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    // A separator inside a value already taken is not looked at again: each byte is scanned
    // a bounded number of times (`pw=pw=pw=…` stays linear).
    let mut covered = 0;
    for (at, &b) in bytes.iter().enumerate() {
        if (b != b'=' && b != b':') || at < covered {
            continue;
        }
        let quoted = at > 0 && matches!(bytes[at - 1], b'"' | b'\'');
        let name_end = if quoted { at - 1 } else { at };
        let mut start = name_end;
        while start > 0 && in_name(bytes[start - 1]) {
            start -= 1;
        }
        if quoted && !(start > 0 && bytes[start - 1] == bytes[at - 1]) {
            continue;
        }
        if start == name_end || !is_sensitive(&text[start..name_end]) {
            continue;
        }
        let mut from = at + 1;
        // JSON and dicts put spaces after the colon; a bare `name: value` is a header,
        // which `options` handles.
        if quoted {
            while from < bytes.len() && bytes[from] == b' ' {
                from += 1;
            }
        }
        let Some(v) = value_at(bytes, from) else {
            continue;
        };
        covered = v.end;
        // `Authorization:Bearer x`: the scheme stays, `schemes` takes what follows it.
        if !starts_with_scheme(&text[v.clone()]) {
            out.push(v);
        }
    }
}

fn is_scheme(word: &str) -> bool {
    SCHEMES.contains(&word.to_ascii_lowercase().as_str())
}

/// `Bearer`, `bearer:x`: a scheme word, alone or followed by a non-alphanumeric byte.
fn starts_with_scheme(value: &str) -> bool {
    SCHEMES.iter().any(|s| {
        value.len() >= s.len()
            && value.is_char_boundary(s.len())
            && value[..s.len()].eq_ignore_ascii_case(s)
            && !value
                .as_bytes()
                .get(s.len())
                .is_some_and(u8::is_ascii_alphanumeric)
    })
}

/// Values given as the next word: `--password x`, `--token x`, `Authorization: x`,
/// `-u user:pw` / `--user user:pw` (the password part), and `mysql -pSECRET`.
pub(super) fn options(text: &str, out: &mut Vec<Range<usize>>) {
    let words: Vec<(usize, &str)> = words_at(text).collect();
    let attached_p = words.iter().any(|(_, w)| attaches_password(w));
    let curl = words.iter().any(|(_, w)| base_name(w) == "curl");
    for (n, &(at, word)) in words.iter().enumerate() {
        let next = words.get(n + 1).copied();
        if let Some(rest) = word
            .strip_prefix("-p")
            .filter(|r| attached_p && !r.is_empty())
        {
            out.push(at + 2..at + 2 + rest.len());
            continue;
        }
        let user = user_option(at, word).or_else(|| next.filter(|_| is_user_flag(word)));
        if let Some((v_at, v)) = user.filter(|_| curl) {
            if let Some(colon) = v.find(':') {
                out.push(v_at + colon + 1..v_at + v.len());
            }
            continue;
        }
        let flag = word.starts_with('-') && !word.contains('=') && word.len() > 1;
        // `Name: value` (a header); quoted JSON keys are `assignments`' business.
        let header =
            word.len() > 1 && word.ends_with(':') && word[..word.len() - 1].bytes().all(in_name);
        if !(flag || header) || !is_sensitive(word.trim_end_matches(':')) {
            continue;
        }
        let Some((v_at, v)) = next else { continue };
        let is_option = v.starts_with('-') && v.len() > 1;
        if !is_option && !is_scheme(v) {
            out.push(v_at..v_at + v.len());
        }
    }
}

/// curl's options whose value is `user:password`.
fn is_user_flag(word: &str) -> bool {
    matches!(word, "-u" | "--user" | "--proxy-user" | "-U")
}

/// `--user=name:pw` or the attached `-uname:pw` in the word at `at`: the value and where it
/// starts.
fn user_option(at: usize, word: &str) -> Option<(usize, &str)> {
    ["--user=", "--proxy-user=", "-u", "-U"]
        .into_iter()
        .find_map(|flag| {
            let v = word.strip_prefix(flag).filter(|v| !v.is_empty())?;
            Some((at + flag.len(), v))
        })
}

/// What follows `Bearer` or `Basic` (any case), after spaces, `:` or `=`:
/// `Authorization:Bearer x`, `Bearer:x`, `bearer=x`.
pub(super) fn schemes(text: &str, out: &mut Vec<Range<usize>>) {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    for scheme in SCHEMES {
        let mut from = 0;
        while let Some(i) = lower[from..].find(scheme) {
            let at = from + i;
            from = at + scheme.len();
            let starts_word = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
            let mut v = from;
            while v < bytes.len() && matches!(bytes[v], b' ' | b':' | b'=') {
                v += 1;
            }
            if starts_word && v > from {
                if let Some(r) = value_at(bytes, v) {
                    // Past the value: `bearer:bearer:…` stays linear.
                    from = from.max(r.end);
                    out.push(r);
                }
            }
        }
    }
}

/// The password of `scheme://user:password@host`.
pub(super) fn url_passwords(text: &str, out: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some((start, end)) = url_authority(text, from) {
        from = end.max(start);
        let auth = &text[start..end];
        let Some(at) = auth.rfind('@') else { continue };
        if let Some(colon) = auth[..at].find(':') {
            out.push(start + colon + 1..start + at);
        }
    }
}

/// The body of a PEM private key, from its BEGIN line to its END line (or the end).
pub(super) fn private_keys(text: &str, out: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let begin = from + i + "-----BEGIN ".len();
        let Some(close) = text[begin..].find("-----") else {
            return;
        };
        let label_end = begin + close;
        let body = label_end + "-----".len();
        from = body;
        if !text[begin..label_end].contains("PRIVATE KEY") {
            continue;
        }
        let end = text[body..]
            .find("-----END")
            .map_or(text.len(), |e| body + e);
        if end > body {
            out.push(body..end);
        }
        from = end;
    }
}

/// Byte classes of the word scanners.
fn in_atom(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn base64ish(b: u8) -> bool {
    in_atom(b) || matches!(b, b'+' | b'/' | b'=')
}

/// Maximal runs of bytes of one class, as ranges.
fn runs(bytes: &[u8], class: fn(u8) -> bool) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() && !class(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        while i < bytes.len() && class(bytes[i]) {
            i += 1;
        }
        Some(start..i)
    })
}

/// Secrets recognised by their shape alone: access key ids, vendor tokens, JWTs, long hex,
/// UUIDs and long mixed-case runs. Returns whether an access key id was among them.
pub(super) fn shapes(text: &str, out: &mut Vec<Range<usize>>) -> bool {
    let bytes = text.as_bytes();
    let mut key_id = false;
    for r in runs(bytes, in_atom) {
        let atom = &text[r.clone()];
        if let Some(k) = key_ids(atom) {
            key_id = true;
            out.extend(k.into_iter().map(|k| r.start + k.start..r.start + k.end));
        } else if let Some(end) = jwt_end(bytes, r.clone()) {
            out.push(r.start..end);
        } else if is_vendor_token(atom) || is_hex_key(atom) || is_uuid(atom) {
            out.push(r);
        }
    }
    for r in runs(bytes, base64ish) {
        if bytes[r.start] == b'/' {
            // A path: its directories stay, a component that looks like a key goes.
            out.extend(components(bytes, r).filter(|c| looks_secret(&bytes[c.clone()])));
        } else if looks_secret(&bytes[r.clone()]) {
            out.push(r);
        }
    }
    key_id
}

/// The `/`-separated components of a range.
fn components(bytes: &[u8], r: Range<usize>) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = r.start;
    std::iter::from_fn(move || {
        while start < r.end && bytes[start] == b'/' {
            start += 1;
        }
        if start >= r.end {
            return None;
        }
        let end = bytes[start..r.end]
            .iter()
            .position(|&b| b == b'/')
            .map_or(r.end, |i| start + i);
        let c = start..end;
        start = end;
        Some(c)
    })
}

/// Access key ids inside an atom: a prefix and 16 upper-case letters or digits, not part of
/// a longer alphanumeric word.
fn key_ids(atom: &str) -> Option<Vec<Range<usize>>> {
    let b = atom.as_bytes();
    let found: Vec<Range<usize>> = (0..b.len())
        .filter(|&i| i == 0 || !b[i - 1].is_ascii_alphanumeric())
        .filter(|&i| {
            i + 20 <= b.len()
                && KEY_ID_PREFIXES
                    .iter()
                    .any(|p| b[i..].starts_with(p.as_bytes()))
                && b[i + 4..i + 20]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && b.get(i + 20).is_none_or(|c| !c.is_ascii_alphanumeric())
        })
        .map(|i| i..i + 20)
        .collect();
    (!found.is_empty()).then_some(found)
}

/// `eyJ…` header, `.` payload, `.` signature: the end of the whole token.
fn jwt_end(bytes: &[u8], head: Range<usize>) -> Option<usize> {
    if !bytes[head.clone()].starts_with(b"eyJ") || head.len() < 10 {
        return None;
    }
    let mut end = head.end;
    for _ in 0..2 {
        if bytes.get(end) != Some(&b'.') {
            return None;
        }
        end += 1;
        while end < bytes.len() && in_atom(bytes[end]) {
            end += 1;
        }
    }
    Some(end)
}

fn is_vendor_token(atom: &str) -> bool {
    TOKEN_PREFIXES.iter().any(|(p, min)| {
        atom.strip_prefix(p)
            .is_some_and(|rest| rest.len() >= *min && rest.bytes().all(in_atom))
    })
}

/// Hex of one case, at least [`MIN_HEX_RUN`] digits, with at least one letter and one digit
/// (so a long number or word is not hex).
fn is_hex_key(atom: &str) -> bool {
    let b = atom.as_bytes();
    let lower = b
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    let upper = b
        .iter()
        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c));
    b.len() >= MIN_HEX_RUN
        && (lower || upper)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(atom: &str) -> bool {
    let groups: Vec<&str> = atom.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Long, mixing upper case, lower case and digits, and not a path (in a secret a `/` is
/// rare).
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
