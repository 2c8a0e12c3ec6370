//! `warden`: offline tools for the shipped model (docs/detection.md).
//!
//! - `warden train --records FILE.jsonl... --out model.bin --seed N [--profile-out FILE]`
//! - `warden train --log-group /aws/lambda/F --profile-out FILE` (records from CloudWatch Logs)
//! - `warden eval --records FILE.jsonl... --model model.bin [--profiles FILE] [--json]`
//! - `warden eval --leave-one-out --train-records TRAIN.jsonl... --records TEST.jsonl...
//!   [--seed N] [--json]`
//! - `warden policy export (--profiles FILE --function NAME | --profile FILE)
//!   [--mode observe|enforce] [--out FILE]`

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use warden_cli::dataset::{self, Row, Skipped, Trust};
use warden_cli::train::{train, TrainOptions};
use warden_cli::{eval, policy, report};
use warden_core::model::ShippedModel;
use warden_core::record_mac::RecordKey;

#[derive(Parser)]
#[command(
    name = "warden",
    about = "Train and evaluate Warden's shipped model; export a function's guard policy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model file from labelled feature records (scripts/scenarios output).
    Train {
        /// JSONL of labelled records (or bare feature records, for --profile-out).
        #[arg(long = "records", required_unless_present = "log_group")]
        records: Vec<PathBuf>,
        /// Also read the feature records a function's Warden wrote to this CloudWatch log
        /// group (`WARDEN_MODE=learn`); credentials, region and `AWS_ENDPOINT_URL` come from
        /// the environment. Repeatable.
        #[arg(long = "log-group")]
        log_group: Vec<String>,
        /// With --log-group: how far back to read, hours.
        #[arg(long, default_value_t = 24 * 14)]
        since_hours: u64,
        /// With --log-group: count its records as benign rows of the model's training data
        /// (a period known to be clean), next to the labelled --records.
        #[arg(long)]
        as_benign: bool,
        /// Model file to write.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed of the forest.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Trees in the forest.
        #[arg(long, default_value_t = TrainOptions::default().trees)]
        trees: u16,
        /// Depth limit of each tree.
        #[arg(long, default_value_t = TrainOptions::default().max_depth)]
        max_depth: u16,
        /// Weight of the attack classes against benign (1: each class ~1/classes of benign).
        #[arg(long, default_value_t = TrainOptions::default().balance)]
        balance: f64,
        /// Benign vote share below which the forest calls an attack.
        #[arg(long, default_value_t = TrainOptions::default().benign_threshold)]
        benign_threshold: f32,
        /// Description of the data kept in the model header (default: the file names).
        #[arg(long)]
        data: Option<String>,
        /// Write per-function baseline profiles (JSON) learned from the benign/unlabelled rows.
        #[arg(long)]
        profile_out: Option<PathBuf>,
        /// Accept rows whose split is `test` (refused by default, for the model and the
        /// profiles).
        #[arg(long)]
        allow_test_split: bool,
        /// Learn from bare records without a MAC (records from a source known to be clean).
        /// Without it, only records signed with the record key (`WARDEN_RECORD_KEY` in this
        /// command's environment, the key the function's Warden signs with) are learned.
        #[arg(long)]
        accept_unsigned: bool,
    },
    /// Evaluate a model file on labelled feature records.
    Eval {
        /// JSONL of labelled records.
        #[arg(long = "records", required_unless_present = "live")]
        records: Vec<PathBuf>,
        /// Run the scenario corpus live in the sandbox first (`scripts/scenarios` of this
        /// repository, test split, checked) and evaluate what it recorded.
        #[arg(long)]
        live: bool,
        /// With --live: corpus scale (small, medium, full).
        #[arg(long, default_value = "small")]
        scale: String,
        /// With --live: corpus seed (keep it apart from the training seeds).
        #[arg(long, default_value_t = 2)]
        corpus_seed: u64,
        /// With --live: the corpus script to run.
        #[arg(long, default_value = "scripts/scenarios")]
        scenarios: PathBuf,
        /// Model file.
        #[arg(long, required_unless_present = "leave_one_out")]
        model: Option<PathBuf>,
        /// Leave one function out: for each function of --records, train a model (as `warden
        /// train` does, --seed) and profiles on the --train-records of every other function,
        /// and score the function's rows with them; one report over all folds.
        #[arg(long, requires = "train_records", conflicts_with_all = ["model", "profiles"])]
        leave_one_out: bool,
        /// With --leave-one-out: JSONL of labelled training records (no `test` split).
        #[arg(long = "train-records", requires = "leave_one_out")]
        train_records: Vec<PathBuf>,
        /// With --leave-one-out: seed of each fold's forest (`warden train --seed`).
        #[arg(long, default_value_t = 1, requires = "leave_one_out")]
        seed: u64,
        /// Evaluate the model alone instead of the extension's detector (rules, baseline
        /// and model combined).
        #[arg(long)]
        model_only: bool,
        /// With --model-only: novelty score at which a row the forest calls benign is flagged.
        #[arg(long, default_value_t = 0.5)]
        anomaly_threshold: f32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also write how every row was scored (JSON lines): prediction, score parts,
        /// indicators, largest z-scores.
        #[arg(long)]
        rows: Option<PathBuf>,
        /// Seed each function's detector from its baseline profile (`warden train
        /// --profile-out`), as `WARDEN_PROFILE` does in the extension.
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// The in-process guard's zero-trust policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Write the policy file of what a function was learned to do (its profile): the
    /// destinations, programs and write paths it uses, nothing else.
    Export {
        /// Profiles file as `warden train --profile-out` writes it; pick one with --function.
        #[arg(long, requires = "function", conflicts_with = "profile")]
        profiles: Option<PathBuf>,
        /// The function whose profile to export, from --profiles.
        #[arg(long, requires = "profiles")]
        function: Option<String>,
        /// A file holding one profile.
        #[arg(long, required_unless_present = "profiles")]
        profile: Option<PathBuf>,
        /// What the guard does with a violation: observe reports it, enforce refuses it.
        #[arg(long, default_value = "observe")]
        mode: policy::Mode,
        /// Write the policy here instead of to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train {
            records,
            out,
            seed,
            trees,
            max_depth,
            balance,
            benign_threshold,
            data,
            profile_out,
            allow_test_split,
            log_group,
            since_hours,
            as_benign,
            accept_unsigned,
        } => {
            let trust = record_trust(accept_unsigned)?;
            let mut skipped = Skipped::default();
            let mut rows = read_files(&records, &trust, &mut skipped)?;
            for group in &log_group {
                let mut read = read_log_group(group, since_hours, &trust, &mut skipped)?;
                if as_benign {
                    for r in &mut read {
                        r.label = Some(warden_core::model::BENIGN.to_string());
                    }
                }
                rows.extend(read);
            }
            refuse_untrusted(&skipped, rows.is_empty())?;
            // Profiles are training too: the test split is refused for them as for the model.
            if !allow_test_split && rows.iter().any(|r| r.split.as_deref() == Some("test")) {
                bail!("records include the test split; train on --split train records");
            }
            if let Some(path) = profile_out {
                let profiles = dataset::profiles(&rows);
                let json = serde_json::to_string_pretty(&profiles)?;
                std::fs::write(&path, json).with_context(|| format!("writing {path:?}"))?;
                eprintln!("warden: {} profiles → {}", profiles.len(), path.display());
            }
            let Some(out) = out else { return Ok(()) };
            let opts = TrainOptions {
                seed,
                trees,
                max_depth,
                balance,
                benign_threshold,
                data: data.unwrap_or_else(|| describe(&records)),
                ..TrainOptions::default()
            };
            let model = train(&rows, &opts)?;
            model.save(&out)?;
            let size = std::fs::metadata(&out)?.len();
            let loaded = ShippedModel::load(&out)?;
            eprintln!(
                "warden: model {} ({} bytes, {} nodes, sha256 {})",
                out.display(),
                size,
                loaded.nodes(),
                loaded.sha256()
            );
            for (class, n) in &loaded.header().training.rows {
                eprintln!("  {class:<24}{n:>7} rows");
            }
        }
        Command::Eval {
            records,
            model,
            model_only,
            anomaly_threshold,
            json,
            rows: rows_out,
            profiles,
            live,
            scale,
            corpus_seed,
            scenarios,
            leave_one_out,
            train_records,
            seed,
        } => {
            let mut records = records;
            if live {
                records.push(run_corpus(&scenarios, &scale, corpus_seed)?);
            }
            let rows = read_all(&records)?;
            let mode = if model_only {
                eval::Mode::Model { anomaly_threshold }
            } else {
                eval::Mode::Detector
            };
            let (r, per_row) = if leave_one_out {
                leave_one_out_eval(&train_records, &rows, seed, mode)?
            } else {
                let Some(model) = model else {
                    bail!("--model is needed without --leave-one-out");
                };
                let model = ShippedModel::load(&model)?;
                let profiles = match profiles {
                    Some(path) => read_profiles(&path)?,
                    None => eval::Profiles::new(),
                };
                eval::evaluate_rows(&model, &rows, mode, &profiles)
            };
            if let Some(path) = rows_out {
                let mut text = String::new();
                for row in &per_row {
                    text.push_str(&serde_json::to_string(row)?);
                    text.push('\n');
                }
                std::fs::write(&path, text).with_context(|| format!("writing {path:?}"))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", report::text(&r));
            }
        }
        Command::Policy {
            command:
                PolicyCommand::Export {
                    profiles,
                    function,
                    profile,
                    mode,
                    out,
                },
        } => {
            let (profile, name) = match (profiles, function, profile) {
                (Some(path), Some(function), _) => {
                    (policy::profile_of(&path, &function)?, function)
                }
                (_, _, Some(path)) => {
                    let name = path
                        .file_stem()
                        .map_or_else(|| "a profile".into(), |s| s.to_string_lossy().into_owned());
                    (policy::single_profile(&path)?, name)
                }
                _ => bail!("give --profiles FILE --function NAME, or --profile FILE"),
            };
            let export = policy::export(&profile, &name, mode);
            for note in &export.notes {
                eprintln!("warden: note: {note}");
            }
            match out {
                Some(path) => std::fs::write(&path, &export.text)
                    .with_context(|| format!("writing {path:?}"))?,
                None => print!("{}", export.text),
            }
        }
    }
    Ok(())
}

