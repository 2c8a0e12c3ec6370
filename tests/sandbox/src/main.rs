//! `warden-sandbox run ...`: see `cli::USAGE`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use warden_sandbox::config::RunConfig;
use warden_sandbox::environment::Layout;
use warden_sandbox::{cli, isolation, runner};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("__engine") => engine_inside(),
        Some("-h" | "--help" | "help") => {
            print!("{}", cli::USAGE);
            Ok(0)
        }
        _ => {
            eprint!("{}", cli::USAGE);
            Ok(2)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("warden-sandbox: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<i32> {
    let cfg = match cli::parse_run(args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("warden-sandbox: {e}");
            return Ok(2);
        }
    };
    if cfg.isolate && isolation::available() {
        return isolation::launch(&cfg);
    }
    if cfg.isolate {
        eprintln!("[sandbox] running without isolation (needs root and unshare): processes, /proc, /tmp and the network are shared with the host");
    }
    if cfg.host_link {
        eprintln!(
            "[sandbox] --host-link needs isolation; host services are reached on 127.0.0.1 instead"
        );
    }
    let files = runner::Files::open(&cfg)?;
    let layout = Layout {
        opt: cfg
            .layers
            .last()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/opt")),
        task_root: cfg.function.clone(),
        python: cfg.python.clone(),
        api_addr: "127.0.0.1:0".into(),
        host_ip: cfg.host_link.then(|| "127.0.0.1".to_string()),
    };
    block_on(runner::run(cfg, layout, files, false))
}

/// Inside the namespaces (PID 1 there, like Lambda's init).
fn engine_inside() -> Result<i32> {
    let raw = std::env::var(isolation::CONFIG_VAR).context("missing sandbox configuration")?;
    let cfg: RunConfig = serde_json::from_str(&raw)?;
    let host_ip = std::env::var(isolation::HOST_IP_VAR).ok();
    let files = runner::Files::open(&cfg)?;
    let python = isolation::setup_mounts(&cfg, host_ip.as_deref())?;
    isolation::wait_for_go();
    isolation::loopback_up()?;
    let layout = Layout {
        opt: PathBuf::from("/opt"),
        task_root: PathBuf::from("/var/task"),
        python,
        api_addr: "127.0.0.1:9001".into(),
        host_ip,
    };
    block_on(runner::run(cfg, layout, files, true))
}

fn block_on(fut: impl std::future::Future<Output = Result<serde_json::Value>>) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(fut)?;
    Ok(0)
}
