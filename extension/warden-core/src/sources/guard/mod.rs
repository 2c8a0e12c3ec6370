//! The in-process guard's events: every connect, send, exec, signal and credential read of
//! the function's processes (and each write the policy forbids) as it happens, reported by the guard library loaded into them
//! (`extension/warden-guard`, docs/configuration.md "In-process guard").
//!
//! `listener` receives the datagrams, `wire` parses them; here they are checked against the
//! sender the kernel names, queued for the pipeline, and turned into observations.

pub mod listener;
pub mod ring;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::health::{Counter, Health};
use crate::schema::{Observation, Reader, TamperKind};
pub use listener::{GuardListener, DEFAULT_NAME};
pub use ring::GuardRing;
pub use wire::{GuardCall, GuardEvent, PolicyState, WireError, MAX_DATAGRAM};

/// Processes whose guard's hello is remembered (see [`GuardPrograms`]).
const MAX_PROGRAMS: usize = 1024;
/// Events queued between the socket and the pipeline; beyond it they are dropped, counted.
pub const QUEUE: usize = 1024;
/// Processes whose drop count is remembered (see [`GuardHealth`]).
const MAX_SENDERS: usize = 1024;

/// Reads datagrams until the pipeline goes away: each is parsed, checked against the pid the
/// kernel gives for its sender, and queued without waiting.
pub async fn receive(listener: GuardListener, tx: mpsc::Sender<GuardEvent>, health: Arc<Health>) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let got = match listener.recv(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                health.note(
                    Counter::GuardRejected,
                    format_args!("the guard's socket failed ({e}); no more guard events"),
                );
                return;
            }
        };
        let event = match wire::parse(&buf[..got.len.min(buf.len())]) {
            Ok(event) => event,
            Err(e) => {
                health.note(
                    Counter::GuardRejected,
                    format_args!("a guard datagram was rejected: {e}"),
                );
                continue;
            }
        };
        if got.sender_pid != Some(event.pid) {
            // Written by hand by someone who is not the process it names.
            health.note(
                Counter::GuardForged,
                format_args!("a guard datagram named a process other than its sender"),
            );
            continue;
        }
        match tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => health.add(Counter::GuardDropped, 1),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Who Warden is, to tell its own traffic and the attacks on it.
#[derive(Debug, Clone, Copy)]
pub struct GuardContext {
    /// Warden's pid: a signal that stops or ends it is tampering.
    pub own_pid: u32,
    /// The Runtime API: the runtime's own connections to it are the platform's.
    pub runtime_api: Option<SocketAddr>,
}

/// Signals that stop or end a process.
const STOPPING_SIGNALS: [i32; 7] = [
    libc::SIGSTOP,
    libc::SIGTSTP,
    libc::SIGKILL,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
];

/// What each guarded process runs, from its guard's hello: a process its parent ran
/// unguarded (a shell that exported the preload after it started) has no exec event, only
/// this to name it.
#[derive(Debug, Default)]
pub struct GuardPrograms {
    by_pid: HashMap<u32, Reader>,
}

impl GuardPrograms {
    /// Notes a hello (a later one of the same pid, after an exec or a reused pid, replaces
    /// it); an exec by a pid forgets it until the new program's hello.
    pub fn note(&mut self, event: &GuardEvent) {
        match &event.call {
            GuardCall::Hello { exe, argv, .. } => {
                if self.by_pid.len() >= MAX_PROGRAMS && !self.by_pid.contains_key(&event.pid) {
                    self.by_pid.clear();
                }
                self.by_pid.insert(
                    event.pid,
                    Reader {
                        exe: exe.clone(),
                        argv: argv.clone(),
                    },
                );
            }
            GuardCall::Exec { .. } => {
                self.by_pid.remove(&event.pid);
            }
            _ => {}
        }
    }

    /// What `pid` runs, if its guard said.
    pub fn of(&self, pid: u32) -> Option<&Reader> {
        self.by_pid.get(&pid)
    }
}

/// The observations an event is evidence of (none for the guard's own news); `programs`
/// names the readers of credentials.
pub fn observations(
    event: &GuardEvent,
    ctx: &GuardContext,
    programs: &GuardPrograms,
    out: &mut Vec<Observation>,
) {
    let pid = event.pid;
    let verdict = event.verdict;
    match &event.call {
        GuardCall::Hello { .. } | GuardCall::Notice { .. } => {}
        GuardCall::Sampled(socket) => out.push((**socket).clone()),
        GuardCall::Connect { proto, addr } => {
            if Some(*addr) != ctx.runtime_api {
                out.push(Observation::Connect {
                    pid,
                    proto: *proto,
                    addr: *addr,
                    verdict,
                    at_thaw: false,
                });
            }
        }
        GuardCall::Send {
            proto,
            addr,
            bytes,
            dns,
        } => out.push(Observation::Send {
            pid,
            proto: *proto,
            addr: *addr,
            bytes: *bytes,
            dns: dns.clone(),
            verdict,
        }),
        GuardCall::SecretSent {
            proto,
            addr,
            bytes,
            encoding,
        } => out.push(Observation::SecretSent {
            pid,
            proto: *proto,
            addr: *addr,
            bytes: *bytes,
            encoding: *encoding,
            verdict,
        }),
        GuardCall::Exec {
            path,
            target,
            how,
            argv,
        } => out.push(Observation::Exec {
            pid,
            path: path.clone(),
            target: target.clone(),
            how: *how,
            argv: argv.clone(),
            verdict,
        }),
        GuardCall::Kill { target, signal } => {
            out.push(Observation::Signal {
                pid,
                target: *target,
                signal: *signal,
                verdict,
            });
            if *target == ctx.own_pid && STOPPING_SIGNALS.contains(signal) {
                out.push(Observation::Tamper {
                    what: TamperKind::Signalled,
                    request_id: None,
                });
            }
        }
        GuardCall::Open { path } => out.push(Observation::CredentialRead {
            pid,
            path: path.clone(),
            reader: programs.of(pid).cloned(),
            verdict,
        }),
        GuardCall::Write { path } => out.push(Observation::FileWrite {
            pid,
            path: path.clone(),
            verdict,
        }),
        GuardCall::Patched { name } => out.push(Observation::Patched {
            pid,
            name: name.clone(),
        }),
    }
}

