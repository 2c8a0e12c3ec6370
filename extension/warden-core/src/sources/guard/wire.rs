//! The guard's datagrams: one event per datagram, UTF-8 text, fields separated by a tab
//! (docs/configuration.md, "In-process guard"). The header is always
//! `1 <kind> <pid> <tid> <unix_ms> <dropped> <verdict>`, then the kind's own fields.
//!
//! A datagram comes from code running in the function's processes: it is parsed as hostile
//! input, bounded, and a malformed one is rejected whole.

use std::net::SocketAddr;

use crate::schema::{ExecHow, Observation, PolicyVerdict, Proto, SecretEncoding};

/// Longest datagram the guard sends; a longer one is rejected.
pub const MAX_DATAGRAM: usize = 1024;
/// The only format version understood.
const VERSION: &str = "1";

/// One call the guard saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardEvent {
    /// The calling process, as the guard says (the listener checks it against the kernel's).
    pub pid: u32,
    /// The calling thread.
    pub tid: u32,
    /// When, Unix ms.
    pub unix_ms: u64,
    /// Events that process failed to send before this one (cumulative).
    pub dropped: u64,
    /// What the policy said.
    pub verdict: PolicyVerdict,
    /// The call.
    pub call: GuardCall,
}

impl GuardEvent {
    /// A socket the sampler saw (`Observation::Endpoint`), stamped with the time of the
    /// guard's call to the same destination, so that it is dated as that call is.
    pub fn sampled(unix_ms: u64, socket: Observation) -> GuardEvent {
        GuardEvent {
            pid: 0,
            tid: 0,
            unix_ms,
            dropped: 0,
            verdict: PolicyVerdict::Allow,
            call: GuardCall::Sampled(Box::new(socket)),
        }
    }
}

/// The guard's policy state in a process, from its `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyState {
    /// No policy configured.
    None,
    /// Violations reported.
    Observe,
    /// Violations refused.
    Enforce,
    /// A policy was configured but could not be used.
    Error,
}

/// What the guard reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardCall {
    /// Never on the wire: a socket the sampler saw, dated like the guard's call to the same
    /// destination (see [`GuardEvent::sampled`]).
    Sampled(Box<Observation>),
    /// The guard loaded in a process.
    Hello {
        /// Its policy state.
        policy: PolicyState,
        /// The process's executable.
        exe: String,
        /// Its arguments, joined by spaces (empty from a guard that does not send them).
        argv: String,
    },
    /// `connect` to an inet address.
    Connect {
        /// tcp or udp.
        proto: Proto,
        /// Destination.
        addr: SocketAddr,
    },
    /// A datagram sent to an explicit inet destination.
    Send {
        /// tcp or udp.
        proto: Proto,
        /// Destination.
        addr: SocketAddr,
        /// Payload size.
        bytes: u64,
        /// The DNS question's name, for a query to port 53.
        dns: Option<String>,
    },
    /// The role's secret key in a payload sent to `addr`.
    SecretSent {
        /// tcp or udp.
        proto: Proto,
        /// Destination.
        addr: SocketAddr,
        /// Payload size.
        bytes: u64,
        /// How the key was written.
        encoding: SecretEncoding,
    },
    /// A program run.
    Exec {
        /// As called (`fd:N` for an exec by descriptor).
        path: String,
        /// The file actually run.
        target: String,
        /// How it was named.
        how: ExecHow,
        /// Arguments, joined by spaces (truncated).
        argv: String,
    },
    /// A signal sent to another process.
    Kill {
        /// Target process (thread group).
        target: u32,
        /// Signal number.
        signal: i32,
    },
    /// A credential source opened.
    Open {
        /// Path.
        path: String,
    },
    /// A file opened for writing outside the policy's `write` list (allowed writes are not
    /// reported).
    Write {
        /// The file, made absolute and normalised by the guard (as called when it could not).
        path: String,
    },
    /// A function of the language runtime replaced, as the language watch reported it
    /// (`owner.name`; see [`patched_name`]).
    Patched {
        /// What was replaced.
        name: String,
    },
    /// Something about the guard itself (e.g. `policy_error`).
    Notice {
        /// What.
        what: String,
        /// Its text.
        message: String,
    },
}

