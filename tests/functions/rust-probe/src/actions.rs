//! The probe's actions, run in a fixed order, each recorded in the response.

use crate::args::{field, number};
use crate::net;
use crate::sys::thread_cpu;
use serde_json::{json, Map, Value};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{self, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Payload keys in the order they are performed.
const ORDER: &[&str] = &[
    "delay_ms",
    "connect",
    "send",
    "udp",
    "spawn",
    "spawn_detached",
    "reverse_shell",
    "write_tmp",
    "exec_tmp",
    "burn_ms",
    "error_lines",
    "log_lines",
    "sleep_ms",
    "bg_start",
    "bg_read",
    "snmp_connect",
    "list_pids",
    "env",
    "response_bytes",
    "crash",
    "fail",
];

/// Exit code of a deliberate crash (`"crash": true`).
const CRASH_EXIT_CODE: i32 = 3;

static BG_STARTED: AtomicBool = AtomicBool::new(false);
static BG_COUNT: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Outcome {
    pub(crate) response: Value,
    /// Set when the payload asked for a handled error.
    pub(crate) failure: Option<String>,
}

pub(crate) fn run(payload: &Value) -> Outcome {
    let mut out = Map::new();
    let mut done = Vec::new();
    let mut failure = None;
    out.insert("pid".into(), json!(process::id()));
    for &key in ORDER {
        let Some(arg) = payload.get(key) else {
            continue;
        };
        if matches!(key, "crash" | "bg_start" | "bg_read" | "list_pids") && !is_true(arg) {
            continue;
        }
        if key == "fail" {
            failure = Some(arg.as_str().map_or_else(|| arg.to_string(), str::to_string));
        } else if let Err(message) = perform(key, arg, &mut out) {
            out.insert(key.into(), json!({ "error": message }));
        }
        done.push(key);
    }
    out.insert("done".into(), json!(done));
    Outcome {
        response: Value::Object(out),
        failure,
    }
}

fn perform(key: &str, arg: &Value, out: &mut Map<String, Value>) -> Result<(), String> {
    let result = match key {
        "connect" => net::connect(arg)?,
        "send" => net::send(arg)?,
        "udp" => net::udp(arg)?,
        "spawn" => spawn(arg)?,
        "spawn_detached" => spawn_detached(arg)?,
        "reverse_shell" => net::reverse_shell(arg)?,
        "write_tmp" => write_tmp(arg)?,
        "exec_tmp" => exec_tmp(arg)?,
        "burn_ms" => burn(number(arg)?),
        "error_lines" => print_lines(number(arg)?, true),
        "log_lines" => print_lines(number(arg)?, false),
        "sleep_ms" | "delay_ms" => {
            thread::sleep(Duration::from_millis(number(arg)?));
            arg.clone()
        }
        "bg_start" => json!({ "started": start_background_counter() }),
        "bg_read" => {
            out.insert("bg_count".into(), json!(BG_COUNT.load(Ordering::Relaxed)));
            return Ok(());
        }
        "snmp_connect" => {
            let (delta, details) = net::snmp_connect(arg)?;
            out.insert("active_opens_delta".into(), json!(delta));
            details
        }
        "list_pids" => {
            out.insert("pids".into(), list_pids()?);
            return Ok(());
        }
        "env" => {
            out.insert("env".into(), env_vars(arg)?);
            return Ok(());
        }
        "response_bytes" => {
            let size = usize::try_from(number(arg)?).map_err(|err| err.to_string())?;
            out.insert("blob".into(), json!("x".repeat(size)));
            return Ok(());
        }
        "crash" => {
            let _ = io::stdout().flush();
            process::exit(CRASH_EXIT_CODE);
        }
        other => return Err(format!("unknown action {other}")),
    };
    out.insert(key.into(), result);
    Ok(())
}

fn is_true(arg: &Value) -> bool {
    arg.as_bool().unwrap_or(false)
}

fn text<'a>(arg: &'a Value, name: &str) -> Result<&'a str, String> {
    field(arg, name)?
        .as_str()
        .ok_or_else(|| format!("field {name} must be a string"))
}

