//! The built wrapper, run as Lambda runs it: with the runtime's command as its arguments.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// A layer laid out in a scratch directory: `wrapper`, and `lib/libwarden_guard.so` when
/// `with_guard` (any readable file will do: the runtimes here only show their environment).
fn layer(with_guard: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_warden-wrapper"),
        dir.path().join("wrapper"),
    )
    .unwrap();
    if with_guard {
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/libwarden_guard.so"), b"").unwrap();
    }
    dir
}

fn run(layer: &Path, preload: Option<&str>, runtime: &[&str]) -> std::process::Output {
    let mut command = Command::new(layer.join("wrapper"));
    command.args(runtime).env_remove("LD_PRELOAD");
    if let Some(preload) = preload {
        command.env("LD_PRELOAD", preload);
    }
    output(command)
}

fn output(mut command: Command) -> std::process::Output {
    // A copy just written can be "busy" for a moment: another test's fork may still hold the
    // copy's descriptor open for writing until that child execs.
    for _ in 0..100 {
        match command.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result.unwrap(),
        }
    }
    panic!("the wrapper stayed busy");
}

#[test]
fn the_runtime_runs_with_the_guard_first_in_ld_preload() {
    let layer = layer(true);
    // The "runtime" prints its environment. The library here is an empty file, which the
    // dynamic loader reports on stderr and skips.
    let out = run(layer.path(), Some("/other.so"), &["/usr/bin/env"]);
    assert!(out.status.success(), "{out:?}");
    let guard = layer.path().join("lib/libwarden_guard.so");
    let env = String::from_utf8(out.stdout).unwrap();
    let preload = env.lines().find_map(|l| l.strip_prefix("LD_PRELOAD="));
    assert_eq!(
        preload,
        Some(format!("{}:/other.so", guard.display()).as_str())
    );
}

#[test]
fn without_the_library_the_runtime_runs_unchanged() {
    let layer = layer(false);
    let out = run(
        layer.path(),
        None,
        &["/bin/sh", "-c", "printf '[%s]' \"$LD_PRELOAD\""],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "[]");
}

#[test]
fn a_runtime_that_cannot_run_is_one_clear_line_and_status_127() {
    let layer = layer(true);
    let out = run(layer.path(), None, &["/nonexistent/runtime"]);
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("[warden-wrapper] could not run /nonexistent/runtime"),
        "{stderr}"
    );
    let out = run(layer.path(), None, &[]);
    assert_eq!(out.status.code(), Some(127));
}

/// The layer's language watch, as the layer ships it.
fn place_watch(layer: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../warden-guard/watch/node-watch.js");
    std::fs::copy(source, layer.join("lib/node-watch.js")).unwrap();
}

#[test]
fn node_starts_with_the_language_watch_armed_and_its_own_options_kept() {
    let layer = layer(true);
    place_watch(layer.path());
    let script = "const d = Object.getOwnPropertyDescriptor(JSON, 'parse'); \
                  process.stdout.write(`${typeof d.get}|${process.env.NODE_OPTIONS}`)";
    let mut command = Command::new(layer.path().join("wrapper"));
    command
        .args(["node", "-e", script])
        .env_remove("LD_PRELOAD")
        .env("NODE_OPTIONS", "--no-warnings");
    let out = output(command);
    assert!(out.status.success(), "{out:?}");
    let watch = layer.path().join("lib/node-watch.js");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("function|--require \"{}\" --no-warnings", watch.display())
    );
}

#[test]
fn without_the_guard_node_is_not_given_the_watch() {
    let layer = layer(false);
    std::fs::create_dir(layer.path().join("lib")).unwrap();
    place_watch(layer.path());
    let out = run(
        layer.path(),
        None,
        &[
            "node",
            "-e",
            "process.stdout.write(`[${process.env.NODE_OPTIONS || ''}]`)",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "[]");
}
