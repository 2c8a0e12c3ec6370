//! Events as datagrams, and the policy's verdict on each call. Pure: the hooks gather the facts
//! (`sys`), this module decides and writes, the hooks send.
//!
//! Every datagram is `1\t<kind>\t<pid>\t<tid>\t<unix_ms>\t<dropped>\t<verdict>` followed by the
//! kind's fields (docs/configuration.md, "In-process guard").

use std::net::SocketAddr;

use crate::dns;
use crate::exec;
use crate::line::Line;
use crate::policy::{self, Policy, Verdict};
use crate::rules::Rules;
use crate::secret::Encoding;

/// The version of the datagram format.
const FORMAT_VERSION: &str = "1";
/// Most bytes of a path field (the program, the file behind a descriptor, an opened file).
const PATH_CAP: usize = 320;
/// DNS is looked for on this destination port.
const DNS_PORT: u16 = 53;

/// What every event starts with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) pid: i32,
    pub(crate) tid: i32,
    pub(crate) unix_ms: u64,
    /// Events this process failed to send so far.
    pub(crate) dropped: u64,
}

/// A datagram and what the guard decided about the call it reports.
pub(crate) struct Event {
    pub(crate) line: Line,
    pub(crate) verdict: Verdict,
}

/// The transport of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// How an exec named its program.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ExecPath<'a> {
    /// A path, as called.
    Path(&'a [u8]),
    /// A descriptor (`fexecve`, `execveat` with `AT_EMPTY_PATH`).
    Fd(i32),
}

fn start(kind: &str, header: &Header, verdict: Verdict) -> Line {
    let mut line = Line::new();
    use std::fmt::Write as _;
    let _ = line.write_str(FORMAT_VERSION);
    line.field(kind);
    line.number(header.pid);
    line.number(header.tid);
    line.number(header.unix_ms);
    line.number(header.dropped);
    line.field(verdict.as_str());
    line
}

/// `hello`: the library is loaded in a process, running `exe` with the arguments of
/// `cmdline` (`/proc/self/cmdline`: NUL-separated). Its arguments name the process even when
/// its parent ran it unguarded (a shell that exported the preload after it started).
pub(crate) fn hello(header: &Header, policy_word: &str, exe: &[u8], cmdline: &[u8]) -> Line {
    let mut line = start("hello", header, Verdict::Allow);
    line.field(policy_word);
    line.text(exe, PATH_CAP);
    let args = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty());
    crate::exec::write_argv(&mut line, args);
    line
}

/// `guard`: something about the guard itself (`policy_error`).
pub(crate) fn notice(header: &Header, what: &str, message: &[u8]) -> Line {
    let mut line = start("guard", header, Verdict::Allow);
    line.field(what);
    line.text(message, PATH_CAP);
    line
}

/// `connect` to an internet address.
pub(crate) fn connect(header: &Header, rules: &Rules<'_>, proto: Proto, dest: SocketAddr) -> Event {
    let verdict = rules.egress(dest);
    let mut line = start("connect", header, verdict);
    line.field(proto.as_str());
    line.number(dest);
    Event { line, verdict }
}

/// `send` of `bytes` to an explicit internet destination; `payload` is the first buffer.
pub(crate) fn send(
    header: &Header,
    rules: &Rules<'_>,
    proto: Proto,
    dest: SocketAddr,
    bytes: usize,
    payload: &[u8],
) -> Event {
    let verdict = rules.egress(dest);
    let mut line = start("send", header, verdict);
    line.field(proto.as_str());
    line.number(dest);
    line.number(bytes);
    if dest.port() == DNS_PORT {
        dns::write_qname(&mut line, payload);
    } else {
        line.field("-");
    }
    Event { line, verdict }
}

