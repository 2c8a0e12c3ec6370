//! /proc files and directories kept open between snapshots.
//!
//! Re-reading an open /proc file from offset 0 regenerates its content, so a kept handle
//! costs one `pread` per read instead of open + fstat + lseek + read + read + close (and a
//! path lookup through the dentry cache). The same holds for counting a directory's
//! entries: rewind, then `getdents64`.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Largest content a [`HotFile`] grows to; /proc/net/dev on a host with many interfaces
/// is the biggest file read this way.
const MAX_CONTENT: usize = 1 << 20;

/// A /proc file kept open and re-read from offset 0 (the sampler's and snapshot's hot path).
#[derive(Debug)]
pub struct HotFile {
    file: Option<File>,
    buf: Vec<u8>,
}

impl HotFile {
    /// Opens `path`; a missing file gives a handle that always reads `None`.
    pub fn open(path: &Path) -> HotFile {
        HotFile::with_capacity(path, 8192)
    }

    /// Opens `path` with an initial buffer of `capacity` bytes (grown when too small).
    pub fn with_capacity(path: &Path, capacity: usize) -> HotFile {
        HotFile {
            file: File::open(path).ok(),
            buf: vec![0; capacity.max(64)],
        }
    }

    /// Whether the file could be opened.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Current content, or `None` when the file is missing, gone or not text.
    pub fn read(&mut self) -> Option<&str> {
        let n = self.read_raw().ok()?;
        std::str::from_utf8(&self.buf[..n]).ok()
    }

    /// Reads the whole content into the buffer and returns its length.
    fn read_raw(&mut self) -> io::Result<usize> {
        let file = self.file.as_ref().ok_or(io::ErrorKind::NotFound)?;
        loop {
            let n = read_full(file, &mut self.buf)?;
            // A full buffer may mean a cut: grow and read again from the start.
            if n < self.buf.len() || self.buf.len() >= MAX_CONTENT {
                return Ok(n);
            }
            let grown = (self.buf.len() * 2).min(MAX_CONTENT);
            self.buf.resize(grown, 0);
        }
    }
}

/// A `pread` that ends this short of a page has reached the end of the file (see
/// [`read_full`]); names and records in the files read this way are far shorter.
const SHORT_OF_PAGE: usize = 1024;

