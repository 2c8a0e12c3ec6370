//! What an exec really runs: the file behind a descriptor, or the program a dynamic loader is
//! asked to load (`ld-linux-x86-64.so.2 /tmp/x` runs /tmp/x without exec'ing it).

use crate::line::Line;
pub(crate) use warden_policy::{base_name, How};

/// Most bytes of the joined arguments in an event.
pub(crate) const ARGV_CAP: usize = 256;

/// Loader options whose value is the next argument.
const LOADER_OPTIONS_WITH_VALUE: [&[u8]; 3] = [b"--library-path", b"--preload", b"--argv0"];
const LOADER_NAMES: [&[u8]; 4] = [b"ld-linux", b"ld.so", b"ld64.so", b"ld-musl"];

/// The program an exec really runs, and how it was reached. `file` is the file the call named
/// (the path, the path found on `PATH`, or where the descriptor links for a descriptor-based
/// exec, `via_descriptor`).
pub(crate) fn classify<'a, I>(file: &'a [u8], via_descriptor: bool, argv: I) -> (&'a [u8], How)
where
    I: IntoIterator<Item = &'a [u8]>,
{
    if file.starts_with(b"/memfd:") {
        return (file, How::Memfd);
    }
    if file.ends_with(b" (deleted)") {
        return (file, How::Deleted);
    }
    if is_loader(file) {
        return (loader_program(argv).unwrap_or(file), How::Loader);
    }
    let how = if via_descriptor { How::Fd } else { How::Path };
    (file, how)
}

/// Whether a path names a descriptor's magic link, whose target is the file really run.
pub(crate) fn is_descriptor_path(path: &[u8]) -> bool {
    path.starts_with(b"/dev/fd/") || (path.starts_with(b"/proc/") && contains(path, b"/fd/"))
}

fn is_loader(path: &[u8]) -> bool {
    let name = base_name(path);
    LOADER_NAMES.iter().any(|prefix| name.starts_with(prefix))
}

/// The first argument after the loader's own that is not one of its options.
fn loader_program<'a, I>(argv: I) -> Option<&'a [u8]>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut args = argv.into_iter().skip(1);
    while let Some(arg) = args.next() {
        if !arg.starts_with(b"--") {
            return Some(arg);
        }
        if LOADER_OPTIONS_WITH_VALUE.contains(&arg) {
            args.next();
        }
    }
    None
}

/// Writes the arguments joined by single spaces as one field, at most [`ARGV_CAP`] bytes.
pub(crate) fn write_argv<'a, I>(line: &mut Line, argv: I)
where
    I: IntoIterator<Item = &'a [u8]>,
{
    line.tab();
    let mut left = ARGV_CAP;
    for (index, arg) in argv.into_iter().enumerate() {
        if index > 0 {
            if left == 0 {
                return;
            }
            left -= line.clean(b" ", 1);
        }
        let written = line.clean(arg, left);
        left -= written;
        if written < arg.len() && left == 0 {
            return;
        }
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: &str, linked: Option<&str>, argv: &[&str]) -> (String, How) {
        let args: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let file = linked.unwrap_or(path);
        let (target, how) = classify(file.as_bytes(), linked.is_some(), args);
        (String::from_utf8(target.to_vec()).unwrap(), how)
    }

    #[test]
    fn a_plain_path_runs_itself() {
        assert_eq!(
            run("/bin/true", None, &["true"]),
            ("/bin/true".into(), How::Path)
        );
    }

    #[test]
    fn a_memfd_or_deleted_file_behind_a_descriptor_is_named() {
        let memfd = run("fd:5", Some("/memfd:x (deleted)"), &["x"]);
        assert_eq!(memfd, ("/memfd:x (deleted)".into(), How::Memfd));
        let deleted = run("/proc/self/fd/5", Some("/tmp/x (deleted)"), &["x"]);
        assert_eq!(deleted, ("/tmp/x (deleted)".into(), How::Deleted));
        let fd = run("fd:5", Some("/usr/bin/env"), &["env"]);
        assert_eq!(fd, ("/usr/bin/env".into(), How::Fd));
    }

    #[test]
    fn a_loader_runs_its_first_argument_that_is_not_an_option() {
        let argv = [
            "/lib64/ld-linux-x86-64.so.2",
            "--library-path",
            "/tmp/lib",
            "--inhibit-cache",
            "--argv0",
            "sshd",
            "/tmp/x",
            "-v",
        ];
        assert_eq!(
            run("/lib64/ld-linux-x86-64.so.2", None, &argv),
            ("/tmp/x".into(), How::Loader)
        );
        assert_eq!(
            run("/lib/ld-musl-aarch64.so.1", None, &["ld", "/tmp/y"]),
            ("/tmp/y".into(), How::Loader)
        );
        // Asked for nothing to run (`ld.so --help`): the loader itself.
        assert_eq!(
            run("/lib/ld.so", None, &["ld.so", "--help"]),
            ("/lib/ld.so".into(), How::Loader)
        );
    }

    #[test]
    fn descriptor_paths_are_recognised() {
        assert!(is_descriptor_path(b"/proc/self/fd/7"));
        assert!(is_descriptor_path(b"/proc/123/fd/7"));
        assert!(is_descriptor_path(b"/dev/fd/3"));
        assert!(!is_descriptor_path(b"/proc/self/exe"));
        assert!(!is_descriptor_path(b"/usr/bin/fd"));
    }

    #[test]
    fn arguments_are_joined_and_capped() {
        let mut line = Line::new();
        write_argv(&mut line, [&b"sh"[..], b"-c", b"echo\thi"]);
        assert_eq!(line.as_bytes(), b"\tsh -c echo hi");
        let long = [b'a'; 400];
        let mut line = Line::new();
        write_argv(&mut line, [&b"x"[..], &long[..], b"tail"]);
        assert_eq!(line.as_bytes().len(), 1 + ARGV_CAP);
    }
}
