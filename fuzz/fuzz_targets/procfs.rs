//! /proc text files: the first byte picks the parser, the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::sources::procfs::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 7 {
        0 => drop(parse::parse_stat(&text)),
        1 => drop(parse::parse_status(&text)),
        2 => drop(parse::parse_statm_rss(&text)),
        3 => drop(parse::parse_last_pid(&text)),
        4 => drop(parse::parse_snmp(&text)),
        5 => drop(parse::parse_net_dev(&text)),
        _ => {
            for line in text.lines() {
                let _ = parse::parse_socket_line(line);
            }
        }
    }
});
