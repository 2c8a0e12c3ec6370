//! The layer's exec wrapper (`AWS_LAMBDA_EXEC_WRAPPER=/opt/warden/wrapper`). Lambda starts the
//! runtime as `wrapper <runtime> <its arguments…>`; this puts the in-process guard, found at
//! `lib/libwarden_guard.so` beside the wrapper, first in `LD_PRELOAD`, then replaces itself
//! with the runtime. With the guard it also loads the guard's language watch for Node.js
//! (`lib/node-watch.js`) through `NODE_OPTIONS`, which only Node.js reads. Whatever goes wrong
//! with either (no file, an unreadable one), the runtime still starts: the wrapper never
//! stands between Lambda and the function.
//!
//! A static binary rather than a shell script: it starts in a fraction of the time `/bin/sh`
//! takes, which every cold start pays.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The library, relative to the wrapper's directory.
const GUARD: &str = "lib/libwarden_guard.so";
/// The language watch for Node.js, relative to the wrapper's directory.
const NODE_WATCH: &str = "lib/node-watch.js";

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let me = args.next().unwrap_or_default();
    let Some(runtime) = args.next() else {
        eprintln!("[warden-wrapper] no runtime to run: Lambda passes it as the arguments");
        return ExitCode::from(127);
    };
    let mut command = Command::new(&runtime);
    command.args(args);
    if let Some(guard) = beside(&me, GUARD) {
        let current = std::env::var_os("LD_PRELOAD");
        command.env("LD_PRELOAD", preload_with(&guard, current.as_deref()));
        // The watch reports through the guard: without it, it has no one to tell.
        if let Some(watch) = beside(&me, NODE_WATCH) {
            let current = std::env::var_os("NODE_OPTIONS");
            command.env(
                "NODE_OPTIONS",
                node_options_with(&watch, current.as_deref()),
            );
        }
    }
    // Only returns when the runtime could not be run.
    let error = command.exec();
    eprintln!(
        "[warden-wrapper] could not run {}: {error}",
        Path::new(&runtime).display()
    );
    ExitCode::from(127)
}

/// A file of the layer next to the wrapper, when it is there to be read. The wrapper's own
/// file is found through the kernel (`/proc/self/exe`), whatever name it was run by.
fn beside(me: &OsStr, relative: &str) -> Option<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from(me));
    let path = exe.parent()?.join(relative);
    std::fs::File::open(&path).ok()?;
    Some(path)
}

/// `--require "<watch>"`, then what `NODE_OPTIONS` held (the watch first, so that it is
/// armed before anything else preloaded runs). Quoted: Node.js splits the variable at spaces.
fn node_options_with(watch: &Path, current: Option<&OsStr>) -> OsString {
    let mut value = b"--require \"".to_vec();
    value.extend_from_slice(watch.as_os_str().as_bytes());
    value.push(b'"');
    if let Some(current) = current.filter(|c| !c.is_empty()) {
        value.push(b' ');
        value.extend_from_slice(current.as_bytes());
    }
    OsString::from_vec(value)
}

/// `guard`, then what `LD_PRELOAD` held (the guard goes first, so its hooks come before any
/// other preloaded library's).
fn preload_with(guard: &Path, current: Option<&OsStr>) -> OsString {
    let mut value = guard.as_os_str().as_bytes().to_vec();
    if let Some(current) = current.filter(|c| !c.is_empty()) {
        value.push(b':');
        value.extend_from_slice(current.as_bytes());
    }
    OsString::from_vec(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_goes_first_and_what_was_preloaded_stays() {
        let guard = Path::new("/opt/warden/lib/libwarden_guard.so");
        assert_eq!(preload_with(guard, None), guard.as_os_str());
        assert_eq!(preload_with(guard, Some(OsStr::new(""))), guard.as_os_str());
        assert_eq!(
            preload_with(guard, Some(OsStr::new("/x/a.so"))),
            OsStr::new("/opt/warden/lib/libwarden_guard.so:/x/a.so")
        );
    }

    #[test]
    fn the_watch_goes_first_in_node_options_quoted_and_what_was_there_stays() {
        let watch = Path::new("/opt/warden/lib/node-watch.js");
        assert_eq!(
            node_options_with(watch, None),
            OsStr::new("--require \"/opt/warden/lib/node-watch.js\"")
        );
        assert_eq!(
            node_options_with(watch, Some(OsStr::new("--max-old-space-size=256"))),
            OsStr::new("--require \"/opt/warden/lib/node-watch.js\" --max-old-space-size=256")
        );
    }
}
