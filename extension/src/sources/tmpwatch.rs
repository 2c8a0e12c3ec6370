//! Watches the scratch directory with inotify, so files are named even when they are
//! created and deleted between two sampler ticks. inotify needs no privileges and costs
//! nothing while nothing happens; events wait in the kernel while the environment is frozen.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::sampler::{Observation, TmpAction};

/// Most directories watched (the top one plus subdirectories created later).
pub const MAX_WATCHES: usize = 64;

const MASK: u32 = libc::IN_CREATE | libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_DELETE;

/// An inotify watch on one directory tree.
#[derive(Debug)]
pub struct TmpWatch {
    fd: AsyncFd<OwnedFd>,
    dirs: HashMap<i32, PathBuf>,
    buf: Vec<u8>,
}

impl TmpWatch {
    /// Starts watching `dir` (must exist). Needs a tokio runtime.
    pub fn new(dir: &Path) -> io::Result<TmpWatch> {
        // SAFETY: inotify_init1 returns a new descriptor or -1; ownership moves to OwnedFd.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd stays open for the AsyncFd's whole life and always yields
        // the same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }?;
        let mut watch = TmpWatch {
            fd,
            dirs: HashMap::new(),
            buf: vec![0; 16 * 1024],
        };
        watch.add(dir)?;
        Ok(watch)
    }

    fn add(&mut self, dir: &Path) -> io::Result<()> {
        if self.dirs.len() >= MAX_WATCHES {
            return Ok(());
        }
        let path = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: valid descriptor and NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), MASK) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        self.dirs.insert(wd, dir.to_path_buf());
        Ok(())
    }

    /// Waits until events are available, then appends them to `out`.
    pub async fn next(&mut self, out: &mut Vec<Observation>) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let fd = guard.get_inner().as_raw_fd();
            // SAFETY: reads into our own buffer of the stated length.
            let n = unsafe { libc::read(fd, self.buf.as_mut_ptr().cast(), self.buf.len()) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::WouldBlock {
                    guard.clear_ready();
                    continue;
                }
                return Err(err);
            }
            drop(guard);
            let events = parse_events(&self.buf[..n as usize]);
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
            let fd = self.fd.get_ref().as_raw_fd();
            // SAFETY: reads into our own buffer of the stated length.
            let n = unsafe { libc::read(fd, self.buf.as_mut_ptr().cast(), self.buf.len()) };
            if n <= 0 {
                return;
            }
            for (wd, mask, name) in parse_events(&self.buf[..n as usize]) {
                self.on_event(wd, mask, &name, out);
            }
        }
    }

    fn on_event(&mut self, wd: i32, mask: u32, name: &[u8], out: &mut Vec<Observation>) {
        let Some(dir) = self.dirs.get(&wd) else {
            return;
        };
        let path = dir.join(std::ffi::OsStr::from_bytes(name));
        if mask & libc::IN_ISDIR != 0 {
            if mask & libc::IN_CREATE != 0 {
                let _ = self.add(&path);
            }
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

    #[tokio::test]
    async fn reports_a_file_even_if_deleted_before_reading() {
        let dir = std::env::temp_dir().join(format!("warden-tmpwatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = TmpWatch::new(&dir).unwrap();
        std::fs::write(dir.join("dropper"), b"#!/bin/sh\n").unwrap();
        std::fs::remove_file(dir.join("dropper")).unwrap();
        let mut out = Vec::new();
        while out.len() < 3 {
            tokio::time::timeout(Duration::from_secs(5), w.next(&mut out))
                .await
                .expect("events arrive")
                .unwrap();
        }
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
