//! The environment's copy of its profile object, in the scratch directory, so that a Warden
//! started again in the same environment (after a reset) need not download it again.
//!
//! The function can write the scratch directory too, so the copy is what an attacker may
//! have written: it is opened without following symbolic links (the directory and the file),
//! read only up to the object's bound, and used only when its content hashes to what S3 says
//! the object holds now ([`super::load`]). It is written under a fresh name opened with
//! `O_EXCL` and renamed into place, so a file or link planted at either name is never written
//! through.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, CWD};

use super::object::{sha256_hex, MAX_OBJECT_BYTES};

/// The directory under the scratch directory that holds the copy.
pub const DIR_NAME: &str = ".warden-profile";

/// Where one profile source's copy lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
    name: String,
}

impl Cache {
    /// The copy of the object at `source` (e.g. `s3://bucket/key`) under `tmp_dir`.
    pub fn new(tmp_dir: &Path, source: &str) -> Cache {
        let digest = sha256_hex(source.as_bytes());
        Cache {
            dir: tmp_dir.join(DIR_NAME),
            name: format!("{}.json", &digest[..16]),
        }
    }

    /// The directory (the file watch leaves Warden's own writes there out).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The copy's bytes, if there is a regular file of at most the object's bound.
    pub fn read(&self) -> Option<Vec<u8>> {
        let dir = open_dir(&self.dir).ok()?;
        let fd = rustix::fs::openat(
            &dir,
            self.name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .ok()?;
        let stat = rustix::fs::fstat(&fd).ok()?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return None;
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(MAX_OBJECT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        (bytes.len() <= MAX_OBJECT_BYTES).then_some(bytes)
    }

    /// Replaces the copy with `bytes`.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        match rustix::fs::mkdirat(CWD, &self.dir, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = open_dir(&self.dir)?;
        let fresh = format!(".{}.{}", self.name, std::process::id());
        // A leftover of an earlier Warden in this environment, or something planted.
        let _ = rustix::fs::unlinkat(&dir, fresh.as_str(), rustix::fs::AtFlags::empty());
        let fd = rustix::fs::openat(
            &dir,
            fresh.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let written = std::fs::File::from(fd).write_all(bytes);
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&dir, fresh.as_str(), rustix::fs::AtFlags::empty());
            return Err(e);
        }
        rustix::fs::renameat(&dir, fresh.as_str(), &dir, self.name.as_str())?;
        Ok(())
    }
}

/// The directory itself, never a link to one.
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("warden-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_copy_reads_back_and_is_replaced_whole() {
        let tmp = scratch("round-trip");
        let cache = Cache::new(&tmp, "s3://bucket/orders.json");
        assert_eq!(cache.read(), None);
        cache.write(b"first").unwrap();
        cache.write(b"second").unwrap();
        assert_eq!(cache.read().as_deref(), Some(&b"second"[..]));
        let other = Cache::new(&tmp, "s3://bucket/billing.json");
        assert_eq!(other.read(), None, "one copy per source");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn links_and_oversized_files_are_never_read_or_written_through() {
        let tmp = scratch("links");
        let cache = Cache::new(&tmp, "s3://bucket/orders.json");
        let target = tmp.join("target");
        std::fs::write(&target, b"secret").unwrap();
        // The file is a link: not read; writing replaces the link, not its target.
        std::fs::create_dir_all(cache.dir()).unwrap();
        let file = cache.dir().join(&cache.name);
        std::os::unix::fs::symlink(&target, &file).unwrap();
        assert_eq!(cache.read(), None);
        cache.write(b"profile").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"secret");
        assert!(!std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink());
        // A file over the bound is not read.
        std::fs::write(&file, vec![b'x'; MAX_OBJECT_BYTES + 1]).unwrap();
        assert_eq!(cache.read(), None);
        // The directory is a link: neither read nor written through.
        std::fs::remove_dir_all(cache.dir()).unwrap();
        let elsewhere = tmp.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, cache.dir()).unwrap();
        assert!(cache.write(b"profile").is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert_eq!(cache.read(), None);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