/// `warden eval --leave-one-out`: each fold trained as `warden train --seed SEED` trains.
fn leave_one_out_eval(
    train_records: &[PathBuf],
    test: &[Row],
    seed: u64,
    mode: eval::Mode,
) -> Result<(eval::Report, Vec<eval::RowResult>)> {
    let train_rows = read_all(train_records)?;
    if train_rows
        .iter()
        .any(|r| r.split.as_deref() == Some("test"))
    {
        bail!("--train-records include the test split; train on --split train records");
    }
    let opts = TrainOptions {
        seed,
        data: describe(train_records),
        ..TrainOptions::default()
    };
    let progress = |k: usize, n: usize, f: &eval::lofo::FoldFigures| {
        eprintln!(
            "warden: fold {k}/{n} without {}: trained on {} rows ({} labelled) of {} functions, scored {} rows, {:.1} s",
            f.function,
            f.train_rows,
            f.train_labelled,
            f.train_functions.len(),
            f.test_rows,
            f.seconds
        );
    };
    Ok(eval::lofo::leave_one_function_out(
        &train_rows,
        test,
        &opts,
        mode,
        progress,
    )?)
}

/// Runs the scenario corpus in the sandbox (`scripts/scenarios --split test --check`) with
/// the binaries next to this one; returns the records file.
fn run_corpus(script: &Path, scale: &str, seed: u64) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("no directory for this executable")?;
    if !script.is_file() {
        bail!(
            "--live runs the scenario corpus script, not found at {} (run from the repository, or give --scenarios)",
            script.display()
        );
    }
    let out = std::env::temp_dir().join(format!("warden-eval-live-{}.jsonl", std::process::id()));
    let status = std::process::Command::new(script)
        .args(["--scale", scale, "--split", "test", "--check", "--seed"])
        .arg(seed.to_string())
        .arg("--sandbox")
        .arg(bin_dir.join("warden-sandbox"))
        .arg("--extension")
        .arg(bin_dir.join("warden-extension"))
        .arg("--out")
        .arg(&out)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}): the corpus did not run as planned",
            script.display()
        );
    }
    Ok(out)
}

