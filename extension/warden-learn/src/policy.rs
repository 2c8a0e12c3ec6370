//! `warden policy export`: what Warden learned of a function (its profile, as `warden train
//! --profile-out` writes it) turned into the in-process guard's zero-trust policy file, in the
//! format the guard reads (docs/configuration.md, "In-process guard").
//!
//! The file is for a person to review before it is deployed, and to diff against the last
//! one: every list is sorted, one rule per line, and the same profile always gives the same
//! bytes (no time, no path of the machine that exported it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use warden_core::detect::baseline::BaselineProfile;
use warden_policy::unmapped;

/// What the exported policy does with a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Reported; the call proceeds.
    #[default]
    Observe,
    /// Reported and refused.
    Enforce,
}

impl Mode {
    /// The word the policy file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Enforce => "enforce",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "observe" => Ok(Mode::Observe),
            "enforce" => Ok(Mode::Enforce),
            other => Err(format!("{other:?} is not observe or enforce")),
        }
    }
}

/// Why no policy could be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not what it was given as.
    #[error("{path} is not {what}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// A profiles file, or a profile.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
    /// The profiles file has no profile for the function.
    #[error("{path} has no profile for function {function:?} (it has: {known})")]
    NoFunction {
        /// The file.
        path: PathBuf,
        /// The function asked for.
        function: String,
        /// The functions it has, comma separated.
        known: String,
    },
}

/// The profile of `function` in a profiles file (`warden train --profile-out`).
pub fn profile_of(path: &Path, function: &str) -> Result<BaselineProfile, ExportError> {
    let mut profiles: BTreeMap<String, BaselineProfile> = serde_json::from_str(&read(path)?)
        .map_err(|source| ExportError::Parse {
            path: path.to_path_buf(),
            what: "a profiles file (function name → profile)",
            source,
        })?;
    profiles
        .remove(function)
        .ok_or_else(|| ExportError::NoFunction {
            path: path.to_path_buf(),
            function: function.to_string(),
            known: profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        })
}

/// A file holding one profile.
pub fn single_profile(path: &Path) -> Result<BaselineProfile, ExportError> {
    serde_json::from_str(&read(path)?).map_err(|source| ExportError::Parse {
        path: path.to_path_buf(),
        what: "a profile",
        source,
    })
}

fn read(path: &Path) -> Result<String, ExportError> {
    std::fs::read_to_string(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// An exported policy: the file's text, and what the reviewer should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The policy file, ending with a newline.
    pub text: String,
    /// What the profile did not hold, and so what the policy leaves open.
    pub notes: Vec<String>,
}

/// What the guard always allows, whatever the policy says: said in the file itself, so that a
/// reviewer does not add rules for them.
const ALWAYS_ALLOWED: &str = "Loopback and the Lambda Runtime API are always reachable and \
/dev/null, /proc/ and terminals always writable, whatever this file says; Warden is not \
guarded (it never loads the guard), so its own traffic is never judged.";

/// The policy for a function whose profile is `profile`; `name` says whose it is.
pub fn export(profile: &BaselineProfile, name: &str, mode: Mode) -> Export {
    let mut notes = Vec::new();
    let mut text = String::from("{\n");
    let comment = format!(
        "Exported by `warden policy export` from the profile of {name} ({} invocations). \
         {ALWAYS_ALLOWED}",
        profile.invocations
    );
    field(&mut text, "comment", &json(&comment));
    field(&mut text, "mode", &json(mode.as_str()));

    match &profile.destinations {
        Some(destinations) => {
            // One rule per address, with its ports; loopback is left out (always allowed).
            let mut by_address: BTreeMap<IpAddr, BTreeSet<u16>> = BTreeMap::new();
            for addr in destinations {
                let ip = unmapped(addr.ip());
                if !ip.is_loopback() {
                    by_address.entry(ip).or_default().insert(addr.port());
                }
            }
            let rules = by_address.iter().map(|(ip, ports)| {
                let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
                format!(
                    "{{\"cidr\": {}, \"ports\": [{}]}}",
                    json(&ip.to_string()),
                    ports.join(", ")
                )
            });
            list(&mut text, "egress", rules);
        }
        None => notes.push(
            "the profile holds no destinations (learned before `warden train` kept them): no \
             egress section, every destination stays allowed; train the profile again to \
             restrict egress"
                .into(),
        ),
    }

    // Programs by full path; shells by the name their commands start with (`sh -c …`).
    let mut programs: BTreeSet<&str> = profile.known_exes.iter().map(String::as_str).collect();
    programs.extend(
        profile
            .shell_shapes
            .iter()
            .filter_map(|shape| shape.split_whitespace().next()),
    );
    list(&mut text, "exec", programs.into_iter().map(json));

    match &profile.write_paths {
        Some(paths) => {
            let paths: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
            list(&mut text, "write", paths.into_iter().map(json));
        }
        None => notes.push(
            "the profile holds no write paths (learned before `warden train` kept them): no \
             write section, every write stays allowed"
                .into(),
        ),
    }

    // The last field carries no comma.
    if text.ends_with(",\n") {
        text.truncate(text.len() - 2);
        text.push('\n');
    }
    text.push_str("}\n");
    Export { text, notes }
}

/// A JSON string.
fn json(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "  {}: {value},", json(name));
}