/// Why a datagram was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Longer than [`MAX_DATAGRAM`].
    #[error("datagram longer than {MAX_DATAGRAM} bytes")]
    TooLong,
    /// Not UTF-8.
    #[error("datagram is not UTF-8")]
    NotText,
    /// Another format version.
    #[error("unknown format version")]
    Version,
    /// An unknown kind of event.
    #[error("unknown event kind")]
    Kind,
    /// A field missing or malformed.
    #[error("bad or missing field: {0}")]
    Field(&'static str),
    /// Fields left over.
    #[error("extra fields")]
    Extra,
}

/// Parses one datagram.
pub fn parse(datagram: &[u8]) -> Result<GuardEvent, WireError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(WireError::TooLong);
    }
    let text = std::str::from_utf8(datagram).map_err(|_| WireError::NotText)?;
    let mut f = Fields(text.split('\t'));
    if f.next("version")? != VERSION {
        return Err(WireError::Version);
    }
    let kind = f.next("kind")?;
    let pid = f.number("pid")?;
    let tid = f.number("tid")?;
    let unix_ms = f.number("unix_ms")?;
    let dropped = f.number("dropped")?;
    let verdict = match f.next("verdict")? {
        "allow" => PolicyVerdict::Allow,
        "observe" => PolicyVerdict::Observe,
        "deny" => PolicyVerdict::Deny,
        _ => return Err(WireError::Field("verdict")),
    };
    let call = match kind {
        "hello" => GuardCall::Hello {
            policy: match f.next("policy")? {
                "none" => PolicyState::None,
                "observe" => PolicyState::Observe,
                "enforce" => PolicyState::Enforce,
                "error" => PolicyState::Error,
                _ => return Err(WireError::Field("policy")),
            },
            exe: f.text("exe")?,
            argv: f.0.next().unwrap_or_default().to_string(),
        },
        "connect" => GuardCall::Connect {
            proto: f.proto()?,
            addr: f.addr()?,
        },
        "send" => GuardCall::Send {
            proto: f.proto()?,
            addr: f.addr()?,
            bytes: f.number("bytes")?,
            dns: Some(f.text("dns")?).filter(|d| d != "-"),
        },
        "secret" => GuardCall::SecretSent {
            proto: f.proto()?,
            addr: f.addr()?,
            bytes: f.number("bytes")?,
            encoding: match f.next("encoding")? {
                "text" => SecretEncoding::Text,
                "base64" => SecretEncoding::Base64,
                _ => return Err(WireError::Field("encoding")),
            },
        },
        "exec" => GuardCall::Exec {
            path: f.text("path")?,
            target: f.text("target")?,
            how: match f.next("how")? {
                "path" => ExecHow::Path,
                "fd" => ExecHow::Fd,
                "memfd" => ExecHow::Memfd,
                "deleted" => ExecHow::Deleted,
                "loader" => ExecHow::Loader,
                _ => return Err(WireError::Field("how")),
            },
            argv: f.text("argv")?,
        },
        "kill" => GuardCall::Kill {
            target: f.number("target")?,
            signal: f.number("signal")?,
        },
        "open" => GuardCall::Open {
            path: f.text("path")?,
        },
        "write" => GuardCall::Write {
            path: f.text("path")?,
        },
        "patched" => GuardCall::Patched {
            name: patched_name(f.next("name")?)?,
        },
        "guard" => GuardCall::Notice {
            what: f.text("what")?,
            message: f.text("message")?,
        },
        _ => return Err(WireError::Kind),
    };
    if f.0.next().is_some() {
        return Err(WireError::Extra);
    }
    Ok(GuardEvent {
        pid,
        tid,
        unix_ms,
        dropped,
        verdict,
        call,
    })
}

