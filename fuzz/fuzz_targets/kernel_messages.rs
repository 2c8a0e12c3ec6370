//! Binary messages from the kernel: netlink sock_diag dumps and inotify event buffers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::sources::filewatch::parse_events;
use warden_core::sources::procfs::netlink;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let mut out = Vec::new();
            let _ = netlink::parse_batch(rest, 1, &mut out);
        }
        1 => drop(netlink::parse_socket(rest)),
        _ => {
            let events = parse_events(rest);
            assert!(events.iter().map(|e| e.2.len()).sum::<usize>() <= rest.len());
        }
    }
});
