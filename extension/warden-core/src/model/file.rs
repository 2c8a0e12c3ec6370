//! The model file format.
//!
//! ```text
//! magic   8 bytes  "WARDNMDL"
//! format  u32 LE   FORMAT_VERSION
//! hlen    u32 LE   then hlen bytes of JSON header (ModelHeader)
//! plen    u32 LE   then plen bytes of payload (codec.rs arrays: forest, novelty)
//! sha256  32 bytes over everything before it
//! ```
//!
//! The digest is checked before anything is parsed; then the header's vector version and
//! feature names must match what this build computes, so a model trained on other features
//! is refused rather than silently misread.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ModelError;
use crate::features::{FEATURES, FEATURE_NAMES, VECTOR_VERSION};

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"WARDNMDL";

/// Version of the layout above and of the payload's arrays.
pub const FORMAT_VERSION: u32 = 1;

/// Largest file accepted: the shipped model must stay under 1 MB; the margin is for
/// models trained on more data offline.
pub const MAX_FILE_BYTES: usize = 8 << 20;

const DIGEST_LEN: usize = 32;

/// What the model was trained on, for people and for `warden eval`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Seed of the forest's bootstrap and feature sampling.
    pub seed: u64,
    /// Free text: where the records came from.
    pub data: String,
    /// Corpus seeds of the training records.
    pub corpus_seeds: Vec<u64>,
    /// Functions whose records were used.
    pub functions: Vec<String>,
    /// Training rows per class.
    pub rows: Vec<(String, u64)>,
    /// Trees in the forest.
    pub trees: u32,
    /// Depth limit of each tree.
    pub max_depth: u32,
    /// Principal components kept by the novelty part.
    pub components: u32,
    /// Benign quantile the novelty is calibrated to.
    pub quantile_level: f32,
    /// Multiple of that quantile's residual at which the novelty score is 0.5.
    #[serde(default)]
    pub novelty_margin: f32,
}

/// The JSON header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// Vector version the model was trained on.
    pub vector_version: u32,
    /// Feature names, in vector order.
    pub feature_names: Vec<String>,
    /// Each feature's transform (`Linear`, `LogKib`, ...), in vector order: a second check
    /// that catches a transform changed without a version bump.
    pub feature_transforms: Vec<String>,
    /// Class names; index 0 is `benign`.
    pub classes: Vec<String>,
    /// Benign vote share below which the forest calls an attack.
    pub benign_threshold: f32,
    /// Training metadata.
    pub training: TrainingInfo,
}

/// Serialises header and payload into a file image.
pub fn encode(header: &ModelHeader, payload: &[u8]) -> Result<Vec<u8>, ModelError> {
    let json = serde_json::to_vec(header).map_err(ModelError::Header)?;
    let mut out = Vec::with_capacity(json.len() + payload.len() + 64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    for part in [&json[..], payload] {
        let len = u32::try_from(part.len()).map_err(|_| ModelError::TooLarge(part.len()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part);
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// A checked file image: its header, payload and digest (hex).
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The JSON header.
    pub header: ModelHeader,
    /// The binary payload (forest, then novelty part).
    pub payload: &'a [u8],
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
}

/// Checks magic, digest, format and header against this build's vector.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, ModelError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ModelError::TooLarge(bytes.len()));
    }
    if bytes.len() < MAGIC.len() + 12 + DIGEST_LEN {
        return Err(ModelError::Truncated);
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(ModelError::NotAModel);
    }
    // Lengths first, so a file cut short is told apart from one whose bytes changed.
    let mut rest = &bytes[MAGIC.len()..];
    let format = take_u32(&mut rest)?;
    let json = take_part(&mut rest)?;
    let payload = take_part(&mut rest)?;
    if rest.len() != DIGEST_LEN {
        return Err(if rest.len() < DIGEST_LEN {
            ModelError::Truncated
        } else {
            ModelError::Invalid("bytes after the digest".into())
        });
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if Sha256::digest(body)[..] != digest[..] {
        return Err(ModelError::DigestMismatch);
    }
    if format != FORMAT_VERSION {
        return Err(ModelError::UnsupportedFormat(format));
    }
    let header: ModelHeader = serde_json::from_slice(json).map_err(ModelError::Header)?;
    check_vector(&header)?;
    Ok(Decoded {
        header,
        payload,
        sha256: hex(digest),
    })
}

fn check_vector(header: &ModelHeader) -> Result<(), ModelError> {
    if header.vector_version != VECTOR_VERSION {
        return Err(ModelError::VectorVersion {
            file: header.vector_version,
            expected: VECTOR_VERSION,
        });
    }
    let same = header.feature_names.len() == FEATURE_NAMES.len()
        && header
            .feature_names
            .iter()
            .zip(FEATURE_NAMES)
            .all(|(a, b)| a == b);
    if !same {
        return Err(ModelError::FeatureNames);
    }
    if header.feature_transforms != transforms() {
        return Err(ModelError::FeatureTransforms);
    }
    Ok(())
}

/// This build's feature transforms, as recorded in headers.
pub fn transforms() -> Vec<String> {
    FEATURES
        .iter()
        .map(|f| format!("{:?}", f.transform))
        .collect()
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, ModelError> {
    let (head, tail) = rest.split_first_chunk::<4>().ok_or(ModelError::Truncated)?;
    *rest = tail;
    Ok(u32::from_le_bytes(*head))
}

fn take_part<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], ModelError> {
    let len = take_u32(rest)? as usize;
    if rest.len() < len {
        return Err(ModelError::Truncated);
    }
    let (part, tail) = rest.split_at(len);
    *rest = tail;
    Ok(part)
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
