//! The verdict on an egress or an exec: the policy's, tightened by a lockdown. Pure: `sys`
//! copies the lockdown page's table when the flag is set and hands it here.
//!
//! Under a lockdown, an egress or exec is allowed only when it is known: listed by the policy
//! (its `egress` or `exec` list), or in the page Warden wrote from what the function is known
//! to do. Loopback and the Runtime API stay reachable; a program run from memory or from a
//! deleted file is never known. Everything else is refused, whatever the policy's mode.

use std::net::{IpAddr, SocketAddr};

use warden_policy::lockdown::Table;

use crate::exec::How;
use crate::policy::{Policy, Verdict};

/// What a call is judged against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub(crate) policy: Option<&'a Policy>,
    /// The lockdown page's table, when the environment is locked down.
    pub(crate) lockdown: Option<Table<'a>>,
    /// `AWS_LAMBDA_RUNTIME_API`: always reachable.
    pub(crate) runtime_api: Option<SocketAddr>,
}

impl<'a> Rules<'a> {
    /// The policy alone (no lockdown).
    #[cfg(test)]
    pub(crate) fn policy(policy: Option<&'a Policy>) -> Rules<'a> {
        Rules {
            policy,
            lockdown: None,
            runtime_api: None,
        }
    }

    /// The verdict on reaching `dest`.
    pub(crate) fn egress(&self, dest: SocketAddr) -> Verdict {
        let by_policy = self
            .policy
            .map_or(Verdict::Allow, |p| p.verdict(p.allows_destination(dest)));
        let Some(table) = self.lockdown else {
            return by_policy;
        };
        let ip = unmapped(dest.ip());
        let known = ip.is_loopback()
            || self
                .runtime_api
                .is_some_and(|api| unmapped(api.ip()) == ip && api.port() == dest.port())
            || self.policy.is_some_and(|p| p.lists_destination(dest))
            || table.knows_destination(dest);
        if known {
            by_policy
        } else {
            Verdict::Deny
        }
    }

    /// The verdict on sending the role's secret key to `dest`: no policy lists that, so a
    /// policy observes or refuses it by its mode, and a lockdown refuses it.
    pub(crate) fn secret_sent(&self) -> Verdict {
        if self.lockdown.is_some() {
            return Verdict::Deny;
        }
        self.policy.map_or(Verdict::Allow, |p| p.verdict(false))
    }

    /// The verdict on running `target` (the file an exec really runs, see `exec::classify`).
    pub(crate) fn program(&self, target: &[u8], how: How) -> Verdict {
        let by_policy = self
            .policy
            .map_or(Verdict::Allow, |p| p.verdict(p.allows_program(target, how)));
        let Some(table) = self.lockdown else {
            return by_policy;
        };
        let known = !matches!(how, How::Memfd | How::Deleted)
            && (self.policy.is_some_and(|p| p.lists_program(target, how))
                || table.knows_program(&[target]));
        if known {
            by_policy
        } else {
            Verdict::Deny
        }
    }
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::lockdown::{empty_page, Known, PAGE_SIZE};

    fn page(known: &Known) -> [u8; PAGE_SIZE] {
        let mut page = empty_page();
        let table = known.table_bytes();
        let at = Known::table_offset();
        page[at..at + table.len()].copy_from_slice(&table);
        page
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn known() -> Known {
        let mut k = Known::default();
        k.add_destination(addr("10.0.0.5:443"));
        k.add_program("/usr/bin/curl");
        k
    }

    #[test]
    fn without_a_lockdown_the_policy_alone_decides() {
        let rules = Rules::policy(None);
        assert_eq!(rules.egress(addr("203.0.113.9:4444")), Verdict::Allow);
        assert_eq!(rules.program(b"/tmp/x", How::Path), Verdict::Allow);
        let observe = Policy::parse(br#"{"mode": "observe", "egress": []}"#, None).unwrap();
        let rules = Rules::policy(Some(&observe));
        assert_eq!(rules.egress(addr("203.0.113.9:4444")), Verdict::Observe);
    }

    #[test]
    fn a_lockdown_refuses_what_is_not_known() {
        let page = page(&known());
        let rules = Rules {
            policy: None,
            lockdown: Table::read(&page),
            runtime_api: Some(addr("169.254.100.1:9001")),
        };
        assert_eq!(rules.egress(addr("10.0.0.5:443")), Verdict::Allow);
        assert_eq!(rules.egress(addr("[::ffff:10.0.0.5]:443")), Verdict::Allow);
        assert_eq!(rules.egress(addr("203.0.113.9:4444")), Verdict::Deny);
        assert_eq!(rules.egress(addr("127.0.0.1:8080")), Verdict::Allow);
        assert_eq!(rules.egress(addr("169.254.100.1:9001")), Verdict::Allow);
        assert_eq!(rules.egress(addr("169.254.100.1:9002")), Verdict::Deny);
        assert_eq!(rules.program(b"/usr/bin/curl", How::Path), Verdict::Allow);
        assert_eq!(rules.program(b"/usr/bin/wget", How::Path), Verdict::Deny);
        // A known name run from memory is still refused.
        assert_eq!(rules.program(b"curl", How::Memfd), Verdict::Deny);
    }

    #[test]
    fn under_a_lockdown_the_policy_lists_count_as_known_and_its_mode_no_longer_lets_through() {
        let page = page(&known());
        let policy = Policy::parse(
            br#"{"mode": "observe", "egress": [{"cidr": "192.0.2.0/24", "ports": [443]}], "exec": ["python3"]}"#,
            None,
        )
        .unwrap();
        let rules = Rules {
            policy: Some(&policy),
            lockdown: Table::read(&page),
            runtime_api: None,
        };
        assert_eq!(rules.egress(addr("192.0.2.7:443")), Verdict::Allow);
        // Known to Warden, not listed: the observe-mode violation stays a report.
        assert_eq!(rules.egress(addr("10.0.0.5:443")), Verdict::Observe);
        assert_eq!(rules.egress(addr("198.51.100.1:443")), Verdict::Deny);
        assert_eq!(
            rules.program(b"/usr/bin/python3", How::Path),
            Verdict::Allow
        );
        assert_eq!(rules.program(b"/usr/bin/id", How::Path), Verdict::Deny);
        // A policy without an egress list lists nothing: the lockdown's table decides.
        let open = Policy::parse(br#"{"mode": "observe"}"#, None).unwrap();
        let rules = Rules {
            policy: Some(&open),
            lockdown: Table::read(&page),
            runtime_api: None,
        };
        assert_eq!(rules.egress(addr("198.51.100.1:443")), Verdict::Deny);
    }
}
