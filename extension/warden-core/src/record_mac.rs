//! Authenticated record lines: with a per-deployment key (`WARDEN_RECORD_KEY`), every record
//! line Warden prints ends with `"warden_mac":"<HMAC-SHA256 in hex>"`, computed over the line
//! as it was before that field was added. Training (`warden train`) learns only from lines
//! whose MAC it can check, so that text a function prints into its own log (a forged record)
//! teaches nothing. The exact bytes are signed, so no canonical JSON is needed: CloudWatch
//! Logs keeps a line's text as printed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The field that carries the MAC.
pub const FIELD: &str = "warden_mac";

/// Shortest key accepted, in bytes: shorter keys are guessable.
pub const MIN_KEY_LEN: usize = 16;

/// Hex digits of a MAC.
const MAC_HEX: usize = 64;

/// A record key, from configuration. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordKey(Vec<u8>);

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKey(..)")
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Too short to resist guessing.
    #[error("record key is {0} bytes; at least {MIN_KEY_LEN} are required")]
    TooShort(usize),
}

impl RecordKey {
    /// A key from its text (used as bytes, as given).
    pub fn new(text: &str) -> Result<RecordKey, KeyError> {
        let text = text.trim();
        if text.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort(text.len()));
        }
        Ok(RecordKey(text.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }
}

/// What a line's MAC says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Signed with the key.
    Valid,
    /// No MAC field.
    Unsigned,
    /// A MAC that does not match (forged, altered, or another key).
    Invalid,
}

/// Appends the MAC field to a serialised JSON object (`{...}`), in place. A buffer that is
/// not an object is left as it is.
pub fn sign(key: &RecordKey, line: &mut Vec<u8>) {
    if line.len() < 2 || line.last() != Some(&b'}') {
        return;
    }
    let mut mac = key.mac();
    mac.update(line);
    let tag = mac.finalize().into_bytes();
    line.pop();
    if line.len() > 1 {
        line.push(b',');
    }
    line.extend_from_slice(b"\"");
    line.extend_from_slice(FIELD.as_bytes());
    line.extend_from_slice(b"\":\"");
    for b in tag.iter() {
        line.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    line.extend_from_slice(b"\"}");
}

/// Checks a line; `None` as the key checks nothing and reports a MAC-less line as unsigned
/// and a line with one as invalid (it cannot be told apart from a forgery).
pub fn check(key: Option<&RecordKey>, line: &str) -> Check {
    let line = line.trim_end();
    let Some((signed, tag)) = split(line) else {
        return if line.contains(FIELD) {
            Check::Invalid
        } else {
            Check::Unsigned
        };
    };
    let (Some(key), Some(tag)) = (key, unhex(tag)) else {
        return Check::Invalid;
    };
    let mut mac = key.mac();
    mac.update(signed.as_bytes());
    match mac.verify_slice(&tag) {
        Ok(()) => Check::Valid,
        Err(_) => Check::Invalid,
    }
}

/// The signed text (the object as it was before the field) and the MAC's hex.
fn split(line: &str) -> Option<(String, &str)> {
    let suffix_len = FIELD.len() + MAC_HEX + 6; // `"` FIELD `":"` hex `"}`
    let cut = line.len().checked_sub(suffix_len)?;
    let (body, suffix) = (line.get(..cut)?, line.get(cut..)?);
    let rest = suffix.strip_prefix('"')?.strip_prefix(FIELD)?;
    let hex = rest.strip_prefix("\":\"")?.strip_suffix("\"}")?;
    let body = body.strip_suffix(',').unwrap_or(body);
    if !body.starts_with('{') {
        return None;
    }
    Some((format!("{body}}}"), hex))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != MAC_HEX {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RecordKey {
        RecordKey::new("a-deployment-key-0123456789").unwrap()
    }

    #[test]
    fn a_signed_line_checks_and_any_change_breaks_it() {
        let mut line = br#"{"warden_schema":3,"seq":1}"#.to_vec();
        sign(&key(), &mut line);
        let text = String::from_utf8(line).unwrap();
        assert!(text.starts_with(r#"{"warden_schema":3,"seq":1,"warden_mac":""#));
        assert_eq!(check(Some(&key()), &text), Check::Valid);
        let altered = text.replace("\"seq\":1", "\"seq\":2");
        assert_eq!(check(Some(&key()), &altered), Check::Invalid);
        let other = RecordKey::new("another-key-0123456789").unwrap();
        assert_eq!(check(Some(&other), &text), Check::Invalid);
        assert_eq!(check(None, &text), Check::Invalid);
    }

    #[test]
    fn unsigned_and_forged_lines() {
        let plain = r#"{"warden_schema":3,"seq":1}"#;
        assert_eq!(check(Some(&key()), plain), Check::Unsigned);
        let forged = format!(r#"{{"warden_schema":3,"warden_mac":"{}"}}"#, "0".repeat(64));
        assert_eq!(check(Some(&key()), &forged), Check::Invalid);
        assert_eq!(
            check(Some(&key()), r#"{"warden_mac":"zz"}"#),
            Check::Invalid
        );
    }

    #[test]
    fn an_empty_object_and_odd_text_do_not_panic() {
        let mut line = b"{}".to_vec();
        sign(&key(), &mut line);
        let text = String::from_utf8(line).unwrap();
        assert_eq!(check(Some(&key()), &text), Check::Valid);
        let mut not_json = b"abc".to_vec();
        sign(&key(), &mut not_json);
        assert_eq!(not_json, b"abc");
        for odd in ["", "}", "é", "\"warden_mac\"", "{é\"warden_mac\":\"\"}"] {
            let _ = check(Some(&key()), odd);
        }
    }

    #[test]
    fn short_keys_are_refused_and_never_printed() {
        assert_eq!(RecordKey::new("short"), Err(KeyError::TooShort(5)));
        assert_eq!(format!("{:?}", key()), "RecordKey(..)");
    }
}
