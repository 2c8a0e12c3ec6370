//! The ring as a file: created by Warden, opened by anyone who reads it like Warden does
//! (tests, benchmarks). The guard maps it with its own raw system calls.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sys::SharedWords;
use crate::{Ring, BYTES, WORDS};

/// The ring's file, mapped.
#[derive(Debug)]
pub struct RingFile {
    path: PathBuf,
    words: SharedWords,
}

impl RingFile {
    /// Creates the ring at `path`, empty and ready, in place of whatever is there (a link is
    /// removed, never followed).
    pub fn create(path: &Path) -> io::Result<RingFile> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        // Every process of the function writes it: in Lambda they run as Warden's user, but a
        // runtime may run as another.
        file.set_permissions(Permissions::from_mode(0o666))?;
        file.set_len(BYTES as u64)?;
        let ring = RingFile::map(path, &file)?;
        ring.ring().format();
        Ok(ring)
    }

    /// Maps an existing ring file (not following a link).
    pub fn open(path: &Path) -> io::Result<RingFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        RingFile::map(path, &file)
    }

    fn map(path: &Path, file: &File) -> io::Result<RingFile> {
        Ok(RingFile {
            path: path.to_path_buf(),
            words: SharedWords::map(file, WORDS)?,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ring in it.
    pub fn ring(&self) -> Ring<'_> {
        match Ring::new(self.words.words()) {
            Some(ring) => ring,
            None => unreachable!("mapped with exactly WORDS words"),
        }
    }
}