/// What training believes: records signed with `WARDEN_RECORD_KEY` (read here, the one
/// setting this command takes from its environment besides AWS access), and unsigned ones
/// only when asked.
fn record_trust(accept_unsigned: bool) -> Result<Trust> {
    let key = match std::env::var("WARDEN_RECORD_KEY") {
        Ok(v) if !v.trim().is_empty() => {
            Some(RecordKey::new(&v).context("WARDEN_RECORD_KEY is not a usable key")?)
        }
        _ => None,
    };
    Ok(Trust::Signed {
        key,
        accept_unsigned,
    })
}

/// Says what was refused, and fails when that leaves nothing to learn from.
fn refuse_untrusted(skipped: &Skipped, nothing_left: bool) -> Result<()> {
    if skipped.forged > 0 {
        eprintln!(
            "warden: {} records refused: their MAC does not check (forged, altered or signed with another key)",
            skipped.forged
        );
    }
    if skipped.unsigned > 0 {
        let why = format!(
            "{} records refused: unsigned or not checkable. Set WARDEN_RECORD_KEY to the key the function's Warden signs with, or pass --accept-unsigned for records from a source known to be clean",
            skipped.unsigned
        );
        if nothing_left {
            bail!("{why}");
        }
        eprintln!("warden: {why}");
    }
    Ok(())
}

