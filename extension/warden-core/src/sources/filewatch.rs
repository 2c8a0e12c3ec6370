//! inotify watches, so that what lives between two sampler ticks is still named:
//!
//! - the scratch directory tree: files created, written, moved in or deleted, and
//!   executable files opened (a payload dropped there and run);
//! - the system program directories (`/usr/bin`, `/opt/bin`, …): the kernel reports an
//!   open of the executable on every exec, so a program that runs for a millisecond —
//!   `id`, `uname`, `curl` — is named even though no tick saw its process.
//!
//! inotify needs no privileges and costs nothing while nothing happens; events wait in the
//! kernel while the environment is frozen. A Lambda environment's file system is its own,
//! so every open seen is the environment's (the local sandbox gives each environment its
//! own view of /usr for the same reason).

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tokio::io::unix::AsyncFd;

use rustix::fs::inotify::{self, WatchFlags};
use rustix::io::Errno;

use crate::schema::{Observation, TmpAction};

/// Most directories watched (the top one plus subdirectories created later). A directory
/// removed gives its watch back (`IN_IGNORED`), so churn cannot use the watches up.
pub const MAX_WATCHES: usize = 64;
/// Most entries a rescan after a queue overflow visits.
const MAX_RESCAN_ENTRIES: usize = 4096;
/// Most executables a rescan reports.
const MAX_RESCAN_REPORTS: usize = 16;

/// Directories whose executables are reported when run: the system's, a layer's
/// (`/opt/bin`) and Lambda's managed runtimes (`/var/lang/bin`). The function's own
/// package is left out: the runtime reads its source files there all the time.
pub const PROGRAM_DIRS: [&str; 8] = [
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
    "/opt/bin",
    "/var/lang/bin",
];
/// Most distinct programs reported per invocation (a loop running one program is one).
pub const MAX_PROGRAMS: usize = 64;

const MASK: u32 =
    libc::IN_CREATE | libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_DELETE | libc::IN_OPEN;
/// An exec opens the executable; so does reading it, which programs rarely do.
const PROGRAM_MASK: u32 = libc::IN_OPEN;

/// inotify watches on the scratch tree and on the program directories.
#[derive(Debug)]
pub struct FileWatch {
    fd: AsyncFd<OwnedFd>,
    dirs: HashMap<i32, PathBuf>,
    program_dirs: HashMap<i32, PathBuf>,
    /// Programs reported since [`FileWatch::new_invocation`].
    programs: HashSet<Box<str>>,
    buf: Vec<u8>,
    /// The scratch tree's top directory.
    root: PathBuf,
    /// A directory of Warden's own files (its profile's copy): what is written there is not
    /// the function's. Programs run from there are still reported.
    own_dir: Option<PathBuf>,
    counts: WatchCounts,
    /// Warden's own files in the scratch tree (the guard's ring, the lockdown page).
    own_files: HashSet<PathBuf>,
}

/// Bounds the watch met since they were last taken ([`FileWatch::take_counts`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WatchCounts {
    /// Kernel queue overflows (events lost; the scratch tree was rescanned).
    pub overflows: u64,
    /// Directories left unwatched at [`MAX_WATCHES`].
    pub limited: u64,
}

impl FileWatch {
    /// Starts watching the scratch tree `dir` (must exist). Needs a tokio runtime.
    pub fn new(dir: &Path) -> io::Result<FileWatch> {
        let owned = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
            .map_err(io::Error::from)?;
        let fd = crate::sys::async_readable(owned)?;
        let mut watch = FileWatch {
            fd,
            dirs: HashMap::new(),
            program_dirs: HashMap::new(),
            programs: HashSet::new(),
            buf: vec![0; 16 * 1024],
            root: dir.to_path_buf(),
            own_dir: None,
            counts: WatchCounts::default(),
            own_files: HashSet::new(),
        };
        watch.add(dir)?;
        Ok(watch)
    }

    /// Also reports programs run from `dirs`; returns how many directories are watched.
    /// A missing directory is skipped, and one reached twice (`/bin` → `/usr/bin`) is
    /// watched once, under the first name.
    pub fn watch_programs<P: AsRef<Path>>(&mut self, dirs: &[P]) -> usize {
        for dir in dirs {
            let dir = dir.as_ref();
            let flags = WatchFlags::from_bits_retain(PROGRAM_MASK | libc::IN_ONLYDIR);
            let Ok(wd) = inotify::add_watch(self.fd.get_ref(), dir, flags) else {
                continue;
            };
            if !self.dirs.contains_key(&wd) {
                self.program_dirs
                    .entry(wd)
                    .or_insert_with(|| dir.to_path_buf());
            }
        }
        self.program_dirs.len()
    }

