//! Records for training and evaluation: labelled lines from the scenario corpus
//! (tests/scenarios/README.md) or bare feature records (what `WARDEN_RECORDS=1` or learn mode
//! prints), reduced to vectors and replayed through a per-environment [`Baseline`] in
//! record order, exactly as the extension sees them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use warden_core::detect::baseline::{Baseline, BaselineProfile};
use warden_core::detect::indicators::{Familiar, Tracker};
use warden_core::detect::DetectorConfig;
use warden_core::features::{vector, N};
use warden_core::model::BENIGN;
use warden_core::record_mac::{self, Check, RecordKey};
use warden_core::schema::Class;
use warden_core::schema::{FeatureRecord, RecordKind, SCHEMA_VERSION};
use warden_core::schema::{Observation, TmpAction};

/// Why records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is neither a labelled record nor a feature record.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A label names no known class.
    #[error("{path}:{line}: unknown label {label:?}")]
    Label {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The label.
        label: String,
    },
}

/// One invocation ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `benign` or a [`Class`] name; `None` for unlabelled records.
    pub label: Option<String>,
    /// Function name.
    pub function: String,
    /// The baseline's scope: the corpus run (one execution environment) or the function.
    pub scope: String,
    /// Corpus seed and split, when labelled.
    pub seed: Option<u64>,
    /// `train` or `test`.
    pub split: Option<String>,
    /// Corpus stage (`attack`, `residual`) or none.
    pub stage: Option<String>,
    /// Position in its environment (1 = first invocation).
    pub seq: u64,
    /// Cold start.
    pub cold: bool,
    /// The vector.
    pub raw: [f32; N],
    /// The record itself, for scoring through the detector.
    pub record: Box<FeatureRecord>,
}

impl Row {
    /// An attack row (labelled, not benign).
    pub fn is_attack(&self) -> bool {
        self.label.as_deref().is_some_and(|l| l != BENIGN)
    }
}

/// Lines skipped while reading, by reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The corpus had no feature record for the invocation.
    pub no_record: u64,
    /// Init-phase records.
    pub init: u64,
    /// Records of another schema version.
    pub schema: u64,
    /// Bare records without a MAC, refused for training (no `--accept-unsigned`).
    pub unsigned: u64,
    /// Bare records whose MAC does not check (forged, altered, another key), and labelled
    /// lines found in a log (only the corpus files hold those).
    pub forged: u64,
}

/// Which lines training believes. Function code can print anything into its own log, so a
/// bare record is learned only when it carries a valid MAC ([`record_mac`]).
#[derive(Debug, Clone)]
pub enum Trust {
    /// Every line: evaluation, which learns nothing it keeps.
    Any,
    /// Bare records signed with the key; unsigned ones only when `accept_unsigned`. With no
    /// key, nothing can be checked: every bare record counts as unsigned.
    Signed {
        /// The deployment's record key.
        key: Option<RecordKey>,
        /// Accept records without a MAC (records from a source known to be clean).
        accept_unsigned: bool,
    },
}

impl Trust {
    /// Whether a bare record line is believed; counts the refused ones.
    fn admits(&self, line: &str, skipped: &mut Skipped) -> bool {
        let Trust::Signed {
            key,
            accept_unsigned,
        } = self
        else {
            return true;
        };
        let Some(key) = key else {
            if !accept_unsigned {
                skipped.unsigned += 1;
            }
            return *accept_unsigned;
        };
        match record_mac::check(Some(key), line) {
            Check::Valid => true,
            Check::Unsigned if *accept_unsigned => true,
            Check::Unsigned => {
                skipped.unsigned += 1;
                false
            }
            Check::Invalid => {
                skipped.forged += 1;
                false
            }
        }
    }
}

/// Where a line was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A records file given on the command line (the corpus, or exported records).
    File,
    /// A log group: what the function printed is there too.
    Log,
}

#[derive(Default, Deserialize)]
struct Labelled {
    label: Option<String>,
    function: Option<String>,
    run: Option<String>,
    seed: Option<u64>,
    split: Option<String>,
    stage: Option<String>,
}

