//! The role's secret access key as it would appear in a payload that carries it out.
//!
//! AWS SDKs never send the secret key: they sign with it. Its bytes in what a process sends
//! over the network are stolen credentials, however the code got them (`os.environ`,
//! `process.env`, `/proc/self/environ`, a file).
//!
//! What is searched for, built once at load:
//! - the key's longest piece without `/`, `+` or `=`, the characters URL, form and some JSON
//!   encoders rewrite (so `%2F` or `\/` in place of `/` still matches);
//! - the same for the key in base64, at each of the three offsets it can start at within a
//!   3-byte group (a dumped environment encoded whole), which also covers base64url.
//!
//! A key split across separate calls, compressed or encrypted before the call (TLS included)
//! is not seen here.

use memchr::memmem::Finder;

/// Shortest piece worth searching for: 16 characters of a random key do not occur by chance.
const MIN_PIECE: usize = 16;

/// How the key appeared in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// As text, or URL, form or JSON encoded.
    Text,
    /// Base64 or base64url.
    Base64,
}

impl Encoding {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Encoding::Text => "text",
            Encoding::Base64 => "base64",
        }
    }
}

/// The searches for one key. Built once; searching allocates nothing.
pub(crate) struct SecretKey {
    needles: Vec<(Encoding, Finder<'static>)>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        write!(f, "SecretKey({} needles)", self.needles.len())
    }
}

impl SecretKey {
    /// The searches for `key`, or `None` when it is too short to search for safely.
    pub(crate) fn new(key: &[u8]) -> Option<SecretKey> {
        let mut needles = Vec::with_capacity(4);
        add_piece(&mut needles, Encoding::Text, key);
        for skip in 0..3 {
            let rest = key.get(skip..).unwrap_or_default();
            let whole_groups = rest.len() / 3 * 3;
            add_piece(
                &mut needles,
                Encoding::Base64,
                &base64(&rest[..whole_groups]),
            );
        }
        if needles.is_empty() {
            None
        } else {
            Some(SecretKey { needles })
        }
    }

    /// How `payload` carries the key, if it does.
    pub(crate) fn found_in(&self, payload: &[u8]) -> Option<Encoding> {
        if payload.len() < MIN_PIECE {
            return None;
        }
        self.needles
            .iter()
            .find(|(_, finder)| finder.find(payload).is_some())
            .map(|(encoding, _)| *encoding)
    }
}

fn add_piece(needles: &mut Vec<(Encoding, Finder<'static>)>, encoding: Encoding, text: &[u8]) {
    // A key with slashes all along is searched for whole: only as it is.
    let piece = match longest_piece(text) {
        piece if piece.len() >= MIN_PIECE => piece,
        _ => text,
    };
    if piece.len() >= MIN_PIECE {
        needles.push((encoding, Finder::new(piece).into_owned()));
    }
}

/// The longest run of `text` that URL, form and JSON encoders and base64url leave as it is.
fn longest_piece(text: &[u8]) -> &[u8] {
    text.split(|b| matches!(b, b'/' | b'+' | b'='))
        .max_by_key(|piece| piece.len())
        .unwrap_or_default()
}

/// Standard base64, without padding (only whole 3-byte groups are ever given).
fn base64(bytes: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(bytes.len() / 3 * 4 + 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = group.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped like a real secret access key (40 characters of base64's alphabet).
    const KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn key() -> SecretKey {
        SecretKey::new(KEY.as_bytes()).expect("a key")
    }

    fn url_encoded(text: &str) -> String {
        text.replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D")
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        assert_eq!(base64(b"Man"), b"TWFu");
        assert_eq!(
            base64(b"any carnal pleasure"),
            b"YW55IGNhcm5hbCBwbGVhc3VyZQ"
        );
    }

    #[test]
    fn the_key_as_text_json_or_url_encoded_is_found() {
        let key = key();
        let json =
            format!("{{\"AWS_SECRET_ACCESS_KEY\": \"{KEY}\", \"AWS_REGION\": \"eu-west-1\"}}");
        let escaped = json.replace('/', "\\/");
        let query = format!(
            "GET /p.gif?AWS_SECRET_ACCESS_KEY={} HTTP/1.1\r\n",
            url_encoded(KEY)
        );
        for payload in [KEY.to_string(), json, escaped, query] {
            assert_eq!(
                key.found_in(payload.as_bytes()),
                Some(Encoding::Text),
                "{payload}"
            );
        }
    }

    #[test]
    fn the_key_in_base64_is_found_wherever_it_starts() {
        let key = key();
        for prefix in ["", "A", "AB", "AWS_SECRET_ACCESS_KEY=", "x=1&k="] {
            let dump = format!("{prefix}{KEY}\0AWS_REGION=eu-west-1\0");
            let standard = base64(dump.as_bytes());
            let url_safe: Vec<u8> = standard
                .iter()
                .map(|&b| match b {
                    b'+' => b'-',
                    b'/' => b'_',
                    other => other,
                })
                .collect();
            assert_eq!(
                key.found_in(&standard),
                Some(Encoding::Base64),
                "{prefix:?}"
            );
            assert_eq!(
                key.found_in(&url_safe),
                Some(Encoding::Base64),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn what_only_resembles_the_key_is_not_found() {
        let key = key();
        let signed = "Authorization: AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261207/eu-west-1/\
                      s3/aws4_request, SignedHeaders=host, Signature=0123456789abcdef";
        let cut = &KEY[..12];
        for payload in [signed, cut, "", "wJalrXUtnFEMI/K7MDENG"] {
            assert_eq!(key.found_in(payload.as_bytes()), None, "{payload}");
        }
    }

    #[test]
    fn a_short_or_empty_key_is_not_searched_for() {
        assert!(SecretKey::new(b"").is_none());
        assert!(SecretKey::new(b"short/key").is_none());
    }

    #[test]
    fn a_key_without_a_long_piece_is_searched_for_whole() {
        let slashy = "ab/cd/ef/gh/ij/kl/mn/op/qr/st/uv/wx/yz/AB";
        let key = SecretKey::new(slashy.as_bytes()).expect("a key");
        assert_eq!(
            key.found_in(format!("k={slashy}").as_bytes()),
            Some(Encoding::Text)
        );
        assert_eq!(key.found_in(b"ab/cd/ef/gh/ij/kl/mn/op"), None);
    }
}