    /// `path` is one of Warden's own files: its creation and writes are Warden's and the
    /// guard's (every guarded process opens the ring to write), not the function's. Its
    /// removal or replacement is still reported.
    pub fn own_file(&mut self, path: &Path) {
        self.own_files.insert(path.to_path_buf());
    }

    /// Leaves out the files written directly in `dir`, a directory of Warden's own in the
    /// scratch tree; a program run from it is still reported.
    pub fn leave_out(&mut self, dir: &Path) {
        self.own_dir = Some(dir.to_path_buf());
    }

    /// A new invocation starts: each program is reported again the first time it runs.
    pub fn new_invocation(&mut self) {
        self.programs.clear();
    }

    /// The bounds met since the last call (the pipeline counts them in health).
    pub fn take_counts(&mut self) -> WatchCounts {
        std::mem::take(&mut self.counts)
    }

    fn add(&mut self, dir: &Path) -> io::Result<()> {
        if self.dirs.len() >= MAX_WATCHES {
            self.counts.limited += 1;
            return Ok(());
        }
        let wd = inotify::add_watch(self.fd.get_ref(), dir, WatchFlags::from_bits_retain(MASK))
            .map_err(io::Error::from)?;
        self.dirs.insert(wd, dir.to_path_buf());
        Ok(())
    }

    /// Waits until events are available, then appends them to `out`.
    pub async fn next(&mut self, out: &mut Vec<Observation>) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let n = match rustix::io::read(guard.get_inner(), &mut self.buf[..]) {
                Ok(n) => n,
                Err(Errno::AGAIN) => {
                    guard.clear_ready();
                    continue;
                }
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            drop(guard);
            let events = parse_events(&self.buf[..n]);
            for (wd, mask, name) in events {
                self.on_event(wd, mask, &name, out);
            }
            return Ok(());
        }
    }

    /// Reads whatever events are queued now, without waiting. Called when an invocation is
    /// closed, so events from before the freeze are not blamed on the next invocation.
    pub fn drain_now(&mut self, out: &mut Vec<Observation>) {
        loop {
            let n = match rustix::io::read(self.fd.get_ref(), &mut self.buf[..]) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            for (wd, mask, name) in parse_events(&self.buf[..n]) {
                self.on_event(wd, mask, &name, out);
            }
        }
    }

    fn on_event(&mut self, wd: i32, mask: u32, name: &[u8], out: &mut Vec<Observation>) {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            self.counts.overflows += 1;
            self.rescan(out);
            return;
        }
        if mask & libc::IN_IGNORED != 0 {
            // The directory is gone: its watch is free again.
            self.dirs.remove(&wd);
            return;
        }
        if let Some(dir) = self.program_dirs.get(&wd) {
            // Opening the directory itself (a listing) has no name.
            if mask & libc::IN_ISDIR != 0 || name.is_empty() {
                return;
            }
            let exe = dir.join(std::ffi::OsStr::from_bytes(name));
            self.report_program(&exe, out);
            return;
        }
        let Some(dir) = self.dirs.get(&wd) else {
            return;
        };
        let path = dir.join(std::ffi::OsStr::from_bytes(name));
        if mask & libc::IN_OPEN != 0 {
            // An open of an executable file in the scratch tree is almost always its exec.
            if mask & libc::IN_ISDIR == 0 && is_executable(&path) {
                self.report_program(&path, out);
            }
            return;
        }
        if mask & libc::IN_ISDIR != 0 {
            if mask & libc::IN_CREATE != 0 {
                let _ = self.add(&path);
            }
            return;
        }
        if self.own_dir.as_deref() == path.parent() {
            return;
        }
        let action = if mask & libc::IN_CREATE != 0 {
            TmpAction::Created
        } else if mask & libc::IN_CLOSE_WRITE != 0 {
            TmpAction::Written
        } else if mask & libc::IN_MOVED_TO != 0 {
            TmpAction::MovedIn
        } else if mask & libc::IN_DELETE != 0 {
            TmpAction::Deleted
        } else {
            return;
        };
        if matches!(action, TmpAction::Created | TmpAction::Written)
            && self.own_files.contains(&path)
        {
            return;
        }
        let size = match action {
            TmpAction::Deleted => None,
            _ => std::fs::symlink_metadata(&path).ok().map(|m| m.len()),
        };
        out.push(Observation::TmpFile {
            path: path.to_string_lossy().into_owned(),
            action,
            size,
        });
    }
}

