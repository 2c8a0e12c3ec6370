//! Append-only JSON-lines file, one write per line so lines never interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

pub(crate) struct Dump {
    file: Mutex<File>,
}

impl Dump {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Dump {
            file: Mutex::new(file),
        })
    }

    /// Writes `line` plus a newline and flushes; failures are reported, not fatal.
    pub(crate) fn write_line(&self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mut file = match self.file.lock() {
            Ok(file) => file,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(err) = file.write_all(&bytes).and_then(|()| file.flush()) {
            eprintln!("reference-extension: dump write failed: {err}");
        }
    }
}
