//! What the in-process guard reads from files the function can write: a policy file
//! (`WARDEN_POLICY`) and the lockdown page in /tmp. Parsed, then matched against calls made up
//! from the same bytes.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use warden_policy::lockdown::{Table, PAGE_SIZE};
use warden_policy::policy::{normalize, Policy, MAX_WRITE_PATH};
use warden_policy::How;

const HOWS: [How; 5] = [How::Memfd, How::Deleted, How::Loader, How::Fd, How::Path];

fuzz_target!(|data: &[u8]| {
    let api = SocketAddr::from(([169, 254, 100, 1], 9001));
    let mut octets = [0u8; 16];
    for (o, b) in octets.iter_mut().zip(data.iter().rev()) {
        *o = *b;
    }
    let port = u16::from_le_bytes([octets[0], octets[1]]);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port);
    let v4 = SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        port,
    );
    let path = data.get(..data.len().min(64)).unwrap_or(&[]);
    let how = HOWS[usize::from(octets[6]) % HOWS.len()];

    if let Ok(policy) = Policy::parse(data, Some(api)) {
        for dest in [v4, v6, api] {
            let _ = policy.allows_destination(dest);
            let _ = policy.lists_destination(dest);
        }
        let _ = policy.allows_program(path, how);
        let _ = policy.lists_program(path, how);
        let mut normal = [0u8; MAX_WRITE_PATH];
        if let Some(normal) = normalize(path, &mut normal) {
            let _ = policy.allows_write(normal);
        }
        let _ = policy.verdict(octets[7] & 1 == 0);
    }

    let mut page = [0u8; PAGE_SIZE];
    let n = data.len().min(PAGE_SIZE);
    page[..n].copy_from_slice(&data[..n]);
    if let Some(table) = Table::read(&page) {
        let _ = table.knows_destination(v4);
        let _ = table.knows_destination(v6);
        let _ = table.knows_program(&[path, b"sh"]);
    }
});
