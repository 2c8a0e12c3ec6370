//! What the sampler and the file watch observe while an invocation runs: processes,
//! programs, endpoints and scratch files. Carried as evidence in records and findings.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Something the sampler (or the /tmp watcher) noticed during an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    /// A process that was not there when the invocation started.
    Process {
        /// Process id.
        pid: u32,
        /// Parent process id.
        ppid: u32,
        /// Executable path.
        exe: String,
        /// Command line (truncated).
        cmdline: String,
        /// True when this reports a new executable of a process already seen (exec).
        exec: bool,
        /// Still running when the invocation ended (only on end-of-invocation reports).
        #[serde(default)]
        alive_at_end: bool,
        /// Its standard input or output was a socket when it was seen: a program wired to a
        /// network connection (a reverse or bind shell), not one the function piped.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stdio_socket: bool,
        /// A fork of the runtime: its parent is the runtime (a process alive when the first
        /// invocation started, or a fork of one) and it still runs the parent's executable.
        /// Lineage, not a name: a program merely called `python` or `bootstrap` is not one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        runtime_fork: bool,
    },
    /// A connection or listener that was not there when the invocation started.
    Endpoint {
        /// tcp or udp.
        proto: Proto,
        /// Remote address and port (for a listener: the local one).
        addr: SocketAddr,
        /// True for a listening TCP socket (someone may connect in).
        listen: bool,
    },
    /// A program run from a system program directory, seen by the file watch when the
    /// exec opened it: names programs too short-lived for any tick (no pid, no command line).
    Program {
        /// Executable path.
        exe: String,
    },
    /// A process an earlier invocation left, still running at this one's end.
    StillRunning {
        /// Process id.
        pid: u32,
        /// Executable path.
        exe: String,
        /// Command line (truncated).
        cmdline: String,
    },
    /// A file created, written, moved in or deleted under the scratch directory.
    TmpFile {
        /// Path.
        path: String,
        /// created, written, moved_in or deleted.
        action: TmpAction,
        /// Size in bytes when known.
        size: Option<u64>,
    },
    /// A connection opened, seen by the in-process guard at the `connect` call.
    Connect {
        /// The calling process.
        pid: u32,
        /// tcp or udp.
        proto: Proto,
        /// Destination.
        addr: SocketAddr,
        /// What the zero-trust policy said.
        #[serde(default, skip_serializing_if = "PolicyVerdict::is_allow")]
        verdict: PolicyVerdict,
        /// Made before the invocation started, as the environment thawed: not the
        /// invocation's own doing but code an earlier one left to run (a timer, a thread, a
        /// callback still pending when the runtime answered).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        at_thaw: bool,
    },
    /// A datagram sent to an explicit destination (UDP without `connect`), seen by the guard.
    Send {
        /// The calling process.
        pid: u32,
        /// tcp or udp.
        proto: Proto,
        /// Destination.
        addr: SocketAddr,
        /// Payload size.
        bytes: u64,
        /// The name a DNS query to port 53 asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dns: Option<String>,
        /// What the zero-trust policy said.
        #[serde(default, skip_serializing_if = "PolicyVerdict::is_allow")]
        verdict: PolicyVerdict,
    },
    /// A program run, seen by the guard at the exec call.
    Exec {
        /// The calling process.
        pid: u32,
        /// As called (`fd:N` for an exec by descriptor).
        path: String,
        /// The file actually run (behind a descriptor, or the program a loader was given).
        target: String,
        /// How the program was named.
        how: ExecHow,
        /// Arguments (truncated).
        argv: String,
        /// What the zero-trust policy said.
        #[serde(default, skip_serializing_if = "PolicyVerdict::is_allow")]
        verdict: PolicyVerdict,
    },
    /// A signal sent to another process, seen by the guard.
    Signal {
        /// The sending process.
        pid: u32,
        /// The target process.
        target: u32,
        /// Signal number.
        signal: i32,
        /// What the zero-trust policy said.
        #[serde(default, skip_serializing_if = "PolicyVerdict::is_allow")]
        verdict: PolicyVerdict,
    },
    /// The role's secret access key in what a process sent over the network, seen by the
    /// guard in the payload of a `send`, `write` or the like: stolen credentials leaving,
    /// however the code read them (SDKs sign with the key, they never send it).
    SecretSent {
        /// The sending process.
        pid: u32,
        /// tcp or udp.
        proto: Proto,
        /// Destination.
        addr: SocketAddr,
        /// Size of the payload that carried it.
        bytes: u64,
        /// How the key was written in it.
        encoding: SecretEncoding,
        /// What the zero-trust policy said (a policy never allows it).
        #[serde(default, skip_serializing_if = "PolicyVerdict::is_allow")]
        verdict: PolicyVerdict,
    },
    /// A credential source opened (`/proc/*/environ`, `~/.aws/…`), seen by the guard.
    CredentialRead {
        /// The calling process.
        pid: u32,
        /// Path.
        path: String,
        /// What the calling process runs, as its guard said when it loaded (none when it
        /// did not say: a fork that did not exec).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reader: Option<Reader>,
        /// What the zero-trust policy said.
        #[serde(default, skip_serializing_if = "PolicyVerdict::is_allow")]
        verdict: PolicyVerdict,
    },
    /// A file opened for writing outside the zero-trust policy's `write` list, seen by the
    /// guard (writes the policy allows are not reported).
    FileWrite {
        /// The calling process.
        pid: u32,
        /// The file, absolute.
        path: String,
        /// What the zero-trust policy said (`observe` or `deny`).
        #[serde(default, skip_serializing_if = "PolicyVerdict::is_allow")]
        verdict: PolicyVerdict,
    },
    /// A function of the language runtime itself (`JSON.parse`, `console.log`,
    /// `http.request`, `require`…) replaced while an invocation ran, reported by the guard's
    /// language watch (docs/configuration.md, "Language watch"): code planted to run at every
    /// later invocation without a thread or a process of its own.
    Patched {
        /// The process whose runtime was patched.
        pid: u32,
        /// What was replaced, as `owner.name` (`JSON.parse`, `http.request`).
        name: String,
    },
    /// Something on Warden's own channels that the platform did not send.
    Tamper {
        /// What it was.
        what: TamperKind,
        /// The request id it named, when it named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
}

