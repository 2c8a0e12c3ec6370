//! Warden's own TCP traffic to outside the sandbox (its AWS requests, the throttle call).
//!
//! The kernel counters Warden reads are namespace-wide, so they include these requests.
//! - Connections: the AWS clients resolve every host they connect to through Warden's
//!   resolver ([`note_connect`]), so each connection Warden opens is counted exactly.
//! - Bytes: the kernel keeps per-socket totals (`TCP_INFO`), read at each snapshot for the
//!   sockets Warden holds. A connection that opens and closes between two snapshots (an
//!   endpoint that closes after each answer) is not seen, nor what a connection carried after
//!   its last reading; so the correction can fall short, never overshoot. AWS endpoints keep
//!   connections alive, so Warden's requests to them are mostly left out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::sys::{self, TcpTotals as SocketTotals};

/// Bytes of headers a segment carries on the wire as the interface counters see it:
/// Ethernet 14, IPv4 20, TCP 20 with the 12 bytes of timestamps.
pub const SEGMENT_OVERHEAD: u64 = 66;

/// Connections Warden's AWS clients opened (one per host resolution).
static CONNECTS: AtomicU64 = AtomicU64::new(0);

/// Most addresses remembered as Warden's own destinations.
const MAX_OWN_DESTINATIONS: usize = 64;
/// Addresses Warden's own clients resolved: a closed connection to one of them (no socket
/// left to tell whose it was) is taken for Warden's.
static OWN_DESTINATIONS: Mutex<Vec<IpAddr>> = Mutex::new(Vec::new());

/// Counts one connection about to be opened by Warden itself to one of `ips`.
pub fn note_connect(ips: &[IpAddr]) {
    CONNECTS.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut own) = OWN_DESTINATIONS.lock() {
        for ip in ips {
            if !own.contains(ip) && own.len() < MAX_OWN_DESTINATIONS {
                own.push(*ip);
            }
        }
    }
}

/// Whether Warden's own clients resolved `ip`.
pub fn is_own_destination(ip: IpAddr) -> bool {
    OWN_DESTINATIONS.lock().is_ok_and(|own| own.contains(&ip))
}

/// Cumulative totals of Warden's own outside connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnNet {
    /// Connections opened.
    pub connects: u64,
    /// Payload bytes sent and acknowledged.
    pub tx_bytes: u64,
    /// Payload bytes received.
    pub rx_bytes: u64,
    /// Segments sent (with retransmissions and bare ACKs).
    pub segs_out: u64,
    /// Segments received.
    pub segs_in: u64,
}

impl OwnNet {
    /// Bytes the interface counted for what Warden sent.
    pub fn wire_tx_bytes(&self) -> u64 {
        self.tx_bytes + self.segs_out * SEGMENT_OVERHEAD
    }

    /// Bytes the interface counted for what Warden received.
    pub fn wire_rx_bytes(&self) -> u64 {
        self.rx_bytes + self.segs_in * SEGMENT_OVERHEAD
    }
}

/// Reads the totals of the TCP sockets this process holds towards non-loopback peers.
#[derive(Debug, Default)]
pub struct OwnTraffic {
    /// Connections accepted on this local port are the platform's (the telemetry listener).
    listening_port: Option<u16>,
    /// Socket inode → its fd and totals at its last reading.
    seen: HashMap<u64, (RawFd, SocketTotals)>,
    total: OwnNet,
}

impl OwnTraffic {
    /// A reader that leaves out connections accepted on `listening_port`.
    pub fn new(listening_port: Option<u16>) -> OwnTraffic {
        OwnTraffic {
            listening_port,
            ..OwnTraffic::default()
        }
    }

    /// Adds what every outside socket carried since its last reading; returns the totals
    /// (connections: all Warden noted so far).
    pub fn read(&mut self) -> OwnNet {
        let connects = CONNECTS.load(Ordering::Relaxed);
        let opened = connects != self.total.connects;
        // No socket held at the last reading and none opened since: nothing to read.
        if !opened && self.seen.is_empty() {
            return self.total;
        }
        self.total.connects = connects;
        // Only a new connection can add a socket: otherwise the known fds are enough.
        let fds: Vec<RawFd> = if opened {
            own_fds()
        } else {
            self.seen.values().map(|&(fd, _)| fd).collect()
        };
        let mut now = HashMap::with_capacity(self.seen.len() + 1);
        for fd in fds {
            let Some(inode) = sys::socket_inode(fd) else {
                continue;
            };
            let before = match self.seen.get(&inode) {
                Some(&(_, before)) => before,
                // Not known: a new connection of Warden's, or (without one) a reused fd.
                None if opened && is_outside(fd, self.listening_port) => SocketTotals::default(),
                None => continue,
            };
            let Some(totals) = sys::tcp_totals(fd) else {
                continue;
            };
            let t = &mut self.total;
            t.tx_bytes += totals.tx_bytes.saturating_sub(before.tx_bytes);
            t.rx_bytes += totals.rx_bytes.saturating_sub(before.rx_bytes);
            t.segs_out += totals.segs_out.saturating_sub(before.segs_out);
            t.segs_in += totals.segs_in.saturating_sub(before.segs_in);
            now.insert(inode, (fd, totals));
        }
        self.seen = now;
        self.total
    }
}

