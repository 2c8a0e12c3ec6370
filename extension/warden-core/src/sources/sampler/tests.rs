use super::*;
use crate::schema::Observation;
use std::path::PathBuf;

const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

fn tcp_line(i: u32, local: &str, remote: &str, state: &str, inode: u64) -> String {
    format!("   {i}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0 20 4 30 10 -1\n")
}

struct FakeProc(PathBuf);

impl FakeProc {
    fn new(name: &str) -> FakeProc {
        let root =
            std::env::temp_dir().join(format!("warden-sampler-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("net")).unwrap();
        let f = FakeProc(root);
        f.write("loadavg", "0.0 0.0 0.0 1/10 42\n");
        f.process(1, 0, "/init");
        f.process(42, 1, "/usr/bin/python3");
        f
    }
    fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    fn process(&self, pid: u32, ppid: u32, exe: &str) {
        self.process_started(pid, ppid, exe, 5);
    }
    fn process_started(&self, pid: u32, ppid: u32, exe: &str, start_ticks: u64) {
        self.write(
            &format!("{pid}/status"),
            &format!("Name:\tx\nTgid:\t{pid}\n"),
        );
        self.write(
            &format!("{pid}/stat"),
            &format!("{pid} (x) S {ppid} 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 1 0 {start_ticks} 0 0\n"),
        );
        self.write(&format!("{pid}/cmdline"), &format!("{exe}\0-c\0true\0"));
        let link = self.0.join(format!("{pid}/exe"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(exe, link).unwrap();
    }
    fn snmp(&self, active_opens: u64) {
        self.write(
            "net/snmp",
            &format!(
                "Tcp: ActiveOpens PassiveOpens\nTcp: {active_opens} 0\nUdp: OutDatagrams\nUdp: 0\n"
            ),
        );
    }
    fn tcp(&self, lines: &[String]) {
        self.write("net/tcp", &format!("{TCP_HEADER}{}", lines.concat()));
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sampler(f: &FakeProc) -> Sampler {
    let exclusions = Exclusions {
        runtime_api: Some("127.0.0.1:9001".parse().unwrap()),
        telemetry_port: Some(9317),
        own_sockets: false,
    };
    Sampler::new(&f.0, 99, exclusions)
}

#[test]
fn names_new_processes_and_counts_vanished_ones() {
    let f = FakeProc::new("procs");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    let mut out = Vec::new();
    s.tick(&mut out);
    assert!(out.is_empty(), "{out:?}");

    // 43 came and went; 44 is a shell; 45 is a thread of 44.
    f.process(44, 42, "/bin/sh");
    f.write("45/status", "Name:\tt\nTgid:\t44\n");
    f.write("loadavg", "0.0 0.0 0.0 1/10 45\n");
    s.tick(&mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let Observation::Process {
        pid,
        ppid,
        exe,
        cmdline,
        exec,
        ..
    } = &out[0]
    else {
        panic!()
    };
    assert_eq!(
        (*pid, *ppid, exe.as_str(), *exec),
        (44, 42, "/bin/sh", false)
    );
    assert_eq!(cmdline, "/bin/sh -c true");
    assert_eq!(s.unnamed_tasks(), 1);

    // The shell execs curl: reported once as an exec.
    out.clear();
    f.process(44, 42, "/usr/bin/curl");
    s.tick(&mut out);
    s.tick(&mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        matches!(&out[0], Observation::Process { exe, exec: true, .. } if exe == "/usr/bin/curl")
    );
}

fn forks(out: &[Observation]) -> Vec<(u32, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Observation::Process {
                pid, runtime_fork, ..
            } => Some((*pid, *runtime_fork)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_runtime_is_known_by_lineage_not_by_name() {
    let f = FakeProc::new("lineage");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    let mut out = Vec::new();
    // 43 forks the runtime (same executable), 44 forks the fork: both the runtime's.
    // 45 runs a program named like the runtime, started by the runtime: not a fork.
    // 46 is a fork of 45: not the runtime's either.
    f.process(43, 42, "/usr/bin/python3");
    f.process(44, 43, "/usr/bin/python3");
    f.process(45, 42, "/tmp/python3");
    f.process(46, 45, "/tmp/python3");
    f.write("loadavg", "0.0 0.0 0.0 1/10 46\n");
    s.tick(&mut out);
    assert_eq!(
        forks(&out),
        [(43, true), (44, true), (45, false), (46, false)],
        "{out:?}"
    );

    // 43 execs a shell: it leaves the lineage, and its later forks are not the runtime's.
    out.clear();
    f.process(43, 42, "/bin/sh");
    s.tick(&mut out);
    assert_eq!(forks(&out), [(43, false)], "{out:?}");
    out.clear();
    f.process(47, 43, "/bin/sh");
    f.write("loadavg", "0.0 0.0 0.0 1/10 47\n");
    s.tick(&mut out);
    assert_eq!(forks(&out), [(47, false)], "{out:?}");
}

#[test]
fn the_init_phase_judges_what_the_runtime_starts_not_the_runtime() {
    // Warden (99) and the platform's init (1): the runtime is not started yet.
    let f = FakeProc::new("init");
    std::fs::remove_dir_all(f.0.join("42")).unwrap();
    f.write(
        "loadavg",
        "0.0 0.0 0.0 1/10 10
",
    );
    f.process(10, 1, "/opt/other-extension");
    let mut s = sampler(&f);
    s.start_init(&[1, 10], Some(10), Some(1));
    assert!(s.sampling_init());
    let mut out = Vec::new();

    // The platform starts the runtime's bootstrap script (20), which runs node without
    // exec (21 forks it, then execs node): both are the runtime, silently. Node forks a
    // helper process of its own (22, same executable): the runtime's, named as a fork.
    f.process(20, 1, "/bin/sh");
    f.process(21, 20, "/bin/sh");
    f.write(
        "loadavg",
        "0.0 0.0 0.0 1/10 21
",
    );
    s.tick(&mut out);
    f.process(21, 20, "/usr/bin/node");
    s.tick(&mut out);
    f.process(22, 21, "/usr/bin/node");
    f.write(
        "loadavg",
        "0.0 0.0 0.0 1/10 22
",
    );
    s.tick(&mut out);
    assert_eq!(forks(&out), [(22, true)], "{out:?}");

    // The function's init code forks and execs a miner that stays (23), and a shell that
    // exits (24): both judged, 23 reported again as left running when the INVOKE comes.
    out.clear();
    f.process(23, 21, "/usr/bin/node");
    f.write(
        "loadavg",
        "0.0 0.0 0.0 1/10 23
",
    );
    s.tick(&mut out);
    f.process(23, 21, "/var/task/xmrig");
    s.tick(&mut out);
    f.process(24, 21, "/bin/sh");
    f.write(
        "loadavg",
        "0.0 0.0 0.0 1/10 24
",
    );
    s.tick(&mut out);
    let named: Vec<(u32, &str, bool)> = out
        .iter()
        .filter_map(|o| match o {
            Observation::Process { pid, exe, exec, .. } => Some((*pid, exe.as_str(), *exec)),
            _ => None,
        })
        .collect();
    assert_eq!(
        named,
        [
            (23, "/usr/bin/node", false),
            (23, "/var/task/xmrig", true),
            (24, "/bin/sh", false)
        ]
    );

    out.clear();
    s.end_init_at(unix_now_ms());
    s.finish(&[1, 10, 20, 21, 22, 23], &mut out);
    let left = left_running_pids(&out);
    assert_eq!(left, [23], "{out:?}");

    // From the first INVOKE on, the runtime is node (exec'd since it was first seen).
    s.begin(&[1, 10, 20, 21, 22, 23], Some(24), &mut Vec::new());
    assert!(!s.sampling_init());
    out.clear();
    f.process(25, 21, "/usr/bin/node");
    f.write(
        "loadavg",
        "0.0 0.0 0.0 1/10 25
",
    );
    s.tick(&mut out);
    assert_eq!(forks(&out), [(25, true)], "{out:?}");
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn ticks_now() -> u64 {
    boot_ms().unwrap() * ticks_per_sec() / 1000
}

#[test]
fn processes_left_running_are_reported_at_the_end() {
    let f = FakeProc::new("linger");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    f.process(50, 1, "/tmp/miner"); // started long ago (5 ticks after boot)
    s.mark_end(Some(unix_now_ms()));
    let mut out = Vec::new();
    s.finish(&[1, 42, 50], &mut out);
    assert_eq!(out.len(), 1);
    assert!(matches!(
        &out[0],
        Observation::Process {
            pid: 50,
            alive_at_end: true,
            ..
        }
    ));
}

#[test]
fn a_helper_that_exited_but_was_not_reaped_yet_was_not_left_running() {
    let f = FakeProc::new("zombie");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    f.process(50, 42, "/usr/bin/curl");
    // Exited, its parent (the runtime's loop) not waiting for it yet: state Z, no exe.
    f.write(
        "50/stat",
        "50 (curl) Z 42 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0\n",
    );
    let _ = std::fs::remove_file(f.0.join("50/exe"));
    f.process(51, 1, "/tmp/miner");
    s.mark_end(Some(unix_now_ms()));
    let mut out = Vec::new();
    s.finish(&[1, 42, 50, 51], &mut out);
    let left = left_running_pids(&out);
    assert_eq!(left, [51]);
}

#[test]
fn a_process_the_next_invocation_started_is_reported_there() {
    let f = FakeProc::new("next");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    // 50 was left by this invocation; 51 was forked by the runtime for the next one after
    // this one's runtime finished (a second ago), before Warden handled the next INVOKE.
    f.process(50, 1, "/tmp/miner");
    s.mark_end(Some(unix_now_ms() - 1000));
    f.process_started(51, 42, "/bin/sh", ticks_now());
    let mut out = Vec::new();
    s.finish(&[1, 42, 50, 51], &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(
        &out[0],
        Observation::Process {
            pid: 50,
            alive_at_end: true,
            ..
        }
    ));

    let mut started = Vec::new();
    s.begin(&[1, 42, 50, 51], Some(51), &mut started);
    assert_eq!(started.len(), 1, "{started:?}");
    assert!(matches!(
        &started[0],
        Observation::Process {
            pid: 51,
            alive_at_end: false,
            exec: false,
            ..
        }
    ));
}

#[test]
fn at_shutdown_a_helper_the_runtime_forked_after_its_response_is_not_left_running() {
    // The runtime's loop forked its next helper after the response; the platform then ended
    // the runtime, orphaning it, before the last pass. A process the invocation started
    // before its end, orphaned or not, is still left running.
    let run = |shutting_down: bool| {
        let f = FakeProc::new(if shutting_down { "shutdown" } else { "orphan" });
        let mut s = sampler(&f);
        s.begin(&[1, 42], Some(42), &mut Vec::new());
        f.process(50, 1, "/tmp/miner");
        s.mark_end(Some(unix_now_ms() - 1000));
        f.process_started(51, 1, "/usr/bin/mktemp", ticks_now());
        if shutting_down {
            s.shutting_down();
        }
        let mut out = Vec::new();
        s.finish(&[1, 42, 50, 51], &mut out);
        left_running_pids(&out)
    };
    assert_eq!(run(true), [50]);
    // While the runtime lives, an orphan that started after the response is a daemon's.
    assert_eq!(run(false), [50, 51]);
}

#[test]
fn the_last_pass_at_the_next_invoke_leaves_what_the_next_invocation_started_to_it() {
    let f = FakeProc::new("lastpass");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    // 50 ran in this invocation (started long ago); 51 and 52 were forked by the runtime
    // for the next one, whose INVOKE Warden handles with this one's runtimeDone still on
    // its way. 52 is gone before the next invocation begins.
    f.process(50, 42, "/bin/sh");
    f.process_started(51, 42, "/bin/sh", ticks_now());
    f.process_started(52, 42, "/usr/bin/id", ticks_now());
    f.write("loadavg", "0.0 0.0 0.0 1/10 52\n");
    s.next_invocation_at(unix_now_ms() - 1000);
    let mut last = Vec::new();
    s.final_tick(&mut last);
    let pids = process_pids(&last);
    assert_eq!(pids, vec![50], "{last:?}");
    let mut end = Vec::new();
    s.finish(&[1, 42, 50, 51], &mut end);
    assert!(
        end.iter()
            .all(|o| !matches!(o, Observation::Process { pid: 51 | 52, .. })),
        "{end:?}"
    );
    // 50 started before the next invocation did: this invocation's leftover, decided without
    // waiting for its end time.
    assert!(
        matches!(
            &end[..],
            [Observation::Process {
                pid: 50,
                alive_at_end: true,
                ..
            }]
        ),
        "{end:?}"
    );
    std::fs::remove_dir_all(f.0.join("52")).unwrap();
    let mut started = Vec::new();
    s.begin(&[1, 42, 50, 51], Some(52), &mut started);
    let mut pids: Vec<u32> = started
        .iter()
        .filter_map(|o| match o {
            Observation::Process { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    pids.sort_unstable();
    assert_eq!(pids, vec![51, 52], "{started:?}");
    assert!(!s.undecided());
}

#[test]
fn without_the_end_time_the_decision_waits_for_it() {
    let f = FakeProc::new("undecided");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    f.process(50, 1, "/tmp/miner");
    f.process_started(51, 42, "/bin/sh", ticks_now());
    let mut out = Vec::new();
    s.finish(&[1, 42, 50, 51], &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert!(s.undecided());
    s.begin(&[1, 42, 50, 51], Some(51), &mut out);
    assert!(out.is_empty(), "{out:?}");

    // The closed invocation's runtimeDone: it ended a second ago.
    let (mut left, mut started) = (Vec::new(), Vec::new());
    s.resolve(unix_now_ms() - 1000, &mut left, &mut started);
    assert!(
        matches!(
            &left[..],
            [Observation::Process {
                pid: 50,
                alive_at_end: true,
                ..
            }]
        ),
        "{left:?}"
    );
    assert!(
        matches!(
            &started[..],
            [Observation::Process {
                pid: 51,
                alive_at_end: false,
                ..
            }]
        ),
        "{started:?}"
    );
    assert!(!s.undecided());
}

#[test]
fn undecided_processes_never_resolved_count_as_left_running_next_time() {
    let f = FakeProc::new("lost-end");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    f.process(50, 1, "/tmp/miner");
    let mut out = Vec::new();
    s.finish(&[1, 42, 50], &mut out);
    s.begin(&[1, 42, 50], Some(50), &mut out);
    s.mark_end(Some(unix_now_ms()));
    s.finish(&[1, 42, 50], &mut out);
    assert!(
        matches!(
            &out[..],
            [Observation::Process {
                pid: 50,
                alive_at_end: true,
                ..
            }]
        ),
        "{out:?}"
    );
}

#[cfg(target_endian = "little")]
#[test]
fn new_endpoints_once_each_platform_ones_never() {
    let f = FakeProc::new("sockets");
    let api = "0100007F:2329"; // 127.0.0.1:9001
    let old = tcp_line(0, "0100007F:C350", api, "01", 10);
    f.tcp(std::slice::from_ref(&old));
    f.snmp(1);
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    let out_conn = tcp_line(1, "0200000A:D000", "507100CB:01BB", "01", 11); // -> 203.0.113.80:443
    let again = tcp_line(2, "0200000A:D001", "507100CB:01BB", "01", 12);
    let api_new = tcp_line(3, "0100007F:C351", api, "01", 13);
    let telemetry = tcp_line(4, "0100007F:2465", "0100007F:C352", "01", 14); // local :9317
    let listener = tcp_line(5, "00000000:115C", "00000000:0000", "0A", 15); // :4444
    f.tcp(&[old, out_conn, again, api_new, telemetry, listener]);
    let mut out = Vec::new();
    s.tick(&mut out);
    assert!(
        out.is_empty(),
        "tables are read only after snmp shows new sockets"
    );
    f.snmp(5);
    std::thread::sleep(MIN_TABLE_GAP);
    s.tick(&mut out);
    s.tick(&mut out);
    assert_eq!(
        out,
        vec![
            Observation::Endpoint {
                proto: Proto::Tcp,
                addr: "203.0.113.80:443".parse().unwrap(),
                listen: false
            },
            Observation::Endpoint {
                proto: Proto::Tcp,
                addr: "0.0.0.0:4444".parse().unwrap(),
                listen: true
            },
        ]
    );
}

#[cfg(target_endian = "little")]
#[test]
fn a_connection_closed_between_two_reads_is_named_by_its_addresses() {
    let f = FakeProc::new("closed");
    // Closed before the first invocation: the baseline.
    let old_closed = tcp_line(0, "0200000A:C000", "0300000A:1F90", "06", 0); // -> 10.0.0.3:8080
    f.tcp(std::slice::from_ref(&old_closed));
    f.snmp(1);
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    let mut out = Vec::new();
    // Opened and seen open, then closed: named once, when it was open.
    let open = tcp_line(1, "0200000A:C001", "0400000A:1F90", "01", 21); // -> 10.0.0.4:8080
    f.tcp(&[old_closed.clone(), open]);
    f.snmp(2);
    std::thread::sleep(MIN_TABLE_GAP);
    s.tick(&mut out);
    let was_open = tcp_line(1, "0200000A:C001", "0400000A:1F90", "06", 0);
    // Opened and closed between two reads: only its TIME_WAIT entry (no inode) is left.
    let beat = tcp_line(2, "0200000A:C002", "0500000A:2A6B", "06", 0); // -> 10.0.0.5:10859
    f.tcp(&[old_closed, was_open, beat]);
    f.snmp(3);
    std::thread::sleep(MIN_TABLE_GAP);
    s.tick(&mut out);
    let named: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Observation::Endpoint { addr, .. } => Some(addr.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(named, ["10.0.0.4:8080", "10.0.0.5:10859"], "{out:?}");
}

#[test]
fn real_child_process_is_named() {
    let mut s = Sampler::new(
        Path::new("/proc"),
        std::process::id(),
        Exclusions::default(),
    );
    let mut live = Vec::new();
    ProcReader::new(Path::new("/proc"), std::process::id()).list_pids(&mut live);
    let last = ProcReader::new(Path::new("/proc"), 0).last_pid();
    s.begin(&live, last, &mut Vec::new());
    let mut child = std::process::Command::new("sleep")
        .arg("2")
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    s.tick(&mut out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        out.iter().any(|o| matches!(o, Observation::Process { pid, exe, .. } if *pid == child.id() && exe.ends_with("sleep"))),
        "{out:?}"
    );
}

#[cfg(target_endian = "little")]
#[test]
fn at_the_cap_closed_sockets_are_forgotten_and_open_ones_stay_seen() {
    let f = FakeProc::new("seencap");
    // Another extension's listener, open before the first invocation.
    let other_listener = tcp_line(0, "0100007F:1F90", "00000000:0000", "0A", 10); // :8080
    f.tcp(std::slice::from_ref(&other_listener));
    f.snmp(1);
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    // Many short connections since, all closed now.
    s.seen_sockets
        .extend(1_000..1_000 + MAX_SEEN_SOCKETS as u64 + 10);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    let fresh = tcp_line(1, "0200000A:D000", "507100CB:01BB", "01", 11);
    f.tcp(&[other_listener, fresh]);
    f.snmp(9);
    std::thread::sleep(MIN_TABLE_GAP);
    let mut out = Vec::new();
    s.tick(&mut out);
    assert_eq!(
        out,
        vec![Observation::Endpoint {
            proto: Proto::Tcp,
            addr: "203.0.113.80:443".parse().unwrap(),
            listen: false
        }],
        "the old listener is not new"
    );
    assert!(s.seen_sockets.len() <= 2);
    assert_eq!(s.take_evictions(), 1);
    assert_eq!(s.take_evictions(), 0);
}

#[test]
fn a_guard_exec_time_before_the_next_invocation_keeps_a_process_with_the_one_that_ran_it() {
    let f = FakeProc::new("exectime");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    // 60 and 61 both start within a clock tick of the next invocation's start; the guard saw
    // 60 exec 3 ms before it, and knows nothing of 61.
    let next = unix_now_ms();
    f.process_started(60, 42, "/usr/bin/sleep", ticks_now());
    f.process_started(61, 42, "/bin/sh", ticks_now());
    f.write("loadavg", "0.0 0.0 0.0 1/10 61\n");
    s.note_exec(60, next - 3);
    s.next_invocation_at(next);
    let mut last = Vec::new();
    s.final_tick(&mut last);
    let pids = process_pids(&last);
    assert_eq!(pids, vec![60], "{last:?}");
}

/// The pids of the processes in `out` reported as left running, in order.
fn left_running_pids(out: &[Observation]) -> Vec<u32> {
    out.iter()
        .filter_map(|o| match o {
            Observation::Process {
                pid,
                alive_at_end: true,
                ..
            } => Some(*pid),
            _ => None,
        })
        .collect()
}

fn process_pids(out: &[Observation]) -> Vec<u32> {
    out.iter()
        .filter_map(|o| match o {
            Observation::Process { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect()
}

#[test]
fn a_process_a_pass_found_before_the_end_is_left_by_that_invocation_not_the_next() {
    let f = FakeProc::new("seenbefore");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    // Started within a clock tick of the runtime's end: /proc alone cannot say on which side.
    f.process_started(70, 42, "/usr/bin/sleep", ticks_now());
    f.write("loadavg", "0.0 0.0 0.0 1/10 70\n");
    let mut during = Vec::new();
    s.tick(&mut during);
    assert_eq!(process_pids(&during), vec![70]);
    // The pass found it before the runtime finished: it was left running by this invocation.
    s.mark_end(Some(unix_now_ms() + 2));
    let mut at_end = Vec::new();
    s.finish(&[1, 42, 70], &mut at_end);
    assert!(
        at_end.iter().any(|o| matches!(
            o,
            Observation::Process {
                pid: 70,
                alive_at_end: true,
                ..
            }
        )),
        "{at_end:?}"
    );
}

#[test]
fn a_process_found_between_the_end_and_the_next_start_is_the_closing_invocations() {
    let f = FakeProc::new("between");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    // The runtime finished a moment ago; a pass then finds a process started within a clock
    // tick of that end (a handler's detached child, forked as it returned).
    s.mark_end(Some(unix_now_ms() - 3));
    f.process_started(80, 42, "/usr/bin/sleep", ticks_now());
    f.write("loadavg", "0.0 0.0 0.0 1/10 80\n");
    s.tick(&mut Vec::new());
    // The next invocation starts later: what was alive before it is not its doing.
    s.next_invocation_at(unix_now_ms() + 5);
    let mut end = Vec::new();
    s.finish(&[1, 42, 80], &mut end);
    assert!(
        matches!(
            &end[..],
            [Observation::Process {
                pid: 80,
                alive_at_end: true,
                ..
            }]
        ),
        "{end:?}"
    );
}

#[test]
fn a_shell_runtimes_subshell_is_its_own_but_a_shell_it_starts_is_not() {
    let f = FakeProc::new("subshell");
    f.process(42, 1, "/usr/bin/bash");
    f.write("42/cmdline", "/bin/bash\0/var/task/bootstrap\0");
    let mut s = sampler(&f);
    s.begin(&[1, 42], Some(42), &mut Vec::new());
    // 43: a `$(…)` subshell, a fork with the runtime's command line. 44: `bash -c …` started
    // by the runtime: the same executable, another command line.
    f.process(43, 42, "/usr/bin/bash");
    f.write("43/cmdline", "/bin/bash\0/var/task/bootstrap\0");
    f.process(44, 42, "/usr/bin/bash");
    f.write("44/cmdline", "bash\0-c\0id\0");
    f.write("loadavg", "0.0 0.0 0.0 1/10 44\n");
    let mut out = Vec::new();
    s.tick(&mut out);
    assert_eq!(forks(&out), [(43, true), (44, false)], "{out:?}");
}
