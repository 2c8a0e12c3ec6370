//! One-line logs on stderr, prefixed `[warden]`, filtered by a global level.
//!
//! On Lambda stderr reaches CloudWatch Logs; one `write` per line keeps lines whole.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

/// Severity of a log line, lowest to highest verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed and a feature is degraded.
    Error = 0,
    /// Something is off but handled (bad setting, dropped data).
    Warn = 1,
    /// Start-up and shutdown milestones.
    Info = 2,
    /// Per-invocation detail.
    Debug = 3,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// Sets the most verbose level that is printed.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether lines of this level are printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line; used through the `warn!`-style macros.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut line = Vec::with_capacity(128);
    let _ = write!(line, "[warden] {} ", level.label());
    let _ = line.write_fmt(args);
    line.push(b'\n');
    // A failed stderr write has nowhere better to go.
    let _ = std::io::stderr().lock().write_all(&line);
}

/// Logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($arg)*)) };
}
/// Logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($arg)*)) };
}
/// Logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($arg)*)) };
}
/// Logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($arg)*)) };
}
