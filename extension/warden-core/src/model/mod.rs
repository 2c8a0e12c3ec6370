//! The shipped generic model (docs/detection.md): a random forest over the baseline
//! z-scores and the raw vector for the known attack classes, plus a PCA novelty score for
//! what no class covers. Trained offline by `warden train` (the `warden-cli` crate) with smartcore, shipped
//! in the layer as `/opt/warden/model.bin` ([`file`]), scored here without allocation beyond
//! the explanation list.
//!
//! Loading never panics: a missing, truncated, corrupt or mismatched file is a
//! [`ModelError`], and the detector then runs on baseline and rules alone.

pub mod codec;
pub mod file;
pub mod forest;
pub mod novelty;
pub mod scorer;

pub use scorer::{ModelOutput, Scorer};

use std::path::{Path, PathBuf};

use crate::features::N;
use crate::schema::Class;
use codec::{Reader, Writer};
use file::ModelHeader;
use forest::Forest;
use novelty::Novelty;

/// Inputs of the forest and the novelty part: the z-scores, then the raw vector.
pub const INPUTS: usize = 2 * N;

/// Name of the benign class in model files and corpus labels.
pub const BENIGN: &str = "benign";

/// Where the layer puts the model, relative to the extension executable's directory
/// (`/opt/extensions/warden` → `/opt/warden/model.bin`).
pub const LAYER_RELATIVE_PATH: &str = "../warden/model.bin";

/// Why a model could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No file at the path.
    #[error("no model file at {0}")]
    Missing(PathBuf),
    /// The file exists but could not be read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Shorter than its own length fields say.
    #[error("model file is truncated")]
    Truncated,
    /// Does not start with the model magic.
    #[error("not a Warden model file")]
    NotAModel,
    /// Larger than any model Warden writes.
    #[error("model file is too large ({0} bytes)")]
    TooLarge(usize),
    /// Contents do not match the recorded SHA-256.
    #[error("model file is corrupt: SHA-256 mismatch")]
    DigestMismatch,
    /// A layout this build cannot read.
    #[error("model file format {0} is not supported")]
    UnsupportedFormat(u32),
    /// The JSON header is unreadable.
    #[error("model header")]
    Header(#[source] serde_json::Error),
    /// Trained on another vector version.
    #[error("model is for feature vector version {file}, this build computes {expected}")]
    VectorVersion {
        /// The file's version.
        file: u32,
        /// This build's version.
        expected: u32,
    },
    /// Feature names or order differ from this build's.
    #[error("model feature names do not match this build's feature vector")]
    FeatureNames,
    /// Feature transforms differ from this build's (a vector change without a version bump).
    #[error("model feature transforms do not match this build's feature vector")]
    FeatureTransforms,
    /// A class this build does not know.
    #[error("model has an unknown class {0:?}")]
    UnknownClass(String),
    /// The payload is structurally wrong.
    #[error("model payload is invalid: {0}")]
    Invalid(String),
}

/// The model the layer ships; implements [`Scorer`].
#[derive(Debug, Clone, PartialEq)]
pub struct ShippedModel {
    header: ModelHeader,
    /// Per class index; `None` is benign (index 0).
    classes: Vec<Option<Class>>,
    forest: Forest,
    novelty: Novelty,
    sha256: String,
}

impl ShippedModel {
    /// Assembles a model from its parts (training does this).
    pub fn new(header: ModelHeader, forest: Forest, novelty: Novelty) -> Result<Self, ModelError> {
        let classes = parse_classes(&header.classes)?;
        check_shapes(&classes, &forest, &novelty)?;
        Ok(ShippedModel {
            header,
            classes,
            forest,
            novelty,
            sha256: String::new(),
        })
    }