/// Most characters of a patched function's name.
const MAX_PATCHED_NAME: usize = 96;

/// A patched function's name as the language watch writes it: identifier characters,
/// dots and brackets, at most [`MAX_PATCHED_NAME`]. Any process of the function can open the
/// report path, so the name is attacker text: anything else is refused.
fn patched_name(name: &str) -> Result<String, WireError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._$[]'-".contains(c);
    if name.is_empty() || name.len() > MAX_PATCHED_NAME || !name.chars().all(allowed) {
        return Err(WireError::Field("name"));
    }
    Ok(name.to_string())
}

struct Fields<'a>(std::str::Split<'a, char>);

impl<'a> Fields<'a> {
    fn next(&mut self, name: &'static str) -> Result<&'a str, WireError> {
        self.0.next().ok_or(WireError::Field(name))
    }

    fn text(&mut self, name: &'static str) -> Result<String, WireError> {
        self.next(name).map(str::to_string)
    }

    fn number<T: std::str::FromStr>(&mut self, name: &'static str) -> Result<T, WireError> {
        self.next(name)?.parse().map_err(|_| WireError::Field(name))
    }

    fn proto(&mut self) -> Result<Proto, WireError> {
        match self.next("proto")? {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(WireError::Field("proto")),
        }
    }

    fn addr(&mut self) -> Result<SocketAddr, WireError> {
        self.next("addr")?
            .parse()
            .map_err(|_| WireError::Field("addr"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> GuardEvent {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn every_kind_parses() {
        let e = event("1\tconnect\t40\t41\t1700000000000\t0\tallow\ttcp\t10.0.0.5:443");
        assert_eq!(
            (e.pid, e.tid, e.unix_ms, e.dropped),
            (40, 41, 1_700_000_000_000, 0)
        );
        assert_eq!(
            e.call,
            GuardCall::Connect {
                proto: Proto::Tcp,
                addr: "10.0.0.5:443".parse().unwrap()
            }
        );
        let e = event("1\tsend\t40\t40\t1\t2\tdeny\tudp\t[::1]:53\t33\texfil.example.com");
        assert_eq!(e.verdict, PolicyVerdict::Deny);
        assert_eq!(e.dropped, 2);
        assert!(
            matches!(e.call, GuardCall::Send { bytes: 33, dns: Some(ref d), .. } if d == "exfil.example.com")
        );
        let e = event("1\tsend\t40\t40\t1\t0\tallow\tudp\t10.0.0.2:9999\t5\t-");
        assert!(matches!(e.call, GuardCall::Send { dns: None, .. }));
        let e = event("1\texec\t40\t40\t1\t0\tobserve\tfd:5\t/memfd:x (deleted)\tmemfd\tx -q");
        assert!(
            matches!(e.call, GuardCall::Exec { how: ExecHow::Memfd, ref argv, .. } if argv == "x -q")
        );
        let e = event("1\tkill\t40\t40\t1\t0\tallow\t12\t19");
        assert_eq!(
            e.call,
            GuardCall::Kill {
                target: 12,
                signal: 19
            }
        );
        let e = event("1\topen\t40\t40\t1\t0\tallow\t/proc/1/environ");
        assert!(matches!(e.call, GuardCall::Open { ref path } if path == "/proc/1/environ"));
        let e = event("1\twrite\t40\t40\t1\t0\tdeny\t/tmp/payload");
        assert_eq!(e.verdict, PolicyVerdict::Deny);
        assert_eq!(
            e.call,
            GuardCall::Write {
                path: "/tmp/payload".into()
            }
        );
        let e = event("1\thello\t40\t40\t1\t0\tallow\tenforce\t/usr/bin/python3.12");
        assert!(matches!(
            e.call,
            GuardCall::Hello {
                policy: PolicyState::Enforce,
                ref argv,
                ..
            } if argv.is_empty()
        ));
        let e = event("1\thello\t40\t40\t1\t0\tallow\tnone\t/usr/bin/ps\tps -ef");
        assert!(matches!(
            e.call,
            GuardCall::Hello { ref exe, ref argv, .. } if exe == "/usr/bin/ps" && argv == "ps -ef"
        ));
        let e = event("1\tsecret\t40\t42\t1\t0\tobserve\ttcp\t203.0.113.4:80\t512\tbase64");
        assert_eq!(e.verdict, PolicyVerdict::Observe);
        assert_eq!(
            e.call,
            GuardCall::SecretSent {
                proto: Proto::Tcp,
                addr: "203.0.113.4:80".parse().unwrap(),
                bytes: 512,
                encoding: SecretEncoding::Base64,
            }
        );
        let e = event("1\tguard\t40\t40\t1\t0\tallow\tpolicy_error\tline 3: expected ]");
        assert!(matches!(e.call, GuardCall::Notice { ref what, .. } if what == "policy_error"));
    }

    #[test]
    fn a_patched_function_is_named_only_in_the_watch_s_own_characters() {
        let e = event("1\tpatched\t40\t40\t1\t0\tallow\tModule.prototype.require");
        assert_eq!(
            e.call,
            GuardCall::Patched {
                name: "Module.prototype.require".into()
            }
        );
        // Any process can open the report path: its name is attacker text.
        let long = format!("1\tpatched\t1\t1\t1\t0\tallow\t{}", "a".repeat(97));
        for bad in [
            "1\tpatched\t1\t1\t1\t0\tallow\t",
            "1\tpatched\t1\t1\t1\t0\tallow\tJSON parse",
            "1\tpatched\t1\t1\t1\t0\tallow\t../../etc/passwd",
            "1\tpatched\t1\t1\t1\t0\tallow\tJSON.parse\u{202e}",
            long.as_str(),
        ] {
            assert_eq!(
                parse(bad.as_bytes()),
                Err(WireError::Field("name")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_datagrams_are_rejected_whole() {
        let cases: [(&[u8], WireError); 12] = [
            (
                b"1\tsecret\t1\t1\t1\t0\tallow\ttcp\t1.2.3.4:1\t9\trot13",
                WireError::Field("encoding"),
            ),
            (
                b"2\tconnect\t1\t1\t1\t0\tallow\ttcp\t1.2.3.4:1",
                WireError::Version,
            ),
            (b"1\tmine\t1\t1\t1\t0\tallow", WireError::Kind),
            (
                b"1\tconnect\t-1\t1\t1\t0\tallow\ttcp\t1.2.3.4:1",
                WireError::Field("pid"),
            ),
            (
                b"1\tconnect\t1\t1\t1\t0\tmaybe\ttcp\t1.2.3.4:1",
                WireError::Field("verdict"),
            ),
            (
                b"1\tconnect\t1\t1\t1\t0\tallow\tsctp\t1.2.3.4:1",
                WireError::Field("proto"),
            ),
            (
                b"1\tconnect\t1\t1\t1\t0\tallow\ttcp\t1.2.3.4",
                WireError::Field("addr"),
            ),
            (
                b"1\tconnect\t1\t1\t1\t0\tallow\ttcp",
                WireError::Field("addr"),
            ),
            (
                b"1\tconnect\t1\t1\t1\t0\tallow\ttcp\t1.2.3.4:1\tx",
                WireError::Extra,
            ),
            (b"1\tkill\t1\t1\t1\t0\tallow\t\xff\t9", WireError::NotText),
            (b"1\twrite\t1\t1\t1\t0\tdeny", WireError::Field("path")),
            (
                b"1\twrite\t1\t1\t1\t0\tdeny\t/tmp/x\t/tmp/y",
                WireError::Extra,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                parse(bytes),
                Err(want),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(parse(&[b'1'; MAX_DATAGRAM + 1]), Err(WireError::TooLong));
    }
}
