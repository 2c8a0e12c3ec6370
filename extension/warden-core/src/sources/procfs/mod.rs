//! The /proc source: pure parsers over text ([`parse`]) and a reader that takes a root path
//! ([`reader`]), so tests run the parsers on fixtures and the reader on a fake tree. Files
//! are kept open between snapshots ([`files`]); socket tables come from netlink sock_diag
//! ([`netlink`]) where it is available, else from /proc/net.

pub mod files;
pub mod netlink;
pub mod own_traffic;
pub mod parse;
pub mod reader;
pub mod snapshot;

pub use parse::ParseError;
pub use reader::{Probe, ProcReader, ProcessInfo};
pub use snapshot::CounterSnapshot;