/// A guarded process, as its guard named it when it loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    /// Its executable.
    pub exe: String,
    /// Its arguments, joined by spaces.
    pub argv: String,
}

/// What kind of tampering with Warden was seen (docs/threat-model.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TamperKind {
    /// A request to the telemetry listener without the subscription's path token.
    ForgedTelemetry,
    /// Telemetry for a request id the Extensions API never announced.
    UnknownRequest,
    /// A second `platform.runtimeDone` or `platform.report` for a request, with figures
    /// other than the platform's first ones (which are kept).
    PlatformOverwrite,
    /// Warden was stopped while the function ran.
    Stopped,
    /// Function code sent Warden a signal that stops or ends it (seen by the guard).
    Signalled,
}

impl TamperKind {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            TamperKind::ForgedTelemetry => "forged_telemetry",
            TamperKind::UnknownRequest => "unknown_request",
            TamperKind::PlatformOverwrite => "platform_overwrite",
            TamperKind::Stopped => "stopped",
            TamperKind::Signalled => "signalled",
        }
    }
}

/// What the function's zero-trust policy said of a call the guard saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyVerdict {
    /// No policy, or the policy allows it.
    #[default]
    Allow,
    /// A violation, reported (observe mode): the call went ahead.
    Observe,
    /// A violation, refused (enforce mode): the call failed in the function.
    Deny,
}

impl PolicyVerdict {
    /// Whether the call was allowed (the default, left out of JSON).
    pub fn is_allow(&self) -> bool {
        *self == PolicyVerdict::Allow
    }
}

/// How an exec named the program it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecHow {
    /// By path.
    Path,
    /// By an open descriptor to a file.
    Fd,
    /// By a descriptor to an in-memory file (memfd): code that never touched a disk.
    Memfd,
    /// A file deleted since it was opened.
    Deleted,
    /// Through the dynamic loader (`ld.so /tmp/x`): the target is the program it was given.
    Loader,
}

/// How the secret key was written in a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretEncoding {
    /// As text, or URL, form or JSON encoded.
    Text,
    /// Base64 or base64url.
    Base64,
}

/// What happened to a /tmp file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TmpAction {
    /// Created.
    Created,
    /// Closed after writing.
    Written,
    /// Renamed into the directory.
    MovedIn,
    /// Removed.
    Deleted,
}

/// Transport of a socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// /proc/net/tcp and tcp6.
    Tcp,
    /// /proc/net/udp and udp6.
    Udp,
}