/// `secret`: the role's secret key in `bytes` sent to `dest` over `proto`, encoded as
/// `encoding`, by `call` (`send`, `write`).
pub(crate) fn secret_sent(
    header: &Header,
    rules: &Rules<'_>,
    proto: Proto,
    dest: SocketAddr,
    bytes: usize,
    encoding: Encoding,
) -> Event {
    let verdict = rules.secret_sent();
    let mut line = start("secret", header, verdict);
    line.field(proto.as_str());
    line.number(dest);
    line.number(bytes);
    line.field(encoding.as_str());
    Event { line, verdict }
}

/// `exec` of a program. `file` is the file the call named: the path, the path found on `PATH`,
/// or where the descriptor links (empty when that cannot be read) for a descriptor-based exec.
pub(crate) fn exec<'a, I>(
    header: &Header,
    rules: &Rules<'_>,
    called: ExecPath<'a>,
    file: &'a [u8],
    argv: I,
) -> Event
where
    I: IntoIterator<Item = &'a [u8]> + Clone,
{
    let via_descriptor =
        matches!(called, ExecPath::Fd(_)) || exec::is_descriptor_path(file_called(called));
    let (target, how) = exec::classify(file, via_descriptor, argv.clone());
    let verdict = rules.program(target, how);
    let mut line = start("exec", header, verdict);
    match called {
        ExecPath::Path(p) => line.text(p, PATH_CAP),
        ExecPath::Fd(fd) => {
            line.tab();
            use std::fmt::Write as _;
            let _ = write!(line, "fd:{fd}");
        }
    }
    line.text(target, PATH_CAP);
    line.field(how.as_str());
    exec::write_argv(&mut line, argv);
    Event { line, verdict }
}

fn file_called(called: ExecPath<'_>) -> &[u8] {
    match called {
        ExecPath::Path(p) => p,
        ExecPath::Fd(_) => b"",
    }
}

/// `kill` of another process (`target` is the tgid for `tgkill`). `hits_extension`: the signal
/// would reach a process running from /opt/extensions/.
pub(crate) fn kill(
    header: &Header,
    policy: Option<&Policy>,
    target: i32,
    signal: i32,
    hits_extension: bool,
) -> Event {
    let violates = hits_extension && policy::stops_or_ends(signal);
    let verdict = policy.map_or(Verdict::Allow, |p| p.verdict(!violates));
    let mut line = start("kill", header, verdict);
    line.number(target);
    line.number(signal);
    Event { line, verdict }
}

/// Whether a `kill` is worth a look: aimed elsewhere, and a real signal.
pub(crate) fn kill_is_reported(own_pid: i32, target: i32, signal: i32) -> bool {
    signal != 0 && target != own_pid
}

/// Whether checking the target's executable is needed to decide a kill.
pub(crate) fn kill_needs_target(policy: Option<&Policy>, signal: i32) -> bool {
    policy.is_some() && policy::stops_or_ends(signal)
}

/// `open` of a credential source.
pub(crate) fn open(header: &Header, path: &[u8]) -> Line {
    let mut line = start("open", header, Verdict::Allow);
    line.text(path, PATH_CAP);
    line
}

/// Where the language watch reports a patched runtime function: it opens
/// `PATCH_REPORT<name>` (a path under `/dev/null`, which no file can be under, so that
/// without the guard the open just fails), and the guard turns the open into a `patched`
/// event instead of a system call.
pub(crate) const PATCH_REPORT: &[u8] = b"/dev/null/warden/patched/";
/// Most bytes of a patched function's name.
const NAME_CAP: usize = 96;

/// The name a language watch's report carries, if `path` is one (see [`PATCH_REPORT`]).
pub(crate) fn patch_report(path: &[u8]) -> Option<&[u8]> {
    path.strip_prefix(PATCH_REPORT)
}

/// `patched`: a function of the language runtime replaced (`JSON.parse`), as the language
/// watch reported it.
pub(crate) fn patched(header: &Header, name: &[u8]) -> Line {
    let mut line = start("patched", header, Verdict::Allow);
    line.text(name, NAME_CAP);
    line
}