impl FileWatch {
    /// After a queue overflow (events were lost): watches every directory of the scratch
    /// tree that is not watched yet (created while events were lost), and reports the
    /// executables there as created, since their creation may be among what was lost.
    fn rescan(&mut self, out: &mut Vec<Observation>) {
        let watched: HashSet<PathBuf> = self.dirs.values().cloned().collect();
        let mut queue = vec![self.root.clone()];
        let (mut visited, mut reported) = (0, 0);
        while let Some(dir) = queue.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                visited += 1;
                if visited > MAX_RESCAN_ENTRIES {
                    return;
                }
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if !watched.contains(&path) {
                        let _ = self.add(&path);
                    }
                    queue.push(path);
                } else if reported < MAX_RESCAN_REPORTS && is_executable(&path) {
                    reported += 1;
                    out.push(Observation::TmpFile {
                        size: std::fs::symlink_metadata(&path).ok().map(|m| m.len()),
                        path: path.to_string_lossy().into_owned(),
                        action: TmpAction::Created,
                    });
                }
            }
        }
    }

    fn report_program(&mut self, exe: &Path, out: &mut Vec<Observation>) {
        let exe = exe.to_string_lossy();
        if self.programs.len() < MAX_PROGRAMS && !self.programs.contains(exe.as_ref()) {
            self.programs.insert(exe.as_ref().into());
            out.push(Observation::Program {
                exe: exe.into_owned(),
            });
        }
    }
}