/// Maps a corpus label to the model's class name (`benign` or [`Class::as_str`]).
pub fn class_name(label: &str) -> Option<&'static str> {
    let alias = match label {
        "egress_exfiltration" => "exfiltration_egress",
        "response_exfiltration" => "exfiltration_response",
        other => other,
    };
    if alias == BENIGN {
        return Some(BENIGN);
    }
    Class::parse(alias).map(Class::as_str)
}

/// Reads one JSONL file of labelled or bare records, in file order, believing every line.
pub fn read(path: &Path, skipped: &mut Skipped) -> Result<Vec<Row>, DatasetError> {
    read_trusted(path, &Trust::Any, skipped)
}

/// Reads one JSONL file of labelled or bare records, in file order; bare records only as far
/// as `trust` believes them.
pub fn read_trusted(
    path: &Path,
    trust: &Trust,
    skipped: &mut Skipped,
) -> Result<Vec<Row>, DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(row) = parse_line(path, i + 1, &line, (trust, Origin::File), skipped)? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Parses one line of a log (a CloudWatch log event): `source` names it in errors; `None`
/// for a line that is not a record of this schema, or that `trust` does not believe. A
/// labelled corpus line is never believed from a log.
pub fn parse_text(
    source: &str,
    line_no: usize,
    line: &str,
    trust: &Trust,
    skipped: &mut Skipped,
) -> Result<Option<Row>, DatasetError> {
    parse_line(
        Path::new(source),
        line_no,
        line,
        (trust, Origin::Log),
        skipped,
    )
}

fn parse_line(
    path: &Path,
    line_no: usize,
    line: &str,
    (trust, origin): (&Trust, Origin),
    skipped: &mut Skipped,
) -> Result<Option<Row>, DatasetError> {
    let parse_err = |e: serde_json::Error| DatasetError::Parse {
        path: path.to_path_buf(),
        line: line_no,
        message: e.to_string(),
    };
    let mut value: serde_json::Value = serde_json::from_str(line).map_err(parse_err)?;
    let bare = value.get("warden_schema").is_some();
    let record_value = if bare {
        value.take()
    } else {
        value
            .get_mut("record")
            .map(|v| v.take())
            .unwrap_or_default()
    };
    if record_value.is_null() {
        skipped.no_record += 1;
        return Ok(None);
    }
    if record_value.get("warden_schema").and_then(|v| v.as_u64()) != Some(SCHEMA_VERSION.into()) {
        skipped.schema += 1;
        return Ok(None);
    }
    let record: FeatureRecord = serde_json::from_value(record_value).map_err(parse_err)?;
    // Judged once it is a feature record (health lines and findings are not learned anyway).
    let believed = match (bare, origin) {
        (true, _) => trust.admits(line, skipped),
        (false, Origin::File) => true,
        (false, Origin::Log) if matches!(trust, Trust::Any) => true,
        (false, Origin::Log) => {
            skipped.forged += 1;
            false
        }
    };
    if !believed {
        return Ok(None);
    }
    let labelled: Labelled = if bare {
        Labelled::default()
    } else {
        serde_json::from_value(value).map_err(parse_err)?
    };
    if record.kind == RecordKind::Init {
        skipped.init += 1;
        return Ok(None);
    }
    let label = match labelled.label {
        Some(l) => Some(
            class_name(&l)
                .ok_or_else(|| DatasetError::Label {
                    path: path.to_path_buf(),
                    line: line_no,
                    label: l.clone(),
                })?
                .to_string(),
        ),
        None => None,
    };
    let function = labelled
        .function
        .unwrap_or_else(|| record.function_name.clone());
    Ok(Some(Row {
        label,
        scope: labelled.run.unwrap_or_else(|| function.clone()),
        function,
        seed: labelled.seed,
        split: labelled.split,
        stage: labelled.stage,
        seq: record.seq,
        cold: record.cold,
        raw: vector(&record),
        record: Box::new(record),
    }))
}