/// The feature records in a CloudWatch log group (the last `since_hours`) that `trust`
/// believes.
fn read_log_group(
    group: &str,
    since_hours: u64,
    trust: &Trust,
    skipped: &mut Skipped,
) -> Result<Vec<Row>> {
    use warden_cli::cloudwatch_logs::{read_records, LogQuery, MAX_EVENTS};
    let env = warden_core::config::AwsEnv::from_lookup(&|name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| &*Box::leak(v.into_boxed_str()))
    });
    let config = warden_core::aws::sdk_config(&env)
        .context("AWS_REGION and credentials (AWS_ACCESS_KEY_ID, ...) must be set")?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let query = LogQuery {
        group: group.to_string(),
        start_ms: Some(now_ms - (since_hours as i64) * 3_600_000),
        end_ms: None,
        max_events: MAX_EVENTS,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let read = runtime.block_on(read_records(&config, &query, trust, skipped))?;
    eprintln!(
        "warden: {group}: {} records from {} log events ({} init, {} other schema, {} other Warden lines skipped)",
        read.rows.len(),
        read.events,
        skipped.init,
        skipped.schema,
        read.other
    );
    Ok(read.rows)
}

/// Profiles per function, each checked against this build's vector.
fn read_profiles(path: &PathBuf) -> Result<eval::Profiles> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let profiles: eval::Profiles =
        serde_json::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
    for (function, p) in &profiles {
        warden_core::detect::baseline::Baseline::from_profile(p)
            .with_context(|| format!("profile of {function} in {path:?}"))?;
    }
    Ok(profiles)
}

/// Records files for training, as far as `trust` believes them.
fn read_files(paths: &[PathBuf], trust: &Trust, skipped: &mut Skipped) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for p in paths {
        rows.extend(dataset::read_trusted(p, trust, skipped)?);
    }
    if !paths.is_empty() {
        eprintln!(
            "warden: {} records ({} without a record, {} init, {} other schema skipped)",
            rows.len(),
            skipped.no_record,
            skipped.init,
            skipped.schema
        );
    }
    Ok(rows)
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Row>> {
    read_files(paths, &Trust::Any, &mut Skipped::default())
}

fn describe(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    format!("scenario corpus records: {}", names.join(", "))
}
