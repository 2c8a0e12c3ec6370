//! Inputs shared by the benches: the project's fixtures and a fake /proc tree built from them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;

/// Short runs: enough for a stable median, quick enough to run often.
pub(crate) fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A fixture's bytes.
pub(crate) fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).expect("fixture exists")
}

fn text(rel: &str) -> String {
    String::from_utf8(fixture(rel)).expect("fixture is UTF-8")
}

/// A /proc tree like a warm Lambda sandbox's: PID 1, a runtime with `processes - 1` helper
/// processes, Warden itself (pid 99), the network files and a scratch directory. Removed on drop.
pub(crate) struct FakeProc {
    pub root: PathBuf,
}

/// Warden's pid in [`FakeProc`].
pub(crate) const SELF_PID: u32 = 99;

impl FakeProc {
    pub(crate) fn new(name: &str, processes: u32) -> FakeProc {
        let root = std::env::temp_dir().join(format!("warden-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let tree = FakeProc { root };
        tree.write("loadavg", &text("proc/valid_loadavg"));
        tree.write("net/snmp", &text("proc/valid_snmp"));
        tree.write("net/dev", &text("proc/valid_net_dev"));
        tree.write("net/tcp", &text("proc/valid_net_tcp"));
        tree.write("net/tcp6", &text("proc/valid_net_tcp6"));
        tree.write("net/udp", &text("proc/valid_net_udp"));
        tree.write("net/udp6", "");
        tree.process(1, "/init");
        for i in 0..processes {
            tree.process(40 + i, "/usr/bin/python3.11");
        }
        tree.process(SELF_PID, "/opt/extensions/warden");
        std::fs::create_dir_all(tree.root.join("tmp")).expect("tmp dir");
        tree
    }

    fn write(&self, rel: &str, body: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("dir");
        std::fs::write(p, body).expect("write");
    }

    fn process(&self, pid: u32, exe: &str) {
        let status = text("proc/valid_status").replace("Tgid:\t4148", &format!("Tgid:\t{pid}"));
        self.write(&format!("{pid}/status"), &status);
        self.write(&format!("{pid}/stat"), &text("proc/valid_stat"));
        self.write(
            &format!("{pid}/cmdline"),
            "python3\0-m\0awslambdaric\0app.handler\0",
        );
        for fd in 0..8 {
            self.write(&format!("{pid}/fd/{fd}"), "");
        }
        std::os::unix::fs::symlink(exe, self.root.join(format!("{pid}/exe"))).expect("symlink");
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