/// Replays rows through one baseline per environment, in order, and returns each row's
/// z-scores. `alerted(row, z)` says whether the detector would have raised a finding; such
/// rows are not learned, as in the extension. A new environment starts at a cold start or
/// when the sequence number does not grow.
pub fn replay(rows: &[Row], mut alerted: impl FnMut(usize, &[f32; N]) -> bool) -> Vec<[f32; N]> {
    let mut envs: HashMap<&str, (Baseline, u64)> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let env = envs
            .entry(row.scope.as_str())
            .or_insert_with(|| (Baseline::new(), 0));
        if row.cold || row.seq <= env.1 {
            env.0 = Baseline::new();
        }
        env.1 = row.seq;
        let z = env.0.normalise(&row.raw);
        if !alerted(i, &z) {
            env.0.observe(&row.raw);
        }
        out.push(z);
    }
    out
}

/// One baseline profile per function, learned from all its rows in order (learn mode's
/// records span many environments; the profile is the function's history), with the default
/// [`Promotion`] rule.
pub fn profiles(rows: &[Row]) -> BTreeMap<String, BaselineProfile> {
    profiles_with(rows, &Promotion::default())
}

/// What may enter a function's profile (docs/fleet-learning.md, "Promotion rule"): only clean
/// invocations teach anything, and a habit only once it was seen often enough, in enough
/// distinct execution environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// A habit (program, shell command shape, destination, write directory) must be seen in
    /// at least this many execution environments (one log stream each); never fewer than
    /// [`HABIT_MIN_ENVIRONMENTS`].
    pub min_environments: usize,
    /// Request ids of invocations a finding named: neither their figures nor their habits are
    /// learned.
    pub flagged: HashSet<String>,
}

impl Default for Promotion {
    fn default() -> Self {
        Promotion {
            min_environments: HABIT_MIN_ENVIRONMENTS,
            flagged: HashSet::new(),
        }
    }
}

impl Promotion {
    /// Whether a row may teach anything: benign (or unlabelled) and named by no finding.
    pub fn is_clean(&self, row: &Row) -> bool {
        !row.is_attack()
            && row
                .record
                .request_id
                .as_ref()
                .is_none_or(|id| !self.flagged.contains(id))
    }
}

/// One baseline profile per function, learned from its clean rows in order, each habit
/// promoted by `rule`.
pub fn profiles_with(rows: &[Row], rule: &Promotion) -> BTreeMap<String, BaselineProfile> {
    let min_environments = rule.min_environments.max(HABIT_MIN_ENVIRONMENTS);
    let mut learned: BTreeMap<String, (Baseline, Habits)> = BTreeMap::new();
    for row in rows.iter().filter(|r| rule.is_clean(r)) {
        let (baseline, habits) = learned
            .entry(row.function.clone())
            .or_insert_with(|| (Baseline::new(), Habits::new(min_environments)));
        baseline.observe(&row.raw);
        habits.count(&row.scope, &row.record.evidence);
    }
    learned
        .into_iter()
        .map(|(f, (b, habits))| {
            let mut p = b.to_profile();
            let regular = habits.regular();
            p.known_exes = regular.exes;
            p.shell_shapes = regular.shapes;
            p.destinations = Some(regular.destinations);
            p.write_paths = Some(regular.write_paths);
            (f, p)
        })
        .collect()
}

/// A program or shell command enters a profile only when the function ran it in at least
/// this many invocations...
const HABIT_MIN_INVOCATIONS: u64 = 3;
/// ...and in this share of them: one attack in the learning history is not taught...
const HABIT_MIN_SHARE: f64 = 0.005;
/// ...and in at least this many execution environments: what one environment repeats (a
/// beacon planted there, records its code printed) is not the function's. The least
/// [`Promotion::min_environments`] can be.
pub const HABIT_MIN_ENVIRONMENTS: usize = 2;

/// Whether any hard indicator fires on the evidence, judged with nothing familiar.
fn has_hard_indicator(evidence: &[Observation]) -> bool {
    let (familiar, mut tracker) = (Familiar::default(), Tracker::default());
    for obs in evidence {
        tracker.feed(obs, &familiar, &DetectorConfig::default().tmp_prefix);
    }
    tracker.hits.iter().any(|h| h.indicator.is_hard())
}

