//! The layer as users deploy it: the zips that `scripts/build-layer` wrote, unpacked and run in
//! the sandbox (x86_64), or checked for the right ELF machine and static linkage (arm64, which
//! this machine cannot run).

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use warden_sandbox::harness::{repo_root, scratch, Run, Sandbox};

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// `target/layer/warden-<arch>.zip`, which must have been built before the tests.
fn built_zip(arch: &str) -> PathBuf {
    let zip = repo_root().join(format!("target/layer/warden-{arch}.zip"));
    assert!(
        zip.exists(),
        "{} is missing: build the layer first with scripts/build-layer (the tests check the \
         built zip, not a fresh build)",
        zip.display()
    );
    zip
}

/// Unpacks a zip with Info-ZIP's `unzip`, which restores the Unix modes stored in it, as
/// Lambda does when it extracts a layer to /opt.
fn unpack(zip: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let layer = dir.path().join("opt");
    let status = Command::new("unzip")
        .arg("-q")
        .arg(zip)
        .arg("-d")
        .arg(&layer)
        .status()
        .expect("running unzip");
    assert!(status.success(), "unzip {} failed", zip.display());
    (dir, layer)
}

/// The extension in an unpacked layer, checked to be what Lambda will start: an executable
/// file at `extensions/warden`.
fn extension_of(layer: &Path) -> PathBuf {
    let names: Vec<String> = std::fs::read_dir(layer.join("extensions"))
        .expect("the layer has extensions/")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into()
        })
        .collect();
    assert_eq!(names, ["warden"], "extensions/ of the layer");
    let binary = layer.join("extensions/warden");
    let mode = std::fs::metadata(&binary)
        .expect("extensions/warden")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "mode of extensions/warden");
    binary
}

/// What matters of an ELF file here: its machine, and whether it needs a dynamic loader or
/// shared libraries (it must not: Amazon Linux 2 and 2023 have different C libraries).
struct Elf {
    machine: u16,
    interpreter: bool,
    needed: usize,
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(data[at..at + 2].try_into().expect("two bytes"))
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("four bytes"))
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("eight bytes"))
}

