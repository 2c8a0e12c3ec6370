use super::*;
use crate::schema::Proto;
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/proc/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// Builds a small /proc tree from the fixtures: pid 1 (platform), 42 (a runtime with two
/// fds), 43 (a thread of 42, reachable by pid but not listed), 99 (Warden itself).
fn fake_proc(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("warden-proc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("loadavg", &fixture("valid_loadavg"));
    write("net/snmp", &fixture("valid_snmp"));
    write("net/dev", &fixture("valid_net_dev"));
    write("net/tcp", &fixture("valid_net_tcp"));
    write("net/udp", &fixture("valid_net_udp"));
    write(
        "1/stat",
        "1 (init) S 0 1 1 0 -1 0 0 0 0 0 900 900 11 4 20 0 1 0 1 0 0\n",
    );
    write(
        "1/status",
        "Name:\tinit\nTgid:\t1\nVmRSS:\t 9000 kB\nVmHWM:\t 9000 kB\n",
    );
    write("42/stat", &fixture("valid_stat"));
    write(
        "42/status",
        &fixture("valid_status").replace("Tgid:\t4148", "Tgid:\t42"),
    );
    write("42/fd/0", "");
    write("42/fd/1", "");
    write("42/cmdline", "python3\0-m\0awslambdaric\0app.handler\0");
    std::os::unix::fs::symlink("/usr/bin/python3.11", root.join("42/exe")).unwrap();
    write(
        "43/status",
        &fixture("valid_status_thread").replace("Tgid:\t4148", "Tgid:\t42"),
    );
    write("43/stat", &fixture("valid_stat"));
    write(
        "99/stat",
        "99 (warden) S 1 99 1 0 -1 0 0 0 0 0 500 500 0 0 20 0 2 0 5 0 0\n",
    );
    write(
        "99/status",
        "Name:\twarden\nTgid:\t99\nVmRSS:\t 2048 kB\nVmHWM:\t 2100 kB\n",
    );
    let pages = 2048 / super::page_kb();
    write("99/statm", &format!("3000 {pages} 400 100 0 900 0\n"));
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    // Thread directories are reachable by pid but not listed by readdir on a real /proc.
    std::fs::rename(root.join("43"), root.join(".43")).unwrap();
    root
}

#[test]
fn snapshot_sums_processes_and_excludes_warden_and_init() {
    let root = fake_proc("snap");
    let mut r = ProcReader::new(&root, 99);
    let s = r.snapshot(&ScratchProbe::new(&root.join("tmp")));
    // 42: utime 250 + cutime 7; 1: only its children's cutime 11.
    assert_eq!(s.cpu_user_ticks, 250 + 7 + 11);
    assert_eq!(s.cpu_system_ticks, 31 + 2 + 4);
    assert_eq!(s.processes, 1);
    assert_eq!(s.threads, 3);
    assert_eq!(s.open_fds, 2);
    assert_eq!(s.rss_kb, 40960);
    assert_eq!(s.rss_peak_kb, 51200);
    assert_eq!(s.own_rss_kb, 2048);
    assert_eq!(s.last_pid, Some(4150));
    assert_eq!(s.snmp.tcp_active_opens, 30);
    assert_eq!(s.net.tx_bytes, 204_278);
    assert_eq!(s.pids, vec![1, 42]);
    assert_eq!(r.take_errors(), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn listing_is_skipped_only_while_the_pid_allocator_stands_still() {
    let root = fake_proc("relist");
    let scratch = ScratchProbe::new(&root.join("tmp"));
    let mut r = ProcReader::new(&root, 99);
    assert_eq!(r.snapshot(&scratch).pids, vec![1, 42]);
    // A directory that appears without the allocator moving is not looked for (on a real
    // /proc that cannot happen; an exit is seen by the stat read, see the next test) ...
    std::fs::create_dir_all(root.join("50")).unwrap();
    std::fs::copy(root.join("42/stat"), root.join("50/stat")).unwrap();
    assert_eq!(r.snapshot(&scratch).pids, vec![1, 42]);
    // ... and once the allocator moves, /proc is listed again.
    let loadavg = fixture("valid_loadavg").replace("4150", "4151");
    std::fs::write(root.join("loadavg"), loadavg).unwrap();
    let s = r.snapshot(&scratch);
    assert_eq!(s.pids, vec![1, 42, 50]);
    assert_eq!(s.processes, 2);
    assert_eq!(r.take_errors(), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn real_proc_snapshot_drops_a_process_that_exited() {
    let mut r = ProcReader::new(Path::new("/proc"), 0);
    let scratch = ScratchProbe::new(&std::env::temp_dir());
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    assert!(r.snapshot(&scratch).pids.contains(&child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!r.snapshot(&scratch).pids.contains(&child.id()));
    assert!(!r.snapshot(&scratch).pids.contains(&child.id()));
}

#[test]
fn process_identity_and_threads() {
    let root = fake_proc("ident");
    std::fs::rename(root.join(".43"), root.join("43")).unwrap();
    let mut r = ProcReader::new(&root, 99);
    let p = r.process(42).unwrap();
    assert_eq!(p.ppid, 4144);
    assert_eq!(p.exe, "/usr/bin/python3.11");
    assert_eq!(p.cmdline, "python3 -m awslambdaric app.handler");
    assert_eq!(r.process(43), None, "a thread is not a process");
    assert_eq!(r.process(7), None, "gone");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn sockets_from_all_tables_present() {
    let root = fake_proc("sock");
    let mut r = ProcReader::new(&root, 99);
    let mut out = Vec::new();
    r.sockets(&mut out);
    assert_eq!(out.iter().filter(|(p, _)| *p == Proto::Tcp).count(), 3);
    assert_eq!(out.iter().filter(|(p, _)| *p == Proto::Udp).count(), 2);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn missing_root_gives_empty_snapshot_and_counts_error() {
    let mut r = ProcReader::new(Path::new("/nonexistent/proc"), 1);
    let s = r.snapshot(&ScratchProbe::new(Path::new("/nonexistent/tmp")));
    assert_eq!(s.processes, 0);
    assert!(r.take_errors() >= 1);
}

#[test]
fn real_proc_snapshot_sees_this_process_tree() {
    let mut r = ProcReader::new(Path::new("/proc"), 0);
    let s = r.snapshot(&ScratchProbe::new(&std::env::temp_dir()));
    assert!(s.processes >= 1);
    assert!(s.last_pid.is_some());
    assert!(s.pids.contains(&std::process::id()));
}

#[test]
fn kept_open_listing_sees_a_process_started_later() {
    let mut r = ProcReader::new(Path::new("/proc"), 0);
    let mut before = Vec::new();
    r.list_pids(&mut before);
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let mut after = Vec::new();
    r.list_pids(&mut after);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!before.contains(&child.id()));
    assert!(after.contains(&child.id()));
    let mut gone = Vec::new();
    r.list_pids(&mut gone);
    assert!(!gone.contains(&child.id()));
}

#[test]
fn real_sockets_come_from_netlink_and_match_proc_net() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut r = ProcReader::new(Path::new("/proc"), 0);
    assert!(r.uses_netlink());
    let mut out = Vec::new();
    r.sockets(&mut out);
    let ours = out
        .iter()
        .find(|(p, s)| *p == Proto::Tcp && s.local == addr)
        .expect("listed over netlink");
    let proc_net = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let from_proc = proc_net
        .lines()
        .filter_map(parse::parse_socket_line)
        .find(|s| s.local == addr)
        .expect("listed in /proc/net/tcp");
    assert_eq!(ours.1, from_proc);
}

#[test]
fn a_long_command_line_loses_the_argument_the_limit_cuts() {
    let file = std::env::temp_dir().join(format!("warden-cmdline-{}", std::process::id()));
    let first = "a".repeat(CMDLINE_MAX - 10);
    let text = format!("sh\0{first}\0--token=AKIAIOSFODNN7EXAMPLE\0");
    std::fs::write(&file, text).unwrap();
    let got = read_cmdline(&file, &mut Vec::new()).unwrap();
    assert_eq!(got, format!("sh {first}"));
    std::fs::write(&file, "sh\0-c\0id\0").unwrap();
    assert_eq!(read_cmdline(&file, &mut Vec::new()).unwrap(), "sh -c id");
    std::fs::remove_file(&file).unwrap();
}
