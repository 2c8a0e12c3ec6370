//! The zero-trust policy: which destinations, programs and write paths the function may use,
//! read once at load from the JSON file `WARDEN_POLICY` names, then only matched against (no
//! allocation).

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

use crate::{base_name, unmapped, How};

/// The largest policy file read.
pub const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// Where Lambda puts extensions: processes running from here are Warden and its peers.
const EXTENSIONS_DIR: &[u8] = b"/opt/extensions/";
/// Longest path a write is judged on once made absolute; a longer one is a violation (it
/// cannot be checked without allocating).
pub const MAX_WRITE_PATH: usize = 1024;
/// Files every program writes that can hold no payload (a device that discards, a terminal, a
/// descriptor of its own): always writable under a `write` list.
const ALWAYS_WRITABLE: [&[u8]; 6] = [
    b"/dev/null",
    b"/dev/zero",
    b"/dev/full",
    b"/dev/tty",
    b"/dev/stdout",
    b"/dev/stderr",
];
/// Trees of pseudo files (a process's own settings, descriptors, terminals): always writable.
const ALWAYS_WRITABLE_TREES: [&[u8]; 4] = [b"/proc/", b"/dev/fd/", b"/dev/pts/", b"/sys/"];

/// What happens to a call that breaks the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Reported, and the call proceeds.
    Observe,
    /// Reported, and the call is refused.
    Enforce,
}

/// What the guard did with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No policy, or the policy allows it.
    Allow,
    /// Breaks the policy; observe mode let it proceed.
    Observe,
    /// Refused by enforce mode.
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Observe => "observe",
            Verdict::Deny => "deny",
        }
    }
}

/// Why a policy file is not used.
#[derive(Debug)]
pub enum PolicyError {
    Unreadable(std::io::Error),
    TooLarge,
    Malformed(serde_json::Error),
    BadCidr(String),
    BadWritePath(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Unreadable(e) => write!(f, "cannot be read: {e}"),
            PolicyError::TooLarge => write!(f, "larger than {MAX_POLICY_BYTES} bytes"),
            PolicyError::Malformed(e) => write!(f, "not a valid policy: {e}"),
            PolicyError::BadCidr(cidr) => {
                write!(f, "egress cidr {cidr:?} is not an address/prefix")
            }
            PolicyError::BadWritePath(path) => {
                write!(
                    f,
                    "write path {path:?} is not an absolute path of at most {MAX_WRITE_PATH} bytes"
                )
            }
        }
    }
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    /// For the reader of the file (`warden policy export` says what it is made from); ignored.
    #[serde(default, rename = "comment")]
    _comment: Option<String>,
    mode: Mode,
    egress: Option<Vec<RuleFile>>,
    exec: Option<Vec<String>>,
    write: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    cidr: String,
    #[serde(default)]
    ports: Vec<u16>,
}

