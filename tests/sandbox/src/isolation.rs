//! Isolation like a Lambda microVM: own PID, network and mount namespaces, the layer at /opt,
//! the code at /var/task, a fresh /tmp, and an optional veth link to the host.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustix::io::FdFlags;
use rustix::mount::MountFlags;
use rustix::pipe::PipeFlags;

use crate::config::RunConfig;
use crate::sys;

pub const CONFIG_VAR: &str = "WARDEN_SANDBOX_CONFIG";
pub const SYNC_VAR: &str = "WARDEN_SANDBOX_SYNC_FD";
pub const HOST_IP_VAR: &str = "WARDEN_SANDBOX_HOST_IP";
const STAGING: &str = "/run/warden-sandbox";
const TMP_SIZE: &str = "size=512m,mode=1777";

/// Whether this machine lets us build namespaces (root and util-linux's unshare).
pub fn available() -> bool {
    let root = rustix::process::geteuid().is_root();
    root && Command::new("unshare")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok()
}

/// The two ends of the host link.
pub struct HostLink {
    pub host_if: String,
    pub host_ip: String,
    pub sandbox_ip: String,
}

impl HostLink {
    /// Picks a /30 of 10.213.0.0/16 and an interface name, unique per run.
    fn pick(attempt: u32) -> HostLink {
        let idx = (std::process::id() + attempt * 7919) % 16_000;
        let base = idx * 4;
        let (a, b) = (base / 256, base % 256);
        HostLink {
            host_if: format!("wdn{idx}"),
            host_ip: format!("10.213.{a}.{}", b + 1),
            sandbox_ip: format!("10.213.{a}.{}", b + 2),
        }
    }
}

/// Outer side: starts the engine inside new namespaces, wires the host link, waits for it.
pub fn launch(cfg: &RunConfig) -> Result<i32> {
    let exe = std::env::current_exe().context("locating the sandbox binary")?;
    let (read_fd, write_fd) = sync_pipe()?;
    let mut link = None;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--net",
        "--mount",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
    ])
    .arg(&exe)
    .arg("__engine")
    .env(CONFIG_VAR, serde_json::to_string(cfg)?)
    .env(SYNC_VAR, read_fd.as_raw_fd().to_string());
    if cfg.host_link {
        let chosen = (0..20)
            .map(HostLink::pick)
            .find(|l| !Path::new("/sys/class/net").join(&l.host_if).exists());
        let chosen = chosen.context("no free host-link interface name")?;
        cmd.env(HOST_IP_VAR, &chosen.host_ip);
        link = Some(chosen);
    }
    // If we die, unshare dies, and its --kill-child takes the whole sandbox with it.
    sys::kill_with_parent(&mut cmd);
    let mut child = cmd.spawn().context("starting unshare")?;
    // Our copy of the read end: the child has its own.
    drop(read_fd);
    let pid = child.id();
    wait_for_new_netns(pid)?;
    let mut forwarders = None;
    if let Some(link) = &link {
        connect_host_link(pid, link)?;
        forwarders = Some(crate::forward::start(&link.host_ip, &cfg.forwards)?);
    }
    let mut sync = std::fs::File::from(write_fd);
    let _ = sync.write_all(b"g");
    drop(sync);
    let status = child.wait().context("waiting for the sandbox")?;
    drop(forwarders);
    if let Some(link) = &link {
        let _ = Command::new("ip")
            .args(["link", "del", &link.host_if])
            .stderr(Stdio::null())
            .status();
    }
    Ok(status.code().unwrap_or(1))
}

fn sync_pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)
        .map_err(|e| anyhow::anyhow!("pipe: {}", std::io::Error::from(e)))?;
    // The read end must survive exec into unshare and the engine.
    let _ = rustix::io::fcntl_setfd(&read, FdFlags::empty());
    Ok((read, write))
}