/// What the guard says about itself: processes it loaded in, their policy state, the events
/// they could not send.
#[derive(Debug, Default)]
pub struct GuardHealth {
    dropped: HashMap<u32, u64>,
}

impl GuardHealth {
    /// Counts an event's news about the guard.
    pub fn note(&mut self, event: &GuardEvent, health: &Health) {
        if matches!(event.call, GuardCall::Sampled(_)) {
            return;
        }
        match &event.call {
            GuardCall::Hello { policy, .. } => {
                health.add(Counter::GuardProcesses, 1);
                if *policy == PolicyState::Error {
                    health.add(Counter::GuardPolicyErrors, 1);
                }
            }
            GuardCall::Notice { what, message } => {
                crate::warn!("guard in process {}: {what}: {message}", event.pid);
            }
            _ => {}
        }
        // The guard's count is cumulative per process: add what is new since its last event.
        if self.dropped.len() >= MAX_SENDERS && !self.dropped.contains_key(&event.pid) {
            self.dropped.clear();
        }
        let last = self.dropped.entry(event.pid).or_insert(0);
        if event.dropped > *last {
            health.add(Counter::GuardDropped, event.dropped - *last);
            *last = event.dropped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PolicyVerdict;

    fn event(call: GuardCall) -> GuardEvent {
        GuardEvent {
            pid: 40,
            tid: 40,
            unix_ms: 1,
            dropped: 0,
            verdict: PolicyVerdict::Allow,
            call,
        }
    }

    #[test]
    fn a_signal_that_stops_warden_is_tampering_and_the_runtime_api_is_left_out() {
        let ctx = GuardContext {
            own_pid: 7,
            runtime_api: Some("127.0.0.1:9001".parse().unwrap()),
        };
        let mut out = Vec::new();
        observations(
            &event(GuardCall::Kill {
                target: 7,
                signal: libc::SIGSTOP,
            }),
            &ctx,
            &GuardPrograms::default(),
            &mut out,
        );
        assert!(matches!(
            out[1],
            Observation::Tamper {
                what: TamperKind::Signalled,
                ..
            }
        ));
        out.clear();
        observations(
            &event(GuardCall::Kill {
                target: 8,
                signal: libc::SIGSTOP,
            }),
            &ctx,
            &GuardPrograms::default(),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        out.clear();
        let api = GuardCall::Connect {
            proto: crate::schema::Proto::Tcp,
            addr: "127.0.0.1:9001".parse().unwrap(),
        };
        observations(&event(api), &ctx, &GuardPrograms::default(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_forbidden_write_is_a_file_write_observation_with_its_verdict() {
        let ctx = GuardContext {
            own_pid: 7,
            runtime_api: None,
        };
        let mut e = event(GuardCall::Write {
            path: "/tmp/payload".into(),
        });
        e.verdict = PolicyVerdict::Deny;
        let mut out = Vec::new();
        observations(&e, &ctx, &GuardPrograms::default(), &mut out);
        assert_eq!(
            out,
            [Observation::FileWrite {
                pid: 40,
                path: "/tmp/payload".into(),
                verdict: PolicyVerdict::Deny,
            }]
        );
    }

    #[test]
    fn drops_are_counted_once_from_cumulative_figures() {
        let health = Health::default();
        let mut g = GuardHealth::default();
        for dropped in [0, 3, 3, 5] {
            let mut e = event(GuardCall::Open {
                path: "/proc/1/environ".into(),
            });
            e.dropped = dropped;
            g.note(&e, &health);
        }
        assert_eq!(health.get(Counter::GuardDropped), 5);
    }

    #[test]
    fn a_credential_read_names_its_reader_from_the_readers_hello() {
        let ctx = GuardContext {
            own_pid: 7,
            runtime_api: None,
        };
        let mut programs = GuardPrograms::default();
        let read = event(GuardCall::Open {
            path: "/proc/1/environ".into(),
        });
        let reader_of = |programs: &GuardPrograms| {
            let mut out = Vec::new();
            observations(&read, &ctx, programs, &mut out);
            match out.as_slice() {
                [Observation::CredentialRead { reader, .. }] => reader.clone(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(reader_of(&programs), None, "no hello: unnamed");
        programs.note(&event(GuardCall::Hello {
            policy: PolicyState::None,
            exe: "/usr/bin/ps".into(),
            argv: "ps -ef".into(),
        }));
        assert_eq!(
            reader_of(&programs),
            Some(Reader {
                exe: "/usr/bin/ps".into(),
                argv: "ps -ef".into()
            })
        );
        // It execs something else: unnamed until that program's hello.
        programs.note(&event(GuardCall::Exec {
            path: "/usr/bin/cat".into(),
            target: "/usr/bin/cat".into(),
            how: crate::schema::ExecHow::Path,
            argv: "cat /proc/1/environ".into(),
        }));
        assert_eq!(reader_of(&programs), None);
    }
}