    /// The file image, with its digest.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let mut w = Writer::default();
        self.forest.write(&mut w);
        self.novelty.write(&mut w);
        file::encode(&self.header, &w.finish())
    }

    /// Reads a file image, checking digest, format, vector and payload.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let decoded = file::decode(bytes)?;
        let mut r = Reader::new(decoded.payload);
        let forest = Forest::read(&mut r)?;
        let novelty = Novelty::read(&mut r)?;
        r.end()?;
        let mut model = ShippedModel::new(decoded.header, forest, novelty)?;
        model.sha256 = decoded.sha256;
        Ok(model)
    }

    /// Loads a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ModelError::Missing(path.to_path_buf()),
            _ => ModelError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        ShippedModel::from_bytes(&bytes)
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Header: vector, classes and training metadata.
    pub fn header(&self) -> &ModelHeader {
        &self.header
    }

    /// SHA-256 of the file it was loaded from (empty for a model built in memory).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The random forest.
    pub fn forest(&self) -> &Forest {
        &self.forest
    }

    /// The novelty part.
    pub fn novelty(&self) -> &Novelty {
        &self.novelty
    }

    /// Nodes in the forest.
    pub fn nodes(&self) -> usize {
        self.forest.len()
    }

    /// Forest importance per feature (z and raw inputs added), summing to 1.
    pub fn importance(&self) -> [f32; N] {
        let mut out = [0.0; N];
        for (i, v) in self.forest.importance.iter().enumerate() {
            out[i % N] += v;
        }
        out
    }
}

/// The model file to use: `configured` (from `WARDEN_MODEL`) or the layer's copy next to
/// the running executable.
pub fn locate(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return Some(p.to_path_buf());
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(LAYER_RELATIVE_PATH))
}

/// Loads the model the extension should use (see [`locate`]).
pub fn load_default(configured: Option<&Path>) -> Result<ShippedModel, ModelError> {
    let path = locate(configured).unwrap_or_else(|| PathBuf::from(LAYER_RELATIVE_PATH));
    ShippedModel::load(&path)
}

/// The forest's and novelty part's input row: z-scores then raw values, NaN as 0.
pub fn inputs(raw: &[f32; N], z: &[f32; N]) -> [f32; INPUTS] {
    let mut x = [0.0; INPUTS];
    for (out, v) in x.iter_mut().zip(z.iter().chain(raw.iter())) {
        *out = if v.is_nan() { 0.0 } else { *v };
    }
    x
}

fn parse_classes(names: &[String]) -> Result<Vec<Option<Class>>, ModelError> {
    if names.first().map(String::as_str) != Some(BENIGN) {
        return Err(ModelError::Invalid("class 0 must be benign".into()));
    }
    let mut out = vec![None];
    for name in &names[1..] {
        let class = Class::parse(name).ok_or_else(|| ModelError::UnknownClass(name.clone()))?;
        out.push(Some(class));
    }
    Ok(out)
}

fn check_shapes(
    classes: &[Option<Class>],
    forest: &Forest,
    novelty: &Novelty,
) -> Result<(), ModelError> {
    if forest.n_inputs != INPUTS || novelty.dim() != INPUTS {
        return Err(ModelError::Invalid(
            "input count differs from the vector".into(),
        ));
    }
    if forest.n_classes != classes.len() || classes.len() > MAX_CLASSES {
        return Err(ModelError::Invalid(
            "class count differs from the header".into(),
        ));
    }
    Ok(())
}

/// Most classes a model may have (benign, every [`Class`]).
const MAX_CLASSES: usize = Class::ALL.len() + 1;

impl Scorer for ShippedModel {
    fn score(&self, raw: &[f32; N], z: &[f32; N]) -> ModelOutput {
        let x = inputs(raw, z);
        let n_classes = self.classes.len();
        let mut votes = [0u32; MAX_CLASSES];
        let mut credit = [0f32; INPUTS];
        self.forest.score(&x, &mut votes[..n_classes], &mut credit);
        let trees = self.forest.roots.len().max(1) as f32;
        let benign_share = votes[0] as f32 / trees;
        // The class is the most voted attack class; its probability is the attack share
        // of the votes (however the attack votes split between classes).
        let class = if benign_share < self.header.benign_threshold {
            let best = (1..n_classes).fold(1, |b, i| if votes[i] > votes[b] { i } else { b });
            self.classes
                .get(best)
                .copied()
                .flatten()
                .map(|c| (c, 1.0 - benign_share))
        } else {
            None
        };
        let mut parts = [0f32; INPUTS];
        let residual = self.novelty.residual(&x, &mut parts);
        let anomaly = self.novelty.anomaly(residual);
        // Explain the forest's call when it names a class, the residual otherwise.
        let source = if class.is_some() { &credit } else { &parts };
        let mut contributions: Vec<(usize, f32)> = (0..N)
            .map(|i| (i, source[i].max(0.0) + source[i + N].max(0.0)))
            .filter(|(_, v)| *v > 0.0 && v.is_finite())
            .collect();
        contributions.sort_by(|a, b| b.1.total_cmp(&a.1));
        ModelOutput {
            class,
            anomaly,
            contributions,
        }
    }
}