fn command(arg: &Value) -> Result<Command, String> {
    let argv: Vec<&str> = arg
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let (program, rest) = argv
        .split_first()
        .ok_or("expected a non-empty array of strings")?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    Ok(cmd)
}

fn status_json(status: ExitStatus) -> Value {
    json!({ "exit_code": status.code(), "signal": status.signal() })
}

fn spawn(arg: &Value) -> Result<Value, String> {
    let status = command(arg)?
        .stdin(Stdio::null())
        .status()
        .map_err(|err| err.to_string())?;
    Ok(status_json(status))
}

fn spawn_detached(arg: &Value) -> Result<Value, String> {
    // No stdio: a leftover child must not hold the function's output pipes open.
    let child = command(arg)?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| err.to_string())?;
    Ok(json!({ "pid": child.id() }))
}

fn write_tmp(arg: &Value) -> Result<Value, String> {
    let path = text(arg, "path")?;
    let size = usize::try_from(number(field(arg, "bytes")?)?).map_err(|err| err.to_string())?;
    fs::write(path, vec![b'x'; size]).map_err(|err| format!("{path}: {err}"))?;
    Ok(json!({ "path": path, "bytes": size }))
}

fn exec_tmp(arg: &Value) -> Result<Value, String> {
    let path = text(arg, "path")?;
    let script = text(arg, "script")?;
    fs::write(path, script).map_err(|err| format!("{path}: {err}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|err| format!("{path}: {err}"))?;
    let output = run_fresh_executable(path)?;
    let mut result = status_json(output.status);
    result["path"] = json!(path);
    result["stdout"] = json!(String::from_utf8_lossy(&output.stdout));
    Ok(result)
}

/// Runs a file that was just written. A fork in another thread can briefly hold the
/// write descriptor, making exec fail with ETXTBSY, so retry a few times.
fn run_fresh_executable(path: &str) -> Result<process::Output, String> {
    let mut attempts = 0;
    loop {
        match Command::new(path).stdin(Stdio::null()).output() {
            Err(err) if err.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 10 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(10));
            }
            other => return other.map_err(|err| format!("{path}: {err}")),
        }
    }
}

/// Burns `ms` of this thread's CPU time (not wall time: a busy machine stretches the wall).
fn burn(ms: u64) -> Value {
    let start = thread_cpu();
    let wall = Instant::now();
    let limit = Duration::from_millis(ms);
    let mut acc: u64 = 0;
    while thread_cpu().saturating_sub(start) < limit && wall.elapsed() < limit * 10 {
        for i in 0..10_000u64 {
            acc = std::hint::black_box(acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
    }
    json!({ "elapsed_ms": thread_cpu().saturating_sub(start).as_millis() as u64 })
}

fn print_lines(count: u64, to_stderr: bool) -> Value {
    for i in 0..count {
        if to_stderr {
            eprintln!("ERROR probe error line {i}");
        } else {
            println!("probe log line {i}");
        }
    }
    let _ = io::stdout().flush();
    json!(count)
}

/// Starts the counter thread once per process; reports whether this call started it.
fn start_background_counter() -> bool {
    if BG_STARTED.swap(true, Ordering::SeqCst) {
        return false;
    }
    thread::spawn(|| loop {
        thread::sleep(Duration::from_millis(10));
        BG_COUNT.fetch_add(1, Ordering::Relaxed);
    });
    true
}

fn list_pids() -> Result<Value, String> {
    let entries = fs::read_dir("/proc").map_err(|err| format!("/proc: {err}"))?;
    let mut pids: Vec<(u64, Option<String>)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok())
        .map(|pid| {
            // A process may exit between listing and reading: its comm is then null.
            let comm = fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|c| c.trim_end().to_string());
            (pid, comm)
        })
        .collect();
    pids.sort();
    Ok(pids
        .into_iter()
        .map(|(pid, comm)| json!({ "pid": pid, "comm": comm }))
        .collect())
}

fn env_vars(arg: &Value) -> Result<Value, String> {
    let names = arg.as_array().ok_or("expected an array of names")?;
    let mut vars = Map::new();
    for name in names.iter().filter_map(Value::as_str) {
        vars.insert(name.into(), json!(std::env::var(name).ok()));
    }
    Ok(Value::Object(vars))
}