/// unshare creates the network namespace a moment after it starts; the veth must not be
/// created before, or it would land in the host's namespace.
fn wait_for_new_netns(pid: u32) -> Result<()> {
    let ours = std::fs::read_link("/proc/self/ns/net")?;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        match std::fs::read_link(format!("/proc/{pid}/ns/net")) {
            Ok(theirs) if theirs != ours => return Ok(()),
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => bail!("sandbox exited while starting: {e}"),
        }
    }
    bail!("the sandbox's network namespace did not appear")
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn connect_host_link(pid: u32, link: &HostLink) -> Result<()> {
    let ns = format!("/proc/{pid}/ns/net");
    let pid = pid.to_string();
    ip(&[
        "link",
        "add",
        &link.host_if,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &pid,
    ])?;
    ip(&[
        "addr",
        "add",
        &format!("{}/30", link.host_ip),
        "dev",
        &link.host_if,
    ])?;
    ip(&["link", "set", &link.host_if, "up"])?;
    let inside = |args: &[&str]| -> Result<()> {
        let net = format!("--net={ns}");
        let mut full = vec![net.as_str(), "ip"];
        full.extend_from_slice(args);
        let out = Command::new("nsenter")
            .args(&full)
            .output()
            .context("running nsenter")?;
        if !out.status.success() {
            bail!(
                "ip {} (in sandbox): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    // Only the /30 is routed: the sandbox can reach the host's address and nothing beyond.
    inside(&[
        "addr",
        "add",
        &format!("{}/30", link.sandbox_ip),
        "dev",
        "eth0",
    ])?;
    inside(&["link", "set", "eth0", "up"])?;
    Ok(())
}

/// Engine side, before anything starts: reads the one byte that says the host side is ready.
pub fn wait_for_go() {
    let Some(fd) = std::env::var(SYNC_VAR)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    else {
        return;
    };
    let Some(fd) = sys::take_inherited_fd(fd) else {
        return;
    };
    // One byte from the inherited pipe; dropping the file closes it.
    let mut byte = [0u8; 1];
    let _ = std::fs::File::from(fd).read(&mut byte);
}

/// Engine side: builds the microVM-like file system view. Returns the python path to use.
pub fn setup_mounts(cfg: &RunConfig, host_ip: Option<&str>) -> Result<PathBuf> {
    std::fs::create_dir_all(STAGING).context("creating the staging directory")?;
    mount_fs(
        "none",
        Path::new(STAGING),
        "tmpfs",
        MountFlags::empty(),
        "size=1m",
    )?;
    let host_tmp = Path::new(STAGING).join("host-tmp");
    std::fs::create_dir_all(&host_tmp)?;
    bind(Path::new("/tmp"), &host_tmp, true)?;

    bind_read_only(&cfg.function, Path::new("/var/task"))?;
    match cfg.layers.as_slice() {
        [] => {
            std::fs::create_dir_all("/opt")?;
            mount_fs(
                "none",
                Path::new("/opt"),
                "tmpfs",
                MountFlags::RDONLY,
                "size=1m",
            )?;
        }
        [one] => bind_read_only(one, Path::new("/opt"))?,
        many => {
            // Later layers win, as Lambda extracts them in order into /opt.
            let lower: Vec<String> = many
                .iter()
                .rev()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            std::fs::create_dir_all("/opt")?;
            let data = format!("lowerdir={}", lower.join(":"));
            mount_fs(
                "overlay",
                Path::new("/opt"),
                "overlay",
                MountFlags::RDONLY,
                &data,
            )?;
        }
    }
    mount_fs(
        "none",
        Path::new("/tmp"),
        "tmpfs",
        MountFlags::empty(),
        TMP_SIZE,
    )?;
    for share in &cfg.shares {
        if let Ok(rel) = share.strip_prefix("/tmp") {
            std::fs::create_dir_all(share)?;
            bind(&host_tmp.join(rel), share, true)?;
        }
    }
    private_program_dirs();
    let hosts = Path::new(STAGING).join("hosts");
    let mut text = String::from("127.0.0.1 localhost sandbox.localdomain sandbox\n::1 localhost\n");
    if let Some(ip) = host_ip {
        text.push_str(&format!("{ip} host.sandbox\n"));
    }
    std::fs::write(&hosts, text)?;
    bind(&hosts, Path::new("/etc/hosts"), false)?;
    Ok(match cfg.python.strip_prefix("/tmp") {
        Ok(rel) => host_tmp.join(rel),
        Err(_) => cfg.python.clone(),
    })
}

/// Gives the environment its own view of the program directories, as a microVM has its own
/// root file system: a read-only overlay is a file system of its own, so an inotify watch
/// inside sees the environment's execs and not those of the host or of other sandboxes.
/// Best effort: without overlayfs the directories stay shared.
fn private_program_dirs() {
    let empty = Path::new(STAGING).join("empty");
    if std::fs::create_dir_all(&empty).is_err() {
        return;
    }
    for dir in ["/usr", "/bin", "/sbin"] {
        let path = Path::new(dir);
        // On a merged-/usr system /bin and /sbin are links into /usr, already covered.
        let real_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        if !real_dir {
            continue;
        }
        let data = format!("lowerdir={}:{dir}", empty.display());
        if let Err(e) = mount_fs("overlay", path, "overlay", MountFlags::RDONLY, &data) {
            eprintln!("[sandbox] {dir} stays shared with the host: {e:#}");
        }
    }
}

fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    bind(source, target, true)?;
    rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")
        .map_err(|e| mount_error(target, e))
}

/// Mounts a file system of type `fstype` (tmpfs, overlay) from `source` at `target`, with
/// the options `data`.
fn mount_fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MountFlags,
    data: &str,
) -> Result<()> {
    let data = CString::new(data).context("path with a NUL byte")?;
    rustix::mount::mount(source, target, fstype, flags, data.as_c_str())
        .map_err(|e| mount_error(target, e))
}

/// Makes `source` visible at `target` too, with what is mounted below it when `recursive`.
fn bind(source: &Path, target: &Path, recursive: bool) -> Result<()> {
    let done = if recursive {
        rustix::mount::mount_bind_recursive(source, target)
    } else {
        rustix::mount::mount_bind(source, target)
    };
    done.map_err(|e| mount_error(target, e))
}

fn mount_error(target: &Path, e: rustix::io::Errno) -> anyhow::Error {
    anyhow::anyhow!("mount {}: {}", target.display(), std::io::Error::from(e))
}

/// Brings up the loopback interface of the new network namespace.
pub fn loopback_up() -> Result<()> {
    ip(&["link", "set", "lo", "up"])
}