/// Reads from offset 0 until the buffer is full or the file ends. A seq_file hands out
/// at most about a page per `read`, and stops short of the page only when the next record
/// does not fit, so a read that ends well short of a page boundary is the end of the file
/// and the usual extra `pread` that returns 0 is saved.
fn read_full(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if n < buf.len() && 4096 - n % 4096 > SHORT_OF_PAGE {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Largest `linux_dirent64` record: header, a 255-byte name, its NUL, padding.
const DIRENT_MAX: usize = 19 + 256 + 8;

/// A directory kept open whose entries are counted on demand (`/proc/[pid]/fd`).
#[derive(Debug)]
pub struct HotDir {
    fd: OwnedFd,
}

impl HotDir {
    /// Opens the directory at `path`.
    pub fn open(path: &Path) -> io::Result<HotDir> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(HotDir { fd: file.into() })
    }

    /// Entries other than `.` and `..`, read afresh; `buf` is scratch space.
    pub fn count(&self, buf: &mut [u8]) -> io::Result<u32> {
        let mut count = 0;
        self.for_each(buf, |_| count += 1)?;
        Ok(count)
    }

    /// Calls `f` with the name of each entry other than `.` and `..`, read afresh.
    pub fn for_each(&self, buf: &mut [u8], mut f: impl FnMut(&[u8])) -> io::Result<()> {
        rustix::fs::seek(&self.fd, rustix::fs::SeekFrom::Start(0)).map_err(io::Error::from)?;
        loop {
            let n = crate::sys::getdents(&self.fd, buf)?;
            if n == 0 {
                return Ok(());
            }
            dirent_names(&buf[..n], &mut f);
            // The kernel fills the buffer until the next entry does not fit: with room
            // for a longest name left over, the directory has ended.
            if buf.len() - n > DIRENT_MAX {
                return Ok(());
            }
        }
    }
}

/// Calls `f` with each name in a buffer of `linux_dirent64` records, `.` and `..` skipped.
fn dirent_names(mut records: &[u8], f: &mut impl FnMut(&[u8])) {
    // d_ino (8) + d_off (8) + d_reclen (2) + d_type (1), then the NUL-terminated name.
    const NAME: usize = 19;
    while records.len() > NAME {
        let reclen = usize::from(u16::from_ne_bytes([records[16], records[17]]));
        if reclen <= NAME || reclen > records.len() {
            break;
        }
        let name = &records[NAME..reclen];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name != b"." && name != b".." {
            f(name);
        }
        records = &records[reclen..];
    }
}

/// The per-process files a snapshot reads, kept open while the process lives.
#[derive(Debug)]
pub struct PidFiles {
    /// `/proc/[pid]/stat`.
    pub stat: HotFile,
    /// `/proc/[pid]/status`.
    pub status: HotFile,
    /// `/proc/[pid]/fd`, when readable.
    pub fd: Option<HotDir>,
}

impl PidFiles {
    /// Opens the files of `pid` under `root`.
    pub fn open(root: &str, pid: u32) -> PidFiles {
        let path = |name: &str| format!("{root}/{pid}/{name}");
        PidFiles {
            stat: HotFile::with_capacity(Path::new(&path("stat")), 1024),
            status: HotFile::with_capacity(Path::new(&path("status")), 2048),
            fd: HotDir::open(Path::new(&path("fd"))).ok(),
        }
    }
}

/// Open files of every process seen by the last snapshot.
#[derive(Debug, Default)]
pub struct PidCache {
    files: HashMap<u32, PidFiles>,
}

impl PidCache {
    /// The files of `pid`, and whether they were opened just now.
    pub fn get(&mut self, root: &str, pid: u32) -> (&mut PidFiles, bool) {
        let mut opened = false;
        let files = self.files.entry(pid).or_insert_with(|| {
            opened = true;
            PidFiles::open(root, pid)
        });
        (files, opened)
    }

    /// Opens the files of `pid` again: a kept handle of an exited process only ever
    /// answers ESRCH, while the number may now belong to a new process.
    pub fn reopen(&mut self, root: &str, pid: u32) -> &mut PidFiles {
        self.files.remove(&pid);
        self.get(root, pid).0
    }

    /// Whether `pid` has open files.
    pub fn contains(&self, pid: u32) -> bool {
        self.files.contains_key(&pid)
    }

    /// Forgets processes not in `live` (sorted).
    pub fn retain(&mut self, live: &[u32]) {
        self.files.retain(|pid, _| live.binary_search(pid).is_ok());
    }

    /// Processes with open files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no files are open.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_file_sees_new_content_and_grows() {
        let dir = std::env::temp_dir().join(format!("warden-hot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, "one").unwrap();
        let mut f = HotFile::with_capacity(&path, 64);
        assert_eq!(f.read(), Some("one"));
        let long = "x".repeat(1000);
        std::fs::write(&path, &long).unwrap();
        assert_eq!(f.read(), Some(long.as_str()));
        assert!(HotFile::open(&dir.join("missing")).read().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hot_dir_counts_entries_again_after_changes() {
        let dir = std::env::temp_dir().join(format!("warden-hotdir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = HotDir::open(&dir).unwrap();
        let mut buf = vec![0u8; 64];
        assert_eq!(d.count(&mut buf).unwrap(), 0);
        for i in 0..10 {
            std::fs::write(dir.join(format!("file-{i}")), "").unwrap();
        }
        assert_eq!(
            d.count(&mut buf).unwrap(),
            10,
            "small buffer: several calls"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn own_fd_directory_counts_a_new_descriptor() {
        let d = HotDir::open(Path::new("/proc/self/fd")).unwrap();
        let mut buf = vec![0u8; 4096];
        let before = d.count(&mut buf).unwrap();
        let extra = File::open("/proc/self/stat").unwrap();
        assert_eq!(d.count(&mut buf).unwrap(), before + 1);
        drop(extra);
    }

    #[test]
    fn kept_stat_of_an_exited_process_fails_instead_of_lying() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut cache = PidCache::default();
        let (files, opened) = cache.get("/proc", child.id());
        assert!(opened);
        assert!(files.stat.read().is_some());
        child.kill().unwrap();
        child.wait().unwrap();
        let (files, opened) = cache.get("/proc", child.id());
        assert!(!opened);
        assert!(files.stat.read().is_none());
    }
}
