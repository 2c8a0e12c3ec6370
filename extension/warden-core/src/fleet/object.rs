//! The profile object: what the fleet's profiler writes to S3, one per function, and what
//! Warden reads at init. Defined once here so that the writer and the reader cannot drift.
//!
//! ```json
//! {"warden_profile":1,"sha256":"<hex>","content":{"function":"orders","generated_unix_ms":…,
//!  "environments":3,"profile":{…BaselineProfile…},"policy":"…"}}
//! ```
//!
//! `sha256` is the SHA-256 of `content` exactly as its bytes stand in the object (the writer
//! puts compact JSON there); the profiler also sets it as the object's metadata `sha256`. The
//! hash catches a truncated or altered object, and lets a cached copy be checked against what
//! S3 says the object is now. It is not a signature: who can write the object can write its
//! hash, which is why only the profiler's role may write the prefix (docs/fleet-learning.md).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::detect::BaselineProfile;

/// The object format's version (`warden_profile`).
pub const OBJECT_VERSION: u32 = 1;
/// The largest object read: a profile is a few kilobytes, its policy as many again.
pub const MAX_OBJECT_BYTES: usize = 256 * 1024;
/// The name of the object's user metadata that holds the content hash (`x-amz-meta-sha256`).
pub const SHA256_METADATA: &str = "sha256";

/// What the object holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileContent {
    /// The function the profile was learned from (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function: String,
    /// When the profiler built it, Unix ms.
    pub generated_unix_ms: u64,
    /// Execution environments (log streams) the clean invocations came from.
    pub environments: u64,
    /// The baseline and the promoted habits.
    pub profile: BaselineProfile,
    /// The in-process guard's policy exported from the profile, when the profiler was asked
    /// for one (for review; the guard reads its policy from `WARDEN_POLICY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// An object ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// The content hash (hex), for the object's metadata.
    pub sha256: String,
}

/// A read object, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// What it holds.
    pub content: ProfileContent,
    /// The content hash, as computed here (hex).
    pub sha256: String,
}

/// Why an object cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// Larger than [`MAX_OBJECT_BYTES`].
    #[error("the object is {bytes} bytes, over the bound of {MAX_OBJECT_BYTES}")]
    TooLarge {
        /// Its size.
        bytes: u64,
    },
    /// Not a profile object.
    #[error("the object is not a profile object: {0}")]
    Malformed(String),
    /// Written by a newer profiler.
    #[error("the object has format version {0}, this build reads {OBJECT_VERSION}")]
    Version(u32),
    /// The content does not hash to the object's hash, or to the one S3 holds for it.
    #[error("the object's content does not match its sha256")]
    Hash,
    /// Learned from another function.
    #[error("the profile is for function {found:?}, not {expected:?}")]
    Function {
        /// The function it names.
        found: String,
        /// This function.
        expected: String,
    },
}

#[derive(Deserialize)]
struct Envelope<'a> {
    warden_profile: u32,
    sha256: String,
    #[serde(borrow)]
    content: &'a RawValue,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The object for `content`.
pub fn encode(content: &ProfileContent) -> Result<Encoded, serde_json::Error> {
    let inner = serde_json::to_string(content)?;
    let sha256 = sha256_hex(inner.as_bytes());
    let bytes = format!(
        "{{\"warden_profile\":{OBJECT_VERSION},\"sha256\":\"{sha256}\",\"content\":{inner}}}"
    )
    .into_bytes();
    Ok(Encoded { bytes, sha256 })
}

/// Reads an object and checks it: size, format, hash, and that it is `function`'s. Whether
/// its profile fits this build's features is the detector's check.
pub fn decode(bytes: &[u8], function: &str) -> Result<Decoded, ObjectError> {
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(ObjectError::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| ObjectError::Malformed(e.to_string()))?;
    if envelope.warden_profile != OBJECT_VERSION {
        return Err(ObjectError::Version(envelope.warden_profile));
    }
    let sha256 = sha256_hex(envelope.content.get().as_bytes());
    if !sha256.eq_ignore_ascii_case(&envelope.sha256) {
        return Err(ObjectError::Hash);
    }
    let content: ProfileContent = serde_json::from_str(envelope.content.get())
        .map_err(|e| ObjectError::Malformed(e.to_string()))?;
    if content.function != function {
        return Err(ObjectError::Function {
            found: content.function.chars().take(64).collect(),
            expected: function.to_string(),
        });
    }
    Ok(Decoded { content, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Baseline;

    fn content(function: &str) -> ProfileContent {
        let mut b = Baseline::new();
        for i in 0..25 {
            b.observe(&[i as f32; crate::features::N]);
        }
        let mut profile = b.to_profile();
        profile.shell_shapes = vec!["sh -c gzip -c".into()];
        ProfileContent {
            function: function.into(),
            generated_unix_ms: 1_700_000_000_000,
            environments: 3,
            profile,
            policy: None,
        }
    }

    #[test]
    fn an_object_reads_back_as_written() {
        let written = encode(&content("orders")).unwrap();
        let read = decode(&written.bytes, "orders").unwrap();
        assert_eq!(read.content, content("orders"));
        assert_eq!(read.sha256, written.sha256);
        assert_eq!(written.sha256.len(), 64);
    }

    #[test]
    fn a_changed_truncated_foreign_or_huge_object_is_refused() {
        let written = encode(&content("orders")).unwrap();
        let text = String::from_utf8(written.bytes.clone()).unwrap();
        let changed = text.replace("gzip -c", "nc -e /bin/sh");
        assert_eq!(decode(changed.as_bytes(), "orders"), Err(ObjectError::Hash));
        let truncated = &written.bytes[..written.bytes.len() - 10];
        assert!(matches!(
            decode(truncated, "orders"),
            Err(ObjectError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"{\"median\": [1, 2]}", "orders"),
            Err(ObjectError::Malformed(_))
        ));
        assert_eq!(
            decode(&written.bytes, "billing"),
            Err(ObjectError::Function {
                found: "orders".into(),
                expected: "billing".into()
            })
        );
        let newer = text.replacen("\"warden_profile\":1", "\"warden_profile\":2", 1);
        assert_eq!(
            decode(newer.as_bytes(), "orders"),
            Err(ObjectError::Version(2))
        );
        let huge = vec![b' '; MAX_OBJECT_BYTES + 1];
        assert!(matches!(
            decode(&huge, "orders"),
            Err(ObjectError::TooLarge { .. })
        ));
    }
}