/// This process's open file descriptors.
fn own_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// Whether socket `fd` is connected to a non-loopback peer and was not accepted on
/// `listening_port`.
fn is_outside(fd: RawFd, listening_port: Option<u16>) -> bool {
    let outside = |a: SocketAddr| !a.ip().is_loopback() && !a.ip().is_unspecified();
    if !sys::peer_address(fd).is_some_and(outside) {
        return false;
    }
    listening_port.is_none() || sys::local_address(fd).map(|a| a.port()) != listening_port
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{IpAddr, TcpListener, TcpStream};
    use std::sync::Mutex;

    /// The tests read this whole process's sockets: one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// A non-loopback address of this machine, if it has one.
    /// (Says so when there is none: the test then skips.)
    fn outside_address() -> Option<IpAddr> {
        // Connecting a UDP socket sends nothing; it picks the route's source address.
        let found = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|probe| probe.connect("192.0.2.1:9").map(|_| probe))
            .and_then(|probe| probe.local_addr())
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
        if found.is_none() {
            eprintln!("no non-loopback address; skipping");
        }
        found
    }

    /// A connection to `ip` noted as Warden's: its connecting end and its accepted end.
    fn noted_connection(ip: IpAddr) -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        note_connect(&[]);
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap().0)
    }

    #[test]
    fn counts_a_connection_to_a_non_loopback_peer_once_and_its_bytes() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ip) = outside_address() else {
            return;
        };
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let server = listener.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 50_000];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf[..1000]).unwrap();
        });
        let mut own = OwnTraffic::new(None);
        let before = own.read();
        note_connect(&[]);
        let mut client = TcpStream::connect(server).unwrap();
        client.write_all(&[7u8; 50_000]).unwrap();
        let mut back = [0u8; 1000];
        client.read_exact(&mut back).unwrap();
        echo.join().unwrap();
        let mid = own.read();
        assert_eq!(mid.connects, before.connects + 1);
        assert!(mid.tx_bytes - before.tx_bytes >= 50_000, "{mid:?}");
        assert!(mid.rx_bytes - before.rx_bytes >= 1000, "{mid:?}");
        assert!(mid.segs_out > before.segs_out);
        // Read again with nothing new: the same bytes are not counted twice.
        let again = own.read();
        assert_eq!(again.connects, mid.connects);
        assert_eq!(again.tx_bytes, mid.tx_bytes);
        drop(client);
    }

    #[test]
    fn leaves_loopback_connections_out() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut own = OwnTraffic::new(None);
        let before = own.read();
        note_connect(&[]);
        let mut client = TcpStream::connect(addr).unwrap();
        let (_server, _) = listener.accept().unwrap();
        client.write_all(&[1u8; 10_000]).unwrap();
        let after = own.read();
        assert_eq!(
            after.connects,
            before.connects + 1,
            "the connection is noted"
        );
        assert_eq!(
            after.tx_bytes, before.tx_bytes,
            "its loopback bytes are not"
        );
    }

    #[test]
    fn leaves_connections_accepted_on_the_listening_port_out() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ip) = outside_address() else {
            return;
        };
        let (mut client, mut accepted) = noted_connection(ip);
        let port = accepted.local_addr().unwrap().port();
        let mut own = OwnTraffic::new(Some(port));
        let mut both = OwnTraffic::new(None);
        let (before, before_both) = (own.read(), both.read());
        client.write_all(&[3u8; 20_000]).unwrap();
        let mut got = vec![0u8; 20_000];
        accepted.read_exact(&mut got).unwrap();
        // Both ends live in this process; only the connecting end's sending is Warden's.
        let (after, after_both) = (own.read(), both.read());
        assert!(after.tx_bytes - before.tx_bytes >= 20_000, "{after:?}");
        assert_eq!(after.rx_bytes, before.rx_bytes, "{after:?}");
        assert!(
            after_both.rx_bytes - before_both.rx_bytes >= 20_000,
            "{after_both:?}"
        );
    }

    #[test]
    fn reads_nothing_while_no_connection_is_noted_or_held() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ip) = outside_address() else {
            return;
        };
        let mut own = OwnTraffic::new(None);
        let first = own.read();
        // An outside connection Warden did not note: while Warden holds none of its own and
        // has noted none since, /proc/self/fd is not even listed.
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        client.write_all(&[5u8; 10_000]).unwrap();
        assert_eq!(own.read(), first);
        assert!(own.seen.is_empty());
    }
}
