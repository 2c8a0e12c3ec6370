//! The lockdown page, shared by Warden and its in-process guard through a small file in the
//! environment's /tmp. When an environment has shown enough of an attack's precursors (recon
//! commands, reads of credential sources, error bursts, refused calls, tampering), Warden
//! writes into the page the destinations and programs the function is known to use and then
//! sets its flag; from then on the guard refuses every other egress and exec, in every
//! process, until the environment is recycled (docs/configuration.md, "Lockdown").
//!
//! The page is a fixed binary layout, so that the guard reads it inside a hooked call with
//! one atomic load (is the flag set?) and, only once it is, a copy and a scan: no parsing, no
//! allocation.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `WDNLOCK1` |
//! | 8 | 8 | flag: 0 open, 1 locked down (little endian) |
//! | 16 | 4 | number of destinations (≤ [`MAX_DESTINATIONS`]) |
//! | 20 | 4 | number of programs (≤ [`MAX_PROGRAMS`]) |
//! | 24 | 20 × 64 | destinations: IPv6 address (IPv4 mapped), port (little endian; 0 any), 2 spare |
//! | 1304 | 8 × 128 | programs: FNV-1a 64 of the executable's base name |

use std::net::{IpAddr, SocketAddr};

use crate::{base_name, unmapped};

/// Where the page lives: the environment's scratch directory, the one place both Warden and
/// every process of the function can reach (whatever `WARDEN_TMP_DIR` says).
pub const DIR: &str = "/tmp";
/// The page's size: one memory page.
pub const PAGE_SIZE: usize = 4096;
/// What the page starts with.
pub const MAGIC: [u8; 8] = *b"WDNLOCK1";
/// Where the flag is (an aligned little-endian u64).
pub const FLAG_OFFSET: usize = 8;
/// The flag's value once the environment is locked down.
pub const LOCKED: u64 = 1;
/// Most destinations the page holds.
pub const MAX_DESTINATIONS: usize = 64;
/// Most programs the page holds.
pub const MAX_PROGRAMS: usize = 128;

const COUNTS_OFFSET: usize = 16;
const DESTINATIONS_OFFSET: usize = 24;
const DESTINATION_SIZE: usize = 20;
const PROGRAMS_OFFSET: usize = DESTINATIONS_OFFSET + DESTINATION_SIZE * MAX_DESTINATIONS;
/// The bytes after the flag that say what is known: what the guard copies to judge a call.
pub const TABLE_END: usize = PROGRAMS_OFFSET + 8 * MAX_PROGRAMS;
const _: () = assert!(TABLE_END <= PAGE_SIZE && FLAG_OFFSET % 8 == 0);

/// The page's file name for the guard socket `socket_name`, in the environment's /tmp.
pub fn file_name(socket_name: &[u8]) -> Vec<u8> {
    let mut name = b".".to_vec();
    name.extend_from_slice(socket_name);
    name.extend_from_slice(b".lockdown");
    name
}

/// A new page: the magic and an open flag, nothing known yet.
pub fn empty_page() -> [u8; PAGE_SIZE] {
    let mut page = [0u8; PAGE_SIZE];
    page[..8].copy_from_slice(&MAGIC);
    page
}

/// What the function is known to use, as Warden writes it before it sets the flag.
#[derive(Debug, Clone, Default)]
pub struct Known {
    destinations: Vec<(IpAddr, u16)>,
    programs: Vec<u64>,
    left_out: usize,
}

impl Known {
    /// Adds a destination (port 0: any port of that address); false when the page is full.
    pub fn add_destination(&mut self, addr: SocketAddr) -> bool {
        let entry = (unmapped(addr.ip()), addr.port());
        if self.destinations.contains(&entry) {
            return true;
        }
        if self.destinations.len() >= MAX_DESTINATIONS {
            self.left_out += 1;
            return false;
        }
        self.destinations.push(entry);
        true
    }

    /// Adds a program by its executable's path (or bare name); false when the page is full.
    pub fn add_program(&mut self, path: &str) -> bool {
        let hash = name_hash(base_name(path.as_bytes()));
        if self.programs.contains(&hash) {
            return true;
        }
        if self.programs.len() >= MAX_PROGRAMS {
            self.left_out += 1;
            return false;
        }
        self.programs.push(hash);
        true
    }

    /// Destinations held.
    pub fn destinations(&self) -> usize {
        self.destinations.len()
    }

    /// Programs held.
    pub fn programs(&self) -> usize {
        self.programs.len()
    }

    /// What could not be added because the page was full.
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// The table's bytes, from [`COUNTS_OFFSET`] to [`TABLE_END`], to be written at offset 16.
    pub fn table_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; TABLE_END - COUNTS_OFFSET];
        out[0..4].copy_from_slice(&(self.destinations.len() as u32).to_le_bytes());
        out[4..8].copy_from_slice(&(self.programs.len() as u32).to_le_bytes());
        for (i, (ip, port)) in self.destinations.iter().enumerate() {
            let at = DESTINATIONS_OFFSET - COUNTS_OFFSET + i * DESTINATION_SIZE;
            let octets = match ip {
                IpAddr::V6(v6) => v6.octets(),
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            };
            out[at..at + 16].copy_from_slice(&octets);
            out[at + 16..at + 18].copy_from_slice(&port.to_le_bytes());
        }
        for (i, hash) in self.programs.iter().enumerate() {
            let at = PROGRAMS_OFFSET - COUNTS_OFFSET + i * 8;
            out[at..at + 8].copy_from_slice(&hash.to_le_bytes());
        }
        out
    }

    /// The offset [`Known::table_bytes`] go to.
    pub const fn table_offset() -> usize {
        COUNTS_OFFSET
    }
}