/// `write`: an open for writing outside the policy's `write` list. `path` is the file made
/// absolute (not yet normalised); `None` when the policy allows the write, so that the many
/// allowed writes cost no datagram.
pub(crate) fn write(header: &Header, policy: &Policy, path: &[u8]) -> Option<Event> {
    let mut normal = [0u8; policy::MAX_WRITE_PATH];
    // A path that cannot be normalised (relative, too long) cannot be shown to be allowed.
    let (shown, allowed) = match policy::normalize(path, &mut normal) {
        Some(normal) => (normal, policy.allows_write(normal)),
        None => (path, false),
    };
    if allowed {
        return None;
    }
    let verdict = policy.verdict(false);
    let mut line = start("write", header, verdict);
    line.text(shown, PATH_CAP);
    Some(Event { line, verdict })
}

/// Whether `open` flags ask for writing.
pub(crate) fn opens_for_writing(flags: i32) -> bool {
    flags & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) != 0
}

/// Whether an `fopen` mode writes: `w`, `a`, or `+` (update).
pub(crate) fn fopen_writes(mode: &[u8]) -> bool {
    matches!(mode.first(), Some(b'w' | b'a')) || mode.contains(&b'+')
}

/// Whether an opened path is a credential source: a process's environment
/// (`/proc/<pid>/environ`) or anything under an `.aws` directory (also relative to the
/// working directory or a directory descriptor: `.aws/credentials`). Cheap for every other
/// path.
pub(crate) fn is_credential_path(path: &[u8]) -> bool {
    (path.starts_with(b"/proc/") && path.ends_with(b"/environ"))
        || path.starts_with(b".aws/")
        || exec::contains(path, b"/.aws/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header {
        pid: 10,
        tid: 11,
        unix_ms: 1_700_000_000_123,
        dropped: 2,
    };

    fn text(line: &Line) -> &str {
        std::str::from_utf8(line.as_bytes()).unwrap()
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text.as_bytes(), None).unwrap()
    }

    #[test]
    fn a_language_watch_report_becomes_a_patched_event_with_its_name() {
        assert_eq!(
            patch_report(b"/dev/null/warden/patched/JSON.parse"),
            Some(&b"JSON.parse"[..])
        );
        assert_eq!(patch_report(b"/dev/null"), None);
        assert_eq!(patch_report(b"/tmp/warden/patched/JSON.parse"), None);
        let header = Header {
            pid: 7,
            tid: 8,
            unix_ms: 9,
            dropped: 0,
        };
        let line = patched(&header, b"http.request\tforged");
        assert_eq!(
            text(&line),
            "1\tpatched\t7\t8\t9\t0\tallow\thttp.request forged"
        );
    }

    #[test]
    fn hello_and_notice_carry_the_header() {
        assert_eq!(
            text(&hello(
                &HEADER,
                "none",
                b"/usr/bin/python3.11",
                b"python3\0-m\0awslambdaric\0app.handler\0"
            )),
            "1\thello\t10\t11\t1700000000123\t2\tallow\tnone\t/usr/bin/python3.11\t\
             python3 -m awslambdaric app.handler"
        );
        assert_eq!(
            text(&notice(&HEADER, "policy_error", b"bad\njson")),
            "1\tguard\t10\t11\t1700000000123\t2\tallow\tpolicy_error\tbad json"
        );
    }

    #[test]
    fn connect_and_send_name_the_destination() {
        let dest: SocketAddr = "[::1]:53".parse().unwrap();
        let event = connect(&HEADER, &Rules::policy(None), Proto::Udp, dest);
        assert_eq!(
            text(&event.line),
            "1\tconnect\t10\t11\t1700000000123\t2\tallow\tudp\t[::1]:53"
        );
        let dest: SocketAddr = "192.0.2.1:8125".parse().unwrap();
        let event = send(
            &HEADER,
            &Rules::policy(None),
            Proto::Udp,
            dest,
            12,
            b"metric:1|c",
        );
        assert_eq!(
            text(&event.line),
            "1\tsend\t10\t11\t1700000000123\t2\tallow\tudp\t192.0.2.1:8125\t12\t-"
        );
    }

    #[test]
    fn egress_outside_the_policy_is_observed_or_denied() {
        let dest: SocketAddr = "203.0.113.9:4444".parse().unwrap();
        let observe = policy(r#"{"mode":"observe","egress":[]}"#);
        assert_eq!(
            connect(&HEADER, &Rules::policy(Some(&observe)), Proto::Tcp, dest).verdict,
            Verdict::Observe
        );
        let enforce = policy(r#"{"mode":"enforce","egress":[{"cidr":"203.0.113.0/24"}]}"#);
        assert_eq!(
            connect(&HEADER, &Rules::policy(Some(&enforce)), Proto::Tcp, dest).verdict,
            Verdict::Allow
        );
        let enforce = policy(r#"{"mode":"enforce","egress":[{"cidr":"10.0.0.0/8"}]}"#);
        let event = send(
            &HEADER,
            &Rules::policy(Some(&enforce)),
            Proto::Udp,
            dest,
            3,
            b"abc",
        );
        assert_eq!(event.verdict, Verdict::Deny);
        assert!(text(&event.line).contains("\tdeny\tudp\t"));
    }

    #[test]
    fn a_secret_sent_is_reported_and_refused_only_by_a_policy_in_enforce_mode() {
        let dest: SocketAddr = "198.51.100.7:8080".parse().unwrap();
        let event = secret_sent(
            &HEADER,
            &Rules::policy(None),
            Proto::Tcp,
            dest,
            310,
            Encoding::Base64,
        );
        assert_eq!(
            text(&event.line),
            "1\tsecret\t10\t11\t1700000000123\t2\tallow\ttcp\t198.51.100.7:8080\t310\tbase64"
        );
        // Even to a listed destination: no policy lists the role's key as something to send.
        let observe = policy(r#"{"mode":"observe","egress":[{"cidr":"198.51.100.0/24"}]}"#);
        let enforce = policy(r#"{"mode":"enforce","egress":[{"cidr":"198.51.100.0/24"}]}"#);
        for (policy, verdict) in [(&observe, Verdict::Observe), (&enforce, Verdict::Deny)] {
            let rules = Rules::policy(Some(policy));
            let event = secret_sent(&HEADER, &rules, Proto::Tcp, dest, 1, Encoding::Text);
            assert_eq!(event.verdict, verdict);
        }
    }

    #[test]
    fn exec_fields_name_the_target_and_how() {
        let argv = [&b"/lib64/ld-linux-x86-64.so.2"[..], b"/tmp/x", b"-q"];
        let loader = b"/lib64/ld-linux-x86-64.so.2";
        let event = exec(
            &HEADER,
            &Rules::policy(None),
            ExecPath::Path(loader),
            loader,
            argv,
        );
        assert!(text(&event.line).ends_with(
            "\texec\t10\t11\t1700000000123\t2\tallow\t/lib64/ld-linux-x86-64.so.2\t/tmp/x\tloader\t/lib64/ld-linux-x86-64.so.2 /tmp/x -q"
        ), "{}", text(&event.line));
        let event = exec(
            &HEADER,
            &Rules::policy(None),
            ExecPath::Fd(7),
            b"/memfd:x (deleted)",
            [&b"x"[..]],
        );
        assert!(text(&event.line).ends_with("\tfd:7\t/memfd:x (deleted)\tmemfd\tx"));
        let event = exec(
            &HEADER,
            &Rules::policy(None),
            ExecPath::Fd(7),
            b"",
            [&b"x"[..]],
        );
        assert!(
            text(&event.line).ends_with("\tfd:7\t\tfd\tx"),
            "{}",
            text(&event.line)
        );
    }

    #[test]
    fn exec_outside_the_policy_is_denied_in_enforce_mode() {
        let p = policy(r#"{"mode":"enforce","exec":["true"]}"#);
        let ok = exec(
            &HEADER,
            &Rules::policy(Some(&p)),
            ExecPath::Path(b"/bin/true"),
            b"/bin/true",
            [&b"true"[..]],
        );
        assert_eq!(ok.verdict, Verdict::Allow);
        let no = exec(
            &HEADER,
            &Rules::policy(Some(&p)),
            ExecPath::Path(b"/bin/sh"),
            b"/bin/sh",
            [&b"sh"[..]],
        );
        assert_eq!(no.verdict, Verdict::Deny);
    }

    #[test]
    fn a_stop_aimed_at_an_extension_breaks_any_policy() {
        let p = policy(r#"{"mode":"enforce"}"#);
        assert_eq!(
            kill(&HEADER, Some(&p), 42, libc::SIGSTOP, true).verdict,
            Verdict::Deny
        );
        assert_eq!(
            kill(&HEADER, Some(&p), 42, libc::SIGUSR1, true).verdict,
            Verdict::Allow
        );
        assert_eq!(
            kill(&HEADER, Some(&p), 42, libc::SIGSTOP, false).verdict,
            Verdict::Allow
        );
        assert_eq!(
            kill(&HEADER, None, 42, libc::SIGSTOP, true).verdict,
            Verdict::Allow
        );
        let event = kill(&HEADER, None, 42, libc::SIGSTOP, false);
        assert!(text(&event.line).ends_with("\tkill\t10\t11\t1700000000123\t2\tallow\t42\t19"));
        assert!(
            kill_is_reported(10, 42, 9)
                && !kill_is_reported(10, 10, 9)
                && !kill_is_reported(10, 42, 0)
        );
    }

    #[test]
    fn only_writes_outside_the_list_are_reported() {
        let p = policy(r#"{"mode":"enforce","write":["/tmp/cache/"]}"#);
        assert!(write(&HEADER, &p, b"/tmp/cache/a").is_none());
        assert!(write(&HEADER, &p, b"/tmp/cache/../../dev/null").is_none());
        let event = write(&HEADER, &p, b"/tmp/cache/../payload").unwrap();
        assert_eq!(event.verdict, Verdict::Deny);
        assert_eq!(
            text(&event.line),
            "1\twrite\t10\t11\t1700000000123\t2\tdeny\t/tmp/payload"
        );
        let observe = policy(r#"{"mode":"observe","write":[]}"#);
        let event = write(&HEADER, &observe, b"relative/x").unwrap();
        assert_eq!(event.verdict, Verdict::Observe);
        assert!(text(&event.line).ends_with("\tobserve\trelative/x"));
    }

    #[test]
    fn write_flags_and_modes_are_recognised() {
        for flags in [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_RDONLY | libc::O_CREAT,
            libc::O_RDONLY | libc::O_TRUNC,
            libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC,
        ] {
            assert!(opens_for_writing(flags), "{flags:#x}");
        }
        assert!(!opens_for_writing(
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_DIRECTORY
        ));
        for mode in ["w", "wb", "a", "ab+", "r+", "rb+", "w+x"] {
            assert!(fopen_writes(mode.as_bytes()), "{mode}");
        }
        for mode in ["r", "rb", "re", ""] {
            assert!(!fopen_writes(mode.as_bytes()), "{mode}");
        }
    }

    #[test]
    fn only_credential_sources_are_reported_on_open() {
        for path in [
            ".aws/credentials",
            "/proc/self/environ",
            "/proc/1/environ",
            "/home/u/.aws/credentials",
            "/tmp/h/.aws/config",
        ] {
            assert!(is_credential_path(path.as_bytes()), "{path}");
        }
        for path in [
            "/proc/self/status",
            "/etc/passwd",
            "/var/task/aws/x",
            "environ",
            "/tmp/.awsx/y",
        ] {
            assert!(!is_credential_path(path.as_bytes()), "{path}");
        }
    }
}