/// How often a program or shell shape was seen, and where.
#[derive(Default)]
struct Seen {
    invocations: u64,
    /// The first environments it was seen in, as many as the rule needs.
    environments: Vec<String>,
}

impl Seen {
    fn note(&mut self, scope: &str, enough: usize) {
        self.invocations += 1;
        if self.environments.len() < enough && !self.environments.iter().any(|e| e == scope) {
            self.environments.push(scope.to_string());
        }
    }
}

/// What a function's processes were, counted per invocation.
struct Habits {
    /// Environments a habit needs.
    min_environments: usize,
    invocations: u64,
    exes: HashMap<String, Seen>,
    shapes: HashMap<String, Seen>,
    destinations: HashMap<SocketAddr, Seen>,
    write_paths: HashMap<String, Seen>,
}

/// What a function does regularly, each list sorted.
struct Regular {
    exes: Vec<String>,
    shapes: Vec<String>,
    destinations: Vec<SocketAddr>,
    write_paths: Vec<String>,
}

/// The directory of a scratch file the function created or wrote, ending with `/`; none for
/// a path redaction changed (it names no real directory).
fn write_directory(obs: &Observation) -> Option<String> {
    let Observation::TmpFile { path, action, .. } = obs else {
        return None;
    };
    if *action == TmpAction::Deleted || path.contains("[REDACTED]") {
        return None;
    }
    let (dir, _) = path.rsplit_once('/')?;
    dir.starts_with('/').then(|| format!("{dir}/"))
}

impl Habits {
    fn new(min_environments: usize) -> Habits {
        Habits {
            min_environments,
            invocations: 0,
            exes: HashMap::new(),
            shapes: HashMap::new(),
            destinations: HashMap::new(),
            write_paths: HashMap::new(),
        }
    }

    fn count(&mut self, scope: &str, evidence: &[Observation]) {
        self.invocations += 1;
        // An invocation with a hard indicator teaches nothing, as in the detector: a record
        // labelled benign may still carry an attack's leftovers (a thaw race, a residual).
        if has_hard_indicator(evidence) {
            return;
        }
        let mut seen = Familiar::default();
        for obs in evidence {
            // A process still running at the end is exactly what must not be taught.
            // Destinations as the sampler or the guard saw them; a call the policy forbade
            // is not the function's habit.
            let destination = match obs {
                Observation::Endpoint { listen: false, .. } => true,
                Observation::Connect { verdict, .. } | Observation::Send { verdict, .. } => {
                    verdict.is_allow()
                }
                _ => false,
            };
            if destination
                || matches!(
                    obs,
                    Observation::Process {
                        alive_at_end: false,
                        ..
                    } | Observation::Program { .. }
                )
            {
                seen.learn(std::slice::from_ref(obs));
            }
        }
        let enough = self.min_environments;
        let directories: BTreeSet<String> = evidence.iter().filter_map(write_directory).collect();
        for dir in directories {
            self.write_paths.entry(dir).or_default().note(scope, enough);
        }
        for addr in seen.destinations() {
            self.destinations
                .entry(addr)
                .or_default()
                .note(scope, enough);
        }
        for exe in seen.exes() {
            self.exes.entry(exe).or_default().note(scope, enough);
        }
        for shape in seen.shell_shapes() {
            self.shapes.entry(shape).or_default().note(scope, enough);
        }
    }

    /// What was done regularly: often enough, in enough environments.
    fn regular(&self) -> Regular {
        let min =
            HABIT_MIN_INVOCATIONS.max((HABIT_MIN_SHARE * self.invocations as f64).ceil() as u64);
        fn keep<K: Clone + Ord>(m: &HashMap<K, Seen>, min: u64, environments: usize) -> Vec<K> {
            let mut v: Vec<K> = m
                .iter()
                .filter(|(_, n)| n.invocations >= min && n.environments.len() >= environments)
                .map(|(k, _)| k.clone())
                .collect();
            v.sort();
            v
        }
        let environments = self.min_environments;
        Regular {
            exes: keep(&self.exes, min, environments),
            shapes: keep(&self.shapes, min, environments),
            destinations: keep(&self.destinations, min, environments),
            write_paths: keep(&self.write_paths, min, environments),
        }
    }
}