fn read_elf(path: &Path) -> Elf {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    let data = std::fs::read(path).expect("reading the binary");
    assert_eq!(&data[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(data[4], 2, "64-bit ELF");
    assert_eq!(data[5], 1, "little-endian ELF");
    let phoff = u64_at(&data, 32) as usize;
    let (phentsize, phnum) = (u16_at(&data, 54) as usize, u16_at(&data, 56) as usize);
    let mut elf = Elf {
        machine: u16_at(&data, 18),
        interpreter: false,
        needed: 0,
    };
    for i in 0..phnum {
        let header = phoff + i * phentsize;
        let kind = u32_at(&data, header);
        let (offset, size) = (
            u64_at(&data, header + 8) as usize,
            u64_at(&data, header + 32) as usize,
        );
        match kind {
            PT_INTERP => elf.interpreter = true,
            PT_DYNAMIC => {
                let tags = (offset..offset + size)
                    .step_by(16)
                    .map(|at| u64_at(&data, at));
                elf.needed = tags
                    .take_while(|&tag| tag != 0)
                    .filter(|&tag| tag == DT_NEEDED)
                    .count();
            }
            _ => {}
        }
    }
    elf
}

fn assert_static(binary: &Path, machine: u16) {
    let elf = read_elf(binary);
    assert_eq!(elf.machine, machine, "ELF machine of {}", binary.display());
    assert!(
        !elf.interpreter && elf.needed == 0,
        "{} is dynamically linked ({} needed libraries)",
        binary.display(),
        elf.needed
    );
}

/// Warden's invocation records on stdout, by request id.
fn record_ids(run: &Run) -> HashSet<String> {
    run.stdout_json_with("warden_schema")
        .into_iter()
        .filter(|r| r["kind"] == "invoke")
        .filter_map(|r| r["request_id"].as_str().map(String::from))
        .collect()
}

fn runs_in_the_sandbox(sandbox: Sandbox) {
    let (_dir, layer) = unpack(&built_zip("x86_64"));
    let binary = extension_of(&layer);
    assert_static(&binary, EM_X86_64);
    let events: Vec<Value> = (0..3).map(|i| json!({"log_lines": i})).collect();
    let run = sandbox
        .extension("warden", &binary)
        .env("WARDEN_RECORDS", "1")
        .run(&events);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success"; 3], "stderr:\n{}", run.stderr);
    // [[name, ms], ...]: init start to each extension's first /event/next.
    let ready = &run.invocations[0]["extensions_ready_ms"];
    let names: Vec<&Value> = ready
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pair| pair[1].is_number())
        .map(|pair| &pair[0])
        .collect();
    assert!(
        names == [&json!("warden")],
        "warden missing from extensions_ready_ms: {ready}\nstderr:\n{}",
        run.stderr
    );
    let ids = record_ids(&run);
    for invocation in &run.invocations {
        let id = invocation["request_id"].as_str().expect("a request id");
        assert!(
            ids.contains(id),
            "no Warden record for {id} on stdout:\n{}",
            run.stdout
        );
    }
}

#[test]
fn x86_64_layer_runs_with_the_python_function() {
    runs_in_the_sandbox(Sandbox::python_probe());
}

#[test]
fn x86_64_layer_runs_with_the_rust_function() {
    runs_in_the_sandbox(Sandbox::rust_probe());
}

#[test]
fn arm64_layer_is_a_static_aarch64_binary() {
    let (_dir, layer) = unpack(&built_zip("arm64"));
    let binary = extension_of(&layer);
    assert_static(&binary, EM_AARCH64);
}

/// The sandbox with the layer's guard loaded through its wrapper and `policy` in force. The
/// layer's warden/ directory goes where the sandbox sees it at the same path, isolated or not
/// (the wrapper finds the library next to itself).
fn with_guard(sandbox: Sandbox, layer: &Path, policy: &str) -> Sandbox {
    let shared = sandbox.shared().join("warden");
    std::fs::create_dir_all(shared.join("lib")).unwrap();
    let library = layer.join("warden/lib/libwarden_guard.so");
    std::fs::copy(library, shared.join("lib/libwarden_guard.so")).unwrap();
    std::fs::copy(layer.join("warden/wrapper"), shared.join("wrapper")).unwrap();
    let policy_file = sandbox.shared().join("policy.json");
    std::fs::write(&policy_file, policy).unwrap();
    sandbox
        .env(
            "AWS_LAMBDA_EXEC_WRAPPER",
            &shared.join("wrapper").to_string_lossy(),
        )
        .env("WARDEN_POLICY", &policy_file.to_string_lossy())
}

#[test]
fn x86_64_layer_guard_loads_into_the_python_runtime_through_its_wrapper() {
    const ET_DYN: u16 = 3;
    let (_dir, layer) = unpack(&built_zip("x86_64"));
    let library = layer.join("warden/lib/libwarden_guard.so");
    let wrapper = layer.join("warden/wrapper");
    let data = std::fs::read(&library).expect("warden/lib/libwarden_guard.so in the layer");
    assert_eq!(u16_at(&data, 16), ET_DYN, "the guard is a shared library");
    assert_eq!(read_elf(&library).machine, EM_X86_64);
    let mode = std::fs::metadata(&wrapper)
        .expect("warden/wrapper")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "mode of warden/wrapper");
    // The language watch the wrapper loads into Node.js, as in the source tree.
    let watch = std::fs::read(layer.join("warden/lib/node-watch.js"))
        .expect("warden/lib/node-watch.js in the layer");
    let source =
        std::fs::read(repo_root().join("extension/warden-guard/watch/node-watch.js")).unwrap();
    assert_eq!(watch, source, "the layer's node-watch.js");

    let sandbox = with_guard(
        Sandbox::python_probe(),
        &layer,
        r#"{"mode":"enforce","exec":["sh"]}"#,
    );
    let run = sandbox.run(&[
        json!({"env": ["LD_PRELOAD"]}),
        json!({"spawn": ["/bin/true"]}),
        json!({"spawn": ["sh", "-c", "exit 0"]}),
    ]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success"; 3], "stderr:\n{}", run.stderr);
    let preload = run.invocations[0]["response"]["env"]["LD_PRELOAD"]
        .as_str()
        .unwrap_or_default();
    assert!(
        preload.ends_with("warden/lib/libwarden_guard.so"),
        "LD_PRELOAD={preload}"
    );
    // The policy is in force inside the runtime: /bin/true is refused, sh is allowed.
    let refused = run.invocations[1]["response"]["spawn"].to_string();
    assert!(
        refused.contains("Permission denied"),
        "spawn of /bin/true: {refused}"
    );
    assert_eq!(
        run.invocations[2]["response"]["spawn"],
        json!({"exit_code": 0, "signal": null}),
        "{}",
        run.stderr
    );
}

#[test]
fn x86_64_layer_guard_keeps_function_code_from_stopping_an_extension() {
    // Extensions run from /opt/extensions/ only inside the sandbox's namespaces.
    if !warden_sandbox::isolation::available() {
        eprintln!("skipped: needs root and unshare for the layer at /opt");
        return;
    }
    let (_dir, layer) = unpack(&built_zip("x86_64"));
    let probe = Sandbox::python_probe().reference_extension("ref");
    let sandbox = with_guard(probe, &layer, r#"{"mode":"enforce"}"#);
    let run = sandbox.run(&[json!({"stop_extension": {"name": "ref", "ms": 10}})]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success"], "stderr:\n{}", run.stderr);
    // The probe found the extension and tried SIGSTOP: refused with EPERM, nothing stopped.
    let stopped = &run.invocations[0]["response"]["stop_extension"]["stopped"];
    assert_eq!(stopped, &json!([]), "{}", run.stderr);
    assert_eq!(run.events("ref").last().unwrap()["eventType"], "SHUTDOWN");
}

#[test]
fn arm64_layer_guard_is_an_aarch64_shared_library() {
    const ET_DYN: u16 = 3;
    let (_dir, layer) = unpack(&built_zip("arm64"));
    let library = layer.join("warden/lib/libwarden_guard.so");
    let data = std::fs::read(&library).expect("warden/lib/libwarden_guard.so in the layer");
    assert_eq!(u16_at(&data, 16), ET_DYN, "the guard is a shared library");
    assert_eq!(read_elf(&library).machine, EM_AARCH64);
    assert!(layer.join("warden/wrapper").exists(), "warden/wrapper");
}