/// A network and a prefix length.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    network: IpAddr,
    prefix: u32,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse().ok().filter(|&p| p <= max)?,
            None => max,
        };
        Some(Cidr { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Rule {
    cidr: Cidr,
    ports: Vec<u16>,
}

/// A policy ready to be matched against.
#[derive(Debug)]
pub struct Policy {
    mode: Mode,
    egress: Option<Vec<Rule>>,
    exec: Option<Vec<Vec<u8>>>,
    /// Absolute path prefixes, normalised.
    write: Option<Vec<Vec<u8>>>,
    runtime_api: Option<SocketAddr>,
}

impl Policy {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path, runtime_api: Option<SocketAddr>) -> Result<Policy, PolicyError> {
        let file = std::fs::File::open(path).map_err(PolicyError::Unreadable)?;
        let mut text = Vec::new();
        file.take(MAX_POLICY_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(PolicyError::Unreadable)?;
        if text.len() as u64 > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        Policy::parse(&text, runtime_api)
    }

    /// Checks a policy's text. `runtime_api` is the Runtime API's address, always reachable.
    pub fn parse(text: &[u8], runtime_api: Option<SocketAddr>) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_json::from_slice(text).map_err(PolicyError::Malformed)?;
        let egress = match file.egress {
            Some(rules) => Some(
                rules
                    .into_iter()
                    .map(|r| match Cidr::parse(&r.cidr) {
                        Some(cidr) => Ok(Rule {
                            cidr,
                            ports: r.ports,
                        }),
                        None => Err(PolicyError::BadCidr(r.cidr)),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let exec = file
            .exec
            .map(|names| names.into_iter().map(String::into_bytes).collect());
        let write = match file.write {
            Some(paths) => Some(
                paths
                    .into_iter()
                    .map(|path| write_prefix(&path).ok_or(PolicyError::BadWritePath(path)))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        Ok(Policy {
            mode: file.mode,
            egress,
            exec,
            write,
            runtime_api,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The verdict on a call the policy allows or not.
    pub fn verdict(&self, allowed: bool) -> Verdict {
        match (allowed, self.mode) {
            (true, _) => Verdict::Allow,
            (false, Mode::Observe) => Verdict::Observe,
            (false, Mode::Enforce) => Verdict::Deny,
        }
    }

    /// Whether the function may reach `dest`: always for loopback and the Runtime API.
    pub fn allows_destination(&self, dest: SocketAddr) -> bool {
        let Some(rules) = &self.egress else {
            return true;
        };
        let ip = unmapped(dest.ip());
        if ip.is_loopback()
            || self
                .runtime_api
                .is_some_and(|api| api.ip() == ip && api.port() == dest.port())
        {
            return true;
        }
        rules.iter().any(|rule| {
            rule.cidr.contains(ip) && (rule.ports.is_empty() || rule.ports.contains(&dest.port()))
        })
    }

    /// Whether the policy's `egress` list names `dest` (no list names nothing).
    pub fn lists_destination(&self, dest: SocketAddr) -> bool {
        self.egress.is_some() && self.allows_destination(dest)
    }

    /// Whether the policy's `exec` list names `target` (no list names nothing).
    pub fn lists_program(&self, target: &[u8], how: How) -> bool {
        self.exec.is_some() && self.allows_program(target, how)
    }

    /// Whether the function may run `target`: listed by full path, or a bare listed name
    /// matching its base name. A memory file or a deleted one never is.
    pub fn allows_program(&self, target: &[u8], how: How) -> bool {
        let Some(listed) = &self.exec else {
            return true;
        };
        if matches!(how, How::Memfd | How::Deleted) {
            return false;
        }
        let name = base_name(target);
        listed.iter().any(|entry| {
            if entry.contains(&b'/') {
                entry.as_slice() == target
            } else {
                entry.as_slice() == name
            }
        })
    }

    /// Whether opens for writing are judged (the policy has a `write` list).
    pub fn checks_writes(&self) -> bool {
        self.write.is_some()
    }

    /// Whether the function may open `path` (absolute and normalised, see [`normalize`]) for
    /// writing: under a listed prefix, or a file that can hold no payload. An entry ending
    /// with `/` is a directory tree; any other entry is that file or the tree below it.
    pub fn allows_write(&self, path: &[u8]) -> bool {
        let Some(prefixes) = &self.write else {
            return true;
        };
        ALWAYS_WRITABLE.contains(&path)
            || ALWAYS_WRITABLE_TREES.iter().any(|t| path.starts_with(t))
            || prefixes.iter().any(|prefix| {
                if prefix.ends_with(b"/") {
                    path.starts_with(prefix)
                } else {
                    path == prefix.as_slice()
                        || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
                }
            })
    }
}

/// A `write` entry as matched: absolute, normalised, a trailing `/` kept. `None` when relative
/// or too long.
fn write_prefix(entry: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; MAX_WRITE_PATH];
    let mut prefix = normalize(entry.as_bytes(), &mut buf)?.to_vec();
    if entry.ends_with('/') && !prefix.ends_with(b"/") {
        prefix.push(b'/');
    }
    Some(prefix)
}

/// `path` without `.` and `..` components and repeated slashes, written into `out`: `None`
/// when it is not absolute or does not fit. Lexical only: symbolic links are not followed.
pub fn normalize<'b>(path: &[u8], out: &'b mut [u8]) -> Option<&'b [u8]> {
    if !path.starts_with(b"/") {
        return None;
    }
    let mut len = 0;
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                // Back to the slash before the last component (the root stays).
                while len > 0 && out[len - 1] != b'/' {
                    len -= 1;
                }
                len = len.saturating_sub(1);
            }
            name => {
                let end = len + 1 + name.len();
                if end > out.len() {
                    return None;
                }
                out[len] = b'/';
                out[len + 1..end].copy_from_slice(name);
                len = end;
            }
        }
    }
    if len == 0 {
        *out.first_mut()? = b'/';
        len = 1;
    }
    out.get(..len)
}

/// Whether an executable path is an extension's (a signal to it could blind Warden).
pub fn is_extension(exe: &[u8]) -> bool {
    exe.starts_with(EXTENSIONS_DIR)
}

/// Signals that stop or end a process.
pub fn stops_or_ends(signal: i32) -> bool {
    [libc::SIGSTOP, libc::SIGKILL, libc::SIGTERM, libc::SIGTSTP].contains(&signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        let api = "127.0.0.1:9001".parse().ok();
        Policy::parse(text.as_bytes(), api).unwrap()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn egress_rules_match_by_network_and_port() {
        let p = policy(
            r#"{"mode":"enforce","egress":[{"cidr":"10.0.0.0/8","ports":[443]},{"cidr":"2001:db8::/32"},{"cidr":"192.0.2.7"}]}"#,
        );
        assert!(p.allows_destination(addr("10.1.2.3:443")));
        assert!(!p.allows_destination(addr("10.1.2.3:80")));
        assert!(!p.allows_destination(addr("11.0.0.1:443")));
        assert!(p.allows_destination(addr("[2001:db8::1]:53")));
        assert!(p.allows_destination(addr("192.0.2.7:1")));
        assert!(!p.allows_destination(addr("192.0.2.8:1")));
        assert!(
            p.allows_destination(addr("[::ffff:10.0.0.1]:443")),
            "IPv4-mapped"
        );
    }

    #[test]
    fn loopback_and_the_runtime_api_are_always_reachable() {
        let p = policy(r#"{"mode":"enforce","egress":[]}"#);
        assert!(p.allows_destination(addr("127.0.0.5:80")));
        assert!(p.allows_destination(addr("[::1]:80")));
        assert!(!p.allows_destination(addr("169.254.100.1:9001")));
        let remote_api = Policy::parse(
            br#"{"mode":"enforce","egress":[]}"#,
            "169.254.100.1:9001".parse().ok(),
        )
        .unwrap();
        assert!(remote_api.allows_destination(addr("169.254.100.1:9001")));
        assert!(!remote_api.allows_destination(addr("169.254.100.1:9002")));
    }

    #[test]
    fn without_egress_every_destination_is_allowed() {
        let p = policy(r#"{"mode":"observe","exec":["sh"]}"#);
        assert!(p.allows_destination(addr("203.0.113.1:4444")));
    }

    #[test]
    fn programs_match_by_full_path_or_bare_name() {
        let p = policy(r#"{"mode":"observe","exec":["/usr/bin/convert","sh"]}"#);
        assert!(p.allows_program(b"/usr/bin/convert", How::Path));
        assert!(!p.allows_program(b"/tmp/convert", How::Path));
        assert!(p.allows_program(b"/bin/sh", How::Path));
        assert!(p.allows_program(b"sh", How::Path));
        assert!(!p.allows_program(b"/bin/bash", How::Path));
        assert!(!p.allows_program(b"/memfd:sh (deleted)", How::Memfd));
        assert!(!p.allows_program(b"/usr/bin/convert (deleted)", How::Deleted));
        let none = policy(r#"{"mode":"observe"}"#);
        assert!(none.allows_program(b"/memfd:x (deleted)", How::Memfd));
    }

    #[test]
    fn verdicts_follow_the_mode() {
        assert_eq!(
            policy(r#"{"mode":"observe"}"#).verdict(false),
            Verdict::Observe
        );
        assert_eq!(
            policy(r#"{"mode":"enforce"}"#).verdict(false),
            Verdict::Deny
        );
        assert_eq!(
            policy(r#"{"mode":"enforce"}"#).verdict(true),
            Verdict::Allow
        );
    }

    #[test]
    fn bad_policies_say_why() {
        let api = None;
        let cases = [
            (r#"{"mode":"block"}"#, "not a valid policy"),
            (r#"{"egress":[]}"#, "not a valid policy"),
            (r#"{"mode":"observe","egres":[]}"#, "not a valid policy"),
            (
                r#"{"mode":"observe","egress":[{"cidr":"10.0.0.0/33"}]}"#,
                "is not an address/prefix",
            ),
            ("{", "not a valid policy"),
            (
                r#"{"mode":"observe","write":["tmp/cache/"]}"#,
                "is not an absolute path",
            ),
            (r#"{"mode":"observe","comment":3}"#, "not a valid policy"),
        ];
        for (text, reason) in cases {
            let err = Policy::parse(text.as_bytes(), api).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    fn normal(path: &str) -> Option<String> {
        let mut buf = [0u8; 32];
        normalize(path.as_bytes(), &mut buf).map(|p| String::from_utf8_lossy(p).into_owned())
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(normal("/tmp/cache/x").as_deref(), Some("/tmp/cache/x"));
        assert_eq!(normal("//tmp/./cache//x/").as_deref(), Some("/tmp/cache/x"));
        assert_eq!(normal("/tmp/cache/../../etc/x").as_deref(), Some("/etc/x"));
        assert_eq!(normal("/../..").as_deref(), Some("/"));
        assert_eq!(normal("tmp/x"), None, "relative");
        assert_eq!(normal(&format!("/{}", "a".repeat(40))), None, "too long");
    }

    #[test]
    fn writes_match_listed_prefixes_and_files_that_hold_no_payload() {
        let p =
            policy(r#"{"mode":"enforce","write":["/tmp/cache/","/tmp/out.json","/tmp/x/../y"]}"#);
        assert!(p.checks_writes());
        for path in [
            "/tmp/cache/a",
            "/tmp/cache/d/e",
            "/tmp/out.json",
            "/tmp/y",
            "/tmp/y/z",
            "/dev/null",
            "/proc/self/oom_score_adj",
            "/dev/pts/0",
        ] {
            assert!(p.allows_write(path.as_bytes()), "{path}");
        }
        for path in [
            "/tmp/cache",
            "/tmp/cachex",
            "/tmp/out.json2",
            "/tmp/payload",
            "/tmp/x/q",
            "/dev/shm/x",
            "/var/task/app.py",
        ] {
            assert!(!p.allows_write(path.as_bytes()), "{path}");
        }
        let none = policy(r#"{"mode":"enforce","comment":"made by hand"}"#);
        assert!(!none.checks_writes() && none.allows_write(b"/tmp/anything"));
    }

    #[test]
    fn extensions_and_stopping_signals_are_recognised() {
        assert!(is_extension(b"/opt/extensions/warden"));
        assert!(!is_extension(b"/opt/bin/tool"));
        assert!(stops_or_ends(libc::SIGSTOP));
        assert!(!stops_or_ends(libc::SIGUSR1));
    }
}