/// A list, one item per line.
fn list(out: &mut String, name: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        field(out, name, "[]");
        return;
    }
    let _ = writeln!(out, "  {}: [", json(name));
    let _ = writeln!(out, "    {}", items.join(",\n    "));
    out.push_str("  ],\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::detect::baseline::Baseline;

    fn profile() -> BaselineProfile {
        let mut p = Baseline::new().to_profile();
        p.invocations = 40;
        p.known_exes = vec!["/usr/bin/gzip".into(), "/usr/bin/curl".into()];
        p.shell_shapes = vec!["sh -c gzip -0 -c /tmp/inbox/*".into()];
        p.destinations = Some(
            [
                "10.0.0.5:5432",
                "[2001:db8::1]:443",
                "10.0.0.5:443",
                "[::ffff:192.0.2.1]:443",
                "127.0.0.1:9001",
            ]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect(),
        );
        p.write_paths = Some(vec!["/tmp/inbox/".into(), "/tmp/cache/".into()]);
        p
    }

    #[test]
    fn a_profile_becomes_a_sorted_policy_with_one_rule_per_line() {
        let export = export(&profile(), "doc-convert", Mode::Enforce);
        let comment = format!(
            "Exported by `warden policy export` from the profile of doc-convert (40 \
             invocations). {ALWAYS_ALLOWED}"
        );
        let want = format!(
            r#"{{
  "comment": {},
  "mode": "enforce",
  "egress": [
    {{"cidr": "10.0.0.5", "ports": [443, 5432]}},
    {{"cidr": "192.0.2.1", "ports": [443]}},
    {{"cidr": "2001:db8::1", "ports": [443]}}
  ],
  "exec": [
    "/usr/bin/curl",
    "/usr/bin/gzip",
    "sh"
  ],
  "write": [
    "/tmp/cache/",
    "/tmp/inbox/"
  ]
}}
"#,
            json(&comment)
        );
        assert_eq!(export.text, want);
        assert!(export.notes.is_empty());
        let parsed: serde_json::Value = serde_json::from_str(&export.text).unwrap();
        assert_eq!(parsed["mode"], "enforce");
        // The guard's own parser takes it, and matches as the profile says.
        let policy = warden_policy::policy::Policy::parse(export.text.as_bytes(), None).unwrap();
        assert!(policy.allows_destination("10.0.0.5:5432".parse().unwrap()));
        assert!(!policy.allows_destination("10.0.0.5:22".parse().unwrap()));
        assert!(policy.allows_program(b"/usr/bin/gzip", warden_policy::How::Path));
        assert!(policy.allows_write(b"/tmp/inbox/a.pdf"));
    }

    #[test]
    fn what_the_profile_did_not_learn_is_left_open_and_said() {
        let mut p = profile();
        (p.destinations, p.write_paths) = (None, None);
        p.known_exes.clear();
        p.shell_shapes.clear();
        let export = export(&p, "old", Mode::Observe);
        let parsed: serde_json::Value = serde_json::from_str(&export.text).unwrap();
        assert_eq!(parsed["mode"], "observe");
        assert!(parsed.get("egress").is_none() && parsed.get("write").is_none());
        assert_eq!(parsed["exec"], serde_json::json!([]));
        assert_eq!(export.notes.len(), 2, "{:?}", export.notes);
        // Learned and empty: nothing is allowed.
        p.destinations = Some(Vec::new());
        let parsed: serde_json::Value =
            serde_json::from_str(&super::export(&p, "quiet", Mode::Observe).text).unwrap();
        assert_eq!(parsed["egress"], serde_json::json!([]));
    }

    #[test]
    fn a_missing_function_names_the_ones_there_are() {
        let dir = std::env::temp_dir().join(format!("warden-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("profiles.json");
        let profiles = BTreeMap::from([("api", profile()), ("batch", profile())]);
        std::fs::write(&path, serde_json::to_string(&profiles).unwrap()).unwrap();
        assert_eq!(profile_of(&path, "api").unwrap(), profile());
        let err = profile_of(&path, "nope").unwrap_err().to_string();
        assert!(
            err.ends_with("no profile for function \"nope\" (it has: api, batch)"),
            "{err}"
        );
        assert!(matches!(
            single_profile(&path),
            Err(ExportError::Parse { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
