//! The one `unsafe` part of the crate: mapping the ring's file.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// A file mapped shared, read and write, as 64-bit words that other processes write too.
/// Unmapped when dropped.
pub(crate) struct SharedWords {
    ptr: NonNull<AtomicU64>,
    words: usize,
}

// SAFETY: the mapping is only reached through atomics, which any thread may use.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl std::fmt::Debug for SharedWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWords")
            .field("words", &self.words)
            .finish()
    }
}

impl SharedWords {
    /// Maps the first `words` words of `file` (which must be at least that long).
    pub(crate) fn map(file: &File, words: usize) -> io::Result<SharedWords> {
        let len = words * 8;
        if file.metadata()?.len() < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "ring file too short",
            ));
        }
        // SAFETY: a new shared mapping of an open file, at an address the kernel picks; the
        // file's length was checked so no word lies past its end.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedWords { ptr, words })
    }

    /// The words, each read and written only as an atomic (page aligned by mmap).
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping lives as long as `self` and holds `words` aligned words; atomics
        // make concurrent writes by other processes defined.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.words) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.words * 8) };
    }
}