/// A copy of a locked-down page's table, as the guard judges a call against it.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    bytes: &'a [u8],
}

impl<'a> Table<'a> {
    /// The table in `page` (the whole page, or at least its first [`TABLE_END`] bytes);
    /// `None` when it is not a lockdown page.
    pub fn read(page: &'a [u8]) -> Option<Table<'a>> {
        (page.len() >= TABLE_END && page[..8] == MAGIC).then_some(Table { bytes: page })
    }

    fn count(&self, at: usize, max: usize) -> usize {
        let mut n = [0u8; 4];
        n.copy_from_slice(&self.bytes[at..at + 4]);
        (u32::from_le_bytes(n) as usize).min(max)
    }

    /// Whether `dest` is one of the known destinations (any port for an entry with port 0).
    pub fn knows_destination(&self, dest: SocketAddr) -> bool {
        let octets = match unmapped(dest.ip()) {
            IpAddr::V6(v6) => v6.octets(),
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        };
        let n = self.count(COUNTS_OFFSET, MAX_DESTINATIONS);
        (0..n).any(|i| {
            let at = DESTINATIONS_OFFSET + i * DESTINATION_SIZE;
            let port = u16::from_le_bytes([self.bytes[at + 16], self.bytes[at + 17]]);
            self.bytes[at..at + 16] == octets && (port == 0 || port == dest.port())
        })
    }

    /// Whether a program of this base name is known (`names`: the file called and, for a
    /// symbolic link, what it points to).
    pub fn knows_program(&self, names: &[&[u8]]) -> bool {
        let n = self.count(COUNTS_OFFSET + 4, MAX_PROGRAMS);
        names.iter().any(|name| {
            let hash = name_hash(base_name(name)).to_le_bytes();
            (0..n).any(|i| {
                let at = PROGRAMS_OFFSET + i * 8;
                self.bytes[at..at + 8] == hash
            })
        })
    }
}

/// FNV-1a, 64 bits: stable across builds, so Warden and the guard agree.
fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with(known: &Known) -> [u8; PAGE_SIZE] {
        let mut page = empty_page();
        let table = known.table_bytes();
        page[Known::table_offset()..Known::table_offset() + table.len()].copy_from_slice(&table);
        page
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    #[test]
    fn what_warden_writes_the_guard_reads() {
        let mut known = Known::default();
        assert!(known.add_destination(addr("10.0.0.5:443")));
        assert!(known.add_destination(addr("[2001:db8::1]:0")));
        assert!(known.add_program("/usr/bin/curl"));
        assert!(known.add_program("python3.11"));
        let page = page_with(&known);
        let table = Table::read(&page).expect("a lockdown page");
        assert!(table.knows_destination(addr("10.0.0.5:443")));
        assert!(table.knows_destination(addr("[::ffff:10.0.0.5]:443")));
        assert!(!table.knows_destination(addr("10.0.0.5:80")));
        assert!(!table.knows_destination(addr("10.0.0.6:443")));
        assert!(table.knows_destination(addr("[2001:db8::1]:8443")));
        assert!(table.knows_program(&[b"/bin/curl"]));
        assert!(table.knows_program(&[b"/usr/bin/python3", b"python3.11"]));
        assert!(!table.knows_program(&[b"/tmp/curl2", b"sh"]));
        assert!(!table.knows_program(&[]));
    }

    #[test]
    fn an_empty_page_knows_nothing_and_a_foreign_one_is_not_read() {
        let page = empty_page();
        let table = Table::read(&page).expect("a lockdown page");
        assert!(!table.knows_destination(addr("127.0.0.1:9001")));
        assert!(!table.knows_program(&[b"sh"]));
        assert!(Table::read(&[0u8; PAGE_SIZE]).is_none());
        assert!(Table::read(&MAGIC).is_none());
    }

    #[test]
    fn a_full_table_says_so_and_a_lying_count_is_capped() {
        let mut known = Known::default();
        for i in 0..MAX_DESTINATIONS {
            assert!(known.add_destination(SocketAddr::from(([10, 0, 0, i as u8], 443))));
        }
        assert!(!known.add_destination(addr("10.1.0.0:443")));
        assert!(known.add_destination(addr("10.0.0.3:443")), "already there");
        let mut page = page_with(&known);
        // A count larger than the table (a page written by someone else) reads no further.
        page[COUNTS_OFFSET..COUNTS_OFFSET + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        page[COUNTS_OFFSET + 4..COUNTS_OFFSET + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let table = Table::read(&page).expect("a lockdown page");
        assert!(table.knows_destination(addr("10.0.0.63:443")));
        assert!(!table.knows_program(&[b"sh"]));
    }

    #[test]
    fn the_file_name_follows_the_socket_name() {
        assert_eq!(file_name(b"warden-guard"), b".warden-guard.lockdown");
    }
}
