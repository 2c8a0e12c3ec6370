//! Isolation like a Lambda microVM: own PID, network and mount namespaces, the layer at /opt,
//! the code at /var/task, a fresh /tmp, and an optional veth link to the host.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::config::RunConfig;

pub const CONFIG_VAR: &str = "WARDEN_SANDBOX_CONFIG";
pub const SYNC_VAR: &str = "WARDEN_SANDBOX_SYNC_FD";
pub const HOST_IP_VAR: &str = "WARDEN_SANDBOX_HOST_IP";
const STAGING: &str = "/run/warden-sandbox";
const TMP_SIZE: &str = "size=512m,mode=1777";

/// Whether this machine lets us build namespaces (root and util-linux's unshare).
pub fn available() -> bool {
    // SAFETY: geteuid has no side effects.
    let root = unsafe { libc::geteuid() } == 0;
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
    .env(SYNC_VAR, read_fd.to_string());
    if cfg.host_link {
        let chosen = (0..20)
            .map(HostLink::pick)
            .find(|l| !Path::new("/sys/class/net").join(&l.host_if).exists());
        let chosen = chosen.context("no free host-link interface name")?;
        cmd.env(HOST_IP_VAR, &chosen.host_ip);
        link = Some(chosen);
    }
    // If we die, unshare dies, and its --kill-child takes the whole sandbox with it.
    // SAFETY: prctl only changes the child's own attributes.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting unshare")?;
    // SAFETY: closing our copy of the read end; the child has its own.
    unsafe { libc::close(read_fd) };
    let pid = child.id();
    wait_for_new_netns(pid)?;
    let mut forwarders = None;
    if let Some(link) = &link {
        connect_host_link(pid, link)?;
        forwarders = Some(crate::forward::start(&link.host_ip, &cfg.forwards)?);
    }
    // SAFETY: we own write_fd; File takes it over and closes it on drop.
    let mut sync = unsafe { std::fs::File::from_raw_fd(write_fd) };
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

fn sync_pipe() -> Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    // The read end must survive exec into unshare and the engine.
    // SAFETY: fcntl on an fd we just created.
    unsafe { libc::fcntl(fds[0], libc::F_SETFD, 0) };
    Ok((fds[0], fds[1]))
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
    let mut byte = [0u8; 1];
    // SAFETY: reading one byte from the inherited pipe, then closing it.
    unsafe {
        libc::read(fd, byte.as_mut_ptr().cast(), 1);
        libc::close(fd);
    }
}

/// Engine side: builds the microVM-like file system view. Returns the python path to use.
pub fn setup_mounts(cfg: &RunConfig, host_ip: Option<&str>) -> Result<PathBuf> {
    std::fs::create_dir_all(STAGING).context("creating the staging directory")?;
    mount(None, Path::new(STAGING), Some("tmpfs"), 0, Some("size=1m"))?;
    let host_tmp = Path::new(STAGING).join("host-tmp");
    std::fs::create_dir_all(&host_tmp)?;
    mount(
        Some(Path::new("/tmp")),
        &host_tmp,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;

    bind_read_only(&cfg.function, Path::new("/var/task"))?;
    match cfg.layers.as_slice() {
        [] => {
            std::fs::create_dir_all("/opt")?;
            mount(
                None,
                Path::new("/opt"),
                Some("tmpfs"),
                libc::MS_RDONLY,
                Some("size=1m"),
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
            mount(
                Some(Path::new("overlay")),
                Path::new("/opt"),
                Some("overlay"),
                libc::MS_RDONLY,
                Some(&data),
            )?;
        }
    }
    mount(None, Path::new("/tmp"), Some("tmpfs"), 0, Some(TMP_SIZE))?;
    for share in &cfg.shares {
        if let Ok(rel) = share.strip_prefix("/tmp") {
            std::fs::create_dir_all(share)?;
            mount(
                Some(&host_tmp.join(rel)),
                share,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )?;
        }
    }
    private_program_dirs();
    let hosts = Path::new(STAGING).join("hosts");
    let mut text = String::from("127.0.0.1 localhost sandbox.localdomain sandbox\n::1 localhost\n");
    if let Some(ip) = host_ip {
        text.push_str(&format!("{ip} host.sandbox\n"));
    }
    std::fs::write(&hosts, text)?;
    mount(
        Some(&hosts),
        Path::new("/etc/hosts"),
        None,
        libc::MS_BIND,
        None,
    )?;
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
        if let Err(e) = mount(
            Some(Path::new("overlay")),
            path,
            Some("overlay"),
            libc::MS_RDONLY,
            Some(&data),
        ) {
            eprintln!("[sandbox] {dir} stays shared with the host: {e:#}");
        }
    }
}

fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    mount(
        Some(source),
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;
    mount(
        None,
        target,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
        None,
    )
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    let c = |s: &str| CString::new(s).context("path with a NUL byte");
    let source = c(&source
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "none".into()))?;
    let target_c = c(&target.to_string_lossy())?;
    let fstype = fstype.map(c).transpose()?;
    let data = data.map(c).transpose()?;
    // SAFETY: every pointer is a valid NUL-terminated string or null, alive for the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc != 0 {
        bail!(
            "mount {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Brings up the loopback interface of the new network namespace.
pub fn loopback_up() -> Result<()> {
    ip(&["link", "set", "lo", "up"])
}
