//! Usage of the scratch directory (/tmp): bytes and files.
//!
//! On Lambda and in the sandbox /tmp is its own filesystem, so one `statvfs` call gives
//! exact usage at constant cost however many files a function caches there. Where /tmp
//! shares a filesystem with other data, a bounded walk of the directory is used instead.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Most directory entries a walk visits before it stops and reports `truncated`.
pub const WALK_LIMIT: usize = 10_000;

/// Scratch directory usage at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpUsage {
    /// Bytes used.
    pub bytes: u64,
    /// Files (inodes) used.
    pub files: u64,
    /// The walk hit [`WALK_LIMIT`]; figures are lower bounds.
    pub truncated: bool,
}

/// Measures one directory, choosing the method once.
#[derive(Debug, Clone)]
pub struct ScratchProbe {
    dir: PathBuf,
    own_filesystem: bool,
}

impl ScratchProbe {
    /// Prepares a probe for `dir` (which may not exist yet).
    pub fn new(dir: &Path) -> ScratchProbe {
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        let parent = dir.parent().unwrap_or(Path::new("/"));
        let own_filesystem = matches!((dev(dir), dev(parent)), (Some(a), Some(b)) if a != b);
        ScratchProbe {
            dir: dir.to_path_buf(),
            own_filesystem,
        }
    }

    /// The directory measured.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Current usage; zero when the directory is missing.
    pub fn measure(&self) -> TmpUsage {
        if self.own_filesystem {
            if let Some(usage) = statvfs_usage(&self.dir) {
                return usage;
            }
        }
        walk_usage(&self.dir, WALK_LIMIT)
    }
}

// The statvfs field types differ between targets, so the conversions are kept.
#[allow(clippy::useless_conversion)]
fn statvfs_usage(dir: &Path) -> Option<TmpUsage> {
    let st = rustix::fs::statvfs(dir).ok()?;
    let used_blocks = u64::from(st.f_blocks).saturating_sub(u64::from(st.f_bfree));
    Some(TmpUsage {
        bytes: used_blocks.saturating_mul(u64::from(st.f_frsize)),
        files: u64::from(st.f_files).saturating_sub(u64::from(st.f_ffree)),
        truncated: false,
    })
}

/// Sums regular file sizes under `dir`, visiting at most `limit` entries, not following
/// symlinks.
pub fn walk_usage(dir: &Path, limit: usize) -> TmpUsage {
    let mut usage = TmpUsage::default();
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            visited += 1;
            if visited > limit {
                usage.truncated = true;
                return usage;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                usage.files += 1;
                usage.bytes += meta.len();
            }
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("warden-scratch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        dir
    }

    #[test]
    fn walk_counts_files_and_bytes() {
        let dir = temp_dir("walk");
        std::fs::write(dir.join("a"), [0u8; 100]).unwrap();
        std::fs::write(dir.join("sub/b"), [0u8; 23]).unwrap();
        let u = walk_usage(&dir, WALK_LIMIT);
        assert_eq!((u.files, u.bytes, u.truncated), (2, 123, false));
        let capped = walk_usage(&dir, 1);
        assert!(capped.truncated);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_dir_is_empty() {
        let u = ScratchProbe::new(Path::new("/nonexistent/warden")).measure();
        assert_eq!(u, TmpUsage::default());
    }
}
