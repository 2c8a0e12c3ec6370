//! The layer's exec wrapper (`AWS_LAMBDA_EXEC_WRAPPER=/opt/warden/wrapper`). Lambda starts the
//! runtime as `wrapper <runtime> <its arguments…>`; this puts the in-process guard, found at
//! `lib/libwarden_guard.so` beside the wrapper, first in `LD_PRELOAD`, then replaces itself
//! with the runtime. Whatever goes wrong with the guard (no library, an unreadable one), the
//! runtime still starts: the wrapper never stands between Lambda and the function.
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

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let me = args.next().unwrap_or_default();
    let Some(runtime) = args.next() else {
        eprintln!("[warden-wrapper] no runtime to run: Lambda passes it as the arguments");
        return ExitCode::from(127);
    };
    let mut command = Command::new(&runtime);
    command.args(args);
    if let Some(guard) = guard_beside(&me) {
        let current = std::env::var_os("LD_PRELOAD");
        command.env("LD_PRELOAD", preload_with(&guard, current.as_deref()));
    }
    // Only returns when the runtime could not be run.
    let error = command.exec();
    eprintln!(
        "[warden-wrapper] could not run {}: {error}",
        Path::new(&runtime).display()
    );
    ExitCode::from(127)
}

/// The guard next to the wrapper, when it is there to be read. The wrapper's own file is
/// found through the kernel (`/proc/self/exe`), whatever name it was run by.
fn guard_beside(me: &OsStr) -> Option<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from(me));
    let guard = exe.parent()?.join(GUARD);
    std::fs::File::open(&guard).ok()?;
    Some(guard)
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
}