/// A regular file with an execute bit.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Splits a buffer of `struct inotify_event` records into (wd, mask, name).
pub fn parse_events(buf: &[u8]) -> Vec<(i32, u32, Vec<u8>)> {
    const HEADER: usize = 16;
    let mut events = Vec::new();
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let word = |i: usize| {
            [
                buf[at + i],
                buf[at + i + 1],
                buf[at + i + 2],
                buf[at + i + 3],
            ]
        };
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(4));
        let len = u32::from_ne_bytes(word(12)) as usize;
        let end = (at + HEADER + len).min(buf.len());
        let name = &buf[at + HEADER..end];
        let name = name.split(|b| *b == 0).next().unwrap_or_default().to_vec();
        events.push((wd, mask, name));
        at = end;
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An empty directory of this test's own under the system temp dir.
    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("warden-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Reads the watch until `out` holds at least `n` observations (5 s each at most).
    async fn read_at_least(w: &mut FileWatch, out: &mut Vec<Observation>, n: usize) {
        while out.len() < n {
            tokio::time::timeout(Duration::from_secs(5), w.next(out))
                .await
                .expect("events arrive")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn reports_a_file_even_if_deleted_before_reading() {
        let dir = fresh_dir("tmpwatch");
        let mut w = FileWatch::new(&dir).unwrap();
        std::fs::write(dir.join("dropper"), b"#!/bin/sh\n").unwrap();
        std::fs::remove_file(dir.join("dropper")).unwrap();
        let mut out = Vec::new();
        read_at_least(&mut w, &mut out, 3).await;
        let actions: Vec<TmpAction> = out
            .iter()
            .map(|o| match o {
                Observation::TmpFile { path, action, .. } => {
                    assert!(path.ends_with("/dropper"));
                    *action
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            actions,
            vec![TmpAction::Created, TmpAction::Written, TmpAction::Deleted]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn wardens_own_files_are_reported_only_when_removed() {
        let dir = fresh_dir("ownfiles");
        let mut w = FileWatch::new(&dir).unwrap();
        let ring = dir.join(".warden-guard.ring");
        w.own_file(&ring);
        std::fs::write(&ring, b"words").unwrap();
        std::fs::OpenOptions::new().write(true).open(&ring).unwrap();
        std::fs::write(dir.join("other"), b"x").unwrap();
        std::fs::remove_file(&ring).unwrap();
        let mut out = Vec::new();
        read_at_least(&mut w, &mut out, 3).await;
        let seen: Vec<(String, TmpAction)> = out
            .iter()
            .map(|o| match o {
                Observation::TmpFile { path, action, .. } => {
                    (path.rsplit('/').next().unwrap().to_string(), *action)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("other".to_string(), TmpAction::Created),
                ("other".to_string(), TmpAction::Written),
                (".warden-guard.ring".to_string(), TmpAction::Deleted),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn wardens_own_files_are_left_out_but_not_the_functions_beside_them() {
        let dir = fresh_dir("ownwatch");
        let own = dir.join(".warden-profile");
        let mut w = FileWatch::new(&dir).unwrap();
        w.leave_out(&own);
        std::fs::create_dir_all(&own).unwrap();
        let mut out = Vec::new();
        // The directory's creation adds its watch before anything is written in it.
        let _ = tokio::time::timeout(Duration::from_millis(200), w.next(&mut out)).await;
        std::fs::write(own.join("copy.json"), b"{}").unwrap();
        std::fs::write(dir.join("function.txt"), b"x").unwrap();
        read_at_least(&mut w, &mut out, 2).await;
        for o in &out {
            let Observation::TmpFile { path, .. } = o else {
                panic!("{o:?}")
            };
            assert!(path.ends_with("/function.txt"), "{path}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn names_a_program_run_from_a_watched_directory_once_per_invocation() {
        let base = fresh_dir("progwatch");
        let (scratch, bin) = (base.join("tmp"), base.join("bin"));
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let program = bin.join("quick");
        std::fs::copy("/bin/true", &program).unwrap();
        let mut w = FileWatch::new(&scratch).unwrap();
        assert_eq!(w.watch_programs(&[bin.clone(), base.join("missing")]), 1);
        let runs = |n: usize| {
            for _ in 0..n {
                assert!(std::process::Command::new(&program)
                    .status()
                    .unwrap()
                    .success());
            }
        };
        let programs = |out: &[Observation]| -> Vec<String> {
            out.iter()
                .filter_map(|o| match o {
                    Observation::Program { exe } => Some(exe.clone()),
                    _ => None,
                })
                .collect()
        };
        runs(3);
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), w.next(&mut out))
            .await
            .expect("events arrive")
            .unwrap();
        w.drain_now(&mut out);
        assert_eq!(programs(&out), vec![program.to_string_lossy().into_owned()]);
        runs(1);
        out.clear();
        std::thread::sleep(Duration::from_millis(50));
        w.drain_now(&mut out);
        assert!(programs(&out).is_empty(), "reported once per invocation");
        w.new_invocation();
        runs(1);
        tokio::time::timeout(Duration::from_secs(5), w.next(&mut out))
            .await
            .expect("events arrive")
            .unwrap();
        assert_eq!(programs(&out).len(), 1);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[tokio::test]
    async fn names_an_executable_run_from_the_scratch_tree_but_not_a_file_read_there() {
        let dir = fresh_dir("tmpexec");
        let mut w = FileWatch::new(&dir).unwrap();
        std::fs::write(dir.join("data.bin"), b"not a program").unwrap();
        let _ = std::fs::read(dir.join("data.bin")).unwrap();
        let payload = dir.join("payload");
        std::fs::copy("/bin/true", &payload).unwrap();
        assert!(std::process::Command::new(&payload)
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(50));
        let mut out = Vec::new();
        w.drain_now(&mut out);
        let programs: Vec<&Observation> = out
            .iter()
            .filter(|o| matches!(o, Observation::Program { .. }))
            .collect();
        assert_eq!(
            programs,
            vec![&Observation::Program {
                exe: payload.to_string_lossy().into_owned()
            }]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_overflow_rescans_the_tree_and_deleted_directories_free_their_watch() {
        let dir = fresh_dir("overflow");
        let mut w = FileWatch::new(&dir).unwrap();
        // Made while events were lost: an unwatched directory with a payload in it.
        let hidden = dir.join("a");
        std::fs::create_dir_all(&hidden).unwrap();
        std::fs::copy("/bin/true", hidden.join("payload")).unwrap();
        let mut out = Vec::new();
        w.on_event(-1, libc::IN_Q_OVERFLOW, b"", &mut out);
        assert_eq!(w.take_counts().overflows, 1);
        assert!(w.dirs.values().any(|d| d == &hidden), "rescan watches it");
        assert!(out.iter().any(|o| matches!(o,
            Observation::TmpFile { path, action: TmpAction::Created, .. } if path.ends_with("/a/payload"))));
        // Removing it gives the watch back.
        std::fs::remove_dir_all(&hidden).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        w.drain_now(&mut out);
        assert_eq!(w.dirs.len(), 1, "{:?}", w.dirs);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn directories_past_the_watch_cap_are_counted() {
        let dir = fresh_dir("watchcap");
        let mut w = FileWatch::new(&dir).unwrap();
        for i in 0..MAX_WATCHES + 3 {
            std::fs::create_dir_all(dir.join(format!("d{i}"))).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        w.drain_now(&mut Vec::new());
        assert_eq!(w.dirs.len(), MAX_WATCHES);
        assert_eq!(w.take_counts().limited, 4);
        assert_eq!(w.take_counts(), WatchCounts::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parse_events_handles_padding_and_truncation() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&1i32.to_ne_bytes());
        buf.extend_from_slice(&libc::IN_CREATE.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&16u32.to_ne_bytes());
        buf.extend_from_slice(b"a.bin\0\0\0\0\0\0\0\0\0\0\0");
        buf.extend_from_slice(&[1, 2, 3]);
        let events = parse_events(&buf);
        assert_eq!(events, vec![(1, libc::IN_CREATE, b"a.bin".to_vec())]);
    }
}
